"""Token providers: what they send, when they renew, that they never show a secret."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from pathlib import Path

import httpx
import pytest

from _servers import make_jwt, token_endpoint
from portcullis_autogen import (
    BearerAuth,
    ClientCredentials,
    StaticToken,
    TokenError,
    TokenFile,
    jwt_expiry,
    token_provider_from_env,
)

SECRET = "s3cret/with:odd chars"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_client_credentials_sends_basic_auth_and_the_grant() -> None:
    with token_endpoint() as idp:
        tokens = ClientCredentials(idp.url, "agent-1", SECRET, scope="read", resource="urn:portcullis")
        assert tokens.token() == "tok-1"
    (request,) = idp.requests
    scheme, _, encoded = request["headers"]["authorization"].partition(" ")
    assert scheme == "Basic"
    # RFC 6749 §2.3.1: form-encoded before Basic, so ':' in the secret cannot split it.
    assert base64.b64decode(encoded).decode() == "agent-1:s3cret%2Fwith%3Aodd%20chars"
    assert request["form"] == {"grant_type": "client_credentials", "scope": "read", "resource": "urn:portcullis"}


@pytest.mark.parametrize(
    ("expires_in", "renew_after"),
    [(600, 540), (100, 90)],  # 60 s early, or a tenth of the lifetime when that is less
)
def test_client_credentials_caches_and_renews_before_expiry(expires_in: int, renew_after: int) -> None:
    clock = Clock()
    reply = {"access_token": "tok-{n}", "token_type": "bearer", "expires_in": expires_in}
    with token_endpoint(reply=reply) as idp:
        tokens = ClientCredentials(idp.url, "agent-1", SECRET, clock=clock)
        start = clock.now
        assert tokens.token() == "tok-1"
        assert tokens.expires_at == start + expires_in
        clock.now = start + renew_after - 1
        assert tokens.token() == "tok-1"
        assert asyncio.run(tokens.atoken()) == "tok-1"
        clock.now = start + renew_after + 1
        assert tokens.token() == "tok-2"
        assert len(idp.requests) == 2


def test_client_credentials_reads_the_jwt_exp_without_expires_in() -> None:
    clock = Clock()
    jwt = make_jwt(exp=clock.now + 300)
    with token_endpoint(reply={"access_token": jwt, "token_type": "Bearer"}) as idp:
        tokens = ClientCredentials(idp.url, "agent-1", SECRET, clock=clock)
        assert tokens.token() == jwt
        assert tokens.expires_at == clock.now + 300
        clock.now += 269
        tokens.token()
        assert len(idp.requests) == 1
        clock.now += 2
        tokens.token()
        assert len(idp.requests) == 2


def test_threads_and_tasks_share_one_fetch() -> None:
    with token_endpoint(delay=0.3) as idp:
        tokens = ClientCredentials(idp.url, "agent-1", SECRET)
        seen: list[str] = []
        threads = [threading.Thread(target=lambda: seen.append(tokens.token())) for _ in range(8)]
        for t in threads:
            t.start()

        async def many() -> list[str]:
            return list(await asyncio.gather(*(tokens.atoken() for _ in range(8))))

        seen += asyncio.run(many())
        for t in threads:
            t.join()
        assert seen == ["tok-1"] * 16
        assert len(idp.requests) == 1


def test_a_refusal_names_the_error_and_never_the_secret() -> None:
    reply = {"error": "invalid_client", "error_description": "client authentication failed"}
    with token_endpoint(reply=reply, status=401) as idp, pytest.raises(TokenError) as raised:
        ClientCredentials(idp.url, "agent-1", SECRET).token()
    message = str(raised.value)
    assert "invalid_client" in message and "HTTP 401" in message and "agent-1" in message
    assert SECRET not in message and "s3cret" not in repr(raised.value)


def test_an_unreachable_token_endpoint_is_a_token_error() -> None:
    with token_endpoint() as idp:
        url = idp.url
    with pytest.raises(TokenError, match="cannot reach the token endpoint"):
        ClientCredentials(url, "agent-1", SECRET, timeout=2).token()


def test_invalidate_fetches_a_new_token() -> None:
    with token_endpoint() as idp:
        tokens = ClientCredentials(idp.url, "agent-1", SECRET)
        assert tokens.token() == "tok-1"
        tokens.invalidate()
        assert tokens.token() == "tok-2"


def test_reprs_never_show_tokens_or_secrets(tmp_path: Path) -> None:
    jwt = make_jwt(exp=2_000_000_000)
    (tmp_path / "token").write_text(jwt)
    with token_endpoint(reply={"access_token": jwt, "token_type": "Bearer", "expires_in": 600}) as idp:
        cc = ClientCredentials(idp.url, "agent-1", SECRET)
        cc.token()
    token_file = TokenFile(tmp_path / "token")
    token_file.token()
    for p in [cc, StaticToken(jwt), token_file, BearerAuth(cc)]:
        shown = f"{p!r} {p}"
        assert jwt not in shown and SECRET not in shown, shown
        assert "***" in shown or isinstance(p, TokenFile)


def test_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    clock = Clock()
    first, second = make_jwt(exp=clock.now + 3600, n=1), make_jwt(exp=clock.now + 7200, n=2)
    path.write_text(first + "\n")
    tokens = TokenFile(path, clock=clock)
    assert tokens.token() == first
    assert tokens.expires_at == clock.now + 3600
    # The kubelet swaps the file atomically: a new inode, size and mtime.
    fresh = tmp_path / "token.new"
    fresh.write_text(second)
    os.replace(fresh, path)
    assert tokens.token() == second


def test_token_file_is_read_again_when_its_token_is_due(tmp_path: Path) -> None:
    path = tmp_path / "token"
    clock = Clock()
    first, second = make_jwt(exp=clock.now + 600, n=1), make_jwt(exp=clock.now + 600, n=2)
    path.write_text(first)
    stat = path.stat()
    tokens = TokenFile(path, clock=clock)
    assert tokens.token() == first
    # Same inode, size and mtime: unchanged as far as stat can tell, so cached...
    path.write_text(second)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert tokens.token() == first
    # ...until the cached token is within its renewal margin.
    clock.now += 541
    assert tokens.token() == second


def test_token_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot read the token file"):
        TokenFile(tmp_path / "missing").token()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TokenError, match="is empty"):
        TokenFile(tmp_path / "empty").token()


def test_static_token() -> None:
    jwt = make_jwt(exp=1234)
    assert StaticToken(f" {jwt}\n").token() == jwt
    assert StaticToken(jwt).expires_at == 1234
    assert StaticToken("opaque").expires_at is None
    with pytest.raises(TokenError):
        StaticToken(" ")


@pytest.mark.parametrize(
    ("token", "exp"),
    [
        (make_jwt(exp=42), 42.0),
        (make_jwt(exp=42.5), 42.5),
        (make_jwt(exp=True), None),
        (make_jwt(exp="42"), None),
        ("a.b.c", None),
        ("opaque-token", None),
        ("a.!!!.c", None),
    ],
)
def test_jwt_expiry(token: str, exp: float | None) -> None:
    assert jwt_expiry(token) == exp


def test_token_provider_from_env(tmp_path: Path) -> None:
    assert isinstance(token_provider_from_env({"PORTCULLIS_TOKEN": "t"}), StaticToken)
    assert isinstance(token_provider_from_env({"PORTCULLIS_TOKEN_FILE": str(tmp_path)}), TokenFile)
    cc = token_provider_from_env(
        {
            "PORTCULLIS_TOKEN_URL": "http://127.0.0.1:1/token",
            "PORTCULLIS_CLIENT_ID": "agent-1",
            "PORTCULLIS_CLIENT_SECRET": SECRET,
            "PORTCULLIS_SCOPE": "read",
        }
    )
    assert isinstance(cc, ClientCredentials) and cc.scope == "read"
    with pytest.raises(TokenError, match="PORTCULLIS_CLIENT_SECRET"):
        token_provider_from_env({"PORTCULLIS_TOKEN_URL": "u", "PORTCULLIS_CLIENT_ID": "c"})


def test_bearer_auth_sends_a_fresh_token_and_retries_a_401_once() -> None:
    with token_endpoint() as idp:
        tokens = ClientCredentials(idp.url, "agent-1", SECRET)
        seen: list[str] = []

        def gateway(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers["authorization"])
            # The first token was revoked; the second is fine.
            return httpx.Response(401 if seen[-1] == "Bearer tok-1" else 200)

        auth = BearerAuth(tokens, {"x-portcullis-run-id": "run-1"})
        with httpx.Client(transport=httpx.MockTransport(gateway), auth=auth) as http:
            assert http.get("http://gateway/v1/whoami").status_code == 200
        assert seen == ["Bearer tok-1", "Bearer tok-2"]

        # A static token cannot change: a 401 is the answer, without a pointless retry.
        seen.clear()

        async def once() -> int:
            async with httpx.AsyncClient(
                transport=httpx.MockTransport(gateway), auth=BearerAuth(StaticToken("tok-1"))
            ) as http:
                return (await http.get("http://gateway/")).status_code

        assert asyncio.run(once()) == 401
        assert seen == ["Bearer tok-1"]
