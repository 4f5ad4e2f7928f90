"""Incident timeline reconstructor: logs from many systems on one clock, what happened,
in what order, and which changes contributed.

>>> import timeline
>>> sorted(timeline.schema.EVENT_SCHEMA)[:3]
['attrs', 'component', 'file']
"""

from timeline import schema
from timeline.errors import TimelineError
from timeline.loader import Loaded, LoadSummary, expand, load, read
from timeline.schema import EVENT_SCHEMA, validate

__all__ = [
    "EVENT_SCHEMA",
    "LoadSummary",
    "Loaded",
    "TimelineError",
    "expand",
    "load",
    "read",
    "schema",
    "validate",
]
