"""The ``segment`` command: formats in, exact CSV out, bad rows named by line, exit codes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dixis_integrations.marketing._seg_files import read_aggregates
from dixis_integrations.marketing.segment_cli import add_arguments, run
from dixis_integrations.marketing.segmentation import (
    DEFAULT_THRESHOLDS,
    SegmentOrder,
    aggregate,
    segment_customers,
)

AS_OF = "2026-01-01T00:00:00Z"
HEADER = (
    "customer_id,recency_days,frequency,monetary,r,f,m,segment,high_value,frequent_buyer,at_risk"
)

ORDERS_CSV = """order_id,customer_id,created_at,total_amount,status,currency
1,alice,2025-12-31T23:00:00Z,600.00,paid,EUR
2,alice,2025-12-20T10:00:00Z,400.01,paid,EUR
3,bob,2025-06-01T00:00:00Z,15.50,paid,EUR
4,bob,2025-12-30T00:00:00Z,99.00,refunded,EUR
5,carol,2026-01-01T00:00:00Z,20.00,paid,EUR
6,dave,2026-01-01T00:00:01Z,20.00,paid,EUR
7,erin,2025-12-01T00:00:00Z,5.00,cancelled,EUR
"""
# Hand computed, n = 3 (alice, bob, carol):
#   recency days: alice 0 (23:00 -> 1h), bob 214, carol 0; descending: bob(0), alice/carol(1)
#     -> bob 1 + 0 = 1, alice and carol 1 + floor(5*1/3) = 2
#   frequency: bob 1, carol 1, alice 2 -> 1, 1, 1 + floor(10/3) = 4
#   monetary: bob 15.50, carol 20.00, alice 1000.01 -> 1, 1 + floor(5/3) = 2, 1 + floor(10/3) = 4
EXPECTED = f"""{HEADER}
alice,0,2,1000.01,2,4,4,Cant Lose Them,true,false,false
bob,214,1,15.50,1,1,1,Hibernating,false,false,true
carol,0,1,20.00,2,1,2,About To Sleep,false,false,false
"""


def namespace(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def segment(tmp_path: Path, text: str, *extra: str, name: str = "orders.csv") -> tuple[int, str]:
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "out.csv"
    code = run(namespace(str(source), "--as-of", AS_OF, "--output", str(out), *extra))
    return code, out.read_text(encoding="utf-8") if out.exists() else ""


def test_csv_in_exact_csv_out_sorted_with_the_contract_columns(tmp_path: Path) -> None:
    assert segment(tmp_path, ORDERS_CSV) == (0, EXPECTED)


def test_writes_to_stdout_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS_CSV, encoding="utf-8")
    assert run(namespace(str(source), "--as-of", AS_OF)) == 0
    assert capsys.readouterr().out == EXPECTED


def test_json_lines_are_detected_by_extension_and_by_content(tmp_path: Path) -> None:
    lines = ORDERS_CSV.splitlines()
    names = lines[0].split(",")
    records = [dict(zip(names, line.split(","), strict=True)) for line in lines[1:]]
    text = "\n".join(json.dumps(r) for r in records) + "\n"
    assert segment(tmp_path, text, name="orders.jsonl") == (0, EXPECTED)
    assert segment(tmp_path, text, name="orders.export") == (0, EXPECTED)


def test_column_order_crlf_and_quotes_do_not_change_the_result(tmp_path: Path) -> None:
    rows = [line.split(",") for line in ORDERS_CSV.splitlines()]
    reordered = "\n".join(",".join([r[4], r[2], r[3], r[1]]) for r in rows) + "\n"
    assert segment(tmp_path, reordered) == (0, EXPECTED)
    assert segment(tmp_path, ORDERS_CSV.replace("\n", "\r\n")) == (0, EXPECTED)
    quoted = ORDERS_CSV.replace(",EUR", ',"EUR, euro"')
    assert segment(tmp_path, quoted) == (0, EXPECTED)


def test_amounts_with_fewer_decimals_and_utc_offsets_are_exact(tmp_path: Path) -> None:
    text = (
        "customer_id,created_at,total_amount,status\n"
        "a,2025-12-31T23:00:00+00:00,12,paid\n"
        "a,2026-01-01T01:59:59.999999+02:00,0.5,paid\n"
        "a,2026-01-01T00:00:00.000001Z,7.00,paid\n"
    )
    code, out = segment(tmp_path, text)
    assert code == 0
    assert out.splitlines()[1] == "a,0,2,12.50,1,1,1,Hibernating,false,false,false"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("9,zed,2025-13-01T00:00:00Z,1.00,paid,EUR", "created_at"),
        ("9,zed,2025-02-29T00:00:00Z,1.00,paid,EUR", "created_at"),
        ("9,zed,1900-02-29T00:00:00Z,1.00,paid,EUR", "created_at"),
        ("9,zed,2025-04-31T00:00:00Z,1.00,paid,EUR", "created_at"),
        ("9,zed,2025-01-01T24:00:00Z,1.00,paid,EUR", "created_at"),
        ("9,zed,2025-01-01T00:00:00,1.00,paid,EUR", "created_at"),
        ("9,zed,0000-01-01T00:00:00Z,1.00,paid,EUR", "created_at"),
        ("9,zed,0000-06-01T00:00:00+00:00,1.00,paid,EUR", "created_at"),
        ("9,zed,2025-01-01T00:00:00Z,1.001,paid,EUR", "total_amount"),
        ("9,zed,2025-01-01T00:00:00Z,-1.00,paid,EUR", "total_amount"),
        ("9,zed,2025-01-01T00:00:00Z,1.00,shipped,EUR", "status"),
        ("9,,2025-01-01T00:00:00Z,1.00,paid,EUR", "customer_id"),
        ("9,zed,2025-01-01T00:00:00Z,1.00,paid", "<row>"),
    ],
)
def test_a_malformed_row_exits_2_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, field: str
) -> None:
    lines = ORDERS_CSV.splitlines()
    text = "\n".join([*lines[:4], row, *lines[4:]]) + "\n"
    code, out = segment(tmp_path, text)
    assert (code, out) == (2, "")
    err = capsys.readouterr().err
    assert "line 5 " in err
    assert f"line[5].{field}" in err


def test_the_line_is_right_when_the_file_is_split_across_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = "o,c{},2025-06-01T00:00:00Z,1.00,paid\n"
    rows = [good.format(i % 97) for i in range(30_000)]
    rows[24_321] = "o,c1,2025-06-01T00:00:00Z,1.00,lost\n"
    text = "order_id,customer_id,created_at,total_amount,status\n" + "".join(rows)
    code, _ = segment(tmp_path, text, "--workers", "3")
    assert code == 2
    assert "line[24323].status" in capsys.readouterr().err


def test_workers_do_not_change_the_output(tmp_path: Path) -> None:
    rows = []
    for i in range(20_000):
        day = 1 + i % 28
        rows.append(f"{i},c{i * 7919 % 1500},2025-{1 + i % 12:02d}-{day:02d}T{i % 24:02d}:00:00Z,")
        rows[-1] += f"{i % 500}.{i % 100:02d},{('paid', 'paid', 'refunded', 'cancelled')[i % 4]}\n"
    text = "order_id,customer_id,created_at,total_amount,status\n" + "".join(rows)
    one = segment(tmp_path, text, "--workers", "1")
    assert one[0] == 0
    assert segment(tmp_path, text, "--workers", "2") == one
    assert segment(tmp_path, text, "--workers", "0") == one


def test_a_custom_rule_file_and_thresholds_apply(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'name = "spend"\nversion = "2"\nfallback = "Rest"\n'
        '[[rules]]\nname = "Top, spenders"\nr = [1, 5]\nf = [1, 5]\nm = [4, 5]\n'
        '[thresholds]\nhigh_value_above = "10.00"\n',
        encoding="utf-8",
    )
    code, out = segment(tmp_path, ORDERS_CSV, "--rules", str(rules))
    assert code == 0
    assert out.splitlines()[1:] == [
        'alice,0,2,1000.01,2,4,4,"Top, spenders",true,false,false',
        "bob,214,1,15.50,1,1,1,Rest,true,false,true",
        "carol,0,1,20.00,2,1,2,Rest,true,false,false",
    ]


def test_a_bad_rule_file_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps({"name": "x", "version": "1", "rules": [{"name": "a", "r": 1, "f": 1, "m": 1}]}),
        encoding="utf-8",
    )
    assert segment(tmp_path, ORDERS_CSV, "--rules", str(rules))[0] == 2
    assert "fallback" in capsys.readouterr().err


def test_a_naive_as_of_and_a_missing_header_column_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS_CSV, encoding="utf-8")
    assert run(namespace(str(source), "--as-of", "2026-01-01T00:00:00")) == 2
    assert "as_of" in capsys.readouterr().err
    assert segment(tmp_path, ORDERS_CSV.replace("status", "state"))[0] == 2
    assert "line[1].status" in capsys.readouterr().err


def test_header_only_or_empty_files_give_a_header_only_csv(tmp_path: Path) -> None:
    assert segment(tmp_path, "customer_id,created_at,total_amount,status\n") == (0, HEADER + "\n")
    assert segment(tmp_path, "") == (0, HEADER + "\n")


def test_module_entry_point_runs_as_a_subprocess(tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS_CSV, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dixis_integrations.marketing.segment_cli",
            str(source),
            "--as-of",
            AS_OF,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, EXPECTED)
    bad = tmp_path / "bad.csv"
    bad.write_text(ORDERS_CSV + "8,zed,yesterday,1.00,paid,EUR\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dixis_integrations.marketing.segment_cli",
            str(bad),
            "--as-of",
            AS_OF,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "line 9" in done.stderr


ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
orders_strategy = st.lists(
    st.builds(
        SegmentOrder,
        customer_id=st.sampled_from(["a", "b", "c", "d", "e"]),
        created_at=st.integers(-200 * 86_400, 86_400).map(lambda s: ANCHOR + timedelta(seconds=s)),
        total=st.integers(0, 200_000).map(lambda c: Decimal(c).scaleb(-2)),
        status=st.sampled_from(["paid", "paid", "refunded", "cancelled"]),
    ),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(orders=orders_strategy, as_of_shift=st.integers(-90 * 86_400, 0), chunk=st.integers(40, 400))
def test_the_file_reader_aggregates_exactly_like_the_library(
    tmp_path_factory: pytest.TempPathFactory,
    orders: list[SegmentOrder],
    as_of_shift: int,
    chunk: int,
) -> None:
    as_of = ANCHOR + timedelta(seconds=as_of_shift, microseconds=250_000)
    path = tmp_path_factory.mktemp("orders") / "orders.csv"
    lines = ["id,customer_id,created_at,total_amount,status"]
    for n, o in enumerate(orders):
        stamp = o.created_at.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if n % 3 else "+00:00")
        lines.append(f"{n},{o.customer_id},{stamp},{o.total:.2f},{o.status}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_file = read_aggregates(path, as_of, DEFAULT_THRESHOLDS, chunk_bytes=chunk)
    assert from_file == aggregate(orders, as_of)
    assert len(segment_customers(orders, as_of)) == len(from_file)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_canonical_exports_never_need_the_row_by_row_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str
) -> None:
    from dixis_integrations.marketing import _seg_files

    def refuse(*args: object) -> None:
        raise AssertionError("the careful reader was used")

    monkeypatch.setattr(_seg_files, "_careful_chunk", refuse)
    rows = [
        f"{i},c{i % 37},2025-{1 + i % 12:02d}-{1 + i % 28:02d}T0{i % 10}:15:00Z,{i % 90}.0{i % 10},"
        + ("paid", "refunded", "cancelled")[i % 3]
        for i in range(5000)
    ]
    path = tmp_path / "orders.csv"
    path.write_bytes(
        newline.join(["id,customer_id,created_at,total_amount,status", *rows, ""]).encode()
    )
    as_of = datetime(2025, 12, 1, tzinfo=UTC)
    expected = aggregate(
        (
            SegmentOrder(r[1], datetime.fromisoformat(r[2]), Decimal(r[3]), r[4])
            for r in (row.split(",") for row in rows)
        ),
        as_of,
    )
    assert read_aggregates(path, as_of, DEFAULT_THRESHOLDS, chunk_bytes=4096) == expected
    assert len(expected) == 37


def test_leap_days_are_valid_on_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dixis_integrations.marketing import _seg_files

    def refuse(*args: object) -> None:
        raise AssertionError("the careful reader was used")

    monkeypatch.setattr(_seg_files, "_careful_chunk", refuse)
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,created_at,total_amount,status\n"
        "a,2024-02-29T12:00:00Z,1.00,paid\nb,2000-02-29T23:59:59Z,2.00,paid\n",
        encoding="utf-8",
    )
    aggregates = read_aggregates(path, datetime(2025, 1, 1, tzinfo=UTC), DEFAULT_THRESHOLDS)
    assert aggregates.customer("a")[3] == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert aggregates.customer("b")[1] == Decimal("2.00")


def _library_csv(orders: list[SegmentOrder], as_of: datetime) -> list[tuple[str, int, str]]:
    return [
        (s.customer_id, s.frequency, f"{s.monetary:.2f}") for s in segment_customers(orders, as_of)
    ]


def test_non_ascii_ids_sort_and_aggregate_like_the_library(tmp_path: Path) -> None:
    ids = ["zoe", "Ζωή", "émile", "bob", "Ωmega", "a\u00e9", "ae", "日本"]
    orders = [
        SegmentOrder(
            ids[i % len(ids)],
            datetime(2025, 1 + i % 12, 1 + i % 28, i % 24, tzinfo=UTC),
            Decimal(f"{i % 300}.{i % 100:02d}"),
            ("paid", "paid", "refunded")[i % 3],
        )
        for i in range(3000)
    ]
    text = "customer_id,created_at,total_amount,status\n" + "".join(
        f"{o.customer_id},{o.created_at:%Y-%m-%dT%H:%M:%SZ},{o.total},{o.status}\n" for o in orders
    )
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    for workers in ("1", "2"):
        code, out = segment(tmp_path, text, "--workers", workers)
        assert code == 0
        rows = [line.split(",") for line in out.splitlines()[1:]]
        assert [(r[0], int(r[2]), r[3]) for r in rows] == _library_csv(orders, as_of)
    path = tmp_path / "orders.csv"
    path.write_text(text, encoding="utf-8")
    expected = aggregate(orders, as_of)
    assert read_aggregates(path, as_of, DEFAULT_THRESHOLDS, chunk_bytes=2048) == expected
    assert read_aggregates(path, as_of, DEFAULT_THRESHOLDS, workers=3) == expected


def test_odd_amounts_and_a_small_amount_cache_stay_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dixis_integrations.marketing import _seg_files

    monkeypatch.setattr(_seg_files, "_AMOUNT_CACHE", 3)  # cleared again and again

    def amount(i: int) -> str:
        if i % 997 == 0:
            return "0.5"
        if i % 50 == 0:
            return f"{i}.{i % 100:02d}"
        return ["12.50", "3", "007.25", "1000.00", "999.99"][i % 5]

    orders = [
        SegmentOrder(
            f"c{i % 41}",
            datetime(2025, 6, 1, tzinfo=UTC) + timedelta(hours=i),
            Decimal(amount(i)),
            ("paid", "cancelled", "paid", "refunded")[i % 4],
        )
        for i in range(4000)
    ]
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,created_at,total_amount,status\n"
        + "".join(
            f"{o.customer_id},{o.created_at:%Y-%m-%dT%H:%M:%SZ},{amount(i)},{o.status}\n"
            for i, o in enumerate(orders)
        ),
        encoding="utf-8",
    )
    as_of = datetime(2025, 11, 1, tzinfo=UTC)
    expected = aggregate(orders, as_of)
    assert read_aggregates(path, as_of, DEFAULT_THRESHOLDS, chunk_bytes=1024) == expected
    assert read_aggregates(path, as_of, DEFAULT_THRESHOLDS, workers=2) == expected


def test_read_parts_are_sorted_and_agree_with_the_aggregates(tmp_path: Path) -> None:
    from dixis_integrations.marketing._seg_files import read_parts

    rows = [
        f"{i},c{i * 7919 % 997},2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
        f"T{i % 24:02d}:{i % 60:02d}:00Z,"
        f"{i % 700}.{i % 100:02d},{('paid', 'paid', 'refunded', 'cancelled')[i % 4]}\n"
        for i in range(12_000)
    ]
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,created_at,total_amount,status\n" + "".join(rows))
    as_of = datetime(2025, 10, 15, 12, 30, tzinfo=UTC)
    expected = read_aggregates(path, as_of, DEFAULT_THRESHOLDS)
    for workers in (1, 2, 4):
        ids, packed, instants = read_parts(path, as_of, DEFAULT_THRESHOLDS, workers=workers)
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids) == len(expected)
        for customer_id in ids[::50]:
            frequency, monetary, recent, last = expected.customer(customer_id)
            index = ids.index(customer_id)
            assert packed[index] >> 96 == int(monetary * 100)
            assert packed[index] >> 48 & (1 << 48) - 1 == frequency
            assert packed[index] & (1 << 48) - 1 == recent
            assert (
                datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=instants[index]) == last
            )


def test_sorted_columns_align_values_whatever_the_dicts_order() -> None:
    from dixis_integrations.marketing._seg_files import _sorted_columns

    assert _sorted_columns({"b": 1, "a": 2, "c": 3}, {"b": 10, "a": 20, "c": 30}) == (
        ["a", "b", "c"],
        [2, 1, 3],
        [20, 10, 30],
    )
    assert _sorted_columns({"b": 1, "a": 2, "c": 3}, {"c": 30, "a": 20, "b": 10}) == (
        ["a", "b", "c"],
        [2, 1, 3],
        [20, 10, 30],
    )


def _rows_file(count: int, status: object = "paid") -> list[str]:
    return [
        f"{i},c{i * 7919 % 2003},2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,"
        f"{i % 400}.{i % 100:02d},{status if isinstance(status, str) else status(i)}\n"
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("bad", "line"), [((24_321,), 24_323), ((5_000,), 5_002), ((5_000, 24_321), 5_002)]
)
def test_two_workers_name_the_first_bad_line_in_either_half(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: tuple[int, ...], line: int
) -> None:
    rows = _rows_file(30_000)
    for index in bad:
        rows[index] = "o,c1,2025-06-01T00:00:00Z,1.00,lost\n"
    text = "order_id,customer_id,created_at,total_amount,status\n" + "".join(rows)
    assert segment(tmp_path, text, "--workers", "2") == (2, "")
    assert f"line[{line}].status" in capsys.readouterr().err


@pytest.mark.parametrize(
    "status",
    [
        lambda i: "paid" if i < 10_000 else "refunded",  # the second process has no customers
        lambda i: "cancelled" if i < 10_000 else "paid",  # the first one has none
        lambda i: "refunded",  # nobody has a counting order
        lambda i: ("paid", "refunded")[i % 2],
    ],
)
def test_two_workers_agree_with_one_whoever_holds_the_customers(
    tmp_path: Path, status: object
) -> None:
    text = "order_id,customer_id,created_at,total_amount,status\n" + "".join(
        _rows_file(20_000, status)
    )
    one = segment(tmp_path, text, "--workers", "1")
    assert one[0] == 0
    assert segment(tmp_path, text, "--workers", "2") == one


def test_two_workers_write_to_stdout_and_leave_no_temporary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    spill_dir = tmp_path / "tmp"
    spill_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    source = tmp_path / "orders.csv"
    source.write_text(
        "order_id,customer_id,created_at,total_amount,status\n" + "".join(_rows_file(20_000)),
        encoding="utf-8",
    )
    assert run(namespace(str(source), "--as-of", AS_OF, "--workers", "1")) == 0
    one = capsys.readouterr().out
    assert one.count("\n") == 2004  # the header and 2003 customers
    assert run(namespace(str(source), "--as-of", AS_OF, "--workers", "2")) == 0
    assert capsys.readouterr().out == one
    assert list(spill_dir.iterdir()) == []


def test_a_failing_second_process_is_reported_and_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from dixis_integrations.marketing import _seg_files

    def broken(stats: object) -> bytes:
        raise MemoryError("no room")

    spill_dir = tmp_path / "tmp"
    spill_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    monkeypatch.setattr(_seg_files, "_pivot", broken)  # runs in the second process only
    text = "order_id,customer_id,created_at,total_amount,status\n" + "".join(_rows_file(20_000))
    with pytest.raises(RuntimeError, match="MemoryError"):
        segment(tmp_path, text, "--workers", "2")
    assert not (tmp_path / "out.csv").exists()
    assert list(spill_dir.iterdir()) == []


def _real_stamp(stamp: bytes, width: int) -> bool:
    """The reference: a calendar-exact canonical UTC stamp of the given width."""
    import calendar
    import re

    suffix = rb"Z" if width == 20 else rb"\+00:00"
    match = re.fullmatch(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)" + suffix, stamp)
    if match is None:
        return False
    year, month, day, hour, minute, second = map(int, match.groups())
    if year < 1 or not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return False
    last = [31, 29 if calendar.isleap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= day <= last[month - 1]


_STAMP_TEXT = st.builds(
    "{}-{}-{}T{}:{}:{}".format,
    st.sampled_from(["2024", "2025", "2000", "1900", "2100", "0000", "0004", "1996", "2023"]),
    st.sampled_from(["01", "02", "04", "09", "10", "11", "12", "00", "13", "20", "1a"]),
    st.sampled_from(["01", "09", "10", "28", "29", "30", "31", "00", "32", "39", "99"]),
    st.sampled_from(["00", "09", "19", "20", "23", "24", "29", "30", "3"]),
    st.sampled_from(["00", "59", "60", "99"]),
    st.sampled_from(["00", "59", "60"]),
)


_REAL_STAMPS = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda moment: f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}")


@settings(max_examples=400, deadline=None)
@given(
    real=st.lists(_REAL_STAMPS, min_size=0, max_size=40),
    odd=_STAMP_TEXT,
    where=st.integers(0, 40),
    suffix=st.sampled_from(["Z", "+00:00"]),
    other=st.sampled_from(["Z", "+00:00", "+00:07", "+10:00", "z", ""]),
    odd_suffix=st.booleans(),
)
def test_the_fast_stamp_check_accepts_exactly_the_real_canonical_stamps(
    real: list[str], odd: str, where: int, suffix: str, other: str, odd_suffix: bool
) -> None:
    from dixis_integrations.marketing._seg_files import _canonical_stamps

    texts = [*real[:where], odd, *real[where:]]
    stamps = [(text + suffix).encode() for text in texts]
    if odd_suffix:
        stamps[min(where, len(real))] = (odd + other).encode()
    width = len(stamps[0])
    expected = width in (20, 25) and all(_real_stamp(s, width) for s in stamps)
    assert _canonical_stamps(stamps) == expected


@pytest.mark.parametrize(
    ("stamp", "real"),
    [
        ("2024-02-29T12:00:00", True),
        ("2000-02-29T12:00:00", True),
        ("0000-02-29T12:00:00", False),
        ("0000-01-01T00:00:00", False),
        ("0001-01-01T00:00:00", True),
        ("1900-02-29T12:00:00", False),
        ("2100-02-29T12:00:00", False),
        ("2023-02-29T12:00:00", False),
        ("2024-02-30T12:00:00", False),
        ("2024-00-10T12:00:00", False),
        ("2024-13-01T12:00:00", False),
        ("2024-01-00T12:00:00", False),
        ("2024-04-31T12:00:00", False),
        ("2024-01-32T12:00:00", False),
        ("2024-12-31T20:00:00", True),
        ("2024-12-31T19:59:59", True),
        ("2024-12-31T24:00:00", False),
        ("2024-12-31T23:60:00", False),
        ("2024-12-31T23:59:60", False),
    ],
)
@pytest.mark.parametrize("suffix", ["Z", "+00:00"])
def test_the_fast_stamp_check_knows_the_calendar(stamp: str, real: bool, suffix: str) -> None:
    from dixis_integrations.marketing._seg_files import _canonical_stamps

    around = [f"2025-0{1 + i % 9}-1{i % 10}T0{i % 10}:00:00{suffix}".encode() for i in range(30)]
    for index in (0, 15, 30):
        stamps = [*around[:index], (stamp + suffix).encode(), *around[index:]]
        assert _canonical_stamps(stamps) is real
    assert _canonical_stamps([(stamp + "+00:01").encode()]) is False


def test_the_fast_stamp_check_over_many_real_stamps_and_one_bad_one() -> None:
    from dixis_integrations.marketing._seg_files import _canonical_stamps

    start = datetime(2023, 1, 1, tzinfo=UTC)
    stamps = [
        f"{start + timedelta(hours=7 * i, seconds=i):%Y-%m-%dT%H:%M:%S}Z".encode()
        for i in range(5000)
    ]
    assert b"2024-02-29T" in b",".join(stamps)
    assert _canonical_stamps(stamps)
    for bad in (b"2023-02-29T00:00:00Z", b"2024-04-31T00:00:00Z", b"2024-01-01T23:60:00Z"):
        for index in (0, 2500, 4999):
            assert not _canonical_stamps([*stamps[:index], bad, *stamps[index + 1 :]])


@pytest.mark.parametrize("comma", [",x", ""])
@pytest.mark.parametrize(
    ("quoted", "bad"),
    [(25_000, None), (3, None), (25_000, 2_000), (2_000, 25_000), (3, 4)],
)
def test_two_workers_and_a_quote_anywhere_read_like_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    quoted: int,
    bad: int | None,
    comma: str,
) -> None:
    rows = _rows_file(30_000)
    rows[quoted] = f'{quoted},"c{quoted}{comma}",2025-06-01T00:00:00Z,1.00,paid\n'
    if bad is not None:
        rows[bad] = "o,c1,2025-06-01T00:00:00Z,1.00,lost\n"
    text = "order_id,customer_id,created_at,total_amount,status\n" + "".join(rows)
    one = segment(tmp_path, text, "--workers", "1")
    first_error = capsys.readouterr().err
    assert segment(tmp_path, text, "--workers", "2") == one
    assert capsys.readouterr().err == first_error
    if bad is None:
        assert one[0] == 0
        assert (f'"c{quoted},x",' if comma else f"\nc{quoted},") in one[1]
    else:
        assert one[0] == 2
        assert f"line[{bad + 2}].status" in first_error


@pytest.mark.parametrize("claim", [2048, 65_536])
def test_two_workers_claiming_small_blocks_read_like_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    claim: int,
) -> None:
    from dixis_integrations.marketing import _seg_files

    monkeypatch.setattr(_seg_files, "_CLAIM_BYTES", claim)
    rows = _rows_file(30_000, lambda i: ("paid", "paid", "refunded", "cancelled")[i % 4])
    header = "order_id,customer_id,created_at,total_amount,status\n"
    one = segment(tmp_path, header + "".join(rows), "--workers", "1")
    assert one[0] == 0
    assert segment(tmp_path, header + "".join(rows), "--workers", "2") == one
    for bad in ((29_000,), (17_000, 29_000), (40, 17_000, 29_000)):
        broken = list(rows)
        for index in bad:
            broken[index] = "o,c1,2025-06-01T00:00:00Z,1.00,lost\n"
        (tmp_path / "out.csv").unlink(missing_ok=True)
        assert segment(tmp_path, header + "".join(broken), "--workers", "2") == (2, "")
        assert f"line[{bad[0] + 2}].status" in capsys.readouterr().err
    quoted = list(rows)
    quoted[20_000] = '20000,"c7",2025-06-01T00:00:00Z,1.00,paid\n'
    expected = segment(tmp_path, header + "".join(quoted), "--workers", "1")
    assert segment(tmp_path, header + "".join(quoted), "--workers", "2") == expected


def test_two_workers_read_json_lines_with_any_ids_like_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dixis_integrations.marketing import _seg_files

    monkeypatch.setattr(_seg_files, "_CLAIM_BYTES", 8192)
    names = [",", "a,b", 'q"uote', "new\nline", "Ζωή", "日本", "tab\there", "plain"]
    records = [
        {
            "customer_id": f"{names[i % len(names)]}{i % 50}",
            "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            "total_amount": f"{i % 300}.{i % 100:02d}",
            "status": ("paid", "paid", "refunded")[i % 3],
        }
        for i in range(6000)
    ]
    text = "".join(json.dumps(record) + "\n" for record in records)
    one = segment(tmp_path, text, "--workers", "1", name="orders.jsonl")
    assert one[0] == 0
    assert one[1].count("\n") > 100
    assert segment(tmp_path, text, "--workers", "2", name="orders.jsonl") == one
