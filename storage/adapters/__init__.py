"""Dataset adapters: ADAPTERS maps an adapter name (as `megc ingest NAME` takes it) to its instance."""

from __future__ import annotations

from storage.adapters import casme2, casme3, folder, fourdme, generic, samm_lv, smic_e_long
from storage.adapters.base import Adapter, IngestResult
from storage.errors import InputError

ADAPTERS: dict[str, Adapter] = {m.ADAPTER.name: m.ADAPTER
                                for m in (samm_lv, casme2, casme3, smic_e_long, fourdme, generic, folder)}


def get_adapter(name: str) -> Adapter:
    """The adapter registered under `name`; InputError listing the known names otherwise."""
    if name not in ADAPTERS:
        raise InputError(f"unknown dataset adapter {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name]


__all__ = ["ADAPTERS", "Adapter", "IngestResult", "get_adapter"]
