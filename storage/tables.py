"""The table store: partitioned Parquet tables under <root>/tables/<table>/<key>=<value>/<part>.parquet."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage.errors import MegcError
from storage.location import Url
from storage.schemas import TABLES
from storage.store import FileStore, Writer


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


def _parquet(table: pa.Table) -> Writer:
    # Dictionary encoding only for text: on float arrays (features, landmarks) it makes files larger and
    # costs about half the write time.
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return lambda out: pq.write_table(table, out, compression="zstd", use_dictionary=text)


def _schema(table: str) -> tuple[pa.Schema, tuple[str, ...]]:
    if table not in TABLES:
        raise MegcError(f"unknown table {table!r}; known: {sorted(TABLES)}")
    return TABLES[table]


def _key_path(keys: Iterable[str], values: Iterable[Any]) -> list[str]:
    return [f"{k}={quote(str(v), safe='')}" for k, v in zip(keys, values)]


class TableStore:
    """Write, replace, list and read the partitioned Parquet tables of storage.schemas.TABLES."""

    def __init__(self, store: FileStore):
        self.store = store
        self.top = store.path("tables")
        self.dir = store.where(self.top)

    def _partition(self, table: str, **partition: str) -> str:
        """Filesystem path of a partition; `partition` must be a prefix of the table's partition keys."""
        _, keys = _schema(table)
        given = list(partition)
        if given != list(keys[: len(given)]):
            raise MegcError(f"table {table} is partitioned by {keys}; got {given}")
        return "/".join([self.top, table, *_key_path(given, partition.values())])

    def partitions(self, table: str, **partition: str) -> list[dict[str, str]]:
        """Existing leaf partitions (as key dicts) under a partition prefix."""
        _, keys = _schema(table)
        s = self.store
        base = self._partition(table, **partition)
        depth = len(keys) - len(partition)
        top = f"{self.top}/{table}"
        if depth == 0:
            found = {s.rel(base, top)} if s.kind(base) == pafs.FileType.Directory else set()
        elif s.is_local:
            found = {s.rel(i.path, top) for i in s.listing(base)
                     if i.type == pafs.FileType.Directory and len(s.rel(i.path, base)) == depth}
        else:  # an object store has no folders: a partition exists when it holds a file
            found = {s.rel(p, top)[: len(keys)] for p in s.files_under(base, ".parquet")
                     if len(s.rel(p, base)) > depth}
        return [{p.split("=", 1)[0]: unquote(p.split("=", 1)[1]) for p in rel} for rel in sorted(found)]

    # ---- writing ------------------------------------------------------------------------------
    def write(self, table: str, data: Any, part: str = "part-0", **partition: str) -> Path | Url:
        """Atomically write one file `part` into a leaf partition, replacing a file of that name."""
        schema, keys = _schema(table)
        if len(partition) != len(keys):
            raise MegcError(f"table {table}: write needs every partition key {keys}")
        dest = f"{self._partition(table, **partition)}/{part}.parquet"
        self.store.put(dest, _parquet(to_table(data, schema)))
        return self.store.where(dest)

    def has_part(self, table: str, part: str = "part-0", **partition: str) -> bool:
        """Whether a finished part file exists (used to skip finished shards)."""
        return self.store.kind(f"{self._partition(table, **partition)}/{part}.parquet") == pafs.FileType.File

    def replace(self, table: str, data: Any, **partition: str) -> None:
        """Replace everything under a partition prefix with `data` (split by the other keys); atomic locally."""
        schema, keys = _schema(table)
        t = to_table(data, schema)
        rest = keys[len(partition):]
        for k, v in partition.items():
            if t.num_rows and set(t.column(k).to_pylist()) != {v}:
                raise MegcError(f"table {table}: rows outside partition {k}={v}")
        files: dict[str, Writer] = {}
        if rest and t.num_rows:
            groups: dict[tuple, list[int]] = {}
            for i, vals in enumerate(zip(*[t.column(k).to_pylist() for k in rest])):
                groups.setdefault(vals, []).append(i)
            for vals, idx in groups.items():
                files["/".join([*_key_path(rest, vals), "part-0.parquet"])] = _parquet(t.take(idx))
        elif not rest:
            files["part-0.parquet"] = _parquet(t)
        self.store.replace_tree(self._partition(table, **partition), files, table)

    def delete(self, table: str, **partition: str) -> None:
        """Remove a partition prefix (or the whole table)."""
        self.store.remove_tree(self._partition(table, **partition))

    # ---- reading ------------------------------------------------------------------------------
    def files(self, table: str, **partition: str) -> list[PurePath]:
        """Finished Parquet files under a partition prefix, sorted (local Paths, or store paths of a URL workspace)."""
        kind = Path if self.store.is_local else PurePosixPath
        return [kind(p) for p in self.store.files_under(self._partition(table, **partition), ".parquet")]

    def table_files(self) -> dict[str, list[str]]:
        """Filesystem paths of every table's Parquet files, from one listing of the tables folder."""
        out: dict[str, list[str]] = {}
        for p in self.store.files_under(self.top, ".parquet"):
            out.setdefault(self.store.rel(p, self.top)[0], []).append(p)
        return out

    def read_file(self, path: str | PurePath, columns: list[str] | None = None) -> pa.Table:
        """One Parquet file of this store (a path from `files`)."""
        return pq.read_table(str(path), columns=columns, filesystem=self.store.fs)

    def iter_file(self, path: str | PurePath, columns: list[str] | None = None,
                  batch_size: int = 4096) -> Iterable[pa.RecordBatch]:
        """Stream one Parquet file of this store in record batches."""
        with self.store.fs.open_input_file(str(path)) as src:
            yield from pq.ParquetFile(src).iter_batches(batch_size=batch_size, columns=columns)

    def read(self, table: str, columns: list[str] | None = None, **partition: str) -> pa.Table:
        """Read a table (or a partition prefix of it) into memory; empty table when nothing is stored."""
        schema, _ = _schema(table)
        files = self.store.files_under(self._partition(table, **partition), ".parquet")
        if not files:
            t = schema.empty_table()
            return t.select(columns) if columns else t
        parts = [pq.read_table(f, columns=columns, schema=schema, filesystem=self.store.fs) for f in files]
        return pa.concat_tables(parts)

    def iter_batches(self, table: str, columns: list[str] | None = None, batch_size: int = 4096,
                     **partition: str) -> Iterable[pa.RecordBatch]:
        """Stream a table partition in record batches without loading it whole."""
        for f in self.store.files_under(self._partition(table, **partition), ".parquet"):
            yield from self.iter_file(f, columns, batch_size)
