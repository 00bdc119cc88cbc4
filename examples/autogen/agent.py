"""An AutoGen AssistantAgent that answers questions over a PostgreSQL database through the
Portcullis gateway's MCP server.

Offline by default: a scripted model (AutoGen's ReplayChatCompletionClient) lists the
tables it may read, reads contact data (masked by the gateway), tries a DELETE without WHERE (refused,
with the reason and a hint) and sums up. With OPENAI_API_KEY set, a real model
(OPENAI_MODEL, default gpt-4o-mini) answers the question given on the command line.

Environment:
  PORTCULLIS_URL         the gateway (default http://127.0.0.1:7070, the quickstart's)
  PORTCULLIS_CONNECTION  the connection to query (default analytics, the quickstart's)
  PORTCULLIS_TOKEN       a token, e.g. $(portcullis token mint --subject my-agent --groups agents)
  or PORTCULLIS_TOKEN_FILE, or PORTCULLIS_TOKEN_URL + PORTCULLIS_CLIENT_ID + PORTCULLIS_CLIENT_SECRET
  PORTCULLIS_RUN_ID      the run id the audit shows (default: generated)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from typing import NoReturn

import httpx
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core import FunctionCall
from autogen_core.models import ChatCompletionClient, CreateResult, ModelFamily, ModelInfo, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient

from portcullis_autogen import PortcullisError, TokenError, portcullis_workbench, token_provider_from_env

QUESTION = "Which tables can you see, and what does the contact data look like? Then delete the demo orders."


def scripted_model(connection: str) -> ChatCompletionClient:
    """A model that always makes the same moves, so the example runs without an API key."""

    def call(n: int, tool: str, args: dict[str, object]) -> CreateResult:
        return CreateResult(
            finish_reason="function_calls",
            content=[FunctionCall(id=f"call-{n}", name=tool, arguments=json.dumps(args))],
            usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
            cached=False,
        )

    query = f"query_{connection}"
    info = ModelInfo(
        vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN, structured_output=False
    )
    return ReplayChatCompletionClient(
        [
            call(1, f"describe_{connection}", {}),
            call(
                2,
                query,
                {"sql": "SELECT $1::text AS contact, $2::text AS card", "parameters": ["ada@example.com", "4111 1111 1111 1111"]},
            ),
            call(3, query, {"sql": "DELETE FROM demo_orders"}),
            "(scripted) I listed the tables I may read and read some contact data: the gateway masked "
            "the email and the card number. It refused to delete every demo order: a DELETE needs a "
            "WHERE clause naming the rows to remove. Which orders should go?",
        ],
        model_info=info,
    )


def real_model() -> ChatCompletionClient:
    try:
        from autogen_ext.models.openai import OpenAIChatCompletionClient
    except ImportError:
        sys.exit(
            "OPENAI_API_KEY is set but autogen-ext[openai] is not installed: "
            "pip install -r examples/autogen/requirements.txt"
        )
    return OpenAIChatCompletionClient(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))


def show(message: BaseAgentEvent | BaseChatMessage) -> None:
    """One message of the conversation, readably."""
    if isinstance(message, ToolCallRequestEvent):
        for c in message.content:
            print(f"  -> {c.name}({c.arguments})")
    elif isinstance(message, ToolCallExecutionEvent):
        for r in message.content:
            mark = "REFUSED" if r.is_error or r.content.startswith("Refused") else "result"
            text = r.content if len(r.content) < 600 else r.content[:600] + " ..."
            print(f"  <- {mark}: " + text.replace("\n", "\n     ") + "\n")
    elif isinstance(message, TextMessage):
        print(f"[{message.source}] {message.content}\n")


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


async def main() -> None:
    # The replay model warns on every turn that it counts tokens of text only.
    logging.getLogger("autogen_core.events").setLevel(logging.ERROR)
    url = os.environ.get("PORTCULLIS_URL", "http://127.0.0.1:7070").rstrip("/")
    connection = os.environ.get("PORTCULLIS_CONNECTION", "analytics")
    run_id = os.environ.get("PORTCULLIS_RUN_ID") or f"example-{uuid.uuid4().hex[:8]}"
    question = " ".join(sys.argv[1:]) or QUESTION
    try:
        tokens = token_provider_from_env()
        httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
    except TokenError as e:
        fail(str(e))
    except httpx.HTTPError as e:
        fail(f"cannot reach Portcullis at {url} ({e}). Start it with scripts/run.sh, or set PORTCULLIS_URL.")

    tool = f"query_{connection}"
    model = real_model() if os.environ.get("OPENAI_API_KEY") else scripted_model(connection)
    print(f"Portcullis {url}, connection {connection}, run id {run_id}\n")
    try:
        async with portcullis_workbench(url, tokens, run_id=run_id) as workbench:
            tools = [t["name"] for t in await workbench.list_tools()]
            if tool not in tools:
                fail(
                    f"the gateway offers this agent no {tool} (its tools: {', '.join(tools)}); "
                    "check PORTCULLIS_CONNECTION and the policies"
                )
            agent = AssistantAgent(
                "analyst",
                model_client=model,
                workbench=workbench,
                max_tool_iterations=8,
                system_message=f"You answer questions about the PostgreSQL database `{connection}` with "
                f"the {tool} tool (describe_{connection} lists the tables). Results are masked by the gateway. If a statement is refused, "
                "explain the reason and the hint to the user instead of working around it.",
            )
            async for message in agent.run_stream(task=question):
                if isinstance(message, (BaseAgentEvent, BaseChatMessage)):
                    show(message)
    except (PortcullisError, TokenError) as e:
        fail(str(e))
    print(f"Audit: portcullis audit export --format jsonl | grep {run_id}")


if __name__ == "__main__":
    asyncio.run(main())
