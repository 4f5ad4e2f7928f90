"""Analysis: rates, spikes, incidents and contributing changes, from an event frame.
Knows nothing of file formats or of how findings are shown."""

from timeline.analysis.run import (
    Analysis,
    analysis_frame,
    analyze,
    in_window,
    kept_rows,
    report_rows,
)

__all__ = ["Analysis", "analysis_frame", "analyze", "in_window", "kept_rows", "report_rows"]
