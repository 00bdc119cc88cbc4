"""What the end-to-end tests share: the gateway the harness started, a transcript of all the
agent could see, and a scripted model that records what it is shown."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.replay import ReplayChatCompletionClient
from pydantic import BaseModel

from portcullis_autogen import ClientCredentials

HARNESS = "cargo test -p portcullis-integration-tests --test autogen"
ENV_KEYS = (
    "PORTCULLIS_URL",
    "PORTCULLIS_TOKEN_URL",
    "PORTCULLIS_CLIENT_ID",
    "PORTCULLIS_CLIENT_SECRET",
    "PORTCULLIS_RUN_PREFIX",
    "PORTCULLIS_TRANSCRIPT",
)


@dataclass(frozen=True)
class Gateway:
    """The gateway (and identity provider) the harness started, from the environment."""

    url: str
    token_url: str
    client_id: str
    client_secret: str
    run_prefix: str
    transcript: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Gateway:
        return cls(
            url=env["PORTCULLIS_URL"],
            token_url=env["PORTCULLIS_TOKEN_URL"],
            client_id=env["PORTCULLIS_CLIENT_ID"],
            client_secret=env["PORTCULLIS_CLIENT_SECRET"],
            run_prefix=env["PORTCULLIS_RUN_PREFIX"],
            transcript=Path(env["PORTCULLIS_TRANSCRIPT"]),
        )

    def run_id(self, test: str) -> str:
        return f"{self.run_prefix}-{test}"

    def tokens(self) -> ClientCredentials:
        return ClientCredentials(self.token_url, self.client_id, self.client_secret)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclass
class Transcript:
    """Appends JSON lines ``{test, kind, data}`` to the harness's transcript file."""

    path: Path
    test: str

    def record(self, kind: str, data: Any) -> None:
        line = json.dumps({"test": self.test, "kind": kind, "data": _jsonable(data)}, ensure_ascii=False, default=str)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


def call(name: str, arguments: Mapping[str, Any], call_id: str) -> CreateResult:
    """A model turn that asks for one tool call."""
    return CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id=call_id, name=name, arguments=json.dumps(arguments))],
        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
        cached=False,
    )


Step = str | CreateResult | Callable[[Sequence[LLMMessage]], str | CreateResult]


class ScriptedModel(ReplayChatCompletionClient):
    """A ``ReplayChatCompletionClient`` whose steps may be functions of what the model is
    shown (so a step can use a review id the gateway made up), and which keeps every list of
    messages it was given (``seen``), also in the transcript."""

    def __init__(self, steps: Sequence[Step], transcript: Transcript | None = None) -> None:
        info = ModelInfo(
            vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN, structured_output=False
        )
        super().__init__([], model_info=info)
        self._steps = list(steps)
        self._transcript = transcript
        self.seen: list[list[LLMMessage]] = []

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        self.seen.append(list(messages))
        self._record("model_input", list(messages))
        if not self._steps:
            raise AssertionError("the agent asked the model for more turns than the script has")
        step = self._steps.pop(0)
        self.chat_completions.append(step(messages) if callable(step) else step)
        result = await super().create(
            messages,
            tools=tools,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        self._record("model_output", result)
        return result

    def _record(self, kind: str, data: Any) -> None:
        if self._transcript is not None:
            self._transcript.record(kind, data)


def tool_result(messages: Sequence[LLMMessage], call_id: str) -> FunctionExecutionResult:
    """The result of tool call ``call_id`` among the messages a model was shown."""
    for message in reversed(messages):
        if isinstance(message, FunctionExecutionResultMessage):
            for result in message.content:
                if result.call_id == call_id:
                    return result
    raise AssertionError(f"the model never saw the result of {call_id}")


def answer_json(result: FunctionExecutionResult) -> dict[str, Any]:
    """The gateway's answer in a tool result: the JSON line the client tools add."""
    for line in reversed(result.content.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise AssertionError(f"no JSON answer in {result.content!r}")


def review_id(result: FunctionExecutionResult) -> str:
    rid = answer_json(result).get("review_id")
    if isinstance(rid, str):
        return rid
    match = re.search(r"rv_[A-Za-z0-9_-]+", result.content)
    assert match, f"no review id in {result.content!r}"
    return match.group(0)


def environment() -> dict[str, str]:
    return dict(os.environ)
