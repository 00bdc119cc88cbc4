"""The workbench against the MCP SDK's own server: fresh tokens on one session, run and
tool-call ids in ``_meta``, structured content shown to the model."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from mcp.types import CallToolResult, TextContent

from _agent import ScriptedModel, call, tool_result
from _servers import mcp_server
from portcullis_autogen import GatewayUnavailable, PortcullisError, TokenProvider, portcullis_workbench, result_parts


class Rotating(TokenProvider):
    """Hands out ``tok-<generation>``; a test bumps the generation to "rotate"."""

    def __init__(self) -> None:
        self.generation = 1

    def token(self) -> str:
        return f"tok-{self.generation}"


def structured(result_text: str) -> dict[str, Any]:
    """The JSON in a result's text: all of it (the SDK's server sends JSON as text), or the
    last line (what the workbench adds after a summary)."""
    try:
        return json.loads(result_text)  # type: ignore[no-any-return]
    except ValueError:
        return json.loads(result_text.splitlines()[-1])  # type: ignore[no-any-return]


def test_calls_carry_run_and_tool_call_ids_and_fresh_tokens() -> None:
    tokens = Rotating()

    async def scenario() -> None:
        with mcp_server() as server:
            server.valid_tokens.add("tok-1")
            async with portcullis_workbench(server.url, tokens, run_id="run-7") as wb:
                names = [t["name"] for t in await wb.list_tools()]
                assert {"whoami", "refuse"} <= set(names)

                first = await wb.call_tool("whoami", {}, call_id="call-a")
                assert not first.is_error
                seen = structured(first.to_text())
                assert seen["meta"] == {"run_id": "run-7", "tool_call_id": "call-a"}
                assert seen["authorization"] == "Bearer tok-1"
                assert seen["run_id_header"] == "run-7"

                # The token rotates: the same session carries on with the new one.
                server.valid_tokens = {"tok-2"}
                tokens.generation = 2
                second = await wb.call_tool("whoami", {}, call_id="call-b")
                assert structured(second.to_text())["authorization"] == "Bearer tok-2"

                # A call without an id (not from a model) still gets one.
                third = structured((await wb.call_tool("whoami", {})).to_text())
                assert str(third["meta"]["tool_call_id"]).startswith("call-")

            sessions = {sid for auth, _, sid in server.http_requests if sid and auth == "Bearer tok-2"}
            earlier = {sid for auth, _, sid in server.http_requests if sid and auth == "Bearer tok-1"}
            assert sessions and sessions == earlier, "the session was restarted"
            assert all(run == "run-7" for _, run, _ in server.http_requests)

    asyncio.run(scenario())


def test_an_assistant_agent_sends_the_models_tool_call_id() -> None:
    model = ScriptedModel([call("whoami", {}, "call-model-1"), "done"])

    async def scenario() -> None:
        with mcp_server() as server:
            server.valid_tokens.add("tok-1")
            async with portcullis_workbench(server.url, "tok-1", run_id="run-a") as wb:
                agent = AssistantAgent("a", model_client=model, workbench=wb, max_tool_iterations=2)
                await agent.run(task="who am I?")

    asyncio.run(scenario())
    seen = structured(tool_result(model.seen[1], "call-model-1").content)
    assert seen["meta"] == {"run_id": "run-a", "tool_call_id": "call-model-1"}


def test_a_session_that_ended_is_started_again() -> None:
    async def scenario() -> None:
        with mcp_server() as server:
            server.valid_tokens.add("tok-1")
            async with portcullis_workbench(server.url, "tok-1") as wb:
                first = wb._actor
                assert first is not None and first._actor_task is not None
                first._actor_task.cancel()  # the session's task dies (say, its transport failed)
                await asyncio.sleep(0.1)
                result = await wb.call_tool("whoami", {}, call_id="call-after")
                assert not result.is_error, result.to_text()
                assert wb._actor is not first

    asyncio.run(scenario())


def test_a_refusal_reaches_the_model_as_a_tool_error() -> None:
    async def scenario() -> None:
        with mcp_server() as server:
            server.valid_tokens.add("tok-1")
            async with portcullis_workbench(server.url, "tok-1") as wb:
                result = await wb.call_tool("refuse", {}, call_id="call-x")
        assert result.is_error
        text = result.to_text()
        assert "Refused (policy_forbid)" in text and "WHERE" in text
        assert structured(text)["code"] == "policy_forbid"

    asyncio.run(scenario())


def test_a_refused_token_fails_start_with_the_status() -> None:
    async def scenario() -> None:
        with mcp_server() as server:
            wb = portcullis_workbench(server.url, "not-valid")
            with pytest.raises(PortcullisError) as raised:
                await asyncio.wait_for(wb.start(), 10)
            assert str(raised.value) == (
                f"Portcullis at {server.url} answered HTTP 401 (token_unknown): no such token. Hint: get a new one"
            )

    asyncio.run(scenario())


def test_an_unreachable_gateway_fails_start_promptly() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def scenario() -> None:
        wb = portcullis_workbench(f"http://127.0.0.1:{port}", "tok")
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable, match="cannot reach Portcullis at"):
            await asyncio.wait_for(wb.start(), 10)
        assert time.monotonic() - started < 5

    asyncio.run(scenario())


def test_result_parts_add_structured_content_once() -> None:
    rows = {"status": "done", "columns": ["email"], "rows": [["[EMAIL]"]], "row_count": 1}
    summary = TextContent(type="text", text="1 row(s); columns: email.")
    parts = result_parts(CallToolResult(content=[summary], structuredContent=rows))
    assert [p.content for p in parts] == [summary.text, json.dumps(rows)]

    # A server that already sends the JSON as text (as the MCP spec suggests) is not doubled.
    as_text = TextContent(type="text", text=json.dumps(rows, indent=2))
    assert len(result_parts(CallToolResult(content=[as_text], structuredContent=rows))) == 1
    assert len(result_parts(CallToolResult(content=[summary]))) == 1
