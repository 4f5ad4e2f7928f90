"""Shared fixtures: write realistic log text to files and load them as a user would."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import timeline


@pytest.fixture(autouse=True, scope="session")
def partial_cache(tmp_path_factory):
    """Keep the partial-result cache of the tests out of the user's cache folder."""
    import os

    from timeline.reading.loader import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("partial-cache"))


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
    """Write ``text`` to a file called ``name`` and load it: returns ``timeline.Loaded``.

    Changes are not inferred unless asked (``infer=True``), so a parser's test sees only
    its own rows."""

    def _read(name: str, text: str | bytes, **options) -> timeline.Loaded:
        options.setdefault("infer", False)
        return timeline.read(write(name, text), **options)

    return _read


HOSTILE_TEXT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def hostile_kube_proxy_log() -> str:
    """A CRI kube-proxy log whose error lines carry HTML and script, as an attacker could."""
    lines = []
    for i in range(40):
        ts = f"2023-03-14T19:{i:02d}:07.123456789Z"
        lines.append(
            f"{ts} stderr F E0314 19:{i:02d}:07.123456       1 proxier.go:1520] "
            f'"Failed to sync {HOSTILE_TEXT}" err="{HOSTILE_TEXT}"'
        )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def sample_loaded():
    """The bundled sample, loaded once for the session."""
    from sample_logs import SAMPLE_DIR

    return timeline.read(SAMPLE_DIR)


@pytest.fixture(scope="session")
def sample_analysis(sample_loaded):
    """The analysis of the bundled sample, run once for the session."""
    from timeline.analysis import analyze

    return analyze(sample_loaded.events)


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory):
    """An HTML report of the bundled sample plus a kube-proxy log full of hostile markup."""
    from sample_logs import SAMPLE_DIR
    from timeline.analysis import analyze
    from timeline.outputs.report import write_report

    folder = tmp_path_factory.mktemp("hostile")
    evil = folder / "nodes" / "evil-node" / "var" / "log" / "pods"
    evil = evil / "kube-system_kube-proxy-evil1_0000" / "kube-proxy" / "0.log"
    evil.parent.mkdir(parents=True)
    evil.write_text(hostile_kube_proxy_log())
    loaded = timeline.read([SAMPLE_DIR, evil])
    path = write_report(loaded, analyze(loaded.events), folder / "report.html", title="Hostile")
    return path
