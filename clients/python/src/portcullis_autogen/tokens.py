"""Where an agent's bearer token comes from: OAuth2 client credentials, a token file (such as a
Kubernetes projected service-account token) or a fixed string.

Every provider hands out a token that is valid now, caches it, and gets a new one shortly
before it expires (60 seconds or a tenth of its lifetime, whichever is smaller). Providers are
safe to share between threads and asyncio tasks. No provider ever logs a token or a secret,
and their ``repr`` shows neither.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

Clock = Callable[[], float]

#: A token is renewed this many seconds before it expires, at most...
REFRESH_MARGIN_SECONDS = 60.0
#: ...and at most this fraction of its lifetime (so a 5-minute token is renewed 30 s early).
REFRESH_MARGIN_FRACTION = 0.1


class TokenError(RuntimeError):
    """A token could not be obtained. The message names the source, never a token or secret."""


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT as Unix time, read *without* verifying the signature (the
    gateway verifies); ``None`` when the token is not a JWT with a numeric ``exp``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return float(exp)


def refresh_at(now: float, expires_at: float | None) -> float:
    """When a token obtained at ``now`` that expires at ``expires_at`` should be renewed."""
    if expires_at is None:
        return float("inf")
    lifetime = max(expires_at - now, 0.0)
    return expires_at - min(REFRESH_MARGIN_SECONDS, REFRESH_MARGIN_FRACTION * lifetime)


class TokenProvider(abc.ABC):
    """The one interface: ``token()`` (or ``await atoken()``) returns a bearer token that is
    valid now, fetching or re-reading it when the cached one is about to expire."""

    @abc.abstractmethod
    def token(self) -> str:
        """A token valid now. May block on I/O when the cached one is due for renewal."""

    async def atoken(self) -> str:
        """``token()`` for async code: renewal runs in a worker thread, never on the loop."""
        return await asyncio.to_thread(self.token)

    @property
    def expires_at(self) -> float | None:
        """When the last token handed out expires (Unix time), if known."""
        return None

    def invalidate(self) -> None:  # noqa: B027 (a no-op for providers that cache nothing)
        """Forget the cached token (the gateway refused it): the next call gets a new one."""


class StaticToken(TokenProvider):
    """A fixed token, e.g. one minted with ``portcullis token mint``. It is never renewed."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if not token:
            raise TokenError("the static token is empty")
        self._token = token
        self._expires_at = jwt_expiry(token)

    def token(self) -> str:
        return self._token

    async def atoken(self) -> str:
        return self._token

    @property
    def expires_at(self) -> float | None:
        return self._expires_at

    def __repr__(self) -> str:
        return "StaticToken(token='***')"


class _Cached(NamedTuple):
    token: str
    expires_at: float | None
    refresh_at: float


