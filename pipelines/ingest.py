"""Open a telemetry source (SPEC §2) as temp views `src_<table>` on a connection.

A source is a folder with one file per table (`users.parquet`, `users.csv`) or one
hive-partitioned folder per table (`interactions/date=2026-04-01/part-0.parquet`), or
a DuckDB database file holding the tables. Paths are handed to DuckDB's relational
API (no SQL text is built from them).
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines import contract
from pipelines.contract import SourceError

DUCKDB_SUFFIXES = {".duckdb", ".db", ".ddb"}


def _empty_relation(con, table: str):
    cols = contract.tables()[table]["columns"]
    sql_types = {"string": "varchar", "timestamp": "timestamp", "date": "date", "double": "double",
                 "bigint": "bigint", "int": "integer", "bool": "boolean"}
    # Column names and types come from the contract (allow-list).
    select = ", ".join(f'cast(null as {sql_types[t]}) as "{c}"' for c, t in cols.items())
    return con.sql(f"select {select} where false")


def _files_for(folder: Path, table: str) -> tuple[str, list[str]] | None:
    """('parquet'|'csv', [paths]) for a table in a source folder, or None."""
    for kind in ("parquet", "csv"):
        single = folder / f"{table}.{kind}"
        if single.is_file():
            return kind, [str(single)]
    sub = folder / table
    if sub.is_dir():
        for kind in ("parquet", "csv"):
            files = sorted(str(p) for p in sub.rglob(f"*.{kind}") if p.is_file())
            if files:
                return kind, files
        raise SourceError(table, None, f"folder {sub} holds no .parquet or .csv files",
                          f"put the `{table}` files (Parquet or CSV) in {sub}")
    return None


def _relation_from_files(con, table: str, kind: str, files: list[str]):
    hive = len(files) > 1 or "=" in Path(files[0]).parent.name
    try:
        if kind == "parquet":
            rel = con.read_parquet(files, hive_partitioning=hive, union_by_name=True)
        else:
            rel = con.read_csv(files, header=True, all_varchar=True, hive_partitioning=hive,
                               union_by_name=True)
        rel.limit(1).to_arrow_table()  # force a read so an unreadable file fails here (arrow: no pytz needed)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise SourceError(table, None, f"cannot read {kind} file(s) {files[0]}"
                          + (f" (+{len(files) - 1} more)" if len(files) > 1 else "") + f": {first}",
                          f"re-export `{table}` as a valid {kind.upper()} file with a header row"
                          if kind == "csv" else f"re-export `{table}` as a valid Parquet file") from None
    return rel


def open_source(con: duckdb.DuckDBPyConnection, source: str | Path) -> dict[str, str]:
    """Create `src_<table>` temp views for every contract table. Returns {table: description}."""
    source = Path(source)
    if not source.exists():
        raise SourceError("(source)", None, f"{source} does not exist",
                          "pass --source a folder of Parquet/CSV files or a DuckDB file")
    found: dict[str, str] = {}
    if source.is_file():
        if source.suffix.lower() not in DUCKDB_SUFFIXES:
            raise SourceError("(source)", None, f"{source} is a file but not a DuckDB database",
                              "pass a folder with one file per table, or a .duckdb file")
        try:
            con.execute("attach ? as src_db (read_only)", [str(source)])
        except duckdb.Error as exc:
            raise SourceError("(source)", None, f"cannot open DuckDB file {source}: {str(exc).splitlines()[0]}",
                              "check the file is a DuckDB database written by a compatible version") from None
        present = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'src_db'").fetchall()}
        for table, spec in contract.tables().items():
            if table in present:
                # `table` comes from the contract (allow-list).
                con.sql(f'select * from src_db.main."{table}"').create_view(f"src_{table}", replace=True)
                found[table] = f"{source}:{table}"
            elif spec["required"]:
                raise SourceError(table, None, f"the table is missing from {source}",
                                  f"add a `{table}` table (SPEC §2)")
            else:
                _empty_relation(con, table).create_view(f"src_{table}", replace=True)
                found[table] = "(absent: empty)"
    else:
        for table, spec in contract.tables().items():
            located = _files_for(source, table)
            if located is None:
                if spec["required"]:
                    raise SourceError(table, None, f"no {table}.parquet, {table}.csv or {table}/ folder in {source}",
                                      f"add the `{table}` table as {source / (table + '.parquet')} or .csv (SPEC §2)")
                _empty_relation(con, table).create_view(f"src_{table}", replace=True)
                found[table] = "(absent: empty)"
                continue
            kind, files = located
            _relation_from_files(con, table, kind, files).create_view(f"src_{table}", replace=True)
            found[table] = f"{kind}: {len(files)} file(s)"
    for table in contract.tables():
        contract.check_columns(con, table, f"src_{table}")
    return found
