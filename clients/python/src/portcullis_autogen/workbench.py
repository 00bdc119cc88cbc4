"""An AutoGen ``McpWorkbench`` for the gateway's MCP server (``<url>/mcp``, streamable HTTP).

Three things differ from a plain ``McpWorkbench(StreamableHttpServerParams(headers=...))``:

- Tokens stay fresh. AutoGen fixes the headers when the workbench is made; here the MCP
  session's HTTP client authenticates every request through :class:`BearerAuth`, which asks
  the token provider each time, so a session outlives any one token without restarting.
- Every tool call carries the agent's run id and the model's tool-call id, as MCP ``_meta``
  (``run_id``, ``tool_call_id``); the run id also goes on every HTTP request as a header. The
  gateway stores both on each audit event the call causes.
- The model sees the rows. AutoGen 0.7 passes only a result's text content to the model, and
  the gateway's rows are in its structured content, so that is added as JSON text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

import httpx
from autogen_core import CancellationToken, Image, trace_tool_span
from autogen_core.models import ChatCompletionClient
from autogen_core.tools import ImageResultContent, TextResultContent, ToolOverride, ToolResult, ToolSchema
from autogen_ext.tools.mcp import McpWorkbench, StreamableHttpServerParams
from autogen_ext.tools.mcp._actor import McpActorArgs, McpSessionActor
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, EmbeddedResource, ImageContent, TextContent

from ._http import RUN_ID_HEADER, BearerAuth, explain, new_call_id, new_run_id
from .tokens import TokenProvider, as_token_provider

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # anyio brings the backport
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger(__name__)

ResultPart = TextResultContent | ImageResultContent


def result_parts(result: CallToolResult) -> list[ResultPart]:
    """A tool result as the parts a model sees: its content, then its structured content as
    JSON unless a text part already carries exactly that JSON."""
    parts: list[ResultPart] = []
    texts: list[str] = []
    for content in result.content:
        if isinstance(content, TextContent):
            parts.append(TextResultContent(content=content.text))
            texts.append(content.text)
        elif isinstance(content, ImageContent):
            parts.append(ImageResultContent(content=Image.from_base64(content.data)))
        elif isinstance(content, EmbeddedResource):
            parts.append(TextResultContent(content=content.model_dump_json()))
        else:
            parts.append(TextResultContent(content=f"[{content.type} content]"))
    structured = result.structuredContent
    if structured is not None and not any(_is_json_of(t, structured) for t in texts):
        parts.append(TextResultContent(content=json.dumps(structured, ensure_ascii=False)))
    return parts


def _is_json_of(text: str, value: object) -> bool:
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


def _leaf(error: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, which anyio task groups raise."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


class _SessionActor(McpSessionActor):
    """The MCP session, held open in its own task (anyio requires a transport to be closed by
    the task that opened it), over an HTTP client that authenticates every request. Calls go
    straight to the session; the queue only carries the shutdown ``close()`` sends."""

    def __init__(
        self,
        params: StreamableHttpServerParams,
        auth: httpx.Auth,
        model_client: ChatCompletionClient | None,
    ) -> None:
        super().__init__(params, model_client=model_client)
        self._params = params
        self._auth = auth
        self._session: ClientSession | None = None
        self._ready: asyncio.Future[None] | None = None

    async def initialize(self) -> None:
        if self._active:
            return
        self._active = True
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready = ready
        self._actor_task = asyncio.create_task(self._run_actor())
        await ready

    @property
    def alive(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            raise RuntimeError(f"the MCP session with {self._params.url} is closed")
        return self._session

    async def _run_actor(self) -> None:
        p, ready = self._params, self._ready
        assert ready is not None
        timeout = httpx.Timeout(p.timeout, read=p.sse_read_timeout)
        try:
            async with (
                httpx.AsyncClient(auth=self._auth, timeout=timeout, headers=p.headers) as http,
                streamable_http_client(p.url, http_client=http, terminate_on_close=p.terminate_on_close) as (
                    read,
                    write,
                    _,
                ),
                ClientSession(
                    read,
                    write,
                    read_timeout_seconds=timedelta(seconds=p.sse_read_timeout),
                    sampling_callback=self._sampling_callback,
                ) as session,
            ):
                self._initialize_result = await session.initialize()
                self._session = session
                ready.set_result(None)
                while (command := await self._command_queue.get())["type"] != "shutdown":
                    command["future"].set_exception(RuntimeError(f"unexpected command {command['type']}"))
                command["future"].set_result("ok")
        except Exception as e:
            error = _leaf(e)
            if not ready.done():
                ready.set_exception(error)
            elif self._shutdown_future is not None and not self._shutdown_future.done():
                self._shutdown_future.set_exception(error)
            else:
                logger.warning("the MCP session with %s ended: %s", p.url, error)
        finally:
            if not ready.done():  # cancelled while connecting
                ready.set_exception(RuntimeError(f"the MCP session with {p.url} ended while starting"))
            self._session = None
            self._active = False
            self._actor_task = None

    async def call(self, type: str, args: McpActorArgs | None = None) -> Any:
        """What ``McpWorkbench``'s other methods await (tool calls go through
        :meth:`PortcullisWorkbench.call_tool`)."""
        session = self.session
        name = args["name"] if args else None
        kwargs = dict(args["kargs"]) if args else {}
        if type == "list_tools":
            return session.list_tools()
        if type == "call_tool" and name is not None:
            return session.call_tool(name, kwargs)
        if type == "list_prompts":
            return session.list_prompts()
        if type == "list_resources":
            return session.list_resources()
        if type == "list_resource_templates":
            return session.list_resource_templates()
        if type == "read_resource":
            return session.read_resource(kwargs["uri"])
        if type == "get_prompt" and name is not None:
            return session.get_prompt(name, kwargs.get("arguments"))
        raise ValueError(f"unsupported MCP call {type!r}")


class PortcullisWorkbench(McpWorkbench):
    """An AutoGen ``McpWorkbench`` with the tools the gateway at ``url`` lets this agent use
    (``query_<connection>``, ``check_review``, ``wait_for_review``, ...).

    ``tokens`` is a :class:`TokenProvider` (or a token string). ``run_id`` names this agent
    run in the audit (generated when not given). ``read_timeout`` bounds one call, so keep it
    above the 60 seconds ``wait_for_review`` may wait. Use it as ``async with``, or pass it
    to ``AssistantAgent(workbench=...)``, which starts it on first use.
    """

    def __init__(
        self,
        url: str,
        tokens: TokenProvider | str,
        run_id: str | None = None,
        *,
        timeout: float = 30.0,
        read_timeout: float = 300.0,
        tool_overrides: Mapping[str, ToolOverride] | None = None,
        model_client: ChatCompletionClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        #: The run id sent with every call (generated when not given).
        self.run_id = run_id or new_run_id()
        params = StreamableHttpServerParams(url=f"{self.url}/mcp", timeout=timeout, sse_read_timeout=read_timeout)
        super().__init__(params, tool_overrides=dict(tool_overrides or {}), model_client=model_client)
        self._auth = BearerAuth(as_token_provider(tokens), {RUN_ID_HEADER: self.run_id})

    async def start(self) -> None:
        if self._actor is not None:
            return
        actor = _SessionActor(self._server_params, self._auth, self._model_client)  # type: ignore[arg-type]
        try:
            await actor.initialize()
        except Exception as e:
            raise explain(await self._reason(_leaf(e)), self.url) from None
        self._actor = actor
        self._actor_loop = asyncio.get_running_loop()

    async def _reason(self, error: BaseException) -> BaseException:
        """For a refused token, the gateway's reason code and hint, which the MCP transport
        does not read: asked again of ``/v1/whoami``."""
        if not (isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 401):
            return error
        try:
            async with httpx.AsyncClient(auth=self._auth, timeout=10) as http:
                (await http.get(f"{self.url}/v1/whoami")).raise_for_status()
        except httpx.HTTPStatusError as e:
            return e
        except httpx.HTTPError:
            pass
        return error

    async def _session(self) -> ClientSession:
        """The live MCP session: started on first use, and again if it ended."""
        if not (isinstance(self._actor, _SessionActor) and self._actor.alive):
            self._actor = None
            await self.start()
        assert isinstance(self._actor, _SessionActor)
        return self._actor.session

    async def list_tools(self) -> list[ToolSchema]:
        await self._session()
        return await super().list_tools()

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> ToolResult:
        call_id = call_id or new_call_id()
        meta = {"run_id": self.run_id, "tool_call_id": call_id}
        original = self._override_name_to_original.get(name, name)
        cancellation_token = cancellation_token or CancellationToken()
        with trace_tool_span(tool_name=name, tool_call_id=call_id):
            try:
                session = await self._session()
                call = session.call_tool(original, dict(arguments or {}), meta=meta)
                future = asyncio.ensure_future(call)
                cancellation_token.link_future(future)
                result = await future
            except Exception as e:
                text = str(explain(_leaf(e), self.url))
                return ToolResult(name=name, result=[TextResultContent(content=text)], is_error=True)
        return ToolResult(name=name, result=result_parts(result), is_error=result.isError)

    def _to_config(self) -> NoReturn:
        raise NotImplementedError("a PortcullisWorkbench holds credentials: build it with portcullis_workbench()")

    def __repr__(self) -> str:
        return f"PortcullisWorkbench(url={self.url!r}, run_id={self.run_id!r}, auth={self._auth!r})"


#: An AutoGen workbench with the tools the gateway at ``url`` lets this agent use: the
#: function the README shows; the class itself (same arguments).
portcullis_workbench = PortcullisWorkbench
