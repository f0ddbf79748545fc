"""Product recommendations for journey mails: explainable, deterministic, pure.

:meth:`RecommendationModel.build` reads purchase lines once (as of an explicit instant)
and :meth:`RecommendationModel.recommend` ranks, for one customer, the products they have
not bought yet by (1) how often they were bought together with the customer's own
products, (2) how many customers of the customer's region bought them this season, (3)
how many customers bought them this season anywhere, then by SKU. Each pick says why.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dixis_integrations.errors import FieldError, InvalidInput

__all__ = [
    "Purchase",
    "Reason",
    "ReasonKind",
    "Recommendation",
    "RecommendationModel",
    "Recommendations",
    "Season",
    "season_of",
]

_ATHENS = ZoneInfo("Europe/Athens")


class Season(StrEnum):
    """Meteorological seasons (northern hemisphere): what is fresh changes with them."""

    WINTER = "winter"
    SPRING = "spring"
    SUMMER = "summer"
    AUTUMN = "autumn"


def season_of(day: date) -> Season:
    """December-February winter, March-May spring, June-August summer, else autumn."""
    return (
        Season.WINTER,
        Season.SPRING,
        Season.SUMMER,
        Season.AUTUMN,
    )[(day.month % 12) // 3]


@dataclass(frozen=True, slots=True)
class Purchase:
    """One product on one paid order (refunded and cancelled lines are left out by the
    caller). ``region`` is the buyer's region (prefecture, postcode area...), if known."""

    customer_id: str
    order_id: str
    sku: str
    at: datetime
    region: str | None = None


class ReasonKind(StrEnum):
    """Why a product is recommended."""

    BOUGHT_TOGETHER = "bought_together"
    POPULAR_IN_REGION = "popular_in_region"
    POPULAR_THIS_SEASON = "popular_this_season"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason with its evidence: ``count`` orders or customers, ``detail`` in words."""

    kind: ReasonKind
    count: int
    detail: str


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One product and the evidence behind its rank."""

    sku: str
    together: int
    regional: int
    seasonal: int
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Recommendations:
    """The picks for one customer, with the context they were made in."""

    customer_id: str
    items: tuple[Recommendation, ...]
    region: str | None
    season: Season
    already_bought: tuple[str, ...]

    @property
    def skus(self) -> list[str]:
        """The recommended SKUs, best first."""
        return [r.sku for r in self.items]


def _check_instant(value: object, loc: tuple[str | int, ...]) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(
            "invalid purchase", errors=[FieldError(loc, "must be a timezone-aware datetime")]
        )


