"""Input formats: one module per input family, each registering itself with the registry.

Importing this package imports every module in it, so every format is registered.
"""

import importlib
import pkgutil

from parsers import registry
from parsers.registry import Parser, Sample, Score

_INFRASTRUCTURE = {"common", "registry", "runtime", "jobs", "changes_common"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE:
        importlib.import_module(f"parsers.{_module.name}")

__all__ = ["Parser", "Sample", "Score", "registry"]
