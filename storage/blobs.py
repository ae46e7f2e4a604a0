"""The blob store: stored files other than tables (run records, sidecars, model folders), by path parts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow.fs as pafs

from storage.errors import InputError, MegcError
from storage.location import Url
from storage.store import FileStore


class BlobStore:
    """Whole files and whole folders under the workspace root (runs/, models/, ops/)."""

    def __init__(self, store: FileStore):
        self.store = store

    def read_bytes(self, *parts: str) -> bytes | None:
        """Content of a stored file, None when there is none."""
        s = self.store
        p = s.path(*parts)
        try:
            with s.fs.open_input_stream(p, compression=None) as src:
                return src.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if s.kind(p) == pafs.FileType.NotFound:
                return None
            raise MegcError(f"cannot read {s.where(p)}: {exc}") from None

    def write_bytes(self, data: bytes, *parts: str) -> Path | Url:
        """Store a file whole (atomically locally, one upload in an object store)."""
        p = self.store.path(*parts)
        self.store.put(p, lambda out: out.write(data))
        return self.store.where(p)

    def listdir(self, *parts: str) -> list[str]:
        """Sorted names of the files and folders directly under a stored folder (none when it is missing)."""
        d = self.store.path(*parts)
        return sorted({self.store.rel(i.path, d)[0] for i in self.store.listing(d, recursive=False)})

    def replace_dir(self, files: Mapping[str, bytes], *parts: str) -> Path | Url:
        """Make a stored folder hold exactly `files` (relative path -> content); atomic locally, new files
        first and stale ones deleted afterwards in an object store."""
        target = self.store.path(*parts)
        self.store.replace_tree(target, {rel: (lambda out, b=b: out.write(b)) for rel, b in files.items()},
                                parts[-1] if parts else "dir")
        return self.store.where(target)

    def put_dir(self, local: Path, *parts: str) -> Path | Url:
        """Store a local folder's files as the folder `parts` (nothing to do when it is that folder already)."""
        local = Path(local)
        target = self.store.path(*parts)
        if self.store.is_local and local.resolve() == Path(target).resolve():
            return self.store.where(target)
        files = {p.relative_to(local).as_posix(): p.read_bytes() for p in sorted(local.rglob("*")) if p.is_file()}
        return self.replace_dir(files, *parts)

    def fetch_dir(self, *parts: str) -> Path:
        """A local folder with a stored folder's files: the folder itself locally, else a fresh copy in the
        workspace's local folder."""
        s = self.store
        src = s.path(*parts)
        if s.kind(src) != pafs.FileType.Directory:
            raise InputError("no such folder in the workspace", file=s.where(src))
        if s.is_local:
            return Path(src)
        dest = s.loc.local.joinpath(*parts)
        local = pafs.LocalFileSystem()
        if dest.exists():
            local.delete_dir(str(dest))
        dest.mkdir(parents=True)
        pafs.copy_files(src, str(dest), source_filesystem=s.fs, destination_filesystem=local)
        return dest