class RecommendationModel:
    """Co-purchase counts and seasonal popularity, built once for many customers.

    Memory grows with the number of customers and of product pairs bought together,
    not with the number of purchase lines.
    """

    def __init__(
        self,
        *,
        as_of: datetime,
        season: Season,
        bought: dict[str, set[str]],
        regions: dict[str, str],
        pairs: dict[str, Counter[str]],
        regional: dict[str, Counter[str]],
        seasonal: Counter[str],
    ) -> None:
        self.as_of = as_of
        self.season = season
        self._bought = bought
        self._regions = regions
        self._pairs = pairs
        self._regional = regional
        self._seasonal = seasonal

    @classmethod
    def build(
        cls,
        purchases: Iterable[Purchase],
        as_of: datetime,
        *,
        lookback: timedelta = timedelta(days=366),
    ) -> RecommendationModel:
        """Read purchases made at or before ``as_of``.

        "This season" is the season of ``as_of`` (Athens calendar) in the ``lookback``
        before it: with the default, this season so far and the same season last year.

        Raises:
            InvalidInput: ``as_of`` or a purchase time is naive (its index is named).
        """
        _check_instant(as_of, ("as_of",))
        season = season_of(as_of.astimezone(_ATHENS).date())
        since = as_of - lookback
        bought: dict[str, set[str]] = defaultdict(set)
        last_seen: dict[str, tuple[datetime, str, str]] = {}
        baskets: dict[str, set[str]] = defaultdict(set)
        season_buyers: dict[tuple[str | None, str], set[str]] = defaultdict(set)
        for index, p in enumerate(purchases):
            _check_instant(p.at, (index, "at"))
            if p.at > as_of:
                continue
            bought[p.customer_id].add(p.sku)
            baskets[p.order_id].add(p.sku)
            if p.region is not None:
                seen = last_seen.get(p.customer_id)
                mark = (p.at, p.order_id, p.region)
                if seen is None or mark > seen:
                    last_seen[p.customer_id] = mark
            if p.at > since and season_of(p.at.astimezone(_ATHENS).date()) is season:
                season_buyers[(p.region, p.sku)].add(p.customer_id)
        pairs: dict[str, Counter[str]] = defaultdict(Counter)
        for skus in baskets.values():
            for a in skus:
                for b in skus:
                    if a != b:
                        pairs[a][b] += 1
        regional: dict[str, Counter[str]] = defaultdict(Counter)
        seasonal_sets: dict[str, set[str]] = defaultdict(set)
        for (region, sku), buyers in season_buyers.items():
            if region is not None:
                regional[region][sku] += len(buyers)
            seasonal_sets[sku] |= buyers
        seasonal = Counter({sku: len(buyers) for sku, buyers in seasonal_sets.items()})
        return cls(
            as_of=as_of,
            season=season,
            bought=dict(bought),
            regions={cid: mark[2] for cid, mark in last_seen.items()},
            pairs=dict(pairs),
            regional=dict(regional),
            seasonal=seasonal,
        )

    def recommend(
        self,
        customer_id: str,
        *,
        region: str | None = None,
        limit: int = 3,
        available: Collection[str] | None = None,
    ) -> Recommendations:
        """Up to ``limit`` products the customer has not bought, best first.

        Args:
            region: overrides the region of the customer's latest purchase.
            available: only these SKUs may be recommended (what is in stock now).
        """
        own = self._bought.get(customer_id, set())
        region = region if region is not None else self._regions.get(customer_id)
        local = self._regional.get(region, Counter()) if region is not None else Counter()
        together: Counter[str] = Counter()
        best_partner: dict[str, tuple[int, str]] = {}
        for mine in sorted(own):
            for other, n in self._pairs.get(mine, Counter()).items():
                together[other] += n
                # the partner that explains most; on a tie the smallest SKU (seen first)
                if other not in best_partner or n > best_partner[other][0]:
                    best_partner[other] = (n, mine)
        candidates = set(together) | set(local) | set(self._seasonal)
        candidates -= own
        if available is not None:
            candidates &= set(available)
        ranked = sorted(
            candidates,
            key=lambda sku: (-together[sku], -local[sku], -self._seasonal[sku], sku),
        )
        items: list[Recommendation] = []
        for sku in ranked[: max(0, limit)]:
            reasons: list[Reason] = []
            if together[sku]:
                n, partner = best_partner[sku]
                reasons.append(
                    Reason(
                        ReasonKind.BOUGHT_TOGETHER,
                        together[sku],
                        f"bought together with {partner} in {n} orders",
                    )
                )
            if local[sku]:
                reasons.append(
                    Reason(
                        ReasonKind.POPULAR_IN_REGION,
                        local[sku],
                        f"bought by {local[sku]} customers in {region} this {self.season}",
                    )
                )
            if self._seasonal[sku]:
                reasons.append(
                    Reason(
                        ReasonKind.POPULAR_THIS_SEASON,
                        self._seasonal[sku],
                        f"bought by {self._seasonal[sku]} customers this {self.season}",
                    )
                )
            items.append(
                Recommendation(sku, together[sku], local[sku], self._seasonal[sku], tuple(reasons))
            )
        return Recommendations(
            customer_id=customer_id,
            items=tuple(items),
            region=region,
            season=self.season,
            already_bought=tuple(sorted(own)),
        )
