"""``dixis-integrations connect PROVIDER``: the OAuth2 authorization code flow, with a
local callback on 127.0.0.1, and the token saved (encrypted) to the token store.

The application comes from ``[oauth.PROVIDER]`` in the configuration (client id, secret
from an environment variable, authorize and token URLs, scopes); tokens go to
``[tokens] url`` (SQLite or PostgreSQL), encrypted with the key in ``$DIXIS_TOKEN_KEY``.
Nothing secret is printed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import webbrowser
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dixis_integrations.commands._common import add_config_argument, config_path

__all__ = ["CallbackServer", "add_arguments", "run"]


class CallbackServer:
    """A one-shot HTTP server on 127.0.0.1 that waits for the vendor's redirect."""

    def __init__(self, port: int = 0, path: str = "/callback") -> None:
        self.path = path
        self.url: str | None = None
        self._got = threading.Event()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                if not self.path.startswith(outer.path):
                    self.send_error(404)
                    return
                outer.url = f"http://127.0.0.1:{outer.port}{self.path}"
                body = b"Connected. You can close this window and return to the terminal.\n"
                self.send_response(200)
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer._got.set()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        """Where the vendor must send the browser back."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> str | None:
        """The callback URL, or ``None`` when nobody came back in time."""
        return self.url if self._got.wait(timeout) else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``connect`` command."""
    parser.add_argument("provider", help="the [oauth.PROVIDER] table of the configuration")
    add_config_argument(parser)
    parser.add_argument("--tenant", default=None, help="whose account (default: config tenant)")
    parser.add_argument("--port", type=int, default=8765, help="callback port on 127.0.0.1")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")


def run(args: argparse.Namespace) -> int:
    """Authorise, save the token; 0 on success, 1 when refused or timed out, 2 on config."""
    import httpx

    from dixis_integrations.auth import authorization_url, code_from_callback, exchange_code
    from dixis_integrations.config import load_settings
    from dixis_integrations.errors import ConfigurationError, DixisError, PluginLoadError
    from dixis_integrations.hub import oauth_app_config, open_token_store
    from dixis_integrations.registry import Registry

    err = sys.stderr
    try:
        settings = load_settings(config_path(args))
        app = settings.oauth.get(args.provider)
        if app is None:
            raise ConfigurationError("no such OAuth application", key=f"oauth.{args.provider}")
        adapter_cls: type[Any] | None = None
        for item in settings.integrations:  # the adapter knows how its vendor takes secrets
            if item.name == args.provider:
                try:
                    adapter_cls = Registry().load(item.kind, item.name)
                except PluginLoadError as exc:
                    raise ConfigurationError(str(exc), key=item.key) from None
        store = open_token_store(settings.tokens.url)
    except ConfigurationError as exc:
        print(f"dixis-integrations connect: {exc}", file=err)
        return 2
    tenant = args.tenant or settings.tenant
    with CallbackServer(args.port) as callback:
        config = oauth_app_config(
            args.provider, app, adapter_cls, redirect_uri=callback.redirect_uri
        )
        request = authorization_url(config)
        print(f"Open this address to authorise {args.provider}:\n\n  {request.url}\n", flush=True)
        if not args.no_browser:
            webbrowser.open(request.url)
        print(f"waiting for the redirect to {callback.redirect_uri} ...", file=err, flush=True)
        url = callback.wait(args.timeout)
    if url is None:
        print(f"dixis-integrations connect: no answer within {args.timeout:g}s", file=err)
        return 1
    try:
        code = code_from_callback(request, url)
        with httpx.Client(timeout=30.0) as client:
            token = exchange_code(config, code, request, client)
        store.save(args.provider, tenant, token)
    except DixisError as exc:
        print(f"dixis-integrations connect: {exc}", file=err)
        return 1
    expires = token.expires_at.isoformat() if token.expires_at else "unknown"
    refresh = "with" if token.refresh_token is not None else "without"
    print(
        f"connected {args.provider} for tenant {tenant!r}: token saved ({refresh} a "
        f"refresh token, access token expires {expires})"
    )
    given = parse_qs(urlsplit(url).query)
    # what the vendor names only in the redirect (a company id...): the adapter says which
    fields: Mapping[str, str] = getattr(adapter_cls, "oauth_redirect_fields", {})
    for param, field in fields.items():
        if given.get(param):
            value = given[param][0]
            print(f"{param} {value}: set {field} = {value!r} in the configuration")
    return 0
