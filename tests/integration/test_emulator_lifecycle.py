"""What every emulator shares (s2s.emulators.base): options, TLS files, start and stop."""

from __future__ import annotations

import socket

import pytest

from s2s.emulators.base import Emulator
from s2s.emulators.gemini import GeminiEmulator
from s2s.emulators.nova import NovaEmulator
from s2s.emulators.openai import OpenAIEmulator
from s2s.emulators.tls import self_signed

ALL = [OpenAIEmulator, GeminiEmulator, NovaEmulator]
TLS = [GeminiEmulator, NovaEmulator]


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("kind", ALL)
async def test_it_listens_on_a_free_loopback_port_until_stopped(kind: type[Emulator]):
    async with kind() as emulator:
        assert emulator.port != 0
        assert _accepts(emulator.port)
        port = emulator.port
    assert not _accepts(port)


@pytest.mark.parametrize("kind", TLS)
async def test_a_generated_certificate_is_removed_on_stop(kind: type[Emulator]):
    async with kind() as emulator:
        assert emulator.ca_file is not None and emulator.ca_file.is_file()
        folder = emulator.ca_file.parent
    assert not folder.exists()


@pytest.mark.parametrize("kind", TLS)
async def test_a_given_certificate_is_used_and_kept(kind: type[Emulator], tmp_path):
    files = self_signed(tmp_path)
    async with kind(certfile=files.certfile, keyfile=files.keyfile) as emulator:
        assert emulator.ca_file is None and emulator.certfile == files.certfile
    assert files.certfile.is_file() and files.keyfile.is_file()


@pytest.mark.parametrize("kind", TLS)
def test_a_certificate_needs_its_key(kind: type[Emulator], tmp_path):
    with pytest.raises(ValueError, match="both certfile and keyfile"):
        kind(certfile=tmp_path / "cert.pem")


def test_the_plain_emulator_takes_no_certificate(tmp_path):
    with pytest.raises(TypeError, match="unknown emulator option 'certfile'"):
        OpenAIEmulator(certfile=tmp_path / "c.pem", keyfile=tmp_path / "k.pem")


@pytest.mark.parametrize("kind", ALL)
def test_an_unknown_option_is_named(kind: type[Emulator]):
    with pytest.raises(TypeError, match="unknown emulator option 'sped'"):
        kind(sped=2.0)
