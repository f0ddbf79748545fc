"""The shared rule of tests/_services.py: a missing service skips locally, fails under CI."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import _services

_CASES = [
    (_services.require_postgres, "_probe_postgres"),
    (_services.require_redis, "_probe_redis"),
    (_services.require_rabbitmq, "_probe_rabbitmq"),
]


@pytest.mark.parametrize(("require", "probe"), _CASES)
def test_missing_service_is_skipped_with_its_reason_locally(
    monkeypatch: pytest.MonkeyPatch, require: Callable[[], str], probe: str
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(_services, probe, lambda: (None, "nothing listens on 1"))
    with pytest.raises(pytest.skip.Exception, match="nothing listens on 1"):
        require()


@pytest.mark.parametrize(("require", "probe"), _CASES)
def test_missing_service_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, require: Callable[[], str], probe: str
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(_services, probe, lambda: (None, "nothing listens on 1"))
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require()


@pytest.mark.parametrize(("require", "probe"), _CASES)
def test_reachable_service_returns_its_address(
    monkeypatch: pytest.MonkeyPatch, require: Callable[[], str], probe: str
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(_services, probe, lambda: ("scheme://127.0.0.1:1/x", ""))
    assert require() == "scheme://127.0.0.1:1/x"


def test_configured_but_unreachable_postgres_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIXIS_TEST_POSTGRES_DSN", "postgresql://nobody@127.0.0.1:1/none")
    _services._probe_postgres.cache_clear()
    try:
        dsn, reason = _services._probe_postgres()
    finally:
        _services._probe_postgres.cache_clear()
    assert dsn is None
    assert "DIXIS_TEST_POSTGRES_DSN" in reason
