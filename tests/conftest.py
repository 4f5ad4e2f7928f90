"""Shared fixtures: write realistic log text to files and load them as a user would."""

from __future__ import annotations

import gzip
import json
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
def spy(monkeypatch):
    """``spy(owner, name)``: ``owner.name`` still runs, and the arguments of each call go
    to the list returned."""

    def install(owner, name: str) -> list[tuple]:
        calls: list[tuple] = []
        original = getattr(owner, name)

        def recording(*args, **kwargs):
            calls.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recording)
        return calls

    return install


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


HOSTILE_EXECUTOR = '<a href="http://evil.example/x">X</a><b>B</b>'


def hostile_circleci_jobs() -> str:
    """CircleCI jobs whose self-hosted resource class is a link and bold text."""
    jobs = [
        {
            "number": 482200 + i,
            "name": "integration-tests",
            "status": "success" if i % 4 else "failed",
            "executor": {"resource_class": f"acme/{HOSTILE_EXECUTOR}", "type": "machine"},
            "created_at": f"2023-03-14T18:{i:02d}:09.871Z",
            "queued_at": f"2023-03-14T18:{i:02d}:11.412Z",
            "started_at": f"2023-03-14T18:{i:02d}:{20 + i % 30:02d}.612Z",
            "stopped_at": f"2023-03-14T18:{i + 1:02d}:16.816Z",
            "project": {"slug": "gh/acme/api", "name": "api"},
        }
        for i in range(40)
    ]
    return json.dumps({"items": jobs, "next_page_token": None})


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
    jobs = folder / "circleci" / "jobs.json"
    jobs.parent.mkdir()
    jobs.write_text(hostile_circleci_jobs())
    loaded = timeline.read([SAMPLE_DIR, evil, jobs])
    path = write_report(loaded, analyze(loaded.events), folder / "report.html", title="Hostile")
    return path
