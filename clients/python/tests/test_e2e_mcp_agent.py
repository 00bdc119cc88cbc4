"""End to end: a real AutoGen AssistantAgent, scripted by ReplayChatCompletionClient, works
through the gateway's MCP server with client-credentials tokens from the real OpenID
provider. The harness approves the held UPDATE through the CLI while the agent waits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_core.models import CreateResult, LLMMessage

from _agent import Gateway, ScriptedModel, Step, Transcript, answer_json, call, review_id, tool_result
from portcullis_autogen import portcullis_workbench

UPDATE = "UPDATE orders SET status = 'refunded' WHERE id = 1"


def run_agent(gateway: Gateway, transcript: Transcript, test: str, steps: Sequence[Step], task: str) -> ScriptedModel:
    """Runs one agent over the gateway's MCP tools; returns its model, which kept all it saw."""
    model = ScriptedModel(steps, transcript)

    async def go() -> TaskResult:
        async with portcullis_workbench(gateway.url, gateway.tokens(), run_id=gateway.run_id(test)) as wb:
            tools = sorted(t["name"] for t in await wb.list_tools())
            transcript.record("tools", tools)
            assert {"query_appdb", "query_billing", "check_review", "wait_for_review"} <= set(tools)
            agent = AssistantAgent(
                "analyst",
                model_client=model,
                workbench=wb,
                max_tool_iterations=6,
                system_message="Answer questions about the database with the Portcullis tools.",
            )
            return await agent.run(task=task)

    try:
        result = asyncio.run(go())
    except BaseException as e:
        transcript.record("error", repr(e))
        raise
    transcript.record("agent_messages", [m.dump() for m in result.messages])
    return model


def test_select_returns_masked_emails(gateway: Gateway, transcript: Transcript) -> None:
    sql = "SELECT name, email FROM customers ORDER BY id LIMIT 5"
    model = run_agent(
        gateway,
        transcript,
        "select",
        [call("query_appdb", {"sql": sql}, "call-select"), "Here are five customers; their emails are masked."],
        "List five customers with their email addresses.",
    )
    seen = tool_result(model.seen[1], "call-select")
    assert not seen.is_error, seen.content
    answer = answer_json(seen)
    assert answer["status"] == "done" and answer["row_count"] == 5
    assert all(email == "[EMAIL]" for _, email in answer["rows"]), answer
    assert "@example." not in seen.content
    # The gateway echoes the ids it took from _meta (and stored on the audit events).
    assert answer.get("tool_call_id") == "call-select"
    assert answer.get("run_id") == gateway.run_id("select")


def test_delete_without_where_is_refused_with_reason_and_hint(gateway: Gateway, transcript: Transcript) -> None:
    model = run_agent(
        gateway,
        transcript,
        "delete",
        [
            call("query_appdb", {"sql": "DELETE FROM orders"}, "call-delete"),
            "The gateway refused: a DELETE needs a WHERE clause. Which orders should go?",
        ],
        "Delete all orders.",
    )
    # The model's next turn is shown the refusal: code, reason and hint.
    seen = tool_result(model.seen[1], "call-delete")
    assert seen.is_error
    assert "Refused (policy_forbid)" in seen.content, seen.content
    assert "WHERE" in seen.content and "Hint:" in seen.content
    answer = answer_json(seen)
    assert answer["code"] == "policy_forbid" and "WHERE" in answer["hint"]
    assert "no-unbounded-writes" in answer.get("policies", [])


def test_update_waits_for_approval_then_runs(gateway: Gateway, transcript: Transcript) -> None:
    def wait_for_it(messages: Sequence[LLMMessage]) -> CreateResult | str:
        pending = tool_result(messages, "call-update")
        transcript.record("pending", pending)
        return call("wait_for_review", {"review_id": review_id(pending), "timeout_seconds": 60}, "call-wait")

    def run_again(messages: Sequence[LLMMessage]) -> CreateResult | str:
        verdict = tool_result(messages, "call-wait")
        if answer_json(verdict).get("status") != "approved":
            return f"The review was not approved: {verdict.content}"
        return call("query_billing", {"sql": UPDATE}, "call-update-again")

    model = run_agent(
        gateway,
        transcript,
        "update",
        [
            call("query_billing", {"sql": UPDATE}, "call-update"),
            wait_for_it,
            run_again,
            "Order 1 is refunded.",
        ],
        "Refund order 1 in billing.",
    )
    pending = tool_result(model.seen[1], "call-update")
    assert not pending.is_error, pending.content
    held = answer_json(pending)
    assert held["status"] == "pending" and str(held["review_id"]).startswith("rv_"), held

    verdict = answer_json(tool_result(model.seen[2], "call-wait"))
    assert verdict["status"] == "approved", verdict

    done = tool_result(model.seen[3], "call-update-again")
    assert not done.is_error, done.content
    answer = answer_json(done)
    assert answer["status"] == "done" and answer["row_count"] == 1, answer
