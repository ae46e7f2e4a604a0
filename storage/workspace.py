"""The workspace: a table store, a blob store and a DuckDB catalog over one home (a local folder or a URL).

All I/O goes through a pyarrow filesystem (storage.location). storage.tables keeps the partitioned Parquet
tables, storage.blobs the other stored files (run records, sidecars, model folders, ops state), both writing
through storage.store (atomic locally, one upload per file in an object store); storage.catalog opens DuckDB
over the tables' file listing. This class composes them under the names callers use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa

from storage.blobs import BlobStore
from storage.errors import MegcError
from storage.location import DEFAULT_HOME, Url, is_url, locate, resolve_home
from storage.store import FileStore
from storage.tables import TableStore, to_table

__all__ = ["DEFAULT_HOME", "Url", "Workspace", "is_url", "resolve_home", "to_table"]


class Workspace:
    """Parquet tables under <home>/tables/<table>/<key>=<value>/..., other files (runs/, models/, ops/) beside them.

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
        self._store = FileStore(loc)
        self.tables = TableStore(self._store)
        self.blobs = BlobStore(self._store)
        self.tables_dir = self.tables.dir
        self.tmp_dir = self._store.tmp_dir
        self.catalog_path = self.root / "catalog.duckdb"

    def __reduce__(self):
        return (Workspace, (self.home,))

    def __repr__(self) -> str:
        return f"Workspace({str(self.location())!r})"

    # ---- layout -------------------------------------------------------------------------------
    def ensure(self) -> Workspace:
        """Create the local folders (and check that a URL workspace's store answers)."""
        if self.is_local:
            self.fs.create_dir(self.tables.top, recursive=True)
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
        return self._store.where(self._store.path(*parts))

    # ---- tables (storage.tables) ----------------------------------------------------------------
    def partitions(self, table: str, **partition: str) -> list[dict[str, str]]:
        """Existing leaf partitions (as key dicts) under a partition prefix."""
        return self.tables.partitions(table, **partition)

    def write(self, table: str, data: Any, part: str = "part-0", **partition: str) -> Path | Url:
        """Atomically write one file `part` into a leaf partition, replacing a file of that name."""
        return self.tables.write(table, data, part, **partition)

    def has_part(self, table: str, part: str = "part-0", **partition: str) -> bool:
        """Whether a finished part file exists (used to skip finished shards)."""
        return self.tables.has_part(table, part, **partition)

    def replace(self, table: str, data: Any, **partition: str) -> None:
        """Replace everything under a partition prefix with `data` (split by the other keys); atomic locally."""
        self.tables.replace(table, data, **partition)

    def delete(self, table: str, **partition: str) -> None:
        """Remove a partition prefix (or the whole table)."""
        self.tables.delete(table, **partition)

    def files(self, table: str, **partition: str) -> list[PurePath]:
        """Finished Parquet files under a partition prefix, sorted (local Paths, or store paths of a URL workspace)."""
        return self.tables.files(table, **partition)

    def read_file(self, path: str | PurePath, columns: list[str] | None = None) -> pa.Table:
        """One Parquet file of this workspace (a path from `files`)."""
        return self.tables.read_file(path, columns)

    def iter_file(self, path: str | PurePath, columns: list[str] | None = None,
                  batch_size: int = 4096) -> Iterable[pa.RecordBatch]:
        """Stream one Parquet file of this workspace in record batches."""
        return self.tables.iter_file(path, columns, batch_size)

    def read(self, table: str, columns: list[str] | None = None, **partition: str) -> pa.Table:
        """Read a table (or a partition prefix of it) into memory; empty table when nothing is stored."""
        return self.tables.read(table, columns, **partition)

    def iter_batches(self, table: str, columns: list[str] | None = None, batch_size: int = 4096,
                     **partition: str) -> Iterable[pa.RecordBatch]:
        """Stream a table partition in record batches without loading it whole."""
        return self.tables.iter_batches(table, columns, batch_size, **partition)

    # ---- other stored files (storage.blobs) -----------------------------------------------------
    def read_bytes(self, *parts: str) -> bytes | None:
        """Content of a stored file, None when there is none."""
        return self.blobs.read_bytes(*parts)

    def write_bytes(self, data: bytes, *parts: str) -> Path | Url:
        """Store a file whole (atomically locally, one upload in an object store)."""
        return self.blobs.write_bytes(data, *parts)

    def listdir(self, *parts: str) -> list[str]:
        """Sorted names of the files and folders directly under a stored folder (none when it is missing)."""
        return self.blobs.listdir(*parts)

    def replace_dir(self, files: Mapping[str, bytes], *parts: str) -> Path | Url:
        """Make a stored folder hold exactly `files` (relative path -> content)."""
        return self.blobs.replace_dir(files, *parts)

    def put_dir(self, local: Path, *parts: str) -> Path | Url:
        """Store a local folder's files as the folder `parts` (nothing to do when it is that folder already)."""
        return self.blobs.put_dir(local, *parts)

    def fetch_dir(self, *parts: str) -> Path:
        """A local folder with a stored folder's files (see BlobStore.fetch_dir)."""
        return self.blobs.fetch_dir(*parts)

    # ---- catalog (storage.catalog) ------------------------------------------------------------
    def catalog(self):
        """A DuckDB connection with a fresh relation over every table (see storage.catalog)."""
        from storage.catalog import open_catalog

        self.ensure()
        local_tables = Path(self.tables.top) if self.is_local else None
        return open_catalog(self.catalog_path, self.tables.table_files(), self.fs, local_tables)

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