class ClientCredentials(TokenProvider):
    """OAuth2 client credentials grant (RFC 6749 §4.4) against an OIDC token endpoint, with
    the client authenticated by HTTP Basic (``client_secret_basic``). The token is cached
    and fetched again shortly before ``expires_in`` (or the JWT's ``exp``) runs out."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        audience: str | None = None,
        resource: str | None = None,
        timeout: float = 10.0,
        verify: ssl.SSLContext | bool = True,
        clock: Clock = time.time,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.audience = audience
        self.resource = resource
        self._timeout = timeout
        self._verify = verify
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: _Cached | None = None

    def _fresh(self) -> str | None:
        cached = self._cached
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.token
        return None

    def token(self) -> str:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        # One fetch at a time: whoever waited on the lock finds the new token cached.
        with self._lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            now = self._clock()
            token, expires_in = self._fetch()
            expires_at = now + expires_in if expires_in is not None else jwt_expiry(token)
            self._cached = _Cached(token, expires_at, refresh_at(now, expires_at))
            return token

    async def atoken(self) -> str:
        fresh = self._fresh()
        return fresh if fresh is not None else await asyncio.to_thread(self.token)

    @property
    def expires_at(self) -> float | None:
        cached = self._cached
        return cached.expires_at if cached is not None else None

    def invalidate(self) -> None:
        self._cached = None

    def _form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        for key, value in (("scope", self.scope), ("audience", self.audience), ("resource", self.resource)):
            if value:
                form[key] = value
        return form

    def _fetch(self) -> tuple[str, float | None]:
        # RFC 6749 §2.3.1: the id and secret are form-encoded before they go into Basic.
        auth = httpx.BasicAuth(quote(self.client_id, safe=""), quote(self._client_secret, safe=""))
        try:
            with httpx.Client(timeout=self._timeout, verify=self._verify) as http:
                reply = http.post(self.token_url, data=self._form(), auth=auth, headers={"accept": "application/json"})
        except httpx.HTTPError as e:
            raise TokenError(f"cannot reach the token endpoint {self.token_url}: {e}") from None
        body = _json_object(reply)
        if reply.status_code != 200:
            reason = ": ".join(str(body[k]) for k in ("error", "error_description") if k in body)
            raise TokenError(
                f"the token endpoint {self.token_url} refused client {self.client_id!r} "
                f"(HTTP {reply.status_code}{': ' + reason if reason else ''})"
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenError(f"the token endpoint {self.token_url} answered without an access_token")
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise TokenError(f"the token endpoint {self.token_url} issued a {token_type!r} token, not Bearer")
        expires_in = body.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            return token, float(expires_in)
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            return token, float(expires_in)
        return token, None

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"client_secret='***', scope={self.scope!r})"
        )


class _FileState(NamedTuple):
    stat: tuple[int, int, int]
    token: str
    refresh_at: float


class TokenFile(TokenProvider):
    """A token kept in a file by someone else, such as a Kubernetes projected service-account
    token that the kubelet rotates. The file is read again when it changes (inode, size or
    modification time: an atomic symlink swap counts) or when its token is due for renewal."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: _FileState | None = None

    def token(self) -> str:
        with self._lock:
            try:
                st = os.stat(self.path)
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
                state = self._state
                if state is not None and state.stat == key and self._clock() < state.refresh_at:
                    return state.token
                token = self.path.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise TokenError(f"cannot read the token file {self.path}: {e.strerror}") from None
            if not token:
                raise TokenError(f"the token file {self.path} is empty")
            self._state = _FileState(key, token, refresh_at(self._clock(), jwt_expiry(token)))
            return token

    @property
    def expires_at(self) -> float | None:
        state = self._state
        return jwt_expiry(state.token) if state is not None else None

    def invalidate(self) -> None:
        self._state = None

    def __repr__(self) -> str:
        return f"TokenFile(path={str(self.path)!r})"


def as_token_provider(tokens: TokenProvider | str) -> TokenProvider:
    """A provider as is; a string as a :class:`StaticToken`."""
    return StaticToken(tokens) if isinstance(tokens, str) else tokens


def token_provider_from_env(env: Mapping[str, str] | None = None) -> TokenProvider:
    """The provider the environment describes, first match wins:

    - ``PORTCULLIS_TOKEN``: a static token;
    - ``PORTCULLIS_TOKEN_FILE``: a token file;
    - ``PORTCULLIS_TOKEN_URL``, ``PORTCULLIS_CLIENT_ID``, ``PORTCULLIS_CLIENT_SECRET``
      (and optionally ``PORTCULLIS_SCOPE``, ``PORTCULLIS_AUDIENCE``, ``PORTCULLIS_RESOURCE``):
      client credentials.
    """
    env = os.environ if env is None else env
    if env.get("PORTCULLIS_TOKEN"):
        return StaticToken(env["PORTCULLIS_TOKEN"])
    if env.get("PORTCULLIS_TOKEN_FILE"):
        return TokenFile(env["PORTCULLIS_TOKEN_FILE"])
    keys = ("PORTCULLIS_TOKEN_URL", "PORTCULLIS_CLIENT_ID", "PORTCULLIS_CLIENT_SECRET")
    if all(env.get(k) for k in keys):
        return ClientCredentials(
            env["PORTCULLIS_TOKEN_URL"],
            env["PORTCULLIS_CLIENT_ID"],
            env["PORTCULLIS_CLIENT_SECRET"],
            scope=env.get("PORTCULLIS_SCOPE") or None,
            audience=env.get("PORTCULLIS_AUDIENCE") or None,
            resource=env.get("PORTCULLIS_RESOURCE") or None,
        )
    missing = ", ".join(k for k in keys if not env.get(k))
    raise TokenError(
        "no token configured: set PORTCULLIS_TOKEN, PORTCULLIS_TOKEN_FILE, or "
        f"PORTCULLIS_TOKEN_URL + PORTCULLIS_CLIENT_ID + PORTCULLIS_CLIENT_SECRET (missing: {missing})"
    )


def _json_object(reply: httpx.Response) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
