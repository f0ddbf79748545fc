"""OAuth2 for vendor connections: consent URLs, code exchange, client credentials, refresh.

:class:`TokenManager` hands out a valid token per (provider, tenant) and refreshes it
exactly once however many threads, tasks and processes ask at the same moment (single
flight in the process, then the store's lock, a re-read, the call, and the rotated refresh
token saved before it is used). :class:`OAuth2Auth` is the ``httpx.Auth`` the drivers use.
No token or client secret ever reaches a log line, a repr or an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.errors import MismatchingStateException, MissingCodeException
from authlib.oauth2.rfc6749.parameters import (
    parse_authorization_code_response,
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from dixis_integrations.auth.tokens import Token, TokenLockTimeout, TokenStore
from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    DixisError,
    FieldError,
    InvalidInput,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ReauthorizationRequired,
    TransientError,
)

__all__ = [
    "AuthorizationRequest",
    "OAuth2Auth",
    "OAuth2Config",
    "TokenManager",
    "aclient_credentials",
    "aexchange_code",
    "authorization_url",
    "client_credentials",
    "code_from_callback",
    "exchange_code",
]

_log = logging.getLogger("dixis_integrations.auth")

# Fields of a token response that are part of the protocol, not vendor extras.
_STANDARD_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "expires_at",
        "scope",
        "x_refresh_token_expires_in",
        "refresh_token_expires_in",
    }
)
# Fields that are credentials or personal data: never copied into ``Token.extra``.
_SENSITIVE_FIELDS = frozenset({"id_token", "client_secret", "code", "password"})

_TokenFlow = Generator[httpx.Request, httpx.Response, Token]


class OAuth2Config(BaseModel):
    """How to talk OAuth2 to one vendor application.

    ``grant_type="client_credentials"`` (e.g. BOX NOW) re-fetches a token when it expires
    instead of refreshing. ``token_request_encoding="json"`` sends the token request as a
    JSON object with the client credentials in it, for vendors that do not take a form.
    ``refresh_margin_seconds`` should stay well below the vendor's access token lifetime,
    or every call would refresh.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    authorize_url: str | None = None
    token_url: str
    scopes: tuple[str, ...] = ()
    use_pkce: bool = True
    redirect_uri: str | None = None
    refresh_margin_seconds: float = Field(default=300, ge=0)
    token_endpoint_auth: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic"  # noqa: S105 - a method name, not a secret
    )
    grant_type: Literal["authorization_code", "client_credentials"] = "authorization_code"
    token_request_encoding: Literal["form", "json"] = "form"  # noqa: S105
    authorize_params: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> OAuth2Config:
        for name in ("token_url", "authorize_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("https://", "http://")):
                raise ValueError(f"{name} must be an http(s) URL")
        if self.grant_type == "client_credentials" and self.client_secret is None:
            raise ValueError("client_credentials needs a client_secret")
        return self


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the person, and what to keep until the vendor redirects back.

    Keep ``state`` and ``code_verifier`` server-side (a session), never in the URL.
    """

    url: str
    state: str
    code_verifier: SecretStr | None

    def __repr__(self) -> str:
        return f"AuthorizationRequest(url={self.url!r}, state=..., code_verifier=...)"


# -- protocol pieces (pure) -----------------------------------------------------------
def authorization_url(
    config: OAuth2Config, state: str | None = None, **params: str
) -> AuthorizationRequest:
    """The consent URL, with a random ``state`` and (``use_pkce``) an S256 code challenge."""
    if not config.authorize_url:
        raise ConfigurationError("is needed for the authorization code flow", key="authorize_url")
    state = state or generate_token(32)
    verifier = generate_token(64) if config.use_pkce else None
    extra: dict[str, str] = {**config.authorize_params, **params}
    if verifier is not None:
        extra["code_challenge"] = create_s256_code_challenge(verifier)
        extra["code_challenge_method"] = "S256"
    url = prepare_grant_uri(
        config.authorize_url,
        config.client_id,
        "code",
        redirect_uri=config.redirect_uri,
        scope=list(config.scopes) or None,
        state=state,
        **extra,
    )
    return AuthorizationRequest(
        url=str(url),
        state=state,
        code_verifier=SecretStr(verifier) if verifier is not None else None,
    )


def code_from_callback(request: AuthorizationRequest, callback_url: str) -> str:
    """The ``code`` of the vendor's redirect, after checking its ``state`` against ours."""
    params = dict(httpx.URL(callback_url).params)
    if "error" in params:
        raise AuthError(
            f"authorization was not granted: {params['error'][:100]}",
            vendor_code=params["error"][:100],
        )
    try:
        parsed = parse_authorization_code_response(callback_url, None)
    except MissingCodeException:
        raise InvalidInput(
            "callback has no code", errors=[FieldError(("code",), "missing")]
        ) from None
    except MismatchingStateException:  # pragma: no cover - we compare the state ourselves
        raise InvalidInput("callback state mismatch") from None
    _check_state(request, parsed.get("state"))
    return str(parsed["code"])


def _check_state(request: AuthorizationRequest, state: str | None) -> None:
    if state is None or not hmac.compare_digest(state.encode(), request.state.encode()):
        raise InvalidInput(
            "the callback does not belong to this authorization request",
            errors=[FieldError(("state",), "does not match the state we sent", "mismatch")],
        )


def _fingerprint(secret: SecretStr | None) -> str | None:
    if secret is None:
        return None
    return hashlib.sha256(secret.get_secret_value().encode()).hexdigest()


def _secrets_of(config: OAuth2Config, *values: str | None) -> list[str]:
    out = [v for v in values if v]
    if config.client_secret is not None:
        out.append(config.client_secret.get_secret_value())
    return out


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:200]


