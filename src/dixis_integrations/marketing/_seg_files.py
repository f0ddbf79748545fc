"""Order exports (CSV or JSON Lines) into segmentation aggregates, and scores out as CSV.

Streams in chunks (memory grows with customers), can split a file across processes by
byte ranges, and names the line of the first malformed row in an ``InvalidInput``.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import pickle
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import chain, compress, islice, pairwise, repeat
from multiprocessing.connection import Connection
from operator import add, floordiv, itemgetter, le, lt, methodcaller, mod
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from dixis_integrations.errors import FieldError, InvalidInput
from dixis_integrations.marketing.segmentation import (
    _CENTS_SHIFT,
    _ONE_ORDER,
    _ONE_RECENT_ORDER,
    COUNTING_STATUS,
    ORDER_STATUSES,
    CustomerAggregates,
    FlagThresholds,
    RuleSet,
    _absorb,
    _Columns,
    _instant_us,
    _metric_cutoffs,
    _Metrics,
    _metrics,
    _score_metrics,
    _score_sorted,
)

__all__ = ["CSV_COLUMNS", "read_aggregates", "read_parts", "segment_file", "write_csv"]

CSV_COLUMNS = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "segment",
    "high_value",
    "frequent_buyer",
    "at_risk",
)
_FIELDS = ("customer_id", "created_at", "total_amount", "status")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND_US = 1_000_000
_DAY_US = 86_400 * _SECOND_US
_NO_KEY = b""  # sorts before every timestamp key
_AMOUNT_CACHE = 1 << 16  # distinct amount fields remembered per reader (bounded memory)
_BATCH = 131_072  # customers per slice: worker messages, and conversions done in place
_SCAN_BYTES = 16 << 20

# One canonical UTC timestamp per row, calendar-exact (leap years included): the fast
# path checks a whole chunk's timestamps at once (see _canonical_stamps).
_SHAPES = {20: b"0000-00-00T00:00:00Z,", 25: b"0000-00-00T00:00:00+00:00,"}
_ZEROS = bytes.maketrans(b"0123456789", b"0" * 10)
_TENS = bytes.maketrans(b"0123456789", bytes(range(0, 100, 10)))
_UNITS = bytes.maketrans(b"0123456789", bytes(range(10)))
_IS_TWO = bytes(1 if c == ord("2") else 0 for c in range(256))
_ABOVE_THREE = bytes(1 if c > ord("3") else 0 for c in range(256))
# Month number -> its last day; February 29 is then checked against the year.
_LAST_DAY = bytes([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]) + bytes(243)
# Two-digit values (byte lanes) -> 1 or 0: a leap year's last two digits when they are not
# 00; 00; a multiple of 4 (the first two digits of a leap century).
_LEAP_YY = bytes(1 if v % 4 == 0 and v else 0 for v in range(256))
_CENTURY = bytes([1]) + bytes(255)
_FOURS = bytes(1 if v % 4 == 0 else 0 for v in range(256))


def _canonical_stamps(stamps: list[bytes]) -> bool:
    """Whether every stamp is ``YYYY-MM-DDTHH:MM:SS`` then all ``Z`` or all ``+00:00``,
    with a year 0001-9999, a month 01-12, a day that month has (February 29 in leap
    years of the proleptic Gregorian calendar), hours 00-23, minutes and seconds
    00-59; with C-level passes only.

    The stamps are joined with "," (which no field holds). One translation checks the
    shape; strided slices pick one digit of every stamp, and the ranges are checked a
    whole column at a time, with two-digit values (at most 99) added up as byte lanes of
    Python integers; the sums and differences below never carry or borrow across lanes.
    """
    width = len(stamps[0])
    shape = _SHAPES.get(width)
    if shape is None:
        return False
    joined = b",".join(stamps)
    count, step = len(stamps), width + 1
    if joined.translate(_ZEROS) != (shape * count)[:-1]:
        return False
    if width == 25 and joined.count(b"+00:00") != count:  # the shape has 0 for any digit
        return False
    if joined.startswith(b"0000-") or b",0000-" in joined:  # no year 0 (datetime.MINYEAR)
        return False
    # Minutes and seconds start with 0-5; hours are 00-23.
    if joined[14::step].translate(None, b"012345") or joined[17::step].translate(None, b"012345"):
        return False
    hours = joined[11::step]
    if hours.translate(None, b"012"):
        return False
    twenty = _lanes(hours, _IS_TWO)
    if twenty and twenty & _lanes(joined[12::step], _ABOVE_THREE):
        return False
    ones = int.from_bytes(b"\x01" * count, _BIG)
    high = ones << 7
    month = _lanes(joined[5::step], _TENS) + _lanes(joined[6::step], _UNITS)
    day = _lanes(joined[8::step], _TENS) + _lanes(joined[9::step], _UNITS)
    last = _lanes(month.to_bytes(count, _BIG), _LAST_DAY)
    # 1 <= day <= the month's last day (0 for a month that does not exist).
    if (day + ones * 0x7F) & high != high or (last + high - day) & high != high:
        return False
    if b"-02-29T" not in joined:
        return True
    # A lane is zero exactly where month and day are 02 and 29; x + 0x7F sets the lane's
    # high bit exactly where x is not zero.
    other = (month ^ ones * 2) | (day ^ ones * 29)
    leap_days = ((other + ones * 0x7F) & high ^ high) >> 7
    yy = (_lanes(joined[2::step], _TENS) + _lanes(joined[3::step], _UNITS)).to_bytes(count, _BIG)
    cc = (_lanes(joined[0::step], _TENS) + _lanes(joined[1::step], _UNITS)).to_bytes(count, _BIG)
    leap = _lanes(yy, _LEAP_YY) | _lanes(yy, _CENTURY) & _lanes(cc, _FOURS)
    return leap_days & ~leap == 0


_BIG: Literal["big"] = "big"


def _lanes(column: bytes, table: bytes) -> int:
    """One byte lane per stamp: ``column`` translated by ``table``, as one integer."""
    return int.from_bytes(column.translate(table), _BIG)


_FAST_AMOUNT = re.compile(rb"\d+\.\d\d")
_AMOUNT = re.compile(r"(\d+)(?:\.(\d{1,2}))?", re.ASCII)


class _RowError(Exception):
    """A bad row, with its line counted from the start of the byte range being read."""

    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(line, field, message)
        self.line = line
        self.field = field
        self.message = message


def _invalid(line: int, field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"line {line} of the orders file is invalid",
        errors=[FieldError(("line", line, field), message, "invalid_row")],
    )


def _key(moment: datetime) -> str:
    """A timestamp key that sorts like the instant and like the file's canonical stamps.

    ``YYYY-MM-DDTHH:MM:SSZ`` (plus six microsecond digits when there are any): two keys
    differ in the first 19 characters exactly when their whole seconds differ, and a
    file's ``...Z`` or ``...+00:00`` for the same second sorts before a fractional key.
    """
    utc = moment.astimezone(UTC)
    text = utc.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    return text + f"{utc.microsecond:06d}" if utc.microsecond else text


class _DayStart(dict[bytes, int]):
    """``YYYY-MM-DD`` -> microseconds since the epoch at its midnight UTC (filled lazily)."""

    def __missing__(self, text: bytes) -> int:
        value = (date.fromisoformat(text.decode("ascii")) - date(1970, 1, 1)).days * _DAY_US
        self[text] = value
        return value


class _ClockTime(dict[bytes, int]):
    """``HH:MM:SS`` -> microseconds since midnight (filled lazily)."""

    def __missing__(self, text: bytes) -> int:
        value = (int(text[:2]) * 3600 + int(text[3:5]) * 60 + int(text[6:8])) * _SECOND_US
        self[text] = value
        return value


def _keys_to_us(keys: list[bytes]) -> list[int]:
    days = map(_DayStart().__getitem__, map(itemgetter(slice(0, 10)), keys))
    clock = map(_ClockTime().__getitem__, map(itemgetter(slice(11, 19)), keys))
    result = list(map(add, days, clock))
    if not set(map(len, keys)) <= {20, 25}:
        for index, key in enumerate(keys):
            if len(key) == 26:
                result[index] += int(key[20:])
    return result


class _Unsure(Exception):
    """The fast path met something it does not check itself (the careful reader will)."""


class _Packed(dict[bytes, int]):
    """An amount field (``12.50``) -> a row's packed stats: its cents and one order.

    Filled lazily and bounded: real exports repeat a limited set of prices.
    """

    def __missing__(self, text: bytes) -> int:
        if _FAST_AMOUNT.fullmatch(text) is None:
            raise _Unsure
        if len(self) >= _AMOUNT_CACHE:
            self.clear()
        value = (int(text.replace(b".", b"")) << _CENTS_SHIFT) + _ONE_ORDER
        self[text] = value
        return value


_K = TypeVar("_K", str, bytes)
_V = TypeVar("_V")
#: Customer ids sorted, with their packed stats and last-order instants (µs), aligned.
_Parts = tuple[list[str], list[int], list[int]]
_DECODE = methodcaller("decode", "utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything a reader of one byte range needs; small and picklable."""

    path: str
    fmt: Literal["csv", "jsonl"]
    width: int
    columns: tuple[int, int, int, int]
    as_of_us: int
    window_us: int
    as_of_key: bytes
    window_key: bytes
    chunk_bytes: int


