"""Tiny local servers for the unit tests, on 127.0.0.1:0: an OAuth2 token endpoint and an
MCP server (the ``mcp`` SDK's own, over streamable HTTP) that shows what it received."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import CallToolResult, TextContent
from starlette.types import ASGIApp, Receive, Scope, Send


def make_jwt(exp: Any, sub: str = "agent-1", **claims: Any) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'sub': sub, 'exp': exp, **claims})}.c2ln"


@dataclass
class TokenEndpoint:
    """Answers client-credentials requests with ``reply`` (``{n}`` in a string value becomes
    the request's number), after ``delay`` seconds; records every request."""

    reply: dict[str, Any] = field(
        default_factory=lambda: {"access_token": "tok-{n}", "token_type": "Bearer", "expires_in": 600}
    )
    status: int = 200
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append({"headers": headers, "form": {k: v[0] for k, v in parse_qs(body).items()}})
            n = len(self.requests)
        time.sleep(self.delay)
        reply = {k: v.format(n=n) if isinstance(v, str) else v for k, v in self.reply.items()}
        return self.status, reply


@contextmanager
def token_endpoint(**kwargs: Any) -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint(**kwargs)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            status, reply = endpoint.handle({k.lower(): v for k, v in self.headers.items()}, body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/token"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class McpServer:
    url: str
    #: Bearer tokens the server accepts; anything else gets 401.
    valid_tokens: set[str]
    #: (authorization, run-id header, mcp-session-id) of every HTTP request.
    http_requests: list[tuple[str, str, str]]


def _mcp_app() -> FastMCP:
    app = FastMCP("portcullis-test", stateless_http=False, json_response=False)

    @app.tool()
    def whoami(ctx: Context) -> dict[str, Any]:  # type: ignore[type-arg]
        """What the server saw of this call."""
        request = ctx.request_context.request
        meta = ctx.request_context.meta
        headers = getattr(request, "headers", {})
        return {
            "meta": meta.model_dump(exclude_none=True) if meta else None,
            "authorization": headers.get("authorization"),
            "run_id_header": headers.get("x-portcullis-run-id"),
        }

    @app.tool()
    def refuse() -> CallToolResult:
        """A refusal shaped like the gateway's."""
        return CallToolResult(
            content=[TextContent(type="text", text="Refused (policy_forbid): no. Hint: add a WHERE clause.")],
            structuredContent={"code": "policy_forbid", "hint": "add a WHERE clause"},
            isError=True,
        )

    return app


@contextmanager
def mcp_server() -> Iterator[McpServer]:
    """The SDK's MCP server behind a bearer check, in a thread with its own event loop."""
    inner = _mcp_app().streamable_http_app()
    state = McpServer(url="", valid_tokens=set(), http_requests=[])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            auth = headers.get("authorization", "")
            state.http_requests.append(
                (auth, headers.get("x-portcullis-run-id", ""), headers.get("mcp-session-id", ""))
            )
            if auth.removeprefix("Bearer ") not in state.valid_tokens:
                # Like the gateway: a problem document, which the MCP transport does not read.
                problem = {"code": "token_unknown", "detail": "no such token", "hint": "get a new one"}
                start = {"type": "http.response.start", "status": 401}
                await send({**start, "headers": [(b"content-type", b"application/problem+json")]})
                await send({"type": "http.response.body", "body": json.dumps(problem).encode()})
                return
        await inner(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    asgi: ASGIApp = app
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
