"""PostgresTokenStore specifics: what the table holds, and life without psycopg."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import SecretStr

from _services import require_postgres
from dixis_integrations.auth import PostgresTokenStore, Token, TokenCipher
from dixis_integrations.errors import ConfigurationError, TransientError

ACCESS = "pg-access-token-plaintext-51c0"
REFRESH = "pg-refresh-token-plaintext-9e2a"


@pytest.mark.services
def test_table_rows_never_contain_the_token_text(provider: str) -> None:
    import psycopg

    dsn = require_postgres()
    store = PostgresTokenStore(dsn, TokenCipher(TokenCipher.generate_key()))
    token = Token(access_token=SecretStr(ACCESS), refresh_token=SecretStr(REFRESH))
    store.save(provider, "t1", token)
    try:
        assert store.get(provider, "t1") == token
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT blob::text, provider, tenant FROM dixis_tokens WHERE provider = %s",
                (provider,),
            ).fetchone()
        assert row is not None
        raw = bytes(row[0], "ascii") if isinstance(row[0], str) else bytes(row[0])
        assert ACCESS.encode().hex().encode() not in raw
        assert REFRESH.encode().hex().encode() not in raw
        assert ACCESS.encode() not in raw
    finally:
        store.delete(provider, "t1")


def test_missing_psycopg_is_a_friendly_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    store = PostgresTokenStore(
        "postgresql://nobody@127.0.0.1:1/x",
        TokenCipher.from_env({"DIXIS_TOKEN_KEY": TokenCipher.generate_key()}),
    )
    with pytest.raises(ConfigurationError, match=r"dixis-integrations\[postgres\]"):
        store.get("xero", "t1")


def test_repr_and_connection_errors_never_show_the_dsn_password() -> None:
    dsn = "postgresql://user:pg-password-s3cr3t@127.0.0.1:1/x"
    store = PostgresTokenStore(dsn, TokenCipher(TokenCipher.generate_key()), connect_timeout=1)
    assert "s3cr3t" not in repr(store)
    with pytest.raises(TransientError) as info:
        store.get("xero", "t1")
    assert "s3cr3t" not in str(info.value)
    assert "s3cr3t" not in repr(info.value)
    assert info.value.__cause__ is None


def test_auth_package_imports_without_psycopg() -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import dixis_integrations.auth as auth\n"
        "assert 'psycopg' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(auth.PostgresTokenStore.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "PostgresTokenStore"
