"""Paths as people want to read them: relative to the folder all inputs share."""

from __future__ import annotations

import os
from functools import lru_cache

__all__ = ["common_root", "relative_path"]


def relative_path(path: str | None, root: str) -> str:
    """``path`` relative to ``root`` when it lies under it, else as given.

    >>> relative_path("/logs/a/b.log", "/logs"), relative_path("/elsewhere/c", "/logs")
    ('a/b.log', '/elsewhere/c')
    """
    text = "" if path is None else str(path)
    if not root:
        return text
    return _relative(text, root, os.getcwd())


@lru_cache(maxsize=65536)
def _relative(text: str, root: str, cwd: str) -> str:
    """:func:`relative_path` of one path, worked out once: a report names the same few
    files on thousands of rows. ``cwd`` is in the key, as a relative path depends on it."""
    absolute = os.path.normpath(os.path.join(cwd, text))
    if absolute.startswith(root.rstrip(os.sep) + os.sep):
        return os.path.relpath(absolute, root)
    return text


def common_root(paths: list[str]) -> str:
    """The folder every path lies in (absolute), so that paths can be shown shorter.

    >>> common_root(["/logs/a/x.log", "/logs/b/y.log"]), common_root(["/logs/a/x.log"])
    ('/logs', '/logs/a')
    """
    if not paths:
        return ""
    root = os.path.commonpath([os.path.abspath(p) for p in paths])
    return os.path.dirname(root) if len(set(paths)) == 1 or os.path.isfile(root) else root
