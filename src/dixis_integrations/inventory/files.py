"""Stock levels from CSV and JSON Lines exports, the way many small producers share them.

The file is streamed one record per line, never loaded whole. A bad row becomes a
:class:`RowError` (line number, column, reason) and the good rows are kept. As an
:class:`~dixis_integrations.protocols.InventorySource` the file is read-only: writes raise
``NotSupported``. A page cursor is the byte offset and line number where the next page starts.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dixis_integrations.errors import ConfigurationError, FieldError, InvalidInput, NotFound
from dixis_integrations.http.driver import Operation, completed, unsupported
from dixis_integrations.models.inventory import (
    PurchaseOrder,
    StockAdjustment,
    StockLevel,
    StockPage,
)
from dixis_integrations.protocols import Capability, HealthStatus

__all__ = ["FileFormat", "FileSourceConfig", "FileStockSource", "RowError", "parse_record"]

FileFormat = Literal["csv", "jsonl"]

_ALIASES: Final[dict[str, str]] = {
    "sku": "sku",
    "code": "sku",
    "location": "location",
    "warehouse": "location",
    "on_hand": "on_hand",
    "onhand": "on_hand",
    "quantity": "on_hand",
    "qty": "on_hand",
    "stock": "on_hand",
    "committed": "committed",
    "incoming": "incoming",
    "on_order": "incoming",
    "as_of": "as_of",
    "updated_at": "as_of",
    "version": "version",
}
_MAX_SKU = 64


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected row: where it is (1-based ``line``, ``column``) and why."""

    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


def _decimal(raw: Any, column: str, line: int) -> Decimal | RowError:
    if isinstance(raw, bool) or raw is None:
        return RowError(line, column, "not a number")
    if isinstance(raw, Decimal | int):
        value = Decimal(raw)
    else:
        text = str(raw).strip()
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # a decimal comma, as Greek spreadsheets write it
        try:
            value = Decimal(text)
        except InvalidOperation:
            return RowError(line, column, f"{text!r} is not a number")
    if not value.is_finite():
        return RowError(line, column, "not a finite number")
    if value < 0:
        return RowError(line, column, f"negative quantity {value}")
    return value


