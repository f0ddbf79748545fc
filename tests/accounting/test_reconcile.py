"""Reconciliation passes: resumable from the checkpoint, at least once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.accounting.conftest import GREEK_XERO_CODES, Runner, StaticBearer
from tests.models.factories import make_order

from dixis_integrations import accounting
from dixis_integrations.accounting import MemoryCheckpoints, reconcile
from dixis_integrations.accounting.xero import Xero, XeroConfig
from dixis_integrations.models.accounting import LedgerChange
from dixis_integrations.sandbox.xero import XeroSandbox


def _xero(sandbox: XeroSandbox) -> Xero:
    creds = sandbox.credentials()
    return Xero(
        XeroConfig(
            base_url=creds["base_url"], tenant_id=creds["tenant_id"], tax_codes=GREEK_XERO_CODES
        ),
        auth=StaticBearer(creds["access_token"]),
    )


def test_a_failed_pass_resumes_from_the_old_checkpoint(
    make_runner: Callable[[Any], Runner],
) -> None:
    sandbox = XeroSandbox()
    run = make_runner(sandbox)
    xero = _xero(sandbox)
    store = MemoryCheckpoints()
    first = run(xero.post_invoice(make_order(id="a")))
    seen: list[LedgerChange] = []

    def crash(change: LedgerChange) -> None:
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        run(reconcile(xero, store, crash, tenant="farm-a"))
    assert store.get_checkpoint("xero.changes", "farm-a") is None

    assert run(reconcile(xero, store, seen.append, tenant="farm-a")) == len(seen)
    assert first.external_id in {c.external_id for c in seen}
    saved = store.get_checkpoint("xero.changes", "farm-a")
    assert saved is not None

    second = run(xero.post_invoice(make_order(id="b")))
    seen.clear()
    run(reconcile(xero, store, seen.append, tenant="farm-a"))
    assert [c.external_id for c in seen if c.kind == "invoice"] == [second.external_id]


def test_the_package_facade_loads_adapters_lazily() -> None:
    assert accounting.Xero is Xero
    with pytest.raises(AttributeError):
        accounting.Nope  # noqa: B018
