"""Where a workspace lives: a local folder or a URL (file://, s3://, any fsspec protocol) as a pyarrow filesystem.

A URL workspace keeps its tables, run records and models in the store; files that only make sense on one
machine (the DuckDB catalog, reports, exports, caches, temporary files) go to its local folder,
$MEGC_CACHE_DIR/<hash of the URL> (default ~/.cache/megc/<hash>).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.fs as pafs

from storage.errors import InputError

DEFAULT_HOME = "megc-home"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(home: str | os.PathLike) -> bool:
    """Whether `home` is a URL (scheme://...) rather than a local path."""
    return bool(_URL.match(str(home)))


def resolve_home(home: str | os.PathLike | None = None) -> str:
    """The workspace: the argument, else $MEGC_HOME, else ./megc-home; local paths made absolute, URLs as given."""
    raw = str(home or os.environ.get("MEGC_HOME") or DEFAULT_HOME)
    return raw if is_url(raw) else str(Path(raw).expanduser().resolve())


class Url(str):
    """A location in an object store that joins like a path (`url / "part"`); it names files in messages."""

    def __truediv__(self, part: object) -> Url:
        return Url(f"{self.rstrip('/')}/{part}")

    @property
    def name(self) -> str:
        """The last path component."""
        return self.rstrip("/").rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class Location:
    """A resolved workspace home."""

    home: str               # what re-creates it (an absolute local path or the URL as given)
    fs: pafs.FileSystem
    base: str               # the workspace root as a path of `fs`
    display: str            # the root for messages: local path, or the URL without credentials and query
    local: Path             # local folder: the workspace itself, or the URL workspace's cache folder
    is_local: bool          # `fs` is the local file system (renames are atomic)

    def where(self, fs_path: str) -> Path | Url:
        """A path of `fs` under the root as a local Path or a display URL."""
        if self.is_local:
            return Path(fs_path)
        rel = fs_path[len(self.base):].strip("/")
        return Url(self.display) / rel if rel else Url(self.display)


def _public_url(parts) -> str:
    """scheme://host/path of a split URL, without credentials or query."""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def cache_dir(home: str) -> Path:
    """Local folder of a URL workspace: $MEGC_CACHE_DIR (default ~/.cache/megc) / a hash of the URL."""
    parts = urlsplit(home)
    key = _public_url(parts) + ("?" + parts.query if parts.query else "")
    base = os.environ.get("MEGC_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "megc"
    return Path(base).expanduser().resolve() / hashlib.sha256(key.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=32)
def _filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path in it) of a URL; one filesystem per URL and process (S3 clients are costly)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return pafs.FileSystem.from_uri(url)
    import fsspec

    options = dict(parse_qsl(parts.query))
    fs, path = fsspec.core.url_to_fs(urlunsplit((*parts[:3], "", "")), **options)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path.rstrip("/")


def locate(home: str | os.PathLike | None = None) -> Location:
    """Resolve a workspace home (see `resolve_home`) to its filesystem, root and local folder."""
    home = resolve_home(home)
    if not is_url(home):
        return Location(home, pafs.LocalFileSystem(), home, home, Path(home), True)
    parts = urlsplit(home)
    display = _public_url(parts)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InputError("a file:// workspace URL needs an absolute path (file:///abs/path)", file=home)
        path = str(Path(unquote(parts.path)).resolve())
        return Location(home, pafs.LocalFileSystem(), path, path, Path(path), True)
    try:
        fs, base = _filesystem(home)
    except (ImportError, ValueError, OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot open the workspace URL ({exc})", file=display) from None
    if not base.strip("/"):
        raise InputError("a workspace URL needs a bucket or folder (e.g. s3://bucket/megc)", file=display)
    return Location(home, fs, base.rstrip("/"), display, cache_dir(home), False)
