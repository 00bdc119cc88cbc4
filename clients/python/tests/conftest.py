"""Fixtures of the end-to-end tests: they run when the harness (`cargo test -p
portcullis-integration-tests --test autogen`) has started a gateway and set PORTCULLIS_URL,
and skip otherwise (fail, with PORTCULLIS_E2E_REQUIRED=1)."""

from __future__ import annotations

import os

import pytest

from _agent import ENV_KEYS, HARNESS, Gateway, Transcript, environment


@pytest.fixture(scope="session")
def gateway() -> Gateway:
    required = os.environ.get("PORTCULLIS_E2E_REQUIRED") == "1"
    if not os.environ.get("PORTCULLIS_URL"):
        reason = f"end-to-end: PORTCULLIS_URL is not set; run them with `{HARNESS}`"
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    missing = [k for k in ENV_KEYS if not os.environ.get(k)]
    if missing:
        pytest.fail(f"the harness set PORTCULLIS_URL but not {', '.join(missing)}")
    return Gateway.from_env(os.environ)


@pytest.fixture
def transcript(gateway: Gateway, request: pytest.FixtureRequest) -> Transcript:
    """The test's part of the transcript, opened with the environment the agent runs in."""
    t = Transcript(gateway.transcript, request.node.name)
    t.record("environment", environment())
    return t
