"""Reading with the user's own formats and a reference time.

The declared formats of a folder (and of the user's config folder) are checked and
registered before the loader reads, for that read only; relative ages count back from the
time the user gives. Both reach the loader's worker processes through the environment
(:data:`parsers.declared.FILES_ENV`, :data:`parsers.common.REFERENCE_TIME_ENV`), and the
partial results of such a read are cached apart, so that a file read once without a
format, or with another time, is read again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import polars as pl

from parsers import declared, registry
from parsers.common import ages_relative_to
from parsers.declared import FormatFileError
from parsers.registry import Parser
from timeline.errors import TimelineError
from timeline.reading import loader
from timeline.reading import store as event_store

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
    to detection and to ``format=``, here and in the worker processes started in it."""
    found = declared_formats(formats)
    before = os.environ.pop(declared.FILES_ENV, None)
    if found:
        os.environ[declared.FILES_ENV] = os.pathsep.join(p.origin for p in found)
    try:
        with registry.registered(found) as added:
            yield added
    except ValueError as exc:
        if "registered already" in str(exc):
            raise FormatsError(str(exc)) from None
        raise
    finally:
        os.environ.pop(declared.FILES_ENV, None)
        if before is not None:
            os.environ[declared.FILES_ENV] = before


def read(
    paths: PathLike | Iterable[PathLike],
    *,
    formats: PathLike | None = None,
    now: datetime | str | None = None,
    **options,
) -> loader.Loaded:
    """:func:`timeline.reading.loader.read`, with two more options.

    Parameters
    ----------
    formats
        A folder of format files (see :mod:`parsers.declared`) to read with, besides
        the built-in formats and those in the user's config folder.
    now
        The time relative ages (``kubectl get events``' ``5m``) count back from (a
        datetime, or ISO 8601 text; UTC when it has no zone); each file's modification
        time if not given. Rows so timed say so in ``attrs.time_from``.
    **options
        Passed to the loader: ``format``, ``year``, ``tz``, ``infer``, ``on_file``,
        ``store``, ``workers``, ``scheduler``, ``client``, ``cache``.
    """
    if isinstance(now, str):
        now = datetime.fromisoformat(now.replace("Z", "+00:00"))
    with using_formats(formats) as added, ages_relative_to(now):
        options["cache"] = _cache_apart(options.get("cache", True), added, now)
        return loader.read(paths, **options)


def load(paths: PathLike | Iterable[PathLike], **options) -> pl.DataFrame:
    """The event frame of :func:`read`, sorted by ``ts``."""
    return read(paths, **options).events


def _cache_apart(
    cache: bool | PathLike, added: list[Parser], now: datetime | None
) -> bool | PathLike:
    """The cache folder for a read with declared formats or a reference time: one of its
    own for each set of them, inside the one the loader would use."""
    if cache is False or (not added and now is None):
        return cache
    digest = hashlib.sha256((now.isoformat() if now else "").encode())
    for parser in added:
        digest.update(parser.origin.encode())
        digest.update(Path(parser.origin).read_bytes())
    if cache is True:
        base = os.environ.get(loader.CACHE_ENV) or event_store.default_cache_dir()
    else:
        base = cache
    return Path(base) / f"declared-{digest.hexdigest()[:16]}"
