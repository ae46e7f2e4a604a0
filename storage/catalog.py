"""The DuckDB catalog of a workspace: one relation per table, typed even when the table has no rows.

A local workspace gets views over `read_parquet` globs, persisted in <home>/catalog.duckdb. A URL workspace
gets pyarrow datasets over the table's files registered on the connection (DuckDB scans them lazily, pushing
columns and filters down), so no DuckDB extension (httpfs) is needed; its catalog file lives in the local folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from storage.schemas import TABLES

if TYPE_CHECKING:
    import duckdb

    from storage.workspace import Workspace


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(t: pa.DataType) -> str:
    """DuckDB type name for an Arrow type used in megc schemas."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_fixed_size_list(t):
        return f"{duckdb_type(t.value_type)}[{t.list_size}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    raise TypeError(f"no DuckDB type for {t}")


def view_sql(ws: Workspace, table: str) -> str:
    """CREATE VIEW statement of a table of a local workspace (a typed empty view when it has no files)."""
    schema, _ = TABLES[table]
    if ws.files(table):
        glob = str(ws.location("tables", table)) + "/**/*.parquet"
        return (f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet("
                f"{_sql_literal(glob)}, union_by_name = true, hive_partitioning = false)")
    cols = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {f.name}" for f in schema)
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} WHERE false"


def arrow_source(ws: Workspace, table: str, files: list[str]) -> pa.Table | object:
    """A pyarrow dataset over a table's files in the workspace's filesystem, or its empty typed table."""
    import pyarrow.dataset as ds

    schema, _ = TABLES[table]
    if not files:
        return schema.empty_table()
    return ds.dataset(files, schema=schema, format="parquet", filesystem=ws.fs)


def open_catalog(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on the catalog file with a fresh relation for every table.

    Falls back to an in-memory catalog when another process holds the file's lock.
    """
    import duckdb

    ws.ensure()
    try:
        con = duckdb.connect(str(ws.catalog_path))
    except duckdb.IOException:
        con = duckdb.connect()
    if ws.is_local:
        for name in TABLES:
            con.execute(view_sql(ws, name))
        return con
    files = ws.table_files()
    for name in TABLES:
        con.register(name, arrow_source(ws, name, files.get(name, [])))
    return con
