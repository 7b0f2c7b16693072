"""The bare ASGI ceiling: one response of fixed JSON to any request, served by uvicorn
exactly as the BFF is (`bff.server.uvicorn_config`: httptools, uvloop, no access log).

No framework, no routing, no upstream: only what every HTTP request to the BFF pays
anyway. `python -m scripts.benchmark.asgi_hello --port N`.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import Receive, Scope, Send

from bff.server import run_uvicorn, uvicorn_config

__all__ = ["hello"]

_BODY = b'{"hello":"world"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer every HTTP request with the same small JSON document."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def main() -> None:
    """Parse `--port` and serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port: int = parser.parse_args().port
    server = uvicorn.Server(uvicorn_config(hello, host="127.0.0.1", port=port, lifespan="off"))
    run_uvicorn(server.serve)


if __name__ == "__main__":
    main()
