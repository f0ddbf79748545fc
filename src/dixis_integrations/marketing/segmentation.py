"""Customer segmentation: RFM scores, named rule sets and business flags, as pure functions.

Same input, same result on every machine (no clock, no I/O, no globals); orders stream
into per-customer aggregates that merge across chunks and processes before scoring.
"""

from __future__ import annotations

import json
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from itertools import repeat
from operator import add, and_, floordiv, rshift, sub
from typing import Any, Literal, NamedTuple, NoReturn

from dixis_integrations.errors import ConfigurationError, FieldError, InvalidInput

__all__ = [
    "COUNTING_STATUS",
    "DEFAULT_RULES",
    "DEFAULT_THRESHOLDS",
    "ORDER_STATUSES",
    "CustomerAggregates",
    "CustomerSegment",
    "FlagThresholds",
    "RuleSet",
    "ScoreCutoffs",
    "SegmentOrder",
    "SegmentRule",
    "SegmentationBasis",
    "aggregate",
    "flag_memberships",
    "parse_rule_set",
    "rule_set_from_mapping",
    "score",
    "segment_customers",
    "segment_memberships",
]

#: The only status that counts; the others are known and count nowhere.
COUNTING_STATUS = "paid"
ORDER_STATUSES = frozenset({"paid", "refunded", "cancelled"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
# A customer's cents, order count and recent-order count share one exact Python int:
# ``cents << 96 | orders << 48 | recent``. Cents are unbounded (the top field); each count
# field holds up to 2**48 - 1 orders, far more rows than any file can have.
_COUNT_SHIFT = 48
_CENTS_SHIFT = 96
_FIELD_MASK = (1 << _COUNT_SHIFT) - 1
_ONE_ORDER = 1 << _COUNT_SHIFT
_ONE_RECENT_ORDER = _ONE_ORDER + 1


class SegmentOrder(NamedTuple):
    """One order as segmentation sees it: who, when (aware), how much (EUR) and its status.

    ``status`` is ``paid``, ``refunded`` or ``cancelled``; only ``paid`` orders count.
    ``total`` is a non-negative ``Decimal`` with at most two decimal places.
    """

    customer_id: str
    created_at: datetime
    total: Decimal
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagThresholds:
    """The business flags' thresholds; every comparison is exact (Decimal, instants).

    ``high_value``: monetary strictly above ``high_value_above``. ``frequent_buyer``: at
    least ``frequent_min_orders`` counting orders at or after ``as_of - frequent_window_days``.
    ``at_risk``: the last counting order strictly before ``as_of - at_risk_after_days``.
    """

    high_value_above: Decimal = Decimal("1000.00")
    frequent_min_orders: int = 5
    frequent_window_days: int = 90
    at_risk_after_days: int = 180

    def __post_init__(self) -> None:
        value = self.high_value_above
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ConfigurationError(
                "must be a finite Decimal amount in EUR", key="high_value_above"
            )
        for key in ("frequent_min_orders", "frequent_window_days", "at_risk_after_days"):
            number = getattr(self, key)
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ConfigurationError("must be a non-negative whole number", key=key)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, key_prefix: str = "") -> FlagThresholds:
        """Build thresholds from plain data (TOML/JSON); unknown or bad keys are named."""
        known = {field.name for field in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigurationError("unknown threshold", key=f"{key_prefix}{key}")
            if key == "high_value_above":
                if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
                    raise ConfigurationError(
                        "must be a decimal string such as '1000.00'", key=f"{key_prefix}{key}"
                    )
                try:
                    value = Decimal(value)
                except InvalidOperation:
                    raise ConfigurationError(
                        "must be a decimal string such as '1000.00'", key=f"{key_prefix}{key}"
                    ) from None
            kwargs[key] = value
        try:
            return cls(**kwargs)
        except ConfigurationError as exc:
            raise ConfigurationError("must be valid", key=f"{key_prefix}{exc.key}") from None


DEFAULT_THRESHOLDS = FlagThresholds()


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """A named box of scores: it matches when R, F and M each fall in their inclusive range."""

    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]

    def matches(self, r: int, f: int, m: int) -> bool:
        """Whether the scores ``(r, f, m)`` fall inside this rule's three ranges."""
        return (
            self.r[0] <= r <= self.r[1]
            and self.f[0] <= f <= self.f[1]
            and self.m[0] <= m <= self.m[1]
        )

    def describe(self) -> str:
        """The ranges as written in the rule book: ``R4-5 F1 M1-5``."""
        parts = []
        for letter, (low, high) in (("R", self.r), ("F", self.f), ("M", self.m)):
            parts.append(f"{letter}{low}" if low == high else f"{letter}{low}-{high}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """An ordered, versioned rule book: the first matching rule names the segment.

    A customer no rule matches gets ``fallback``. Build custom sets with
    :func:`rule_set_from_mapping` or :func:`parse_rule_set`, which validate them.
    """

    name: str
    version: str
    rules: tuple[SegmentRule, ...]
    fallback: str
    _table: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = []
        for code in range(125):
            r, f, m = code // 25 + 1, code // 5 % 5 + 1, code % 5 + 1
            index = next((i for i, rule in enumerate(self.rules) if rule.matches(r, f, m)), -1)
            table.append(index)
        object.__setattr__(self, "_table", tuple(table))

    def match(self, r: int, f: int, m: int) -> SegmentRule | None:
        """The first rule matching ``(r, f, m)``, or ``None`` when the fallback applies."""
        index = self._table[(r - 1) * 25 + (f - 1) * 5 + (m - 1)]
        return None if index < 0 else self.rules[index]

    def segment(self, r: int, f: int, m: int) -> str:
        """The segment name for the scores ``(r, f, m)``."""
        rule = self.match(r, f, m)
        return self.fallback if rule is None else rule.name

    @property
    def segment_names(self) -> tuple[str, ...]:
        """Every segment this set can give, in rule order, fallback last, without repeats."""
        return tuple(dict.fromkeys([*(rule.name for rule in self.rules), self.fallback]))


def _rule(name: str, r: tuple[int, int], f: tuple[int, int], m: tuple[int, int]) -> SegmentRule:
    return SegmentRule(name, r, f, m)


DEFAULT_RULES = RuleSet(
    name="dixis-rfm",
    version="1",
    rules=(
        _rule("Champions", (4, 5), (4, 5), (4, 5)),
        _rule("Loyal", (3, 5), (3, 5), (3, 5)),
        _rule("Potential Loyalist", (4, 5), (2, 3), (1, 5)),
        _rule("New Customers", (5, 5), (1, 1), (1, 5)),
        _rule("Promising", (4, 4), (1, 1), (1, 5)),
        _rule("Need Attention", (3, 3), (2, 3), (2, 5)),
        _rule("About To Sleep", (2, 3), (1, 2), (1, 5)),
        _rule("Cant Lose Them", (1, 2), (4, 5), (4, 5)),
        _rule("At Risk", (1, 2), (2, 5), (2, 5)),
        _rule("Hibernating", (1, 2), (1, 2), (1, 5)),
    ),
    fallback="Lost",
)


def _name(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("must be a non-empty string", key=key)
    return value


def _score_range(value: object, key: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        low = high = value
    elif (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        low, high = value
    else:
        raise ConfigurationError("must be a score 1..5 or a [low, high] pair", key=key)
    if not 1 <= low <= high <= 5:
        raise ConfigurationError(
            f"range [{low}, {high}] must satisfy 1 <= low <= high <= 5", key=key
        )
    return (low, high)


def rule_set_from_mapping(data: Mapping[str, Any]) -> RuleSet:
    """Validate plain data (as loaded from TOML or JSON) into a :class:`RuleSet`.

    Shape: ``name``, ``version``, ``fallback`` (non-empty strings) and ``rules``, a list of
    tables with ``name`` and ``r``, ``f``, ``m`` each a score or an inclusive ``[low, high]``.
    Any problem raises :class:`ConfigurationError` whose ``key`` names it (``rules[2].f``).
    """
    if not isinstance(data, Mapping):
        raise ConfigurationError("a rule set must be a table", key="<root>")
    for key in data:
        if key not in {"name", "version", "fallback", "rules"}:
            raise ConfigurationError("unknown key", key=str(key))
    for key in ("name", "version", "fallback", "rules"):
        if key not in data:
            raise ConfigurationError("is required", key=key)
    version = data["version"]
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    raw_rules = data["rules"]
    if not isinstance(raw_rules, list | tuple):
        raise ConfigurationError("must be a list of rules", key="rules")
    rules = []
    for index, raw in enumerate(raw_rules):
        where = f"rules[{index}]"
        if not isinstance(raw, Mapping):
            raise ConfigurationError("must be a table", key=where)
        for key in raw:
            if key not in {"name", "r", "f", "m"}:
                raise ConfigurationError("unknown key", key=f"{where}.{key}")
        for key in ("name", "r", "f", "m"):
            if key not in raw:
                raise ConfigurationError("is required", key=f"{where}.{key}")
        rules.append(
            SegmentRule(
                _name(raw["name"], f"{where}.name"),
                _score_range(raw["r"], f"{where}.r"),
                _score_range(raw["f"], f"{where}.f"),
                _score_range(raw["m"], f"{where}.m"),
            )
        )
    return RuleSet(
        name=_name(data["name"], "name"),
        version=_name(version, "version"),
        rules=tuple(rules),
        fallback=_name(data["fallback"], "fallback"),
    )


def parse_rule_set(text: str, *, format: Literal["toml", "json"] = "toml") -> RuleSet:
    """Parse a rule set from TOML or JSON text, validated as by :func:`rule_set_from_mapping`."""
    try:
        data = tomllib.loads(text) if format == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"not valid {format.upper()}: {exc}", key="<root>") from None
    return rule_set_from_mapping(data)


def _instant_us(moment: datetime) -> int:
    """Exact microseconds since the Unix epoch of an aware datetime."""
    return (moment - _EPOCH) // _MICROSECOND


def _check_as_of(as_of: object) -> datetime:
    if not isinstance(as_of, datetime) or as_of.utcoffset() is None:
        raise InvalidInput(
            "as_of must be a timezone-aware datetime",
            errors=[FieldError(("as_of",), "must be timezone-aware", "naive_datetime")],
        )
    return as_of


def _cents(total: object) -> int | None:
    """Exact cents of a non-negative Decimal with at most two places, else ``None``."""
    if not isinstance(total, Decimal) or not total.is_finite() or total < 0:
        return None
    cents = total.scaleb(2)
    if cents != cents.to_integral_value():
        return None
    return int(cents)


class CustomerAggregates:
    """Per-customer sums of counting orders for one ``as_of`` and thresholds; mergeable.

    Holds, for each customer with at least one counting order: the count, the exact total
    in cents, the count inside the frequent-buyer window and the last order's instant.
    Aggregating two chunks separately and merging them equals aggregating both at once.
    """

    __slots__ = ("_last", "_stats", "as_of", "thresholds")

    def __init__(self, as_of: datetime, thresholds: FlagThresholds = DEFAULT_THRESHOLDS) -> None:
        self.as_of = _check_as_of(as_of)
        self.thresholds = thresholds
        self._stats: dict[str, int] = {}
        self._last: dict[str, int] = {}

    @property
    def window_start(self) -> datetime:
        """The first instant inside the frequent-buyer window (included)."""
        return self.as_of - timedelta(days=self.thresholds.frequent_window_days)

    def update(self, orders: Iterable[SegmentOrder], *, start: int = 0) -> None:
        """Add orders (any iterable, consumed once); a bad order raises ``InvalidInput``.

        The error's field path is ``orders[i].field`` with ``i`` counted from ``start``.
        """
        as_of_us = _instant_us(self.as_of)
        window_us = _instant_us(self.window_start)
        stats, last = self._stats, self._last
        stats_get, last_get = stats.get, last.get
        for index, order in enumerate(orders, start):
            customer, created, total, status = order
            if not isinstance(customer, str) or not customer:
                _bad_order(index, "customer_id", "must be a non-empty string")
            if not isinstance(created, datetime) or created.utcoffset() is None:
                _bad_order(index, "created_at", "must be a timezone-aware datetime")
            cents = _cents(total)
            if cents is None:
                _bad_order(index, "total", "must be a non-negative Decimal with at most 2 places")
            if status != COUNTING_STATUS:
                if status not in ORDER_STATUSES:
                    _bad_order(index, "status", f"unknown status {status!r}")
                continue
            at = _instant_us(created)
            if at > as_of_us:
                continue
            step = (cents << _CENTS_SHIFT) + (_ONE_RECENT_ORDER if at >= window_us else _ONE_ORDER)
            stats[customer] = stats_get(customer, 0) + step
            if at > last_get(customer, -(1 << 62)):
                last[customer] = at

    def merged(self, other: CustomerAggregates) -> CustomerAggregates:
        """A new aggregate holding both; ``as_of`` and thresholds must be identical."""
        if other.as_of != self.as_of:
            raise ConfigurationError("cannot merge aggregates for different as_of", key="as_of")
        if other.thresholds != self.thresholds:
            raise ConfigurationError(
                "cannot merge aggregates built with different thresholds", key="thresholds"
            )
        result = CustomerAggregates(self.as_of, self.thresholds)
        result._stats = dict(self._stats)
        result._last = dict(self._last)
        keys = list(other._stats)
        result._absorb(keys, other._stats.values(), map(other._last.__getitem__, keys))
        return result

    @classmethod
    def _from_parts(
        cls,
        as_of: datetime,
        thresholds: FlagThresholds,
        stats: dict[str, int],
        last: dict[str, int],
    ) -> CustomerAggregates:
        """Adopt already-packed per-customer values (for the file readers of this package)."""
        result = cls(as_of, thresholds)
        result._stats = stats
        result._last = last
        return result

    def _absorb(self, keys: list[str], stats: Iterable[int], last: Iterable[int]) -> None:
        _absorb(self._stats, self._last, keys, stats, last)

    def __len__(self) -> int:
        return len(self._stats)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._stats

    def customer(self, customer_id: str) -> tuple[int, Decimal, int, datetime]:
        """``(frequency, monetary, recent_orders, last_order_at)`` for one customer."""
        packed = self._stats[customer_id]
        return (
            packed >> _COUNT_SHIFT & _FIELD_MASK,
            Decimal(packed >> _CENTS_SHIFT).scaleb(-2),
            packed & _FIELD_MASK,
            _EPOCH + timedelta(microseconds=self._last[customer_id]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CustomerAggregates):
            return NotImplemented
        return (
            self.as_of == other.as_of
            and self.thresholds == other.thresholds
            and self._stats == other._stats
            and self._last == other._last
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CustomerAggregates(as_of={self.as_of.isoformat()}, customers={len(self)})"


def _absorb(
    stats: dict[str, int],
    last: dict[str, int],
    keys: list[str],
    packed: Iterable[int],
    instants: Iterable[int],
) -> None:
    """Merge per-customer values given as aligned ``keys``, packed stats and last instants."""
    # C-level loops: each map pulls one key at a time, so repeated keys stay exact.
    stats.update(zip(keys, map(add, map(stats.get, keys, repeat(0)), packed), strict=True))
    floor = repeat(-(1 << 62))
    last.update(zip(keys, map(max, map(last.get, keys, floor), instants), strict=True))


def _bad_order(index: int, name: str, message: str) -> NoReturn:
    raise InvalidInput(
        f"order {index} is invalid",
        errors=[FieldError(("orders", index, name), message, "invalid_order")],
    )


def aggregate(
    orders: Iterable[SegmentOrder],
    as_of: datetime,
    thresholds: FlagThresholds = DEFAULT_THRESHOLDS,
) -> CustomerAggregates:
    """Aggregate a stream of orders per customer (memory grows with customers only)."""
    result = CustomerAggregates(as_of, thresholds)
    result.update(orders)
    return result


@dataclass(frozen=True, slots=True)
class ScoreCutoffs:
    """The quintile boundaries actually used: each tuple holds 4 cut values.

    A customer scores ``1 + (number of cuts passed)``. Recency passes a cut when its
    ``recency_days`` is strictly below it; frequency and monetary when strictly above it.
    Customers with equal values always pass the same cuts, so they share a score.
    """

    recency_days: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class SegmentationBasis:
    """What every result of one scoring run was computed from (shared by all results)."""

    as_of: datetime
    customers: int
    thresholds: FlagThresholds
    rules: RuleSet
    cutoffs: ScoreCutoffs


class CustomerSegment(NamedTuple):
    """One customer's segment with its own explanation.

    Raw values (``recency_days``, ``frequency``, ``monetary``, ``recent_orders``,
    ``last_order_at``), scores (``r``, ``f``, ``m``), the segment and the rule that matched
    (``None`` when the rule set's fallback applied), the flags, and the ``basis``: as_of,
    thresholds, score cutoffs and rule set. :meth:`explain` renders it all as text.
    """

    customer_id: str
    recency_days: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int
    segment: str
    high_value: bool
    frequent_buyer: bool
    at_risk: bool
    recent_orders: int
    last_order_at: datetime
    rule: SegmentRule | None
    basis: SegmentationBasis

    def explain(self) -> str:
        """A human-readable account of every value, score, threshold and the rule used."""
        basis, thresholds, cuts = self.basis, self.basis.thresholds, self.basis.cutoffs
        rules = basis.rules
        if self.rule is None:
            why = f"no rule of {rules.name} v{rules.version} matched, fallback"
        else:
            position = rules.rules.index(self.rule) + 1
            why = f"rule {position} of {rules.name} v{rules.version}: {self.rule.describe()}"
        window = basis.as_of - timedelta(days=thresholds.frequent_window_days)
        risk_line = basis.as_of - timedelta(days=thresholds.at_risk_after_days)
        return "\n".join(
            [
                f"{self.customer_id}: {self.segment} ({why})",
                f"  as of {basis.as_of.isoformat()}, {basis.customers} customers scored",
                f"  R={self.r}: recency {self.recency_days} days "
                f"(last order {self.last_order_at.isoformat()}); "
                f"R = 1 + how many of {list(cuts.recency_days)} days are above it",
                f"  F={self.f}: {self.frequency} orders; "
                f"F = 1 + how many of {list(cuts.frequency)} orders are below it",
                f"  M={self.m}: {self.monetary:.2f} EUR; "
                f"M = 1 + how many of {[f'{c:.2f}' for c in cuts.monetary]} EUR are below it",
                f"  high_value={_flag(self.high_value)}: {self.monetary:.2f} > "
                f"{thresholds.high_value_above} EUR",
                f"  frequent_buyer={_flag(self.frequent_buyer)}: {self.recent_orders} orders "
                f"since {window.isoformat()} >= {thresholds.frequent_min_orders}",
                f"  at_risk={_flag(self.at_risk)}: last order {self.last_order_at.isoformat()} "
                f"< {risk_line.isoformat()}",
            ]
        )


def _flag(value: bool) -> str:
    return "true" if value else "false"


class _Columns(NamedTuple):
    """The scoring output as parallel lists sorted by customer id (cheap for millions)."""

    customer_ids: list[str]
    recency_days: list[int]
    frequency: list[int]
    cents: list[int]
    r: list[int]
    f: list[int]
    m: list[int]
    rule_index: list[int]
    high_value: list[bool]
    frequent_buyer: list[bool]
    at_risk: list[bool]
    recent_orders: list[int]
    last_us: list[int]
    cutoffs: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def _cuts(values: Sequence[int], *, descending: bool = False) -> tuple[int, ...]:
    """The four rank-quintile cut values of ``values`` sorted as the metric ranks.

    With ``i0`` the number of values ranked strictly before ``v`` (its tie group's first
    0-based position), ``1 + floor(5*i0/n)`` equals ``1 + #{s in 1..4 : i0 >= ceil(s*n/5)}``
    and ``i0 >= k`` holds exactly when ``ordered[k - 1]`` ranks strictly before ``v``.
    """
    return _sorted_cuts(sorted(values), descending=descending)


def _sorted_cuts(ascending: Sequence[int], *, descending: bool = False) -> tuple[int, ...]:
    """:func:`_cuts` of values already sorted ascending (however the metric ranks)."""
    n = len(ascending)
    positions = [-(-s * n // 5) - 1 for s in range(1, 5)]
    if descending:  # position k of the descending order is n - 1 - k of the ascending one
        return tuple(ascending[n - 1 - k] for k in positions)
    return tuple(ascending[k] for k in positions)


def _quintile_scores(values: list[int], cuts: tuple[int, ...]) -> list[int]:
    """Ascending metric: 1 + the number of cuts strictly below each value."""
    if not values:
        return []
    # bisect_left over (floor, c1..c4) counts the floor plus every cut strictly below v.
    bounds = (min(values) - 1, *cuts)
    return list(map(bisect_left, repeat(bounds), values))


def _descending_scores(values: list[int], cuts: tuple[int, ...]) -> list[int]:
    """Descending metric: 1 + the number of cuts strictly above each value."""
    ascending = tuple(reversed(cuts))
    return list(map(sub, repeat(5), map(bisect_right, repeat(ascending), values)))


def _score_columns(
    aggregates: CustomerAggregates, rules: RuleSet, *, consume: bool = False
) -> _Columns:
    """Score every customer; with ``consume`` the aggregates are emptied to save memory."""
    stats, last = aggregates._stats, aggregates._last
    ids = sorted(stats)
    packed = list(map(stats.__getitem__, ids))
    last_us = list(map(last.__getitem__, ids))
    if consume:
        stats.clear()
        last.clear()
    return _score_sorted(ids, packed, last_us, aggregates.as_of, aggregates.thresholds, rules)


class _Metrics(NamedTuple):
    """The raw RFM values and recent-order counts of customers, aligned with their ids."""

    recency_days: list[int]
    frequency: list[int]
    cents: list[int]
    recent_orders: list[int]


_Cutoffs = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def _metrics(packed: list[int], last_us: list[int], as_of: datetime) -> _Metrics:
    """Unpack aligned packed stats and last-order instants (``packed`` is consumed)."""
    as_of_us = _instant_us(as_of)
    recency = list(map(floordiv, map(sub, repeat(as_of_us), last_us), repeat(_DAY_US)))
    frequency = list(map(and_, map(rshift, packed, repeat(_COUNT_SHIFT)), repeat(_FIELD_MASK)))
    cents = list(map(rshift, packed, repeat(_CENTS_SHIFT)))
    recent = list(map(and_, packed, repeat(_FIELD_MASK)))
    packed.clear()
    return _Metrics(recency, frequency, cents, recent)


def _metric_cutoffs(ascending: tuple[list[int], list[int], list[int]]) -> _Cutoffs:
    """Cut-offs from every scored customer's recency, frequency and cents, each sorted."""
    recency, frequency, cents = ascending
    # Recency ranks descending (most recent scores 5): cuts come from the days sorted down.
    return (
        _sorted_cuts(recency, descending=True),
        _sorted_cuts(frequency),
        _sorted_cuts(cents),
    )


def _score_sorted(
    ids: list[str],
    packed: list[int],
    last_us: list[int],
    as_of: datetime,
    thresholds: FlagThresholds,
    rules: RuleSet,
) -> _Columns:
    """Score customers given as aligned lists sorted by id (``packed`` is consumed)."""
    if not ids:
        return _Columns([], [], [], [], [], [], [], [], [], [], [], [], [], ((), (), ()))
    metrics = _metrics(packed, last_us, as_of)
    cutoffs = _metric_cutoffs(
        (sorted(metrics.recency_days), sorted(metrics.frequency), sorted(metrics.cents))
    )
    return _score_metrics(ids, metrics, last_us, cutoffs, as_of, thresholds, rules)


def _score_metrics(
    ids: list[str],
    metrics: _Metrics,
    last_us: list[int],
    cutoffs: _Cutoffs,
    as_of: datetime,
    thresholds: FlagThresholds,
    rules: RuleSet,
) -> _Columns:
    """Scores, segments and flags of customers, with cut-offs that may cover more customers."""
    recency, frequency, cents, recent = metrics
    r_cuts, f_cuts, m_cuts = cutoffs
    r = _descending_scores(recency, r_cuts)
    f = _quintile_scores(frequency, f_cuts)
    m = _quintile_scores(cents, m_cuts)
    by_scores = {
        (code // 25 + 1, code // 5 % 5 + 1, code % 5 + 1): index
        for code, index in enumerate(rules._table)
    }
    rule_index = list(map(by_scores.__getitem__, zip(r, f, m, strict=True)))
    # Cents are whole, so "monetary > threshold" is "cents > floor(threshold * 100)".
    high_cut = int(thresholds.high_value_above.scaleb(2).to_integral_value(rounding=ROUND_FLOOR))
    high_value = list(map(high_cut.__lt__, cents))
    frequent = list(map(thresholds.frequent_min_orders.__le__, recent))
    risk_line = _instant_us(as_of) - thresholds.at_risk_after_days * _DAY_US
    at_risk = list(map(risk_line.__gt__, last_us))
    return _Columns(
        ids,
        recency,
        frequency,
        cents,
        r,
        f,
        m,
        rule_index,
        high_value,
        frequent,
        at_risk,
        recent,
        last_us,
        cutoffs,
    )


def score(aggregates: CustomerAggregates, rules: RuleSet = DEFAULT_RULES) -> list[CustomerSegment]:
    """Score aggregated customers and name their segments; sorted by customer id."""
    columns = _score_columns(aggregates, rules)
    r_cuts, f_cuts, m_cuts = columns.cutoffs
    basis = SegmentationBasis(
        as_of=aggregates.as_of,
        customers=len(columns.customer_ids),
        thresholds=aggregates.thresholds,
        rules=rules,
        cutoffs=ScoreCutoffs(r_cuts, f_cuts, tuple(Decimal(c).scaleb(-2) for c in m_cuts)),
    )
    rule_of = [*rules.rules, None]
    segment_of = [*(rule.name for rule in rules.rules), rules.fallback]
    return [
        CustomerSegment(
            customer_id,
            recency,
            frequency,
            Decimal(cents).scaleb(-2),
            r,
            f,
            m,
            segment_of[index],
            high,
            frequent,
            risk,
            recent,
            _EPOCH + timedelta(microseconds=at),
            rule_of[index],
            basis,
        )
        for (
            customer_id,
            recency,
            frequency,
            cents,
            r,
            f,
            m,
            index,
            high,
            frequent,
            risk,
            recent,
            at,
        ) in zip(*columns[:13], strict=True)
    ]


def segment_customers(
    orders: Iterable[SegmentOrder],
    as_of: datetime,
    *,
    rules: RuleSet = DEFAULT_RULES,
    thresholds: FlagThresholds = DEFAULT_THRESHOLDS,
) -> list[CustomerSegment]:
    """Segment every customer with a counting order as of ``as_of``; sorted by customer id."""
    return score(aggregate(orders, as_of, thresholds), rules)


def segment_memberships(
    results: Iterable[CustomerSegment], *, rules: RuleSet | None = None
) -> dict[str, list[str]]:
    """Segment name -> sorted customer ids, ready to push to a CRM list or email audience.

    With ``rules``, every segment the rule set can give is present (empty lists included, in
    rule order, fallback last) so that a push can also empty a list; without it, only the
    segments that have members appear, sorted by name.
    """
    groups: dict[str, list[str]] = {name: [] for name in rules.segment_names} if rules else {}
    for result in results:
        groups.setdefault(result.segment, []).append(result.customer_id)
    if rules is None:
        groups = dict(sorted(groups.items()))
    for members in groups.values():
        members.sort()
    return groups


def flag_memberships(results: Iterable[CustomerSegment]) -> dict[str, list[str]]:
    """Flag name (``high_value``, ``frequent_buyer``, ``at_risk``) -> sorted customer ids."""
    groups: dict[str, list[str]] = {"high_value": [], "frequent_buyer": [], "at_risk": []}
    for result in results:
        for name, flagged in zip(
            groups, (result.high_value, result.frequent_buyer, result.at_risk), strict=True
        ):
            if flagged:
                groups[name].append(result.customer_id)
    for members in groups.values():
        members.sort()
    return groups
