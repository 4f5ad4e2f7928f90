"""Incident timeline reconstructor: logs from many systems on one clock, what happened,
in what order, and which changes contributed.

>>> import timeline
>>> list(timeline.EVENT_SCHEMA)[:3]
['ts', 'source', 'host']

The usual path, in a notebook or a script::

    loaded = timeline.read("logs/")           # events + summary of what was loaded
    result = timeline.analyze(loaded)         # spikes, incidents, contributors
    timeline.timeline_figure(loaded, result).show()
    timeline.write_report(loaded, result, "report.html")
"""

import os

#: polars allocates through jemalloc and asks it to keep freed pages as "muzzy" for a
#: second, which the kernel still counts as resident; the phases of a read then stack up
#: in resident memory. Without that second, memory follows what each phase holds (polars
#: keeps its half-second "dirty" decay; shorter ones cost time). Takes effect when polars
#: is first imported after this; a user's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:0")

from timeline import schema
from timeline.errors import TimelineError, TimelineWarning
from timeline.reading.formats import load, read
from timeline.reading.loader import Loaded, LoadSummary, expand, scan
from timeline.schema import EVENT_SCHEMA, validate

#: Imported on first use: the analysis is not needed to read (a reading worker process
#: imports this package too), nor plotly and jinja2 to load or analyse.
_LAZY = {
    "Analysis": "timeline.analysis",
    "analyze": "timeline.analysis",
    "timeline_figure": "timeline.outputs.figures",
    "host_figure": "timeline.outputs.figures",
    "findings": "timeline.outputs.findings",
    "write_report": "timeline.outputs.report",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'timeline' has no attribute {name!r}")


__all__ = [
    "EVENT_SCHEMA",
    "Analysis",
    "LoadSummary",
    "Loaded",
    "TimelineError",
    "TimelineWarning",
    "analyze",
    "expand",
    "findings",
    "host_figure",
    "load",
    "read",
    "scan",
    "schema",
    "timeline_figure",
    "validate",
    "write_report",
]
