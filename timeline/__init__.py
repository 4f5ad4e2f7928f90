"""Incident timeline reconstructor: logs from many systems on one clock, what happened,
in what order, and which changes contributed.

>>> import timeline
>>> list(timeline.EVENT_SCHEMA)[:3]
['ts', 'source', 'host']

The usual path, in a notebook or a script::

    loaded = timeline.read("logs/")           # events + summary of what was loaded
    result = timeline.analyze(loaded.events)  # spikes, incidents, contributors
    timeline.timeline_figure(loaded.events, result).show()
    timeline.write_report(loaded, result, "report.html")
"""

from timeline import schema
from timeline.analysis import Analysis, analyze
from timeline.errors import TimelineError
from timeline.figures import timeline_figure
from timeline.loader import Loaded, LoadSummary, expand, load, read
from timeline.report import write_report
from timeline.schema import EVENT_SCHEMA, validate

__all__ = [
    "EVENT_SCHEMA",
    "Analysis",
    "LoadSummary",
    "Loaded",
    "TimelineError",
    "analyze",
    "expand",
    "load",
    "read",
    "schema",
    "timeline_figure",
    "validate",
    "write_report",
]
