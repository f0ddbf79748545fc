"""Webhook verification (HMAC-SHA256, base64/hex, timestamps) and delivery de-duplication."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from dixis_integrations.errors import WebhookError
from dixis_integrations.sandbox.kit import sign_hmac_sha256
from dixis_integrations.webhooks import (
    DeliveryStore,
    MemoryDeliveryStore,
    SQLiteDeliveryStore,
    WebhookVerifier,
    sign_payload,
    verify_signature,
)

SECRET = "whsec_a-signing-secret-of-some-length"
BODY = '{"event":"order.paid","name":"Παπαδόπουλος"}'.encode()


def _code(exc: pytest.ExceptionInfo[WebhookError]) -> str:
    return exc.value.code


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_a_good_signature_verifies(encoding: str) -> None:
    signature = sign_payload(SECRET, BODY, encoding=encoding)  # type: ignore[arg-type]
    verify_signature(SECRET, BODY, signature, encoding=encoding)  # type: ignore[arg-type]


def test_the_signature_matches_what_sandboxes_send() -> None:
    assert sign_payload(SECRET, BODY) == sign_hmac_sha256(SECRET, BODY)
    assert sign_payload(SECRET, BODY, encoding="hex") == sign_hmac_sha256(
        SECRET, BODY, encoding="hex"
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s, b: (s, b + b" "),  # body changed by one byte
        lambda s, b: (sign_payload("another-secret", b), b),
        lambda s, b: (s[:-4] + "AAA=", b),
    ],
)
def test_a_changed_body_or_secret_is_a_bad_signature(tamper: object) -> None:
    signature, body = tamper(sign_payload(SECRET, BODY), BODY)  # type: ignore[operator]
    with pytest.raises(WebhookError) as info:
        verify_signature(SECRET, body, signature)
    assert _code(info) == "bad_signature"
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_a_missing_signature_is_malformed(signature: str | None) -> None:
    with pytest.raises(WebhookError) as info:
        verify_signature(SECRET, BODY, signature)
    assert _code(info) == "malformed"


def test_garbage_that_is_not_base64_is_a_bad_signature() -> None:
    with pytest.raises(WebhookError) as info:
        verify_signature(SECRET, BODY, "not base64 at all!!")
    assert _code(info) == "bad_signature"


def test_any_of_several_rotated_signatures_may_match() -> None:
    good = sign_payload(SECRET, BODY)
    verify_signature(SECRET, BODY, f"{sign_payload('old-secret', BODY)},{good}")


def _stripe_like() -> WebhookVerifier:
    return WebhookVerifier(
        secret=SecretStr(SECRET),
        signature_header="X-Signature",
        encoding="hex",
        prefix="sha256=",
        timestamp_header="X-Timestamp",
        tolerance=300,
        vendor="shop",
    )


def test_a_verifier_checks_signature_prefix_and_timestamp() -> None:
    verifier = _stripe_like()
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    headers = verifier.sign(BODY, timestamp=str(int(now.timestamp())))
    assert headers["X-Signature"].startswith("sha256=")
    lowered = {k.lower(): v for k, v in headers.items()}
    verifier.verify(lowered, BODY, now=now + timedelta(seconds=299))


@pytest.mark.parametrize("offset", [301, -301])
def test_a_delivery_outside_the_tolerance_is_too_old(offset: int) -> None:
    verifier = _stripe_like()
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    headers = verifier.sign(BODY, timestamp=str(int(now.timestamp())))
    with pytest.raises(WebhookError) as info:
        verifier.verify(headers, BODY, now=now + timedelta(seconds=offset))
    assert _code(info) == "too_old"
    assert info.value.vendor == "shop"


def test_a_replayed_body_with_a_new_timestamp_fails_the_signature() -> None:
    verifier = _stripe_like()
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    headers = verifier.sign(BODY, timestamp=str(int(now.timestamp()) - 3600))
    headers["X-Timestamp"] = str(int(now.timestamp()))
    with pytest.raises(WebhookError) as info:
        verifier.verify(headers, BODY, now=now)
    assert _code(info) == "bad_signature"


def test_a_missing_or_bad_timestamp_is_malformed() -> None:
    verifier = _stripe_like()
    headers = verifier.sign(BODY, timestamp="1700000000")
    del headers["X-Timestamp"]
    with pytest.raises(WebhookError) as info:
        verifier.verify(headers, BODY)
    assert _code(info) == "malformed"
    headers = verifier.sign(BODY, timestamp="yesterday")
    with pytest.raises(WebhookError) as info:
        verifier.verify(headers, BODY)
    assert _code(info) == "malformed"


def test_the_verifier_repr_hides_the_secret() -> None:
    assert SECRET not in repr(_stripe_like())


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def store_and_clock(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[DeliveryStore, _Clock]:
    clock = _Clock()
    if request.param == "memory":
        return MemoryDeliveryStore(clock=clock), clock
    return SQLiteDeliveryStore(tmp_path / "deliveries.db", clock=clock), clock


def test_an_event_id_is_claimed_once_until_its_ttl_passes(
    store_and_clock: tuple[DeliveryStore, _Clock],
) -> None:
    store, clock = store_and_clock
    assert isinstance(store, DeliveryStore)
    assert store.claim("evt_1", ttl=60) is True
    assert store.claim("evt_1", ttl=60) is False
    assert store.claim("evt_2", ttl=60) is True
    clock.now += 60
    assert store.claim("evt_1", ttl=60) is True


def test_a_released_event_can_be_claimed_again(
    store_and_clock: tuple[DeliveryStore, _Clock],
) -> None:
    store, _ = store_and_clock
    assert store.claim("evt_1")
    store.release("evt_1")
    assert store.claim("evt_1")


def test_check_raises_replayed_for_a_redelivery(
    store_and_clock: tuple[DeliveryStore, _Clock],
) -> None:
    store, _ = store_and_clock
    store.check("evt_9")
    with pytest.raises(WebhookError) as info:
        store.check("evt_9")
    assert _code(info) == "replayed"


def test_sqlite_claims_are_atomic_across_threads_and_connections(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.db"
    SQLiteDeliveryStore(path)
    wins: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        store = SQLiteDeliveryStore(path)  # a connection of its own, as another process
        barrier.wait()
        won = store.claim("evt_race")
        with lock:
            wins.append(won)
        store.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_sqlite_remembers_across_instances_and_purges_expired(tmp_path: Path) -> None:
    clock = _Clock()
    path = tmp_path / "d.db"
    assert SQLiteDeliveryStore(path, clock=clock).claim("evt_1", ttl=10)
    again = SQLiteDeliveryStore(path, clock=clock)
    assert again.claim("evt_1", ttl=10) is False
    clock.now += 11
    assert again.purge() == 1
