"""Shared fixtures: write realistic log text to files and load them as a user would."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import timeline


@pytest.fixture
def write(tmp_path: Path):
    """Write ``text`` (or bytes) to ``tmp_path/name`` (gzipped for ``.gz``); return the path."""

    def _write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        return path

    return _write


@pytest.fixture
def read(write):
    """Write ``text`` to a file called ``name`` and load it: returns ``timeline.Loaded``."""

    def _read(name: str, text: str | bytes, **options) -> timeline.Loaded:
        return timeline.read(write(name, text), **options)

    return _read
