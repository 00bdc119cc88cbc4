"""The /v1/exec client and tool: what goes out, and what the model reads of each answer."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest
from autogen_core.tools import StaticWorkbench

from portcullis_autogen import ExecAnswer, ExecClient, GatewayUnavailable, SqlTool, format_answer

DONE = {
    "status": "done",
    "columns": ["name", "email"],
    "rows": [["Alice Martin", "[EMAIL]"]],
    "row_count": 1,
    "truncated": False,
    "session_id": "ses_1",
    "decisions": [{"seq": 1, "action": "sql.select", "outcome": "allow", "policies": ["agents-read"]}],
}
PENDING = {
    "status": "pending",
    "review_id": "rv_123",
    "message": "sql.update on billing needs approval by dba",
    "hint": "a member of dba approves with `portcullis reviews approve rv_123`.",
    "session_id": "ses_2",
}
FORBID = {
    "type": "urn:portcullis:problem:policy_forbid",
    "title": "Forbidden",
    "status": 403,
    "detail": "UPDATE or DELETE without a WHERE clause would change every row of the table",
    "code": "policy_forbid",
    "hint": "add a WHERE clause that selects only the rows you mean to change",
    "policies": ["no-unbounded-writes"],
}


def answer(status: int, body: Any, content_type: str = "application/json") -> ExecAnswer:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ExecAnswer.from_response(httpx.Response(status, content=data, headers={"content-type": content_type}))


@pytest.mark.parametrize(
    ("status", "body", "kind", "first_line"),
    [
        (200, DONE, "done", "1 row(s); columns: name, email."),
        (
            200,
            {**DONE, "truncated": True, "row_count": 1000},
            "done",
            "1000 row(s); columns: name, email; truncated by the gateway's limits.",
        ),
        (
            202,
            PENDING,
            "pending",
            "Held for approval (review rv_123): sql.update on billing needs approval by dba. a member of dba "
            "approves with `portcullis reviews approve rv_123`. Run the same statement again once a reviewer "
            "approves it.",
        ),
        (
            403,
            FORBID,
            "refused",
            "Refused (policy_forbid): UPDATE or DELETE without a WHERE clause would change every row of the "
            "table. Hint: add a WHERE clause that selects only the rows you mean to change.",
        ),
        (
            401,
            {"code": "token_expired", "detail": "the token expired.", "hint": "get a new token"},
            "refused",
            "Refused (token_expired): the token expired. Hint: get a new token.",
        ),
        (502, b"<html>bad gateway</html>", "refused", "Refused (http_502): <html>bad gateway</html>."),
    ],
)
def test_answers_read_as_one_actionable_line_then_the_whole_answer(
    status: int, body: Any, kind: str, first_line: str
) -> None:
    a = answer(status, body)
    assert a.status == kind
    head, _, rest = format_answer(a).partition("\n")
    assert head == first_line
    # Everything the gateway said reaches the model, fields added later included.
    assert json.loads(rest) == a.body
    if isinstance(body, dict):
        assert a.body == body


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def recording_gateway(reply: httpx.Response) -> tuple[list[httpx.Request], httpx.MockTransport]:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return reply

    return requests, httpx.MockTransport(handle)


def test_client_sends_token_ids_and_parameters_only_when_given() -> None:
    requests, transport = recording_gateway(httpx.Response(200, json=DONE))
    client = ExecClient("http://gw/", "tok-1", run_id="run-9", transport=transport)
    result = run(client.exec("appdb", "SELECT 1", tool_call_id="call-1"))
    assert result.status == "done"
    run(client.exec("appdb", "SELECT $1", parameters=[7], wait=True))
    first, second = requests
    assert str(first.url) == "http://gw/v1/exec"
    assert first.headers["authorization"] == "Bearer tok-1"
    assert first.headers["x-portcullis-run-id"] == "run-9"
    assert first.headers["x-portcullis-tool-call-id"] == "call-1"
    assert json.loads(first.content) == {"connection": "appdb", "input": "SELECT 1", "wait": False}
    assert json.loads(second.content) == {"connection": "appdb", "input": "SELECT $1", "wait": True, "parameters": [7]}
    assert second.headers["x-portcullis-tool-call-id"].startswith("call-")


def test_sql_tool_passes_the_models_call_id_and_shows_a_refusal_as_text() -> None:
    requests, transport = recording_gateway(httpx.Response(403, json=FORBID))
    tool = SqlTool(ExecClient("http://gw", "tok-1", run_id="run-9", transport=transport), "appdb")
    assert tool.name == "query_appdb"
    assert tool.schema["parameters"]["required"] == ["sql"]
    result = run(StaticWorkbench([tool]).call_tool("query_appdb", {"sql": "DELETE FROM orders"}, call_id="call-del"))
    assert requests[0].headers["x-portcullis-tool-call-id"] == "call-del"
    assert "parameters" not in json.loads(requests[0].content)
    text = result.to_text()
    assert text.startswith("Refused (policy_forbid):") and "Hint: add a WHERE clause" in text


def test_an_unreachable_gateway_raises_gateway_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    with pytest.raises(GatewayUnavailable, match="cannot reach Portcullis at"):
        run(ExecClient(url, "tok", timeout=5).exec("appdb", "SELECT 1"))
