"""Reading with the user's own formats and a reference time: the declared formats of a
folder (and of the user's config folder) are registered before the loader reads, and
relative ages count back from the time the user gives."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from parsers import declared, registry
from parsers.common import ages_relative_to
from parsers.declared import FormatFileError
from parsers.registry import Parser
from timeline.errors import TimelineError
from timeline.reading import loader

PathLike = str | os.PathLike[str]


class FormatsError(TimelineError):
    """A format file that cannot be read or whose samples fail."""


def declared_formats(formats: PathLike | None = None) -> list[Parser]:
    """The formats in the user's config folder and in ``formats`` (a folder), read and
    checked. A broken format file is a :class:`FormatsError` naming it."""
    try:
        found = declared.load_user_formats()
        if formats is not None:
            found += declared.load_dir(formats)
    except FormatFileError as exc:
        raise FormatsError(str(exc)) from None
    return found


@contextmanager
def using_formats(formats: PathLike | None = None) -> Iterator[list[Parser]]:
    """Within the block, the declared formats (see :func:`declared_formats`) are known
    to detection and to ``format=``; after it, no longer."""
    found = declared_formats(formats)
    try:
        with registry.registered(found) as added:
            yield added
    except ValueError as exc:
        if "registered already" in str(exc):
            raise FormatsError(str(exc)) from None
        raise


def read(
    paths: PathLike | Iterable[PathLike],
    *,
    formats: PathLike | None = None,
    now: datetime | None = None,
    **options,
) -> loader.Loaded:
    """:func:`timeline.reading.loader.read`, with two more options.

    Parameters
    ----------
    formats
        A folder of format files (see :mod:`parsers.declared`) to read with, besides
        the built-in formats and those in the user's config folder.
    now
        The time relative ages (``kubectl get events``' ``5m``) count back from; each
        file's modification time if not given. Rows so timed say so in ``attrs``.
    **options
        Passed to the loader: ``format``, ``year``, ``tz``, ``infer``, ``on_file``.
    """
    with using_formats(formats), ages_relative_to(now):
        return loader.read(paths, **options)


def load(paths: PathLike | Iterable[PathLike], **options):
    """The event frame of :func:`read`."""
    return read(paths, **options).events
