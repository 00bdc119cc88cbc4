"""What every request to the gateway carries: a fresh bearer token and the agent's run id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Generator, Mapping

import httpx

from .tokens import TokenProvider

#: The headers the gateway reads the agent's run and tool-call ids from (MCP also reads
#: ``_meta.run_id`` / ``_meta.tool_call_id``); they land on every audit event of the call.
RUN_ID_HEADER = "x-portcullis-run-id"
TOOL_CALL_ID_HEADER = "x-portcullis-tool-call-id"


class PortcullisError(RuntimeError):
    """The gateway could not be used: unreachable, or it refused the request itself (a bad
    token, say). Policy answers are not errors: they come back as tool results."""


class GatewayUnavailable(PortcullisError, ConnectionError):
    """The gateway could not be reached (or did not answer in time)."""


def explain(error: BaseException, url: str) -> BaseException:
    """An HTTP-level failure as a :class:`PortcullisError` that says what went wrong, with
    the gateway's reason code and hint when its problem document is at hand."""
    if isinstance(error, httpx.TransportError):
        return GatewayUnavailable(f"cannot reach Portcullis at {url}: {error or type(error).__name__}")
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        try:
            problem = error.response.json()
        except (httpx.ResponseNotRead, ValueError):
            problem = None
        message = f"Portcullis at {url} answered HTTP {status}"
        if isinstance(problem, dict) and problem.get("code"):
            message += f" ({problem['code']}): {problem.get('detail', '')}. Hint: {problem.get('hint', '')}"
        elif status == 401:
            message += ": the token was refused (check it with `portcullis whoami --token ...`)"
        return PortcullisError(message)
    return error


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:16]}"


def new_call_id() -> str:
    return f"call-{uuid.uuid4().hex[:16]}"


class BearerAuth(httpx.Auth):
    """An ``httpx.Auth`` that asks the provider for a token on every request, so a long-lived
    client (such as an MCP session) always sends a current one. On ``401`` it forgets the
    token and retries once, if the provider then has a different one."""

    def __init__(self, tokens: TokenProvider, headers: Mapping[str, str] | None = None) -> None:
        self._tokens = tokens
        self._headers = dict(headers or {})

    def _prepare(self, request: httpx.Request, token: str) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {token}"
        for name, value in self._headers.items():
            request.headers.setdefault(name, value)
        return request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._tokens.token()
        response = yield self._prepare(request, token)
        if response.status_code == 401:
            self._tokens.invalidate()
            fresh = self._tokens.token()
            if fresh != token:
                yield self._prepare(request, fresh)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._tokens.atoken()
        response = yield self._prepare(request, token)
        if response.status_code == 401:
            self._tokens.invalidate()
            fresh = await self._tokens.atoken()
            if fresh != token:
                yield self._prepare(request, fresh)

    def __repr__(self) -> str:
        return f"BearerAuth({self._tokens!r})"
