"""A host that falls silent while its peers keep logging (a node that died and came back)
is found, put on the timeline as an inferred change and ranked for the errors the others
logged meanwhile; a file that starts late or ends early, a host of few lines, a pause of
everyone, and the bundled sample give no silence.

The worlds are written in the real formats: kube-proxy and a Go service as klog lines in
CRI-wrapped pod logs under ``nodes/<node>/var/log/pods/``, and RabbitMQ 3.11 lines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import timeline
from timeline.reading.silences import host_silences


def _names(rng: random.Random, style: str, n: int) -> list[str]:
    if style == "aws":
        net = rng.randint(0, 99)
        return [
            f"ip-10-{net}-{rng.randint(1, 9)}-{i * 20 + rng.randint(10, 19)}"
            ".eu-west-1.compute.internal"
            for i in range(n)
        ]
    if style == "gke":
        pool = "".join(rng.choice("abcdefghjkmnpqrstvwxz0123456789") for _ in range(8))
        return [f"gke-prod-default-pool-{pool}-{i:02d}{rng.choice('abcdxyz')}q" for i in range(n)]
    return [f"worker-{i + 1}" for i in range(n)]


def _cri(t: datetime, text: str) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S.%f}123Z stderr F {text}"


def _klog(t: datetime, level: str, where: str, message: str) -> str:
    return f"{level}{t:%m%d %H:%M:%S.%f}       1 {where}] {message}"


@dataclass
class NodeWorld:
    """What a generated world holds: its folder, the dead node (if any), when it died
    (its last line) and when it came back (its next line)."""

    root: Path
    nodes: list[str]
    dead: str | None
    last: datetime | None
    back: datetime | None
    interval_s: float


def node_world(
    root: Path,
    seed: int,
    *,
    style: str = "aws",
    n_nodes: int = 4,
    silent_min: float | None = 37,
    app_on_dead: bool = True,
    late_start: bool = False,
    early_end: bool = False,
    everyone_pauses: bool = False,
    few_lines_host: bool = False,
) -> NodeWorld:
    """Nodes running kube-proxy (a pod log each) and, on some, a Go service; three brokers
    that log connections. With ``silent_min``, one node dies about an hour into the
    data and writes nothing for that long; then its containers start again (the next log
    file of the same pod) and the other nodes' kube-proxies log, meanwhile, that the
    service on it has no ready endpoints. The rest are what must not pass for a silence:
    the first node starting late, the second ending early, a host of a few lines, and
    every host and file pausing half an hour, an hour and a quarter after it came back."""
    rng = random.Random(seed)
    day = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 300))
    start = day + timedelta(hours=rng.uniform(0, 20))
    end = start + timedelta(hours=rng.uniform(3.6, 4))
    die = start + timedelta(minutes=rng.uniform(60, 80))
    nodes = _names(rng, style, n_nodes)
    # the first two nodes may start late or end early; the dead node is another
    dead = rng.choice(nodes[2:]) if silent_min else None
    back = die + timedelta(minutes=silent_min) if silent_min else None
    # everyone pausing, well after the node came back
    everyone = die + timedelta(minutes=silent_min or 0, seconds=75 * 60)
    pause = (everyone, everyone + timedelta(minutes=30)) if everyone_pauses else None
    interval = rng.uniform(20, 40)
    lasts: dict[str, datetime] = {}
    firsts: dict[str, datetime] = {}

    def write(node: str, pod: str, container: str, restart: int, lines: list[str]) -> None:
        folder = root / "nodes" / node / "var/log/pods" / pod / container
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{restart}.log").write_text("\n".join(lines) + "\n")

    def quiet(t: datetime) -> bool:
        return pause is not None and pause[0] <= t < pause[1]

    for k, node in enumerate(nodes):
        programs = [("kube-proxy", "kube-system", "proxier.go:820", '"Syncing iptables rules"')]
        if node != dead or app_on_dead:
            programs.append(("cart", "shop", "handler.go:90", '"Request served" path="/cart"'))
        for name, namespace, where, everyday in programs:
            pod = f"{namespace}_{name}-{rng.getrandbits(20):05x}_{rng.getrandbits(64):016x}"
            runs: list[list[str]] = [[]]
            lo = start + timedelta(minutes=75) if late_start and k == 0 else start
            hi = start + timedelta(minutes=70) if early_end and k == 1 else end
            t = lo
            runs[0].append(
                _cri(t, _klog(t, "I", "server.go:656", '"Version info" version="v1.29.3"'))
            )
            while t < hi:
                t += timedelta(seconds=rng.uniform(0.5, 1.5) * interval)
                if quiet(t):
                    continue
                if node == dead and die <= t:
                    if t < back:
                        continue
                    if len(runs) == 1:
                        runs.append([])
                        version = '"Version info" version="v1.29.3"'
                        runs[1].append(_cri(t, _klog(t, "I", "server.go:656", version)))
                        firsts[node] = min(firsts.get(node, t), t)
                        continue
                runs[-1].append(_cri(t, _klog(t, "I", where, everyday)))
                if node == dead and t < die:
                    lasts[node] = max(lasts.get(node, t), t)
                failing = dead and node != dead and die + timedelta(seconds=50) < t < back
                if failing and name == "kube-proxy" and rng.random() < 0.6:
                    text = (
                        '"Failed to sync endpoint for service" servicePortName="shop/cart:http"'
                        ' err="no ready endpoints"'
                    )
                    runs[-1].append(_cri(t, _klog(t, "E", "proxier.go:1564", text)))
            for restart, lines in enumerate(runs):
                write(node, pod, name, restart, lines)
    if few_lines_host:
        t0 = start + timedelta(minutes=20)
        lines = [
            _cri(t0 + timedelta(seconds=i), _klog(t0, "I", "job.go:12", '"Step"')) for i in range(5)
        ]
        t1 = end - timedelta(minutes=5)
        lines.append(_cri(t1, _klog(t1, "I", "job.go:12", '"Step"')))
        write("batch-runner-1", f"jobs_report-{seed}_{seed:016x}", "report", 0, lines)
    for b in range(3):
        lines, t = [], start
        while t < end:
            t += timedelta(seconds=rng.uniform(3, 9))
            if quiet(t):
                continue
            peer = f"10.20.{rng.randint(0, 9)}.{rng.randint(2, 250)}:{rng.randint(30000, 60000)}"
            lines.append(
                f"{t:%Y-%m-%d %H:%M:%S.%f}+00:00 [info] <0.{rng.randint(300, 40000)}.0> "
                f"accepting AMQP connection {peer} -> 10.20.3.{b + 10}:5672"
            )
        (root / f"rabbit@rmq-{b}.log").write_text("\n".join(lines) + "\n")
    return NodeWorld(root, nodes, dead, lasts.get(dead or ""), firsts.get(dead or ""), interval)


WORLDS = [
    pytest.param(dict(style="aws", n_nodes=4, silent_min=37), id="aws-4-nodes-37m"),
    pytest.param(dict(style="gke", n_nodes=3, silent_min=22, app_on_dead=False), id="gke-3-22m"),
    pytest.param(dict(style="plain", n_nodes=6, silent_min=55), id="plain-6-55m"),
    pytest.param(dict(style="gke", n_nodes=5, silent_min=28), id="gke-5-28m"),
]


@pytest.mark.parametrize("shape", WORLDS)
def test_silence_is_found_with_its_host_and_edges(tmp_path, shape):
    world = node_world(tmp_path, seed=len(str(shape)), **shape)
    loaded = timeline.read(tmp_path)
    found = host_silences(loaded.scan())
    assert found["host"].to_list() == [world.dead]
    row = found.row(0, named=True)
    # the last line before and the first after, to the line
    assert row["start"] == world.last
    assert row["end"] == world.back
    assert row["last_file"].startswith(str(tmp_path / "nodes" / world.dead))
    assert row["next_file"].endswith("/1.log") and row["next_line"] == 1
    changes = loaded.events.filter(
        (pl.col("kind") == "change") & pl.col("attrs").str.contains('"silence"')
    )
    assert changes.height == 1
    change = changes.row(0, named=True)
    assert change["host"] == world.dead and change["ts"] == world.last
    assert f"{row['last_file']}:{row['last_line']}" in change["message"]
    assert f"{row['next_file']}:1" in change["message"]
    assert '"inferred":true' in change["attrs"]


@pytest.mark.parametrize("shape", WORLDS[:2])
def test_silence_ranks_first_and_its_restart_folds_into_it(tmp_path, shape):
    world = node_world(tmp_path, seed=7, **shape)
    analysis = timeline.analyze(timeline.read(tmp_path))
    assert analysis.incidents.height >= 1
    incident = analysis.incidents.sort("onset").row(0, named=True)
    assert abs(incident["onset"] - world.last) < timedelta(minutes=5)
    ranked = analysis.contributors.filter(
        (pl.col("incident_id") == incident["incident_id"]) & pl.col("rank").is_not_null()
    ).sort("rank")
    top = ranked.row(0, named=True)
    assert top["change_type"] == "silence" and top["target"] == f"node/{world.dead}"
    assert top["role"] == "trigger"
    # the programs starting again on the node are its coming back, not a change of their own
    restarts = analysis.changes.filter(
        (pl.col("change_type") == "restart") & (pl.col("ts") >= world.back)
    )
    assert restarts.height == 0


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(dict(late_start=True), id="a-host-starts-late"),
        pytest.param(dict(early_end=True), id="a-host-ends-early"),
        pytest.param(dict(few_lines_host=True), id="a-host-of-few-lines"),
        pytest.param(dict(everyone_pauses=True), id="everyone-pauses"),
    ],
)
def test_no_other_silence_beside_a_host_falling_silent(tmp_path, shape):
    world = node_world(tmp_path, seed=3, silent_min=30, **shape)
    loaded = timeline.read(tmp_path)
    # the dead node's silence is found, and nothing else
    assert host_silences(loaded.scan())["host"].to_list() == [world.dead]
    silences = loaded.events.filter(pl.col("attrs").str.contains('"silence"'))
    assert silences["host"].to_list() == [world.dead]


def test_no_silence_in_the_bundled_sample(sample_loaded):
    assert host_silences(sample_loaded.scan()).height == 0
    changes = sample_loaded.events.filter(pl.col("kind") == "change")
    assert not changes.filter(pl.col("attrs").str.contains('"silence"')).height
