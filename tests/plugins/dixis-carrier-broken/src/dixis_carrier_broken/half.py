"""A plugin that imports fine but does not satisfy ShippingCarrier (no tracking, no labels)."""

from __future__ import annotations


class HalfCarrier:
    """Has a name and quotes, and nothing else a carrier needs."""

    name = "half"
    capabilities = frozenset()

    def quote(self, request: object) -> list[object]:
        return []