#: The customer that the fast path gives rows that do not count (refunded, cancelled or
#: after ``as_of``): no field of a CSV line split at commas can be a comma, and only CSV
#: chunks take the fast path.
_DROPPED = b","


class _Accumulator:
    """Per-customer packed stats and last-order keys for one byte range (bytes keys)."""

    __slots__ = ("amounts", "dropped", "last", "stats")

    def __init__(self) -> None:
        self.stats: dict[bytes, int] = {}
        self.last: dict[bytes, bytes] = {}
        self.amounts = _Packed()
        self.dropped = False

    def finish(self) -> None:
        """Forget the rows the fast path set aside (see :data:`_DROPPED`)."""
        if self.dropped:
            self.stats.pop(_DROPPED, None)
            self.last.pop(_DROPPED, None)
            self.dropped = False

    def add_rows(self, customers: list[bytes], keys: list[bytes], values: Iterable[int]) -> None:
        """Add rows given as aligned columns; ``values`` are the rows' packed stats."""
        stats = self.stats
        # Lazy maps pull one row at a time, so a customer repeated in a chunk stays exact.
        stats.update(
            zip(customers, map(add, map(stats.get, customers, repeat(0)), values), strict=True)
        )
        last = self.last
        newer = map(lt, map(last.get, customers, repeat(_NO_KEY)), keys)
        last.update(compress(zip(customers, keys, strict=True), newer))

    def add_one(self, customer: str, key: str, cents: int, recent: bool) -> None:
        name = customer.encode("utf-8", "surrogatepass")  # UTF-8 sorts like the text
        step = _ONE_RECENT_ORDER if recent else _ONE_ORDER
        self.stats[name] = self.stats.get(name, 0) + (cents << _CENTS_SHIFT) + step
        stamp = key.encode("ascii")
        if self.last.get(name, _NO_KEY) < stamp:
            self.last[name] = stamp

    def parts(self) -> _Parts:
        """Everything, sorted by customer id, stamps as instants; empties the accumulator."""
        stats, last = self.stats, self.last
        self.stats, self.last = {}, {}
        ids, packed, keys = _sorted_columns(stats, last)
        del stats, last
        instants = _keys_to_us(keys)
        del keys
        return list(map(_DECODE, ids)), packed, instants


