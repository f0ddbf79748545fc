"""BOX NOW: exact delivery-request body, parsed answers, token reuse, webhooks, sandbox flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dixis_integrations.auth import MemoryTokenStore, SQLiteTokenStore, TokenCipher, TokenStore
from dixis_integrations.errors import (
    InvalidInput,
    NotFound,
    NotSupported,
    TransientError,
    ValidationRejected,
    WebhookError,
)
from dixis_integrations.http import Driver
from dixis_integrations.models.money import Money
from dixis_integrations.models.shipping import (
    CashOnDelivery,
    CodMethod,
    CompartmentSize,
    DeliveryType,
    LabelFormat,
    Parcel,
    ShippingOptions,
    TrackingStatus,
)
from dixis_integrations.sandbox.boxnow import BoxNowSandbox
from dixis_integrations.shipping.boxnow import (
    BoxNow,
    BoxNowConfig,
    boxnow_auth,
    compartment_for,
    delivery_request_body,
    parse_delivery_request,
    parse_parcel_events,
    parse_parcels_page,
    verify_webhook,
)

from .conftest import recipient, shipment_request

URL = "http://boxnow.sandbox"


def config(**changes: Any) -> BoxNowConfig:
    return BoxNowConfig(base_url=URL, **{**BoxNowSandbox().credentials(), **changes})


def locker(**changes: Any) -> ShippingOptions:
    return ShippingOptions(delivery_type=DeliveryType.LOCKER, pickup_point_id="4", **changes)


def card_cod(amount: str = "25.00") -> CashOnDelivery:
    return CashOnDelivery(amount=Money.of(amount), method=CodMethod.CARD)


def test_delivery_request_body_is_exactly_the_documented_shape() -> None:
    request = shipment_request(weight="1.2", options=locker(cod=card_cod()), reference="123_00000")
    assert delivery_request_body(request, config()) == {
        "orderNumber": "123_00000",
        "invoiceValue": "25.00",
        "paymentMode": "cod",
        "amountToBeCollected": "25.00",
        "allowReturn": True,
        "origin": {
            "contactNumber": "+302101234567",
            "contactEmail": "shipping@dixis.example",
            "contactName": "Dixis Fresh",
            "locationId": "2",
        },
        "destination": {
            "contactNumber": "+306912345678",
            "contactEmail": "maria@example.gr",
            "contactName": "Μαρία Κωνσταντίνου",
            "locationId": "4",
        },
        "items": [
            {
                "id": "1",
                "name": "123_00000",
                "value": "25.00",
                "weight": Decimal("1.2"),
                "compartmentSize": 2,
            }
        ],
    }


def test_compartment_from_the_option_or_the_parcel_height() -> None:
    low = shipment_request(options=locker()).model_copy(
        update={
            "parcels": (Parcel(weight_kg="1", height_cm="7"), Parcel(weight_kg="1", height_cm="30"))
        }
    )
    assert compartment_for(low, 0) is CompartmentSize.SMALL
    assert compartment_for(low, 1) is CompartmentSize.LARGE
    forced = shipment_request(options=locker(compartment_size=CompartmentSize.SMALL))
    assert compartment_for(forced, 0) is CompartmentSize.SMALL


def test_parse_delivery_request_and_events() -> None:
    request = shipment_request(options=locker())
    shipment = parse_delivery_request(
        {"id": "51", "parcels": [{"id": "9100000001"}, {"id": "9100000002"}]},
        request,
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert shipment.tracking_number == "9100000001"
    assert shipment.parcel_numbers == ("9100000001", "9100000002")
    assert shipment.carrier_data == {"delivery_request_id": "51"}
    body = {
        "data": [
            {
                "id": "9100000001",
                "events": [
                    {"type": "new", "createTime": "2026-11-02T08:00:00Z"},
                    {
                        "type": "final-destination",
                        "createTime": "2026-11-03T08:00:00Z",
                        "locationDisplayName": "Σύνταγμα",
                    },
                ],
            }
        ]
    }
    tracking = parse_parcel_events(body, "9100000001")
    assert tracking.status is TrackingStatus.AVAILABLE_FOR_PICKUP
    assert [e.raw_code for e in tracking.events] == ["new", "final-destination"]
    with pytest.raises(NotFound):
        parse_parcel_events({"data": []}, "1")


@pytest.mark.parametrize(
    ("options", "path"),
    [
        (ShippingOptions(), "options.delivery_type"),
        (
            locker(cod=CashOnDelivery(amount=Money.of("10"), method=CodMethod.CHEQUE)),
            "options.cod.method",
        ),
        (locker(saturday=True), "options.saturday"),
        (locker(refrigerated=True), "options.refrigerated"),
    ],
)
def test_boxnow_refuses_what_a_locker_cannot_take_and_sends_nothing(
    options: ShippingOptions, path: str, make_runner: Any
) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    with pytest.raises(InvalidInput) as info:
        run(BoxNow(config()).create_shipment(shipment_request(options=options)))
    assert path in [e.path for e in info.value.errors]
    assert sandbox.requests == []


def test_too_tall_or_heavy_parcels_are_refused() -> None:
    request = shipment_request(options=locker()).model_copy(
        update={"parcels": (Parcel(weight_kg="21", height_cm="40"),)}
    )
    with pytest.raises(InvalidInput) as info:
        BoxNow(config()).validate(request)
    assert [e.path for e in info.value.errors] == ["parcels[0].weight_kg", "parcels[0].height_cm"]


def test_full_lifecycle_with_one_token_for_many_calls(make_runner: Any) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    boxnow = BoxNow(config())
    request = shipment_request(options=locker(cod=card_cod("18.40")))
    (quote,) = run(boxnow.quote(request))
    assert quote.source == "rate_table"
    shipment = run(boxnow.create_shipment(request))
    sent = json.loads(sandbox.requests[-1].content)
    assert sent["items"][0]["weight"] == 2.5
    assert b'"weight":2.5' in sandbox.requests[-1].content
    pdf = run(boxnow.label(shipment, LabelFormat.PDF_A4))
    zpl = run(boxnow.label(shipment, LabelFormat.ZPL))
    assert pdf.content.startswith(b"%PDF-1.4")
    assert zpl.content.startswith(b"^XA")
    assert sandbox.token_requests == 1  # one token for every call so far
    sandbox.advance(21 * 3600)  # the one-hour token has expired at BOX NOW meanwhile
    assert run(boxnow.track(shipment.tracking_number)).status is TrackingStatus.AVAILABLE_FOR_PICKUP
    assert sandbox.token_requests == 2
    with pytest.raises(NotSupported):
        run(boxnow.finalise([shipment]))


def test_an_expired_token_is_replaced_once_and_the_call_succeeds(make_runner: Any) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    boxnow = BoxNow(config())
    run(boxnow.pickup_points())
    sandbox.expire_tokens()
    assert len(run(boxnow.pickup_points())) == 3
    assert sandbox.token_requests == 2


def test_a_retried_create_finds_the_parcel_instead_of_duplicating(make_runner: Any) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    boxnow = BoxNow(config())
    request = shipment_request(options=locker())
    first = run(boxnow.create_shipment(request))
    again = run(boxnow.create_shipment(request))  # as after a lost answer
    assert again.tracking_number == first.tracking_number
    assert len(sandbox.parcels) == 1


def test_cancel_only_while_new(make_runner: Any) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    boxnow = BoxNow(config())
    early = run(boxnow.create_shipment(shipment_request(options=locker(), reference="A")))
    late = run(boxnow.create_shipment(shipment_request(options=locker(), reference="B")))
    assert not run(boxnow.cancel(early)).cancellable
    sandbox.advance(3 * 3600)
    with pytest.raises(ValidationRejected) as info:
        run(boxnow.cancel(late))
    assert info.value.vendor_code == "P420"
    assert run(boxnow.track(early.tracking_number)).status is TrackingStatus.CANCELLED


def test_nearest_lockers_for_an_address(make_runner: Any) -> None:
    run = make_runner(BoxNowSandbox().handle)
    points = run(BoxNow(config()).pickup_points(recipient(postcode="55133", city="Καλαμαριά")))
    assert points[0].id == "9"
    assert points[0].kind is DeliveryType.LOCKER


def test_webhooks_from_the_sandbox_verify_and_parse() -> None:
    received: list[httpx.Request] = []

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    sandbox = BoxNowSandbox(webhook_client=httpx.Client(transport=httpx.MockTransport(hook)))
    sandbox.subscribe("https://dixis.example/hooks/boxnow")
    run_sync = BoxNow(config())
    from dixis_integrations.http import Driver

    driver = Driver(httpx.Client(transport=httpx.MockTransport(sandbox.handle)))
    shipment = driver.run(run_sync.create_shipment(shipment_request(options=locker())))
    sandbox.advance(9 * 3600)
    assert len(received) == 3  # new, accepted-to-locker, in-depot
    change = run_sync.parse_webhook(received[-1].content)
    assert change.tracking_number == shipment.tracking_number
    assert change.status is TrackingStatus.IN_TRANSIT
    assert change.raw_code == "in-depot"
    tampered = received[-1].content.replace(b"in-depot", b"delivered")
    with pytest.raises(WebhookError):
        run_sync.parse_webhook(tampered)


def test_verify_webhook_uses_the_raw_data_bytes() -> None:
    import hashlib
    import hmac

    data = '{ "parcelId" : "1", "event":"delivered"}'
    signature = hmac.new(b"s3cret", data.encode(), hashlib.sha256).hexdigest()
    body = f'{{"id":"e1","data":{data},"datasignature":"{signature}"}}'.encode()
    assert verify_webhook(body, SecretStr("s3cret"))["data"]["event"] == "delivered"
    with pytest.raises(WebhookError):
        verify_webhook(body, SecretStr("other"))
    with pytest.raises(WebhookError):
        verify_webhook(b"not json", SecretStr("s3cret"))


def _token_auth(sandbox: BoxNowSandbox, store: TokenStore, tenant: str = "default") -> httpx.Auth:
    return boxnow_auth(
        config(),
        store,
        tenant=tenant,
        client_factory=lambda: httpx.Client(transport=httpx.MockTransport(sandbox.handle)),
        async_client_factory=lambda: httpx.AsyncClient(
            transport=httpx.MockTransport(sandbox.handle)
        ),
    )


def test_the_oauth_settings_are_client_credentials_in_json_at_auth_sessions() -> None:
    oauth = config().oauth()
    assert oauth.provider == "boxnow"
    assert oauth.token_url == URL + "/api/v1/auth-sessions"
    assert (oauth.grant_type, oauth.token_request_encoding) == ("client_credentials", "json")
    secret = BoxNowSandbox().credentials()["client_secret"]
    assert oauth.client_secret is not None
    assert oauth.client_secret.get_secret_value() == secret
    assert secret not in repr(oauth)


def test_with_the_hosts_token_store_adapters_share_one_token(make_runner: Any) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    store = MemoryTokenStore()
    first = BoxNow(config(), auth=_token_auth(sandbox, store))
    other = BoxNow(config(), auth=_token_auth(sandbox, store))  # another worker, same store
    shipment = run(first.create_shipment(shipment_request(options=locker())))
    assert len(run(other.pickup_points())) == 3
    assert run(other.track(shipment.tracking_number)).tracking_number == shipment.tracking_number
    assert sandbox.token_requests == 1
    (login,) = [r for r in sandbox.requests if r.url.path == "/api/v1/auth-sessions"]
    assert login.headers["content-type"] == "application/json"
    assert json.loads(login.content) == {
        "grant_type": "client_credentials",
        "client_id": BoxNowSandbox().credentials()["client_id"],
        "client_secret": BoxNowSandbox().credentials()["client_secret"],
    }
    saved = store.get("boxnow", "default")
    assert saved is not None
    bearer = "Bearer " + saved.access_token.get_secret_value()
    calls = [r for r in sandbox.requests if r.url.path != "/api/v1/auth-sessions"]
    assert calls
    assert all(r.headers["authorization"] == bearer for r in calls)


def test_with_the_hosts_token_store_a_rejected_token_is_renewed_once(make_runner: Any) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    boxnow = BoxNow(config(), auth=_token_auth(sandbox, MemoryTokenStore()))
    run(boxnow.pickup_points())
    sandbox.expire_tokens()
    assert len(run(boxnow.pickup_points())) == 3
    assert sandbox.token_requests == 2


def test_tokens_in_the_hosts_store_are_kept_per_tenant(make_runner: Any) -> None:
    sandbox = BoxNowSandbox()
    run = make_runner(sandbox.handle)
    store = MemoryTokenStore()
    for tenant in ("shop-1", "shop-2", "shop-1"):
        boxnow = BoxNow(config(), tenant=tenant, auth=_token_auth(sandbox, store, tenant))
        run(boxnow.pickup_points())
    assert sandbox.token_requests == 2
    assert store.get("boxnow", "shop-1") != store.get("boxnow", "shop-2")


def test_two_processes_on_one_sqlite_token_store_fetch_one_token(tmp_path: Any) -> None:
    sandbox = BoxNowSandbox()
    key = TokenCipher.generate_key()
    path = tmp_path / "tokens.db"
    with httpx.Client(transport=httpx.MockTransport(sandbox.handle)) as client:
        driver = Driver(client, sleep=lambda _: None)
        for _ in range(2):  # a new store object on the same file, as in a new process
            store = SQLiteTokenStore(path, TokenCipher(key))
            boxnow = BoxNow(config(), auth=_token_auth(sandbox, store))
            assert len(driver.run(boxnow.pickup_points())) == 3
    assert sandbox.token_requests == 1


def test_parse_parcels_page_reads_the_parcels_and_the_next_token() -> None:
    body = {"data": [{"id": "1"}, {"id": "2"}], "pagination": {"nextPageToken": "abc"}}
    assert parse_parcels_page(body) == ([{"id": "1"}, {"id": "2"}], "abc")
    assert parse_parcels_page({"data": [], "pagination": {"nextPageToken": None}}) == ([], None)
    assert parse_parcels_page({"data": [{"id": "3"}]}) == ([{"id": "3"}], None)


def test_parcels_follows_page_tokens_to_the_last_page(make_runner: Any) -> None:
    sandbox = BoxNowSandbox(page_size=2)
    run = make_runner(sandbox.handle)
    boxnow = BoxNow(config())
    made = [
        run(boxnow.create_shipment(shipment_request(options=locker(), reference=f"ORD-{i}")))
        for i in range(5)
    ]
    listed = run(boxnow.parcels())
    assert [t.tracking_number for t in listed] == [s.tracking_number for s in made]
    pages = [r for r in sandbox.requests if r.url.path == "/api/v1/parcels"]
    assert [r.url.params.get("pageToken") is None for r in pages] == [True, False, False]


def test_track_pages_on_until_it_finds_the_parcel(make_runner: Any) -> None:
    # A listing that ignores the parcelId filter, as BOX NOW's destinations do.
    pages = {
        None: {"data": [{"id": "1", "events": []}], "pagination": {"nextPageToken": "p2"}},
        "p2": {
            "data": [{"id": "2", "events": [{"type": "delivered", "createTime": "2026-11-02"}]}],
            "pagination": {"nextPageToken": "p3"},
        },
        "p3": {"data": [{"id": "3", "events": []}], "pagination": {"nextPageToken": None}},
    }
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth-sessions":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        token = request.url.params.get("pageToken")
        seen.append(token)
        return httpx.Response(200, json=pages[token])

    tracking = make_runner(handler)(BoxNow(config()).track("2"))
    assert tracking.status is TrackingStatus.DELIVERED
    assert seen == [None, "p2"]  # stops at the page that has the parcel


def test_a_repeated_page_token_stops_the_walk_with_a_typed_error(make_runner: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth-sessions":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        page = {"data": [{"id": "1", "events": []}], "pagination": {"nextPageToken": "same"}}
        return httpx.Response(200, json=page)

    run = make_runner(handler)
    with pytest.raises(TransientError, match="pageToken"):
        run(BoxNow(config()).parcels())


def test_track_of_a_parcel_on_no_page_is_not_found(make_runner: Any) -> None:
    run = make_runner(BoxNowSandbox(page_size=1).handle)
    with pytest.raises(NotFound):
        run(BoxNow(config()).track("9199999999"))
