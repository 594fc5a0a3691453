"""TLS for the emulators: a throwaway CA and a server certificate for localhost.

The Gemini SDK only speaks ``wss://`` and the AWS CRT client only HTTP/2 over TLS, so those
emulators must serve TLS. :func:`self_signed` makes a small CA and a leaf certificate signed by
it (SAN ``localhost`` and ``127.0.0.1``, EC P-256, valid 30 days) in a directory; clients trust
``ca.pem``. A proper CA/leaf pair works with every TLS stack (OpenSSL, s2n in the AWS CRT),
where a bare self-signed leaf is refused by some.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertFiles", "client_context", "self_signed", "server_context"]


@dataclass(frozen=True, slots=True)
class CertFiles:
    certfile: Path
    keyfile: Path
    cafile: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "s2s emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def self_signed(directory: str | Path | None = None) -> CertFiles:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` to ``directory`` (default: a new temp dir)."""
    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="s2s-tls-"))
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("s2s emulator CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = CertFiles(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    files.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.keyfile.chmod(0o600)
    return files


def server_context(
    certfile: str | Path, keyfile: str | Path, alpn: tuple[str, ...] = ("http/1.1",)
) -> ssl.SSLContext:
    """A server-side context for the emulator, offering ``alpn`` protocols."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certfile), str(keyfile))
    context.set_alpn_protocols(list(alpn))
    return context


def client_context(cafile: str | Path) -> ssl.SSLContext:
    """A client context that trusts the emulator's CA (and verifies the host name)."""
    return ssl.create_default_context(cafile=str(cafile))
