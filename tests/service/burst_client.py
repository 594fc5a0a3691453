"""A burst of concurrent requests from its own process (so the caller measuring live calls in
the test process does not share an event loop with it).

``python -m tests.service.burst_client BASE KEY N PATH`` sends N concurrent requests (``POST``
for ``/v1/sessions``, else ``GET``) and prints one JSON list with, for each,
``[status, seconds, body, Retry-After]`` (a body that is not JSON as ``{"text": ...}``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx


async def burst(base: str, key: str, n: int, path: str) -> list[list[Any]]:
    async with httpx.AsyncClient(
        base_url=base,
        timeout=120,
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=n + 10),
    ) as http:

        async def one() -> list[Any]:
            started = time.monotonic()
            if path == "/v1/sessions":
                reply = await http.post(path, json={"sample_rate": 16000})
            else:
                reply = await http.get(path)
            return [
                reply.status_code,
                time.monotonic() - started,
                _body(reply),
                reply.headers.get("retry-after"),
            ]

        return list(await asyncio.gather(*(one() for _ in range(n))))


def _body(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return {"text": reply.text[:300]}


if __name__ == "__main__":
    base, key, count, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    print(json.dumps(asyncio.run(burst(base, key, count, path))))