def _token_request(config: OAuth2Config, grant_type: str, **fields: str | None) -> httpx.Request:
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    form = {k: v for k, v in fields.items() if v is not None}
    secret = config.client_secret.get_secret_value() if config.client_secret else None
    if config.token_request_encoding == "json":  # noqa: S105
        # Vendors that take JSON (BOX NOW) want the credentials in the body too.
        payload = {"grant_type": grant_type, **form, "client_id": config.client_id}
        if secret is not None:
            payload["client_secret"] = secret
        headers["Content-Type"] = "application/json"
        content = json.dumps(payload).encode()
        return httpx.Request("POST", config.token_url, content=content, headers=headers)
    if secret is None:
        form["client_id"] = config.client_id
    elif config.token_endpoint_auth == "client_secret_post":  # noqa: S105
        form["client_id"] = config.client_id
        form["client_secret"] = secret
    else:
        # RFC 6749 2.3.1: both parts are form-url-encoded before the Basic encoding.
        pair = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    body = prepare_token_request(grant_type, **form)
    return httpx.Request("POST", config.token_url, content=body.encode(), headers=headers)


def _retry_at(response: httpx.Response, now: datetime) -> datetime | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return now + timedelta(seconds=max(float(value), 0.0))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _token_error(
    config: OAuth2Config, response: httpx.Response, secrets: list[str], now: datetime
) -> ProviderError:
    status = response.status_code
    body = _json(response)
    error = str(body.get("error", ""))[:100] if isinstance(body, dict) else ""
    description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
    request_id = response.headers.get("x-request-id") or response.headers.get("request-id")
    detail = _scrub(f"{error}: {description}" if description else error, secrets)
    where = f"token endpoint answered {status}" + (f" ({detail})" if detail else "")
    common: dict[str, Any] = {
        "vendor": config.provider,
        "request_id": request_id,
        "status_code": status,
        "vendor_code": error or None,
    }
    if status == 429:
        return RateLimited(where, retry_at=_retry_at(response, now), **common)
    if status >= 500:
        return TransientError(where, **common)
    if error == "invalid_grant":
        return ReauthorizationRequired(
            f"the grant was refused; a person must reconnect {config.provider} ({where})",
            **common,
        )
    if 400 <= status < 500:
        return AuthError(where, **common)
    return ProviderError(where, **common)


