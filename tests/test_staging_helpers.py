"""Staging's helpers: the utc_timestamp macro on every input type, and run_model's choices."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipelines import warehouse


@pytest.fixture()
def con():
    c = duckdb.connect()
    c.execute("set TimeZone = 'UTC'")  # as warehouse.connect sets it
    c.execute(warehouse.sql_text("meta/macros.sql"))
    yield c
    c.close()


@pytest.mark.parametrize("expr,expected", [
    ("timestamp '2026-03-31 23:30:00'", dt.datetime(2026, 3, 31, 23, 30)),           # zoneless: UTC as is
    ("cast('2026-03-31 23:30:00.5' as timestamp_ns)", dt.datetime(2026, 3, 31, 23, 30, 0, 500000)),
    ("cast('2026-03-31 23:30:00' as timestamp_s)", dt.datetime(2026, 3, 31, 23, 30)),
    ("cast('2026-03-31 23:30:00' as timestamp_ms)", dt.datetime(2026, 3, 31, 23, 30)),
    ("timestamptz '2026-03-31 23:30:00-01:00'", dt.datetime(2026, 4, 1, 0, 30)),     # offset applied
    ("'2026-03-31T23:30:00-01:00'", dt.datetime(2026, 4, 1, 0, 30)),                  # text with offset
    ("'2026-04-01T00:30:00Z'", dt.datetime(2026, 4, 1, 0, 30)),
    ("'2026-03-31 23:30:00'", dt.datetime(2026, 3, 31, 23, 30)),                      # text, no zone: UTC
    ("'not a time'", None),
    ("cast(null as varchar)", None),
])
def test_utc_timestamp(con, expr, expected):
    assert con.execute(f"select utc_timestamp({expr})").fetchall() == [(expected,)]


def test_a_view_model_cannot_take_parameters(tmp_path, monkeypatch):
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "stg_x.sql").write_text("select 1 as a where now() < $as_of")
    monkeypatch.setattr(warehouse, "SQL_DIR", tmp_path)
    c = duckdb.connect()
    with pytest.raises(ValueError, match="as_of.*materialize it as a table"):
        warehouse.run_model(c, "staging/stg_x.sql", {"as_of": dt.datetime(2030, 1, 1)}, materialized="view")
    warehouse.run_model(c, "staging/stg_x.sql", {"as_of": dt.datetime(2030, 1, 1)})  # a table may
    assert c.execute("select a from stg_x").fetchall() == [(1,)]


def test_chk_user_activity_keys_by_hand(con):
    """Each path of chk_user_activity on text input: a key seen once, exact repeats (kept
    once), two spellings of one date (first kept, the other duplicate_id), null keys
    (exact repeats collapse, then null_id / null_required), unparseable and future dates."""
    con.execute("create table src_user_activity (user_id varchar, activity_date varchar)")
    con.execute("""insert into src_user_activity values
        ('u1', '2026-04-01'),                                  -- once: kept
        ('u2', '2026-04-02'), ('u2', '2026-04-02'),            -- exact repeat: one row, kept
        ('u3', '2026-04-03'), ('u3', '2026-04-03T00:00:00Z'),  -- one key, two spellings
        (null, '2026-04-04'), (null, '2026-04-04'),            -- null id, repeated: one row
        ('u5', null),                                          -- null date
        ('u6', 'soon'),                                        -- unparseable
        ('u7', '2031-01-01')                                   -- after as_of""")
    con.execute("create table chk as " + warehouse.sql_text("staging/chk_user_activity.sql"),
                {"as_of": dt.datetime(2026, 12, 1)})
    got = sorted(con.execute("""select user_id, cast(activity_date as varchar), _problem.reason,
                                       json_extract_string(_row_json, '$.activity_date') from chk""").fetchall(),
                 key=lambda r: (str(r[0]), str(r[1]), str(r[2]), str(r[3])))
    assert got == sorted([
        ("u1", "2026-04-01", None, None),
        ("u2", "2026-04-02", None, None),
        # ORDER BY the raw row: '2026-04-03' sorts before '2026-04-03T00:00:00Z' and is kept
        ("u3", "2026-04-03", None, None),
        ("u3", "2026-04-03", "duplicate_id", "2026-04-03T00:00:00Z"),
        (None, "2026-04-04", "null_id", "2026-04-04"),
        ("u5", None, "null_required", None),
        ("u6", None, "unparseable", "soon"),
        ("u7", "2031-01-01", "future_ts", "2031-01-01"),
    ], key=lambda r: (str(r[0]), str(r[1]), str(r[2]), str(r[3])))
