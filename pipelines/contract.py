"""Whole-table checks of a source against the telemetry contract (config/telemetry.toml).

A whole-table problem (missing table, missing column, wrong type, unreadable file)
stops the run with a SourceError naming the table, the column and the fix. Row-level
problems are not handled here: staging quarantines them (sql/staging/chk_*.sql).
"""
from __future__ import annotations

import duckdb

from pipelines import config

NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
           "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL"}
INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
           "UINTEGER", "UBIGINT", "UHUGEINT"}
TEMPORAL = {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS",
            "TIMESTAMP_NS", "DATE"}

# Which stored types each contract type accepts as-is (VARCHAR is checked by parsing).
ACCEPTS = {
    "string": None,  # anything can be read as text
    "double": NUMERIC,
    "bigint": INTEGER,
    "int": INTEGER,
    "timestamp": TEMPORAL,
    "date": TEMPORAL,
    "bool": {"BOOLEAN"} | INTEGER,
}
# How a VARCHAR value is parsed (mirrors the casts in sql/staging/chk_*.sql).
PARSE = {
    "double": "try_cast(v as double)",
    "bigint": "try_cast(try_cast(v as double) as bigint)",
    "int": "try_cast(try_cast(v as double) as integer)",
    "timestamp": "try_cast(v as timestamptz)",
    "date": "coalesce(try_cast(v as date), try_cast(try_cast(v as timestamptz) as date))",
    "bool": "try_cast(lower(trim(v)) as boolean)",
}
EXAMPLE = {
    "double": "a number such as 412.5",
    "bigint": "a whole number such as 1200",
    "int": "a whole number such as 2",
    "timestamp": "an ISO timestamp such as 2026-04-01T09:30:00Z (no zone = UTC)",
    "date": "an ISO date such as 2026-04-01",
    "bool": "true or false",
    "string": "text",
}
# Share of the first rows' non-null text values that must parse for a VARCHAR column
# to count as the right type (below it, the column is the wrong type as a whole;
# above it, the few bad values are quarantined row by row).
PARSE_SAMPLE_ROWS = 10_000
MIN_PARSE_SHARE = 0.5


class SourceError(Exception):
    """A whole-table problem: the run stops with exit code 2 and this message."""

    def __init__(self, table: str, column: str | None, problem: str, fix: str):
        self.table, self.column, self.problem, self.fix = table, column, problem, fix
        where = f"table `{table}`" + (f", column `{column}`" if column else "")
        super().__init__(f"{where}: {problem}. Fix: {fix}")


def tables() -> dict:
    return config.telemetry()["tables"]


def check_columns(con: duckdb.DuckDBPyConnection, table: str, view: str) -> None:
    """Raise SourceError if `view` lacks a contract column or holds one of the wrong type."""
    spec = tables()[table]["columns"]
    described = {r[0]: r[1] for r in con.execute(f"describe {view}").fetchall()}
    lower = {name.lower(): name for name in described}
    for column, kind in spec.items():
        if column not in described:
            near = lower.get(column.lower())
            hint = f" (found `{near}`: rename it to `{column}`)" if near else ""
            raise SourceError(table, column, f"the column is missing{hint}",
                              f"add a `{column}` column holding {EXAMPLE[kind]} (SPEC §2)")
        stored = described[column].upper()
        accepted = ACCEPTS[kind]
        if accepted is None or stored in accepted or stored.startswith("DECIMAL") and kind == "double":
            continue
        if stored == "VARCHAR" and kind in PARSE:
            _check_text_parses(con, table, view, column, kind)
            continue
        raise SourceError(table, column, f"stored as {stored}, expected {kind}",
                          f"write `{column}` as {EXAMPLE[kind]}")


def _check_text_parses(con, table: str, view: str, column: str, kind: str) -> None:
    # `view` and `column` come from the contract (an allow-list), never from input data.
    parsed = PARSE[kind]
    sql = (
        f'select count(v), count({parsed}) from '
        f'(select "{column}" as v from {view} where "{column}" is not null '
        f"and trim(\"{column}\") <> '' limit {PARSE_SAMPLE_ROWS})"
    )
    non_null, ok = con.execute(sql).fetchall()[0]
    if non_null and ok / non_null < MIN_PARSE_SHARE:
        bad = con.execute(
            f'select v from (select "{column}" as v from {view} where "{column}" is not null limit {PARSE_SAMPLE_ROWS}) '
            f"where {parsed} is null limit 3"
        ).fetchall()
        examples = ", ".join(repr(b[0]) for b in bad)
        raise SourceError(table, column,
                          f"only {ok} of the first {non_null} values read as {kind} (e.g. {examples})",
                          f"write `{column}` as {EXAMPLE[kind]}")
