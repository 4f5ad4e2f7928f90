"""The few errors a user can meet, each a sentence they can act on, and the warning of
what did not stop a run."""


class TimelineError(Exception):
    """Base for errors that are the user's to fix; the CLI prints them without a traceback."""


class NoInputError(TimelineError):
    """The paths given name no readable file."""


class UnknownFormatError(TimelineError):
    """A format was asked for that no parser has."""


class UnknownZoneError(TimelineError):
    """A time zone was named that Python's or polars' zone database does not have."""


class TimeExpressionError(TimelineError):
    """A time typed by a person (``--since``) could not be read."""


class OutputError(TimelineError):
    """An output file could not be written (no such folder, no permission, disk full)."""


class TimelineWarning(UserWarning):
    """What the user should know that did not stop the run (a cache folder that cannot be
    used); the CLI prints it as one line."""
