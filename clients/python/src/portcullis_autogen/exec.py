"""SQL through ``POST <url>/v1/exec``, for agents that do not use MCP: a small client and an
AutoGen tool whose answers a model can act on (rows, a pending review, or the reason for a
refusal with the gateway's hint)."""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx
from autogen_core import CancellationToken
from autogen_core.tools import BaseTool
from pydantic import BaseModel, Field

from ._http import RUN_ID_HEADER, TOOL_CALL_ID_HEADER, BearerAuth, explain, new_call_id, new_run_id
from .tokens import TokenProvider, as_token_provider

Status = Literal["done", "pending", "refused"]


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


class ExecAnswer(BaseModel):
    """The gateway's answer, unchanged (``body``), with what a model should read (``text``)."""

    http_status: int
    body: dict[str, Any]

    @property
    def status(self) -> Status:
        if self.http_status == 200 and self.body.get("status") == "done":
            return "done"
        if self.http_status == 202 or self.body.get("status") == "pending":
            return "pending"
        return "refused"

    @property
    def code(self) -> str | None:
        """The reason code of a refusal (``policy_forbid``, ``token_expired``, ...)."""
        code = self.body.get("code")
        return code if isinstance(code, str) else None

    @property
    def text(self) -> str:
        return format_answer(self)

    @classmethod
    def from_response(cls, reply: httpx.Response) -> ExecAnswer:
        try:
            body = reply.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # Not the gateway's JSON (a proxy's error page, say): keep a bounded excerpt.
            body = {"code": f"http_{reply.status_code}", "detail": reply.text[:500].strip(), "hint": ""}
        return cls(http_status=reply.status_code, body=body)


def format_answer(answer: ExecAnswer) -> str:
    """One line a model can act on, then the gateway's whole answer as JSON (so fields the
    gateway adds later, such as its decision receipts, reach the model too)."""
    b = answer.body
    if answer.status == "done":
        columns = ", ".join(str(c) for c in b.get("columns") or [])
        head = f"{b.get('row_count', len(b.get('rows') or []))} row(s)"
        head += f"; columns: {columns}" if columns else ""
        head += "; truncated by the gateway's limits" if b.get("truncated") else ""
        head += "."
    elif answer.status == "pending":
        head = (
            f"Held for approval (review {b.get('review_id')}): {_sentence(str(b.get('message') or ''))} "
            f"{_sentence(str(b.get('hint') or ''))} Run the same statement again once a reviewer approves it."
        )
    else:
        detail = b.get("detail") or b.get("message") or b.get("title") or ""
        head = f"Refused ({answer.code or f'http_{answer.http_status}'}): {_sentence(str(detail))}"
        if b.get("hint"):
            head += f" Hint: {_sentence(str(b['hint']))}"
    return f"{' '.join(head.split())}\n{json.dumps(b, ensure_ascii=False)}"


class ExecClient:
    """Runs commands through ``POST <url>/v1/exec`` with a fresh token and the run id."""

    def __init__(
        self,
        url: str,
        tokens: TokenProvider | str,
        *,
        run_id: str | None = None,
        timeout: float = 30.0,
        wait_timeout: float = 330.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.run_id = run_id or new_run_id()
        self._auth = BearerAuth(as_token_provider(tokens), {RUN_ID_HEADER: self.run_id})
        self._timeout = timeout
        self._wait_timeout = wait_timeout
        self._transport = transport

    async def exec(
        self,
        connection: str,
        input: str,
        *,
        parameters: Sequence[Any] | None = None,
        wait: bool = False,
        tool_call_id: str | None = None,
    ) -> ExecAnswer:
        """Run ``input`` on ``connection``. Policy answers (rows, pending, refusals) come back
        as an :class:`ExecAnswer`; only an unreachable gateway raises
        :class:`GatewayUnavailable`. ``wait`` holds the request until a reviewer decides."""
        body: dict[str, Any] = {"connection": connection, "input": input, "wait": wait}
        if parameters:
            body["parameters"] = list(parameters)
        headers = {TOOL_CALL_ID_HEADER: tool_call_id or new_call_id()}
        timeout = httpx.Timeout(self._timeout, read=self._wait_timeout if wait else self._timeout)
        try:
            async with httpx.AsyncClient(auth=self._auth, timeout=timeout, transport=self._transport) as http:
                reply = await http.post(f"{self.url}/v1/exec", json=body, headers=headers)
        except httpx.TransportError as e:
            raise explain(e, self.url) from None
        return ExecAnswer.from_response(reply)

    def __repr__(self) -> str:
        return f"ExecClient(url={self.url!r}, run_id={self.run_id!r}, auth={self._auth!r})"


class SqlArgs(BaseModel):
    sql: str = Field(description="one SQL statement")
    parameters: list[Any] | None = Field(
        default=None, description="values for $1, $2, ... placeholders in the statement, if any"
    )


# The model's tool-call id, set around one run of the tool (BaseTool.run has no place for it).
_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("portcullis_call_id", default=None)


class SqlTool(BaseTool[SqlArgs, ExecAnswer]):
    """An AutoGen tool that runs one SQL statement on one connection through ``/v1/exec``."""

    def __init__(self, client: ExecClient, connection: str, *, wait: bool = False) -> None:
        self.client = client
        self.connection = connection
        self._wait = wait
        super().__init__(
            SqlArgs,
            ExecAnswer,
            f"query_{re.sub(r'[^A-Za-z0-9_-]', '_', connection)}",
            f"Run one SQL statement on the connection `{connection}` through the Portcullis "
            "gateway. Policy decides and results are masked. A refusal says why and how to "
            "fix the statement; a statement held for approval answers with a review id: run "
            "the same statement again once it is approved.",
        )

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        token = _CALL_ID.set(call_id)
        try:
            return await super().run_json(args, cancellation_token, call_id)
        finally:
            _CALL_ID.reset(token)

    async def run(self, args: SqlArgs, cancellation_token: CancellationToken) -> ExecAnswer:
        return await self.client.exec(
            self.connection,
            args.sql,
            parameters=args.parameters,
            wait=self._wait,
            tool_call_id=_CALL_ID.get(),
        )

    def return_value_as_string(self, value: Any) -> str:
        return value.text if isinstance(value, ExecAnswer) else str(value)


def sql_tool(
    url: str,
    tokens: TokenProvider | str,
    connection: str,
    run_id: str | None = None,
    *,
    wait: bool = False,
) -> SqlTool:
    """An AutoGen tool ``query_<connection>`` over ``POST <url>/v1/exec``, for agents that do
    not use MCP: ``AssistantAgent(tools=[sql_tool(url, tokens, "appdb")])``. Each call
    carries ``run_id`` and the model's tool-call id. With ``wait``, a statement held for
    approval waits for the reviewer instead of answering "pending" at once."""
    return SqlTool(ExecClient(url, tokens, run_id=run_id), connection, wait=wait)