def _sorted_columns(
    stats: dict[_K, int], last: dict[_K, _V]
) -> tuple[list[_K], list[int], list[_V]]:
    """The keys sorted, with both dicts' values aligned to them; empties both dicts.

    Both dicts normally hold the same keys in the same order (they are built and updated
    together), so one sorting permutation over their lists serves all three, with no hash
    lookups; otherwise the values are looked up. Each dict is emptied once read.
    """
    keys = list(stats)
    if list(last) != keys:  # same objects in the same order: a pointer comparison per key
        keys.sort()
        packed = list(map(stats.__getitem__, keys))
        stats.clear()
        later = list(map(last.__getitem__, keys))
        last.clear()
        return keys, packed, later
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ids = list(map(keys.__getitem__, order))
    del keys
    values = list(stats.values())
    stats.clear()
    packed = list(map(values.__getitem__, order))
    del values
    instants = list(last.values())
    last.clear()
    return ids, packed, list(map(instants.__getitem__, order))


def _fast_csv_chunk(data: bytes, plan: _Plan, acc: _Accumulator) -> bool:
    """Aggregate a chunk of canonical CSV lines with C-level passes; ``False`` if unsure.

    Unsure (an odd row anywhere in the chunk) means nothing was added: the careful
    row-by-row reader then handles the chunk and names the bad line, if there is one.
    """
    if not data.isascii():
        return False
    width = plan.width
    fields = data.replace(b"\n", b",\n").split(b",")
    count = len(fields) // width
    if count == 0 or len(fields) != count * width:
        return False
    # Each "\n" now starts a field. If the slots width, 2*width, ... hold all the chunk's
    # newlines, one each, every line has exactly ``width`` fields.
    newlines = data.count(b"\n")
    if newlines != count - 1 or b"".join(fields[width::width]).count(b"\n") != newlines:
        return False
    ci, ti, ai, si = plan.columns
    columns = []
    for index in (ci, ti, ai, si):
        column = fields[index::width]
        if index == 0:
            column[1:] = map(itemgetter(slice(1, None)), column[1:])
        columns.append(column)
    del fields
    customers, stamps, amounts, statuses = columns
    paid = statuses.count(b"paid")
    refunded, cancelled = statuses.count(b"refunded"), statuses.count(b"cancelled")
    if paid + refunded + cancelled != count or b"" in customers:
        return False
    if not _canonical_stamps(stamps):
        return False
    try:  # every amount is checked, counting or not (a new one by a regex, once)
        values = list(map(acc.amounts.__getitem__, amounts))
    except _Unsure:
        return False
    del amounts
    # Counting rows: paid, and not after as_of (the stamps compare like their instants).
    # The others are few: C-level scans find them and one mask drops them.
    dropped: list[int] = []
    _positions(statuses, b"refunded", refunded, dropped)
    _positions(statuses, b"cancelled", cancelled, dropped)
    earliest, latest = min(stamps), max(stamps)
    if latest > plan.as_of_key:
        late = list(map(lt, repeat(plan.as_of_key), stamps))
        _positions(late, True, late.count(True), dropped)
    if dropped:
        # Cheaper than dropping the rows from three lists: they all go to one customer
        # that no CSV field can name, removed when the range is read.
        for index in dropped:
            customers[index] = _DROPPED
        acc.dropped = True
    # A row inside the frequent-buyer window adds one recent order: True is 1.
    window = plan.window_key
    if earliest >= window:
        acc.add_rows(customers, stamps, map(add, values, repeat(1)))
    elif latest < window:
        acc.add_rows(customers, stamps, values)
    else:
        acc.add_rows(customers, stamps, map(add, values, map(le, repeat(window), stamps)))
    return True


def _positions(values: list[Any], value: object, count: int, out: list[int]) -> None:
    """Append the indices of the ``count`` occurrences of ``value`` in ``values`` to ``out``."""
    index = values.index
    at = -1
    for _ in range(count):
        at = index(value, at + 1)
        out.append(at)


