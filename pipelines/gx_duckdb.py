"""Great Expectations (GX Core 1.x) over the pipeline's own DuckDB connection.

WORKAROUND — delete this module once GX ships a native DuckDB engine (upstream PR
great_expectations#12084). Out of the box, GX's SQL datasource over duckdb-engine fails
every metric with "IndexError: list index out of range" (upstream issues #10738, #11579):
GX runs each query in `with engine.connect()` and fetches after the block, when the pool's
reset-on-return has already rolled back the transaction duckdb-engine began, which drops
DuckDB's pending result. Two small changes fix it:

1. DuckDB joins GX's "persisted connection" dialects (like sqlite): GX keeps one
   connection open instead of returning it to the pool after every query.
2. GX is handed the pipeline's OWN connection (through `bound(con)`), so it sees the
   same tables and TEMP views (`src_<table>`) the pipeline built. Transaction control
   and close() are no-ops on GX's side: GX only reads, and the connection stays the
   pipeline's to commit and close.

Everything runs as SQL inside DuckDB (GX bundles aggregate metrics into one query per
table); nothing pulls a table into pandas. The GX context is ephemeral (in memory: no
files or folders), built once per process, with progress bars off. `great_expectations`
is imported lazily (it costs seconds), only by the functions that run gates.
"""
from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import logging
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # imported for annotations only
    import duckdb

DATASOURCE = "kpi_bridge_duckdb"
_lock = threading.RLock()
_bound: list = []  # the connection GX reads through, while `bound()` holds it
# Light counters, so a test can prove validation ran as SQL (few rows ever reach Python).
stats: dict[str, Any] = {"queries": 0, "rows_fetched": 0, "statements": collections.deque(maxlen=200)}


# GX runs an UnexpectedRowsExpectation's query twice: once for up to 200 rows, once
# wrapped in this COUNT(*). Whichever comes second is answered from the first when that
# settles it (all rows fetched; or a count of 0), so each custom check scans once.
_COUNT_WRAP = re.compile(r"SELECT COUNT\(\*\) as unexpected_row_count FROM \((?P<query>.*)\) "
                         r"AS substituted_batch_subquery", re.DOTALL)
_row_counts: dict[str, int] = {}  # query text -> its full row count, within one bound() block
_pending: list = [None, 0]  # (what the last statement was, rows fetched so far)


class _BoundConnection:
    """DB-API face of the DuckDB connection currently bound; counts what GX fetches."""

    def _con(self) -> "duckdb.DuckDBPyConnection":
        if not _bound:
            raise RuntimeError("no DuckDB connection is bound for GX; wrap the call in gx_duckdb.bound(con)")
        return _bound[-1]

    def execute(self, statement, parameters=None):
        stats["queries"] += 1
        stats["statements"].append(statement)
        _pending[:] = [None, 0]
        if not parameters:
            count = _COUNT_WRAP.fullmatch(statement)
            if count and count["query"] in _row_counts:
                statement = f"SELECT {int(_row_counts[count['query']])} AS unexpected_row_count"
            elif count:
                _pending[0] = ("count", count["query"])
            elif _row_counts.get(statement) == 0:
                statement = f"SELECT * FROM ({statement}) AS known_empty LIMIT 0"
            else:
                _pending[0] = ("rows", statement)
        con = self._con()
        return con.execute(statement) if parameters is None else con.execute(statement, parameters)

    def _fetched(self, n: int, exhausted: bool, first=None) -> None:
        stats["rows_fetched"] += n
        _pending[1] += n
        if _pending[0] is not None:
            kind, query = _pending[0]
            if kind == "count" and first is not None:
                _row_counts[query] = first[0]
            elif kind == "rows" and exhausted:
                _row_counts[query] = _pending[1]

    def fetchall(self):
        rows = self._con().fetchall()
        self._fetched(len(rows), True, rows[0] if rows else None)
        return rows

    def fetchmany(self, size: int = 1):
        rows = self._con().fetchmany(size)
        self._fetched(len(rows), len(rows) < size, rows[0] if rows else None)
        return rows

    def fetchone(self):
        row = self._con().fetchone()
        self._fetched(row is not None, row is None, row)
        return row

    def __getattr__(self, name: str):
        return getattr(self._con(), name)


def _dbapi_connection():
    """SQLAlchemy `creator`: duckdb-engine's wrapper around the bound connection."""
    from duckdb_engine import ConnectionWrapper

    class _Borrowed(ConnectionWrapper):
        def begin(self) -> None:  # GX only reads: no transaction of its own on our connection
            pass

        def commit(self) -> None:
            pass

        def rollback(self) -> None:
            pass

        def close(self) -> None:  # the pipeline owns the connection
            pass

    return _Borrowed(_BoundConnection())


def _register_persisted_dialect() -> None:
    """Make GX keep one open connection for DuckDB, as it does for sqlite (see module doc)."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    class _DuckDBDialect(str):  # compares equal to "duckdb"; `.value` like a GXSqlDialect
        value = "duckdb"

    if "duckdb" not in see._PERSISTED_CONNECTION_DIALECTS:
        see._PERSISTED_CONNECTION_DIALECTS = (*see._PERSISTED_CONNECTION_DIALECTS, _DuckDBDialect("duckdb"))


@functools.cache
def context():
    """The process-wide ephemeral GX context (in memory, no progress bars)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    _register_persisted_dialect()
    if not os.environ.get("KPI_BRIDGE_DEBUG"):
        # GX logs failed metric queries with tracebacks; the gate records the error itself
        logging.getLogger("great_expectations").setLevel(logging.CRITICAL)
        atexit.register(_quiet_interpreter_exit)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _quiet_interpreter_exit() -> None:
    """Silence stderr for the interpreter's own teardown (after every atexit handler ran).

    With great_expectations and duckdb_engine both imported, DuckDB 2.0's nanobind
    bindings print "nanobind: leaked N instances!" while the interpreter shuts down (no
    leak of ours: a module teardown-order artifact). Nothing of the program's own output
    comes after this point. Set KPI_BRIDGE_DEBUG=1 to keep stderr open.
    """
    try:
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    except OSError:
        pass


@functools.cache
def _datasource():
    # The URL only names the dialect: every connection comes from `_dbapi_connection`.
    return context().data_sources.add_sql(
        name=DATASOURCE, connection_string="duckdb:///:memory:", kwargs={"creator": _dbapi_connection})


@contextlib.contextmanager
def bound(con: "duckdb.DuckDBPyConnection") -> Iterator[None]:
    """Let GX read through `con` for the duration of the block (one caller at a time)."""
    with _lock:
        _bound.append(con)
        _row_counts.clear()
        try:
            yield
        finally:
            _bound.pop()
            _row_counts.clear()


def batch(table: str):
    """A whole-table GX batch over `table` (a table or view, TEMP included) of the bound connection."""
    ds = _datasource()
    try:
        asset = ds.get_asset(table)
    except LookupError:
        asset = ds.add_table_asset(name=table, table_name=table)
    try:
        definition = asset.get_batch_definition("whole_table")
    except KeyError:
        definition = asset.add_batch_definition_whole_table("whole_table")
    return definition.get_batch()


def validate(con: "duckdb.DuckDBPyConnection", table: str, expect, result_format: Any = "BASIC",
             expectation_parameters: dict | None = None):
    """Validate an Expectation or ExpectationSuite against `table` in `con`, as SQL in DuckDB."""
    with bound(con):
        return batch(table).validate(expect, result_format=result_format,
                                     expectation_parameters=expectation_parameters)
