"""The DuckDB catalog of a workspace: one relation per table, typed even when the table has no rows.

It is given a listing of each table's Parquet files and the filesystem they are in. Over a local folder it
creates views over `read_parquet` globs of each table's folder, persisted in the catalog file; otherwise it
registers pyarrow datasets over the listed files on the connection (DuckDB scans them lazily, pushing columns
and filters down), so no DuckDB extension (httpfs) is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs

from storage.schemas import TABLES

if TYPE_CHECKING:
    import duckdb


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


def view_sql(table: str, folder: Path | None) -> str:
    """CREATE VIEW statement over the Parquet files under a local folder (a typed empty view when None)."""
    if folder is not None:
        glob = f"{folder}/**/*.parquet"
        return (f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet("
                f"{_sql_literal(glob)}, union_by_name = true, hive_partitioning = false)")
    schema, _ = TABLES[table]
    cols = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {f.name}" for f in schema)
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} WHERE false"


def arrow_source(table: str, files: list[str], fs: pafs.FileSystem) -> pa.Table | object:
    """A pyarrow dataset over a table's files in `fs`, or its empty typed table."""
    import pyarrow.dataset as ds

    schema, _ = TABLES[table]
    if not files:
        return schema.empty_table()
    return ds.dataset(files, schema=schema, format="parquet", filesystem=fs)


def open_catalog(path: Path, listing: Mapping[str, list[str]], fs: pafs.FileSystem,
                 local_tables: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on the catalog file `path` with a fresh relation for every table.

    `listing` maps a table to its Parquet files in `fs`. With `local_tables` (the tables folder of a local
    workspace) a table with files is a view over its folder's glob. Falls back to an in-memory catalog when
    another process holds the file's lock.
    """
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException:
        con = duckdb.connect()
    for name in TABLES:
        files = listing.get(name, [])
        if local_tables is not None:
            con.execute(view_sql(name, local_tables / name if files else None))
        else:
            con.register(name, arrow_source(name, files, fs))
    return con
