"""Input formats: one module per input family, each registering itself with the registry.

Importing this package imports every module in it, so every format is registered.
"""

import importlib
import pkgutil

from parsers import declared, registry
from parsers.registry import Parser, Sample, Score

_INFRASTRUCTURE = {
    "common",
    "registry",
    "runtime",
    "jobs",
    "changes_common",
    "json_text",
    "declared",
}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE:
        importlib.import_module(f"parsers.{_module.name}")

declared.load_built_in()
declared.load_from_environment()

__all__ = ["Parser", "Sample", "Score", "registry"]
