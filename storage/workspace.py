"""The workspace: Parquet tables partitioned on disk, written atomically, plus a DuckDB catalog of views."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq

from storage.errors import MegcError
from storage.schemas import TABLES

DEFAULT_HOME = "megc-home"


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """The workspace root: the argument, else $MEGC_HOME, else ./megc-home."""
    return Path(home or os.environ.get("MEGC_HOME") or DEFAULT_HOME).expanduser().resolve()


def to_table(data: Any, schema: pa.Schema) -> pa.Table:
    """Cast a pyarrow table, pandas frame or list of row dicts to `schema` (columns in schema order)."""
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, list):
        return pa.Table.from_pylist(data, schema=schema)
    else:
        table = pa.Table.from_pandas(data, preserve_index=False)
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise MegcError(f"table is missing columns {missing} of schema {schema.names}")
    return table.select(schema.names).cast(schema)


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


class Workspace:
    """Parquet tables under <home>/tables/<table>/<key>=<value>/..., and <home>/catalog.duckdb."""

    def __init__(self, home: str | os.PathLike | None = None):
        self.root = resolve_home(home)
        self.tables_dir = self.root / "tables"
        self.tmp_dir = self.root / "tmp"
        self.catalog_path = self.root / "catalog.duckdb"

    # ---- layout -------------------------------------------------------------------------------
    def ensure(self) -> "Workspace":
        """Create the workspace folders."""
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self

    def path(self, *parts: str) -> Path:
        """A path inside the workspace for non-table files (models, reports, caches)."""
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    @staticmethod
    def _schema(table: str) -> tuple[pa.Schema, tuple[str, ...]]:
        if table not in TABLES:
            raise MegcError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        return TABLES[table]

    def partition_dir(self, table: str, **partition: str) -> Path:
        """Folder of a partition; `partition` must be a prefix of the table's partition keys."""
        _, keys = self._schema(table)
        given = list(partition)
        if given != list(keys[: len(given)]):
            raise MegcError(f"table {table} is partitioned by {keys}; got {given}")
        d = self.tables_dir / table
        for k in given:
            d = d / f"{k}={quote(str(partition[k]), safe='')}"
        return d

    def partitions(self, table: str, **partition: str) -> list[dict[str, str]]:
        """Existing leaf partitions (as key dicts) under a partition prefix."""
        _, keys = self._schema(table)
        base = self.partition_dir(table, **partition)
        depth = len(keys) - len(partition)
        out = []
        if not base.is_dir():
            return out
        for d in sorted(base.glob("/".join(["*"] * depth)) if depth else [base]):
            if not d.is_dir():
                continue
            rel = d.relative_to(self.tables_dir / table).parts
            out.append({p.split("=", 1)[0]: unquote(p.split("=", 1)[1]) for p in rel})
        return out

    # ---- writing ------------------------------------------------------------------------------
    def _write_file(self, table: pa.Table, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".{uuid.uuid4().hex}.tmp")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, dest)

    def write(self, table: str, data: Any, part: str = "part-0", **partition: str) -> Path:
        """Atomically write one file `part` into a leaf partition, replacing a file of that name."""
        schema, keys = self._schema(table)
        if len(partition) != len(keys):
            raise MegcError(f"table {table}: write needs every partition key {keys}")
        t = to_table(data, schema)
        dest = self.partition_dir(table, **partition) / f"{part}.parquet"
        self._write_file(t, dest)
        return dest

    def has_part(self, table: str, part: str = "part-0", **partition: str) -> bool:
        """Whether a finished part file exists (used to skip finished shards)."""
        return (self.partition_dir(table, **partition) / f"{part}.parquet").exists()

    def replace(self, table: str, data: Any, **partition: str) -> None:
        """Atomically replace everything under a partition prefix with `data` (split by the other keys)."""
        schema, keys = self._schema(table)
        t = to_table(data, schema)
        rest = keys[len(partition):]
        for k, v in partition.items():
            if t.num_rows and set(t.column(k).to_pylist()) != {v}:
                raise MegcError(f"table {table}: rows outside partition {k}={v}")
        self.ensure()
        staging = self.tmp_dir / f"{table}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            if rest and t.num_rows:
                groups: dict[tuple, list[int]] = {}
                cols = [t.column(k).to_pylist() for k in rest]
                for i, vals in enumerate(zip(*cols)):
                    groups.setdefault(vals, []).append(i)
                for vals, idx in groups.items():
                    sub = staging.joinpath(*[f"{k}={quote(str(v), safe='')}" for k, v in zip(rest, vals)])
                    self._write_file(t.take(idx), sub / "part-0.parquet")
            elif not rest:
                self._write_file(t, staging / "part-0.parquet")
            self.swap_in(staging, self.partition_dir(table, **partition))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def swap_in(self, staging: Path, target: Path) -> None:
        """Move a fully written folder into place, replacing `target`; the old one is removed afterwards."""
        target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if target.exists():
            old = self.ensure().tmp_dir / f"old-{uuid.uuid4().hex}"
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def delete(self, table: str, **partition: str) -> None:
        """Remove a partition prefix (or the whole table)."""
        d = self.partition_dir(table, **partition)
        if d.exists():
            trash = self.ensure().tmp_dir / f"del-{uuid.uuid4().hex}"
            os.replace(d, trash)
            shutil.rmtree(trash, ignore_errors=True)

    # ---- reading ------------------------------------------------------------------------------
    def files(self, table: str, **partition: str) -> list[Path]:
        """Finished Parquet files under a partition prefix, sorted."""
        d = self.partition_dir(table, **partition)
        return sorted(d.rglob("*.parquet")) if d.is_dir() else []

    def read(self, table: str, columns: list[str] | None = None, **partition: str) -> pa.Table:
        """Read a table (or a partition prefix of it) into memory; empty table when nothing is stored."""
        schema, _ = self._schema(table)
        files = self.files(table, **partition)
        if not files:
            t = schema.empty_table()
            return t.select(columns) if columns else t
        parts = [pq.read_table(f, columns=columns, schema=schema) for f in files]
        return pa.concat_tables(parts)

    def iter_batches(self, table: str, columns: list[str] | None = None, batch_size: int = 4096,
                     **partition: str) -> Iterable[pa.RecordBatch]:
        """Stream a table partition in record batches without loading it whole."""
        for f in self.files(table, **partition):
            yield from pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns)

    # ---- catalog ------------------------------------------------------------------------------
    def _view_sql(self, table: str) -> str:
        schema, _ = self._schema(table)
        if self.files(table):
            glob = str(self.tables_dir / table) + "/**/*.parquet"
            return (f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet("
                    f"{_sql_literal(glob)}, union_by_name = true, hive_partitioning = false)")
        cols = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {f.name}" for f in schema)
        return f"CREATE OR REPLACE VIEW {table} AS SELECT {cols} WHERE false"

    def catalog(self):
        """A DuckDB connection on the catalog file with a fresh view over every table.

        Falls back to an in-memory catalog when another process holds the file's lock.
        """
        import duckdb

        self.ensure()
        try:
            con = duckdb.connect(str(self.catalog_path))
        except duckdb.IOException:
            con = duckdb.connect()
        for name in TABLES:
            con.execute(self._view_sql(name))
        return con

    def sql(self, query: str, params: Mapping[str, Any] | list | None = None) -> tuple[list[str], list[tuple]]:
        """Run a query against the catalog; returns (column names, rows)."""
        con = self.catalog()
        try:
            cur = con.execute(query, params) if params is not None else con.execute(query)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
            return cols, rows
        finally:
            con.close()
