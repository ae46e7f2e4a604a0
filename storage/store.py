"""Whole-file writes and whole-folder swaps in a workspace's filesystem, shared by its table and blob stores.

In a local folder every file is written under a temporary name and renamed into place, and whole folders are
swapped in through <local>/tmp, so readers see the old or the new files, never a mix. An object store has no
renames: each file is one upload (atomic by itself), and replacing a folder writes the new files first, then
deletes the stale ones, so a reader during a replace, or after one that failed partway, can see both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from storage.errors import MegcError
from storage.location import Location, Url

Writer = Callable[[Any], None]   # writes one file's content to an output stream


class FileStore:
    """Paths under a workspace root in its filesystem, with atomic file writes and folder replacement."""

    def __init__(self, loc: Location):
        self.loc = loc
        self.fs = loc.fs
        self.is_local = loc.is_local
        self.tmp_dir = loc.local / "tmp"

    def path(self, *parts: str) -> str:
        """The filesystem path of `parts` under the root."""
        return "/".join([self.loc.base, *parts])

    def where(self, fs_path: str) -> Path | Url:
        """A filesystem path as a local Path or a display URL."""
        return self.loc.where(fs_path)

    def kind(self, fs_path: str) -> pafs.FileType:
        """Whether a path is a file, a folder or missing."""
        return self.fs.get_file_info(fs_path).type

    def listing(self, fs_path: str, recursive: bool = True) -> list[pafs.FileInfo]:
        """Everything under a folder (nothing when it is missing)."""
        try:
            return self.fs.get_file_info(pafs.FileSelector(fs_path, allow_not_found=True, recursive=recursive))
        except OSError as exc:
            raise MegcError(f"cannot list {self.where(fs_path)}: {exc}") from None

    def files_under(self, fs_path: str, suffix: str = "") -> list[str]:
        """Paths of the files under a folder whose names end with `suffix`, sorted by path component."""
        found = [i.path for i in self.listing(fs_path) if i.type == pafs.FileType.File and i.path.endswith(suffix)]
        return sorted(found, key=lambda p: p.split("/"))

    @staticmethod
    def rel(fs_path: str, under: str) -> tuple[str, ...]:
        """The components of `fs_path` below the folder `under`."""
        rest = fs_path[len(under):].strip("/")
        return tuple(rest.split("/")) if rest else ()

    def local_tmp(self, prefix: str) -> str:
        """A fresh name in the local tmp folder (created if needed)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return str(self.tmp_dir / f"{prefix}-{uuid.uuid4().hex}")

    def put(self, fs_path: str, write: Writer) -> None:
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
            raise MegcError(f"cannot write {self.where(fs_path)}: {exc}") from exc
        finally:
            if tmp is not None and self.kind(tmp) == pafs.FileType.File:
                self.fs.delete_file(tmp)

    def replace_tree(self, target: str, files: Mapping[str, Writer], label: str) -> None:
        """Make the folder `target` hold exactly `files` (relative path -> writer)."""
        if not self.is_local:
            for rel, write in files.items():
                self.put(f"{target}/{rel}", write)
            for info in self.listing(target):
                if info.type == pafs.FileType.File and "/".join(self.rel(info.path, target)) not in files:
                    self.fs.delete_file(info.path)
            return
        staging = self.local_tmp(label)
        self.fs.create_dir(staging)
        try:
            for rel, write in files.items():
                self.put(f"{staging}/{rel}", write)
            self._swap_in(staging, target)
        finally:
            if self.kind(staging) != pafs.FileType.NotFound:
                self.fs.delete_dir(staging)

    def _swap_in(self, staging: str, target: str) -> None:
        """Move a fully written local folder into place, replacing `target`; the old one is removed afterwards."""
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        old = None
        if self.kind(target) != pafs.FileType.NotFound:
            old = self.local_tmp("old")
            self.fs.move(target, old)
        self.fs.move(staging, target)
        if old is not None:
            self._remove(old)

    def remove_tree(self, target: str) -> None:
        """Remove a folder; locally it is renamed away first, so no reader sees it half-deleted."""
        if self.kind(target) == pafs.FileType.NotFound:
            return
        if self.is_local:
            trash = self.local_tmp("del")
            self.fs.move(target, trash)
            target = trash
        self._remove(target)

    def _remove(self, fs_path: str) -> None:
        try:
            self.fs.delete_dir(fs_path)
        except OSError:
            pass
