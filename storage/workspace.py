"""The workspace: partitioned Parquet tables and other stored files, in a local folder or an object store.

All I/O goes through a pyarrow filesystem (storage.location). In a local folder every file is written under a
temporary name and renamed into place, and whole partitions are swapped in through <home>/tmp, so readers see
the old or the new rows, never a mix. An object store has no renames: each file is one upload (atomic by
itself), and replacing a partition writes the new files first, then deletes the stale ones, so a reader
during a replace, or after one that failed partway, can see old and new files together.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage.errors import InputError, MegcError
from storage.location import DEFAULT_HOME, Url, is_url, locate, resolve_home
from storage.schemas import TABLES

__all__ = ["DEFAULT_HOME", "Url", "Workspace", "is_url", "resolve_home", "to_table"]

Writer = Callable[[Any], None]   # writes one file's content to an output stream


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


class Workspace:
    """Parquet tables under <home>/tables/<table>/<key>=<value>/..., other files (runs/, models/) beside them.

    <home> is a local folder or a URL (s3://bucket/prefix?endpoint_override=..., file:///abs/path, any fsspec
    protocol). `root` is the local folder: the home itself, or the local cache of a URL workspace, which holds
    what stays on this machine (catalog.duckdb, reports, exports, caches, tmp).
    """

    def __init__(self, home: str | os.PathLike | None = None):
        loc = locate(home)
        self._loc = loc
        self.home = loc.home
        self.fs = loc.fs
        self.is_local = loc.is_local
        self.root = loc.local
        self.tables_dir = self.location("tables")
        self.tmp_dir = self.root / "tmp"
        self.catalog_path = self.root / "catalog.duckdb"

    def __reduce__(self):
        return (Workspace, (self.home,))

    def __repr__(self) -> str:
        return f"Workspace({str(self.location())!r})"

    # ---- layout -------------------------------------------------------------------------------
    def ensure(self) -> Workspace:
        """Create the local folders (and check that a URL workspace's store answers)."""
        if self.is_local:
            self.fs.create_dir(self._path("tables"), recursive=True)
        else:
            try:
                self.fs.get_file_info(self._loc.base)
            except OSError as exc:
                raise MegcError(f"cannot reach workspace {self.location()}: {exc}") from None
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self

    def path(self, *parts: str) -> Path:
        """A path in the local folder for files that stay on this machine (reports, exports, caches)."""
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def location(self, *parts: str) -> Path | Url:
        """Where a stored file or folder lives: a local Path, or a URL (without credentials) in an object store."""
        return self._loc.where(self._path(*parts))

    def _path(self, *parts: str) -> str:
        return "/".join([self._loc.base, *parts])

    def _info(self, fs_path: str) -> pafs.FileInfo:
        return self.fs.get_file_info(fs_path)

    def _listing(self, fs_path: str, recursive: bool = True) -> list[pafs.FileInfo]:
        try:
            return self.fs.get_file_info(pafs.FileSelector(fs_path, allow_not_found=True, recursive=recursive))
        except OSError as exc:
            raise MegcError(f"cannot list {self._loc.where(fs_path)}: {exc}") from None

    @staticmethod
    def _rel(fs_path: str, under: str) -> tuple[str, ...]:
        rest = fs_path[len(under):].strip("/")
        return tuple(rest.split("/")) if rest else ()

    @staticmethod
    def _schema(table: str) -> tuple[pa.Schema, tuple[str, ...]]:
        if table not in TABLES:
            raise MegcError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        return TABLES[table]

    def _partition(self, table: str, **partition: str) -> str:
        """Filesystem path of a partition; `partition` must be a prefix of the table's partition keys."""
        _, keys = self._schema(table)
        given = list(partition)
        if given != list(keys[: len(given)]):
            raise MegcError(f"table {table} is partitioned by {keys}; got {given}")
        return self._path("tables", table, *[f"{k}={quote(str(partition[k]), safe='')}" for k in given])

    def partition_dir(self, table: str, **partition: str) -> Path | Url:
        """Location of a partition; `partition` must be a prefix of the table's partition keys."""
        return self._loc.where(self._partition(table, **partition))

    def partitions(self, table: str, **partition: str) -> list[dict[str, str]]:
        """Existing leaf partitions (as key dicts) under a partition prefix."""
        _, keys = self._schema(table)
        base = self._partition(table, **partition)
        depth = len(keys) - len(partition)
        top = self._path("tables", table)
        if depth == 0:
            found = {self._rel(base, top)} if self._info(base).type == pafs.FileType.Directory else set()
        elif self.is_local:
            found = {self._rel(i.path, top) for i in self._listing(base)
                     if i.type == pafs.FileType.Directory and len(self._rel(i.path, base)) == depth}
        else:  # an object store has no folders: a partition exists when it holds a file
            found = {self._rel(i.path, top)[: len(keys)] for i in self._listing(base)
                     if i.type == pafs.FileType.File and i.path.endswith(".parquet")
                     and len(self._rel(i.path, base)) > depth}
        return [{p.split("=", 1)[0]: unquote(p.split("=", 1)[1]) for p in rel} for rel in sorted(found)]

    # ---- writing ------------------------------------------------------------------------------
    def _put(self, fs_path: str, write: Writer) -> None:
        """Write one file whole: temporary name + rename locally, a single upload in an object store."""
        tmp = None
        try:
            if self.is_local:
                self.fs.create_dir(fs_path.rsplit("/", 1)[0], recursive=True)
                tmp = f"{fs_path}.{uuid.uuid4().hex}.tmp"
                with self.fs.open_output_stream(tmp, compression=None) as out:
                    write(out)
                self.fs.move(tmp, fs_path)
                tmp = None
            else:  # serialised first, so a failing writer uploads nothing
                buf = pa.BufferOutputStream()
                write(buf)
                data = buf.getvalue()
                with self.fs.open_output_stream(fs_path, compression=None) as out:
                    out.write(data)
        except OSError as exc:
            raise MegcError(f"cannot write {self._loc.where(fs_path)}: {exc}") from exc
        finally:
            if tmp is not None and self._info(tmp).type == pafs.FileType.File:
                self.fs.delete_file(tmp)

    def write(self, table: str, data: Any, part: str = "part-0", **partition: str) -> Path | Url:
        """Atomically write one file `part` into a leaf partition, replacing a file of that name."""
        schema, keys = self._schema(table)
        if len(partition) != len(keys):
            raise MegcError(f"table {table}: write needs every partition key {keys}")
        t = to_table(data, schema)
        dest = f"{self._partition(table, **partition)}/{part}.parquet"
        self._put(dest, _parquet(t))
        return self._loc.where(dest)

    def has_part(self, table: str, part: str = "part-0", **partition: str) -> bool:
        """Whether a finished part file exists (used to skip finished shards)."""
        return self._info(f"{self._partition(table, **partition)}/{part}.parquet").type == pafs.FileType.File

    def replace(self, table: str, data: Any, **partition: str) -> None:
        """Replace everything under a partition prefix with `data` (split by the other keys); atomic locally."""
        schema, keys = self._schema(table)
        t = to_table(data, schema)
        rest = keys[len(partition):]
        for k, v in partition.items():
            if t.num_rows and set(t.column(k).to_pylist()) != {v}:
                raise MegcError(f"table {table}: rows outside partition {k}={v}")
        files: dict[str, Writer] = {}
        if rest and t.num_rows:
            groups: dict[tuple, list[int]] = {}
            cols = [t.column(k).to_pylist() for k in rest]
            for i, vals in enumerate(zip(*cols)):
                groups.setdefault(vals, []).append(i)
            for vals, idx in groups.items():
                sub = "/".join(f"{k}={quote(str(v), safe='')}" for k, v in zip(rest, vals))
                files[f"{sub}/part-0.parquet"] = _parquet(t.take(idx))
        elif not rest:
            files["part-0.parquet"] = _parquet(t)
        self._replace_tree(self._partition(table, **partition), files, table)

    def _replace_tree(self, target: str, files: Mapping[str, Writer], label: str) -> None:
        """Make the folder `target` hold exactly `files` (relative path -> writer)."""
        if not self.is_local:
            for rel, write in files.items():
                self._put(f"{target}/{rel}", write)
            for info in self._listing(target):
                if info.type == pafs.FileType.File and "/".join(self._rel(info.path, target)) not in files:
                    self.fs.delete_file(info.path)
            return
        self.ensure()
        staging = str(self.tmp_dir / f"{label}-{uuid.uuid4().hex}")
        self.fs.create_dir(staging)
        try:
            for rel, write in files.items():
                self._put(f"{staging}/{rel}", write)
            self._swap_in(staging, target)
        finally:
            if self._info(staging).type != pafs.FileType.NotFound:
                self.fs.delete_dir(staging)

    def _swap_in(self, staging: str, target: str) -> None:
        """Move a fully written local folder into place, replacing `target`; the old one is removed afterwards."""
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        old = None
        if self._info(target).type != pafs.FileType.NotFound:
            old = str(self.ensure().tmp_dir / f"old-{uuid.uuid4().hex}")
            self.fs.move(target, old)
        self.fs.move(staging, target)
        if old is not None:
            self._remove(old)

    def _remove(self, fs_path: str) -> None:
        try:
            self.fs.delete_dir(fs_path)
        except OSError:
            pass

    def delete(self, table: str, **partition: str) -> None:
        """Remove a partition prefix (or the whole table)."""
        d = self._partition(table, **partition)
        if self._info(d).type == pafs.FileType.NotFound:
            return
        if self.is_local:  # renamed away first, so no reader sees a half-deleted partition
            trash = str(self.ensure().tmp_dir / f"del-{uuid.uuid4().hex}")
            self.fs.move(d, trash)
            d = trash
        self._remove(d)

    # ---- reading ------------------------------------------------------------------------------
    def _files_under(self, fs_path: str) -> list[str]:
        found = [i.path for i in self._listing(fs_path)
                 if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
        return sorted(found, key=lambda p: p.split("/"))

    def files(self, table: str, **partition: str) -> list[PurePath]:
        """Finished Parquet files under a partition prefix, sorted (local Paths, or store paths of a URL workspace)."""
        kind = Path if self.is_local else PurePosixPath
        return [kind(p) for p in self._files_under(self._partition(table, **partition))]

    def table_files(self) -> dict[str, list[str]]:
        """Filesystem paths of every table's Parquet files, from one listing of the tables folder."""
        top = self._path("tables")
        out: dict[str, list[str]] = {}
        for p in self._files_under(top):
            out.setdefault(self._rel(p, top)[0], []).append(p)
        return out

    def read_file(self, path: str | PurePath, columns: list[str] | None = None) -> pa.Table:
        """One Parquet file of this workspace (a path from `files`)."""
        return pq.read_table(str(path), columns=columns, filesystem=self.fs)

    def iter_file(self, path: str | PurePath, columns: list[str] | None = None,
                  batch_size: int = 4096) -> Iterable[pa.RecordBatch]:
        """Stream one Parquet file of this workspace in record batches."""
        with self.fs.open_input_file(str(path)) as src:
            yield from pq.ParquetFile(src).iter_batches(batch_size=batch_size, columns=columns)

    def read(self, table: str, columns: list[str] | None = None, **partition: str) -> pa.Table:
        """Read a table (or a partition prefix of it) into memory; empty table when nothing is stored."""
        schema, _ = self._schema(table)
        files = self._files_under(self._partition(table, **partition))
        if not files:
            t = schema.empty_table()
            return t.select(columns) if columns else t
        parts = [pq.read_table(f, columns=columns, schema=schema, filesystem=self.fs) for f in files]
        return pa.concat_tables(parts)

    def iter_batches(self, table: str, columns: list[str] | None = None, batch_size: int = 4096,
                     **partition: str) -> Iterable[pa.RecordBatch]:
        """Stream a table partition in record batches without loading it whole."""
        for f in self._files_under(self._partition(table, **partition)):
            yield from self.iter_file(f, columns, batch_size)

    # ---- other stored files (run records, models) -------------------------------------------------
    def exists(self, *parts: str) -> bool:
        """Whether a stored file exists."""
        return self._info(self._path(*parts)).type == pafs.FileType.File

    def read_bytes(self, *parts: str) -> bytes | None:
        """Content of a stored file, None when there is none."""
        p = self._path(*parts)
        try:
            with self.fs.open_input_stream(p, compression=None) as src:
                return src.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if self._info(p).type == pafs.FileType.NotFound:
                return None
            raise MegcError(f"cannot read {self._loc.where(p)}: {exc}") from None

    def write_bytes(self, data: bytes, *parts: str) -> Path | Url:
        """Store a file whole (atomically locally, one upload in an object store)."""
        p = self._path(*parts)
        self._put(p, lambda out: out.write(data))
        return self._loc.where(p)

    def listdir(self, *parts: str) -> list[str]:
        """Sorted names of the files and folders directly under a stored folder (none when it is missing)."""
        d = self._path(*parts)
        return sorted({self._rel(i.path, d)[0] for i in self._listing(d, recursive=False)})

    def replace_dir(self, files: Mapping[str, bytes], *parts: str) -> Path | Url:
        """Make a stored folder hold exactly `files` (relative path -> content); atomic locally, new files
        first and stale ones deleted afterwards in an object store."""
        target = self._path(*parts)
        self._replace_tree(target, {rel: (lambda out, b=b: out.write(b)) for rel, b in files.items()},
                           parts[-1] if parts else "dir")
        return self._loc.where(target)

    def put_dir(self, local: Path, *parts: str) -> Path | Url:
        """Store a local folder's files as the folder `parts` (nothing to do when it is that folder already)."""
        local = Path(local)
        if self.is_local and local.resolve() == Path(self._path(*parts)).resolve():
            return self._loc.where(self._path(*parts))
        files = {p.relative_to(local).as_posix(): p.read_bytes() for p in sorted(local.rglob("*")) if p.is_file()}
        return self.replace_dir(files, *parts)

    def fetch_dir(self, *parts: str) -> Path:
        """A local folder with a stored folder's files: the folder itself locally, else a fresh copy in `root`."""
        src = self._path(*parts)
        if self._info(src).type != pafs.FileType.Directory:
            raise InputError("no such folder in the workspace", file=self._loc.where(src))
        if self.is_local:
            return Path(src)
        dest = self.root.joinpath(*parts)
        local = pafs.LocalFileSystem()
        if dest.exists():
            local.delete_dir(str(dest))
        dest.mkdir(parents=True)
        pafs.copy_files(src, str(dest), source_filesystem=self.fs, destination_filesystem=local)
        return dest

    # ---- catalog ------------------------------------------------------------------------------
    def catalog(self):
        """A DuckDB connection with a fresh relation over every table (see storage.catalog)."""
        from storage.catalog import open_catalog

        return open_catalog(self)

    def sql(self, query: str, params: Mapping[str, Any] | list | None = None) -> tuple[list[str], list[tuple]]:
        """Run a query against the catalog; returns (column names, rows)."""
        import duckdb

        for attempt in range(4):
            con = self.catalog()
            try:
                cur = con.execute(query, params) if params is not None else con.execute(query)
                cols = [d[0] for d in cur.description] if cur.description else []
                rows = cur.fetchall() if cur.description else []
                return cols, rows
            except duckdb.IOException:
                # A writer swapped a partition between the view's file listing and the scan: list again.
                if attempt == 3:
                    raise
                time.sleep(0.1 * (attempt + 1))
            finally:
                con.close()
        raise AssertionError("unreachable")
