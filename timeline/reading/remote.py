"""Files behind URLs: object storage (``s3://bucket/logs/``, ``gs://...``) and anything
else fsspec knows (``file://``, ``https://``), so that the workers of a cluster read
the logs where they lie instead of from a disk they share.

A URL is listed and opened through fsspec; the protocol's own package does the talking
(``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``) and its credentials come from where that
package looks (environment, config files, instance roles). Nothing here reads a line:
:func:`timeline.reading.sources.read_bytes` takes the chunks and applies the same limits
and mending as to a local file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from timeline.errors import NoInputError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``s3://b/k``) rather than a local path.

    >>> is_url("s3://logs/2023-03-14/"), is_url("/var/log/pods"), is_url("C:/logs")
    (True, False, False)
    """
    return bool(_URL.match(path))


def _fs(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path within it, or a clear error when
    its protocol's package is missing."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:  # fsspec comes with the dask extra
        why = 'reading URLs needs fsspec: pip install "incident-timeline[dask]"'
        raise NoInputError(f"{url}: {why}") from None
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise NoInputError(f"{url}: cannot open this kind of URL ({exc})") from None


def expand(url: str) -> list[str]:
    """The files ``url`` names: itself, every file under it (a folder or prefix, in
    order, dot files left out as a folder walk leaves them), or a glob's matches; empty
    when nothing is there."""
    fs, path = _fs(url)
    if any(c in path for c in "*?["):
        found = sorted(p for p in fs.glob(path) if fs.isfile(p))
    elif fs.isdir(path):
        found = sorted(fs.find(path))
    elif fs.exists(path):
        return [url]
    else:
        return []
    hidden = re.compile(r"(^|/)\.[^/]*$")
    return [fs.unstrip_protocol(p) for p in found if not hidden.search(p)]


def chunks(
    url: str, chunk_bytes: int, *, start: int = 0, end: int | None = None
) -> Iterator[bytes]:
    """The bytes of ``url`` (from ``start`` to ``end``), ``chunk_bytes`` at a time."""
    fs, path = _fs(url)
    with fs.open(path, "rb") as handle:
        handle.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            chunk = handle.read(chunk_bytes if left is None else min(chunk_bytes, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