def _datetime(raw: Any, line: int, assume: tzinfo) -> datetime | RowError:
    try:
        value = datetime.fromisoformat(str(raw).strip())
    except ValueError:
        return RowError(line, "as_of", f"{raw!r} is not an ISO-8601 date-time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=assume)
    return value.astimezone(UTC)


def parse_record(
    record: dict[str, Any],
    line: int,
    *,
    as_of: datetime,
    default_location: str = "default",
    assume_tz: tzinfo = UTC,
) -> StockLevel | RowError:
    """One record (keys already normalised to our names) as a level, or why it is refused.

    Pure: used for both CSV and JSON Lines rows.
    """
    sku = str(record.get("sku") or "").strip()
    if not sku:
        return RowError(line, "sku", "missing SKU")
    if len(sku) > _MAX_SKU:
        return RowError(line, "sku", f"SKU longer than {_MAX_SKU} characters")
    if record.get("on_hand") in (None, ""):
        return RowError(line, "on_hand", "missing quantity")
    quantities: dict[str, Decimal] = {}
    for column in ("on_hand", "committed", "incoming"):
        raw = record.get(column)
        if column != "on_hand" and raw in (None, ""):
            continue
        value = _decimal(raw, column, line)
        if isinstance(value, RowError):
            return value
        quantities[column] = value
    stamp = as_of
    if record.get("as_of") not in (None, ""):
        parsed = _datetime(record["as_of"], line, assume_tz)
        if isinstance(parsed, RowError):
            return parsed
        stamp = parsed
    location = str(record.get("location") or "").strip() or default_location
    version = record.get("version")
    return StockLevel(
        sku=sku,
        location=location,
        as_of=stamp,
        version=str(version) if version not in (None, "") else None,
        **quantities,
    )


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = _ALIASES.get(str(key).strip().lower().replace(" ", "_"))
        if name is not None and name not in out:
            out[name] = value
    return out


def _decode_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        offset, line = cursor.split(":")
        return int(offset), int(line)
    except ValueError:
        raise InvalidInput(
            "bad cursor", errors=[FieldError(("cursor",), f"{cursor!r} is not a file cursor")]
        ) from None


class FileSourceConfig(BaseModel):
    """Where the export is and how to read it.

    Attributes:
        path: the ``.csv`` or ``.jsonl`` file.
        fmt: the format, by default from the suffix (``.csv``; ``.jsonl``/``.ndjson``).
        page_size: good rows per page.
        as_of: the time of rows without ``as_of`` (default: the file's modification time).
        default_location: the location of rows without one.
        timezone: the IANA zone of ``as_of`` values written without an offset.
        delimiter: the CSV delimiter (``,``; ``;`` for European spreadsheets).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    fmt: FileFormat | None = None
    page_size: int = Field(default=1000, ge=1)
    as_of: AwareDatetime | None = None
    default_location: str = Field(default="default", min_length=1)
    timezone: str = "UTC"
    delimiter: str = Field(default=",", min_length=1, max_length=1)


class FileStockSource:
    """A stock export on disk, read as an inventory source.

    ``on_error`` is called with each bad row as it is met (they are also kept in
    ``errors``). :meth:`from_path` builds one without a config object.
    """

    name = "file"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STOCK_LEVELS})

    def __init__(
        self,
        config: FileSourceConfig,
        *,
        tenant: str = "default",
        auth: Any = None,
        time_scale: float = 1.0,
        on_error: Callable[[RowError], None] | None = None,
    ) -> None:
        self.config = config
        self.tenant = tenant
        self.path = Path(config.path)
        fmt = config.fmt
        if fmt is None:
            fmt = "jsonl" if self.path.suffix.lower() in (".jsonl", ".ndjson") else "csv"
        self.fmt: FileFormat = fmt
        self.page_size = config.page_size
        self._as_of = config.as_of
        self.default_location = config.default_location
        try:
            self.assume_tz: tzinfo = ZoneInfo(config.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"unknown zone {config.timezone!r}", key="timezone") from None
        self.on_error = on_error
        self.delimiter = config.delimiter
        self.errors: list[RowError] = []

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        on_error: Callable[[RowError], None] | None = None,
        **options: Any,
    ) -> FileStockSource:
        """A source over ``path``; ``options`` are :class:`FileSourceConfig` fields."""
        return cls(FileSourceConfig(path=Path(path), **options), on_error=on_error)

    def __repr__(self) -> str:
        return f"FileStockSource({str(self.path)!r}, fmt={self.fmt!r})"

    @property
    def as_of(self) -> datetime:
        """The time of rows that do not carry their own."""
        if self._as_of is None:
            return datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        return self._as_of

    # -- streaming -----------------------------------------------------------------------
    def _header(self, handle: Any) -> tuple[list[str] | None, int, int]:
        if self.fmt != "csv":
            return None, 0, 0
        first = handle.readline()
        names = next(csv.reader([first.decode("utf-8-sig")], delimiter=self.delimiter), [])
        return names, handle.tell(), 1

    def _reject(self, error: RowError) -> None:
        self.errors.append(error)
        if self.on_error is not None:
            self.on_error(error)

    def _records(self, offset: int = 0, line: int = 0) -> Iterator[tuple[int, int, Any]]:
        """(offset after the row, line number, level or error) for each row from ``offset``."""
        as_of = self.as_of
        with self.path.open("rb") as handle:
            header, start, first_line = self._header(handle)
            if offset < start:
                offset, line = start, first_line
            handle.seek(offset)
            while True:
                raw = handle.readline()
                if not raw:
                    return
                line += 1
                offset += len(raw)
                text = raw.decode("utf-8", errors="replace").strip()
                if not text:
                    continue
                yield offset, line, self._parse(text, line, header, as_of)

    def _parse(
        self, text: str, line: int, header: list[str] | None, as_of: datetime
    ) -> StockLevel | RowError:
        if header is not None:
            cells = next(csv.reader([text], delimiter=self.delimiter), [])
            if len(cells) != len(header):
                return RowError(line, None, f"{len(cells)} cells, the header has {len(header)}")
            record = _normalise(dict(zip(header, cells, strict=True)))
        else:
            try:
                data = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                return RowError(line, None, f"not JSON ({exc.msg})")
            if not isinstance(data, dict):
                return RowError(line, None, "not a JSON object")
            record = _normalise(data)
        return parse_record(
            record,
            line,
            as_of=as_of,
            default_location=self.default_location,
            assume_tz=self.assume_tz,
        )

    def read(self) -> Iterator[StockLevel]:
        """Every good row, streamed; bad rows go to ``errors`` and ``on_error``."""
        for _, _, item in self._records():
            if isinstance(item, RowError):
                self._reject(item)
            else:
                yield item

    def page(self, cursor: str | None = None) -> StockPage:
        """One page of good rows from ``cursor`` (pure file reading, no driver needed)."""
        offset, line = _decode_cursor(cursor)
        levels: list[StockLevel] = []
        next_cursor: str | None = None
        for end, number, item in self._records(offset, line):
            if isinstance(item, RowError):
                self._reject(item)
                continue
            levels.append(item)
            if len(levels) >= self.page_size:
                next_cursor = f"{end}:{number}"
                break
        if next_cursor is not None and end >= self.path.stat().st_size:
            next_cursor = None
        return StockPage(levels=tuple(levels), next_cursor=next_cursor)

    # -- InventorySource -----------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """The file exists and is readable."""
        ok = self.path.is_file()
        return completed(HealthStatus(self.name, ok, "" if ok else f"{self.path} not found"))

    def stock_page(self, cursor: str | None = None) -> Operation[StockPage]:
        """One page of levels (no HTTP call: the driver just returns it)."""
        return self.page(cursor)
        yield  # pragma: no cover - makes this method a generator

    def stock_level(self, sku: str, location: str = "default") -> Operation[StockLevel]:
        """The last row of ``sku`` at ``location`` (a scan of the file).

        Raises:
            NotFound: no good row for it.
        """
        found: StockLevel | None = None
        for level in self.read():
            if level.sku == sku and level.location == location:
                found = level
        if found is None:
            raise NotFound(f"{sku!r} at {location!r} is not in {self.path.name}", vendor="file")
        return found
        yield  # pragma: no cover - makes this method a generator

    def adjust(self, adjustment: StockAdjustment) -> Operation[StockLevel]:
        """Not supported: an export is read-only."""
        return unsupported("adjust", self.name, "a file export is read-only")

    def set_level(
        self, level: StockLevel, *, expected_version: str | None = None
    ) -> Operation[StockLevel]:
        """Not supported: an export is read-only."""
        return unsupported("set_level", self.name, "a file export is read-only")

    def create_purchase_order(self, order: PurchaseOrder) -> Operation[PurchaseOrder]:
        """Not supported: an export holds no purchase orders."""
        return unsupported("create_purchase_order", self.name, "a file export is read-only")
