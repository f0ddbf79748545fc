"""Each carrier's documented status codes and words, mapped onto the one status set."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dixis_integrations.models.shipping import Parcel, TrackingStatus
from dixis_integrations.shipping.acs import ACS_CHECKPOINTS
from dixis_integrations.shipping.boxnow import BOXNOW_EVENTS
from dixis_integrations.shipping.courier_center import COURIER_CENTER_STATUSES
from dixis_integrations.shipping.elta import ELTA_STATUSES
from dixis_integrations.shipping.geniki import GENIKI_CHECKPOINTS, RETRACTIONS
from dixis_integrations.shipping.speedex import SPEEDEX_STATUSES
from dixis_integrations.shipping.validation import CarrierRules, check_request

from .conftest import shipment_request

S = TrackingStatus

GENIKI = {
    "C_NW": S.PENDING,
    "C_H1": S.IN_TRANSIT,
    "C_H2": S.IN_TRANSIT,
    "C_A3": S.OUT_FOR_DELIVERY,
    "C_W2": S.DELIVERED,
    "C_E1": S.RETURNING,
    "C_P4": S.CANCELLED,
    "C_D2": S.AVAILABLE_FOR_PICKUP,
    "C_EA_AS": S.DELIVERY_FAILED,
    "C_EA_AP": S.DELIVERY_FAILED,
    "C_EA_LD": S.DELIVERY_FAILED,
}
BOXNOW = {
    "new": S.PENDING,
    "accepted-to-locker": S.ACCEPTED,
    "in-depot": S.IN_TRANSIT,
    "final-destination": S.AVAILABLE_FOR_PICKUP,
    "delivered": S.DELIVERED,
    "expired": S.RETURNING,
    "returned": S.RETURNED,
    "canceled": S.CANCELLED,
    "lost": S.EXCEPTION,
    "missing": S.EXCEPTION,
}
COURIER_CENTER = {
    "29": S.DELIVERED,
    "25": S.RETURNED,
    "99": S.CANCELLED,
    "14": S.CANCELLED,
    "87": S.DELIVERED,
    "95": S.EXCEPTION,
}


@pytest.mark.parametrize(("code", "status"), GENIKI.items())
def test_geniki_codes(code: str, status: TrackingStatus) -> None:
    assert GENIKI_CHECKPOINTS.status_of(code) is status


def test_geniki_retractions_and_failure_reasons() -> None:
    assert frozenset({"C_E2", "C_L2", "C_K9"}) == RETRACTIONS
    assert GENIKI_CHECKPOINTS.reason_of("C_EA_AP") == "refused by the recipient"


@pytest.mark.parametrize(("code", "status"), BOXNOW.items())
def test_boxnow_event_types(code: str, status: TrackingStatus) -> None:
    assert BOXNOW_EVENTS.status_of(code) is status


@pytest.mark.parametrize(("code", "status"), COURIER_CENTER.items())
def test_courier_center_final_codes(code: str, status: TrackingStatus) -> None:
    assert COURIER_CENTER_STATUSES.status_of(code) is status


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("ΠΑΡΑΔΟΘΗΚΕ ΣΤΟΝ ΠΑΡΑΛΗΠΤΗ", S.DELIVERED),
        ("Επιστροφή στον αποστολέα", S.RETURNING),
        ("ΕΠΙΣΤΡΑΦΗΚΕ ΣΤΟΝ ΑΠΟΣΤΟΛΕΑ", S.RETURNED),
        ("Σε διανομή", S.OUT_FOR_DELIVERY),
        ("ΑΠΩΝ ΠΑΡΑΛΗΠΤΗΣ", S.DELIVERY_FAILED),
        ("Ακυρωμένη αποστολή", S.CANCELLED),
        ("ΑΦΙΞΗ ΣΤΟ ΚΕΝΤΡΟ ΔΙΑΛΟΓΗΣ", S.IN_TRANSIT),
    ],
)
def test_speedex_keywords(text: str, status: TrackingStatus) -> None:
    assert SPEEDEX_STATUSES.status_of("42", text) is status


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Επιδόθηκε", S.DELIVERED),
        ("Προς επίδοση", S.OUT_FOR_DELIVERY),
        ("Παραμένει στο κατάστημα", S.AVAILABLE_FOR_PICKUP),
        ("Απουσία παραλήπτη", S.DELIVERY_FAILED),
        ("Παραλαβή αποστολής", S.ACCEPTED),
    ],
)
def test_elta_keywords(text: str, status: TrackingStatus) -> None:
    assert ELTA_STATUSES.status_of(None, text) is status


def test_acs_reason_codes() -> None:
    assert ACS_CHECKPOINTS.reason_of("ΑΣ1") == "recipient absent"
    assert ACS_CHECKPOINTS.reason_of("ΛΣ3") == "wrong or incomplete address"
    assert ACS_CHECKPOINTS.status_of(None, "ΠΑΡΑΔΟΘΗΚΕ") is S.DELIVERED


RULES = CarrierRules(vendor="t", max_weight_kg=Decimal(30))


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(60), places=3))
def test_weight_is_refused_exactly_above_the_maximum(weight: Decimal) -> None:
    request = shipment_request().model_copy(update={"parcels": (Parcel(weight_kg=weight),)})
    refused = [e for e in check_request(request, RULES) if e.path == "parcels[0].weight_kg"]
    assert bool(refused) == (weight > RULES.max_weight_kg)
