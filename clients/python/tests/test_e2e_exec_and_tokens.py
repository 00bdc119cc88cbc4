"""End to end: the SQL tool over POST /v1/exec in a real AssistantAgent, and client
credentials against the real OpenID provider."""

from __future__ import annotations

import asyncio
import time

import httpx
from autogen_agentchat.agents import AssistantAgent

from _agent import Gateway, ScriptedModel, Transcript, answer_json, call, tool_result
from portcullis_autogen import jwt_expiry, sql_tool


def test_sql_tool_over_exec_masks_and_explains_refusals(gateway: Gateway, transcript: Transcript) -> None:
    model = ScriptedModel(
        [
            call("query_appdb", {"sql": "SELECT name, email FROM customers ORDER BY id LIMIT 3"}, "call-exec-select"),
            call("query_appdb", {"sql": "DELETE FROM orders"}, "call-exec-delete"),
            "Three customers (emails masked); deleting every order was refused.",
        ],
        transcript,
    )
    tool = sql_tool(gateway.url, gateway.tokens(), "appdb", run_id=gateway.run_id("exec"))
    agent = AssistantAgent("analyst", model_client=model, tools=[tool], max_tool_iterations=4)
    try:
        result = asyncio.run(agent.run(task="List three customers, then delete all orders."))
    except BaseException as e:
        transcript.record("error", repr(e))
        raise
    transcript.record("agent_messages", [m.dump() for m in result.messages])

    rows = tool_result(model.seen[1], "call-exec-select")
    assert not rows.is_error, rows.content
    answer = answer_json(rows)
    assert answer["status"] == "done" and answer["row_count"] == 3
    assert [email for _, email in answer["rows"]] == ["[EMAIL]"] * 3
    assert "@example." not in rows.content

    refused = tool_result(model.seen[2], "call-exec-delete")
    assert refused.content.startswith("Refused (policy_forbid):"), refused.content
    assert "Hint: add a WHERE clause" in refused.content
    assert answer_json(refused)["status"] == 403


def test_client_credentials_gets_a_jwt_the_gateway_accepts_and_caches_it(
    gateway: Gateway, transcript: Transcript
) -> None:
    tokens = gateway.tokens()
    first = tokens.token()
    exp = jwt_expiry(first)
    assert exp is not None and 0 < exp - time.time() <= 3600
    assert tokens.expires_at is not None and abs(tokens.expires_at - exp) < 5
    # Each grant mints a new token, so the same one means the cache answered.
    assert tokens.token() == first
    assert asyncio.run(tokens.atoken()) == first
    tokens.invalidate()
    second = tokens.token()
    assert second != first

    whoami = httpx.get(f"{gateway.url}/v1/whoami", headers={"authorization": f"Bearer {second}"}, timeout=10)
    transcript.record("whoami", {"status": whoami.status_code, "body": whoami.json()})
    assert whoami.status_code == 200
    assert whoami.json()["subject"] == gateway.client_id
