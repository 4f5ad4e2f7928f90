"""Command-line values checked before any work: each bad one is a sentence, never a trace.

Each check takes the text or number typed and returns the value to use, or raises
``ValueError`` with the sentence to show; :func:`checked` turns one into a typer callback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from timeline.reading.sources import LIMITS, Limits
from timeline.reading.times import FIRST_YEAR, LAST_YEAR, known_zone, unknown_zone_text

DEFAULT_MAX_EXPANDED = "2G"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def checked(check: Callable[[Any], Any]) -> Callable[..., Any]:
    """A typer callback that runs ``check`` on the value given (not on a missing one)
    and, when it refuses, prints its sentence and exits with code 1."""

    def callback(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        try:
            return check(value)
        except ValueError as exc:
            from timeline.cli import fail

            raise fail(f"--{param.name.replace('_', '-')}: {exc}") from None

    return callback


def year(value: int) -> int:
    """A year of records: one of the plausible years.

    >>> year(2023)
    2023
    """
    if not FIRST_YEAR <= value <= LAST_YEAR:
        raise ValueError(
            f"{value} is not a plausible year: give one from {FIRST_YEAR} to {LAST_YEAR}"
        )
    return value


def zone(value: str) -> str:
    """An IANA time zone name.

    >>> zone("Europe/Berlin")
    'Europe/Berlin'
    """
    if not known_zone(value):
        raise ValueError(unknown_zone_text(value))
    return value


def bucket(value: str) -> str:
    """A bucket width of one second or more, as people write it.

    >>> bucket("5m")
    '5m'
    """
    from timeline.analysis.rates import to_timedelta

    try:
        width = to_timedelta(value)
    except ValueError as exc:
        raise ValueError(f"{exc}") from None
    if width.total_seconds() < 1:
        raise ValueError(f"a bucket of {value!r} is shorter than a second: use e.g. 1s, 1m or 5m")
    return value


def size(value: str) -> str:
    """A size in bytes as people write it (``500M``, ``2G``).

    >>> size_bytes(size("1.5K"))
    1536
    """
    size_bytes(value)
    return value


def size_bytes(value: str) -> int:
    match = _SIZE.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a size: {value!r} (write e.g. 500M or 2G)")
    power = " KMGT".index((match.group(2) or " ").upper())
    return int(float(match.group(1)) * (1 << (10 * power)))


def ratio(value: float) -> float:
    """An expansion ratio above 1."""
    if not value > 1:
        raise ValueError(f"{value:g} is not a ratio above 1 (the default is {LIMITS.max_ratio:g})")
    return value


def limits(
    *, max_expanded: str = DEFAULT_MAX_EXPANDED, max_ratio: float = LIMITS.max_ratio
) -> Limits:
    """The reading limits the options ask for."""
    return Limits(max_expanded_bytes=size_bytes(max_expanded), max_ratio=max_ratio)


def output_problem(path: Path, *, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written, in one sentence, or None (``folder``: the output
    is a folder of files, which may exist)."""
    parent = path.parent
    if not parent.is_dir():
        return f"cannot write {path}: the folder {parent} does not exist"
    if path.is_dir() and not folder:
        return f"cannot write {path}: it is a folder"
    if not os.access(path if folder and path.is_dir() else parent, os.W_OK):
        return f"cannot write {path}: no permission to write in {parent}"
    return None
