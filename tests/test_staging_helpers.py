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
