"""Paths as people want to read them: relative to the folder all inputs share."""

from __future__ import annotations

import os

__all__ = ["common_root", "relative_path"]


def relative_path(path: str | None, root: str) -> str:
    """``path`` relative to ``root`` when it lies under it, else as given.

    >>> relative_path("/logs/a/b.log", "/logs"), relative_path("/elsewhere/c", "/logs")
    ('a/b.log', '/elsewhere/c')
    """
    text = "" if path is None else str(path)
    if not root:
        return text
    absolute = os.path.abspath(text)
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
