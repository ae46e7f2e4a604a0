"""Writers of datasets in their real on-disk layouts (the synthetic generator's output); storage.adapters reads them.

Each format module names its adapter (ADAPTER), its video ids and frame (or video file) paths, and writes its
annotation files (`write_annotations`) and the events file (`write_events`).
"""

from __future__ import annotations

from types import ModuleType

from tasks.synth.formats import casme3, generic, samm_lv

WRITERS: dict[str, ModuleType] = {"casme3": casme3, "samm_lv": samm_lv, "video": generic}


def writer_module(fmt: str) -> ModuleType:
    """The module that writes a synthetic format's layout."""
    return WRITERS[fmt]


__all__ = ["WRITERS", "writer_module"]
