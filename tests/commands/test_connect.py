"""``connect``: the authorization code flow against the sandbox OAuth server, with the
callback on 127.0.0.1 and the token saved encrypted to the store."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from dixis_integrations.auth import KEY_ENV, SQLiteTokenStore, TokenCipher
from dixis_integrations.cli import main
from dixis_integrations.sandbox.oauth import OAuthServer, SandboxClient
from dixis_integrations.sandbox.serve import serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_connect(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    provider: str = "acme",
    config_extra: str = "",
    auth_method: str | None = None,
    redirect_params: dict[str, str] | None = None,
) -> tuple[int, list[int], str]:
    """``connect PROVIDER`` against the sandbox OAuth server, a browser that consents at
    once; returns the exit code, the browser's final status codes and the token key."""
    port = free_port()
    client = SandboxClient(
        client_id="dixis-app",
        client_secret="app-secret-123",
        redirect_uris=(f"http://127.0.0.1:{port}/callback",),
        auth_method=auth_method,
    )
    server = OAuthServer(clients=[client], redirect_params=redirect_params)
    key = TokenCipher.generate_key()
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.setenv("ACME_SECRET", "app-secret-123")
    browsed: list[int] = []

    def browser(url: str) -> bool:
        def visit() -> None:  # what the person's browser does: consent, then redirect
            browsed.append(httpx.get(url, follow_redirects=True, timeout=10).status_code)

        threading.Thread(target=visit, daemon=True).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    with serve(server.handle) as served:
        server.bind(served.base_url)
        creds = server.credentials()
        config = tmp_path / "dixis.toml"
        config.write_text(
            f'[tokens]\nurl = "sqlite:///{tmp_path / "tokens.db"}"\n'
            f"[oauth.{provider}]\n"
            'client_id = "dixis-app"\n'
            'client_secret = "${ACME_SECRET}"\n'
            f'authorize_url = "{creds["authorize_url"]}"\n'
            f'token_url = "{creds["token_url"]}"\n'
            'scopes = ["read", "write"]\n' + config_extra,
            encoding="utf-8",
        )
        code = main(
            ["connect", provider, "--config", str(config), "--port", str(port), "--timeout", "20"]
        )
    return code, browsed, key


def test_connect_saves_the_token_after_the_browser_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, browsed, key = run_connect(tmp_path, monkeypatch)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert browsed == [200]
    assert "connected acme for tenant 'default'" in out
    assert "app-secret-123" not in out + err
    assert "realmId" not in out
    token = SQLiteTokenStore(tmp_path / "tokens.db", TokenCipher(key)).get("acme", "default")
    assert token is not None
    assert token.refresh_token is not None
    assert token.access_token.get_secret_value() not in out + err


@pytest.mark.parametrize(
    ("provider", "table", "server", "printed"),
    [
        # HubSpot's token endpoint takes the secret as form fields, not HTTP Basic.
        (
            "hubspot",
            "[integrations.crm.hubspot]\noauth_app = true\n",
            {"auth_method": "client_secret_post"},
            "connected hubspot",
        ),
        # Intuit names the company only in the redirect; the adapter says where it goes.
        (
            "quickbooks",
            '[integrations.accounting.quickbooks]\nrealm_id = "unknown yet"\n',
            {"redirect_params": {"realmId": "9130357"}},
            "realmId 9130357: set realm_id = '9130357'",
        ),
    ],
)
def test_connect_follows_what_the_adapter_declares_of_its_vendor(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    provider: str,
    table: str,
    server: dict[str, Any],
    printed: str,
) -> None:
    code, _, _ = run_connect(tmp_path, monkeypatch, provider=provider, config_extra=table, **server)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert printed in out


def test_the_oauth_table_can_say_how_the_secret_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run_connect(
        tmp_path,
        monkeypatch,
        config_extra='token_endpoint_auth = "client_secret_post"\n',
        auth_method="client_secret_post",
    )
    assert code == 0, capsys.readouterr().err
    (tmp_path / "tokens.db").unlink()
    code, _, _ = run_connect(  # the default for an unknown vendor is Basic: refused here
        tmp_path, monkeypatch, auth_method="client_secret_post"
    )
    assert code == 1
    assert "invalid_client" in capsys.readouterr().err


def test_connect_names_a_missing_application(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, TokenCipher.generate_key())
    config = tmp_path / "dixis.toml"
    config.write_text("", encoding="utf-8")
    assert main(["connect", "acme", "--config", str(config), "--no-browser"]) == 2
    assert "oauth.acme" in capsys.readouterr().err


def test_connect_without_the_token_key_says_which_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    config = tmp_path / "dixis.toml"
    config.write_text(
        '[oauth.acme]\nclient_id = "a"\nauthorize_url = "https://x/a"\ntoken_url = "https://x/t"\n',
        encoding="utf-8",
    )
    assert main(["connect", "acme", "--config", str(config), "--no-browser"]) == 2
    assert "tokens.key" in capsys.readouterr().err
