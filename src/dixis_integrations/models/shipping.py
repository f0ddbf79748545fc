"""Shipping domain models: parcels, options, quotes, shipments, labels and tracking.

Carrier wire formats never appear here; every carrier maps to and from these types.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TrackingStatus"]


class TrackingStatus(StrEnum):
    """The normalised status set every carrier's codes map onto."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    EXCEPTION = "exception"
