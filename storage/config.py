"""Typed run configuration: dataclass defaults, overridden by a YAML file, then by CLI values."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from storage.errors import InputError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict:
    """A config dataclass (nested) as a plain dict."""
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any, length: int = 12) -> str:
    """Stable short hash of a config (dataclass or dict)."""
    d = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:length]


def _coerce(value: Any, typ: Any, where: str) -> Any:
    if value is None or typ is Any:
        return value
    origin = getattr(typ, "__origin__", None)
    try:
        if typ is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ in (int, float, str, bool):
            return typ(value)
        if origin in (list, tuple) and isinstance(value, str):
            return origin(v.strip() for v in value.split(",") if v.strip())
    except (TypeError, ValueError):
        raise InputError(f"{value!r} is not a valid {getattr(typ, '__name__', typ)}", file=where) from None
    return value


def apply_overrides(cfg: T, overrides: dict[str, Any], where: str = "config") -> T:
    """Return a copy of `cfg` with dotted keys (e.g. 'flow.method') replaced; unknown keys are errors."""
    for key, value in overrides.items():
        if value is None:
            continue
        head, _, rest = key.partition(".")
        fields = {f.name for f in dataclasses.fields(cfg)}
        if head not in fields:
            raise InputError(f"unknown setting {key!r}; known: {sorted(fields)}", file=where)
        current = getattr(cfg, head)
        if rest:
            if not dataclasses.is_dataclass(current):
                raise InputError(f"setting {head!r} has no sub-settings ({key!r})", file=where)
            new = apply_overrides(current, {rest: value}, where)
        elif dataclasses.is_dataclass(current) and isinstance(value, dict):
            new = apply_overrides(current, value, where)
        else:
            new = _coerce(value, get_type_hints(type(cfg))[head], where)
        cfg = dataclasses.replace(cfg, **{head: new})
    return cfg


def checked(cfg: T) -> T:
    """`cfg` after its own `check()` (when the class has one), which raises InputError on impossible settings."""
    check = getattr(cfg, "check", None)
    if callable(check):
        cfg = check() or cfg
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            checked(value)
    return cfg


def load_config(cls: type[T] | T, yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Defaults of `cls` (or a config instance), then the YAML file's values, then `overrides` (e.g. CLI flags);
    validated. This is the one way a config is built."""
    import yaml

    cfg = cls() if isinstance(cls, type) else cls
    if yaml_path:
        p = Path(yaml_path)
        if not p.is_file():
            raise InputError("config file not found", file=p)
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise InputError("config file must hold a mapping of settings", file=p)
        cfg = apply_overrides(cfg, data, str(p))
    return checked(apply_overrides(cfg, overrides or {}, "command line"))


def git_revision() -> str | None:
    """The git revision of the megc source tree, with '+dirty' when it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        if not rev:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
