"""CSV and JSON Lines stock exports: streamed, bad rows reported by line and column."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dixis_integrations.errors import ConfigurationError, NotFound, NotSupported
from dixis_integrations.inventory.files import FileSourceConfig, FileStockSource, RowError
from dixis_integrations.models.inventory import StockAdjustment

from .conftest import Runner

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

CSV = """sku,warehouse,quantity,incoming,updated_at
FETA-1,athens,12,0,2026-11-20T07:00:00+02:00
HONEY-2,,3.5,2,
,athens,4,,
OIL-5L,athens,-1,,
OLIVES,athens,abc,,
TOO,many,cells,here,x,y
TOMATO,athens,"1,25",,
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_csv_rows_are_kept_and_each_bad_row_names_line_column_and_reason(
    tmp_path: Path,
) -> None:
    source = FileStockSource.from_path(_write(tmp_path, "stock.csv", CSV), as_of=T0)
    levels = list(source.read())
    assert [(lv.sku, lv.location, lv.on_hand, lv.incoming) for lv in levels] == [
        ("FETA-1", "athens", Decimal(12), Decimal(0)),
        ("HONEY-2", "default", Decimal("3.5"), Decimal(2)),
        ("TOMATO", "athens", Decimal("1.25"), Decimal(0)),
    ]
    assert levels[0].as_of == datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    assert levels[1].as_of == T0
    assert [(e.line, e.column) for e in source.errors] == [
        (4, "sku"),
        (5, "on_hand"),
        (6, "on_hand"),
        (7, None),
    ]
    assert "negative quantity -1" in source.errors[1].reason
    assert str(source.errors[0]) == "line 4, column sku: missing SKU"


def test_json_lines_keep_decimals_exact_and_report_bad_json(tmp_path: Path) -> None:
    text = (
        '{"sku": "FETA-1", "location": "athens", "on_hand": 0.1, "version": 7}\n'
        "{not json\n"
        '["a", "list"]\n'
        '{"sku": "HONEY-2", "on_hand": 2, "as_of": "yesterday"}\n'
        '{"sku": "OIL", "on_hand": true}\n'
    )
    errors: list[RowError] = []
    source = FileStockSource.from_path(
        _write(tmp_path, "stock.jsonl", text), as_of=T0, on_error=errors.append
    )
    levels = list(source.read())
    assert [(lv.sku, lv.on_hand, lv.version) for lv in levels] == [("FETA-1", Decimal("0.1"), "7")]
    assert [(e.line, e.column) for e in errors] == [
        (2, None),
        (3, None),
        (4, "as_of"),
        (5, "on_hand"),
    ]


def test_pages_resume_from_the_cursor_and_cover_every_good_row_once(tmp_path: Path) -> None:
    rows = "\n".join(f"SKU-{i},{i}" for i in range(25))
    source = FileStockSource.from_path(
        _write(tmp_path, "s.csv", "sku,on_hand\n" + rows + "\n"), as_of=T0, page_size=10
    )
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = source.page(cursor)
        pages += 1
        seen.extend(lv.sku for lv in page.levels)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"SKU-{i}" for i in range(25)]
    assert pages == 3


def test_the_last_full_page_has_no_next_cursor(tmp_path: Path) -> None:
    source = FileStockSource.from_path(
        _write(tmp_path, "s.csv", "sku,on_hand\nA,1\nB,2\n"), as_of=T0, page_size=2
    )
    assert source.page().next_cursor is None


def test_as_an_inventory_source_it_reads_through_the_driver_and_refuses_writes(
    tmp_path: Path, run: Runner
) -> None:
    source = FileStockSource.from_path(_write(tmp_path, "stock.csv", CSV), as_of=T0)
    page = run(None, source.stock_page())
    assert len(page.levels) == 3
    assert run(None, source.stock_level("HONEY-2")).on_hand == Decimal("3.5")
    with pytest.raises(NotFound):
        run(None, source.stock_level("NOPE"))
    adj = StockAdjustment(sku="FETA-1", delta=Decimal(1), reason="count", reference="r")
    with pytest.raises(NotSupported):
        run(None, source.adjust(adj))
    assert run(None, source.check()).ok


def test_a_semicolon_delimited_export_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "greek.csv"
    path.write_bytes("\ufeffSKU;Stock\nΦΕΤΑ-1;7,5\n".encode())
    source = FileStockSource.from_path(path, as_of=T0, delimiter=";")
    assert [(lv.sku, lv.on_hand) for lv in source.read()] == [("ΦΕΤΑ-1", Decimal("7.5"))]


def test_times_without_an_offset_are_read_in_the_configured_zone(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.csv", "sku,on_hand,as_of\nA,1,2026-07-01T12:00:00\n")
    source = FileStockSource(FileSourceConfig(path=path, timezone="Europe/Athens"))
    [level] = source.read()
    assert level.as_of == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def test_an_unknown_zone_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        FileStockSource(FileSourceConfig(path=tmp_path / "x.csv", timezone="Mars/Olympus"))