def _parse_token_response(
    config: OAuth2Config,
    response: httpx.Response,
    previous: Token | None,
    now: datetime,
    secrets: list[str],
) -> Token:
    if response.status_code != 200:
        raise _token_error(config, response, secrets, now)
    data = _json(response)
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise TransientError(
            "token endpoint answered 200 without a usable access_token",
            vendor=config.provider,
            status_code=200,
        )
    expires_at = _after(now, data.get("expires_in"))
    refresh = data.get("refresh_token")
    refresh_expires_at = _after(
        now, data.get("x_refresh_token_expires_in", data.get("refresh_token_expires_in"))
    )
    if isinstance(refresh, str) and refresh:
        refresh_token: SecretStr | None = SecretStr(refresh)
    elif previous is not None:
        # The vendor does not rotate: keep the refresh token we have, and its expiry.
        refresh_token = previous.refresh_token
        refresh_expires_at = refresh_expires_at or previous.refresh_token_expires_at
    else:
        refresh_token = None
    scope = data.get("scope")
    if isinstance(scope, list):
        scope = " ".join(str(s) for s in scope)
    extra = dict(previous.extra) if previous is not None else {}
    for key, value in data.items():
        if key in _STANDARD_FIELDS or key in _SENSITIVE_FIELDS:
            continue
        if isinstance(value, bool):
            extra[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            extra[key] = str(value)
    token_type = str(data.get("token_type") or "Bearer")
    return Token(
        access_token=SecretStr(data["access_token"]),
        refresh_token=refresh_token,
        token_type="Bearer" if token_type.lower() == "bearer" else token_type,
        expires_at=expires_at,
        scope=str(scope) if scope else (previous.scope if previous else None),
        extra=extra,
        refresh_token_expires_at=refresh_expires_at,
        issued_at=now,
    )


def _after(now: datetime, seconds: Any) -> datetime | None:
    if seconds is None or isinstance(seconds, bool):
        return None
    try:
        return now + timedelta(seconds=float(seconds))
    except (TypeError, ValueError):
        return None


# -- flows: generators of requests, run by a sync or an async driver -------------------
def _code_flow(
    config: OAuth2Config, code: str, request: AuthorizationRequest, now: Callable[[], datetime]
) -> _TokenFlow:
    verifier = request.code_verifier.get_secret_value() if request.code_verifier else None
    sent_at = now()  # expiries count from before the request: never later than the vendor's
    response = yield _token_request(
        config,
        "authorization_code",
        code=code,
        redirect_uri=config.redirect_uri,
        code_verifier=verifier,
    )
    return _parse_token_response(config, response, None, sent_at, _secrets_of(config, code))


def _client_credentials_flow(config: OAuth2Config, now: Callable[[], datetime]) -> _TokenFlow:
    scope = " ".join(config.scopes) or None
    sent_at = now()
    response = yield _token_request(config, "client_credentials", scope=scope)
    return _parse_token_response(config, response, None, sent_at, _secrets_of(config))


def _refresh_flow(config: OAuth2Config, token: Token, now: Callable[[], datetime]) -> _TokenFlow:
    assert token.refresh_token is not None
    refresh = token.refresh_token.get_secret_value()
    sent_at = now()
    response = yield _token_request(config, "refresh_token", refresh_token=refresh)
    secrets = _secrets_of(config, refresh, token.access_token.get_secret_value())
    return _parse_token_response(config, response, token, sent_at, secrets)


def _transport_error(config: OAuth2Config, exc: httpx.TransportError) -> ProviderError:
    # httpx messages can quote the URL; the type name is enough and never secret.
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(
            f"token endpoint timed out ({type(exc).__name__})", vendor=config.provider
        )
    return TransientError(
        f"token endpoint unreachable ({type(exc).__name__})", vendor=config.provider
    )


def _drive(config: OAuth2Config, flow: _TokenFlow, client: httpx.Client) -> Token:
    request = next(flow)
    while True:
        try:
            response = client.send(request)
            response.read()
        except httpx.TransportError as exc:
            raise _transport_error(config, exc) from None
        try:
            request = flow.send(response)
        except StopIteration as done:
            result: Token = done.value
            return result


async def _adrive(config: OAuth2Config, flow: _TokenFlow, client: httpx.AsyncClient) -> Token:
    request = next(flow)
    while True:
        try:
            response = await client.send(request)
            await response.aread()
        except httpx.TransportError as exc:
            raise _transport_error(config, exc) from None
        try:
            request = flow.send(response)
        except StopIteration as done:
            result: Token = done.value
            return result


def _utcnow() -> datetime:
    return datetime.now(UTC)


def exchange_code(
    config: OAuth2Config,
    code: str,
    request: AuthorizationRequest,
    client: httpx.Client,
    *,
    state: str | None = None,
) -> Token:
    """Trade the authorization ``code`` for a token (sending the PKCE ``code_verifier``).

    Pass the callback's ``state`` to have it checked here, or use :func:`code_from_callback`.
    """
    if state is not None:
        _check_state(request, state)
    return _drive(config, _code_flow(config, code, request, _utcnow), client)


async def aexchange_code(
    config: OAuth2Config,
    code: str,
    request: AuthorizationRequest,
    client: httpx.AsyncClient,
    *,
    state: str | None = None,
) -> Token:
    """Async twin of :func:`exchange_code`."""
    if state is not None:
        _check_state(request, state)
    return await _adrive(config, _code_flow(config, code, request, _utcnow), client)


def client_credentials(config: OAuth2Config, client: httpx.Client) -> Token:
    """A token for the application itself (``grant_type=client_credentials``)."""
    return _drive(config, _client_credentials_flow(config, _utcnow), client)


async def aclient_credentials(config: OAuth2Config, client: httpx.AsyncClient) -> Token:
    """Async twin of :func:`client_credentials`."""
    return await _adrive(config, _client_credentials_flow(config, _utcnow), client)


# -- the token manager -----------------------------------------------------------------
_KEY_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_KEY_LOCKS_GUARD = threading.Lock()


def _key_lock(provider: str, tenant: str) -> threading.Lock:
    """The process-wide single-flight lock of one (provider, tenant)."""
    with _KEY_LOCKS_GUARD:
        return _KEY_LOCKS.setdefault((provider, tenant), threading.Lock())


def _reset_key_locks_after_fork() -> None:
    # A forked worker (Celery prefork, gunicorn) must not inherit a lock some other
    # thread of its parent held at fork time: nobody would ever release it.
    global _KEY_LOCKS_GUARD
    _KEY_LOCKS_GUARD = threading.Lock()
    _KEY_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_key_locks_after_fork)


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs), made once per process: loading the
    CA bundle costs about 20 ms of CPU, which a fresh client per token request paid."""
    return httpx.create_ssl_context()


def _default_client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(30.0), verify=_tls())


def _default_async_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0), verify=_tls())


class TokenManager:
    """A valid token for one (provider, tenant), refreshed exactly once when it must be.

    ``token()`` returns the cached or stored token while it is outside the refresh margin.
    Otherwise one thread (or task) of the process takes the (provider, tenant) flight,
    then ``store.lock()`` across processes, re-reads the store (another process may have
    refreshed: then that token is used), calls the token endpoint, saves the rotated
    refresh token, and only then returns. Callers that waited get the saved token, or the
    error of that refresh if it failed (a failing vendor is called once, not once each).

    After ``invalid_grant`` the manager remembers the dead refresh token and fails fast
    with :class:`ReauthorizationRequired` until a new grant is saved to the store.
    ``client_factory`` / ``async_client_factory`` make a fresh client for each token
    request; the manager closes it. Never pass a client that carries :class:`OAuth2Auth`.
    """

    def __init__(
        self,
        config: OAuth2Config,
        tenant: str,
        store: TokenStore,
        client_factory: Callable[[], httpx.Client] | None = None,
        *,
        async_client_factory: Callable[[], httpx.AsyncClient] | None = None,
        lock_timeout: float = 30.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.tenant = tenant
        self.store = store
        self._client_factory = client_factory or _default_client
        self._async_client_factory = async_client_factory or _default_async_client
        self.lock_timeout = lock_timeout
        self._now = clock or _utcnow
        self._cached: Token | None = None
        self._dead_refresh: str | None = None
        self._flights = 0
        self._flight_error: DixisError | None = None
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._async_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenManager(provider={self.config.provider!r}, tenant={self.tenant!r})"

    @property
    def _key(self) -> tuple[str, str]:
        return (self.config.provider, self.tenant)

    def _fresh(self, token: Token, rejected: Token | None = None) -> bool:
        if rejected is not None and hmac.compare_digest(
            token.access_token.get_secret_value().encode(),
            rejected.access_token.get_secret_value().encode(),
        ):
            return False
        margin = self.config.refresh_margin_seconds
        lifetime = token.lifetime()
        if lifetime is not None:
            # A token that lives less than twice the margin would be "expiring" as soon as
            # it is issued, and every call would refresh: renew it at half-life instead.
            margin = min(margin, lifetime / 2)
        return not token.expires_within(margin, self._now())

    def save(self, token: Token) -> None:
        """Store a new grant (after :func:`exchange_code`); clears a remembered failure."""
        self.store.save(*self._key, token)
        self._cached = token
        self._dead_refresh = None

    # -- decisions shared by both drivers -----------------------------------------------
    def _plan(
        self, current: Token | None, rejected: Token | None, force: bool
    ) -> Token | _TokenFlow:
        """Under the locks: the token to use as it is, or the flow that renews it."""
        provider, tenant = self._key
        if current is not None and not force and self._fresh(current):
            return current
        if (
            current is not None
            and force
            and rejected is not None
            and self._fresh(current, rejected)
        ):
            _log.debug("token of %s/%s was renewed by another worker; using it", *self._key)
            return current
        if self.config.grant_type == "client_credentials":
            _log.debug("fetching a client-credentials token for %s/%s", provider, tenant)
            return _client_credentials_flow(self.config, self._now)
        if current is None:
            raise ReauthorizationRequired(
                f"no token stored for {provider}/{tenant}: connect the account first",
                vendor=provider,
            )
        if current.refresh_token is None:
            if not force and not current.expires_within(0, self._now()):
                return current  # inside the margin but still valid, and nothing to renew with
            raise ReauthorizationRequired(
                f"the token of {provider}/{tenant} expired and there is no refresh token",
                vendor=provider,
            )
        if current.refresh_token_expired(self._now()):
            raise ReauthorizationRequired(
                f"the refresh token of {provider}/{tenant} has expired", vendor=provider
            )
        if self._dead_refresh is not None and self._dead_refresh == _fingerprint(
            current.refresh_token
        ):
            raise ReauthorizationRequired(
                f"the grant of {provider}/{tenant} was refused before; a person must reconnect",
                vendor=provider,
            )
        _log.debug("refreshing the token of %s/%s", provider, tenant)
        return _refresh_flow(self.config, current, self._now)

    def _note_failure(self, current: Token | None, exc: DixisError) -> None:
        self._flight_error = exc
        if (
            current is not None
            and isinstance(exc, ReauthorizationRequired)
            and exc.vendor_code == "invalid_grant"
        ):
            self._dead_refresh = _fingerprint(current.refresh_token)
            _log.warning(
                "refresh of %s/%s refused (invalid_grant): reauthorization required",
                *self._key,
            )

    def _enter_locks(self) -> ExitStack:
        """Take the process flight lock, then the store's cross-process lock."""
        stack = ExitStack()
        key_lock = _key_lock(*self._key)
        if not key_lock.acquire(timeout=max(self.lock_timeout, 0.0)):
            raise TokenLockTimeout(
                f"token flight for {self.config.provider}/{self.tenant} not acquired within "
                f"{self.lock_timeout:g}s",
                vendor=self.config.provider,
            )
        stack.callback(key_lock.release)
        try:
            stack.enter_context(self.store.lock(*self._key, self.lock_timeout))
        except BaseException:
            stack.close()
            raise
        return stack

    # -- sync ------------------------------------------------------------------------
    def token(self) -> Token:
        """A token that is valid for at least the refresh margin (refreshing if needed)."""
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached
        stored = self.store.get(*self._key)
        if stored is not None and self._fresh(stored):
            self._cached = stored
            return stored
        return self._renew(rejected=None, force=False)

    def refresh(self, rejected: Token | None = None) -> Token:
        """Renew now (after a 401). With ``rejected``, a token another worker already
        renewed since is used instead of calling the vendor again."""
        return self._renew(rejected=rejected, force=True)

    def _shared_failure(self, seen: int) -> None:
        """A caller that waited while another one's flight failed gets that failure too,
        instead of calling a failing vendor once more per waiting caller.

        ``seen`` is the number of finished flights when the caller started to wait.
        """
        if self._flights != seen and self._flight_error is not None:
            raise self._flight_error

    def _renew(self, *, rejected: Token | None, force: bool) -> Token:
        seen = self._flights
        with self._enter_locks():
            self._shared_failure(seen)
            current = self.store.get(*self._key)
            plan = self._plan(current, rejected, force)
            if isinstance(plan, Token):
                self._cached = plan
                return plan
            try:
                with self._client_factory() as client:
                    new = _drive(self.config, plan, client)
            except DixisError as exc:
                self._note_failure(current, exc)
                raise
            finally:
                self._flights += 1
            self._flight_error = None
            self.store.save(*self._key, new)
            self._cached = new
            return new

    # -- async -----------------------------------------------------------------------
    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._async_guard:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = asyncio.Lock()
            return lock

    async def atoken(self) -> Token:
        """Async twin of :meth:`token`; store calls run in a worker thread."""
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached
        stored = await asyncio.to_thread(self.store.get, *self._key)
        if stored is not None and self._fresh(stored):
            self._cached = stored
            return stored
        return await self._arenew(rejected=None, force=False)

    async def arefresh(self, rejected: Token | None = None) -> Token:
        """Async twin of :meth:`refresh`."""
        return await self._arenew(rejected=rejected, force=True)

    async def _arenew(self, *, rejected: Token | None, force: bool) -> Token:
        seen = self._flights
        async with self._async_lock():
            # Tasks of this loop queue on the asyncio lock; the blocking locks are taken
            # in a worker thread. If we are cancelled meanwhile, release them once taken.
            pending = asyncio.ensure_future(asyncio.to_thread(self._enter_locks))
            try:
                stack = await asyncio.shield(pending)
            except asyncio.CancelledError:
                pending.add_done_callback(_close_when_done)
                raise
            try:
                self._shared_failure(seen)
                current = await asyncio.to_thread(self.store.get, *self._key)
                plan = self._plan(current, rejected, force)
                if isinstance(plan, Token):
                    self._cached = plan
                    return plan
                try:
                    async with self._async_client_factory() as client:
                        new = await _adrive(self.config, plan, client)
                except DixisError as exc:
                    self._note_failure(current, exc)
                    raise
                finally:
                    self._flights += 1
                self._flight_error = None
                await asyncio.to_thread(self.store.save, *self._key, new)
                self._cached = new
                return new
            finally:
                await asyncio.to_thread(stack.close)


def _close_when_done(future: asyncio.Future[ExitStack]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


# -- httpx.Auth ------------------------------------------------------------------------
def _authorize(request: httpx.Request, token: Token) -> None:
    request.headers["Authorization"] = f"{token.token_type} {token.access_token.get_secret_value()}"


class OAuth2Auth(httpx.Auth):
    """Bearer auth from a :class:`TokenManager`; on a 401, one forced refresh and one retry."""

    requires_request_body = True  # the retry re-sends the body

    def __init__(self, manager: TokenManager) -> None:
        self.manager = manager

    def __repr__(self) -> str:
        return f"OAuth2Auth({self.manager!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.manager.token()
        _authorize(request, token)
        response = yield request
        if response.status_code == 401:
            _log.debug("401 from %s: renewing the token once", request.url.host)
            _authorize(request, self.manager.refresh(rejected=token))
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.manager.atoken()
        _authorize(request, token)
        response = yield request
        if response.status_code == 401:
            _log.debug("401 from %s: renewing the token once", request.url.host)
            _authorize(request, await self.manager.arefresh(rejected=token))
            yield request
