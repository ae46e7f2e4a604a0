"""The registry entry of a spotter kind (models/spotters/__init__.py finds them)."""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

INPUT_TABLES = ("features", "roi_series")


@dataclasses.dataclass(frozen=True)
class Spotter:
    """A registry entry: the kind's name, its settings class, the table it reads and what it is."""

    kind: str
    params: type
    input_table: str
    description: str
    module: str

    def impl(self) -> ModuleType:
        """The module implementing the kind (fit / score)."""
        return importlib.import_module(self.module)
