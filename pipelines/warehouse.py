"""DuckDB warehouse helpers: connect, run a model file, run a query file, atomic swap."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb

from pipelines import SQL_DIR
from pipelines import config

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def connect(path: str | Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with the session time zone set to UTC (SPEC §2: periods cut on UTC dates)."""
    settings = config.pipeline()
    con = duckdb.connect(str(path) if path else ":memory:", read_only=read_only)
    con.execute("set TimeZone = 'UTC'")
    # Settings come from config/pipeline.toml, validated before use (SET takes no parameters).
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]?B", settings["memory_limit"]):
        raise config.ConfigError("pipeline.toml memory_limit must look like '8GB'")
    con.execute(f"set threads = {int(settings['threads'])}")
    con.execute(f"set memory_limit = '{settings['memory_limit']}'")
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")
    return con


_UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "B": 1}


def _bytes(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?B)", text)
    if not m:
        raise config.ConfigError(f"pipeline.toml: {text!r} must look like '8GB'")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_memory_limit(source_bytes: int) -> int:
    """The memory limit (bytes) for a run over a source of this size (config/pipeline.toml):
    the default limit, raised to run_memory_per_source x the source size, capped."""
    settings = config.pipeline()
    base = _bytes(settings["memory_limit"])
    cap = _bytes(settings.get("run_memory_cap", settings["memory_limit"]))
    wanted = float(settings.get("run_memory_per_source", 0)) * source_bytes
    return int(max(base, min(cap, wanted)))


def set_memory_limit(con: duckdb.DuckDBPyConnection, limit_bytes: int) -> None:
    con.execute(f"set memory_limit = '{int(limit_bytes) // 1_000_000}MB'")  # an int: nothing from input


def sql_text(relpath: str) -> str:
    return (SQL_DIR / relpath).read_text()


def _params_for(sql: str, params: dict | None) -> dict:
    """Only the named parameters the SQL uses (DuckDB rejects extra ones)."""
    used = set(_PARAM.findall(sql))
    params = params or {}
    missing = used - set(params)
    if missing:
        raise KeyError(f"SQL needs parameters {sorted(missing)}")
    return {k: v for k, v in params.items() if k in used}


def run_model(con: duckdb.DuckDBPyConnection, relpath: str, params: dict | None = None,
              materialized: str = "table") -> str:
    """Create (or replace) the relation named after the model file from its select.

    materialized: "table" (persisted) or "view" (a persisted view: the staged tables are
    views of their checked table's passing rows, so a 10M-row table is written once).
    A view cannot hold parameters (DuckDB binds them at run time only)."""
    table = Path(relpath).stem
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", table):
        raise ValueError(f"model file name {relpath!r} is not a valid table name")
    if materialized not in ("table", "view"):
        raise ValueError(f"materialized must be 'table' or 'view', not {materialized!r}")
    sql = sql_text(relpath)
    if materialized == "view" and _PARAM.search(sql):
        raise ValueError(f"{relpath} uses parameters ({', '.join(sorted(set(_PARAM.findall(sql))))}): "
                         "a view cannot hold them; materialize it as a table")
    con.execute(f"create or replace {materialized} {table} as\n{sql}", _params_for(sql, params))
    return table


def run_query(con: duckdb.DuckDBPyConnection, relpath: str, params: dict | None = None) -> duckdb.DuckDBPyRelation:
    """A relation over a query file (`.pl()`, `.fetchall()`, `.to_arrow_table()`)."""
    sql = sql_text(relpath)
    return con.sql(sql, params=_params_for(sql, params))


def table_exists(con: duckdb.DuckDBPyConnection, name: str, schema: str = "main") -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_name = ? and table_schema = ?",
            [name, schema],
        ).fetchall()[0][0]
    )


def history_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    """Tables carried across rebuilds: meta_* (run history, gates) and audit_* (sign-offs)."""
    rows = con.execute(
        """
        select table_name from information_schema.tables
        where table_catalog = ? and table_schema = 'main'
          and (table_name like 'meta\\_%' escape '\\' or table_name like 'audit\\_%' escape '\\')
        order by table_name
        """,
        [catalog],
    ).fetchall()
    return [r[0] for r in rows]


def swap_in(build_path: Path, live_path: Path) -> None:
    """Atomically replace the live warehouse with the finished build."""
    for suffix in (".wal",):
        stale = Path(str(build_path) + suffix)
        if stale.exists():
            raise RuntimeError(f"build {build_path} still has a WAL; checkpoint before swapping")
    os.replace(build_path, live_path)


def discard(build_path: Path, keep_as: Path | None = None) -> None:
    if keep_as is not None:
        shutil.move(str(build_path), str(keep_as))
    else:
        build_path.unlink(missing_ok=True)
    Path(str(build_path) + ".wal").unlink(missing_ok=True)
