import asyncio
import ssl

import pytest

from s2s.emulators.tls import client_context, self_signed, server_context


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_generated_certificates_verify_for_localhost_and_loopback(tmp_path, host):
    files = self_signed(tmp_path)
    assert files.cafile.exists() and oct(files.keyfile.stat().st_mode)[-3:] == "600"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(
        handle,
        "127.0.0.1",
        0,
        ssl=server_context(files.certfile, files.keyfile, alpn=("h2", "http/1.1")),
    )
    port = server.sockets[0].getsockname()[1]
    async with server:
        context = client_context(files.cafile)
        context.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        assert await reader.read() == b"hello"
        writer.close()
        # and a client that does not trust the CA is refused
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(host, port, ssl=ssl.create_default_context())
