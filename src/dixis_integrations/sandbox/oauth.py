"""A real OAuth2 authorization server for the sandboxes, built on authlib's server side.

Authorization code with PKCE (auto-approved: it is a sandbox), refresh tokens that rotate
(a used one is revoked; reusing it is ``invalid_grant``) and client credentials, per RFC 6749
and RFC 7636. Vendor emulators mount it under their own paths and check bearer tokens with
:meth:`OAuthServer.validate_bearer`. It counts token requests by grant type for tests.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7636 import CodeChallenge

from dixis_integrations.sandbox.kit import Emulator, Route, json_response

__all__ = ["OAuthServer", "SandboxClient", "TokenInfo"]

_CODE_LIFETIME = 600.0  # vendor seconds (RFC 6749 4.1.2 recommends at most 10 minutes)
_ALL_GRANTS = ("authorization_code", "refresh_token", "client_credentials")

ExtraFields = Mapping[str, Any] | Callable[[str, str], Mapping[str, Any]]


@dataclass(frozen=True)
class SandboxClient(ClientMixin):  # type: ignore[misc]
    """One registered application: its id, secret (``None`` for a public client), redirects.

    ``scope`` lists the scopes it may ask for (space separated; empty means any).
    ``auth_method``: the one way its secret is accepted at the token endpoint
    (``client_secret_basic`` or ``client_secret_post``, as vendors that document only one
    behave); ``None`` accepts both.
    """

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ("http://127.0.0.1/callback",)
    grant_types: tuple[str, ...] = _ALL_GRANTS
    scope: str = ""
    auth_method: str | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        if not self.scope:
            return scope
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.client_secret is None:
            return False
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client_secret is None:
            return method == "none"
        if self.auth_method is not None:
            return method == self.auth_method
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass(frozen=True)
class TokenInfo:
    """What a valid bearer token stands for."""

    client_id: str
    scope: str
    subject: str | None


@dataclass(frozen=True)
class _User:
    subject: str


@dataclass
class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    user: _User
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class _Issued(TokenMixin):  # type: ignore[misc]
    access_token: str
    refresh_token: str | None
    client: SandboxClient
    scope: str
    user: _User | None
    access_expires: float
    refresh_expires: float | None
    clock: Callable[[], float] = field(repr=False, default=time.monotonic)
    refresh_revoked: bool = False

    def check_client(self, client: SandboxClient) -> bool:
        return client.client_id == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.access_expires - self.clock()))

    def is_expired(self) -> bool:
        return self.clock() >= self.access_expires

    def is_revoked(self) -> bool:
        return self.refresh_revoked

    def get_user(self) -> _User | None:
        return self.user

    def get_client(self) -> SandboxClient:
        return self.client


# -- authlib framework glue over httpx.Request / httpx.Response ------------------------
class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    @property
    def data(self) -> dict[str, str]:
        return {k: v[0] for k, v in self._values.items() if v}

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, self._values)


class _HttpxOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: httpx.Request) -> None:
        url = request.url
        if url.scheme == "http" and url.host not in {"127.0.0.1", "localhost", "::1"}:
            # A sandbox on a made-up host (in-process transport) is as good as TLS.
            url = url.copy_with(scheme="https")
        super().__init__(request.method, str(url), headers=request.headers)
        self._args = parse_qs(request.url.query.decode(), keep_blank_values=True)
        content_type = request.headers.get("content-type", "")
        body = request.content.decode() if "x-www-form-urlencoded" in content_type else ""
        self._form = parse_qs(body, keep_blank_values=True)
        merged: dict[str, list[str]] = {k: list(v) for k, v in self._args.items()}
        for k, v in self._form.items():
            merged.setdefault(k, []).extend(v)
        self.payload = _Payload(merged)

    @property
    def args(self) -> dict[str, str]:
        return {k: v[0] for k, v in self._args.items() if v}

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in self._form.items() if v}


class _AuthServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, emulator: OAuthServer) -> None:
        super().__init__()
        self.emulator = emulator
        self.register_token_generator("default", emulator._generate_token)

    def query_client(self, client_id: str) -> SandboxClient | None:
        return self.emulator.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.emulator._remember(token, request.client, request.user)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _HttpxOAuth2Request(request)

    def create_json_request(self, request: Any) -> Any:  # pragma: no cover - unused
        raise NotImplementedError("the sandbox has no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> httpx.Response:
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        if isinstance(body, dict):
            extra = {k: v for k, v in pairs if k.lower() != "content-type"}
            return json_response(status, body, extra)
        content = body.encode() if isinstance(body, str) else (body or b"")
        return httpx.Response(status, content=content, headers=pairs)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        emulator: OAuthServer = self.server.emulator
        data = request.payload.data
        emulator._codes[code] = _Code(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            user=request.user,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires=emulator.clock.monotonic() + emulator.clock.window(_CODE_LIFETIME),
        )

    def query_authorization_code(self, code: str, client: SandboxClient) -> _Code | None:
        found: _Code | None = self.server.emulator._codes.get(code)
        if found is None or found.client_id != client.client_id:
            return None
        if self.server.emulator.clock.monotonic() >= found.expires:
            return None
        return found

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        self.server.emulator._codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: _Code) -> _User:
        return authorization_code.user


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]

    def issue_token(self, user: _User, refresh_token: _Issued) -> dict[str, Any]:
        self.INCLUDE_NEW_REFRESH_TOKEN = self.server.emulator.rotate_refresh_tokens
        token: dict[str, Any] = super().issue_token(user, refresh_token)
        return token

    def authenticate_refresh_token(self, refresh_token: str) -> _Issued | None:
        found: _Issued | None = self.server.emulator._by_refresh.get(refresh_token)
        if found is None or found.refresh_revoked:
            return None
        now = self.server.emulator.clock.monotonic()
        if found.refresh_expires is not None and now >= found.refresh_expires:
            return None
        return found

    def authenticate_user(self, refresh_token: _Issued) -> _User:
        return refresh_token.user or _User(refresh_token.client.client_id)

    def revoke_old_credential(self, refresh_token: _Issued) -> None:
        if self.server.emulator.rotate_refresh_tokens:
            refresh_token.refresh_revoked = True


class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]


# -- the emulator --------------------------------------------------------------------
class OAuthServer(Emulator):
    """An OAuth2 authorization server with its state in memory.

    Lifetimes are in the vendor's seconds and pass at the emulator clock's scale.
    ``extra_token_fields`` are added to every token response (a mapping, or a function of
    ``(client_id, grant_type)``), e.g. ``x_refresh_token_expires_in`` or ``instance_url``;
    ``redirect_params`` are added to the redirect back to the client after consent (Intuit
    adds the company's ``realmId``).
    Counters of token requests that reached the endpoint: :attr:`token_requests` by
    grant type, and :attr:`refresh_count` and friends.
    """

    name = "oauth"

    def __init__(
        self,
        *,
        clients: Iterable[SandboxClient] | None = None,
        access_token_lifetime: float = 3600.0,
        refresh_token_lifetime: float | None = 100 * 86400.0,
        rotate_refresh_tokens: bool = True,
        require_pkce: bool = False,
        token_path: str = "/oauth2/token",  # noqa: S107 - a path
        authorize_path: str = "/oauth2/authorize",
        userinfo_path: str = "/oauth2/userinfo",
        extra_token_fields: ExtraFields | None = None,
        redirect_params: Mapping[str, str] | None = None,
        base_url: str | None = None,
        subject: str = "sandbox-user",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if clients is None:
            clients = [
                SandboxClient(client_id="sandbox-client", client_secret=secrets.token_urlsafe(24))
            ]
        self.clients: dict[str, SandboxClient] = {c.client_id: c for c in clients}
        self.access_token_lifetime = access_token_lifetime
        self.refresh_token_lifetime = refresh_token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.require_pkce = require_pkce
        self.token_path = token_path
        self.authorize_path = authorize_path
        self.userinfo_path = userinfo_path
        self.extra_token_fields = extra_token_fields
        self.redirect_params = dict(redirect_params or {})
        if base_url is not None:
            self.bind(base_url)
        self.subject = subject
        self.token_requests: Counter[str] = Counter()
        self._codes: dict[str, _Code] = {}
        self._by_access: dict[str, _Issued] = {}
        self._by_refresh: dict[str, _Issued] = {}
        self._server = _AuthServer(self)
        self._server.register_grant(_CodeGrant, [CodeChallenge(required=True)])
        self._server.register_grant(_RefreshGrant)
        self._server.register_grant(_ClientCredentialsGrant)
        own = (
            Route("POST", re.compile(re.escape(token_path) + r"\Z"), "_token_endpoint"),
            Route("GET", re.compile(re.escape(authorize_path) + r"\Z"), "_authorize_endpoint"),
            Route("GET", re.compile(re.escape(userinfo_path) + r"\Z"), "_userinfo_endpoint"),
        )
        # Paths are per instance (vendors mount this server under their own paths).
        setattr(self, "_routes", own + type(self)._routes)  # noqa: B010

    # -- counters ------------------------------------------------------------------
    @property
    def refresh_count(self) -> int:
        """Token requests with ``grant_type=refresh_token``."""
        return self.token_requests["refresh_token"]

    @property
    def authorization_code_count(self) -> int:
        """Token requests with ``grant_type=authorization_code``."""
        return self.token_requests["authorization_code"]

    @property
    def client_credentials_count(self) -> int:
        """Token requests with ``grant_type=client_credentials``."""
        return self.token_requests["client_credentials"]

    # -- endpoints ---------------------------------------------------------------------
    def _token_endpoint(self, request: httpx.Request) -> httpx.Response:
        grant_type = parse_qs(request.content.decode(errors="replace")).get("grant_type", [""])
        self.token_requests[grant_type[0]] += 1
        response: httpx.Response = self._server.create_token_response(request)
        return response

    def _authorize_endpoint(self, request: httpx.Request) -> httpx.Response:
        oauth_request = self._server.create_oauth2_request(request)
        try:
            grant = self._server.get_consent_grant(oauth_request, end_user=_User(self.subject))
            if self.require_pkce and not oauth_request.payload.data.get("code_challenge"):
                raise InvalidRequestError(
                    "this server requires PKCE ('code_challenge')",
                    redirect_uri=grant.redirect_uri or oauth_request.payload.redirect_uri,
                    state=oauth_request.payload.state,
                )
        except OAuth2Error as error:
            failed: httpx.Response = self._server.handle_error_response(oauth_request, error)
            return failed
        # A sandbox: the resource owner always says yes.
        response: httpx.Response = self._server.create_authorization_response(
            oauth_request, grant_user=_User(self.subject), grant=grant
        )
        location = response.headers.get("location")
        if self.redirect_params and location:
            target = httpx.URL(location)
            response.headers["location"] = str(target.copy_merge_params(self.redirect_params))
        return response

    def _userinfo_endpoint(self, request: httpx.Request) -> httpx.Response:
        info = self.validate_bearer(request)
        if info is None:
            return json_response(
                401,
                {"error": "invalid_token"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return json_response(
            200, {"sub": info.subject, "client_id": info.client_id, "scope": info.scope}
        )

    # -- token generation and storage (called by authlib) -------------------------------
    def _extras(self, client_id: str, grant_type: str) -> dict[str, Any]:
        extra = self.extra_token_fields
        if extra is None:
            return {}
        if callable(extra):
            return dict(extra(client_id, grant_type))
        return dict(extra)

    def _generate_token(
        self,
        grant_type: str,
        client: SandboxClient,
        user: _User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": secrets.token_urlsafe(32),
            "expires_in": int(expires_in or self.access_token_lifetime),
        }
        if include_refresh_token and client.check_grant_type("refresh_token"):
            token["refresh_token"] = secrets.token_urlsafe(40)
        if scope:
            token["scope"] = scope
        token.update(self._extras(client.client_id, grant_type))
        return token

    def _remember(self, token: Mapping[str, Any], client: SandboxClient, user: Any) -> None:
        now = self.clock.monotonic()
        lifetime = float(token.get("expires_in") or self.access_token_lifetime)
        refresh = token.get("refresh_token")
        issued = _Issued(
            access_token=str(token["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            client=client,
            scope=str(token.get("scope") or ""),
            user=user if isinstance(user, _User) else None,
            access_expires=now + self.clock.window(lifetime),
            refresh_expires=(
                now + self.clock.window(self.refresh_token_lifetime)
                if refresh and self.refresh_token_lifetime is not None
                else None
            ),
            clock=lambda: self.clock.monotonic(),
        )
        self._by_access[issued.access_token] = issued
        if issued.refresh_token:
            self._by_refresh[issued.refresh_token] = issued

    # -- helpers for tests and other emulators -------------------------------------------
    def issue_token(
        self,
        client_id: str | None = None,
        scope: str | None = None,
        *,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Issue a token directly, as if a person had just connected (the token response)."""
        with self.lock:
            client = self.clients[client_id or next(iter(self.clients))]
            token = self._generate_token(
                "authorization_code",
                client,
                _User(self.subject),
                scope,
                include_refresh_token=include_refresh_token,
            )
            self._remember(token, client, _User(self.subject))
            return token

    def validate_bearer(self, request: httpx.Request) -> TokenInfo | None:
        """Who the request's ``Authorization: Bearer`` token stands for; ``None`` if invalid.

        Unknown and expired access tokens are invalid.
        """
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        with self.lock:
            issued = self._by_access.get(value.strip())
            if issued is None or issued.is_expired():
                return None
            subject = issued.user.subject if issued.user else None
            return TokenInfo(issued.client.client_id, issued.scope, subject)

    def expire_all(self) -> None:
        """Expire every access token now (refresh tokens stay valid): fault injection."""
        with self.lock:
            for issued in self._by_access.values():
                issued.access_expires = float("-inf")

    def revoke_grants(self) -> None:
        """Revoke every refresh token, as when a person disconnects the app at the vendor."""
        with self.lock:
            for issued in self._by_refresh.values():
                issued.refresh_revoked = True

    def credentials(self) -> dict[str, str]:
        """Client id and secret of the first client, and the endpoint URLs."""
        client = next(iter(self.clients.values()))
        out = {
            "client_id": client.client_id,
            "authorize_url": self.base_url + self.authorize_path,
            "token_url": self.base_url + self.token_path,
            "userinfo_url": self.base_url + self.userinfo_path,
        }
        if client.client_secret is not None:
            out["client_secret"] = client.client_secret
        if client.redirect_uris:
            out["redirect_uri"] = client.redirect_uris[0]
        return out