def _parse_instant(text: str, line: int) -> datetime:
    """The instant in UTC; naive or malformed timestamps are a bad row."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _RowError(line, "created_at", f"{text!r} is not an ISO 8601 timestamp") from None
    if moment.utcoffset() is None:
        raise _RowError(line, "created_at", f"{text!r} has no UTC offset (use ...Z)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _RowError(line, "created_at", f"{text!r} is out of range in UTC") from None


def _parse_cents(text: str, line: int) -> int:
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise _RowError(
            line,
            "total_amount",
            f"{text!r} is not an amount in EUR like 12.50 (at most 2 decimals)",
        )
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


def _check_row(
    customer: object, stamp: object, amount: object, status: object, line: int
) -> tuple[str, datetime, int, str]:
    if not isinstance(customer, str) or not customer:
        raise _RowError(line, "customer_id", "must be a non-empty string")
    if not isinstance(stamp, str):
        raise _RowError(line, "created_at", "must be an ISO 8601 timestamp string")
    moment = _parse_instant(stamp, line)
    if isinstance(amount, int | Decimal) and not isinstance(amount, bool):
        amount = str(amount)
    if not isinstance(amount, str):
        raise _RowError(line, "total_amount", "must be a decimal string such as 12.50")
    cents = _parse_cents(amount, line)
    if status not in ORDER_STATUSES:
        raise _RowError(
            line, "status", f"unknown status {status!r} (expected paid, refunded or cancelled)"
        )
    assert isinstance(status, str)
    return customer, moment, cents, status


def _add_checked(row: tuple[str, datetime, int, str], plan: _Plan, acc: _Accumulator) -> None:
    customer, moment, cents, status = row
    if status != COUNTING_STATUS:
        return
    at = _instant_us(moment)
    if at <= plan.as_of_us:
        acc.add_one(customer, _key(moment), cents, at >= plan.window_us)


def _csv_fields(fields: list[str], plan: _Plan, line: int) -> tuple[str, datetime, int, str]:
    if len(fields) != plan.width:
        raise _RowError(line, "<row>", f"expected {plan.width} fields, found {len(fields)}")
    ci, ti, ai, si = plan.columns
    return _check_row(fields[ci], fields[ti], fields[ai], fields[si], line)


def _careful_chunk(data: bytes, plan: _Plan, acc: _Accumulator, first_line: int) -> None:
    """Row by row, for chunks the fast path declined: exact, and names the bad line."""
    for offset, raw in enumerate(data.split(b"\n")):
        line = first_line + offset
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _RowError(line, "<row>", "is not valid UTF-8") from None
        text = text.removesuffix("\r")
        if not text.strip():
            continue
        if plan.fmt == "csv":
            row = _csv_fields(text.split(","), plan, line)
        else:
            row = _jsonl_fields(text, line)
        _add_checked(row, plan, acc)


def _jsonl_fields(text: str, line: int) -> tuple[str, datetime, int, str]:
    try:
        record = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise _RowError(line, "<row>", f"is not valid JSON ({exc.args[0]})") from None
    if not isinstance(record, dict):
        raise _RowError(line, "<row>", "must be a JSON object")
    for name in _FIELDS:
        if name not in record:
            raise _RowError(line, name, "is required")
    return _check_row(
        record["customer_id"], record["created_at"], record["total_amount"], record["status"], line
    )


def _read_range(plan: _Plan, start: int, end: int) -> _Accumulator:
    """Aggregate the lines in ``[start, end)``; both ends sit at line starts (or EOF)."""
    acc = _Accumulator()
    _read_into(acc, plan, start, end)
    acc.finish()
    return acc


def _read_into(
    acc: _Accumulator, plan: _Plan, start: int, end: int, *, quotes: bool = False
) -> None:
    """Add the lines in ``[start, end)`` to ``acc`` (call ``acc.finish()`` after the last).

    With ``quotes``, a double quote anywhere in the range raises :class:`_Quoted`.
    """
    line = 0
    with open(plan.path, "rb") as stream:
        stream.seek(start)
        position, carry = start, b""
        while position < end:
            block = stream.read(min(plan.chunk_bytes, end - position))
            if not block:
                break
            if quotes and b'"' in block:
                raise _Quoted
            position += len(block)
            block = carry + block
            if position < end:
                cut = block.rfind(b"\n") + 1
                block, carry = block[:cut], block[cut:]
            else:
                carry = b""
            if not block:
                continue
            data = block[:-1] if block.endswith(b"\n") else block
            lines = data.count(b"\n") + 1
            if not (plan.fmt == "csv" and _try_fast(data, plan, acc)):
                _careful_chunk(data, plan, acc, line)
            line += lines
        if carry:
            _careful_chunk(carry, plan, acc, line)


def _try_fast(data: bytes, plan: _Plan, acc: _Accumulator) -> bool:
    if b"\r" in data:  # Windows line ends keep the line count; a lone CR goes the careful way
        data = data.replace(b"\r\n", b"\n").removesuffix(b"\r")
        if b"\r" in data:
            return False
    return _fast_csv_chunk(data, plan, acc)


def _line_of(path: str, offset: int) -> int:
    """The 1-based line number of the line starting at byte ``offset``."""
    count = 0
    with open(path, "rb") as stream:
        while stream.tell() < offset:
            count += stream.read(min(_SCAN_BYTES, offset - stream.tell())).count(b"\n")
    return count + 1


def _range_worker(plan: _Plan, start: int, end: int, conn: Connection) -> None:
    """Read one byte range in a child process; send its sorted parts in batches, then "end"."""
    try:
        ids, packed, instants = _read_range(plan, start, end).parts()
        for low in range(0, len(ids), _BATCH):
            part = slice(low, low + _BATCH)
            batch = (ids[part], packed[part], instants[part])
            conn.send_bytes(pickle.dumps(("batch", batch), protocol=5))
        message: tuple[str, Any] = ("end", None)
    except _RowError as exc:
        message = ("row", (exc.line, exc.field, exc.message))
    except BaseException as exc:  # report, never leave the parent waiting
        message = ("crash", repr(exc))
    conn.send_bytes(pickle.dumps(message, protocol=5))
    conn.close()


def _ranges(path: str, start: int, size: int, parts: int) -> list[tuple[int, int]]:
    """Split ``[start, size)`` into ``parts`` byte ranges that begin at line starts."""
    bounds = [start]
    with open(path, "rb") as stream:
        for k in range(1, parts):
            stream.seek(max(start + (size - start) * k // parts - 1, bounds[-1]))
            stream.readline()
            bounds.append(max(min(stream.tell(), size), bounds[-1]))
    bounds.append(size)
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def _detect_format(path: Path, head: bytes) -> Literal["csv", "jsonl"]:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"


def _csv_layout(header: bytes) -> tuple[int, tuple[int, int, int, int]]:
    try:
        text = header.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _invalid(1, "<header>", "is not valid UTF-8") from None
    names = [name.strip() for name in next(csv.reader([text.rstrip("\r\n")]), [])]
    for name in _FIELDS:
        if name not in names:
            raise _invalid(1, name, f"the header has no {name!r} column")
    ci, ti, ai, si = (names.index(name) for name in _FIELDS)
    return len(names), (ci, ti, ai, si)


def read_aggregates(
    path: str | os.PathLike[str],
    as_of: datetime,
    thresholds: FlagThresholds,
    *,
    workers: int = 1,
    chunk_bytes: int = 1 << 20,
) -> CustomerAggregates:
    """Aggregate an orders file per customer; ``workers`` processes split it by byte ranges."""
    ids, packed, instants = read_parts(
        path, as_of, thresholds, workers=workers, chunk_bytes=chunk_bytes
    )
    stats = dict(zip(ids, packed, strict=True))
    last = dict(zip(ids, instants, strict=True))
    return CustomerAggregates._from_parts(as_of, thresholds, stats, last)


def read_parts(
    path: str | os.PathLike[str],
    as_of: datetime,
    thresholds: FlagThresholds,
    *,
    workers: int = 1,
    chunk_bytes: int = 1 << 20,
) -> _Parts:
    """Like :func:`read_aggregates`, as lists sorted by customer id (ready for scoring)."""
    prepared = _prepare(path, as_of, thresholds, chunk_bytes)
    if prepared is None:
        return [], [], []
    plan, body, size = prepared
    if plan.fmt == "csv" and _has_quotes(plan.path, body):
        return _read_quoted_csv(plan, body)
    ranges = _ranges(plan.path, body, size, max(1, workers))
    return _run_ranges(plan, ranges, _first_line(plan))


def _first_line(plan: _Plan) -> int:
    """The line number of the first data line (after a CSV header)."""
    return 2 if plan.fmt == "csv" else 1


def _prepare(
    path: str | os.PathLike[str], as_of: datetime, thresholds: FlagThresholds, chunk_bytes: int
) -> tuple[_Plan, int, int] | None:
    """The reading plan, where the data starts and the file size; ``None`` if no data."""
    source = Path(path)
    window = CustomerAggregates(as_of, thresholds).window_start
    as_of_key = _key(as_of.replace(microsecond=0)).encode("ascii")
    ceil_window = window if window.microsecond == 0 else window + timedelta(seconds=1)
    window_key = _key(ceil_window.replace(microsecond=0))[:19].encode("ascii")
    size = source.stat().st_size
    with source.open("rb") as stream:
        head = stream.readline()
        fmt = _detect_format(source, head)
        if fmt == "csv":
            if not head.strip():
                return None
            width, columns = _csv_layout(head)
            body = len(head)
        else:
            width, columns, body = 0, (0, 0, 0, 0), 0
    plan = _Plan(
        str(source),
        fmt,
        width,
        columns,
        _instant_us(as_of),
        _instant_us(window),
        as_of_key,
        window_key,
        chunk_bytes,
    )
    return plan, body, size


def segment_file(
    path: str | os.PathLike[str],
    as_of: datetime,
    thresholds: FlagThresholds,
    rules: RuleSet,
    opener: Callable[[], AbstractContextManager[IO[str]]],
    *,
    workers: int = 1,
    chunk_bytes: int = 1 << 20,
) -> None:
    """Read, score and write an orders file: the ``segment`` command's whole pipeline.

    ``opener`` gives the output stream once the input has been read without error. With
    two processes, each one also merges, scores and writes one range of customer ids
    (the score cut-offs still come from every customer), so only the copy of the second
    range's rows into the output runs in the main process alone.
    """
    prepared = _prepare(path, as_of, thresholds, chunk_bytes)
    if prepared is not None:
        plan, body, size = prepared
        ranges = _ranges(plan.path, body, size, max(1, workers))
        split = len(ranges) == 2
        if split and _segment_split(plan, body, ranges, as_of, thresholds, rules, opener):
            return
    ids, packed, last_us = read_parts(
        path, as_of, thresholds, workers=workers, chunk_bytes=chunk_bytes
    )
    columns = _score_sorted(ids, packed, last_us, as_of, thresholds, rules)
    del ids, packed, last_us
    with opener() as out:
        write_csv(columns, rules, out)


#: Customer ids (UTF-8), packed stats and last-order keys, aligned and in no order.
_Rows = tuple[list[bytes], list[int], list[bytes]]


def _pivot(stats: dict[bytes, int]) -> bytes | None:
    """A customer id near the middle of ``stats``' ids (the median of a regular sample)."""
    sample = sorted(islice(stats, 0, None, 64))
    return sample[len(sample) // 2] if sample else None


def _take_rows(acc: _Accumulator, pivot: bytes | None, *, below: bool) -> _Rows:
    """Remove the customers below ``pivot`` (or from it on) from ``acc`` and return them.

    ``pivot`` ``None`` puts every customer below it. The accumulator's dicts keep their
    tables for the customers that stay and for those the other process sends.
    """
    stats, last = acc.stats, acc.last
    keys = list(stats)
    if pivot is not None:
        side = bytes(map(lt, keys, repeat(pivot)))
        keys = list(compress(keys, side if below else side.translate(_NOT)))
    elif not below:
        return [], [], []
    return keys, list(map(stats.pop, keys)), list(map(last.pop, keys))


_NOT = bytes([1, 0]) + bytes(254)


def _send(conn: Connection, kind: str, value: object) -> None:
    conn.send_bytes(pickle.dumps((kind, value), protocol=5))


def _write_rows(path: str, rows: _Rows) -> None:
    """Write ``rows`` for the other process as pickled batches.

    Ids and stamps travel joined by 0xFF, a byte that UTF-8 never holds: one C-level
    join and split instead of pickling every object. A file rather than the pipe: the
    two processes write at the same time without either waiting for the other to read.
    """
    keys, packed, stamps = rows
    with open(path, "wb") as out:
        for low in range(0, len(keys), _SWAP_BATCH):
            part = slice(low, low + _SWAP_BATCH)
            batch = (_SEP.join(keys[part]), packed[part], _SEP.join(stamps[part]))
            pickle.dump(batch, out, protocol=5)


_SEP = b"\xff"
_SWAP_BATCH = 32_768  # customers per batch between the two processes (bounded memory)


def _exchange(
    acc: _Accumulator,
    pivot: bytes | None,
    below: bool,
    work: str,
    conn: Connection,
    receive: Callable[[Connection, str], Any],
) -> _Parts:
    """Swap customers with the other process through files and merge what comes in.

    This process sends the customers below ``pivot`` (``below``, the worker) or from it
    on (the main process), as a file in ``work``; it tells the other process over
    ``conn`` once the file is written and waits (``receive``) for the other's file.
    Returns the merged customers sorted, stamps as instants, and empties ``acc``.
    """
    mine, theirs = ("from-child", "from-main") if below else ("from-main", "from-child")
    sent, received = os.path.join(work, mine), os.path.join(work, theirs)
    _write_rows(sent, _take_rows(acc, pivot, below=below))
    _send(conn, "rows", None)
    stats, last = acc.stats, acc.last
    acc.stats, acc.last = {}, {}
    receive(conn, "rows")
    floor = repeat(_NO_KEY)
    with open(received, "rb") as batches:
        while True:
            try:
                joined_keys, packed, joined_stamps = pickle.load(batches)  # noqa: S301 - ours
            except EOFError:
                break
            keys = joined_keys.split(_SEP)
            stamps = joined_stamps.split(_SEP)
            del joined_keys, joined_stamps
            # Every id appears at most once per batch: new ones land in both dicts in order.
            stats.update(zip(keys, map(add, map(stats.get, keys, repeat(0)), packed), strict=True))
            last.update(zip(keys, map(max, map(last.get, keys, floor), stamps), strict=True))
            del keys, packed, stamps
    os.unlink(received)
    ids, packed_sorted, stamps_sorted = _sorted_columns(stats, last)
    del stats, last
    instants = _keys_to_us(stamps_sorted)
    del stamps_sorted
    return list(map(_DECODE, ids)), packed_sorted, instants


#: Recency days and order counts as value -> customers (few distinct values), and the
#: cents sorted: what the score cut-offs need from one process.
_Summary = tuple[dict[int, int], dict[int, int], list[int]]


def _summary(metrics: _Metrics) -> _Summary:
    return Counter(metrics.recency_days), Counter(metrics.frequency), sorted(metrics.cents)


def _expand(*counts: dict[int, int]) -> list[int]:
    """The values counted in ``counts`` (added up), each as many times, sorted."""
    total: Counter[int] = Counter()
    for one in counts:
        total.update(one)
    values = sorted(total)
    return list(chain.from_iterable(map(repeat, values, map(total.__getitem__, values))))


def _split_worker(
    plan: _Plan,
    blocks: _Blocks,
    conn: Connection,
    work: str,
    as_of: datetime,
    thresholds: FlagThresholds,
    rules: RuleSet,
) -> None:
    """The second process: read the blocks it claims, then own the customer ids from a
    pivot on.

    Messages to the parent, in order: ``pivot``; ``rows`` once the customers below the
    pivot are written to a file in ``work``; its metrics; ``written`` once its CSV rows
    are in ``work``; or ``row`` (a bad row: block, line in it, field, message), ``quoted``
    or ``crash`` instead.
    """
    try:
        acc = _Accumulator()
        failed = _read_blocks(acc, plan, blocks)
        if isinstance(failed, _Quoted):
            _send(conn, "quoted", None)
            return
        if failed is not None:
            index, exc = failed
            _send(conn, "row", (index, exc.line, exc.field, exc.message))
            return
        pivot = _pivot(acc.stats)
        _send(conn, "pivot", pivot)
        ids, packed, instants = _exchange(acc, pivot, True, work, conn, _from_parent)
        del acc
        metrics = _metrics(packed, instants, as_of)
        _send(conn, "metrics", _summary(metrics))
        cutoffs = _from_parent(conn, "cuts")
        columns = _score_metrics(ids, metrics, instants, cutoffs, as_of, thresholds, rules)
        del ids, metrics, instants
        with open(os.path.join(work, "rows.csv"), "w", encoding="utf-8", newline="") as out:
            write_csv(columns, rules, out, header=False)
        del columns
        _send(conn, "written", None)
    except BaseException as exc:  # report, never leave the parent waiting
        with suppress(OSError):
            _send(conn, "crash", repr(exc))
    finally:
        conn.close()


def _from_parent(conn: Connection, kind: str) -> Any:
    """The next message's value, which must be ``kind``."""
    got, value = pickle.loads(conn.recv_bytes())  # noqa: S301 - our own parent
    if got != kind:
        raise RuntimeError(f"expected {kind!r} from the main process, got {got!r}")
    return value


def _from_child(conn: Connection, kind: str) -> Any:
    """The child's next message's value; its bad row, quote or crash is raised here."""
    try:
        got, value = pickle.loads(conn.recv_bytes())  # noqa: S301 - our own child
    except EOFError:
        got, value = "crash", "worker exited without an answer"
    if got == kind:
        return value
    if got == "row":
        index, line, field, message = value
        raise _BlockError(index, _RowError(line, field, message))
    if got == "quoted":
        raise _Quoted
    raise RuntimeError(f"a segmentation worker failed: {value}")


class _Quoted(Exception):
    """A CSV range holds a double quote: the whole file goes to the quoted CSV reader."""


class _BlockError(Exception):
    """The other process's first bad row, in the block it was reading."""

    def __init__(self, index: int, error: _RowError) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


_CLAIM_BYTES = 4 << 20  # the two processes claim the file's lines in blocks of this size


@dataclass(frozen=True, slots=True)
class _Blocks:
    """The file's blocks (at line starts) and the claims on them, shared by both processes.

    ``claims`` holds the next block to claim and the first block not to claim: a process
    that meets a bad row lowers the latter to its own block, so no later block is read,
    while every earlier one has been claimed already and is read to its end (the first
    bad line of the file is then the first one of the lowest block with one).
    """

    spans: list[tuple[int, int]]
    claims: Any  # a shared array of two integers
    lock: Any

    def claim(self) -> int | None:
        with self.lock:
            index, stop = self.claims
            if index >= stop:
                return None
            self.claims[0] = index + 1
            return int(index)

    def stop_at(self, index: int) -> None:
        with self.lock:
            self.claims[1] = min(self.claims[1], index)


def _read_blocks(
    acc: _Accumulator, plan: _Plan, blocks: _Blocks
) -> tuple[int, _RowError] | _Quoted | None:
    """Read blocks into ``acc`` while there are any to claim; the bad row or quote met."""
    quotes = plan.fmt == "csv"
    while (index := blocks.claim()) is not None:
        start, end = blocks.spans[index]
        try:
            _read_into(acc, plan, start, end, quotes=quotes)
        except _RowError as exc:
            blocks.stop_at(index)
            return index, exc
        except _Quoted as exc:
            blocks.stop_at(-1)
            return exc
    acc.finish()
    return None


def _segment_split(
    plan: _Plan,
    body: int,
    ranges: list[tuple[int, int]],
    as_of: datetime,
    thresholds: FlagThresholds,
    rules: RuleSet,
    opener: Callable[[], AbstractContextManager[IO[str]]],
) -> bool:
    """Two processes read the file, each claiming its next block of lines as it goes (so
    the one that gets less CPU reads less), then each merges, scores and writes the
    customers of one id range. The first bad line of the file is raised, whichever
    process met it.

    ``False`` (nothing written) when the file is a CSV with a double quote anywhere:
    each process looks for one in every block it reads, rather than a whole scan of
    the file first, and a bad line is only reported once the file is known to hold none.
    """
    size = ranges[-1][1]
    count = max(2, (size - body) // _CLAIM_BYTES)
    try:
        _split_pipeline(
            plan, _ranges(plan.path, body, size, count), as_of, thresholds, rules, opener
        )
    except _Quoted:
        return False
    except InvalidInput:
        if plan.fmt == "csv" and _has_quotes(plan.path, body):
            return False
        raise
    return True


def _split_pipeline(
    plan: _Plan,
    blocks: list[tuple[int, int]],
    as_of: datetime,
    thresholds: FlagThresholds,
    rules: RuleSet,
    opener: Callable[[], AbstractContextManager[IO[str]]],
) -> None:
    context: Any = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    # The next block to claim and the first one not to claim (lowered by a bad row).
    shared = _Blocks(blocks, context.RawArray("q", [0, len(blocks)]), context.Lock())
    work = tempfile.mkdtemp(prefix="dixis-segment-")
    conn, child_conn = context.Pipe(duplex=True)
    process = context.Process(
        target=_split_worker,
        args=(plan, shared, child_conn, work, as_of, thresholds, rules),
    )
    try:
        process.start()
        child_conn.close()
        acc = _Accumulator()
        failed = _read_blocks(acc, plan, shared)
        if isinstance(failed, _Quoted):
            raise failed
        try:
            pivot = _from_child(conn, "pivot")
        except _BlockError as other:
            if failed is None or other.index < failed[0]:
                failed = other.index, other.error
        if failed is not None:
            index, exc = failed
            start = blocks[index][0]
            raise _invalid(_line_of(plan.path, start) + exc.line, exc.field, exc.message)
        ids, packed, instants = _exchange(acc, pivot, False, work, conn, _from_child)
        del acc
        metrics = _metrics(packed, instants, as_of)
        mine = _summary(metrics)
        theirs = _from_child(conn, "metrics")
        merged = (
            _expand(mine[0], theirs[0]),
            _expand(mine[1], theirs[1]),
            sorted(mine[2] + theirs[2]),  # two sorted runs: the sort merges them
        )
        del mine, theirs
        cutoffs = _metric_cutoffs(merged) if merged[0] else ((), (), ())
        del merged
        _send(conn, "cuts", cutoffs)
        columns = _score_metrics(ids, metrics, instants, cutoffs, as_of, thresholds, rules)
        del ids, metrics, instants
        with opener() as out:
            write_csv(columns, rules, out)
            del columns
            _from_child(conn, "written")
            with open(os.path.join(work, "rows.csv"), encoding="utf-8", newline="") as rows:
                while block := rows.read(_COPY_CHARS):
                    out.write(block)
        process.join()
    finally:
        conn.close()
        if process.is_alive():
            process.kill()
            process.join()
        shutil.rmtree(work, ignore_errors=True)


_COPY_CHARS = 1 << 22


def _has_quotes(path: str, start: int) -> bool:
    # Plain reads rather than mmap: a mapping would count the whole file in our RSS.
    with open(path, "rb") as stream:
        stream.seek(start)
        while block := stream.read(_SCAN_BYTES):
            if b'"' in block:
                return True
    return False


def _run_ranges(plan: _Plan, ranges: list[tuple[int, int]], first_line: int) -> _Parts:
    """Read the first range here and the others in child processes; merge everything.

    A bad row raises ``InvalidInput`` for the first bad line of the file, whichever
    process met it. Each process sorts its customers and converts its stamps before the
    merge (in parallel); children's batches are merged as they arrive, so each child can
    exit as soon as it has sent them.
    """
    if not ranges:
        return [], [], []
    context: Any = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    children = []
    for start, end in ranges[1:]:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_range_worker, args=(plan, start, end, sender))
        process.start()
        sender.close()
        children.append((start, receiver, process))
    try:
        start, end = ranges[0]
        try:
            parts = _read_range(plan, start, end).parts()
        except _RowError as exc:
            raise _invalid(first_line + exc.line, exc.field, exc.message) from None
        if not children:
            return parts
        ids, packed, instants = parts
        del parts
        # Built in sorted order, and every child's batch adds its new ids in sorted order:
        # the final sort only merges a few sorted runs.
        stats = dict(zip(ids, packed, strict=True))
        del packed
        last = dict(zip(ids, instants, strict=True))
        del ids, instants
        for start, receiver, process in children:
            while True:
                try:
                    kind, value = pickle.loads(receiver.recv_bytes())  # noqa: S301 - our child
                except EOFError:
                    kind, value = "crash", "worker exited without an answer"
                if kind != "batch":
                    break
                _absorb(stats, last, *value)
                del value
            receiver.close()
            process.join()
            if kind == "row":
                line, field, message = value
                raise _invalid(_line_of(plan.path, start) + line, field, message)
            if kind != "end":
                raise RuntimeError(f"a segmentation worker failed: {value}")
    finally:
        for _, _receiver, process in children:
            if process.is_alive():
                process.kill()
                process.join()
    ids, packed, instants = _sorted_columns(stats, last)
    return ids, packed, instants


def _read_quoted_csv(plan: _Plan, body: int) -> _Parts:
    """CSV with quoted fields: the standard csv module, one process, exact line numbers."""
    acc = _Accumulator()
    with open(plan.path, encoding="utf-8", newline="") as stream:
        stream.readline()
        reader = csv.reader(stream)
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                raise _invalid(reader.line_num + 1, "<row>", str(exc)) from None
            line = reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            try:
                _add_checked(_csv_fields(fields, plan, line), plan, acc)
            except _RowError as exc:
                raise _invalid(exc.line, exc.field, exc.message) from None
    return acc.parts()


def _csv_text(value: str) -> str:
    if not any(c in value for c in ',"\r\n'):
        return value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()


def write_csv(
    columns: _Columns, rules: RuleSet, out: IO[str], *, batch: int = 65_536, header: bool = True
) -> None:
    """Write scored columns as the ``segment`` command's CSV (with its header by default)."""
    if header:
        out.write(",".join(CSV_COLUMNS) + "\n")
    names = [*(_csv_text(rule.name) for rule in rules.rules), _csv_text(rules.fallback)]
    # "r,f,m,segment" for each of the 125 scores, and the three flags for each of the 8
    # combinations: one lookup each per row (the segment is the scores' first rule).
    scores: dict[tuple[int, ...], str] = {}
    for code, index in enumerate(rules._table):
        r, f, m = code // 25 + 1, code // 5 % 5 + 1, code % 5 + 1
        scores[r, f, m] = f"{r},{f},{m},{names[index]}"
    words = ("false", "true")
    flags = {
        (high, frequent, risk): f"{words[high]},{words[frequent]},{words[risk]}"
        for high in (False, True)
        for frequent in (False, True)
        for risk in (False, True)
    }
    hundredths = tuple(f"{c:02d}" for c in range(100))
    row = "{},{},{},{}.{},{},{}".format
    ids = columns.customer_ids
    joined = "\x00".join(ids)
    if any(c in joined for c in ',"\r\n'):
        ids = list(map(_csv_text, ids))
    del joined
    for low in range(0, len(ids), batch):
        part = slice(low, low + batch)
        cents = columns.cents[part]
        rows = map(
            row,
            ids[part],
            columns.recency_days[part],
            columns.frequency[part],
            map(floordiv, cents, repeat(100)),
            map(hundredths.__getitem__, map(mod, cents, repeat(100))),
            map(
                scores.__getitem__,
                zip(columns.r[part], columns.f[part], columns.m[part], strict=True),
            ),
            map(
                flags.__getitem__,
                zip(
                    columns.high_value[part],
                    columns.frequent_buyer[part],
                    columns.at_risk[part],
                    strict=True,
                ),
            ),
        )
        out.write("\n".join(rows) + "\n")
