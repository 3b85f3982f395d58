"""GX's SQL path over DuckDB (pipelines/gx_duckdb.py): fails if the upstream bug comes back.

Upstream GX + duckdb-engine fails every metric with "list index out of range"
(great_expectations #10738, #11579). These tests validate real expectations on tiny
tables with known bad rows and check the exact counts, that the work ran as SQL in
DuckDB (only a handful of rows ever reach Python), that TEMP views of the pipeline's
own connection are visible, and that GX leaves the connection as it found it.
"""
from __future__ import annotations

import duckdb
import pytest

from pipelines import gx_duckdb

N_ROWS = 20_000


@pytest.fixture(scope="module")
def gx():
    import great_expectations

    gx_duckdb.context()  # built once per process
    return great_expectations


@pytest.fixture()
def con():
    c = duckdb.connect()
    # one NULL (i = 7) and two values out of [0, 10000] (i = 15000, 19999)
    c.execute(f"""
        create table measures as
        select 'r' || i as id,
               case when i = 7 then null else cast(i as double) end as v,
               case when i in (15000, 19999) then 99999.0 else cast(i % 10000 as double) end as w
        from range({N_ROWS}) r(i)
    """)
    c.execute("create temp view tmp_measures as select * from measures")
    yield c
    c.close()


def _suite(gx, *expectations):
    return gx.ExpectationSuite(name="probe", expectations=list(expectations))


@pytest.mark.parametrize("table", ["measures", "tmp_measures"])
def test_not_null_and_between_counts_are_exact(gx, con, table):
    suite = _suite(gx,
                   gx.expectations.ExpectColumnValuesToNotBeNull(column="v"),
                   gx.expectations.ExpectColumnValuesToBeBetween(column="w", min_value=0, max_value=10000),
                   gx.expectations.ExpectColumnValuesToNotBeNull(column="id"))
    result = gx_duckdb.validate(con, table, suite)
    by = {(r.expectation_config.type, r.expectation_config.kwargs["column"]): r for r in result.results}
    nn = by[("expect_column_values_to_not_be_null", "v")]
    bt = by[("expect_column_values_to_be_between", "w")]
    ok = by[("expect_column_values_to_not_be_null", "id")]
    for r in (nn, bt, ok):  # the upstream bug shows as an empty result with an IndexError inside
        assert r.result, r.exception_info
    assert (nn.success, nn.result["unexpected_count"], nn.result["element_count"]) == (False, 1, N_ROWS)
    assert (bt.success, bt.result["unexpected_count"]) == (False, 2)
    assert sorted(bt.result["partial_unexpected_list"]) == [99999.0, 99999.0]
    assert (ok.success, ok.result["unexpected_count"]) == (True, 0)


def test_checks_run_as_sql_not_in_python(gx, con):
    before_rows, before_q = gx_duckdb.stats["rows_fetched"], gx_duckdb.stats["queries"]
    gx_duckdb.stats["statements"].clear()
    suite = _suite(gx,
                   gx.expectations.ExpectColumnValuesToNotBeNull(column="v"),
                   gx.expectations.ExpectColumnValuesToBeBetween(column="w", min_value=0, max_value=10000))
    gx_duckdb.validate(con, "measures", suite, result_format={"result_format": "BASIC",
                                                              "partial_unexpected_count": 0})
    sql = "\n".join(gx_duckdb.stats["statements"])
    assert gx_duckdb.stats["queries"] > before_q
    # both conditions are counted by one aggregate query inside DuckDB
    assert "column_values.nonnull.unexpected_count" in sql and "column_values.between.unexpected_count" in sql
    assert "sum(CASE WHEN" in sql
    # a pandas pull would fetch all 20,000 rows; SQL pushdown fetches a few dozen at most
    assert gx_duckdb.stats["rows_fetched"] - before_rows < 100


def test_unexpected_rows_expectation_counts(gx, con):
    few = gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query="select id, w from {batch} where w > 10000")
    many = gx.expectations.UnexpectedRowsExpectation(  # more rows than GX fetches (200)
        unexpected_rows_query="select id from {batch} where v < 250")
    none = gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query="select id from {batch} where v < 0")
    result = gx_duckdb.validate(con, "tmp_measures", _suite(gx, few, many, none))
    got = {r.expectation_config.kwargs["unexpected_rows_query"]: (r.success, r.result.get("observed_value"))
           for r in result.results}
    assert got[few.unexpected_rows_query] == (False, 2)
    assert got[many.unexpected_rows_query] == (False, 249)  # 0..249 without the NULL at 7
    assert got[none.unexpected_rows_query] == (True, 0)


def test_connection_left_as_found(gx, con):
    gx_duckdb.validate(con, "measures", gx.expectations.ExpectColumnValuesToNotBeNull(column="v"))
    # still open, not closed by GX's pool, and no transaction of GX's left open
    con.execute("begin transaction")
    con.execute("insert into measures values ('extra', 1.0, 1.0)")
    con.execute("commit")
    assert con.execute("select count(*) from measures").fetchall()[0][0] == N_ROWS + 1
    # GX reads a later connection, not a stale one
    other = duckdb.connect()
    other.execute("create table measures as select 1.0 as v")
    r = gx_duckdb.validate(other, "measures", gx.expectations.ExpectColumnValuesToNotBeNull(column="v"))
    assert r.success and r.result["element_count"] == 1
    other.close()


def test_file_backed_connection(gx, tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    c.execute("create table t as select range as x from range(10)")
    r = gx_duckdb.validate(c, "t", gx.expectations.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=8))
    assert (r.success, r.result["unexpected_count"]) == (False, 1)
    c.close()


def test_no_files_no_progress_bars(gx, con, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    gx_duckdb.validate(con, "measures", gx.expectations.ExpectColumnValuesToNotBeNull(column="v"))
    assert list(tmp_path.iterdir()) == []
    captured = capsys.readouterr()
    assert "Calculating Metrics" not in captured.out + captured.err


def test_duckdb_is_a_persisted_connection_dialect(gx):
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    assert "duckdb" in see._PERSISTED_CONNECTION_DIALECTS


def test_unbound_use_is_a_clear_error(gx):
    with pytest.raises(RuntimeError, match="bound"):
        gx_duckdb._BoundConnection().execute("select 1")
