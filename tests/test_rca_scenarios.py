"""The change ranking on generated incidents of many shapes (:mod:`tests.rca.scenarios`).

Each scenario writes its files in the real formats, is read with ``timeline.read`` and
analysed with ``timeline.analyze`` as a user would, and is judged against its truth
(:func:`tests.rca.judge.judge`). ``benchmarks/bench_rca.py`` runs the same library over
more seeds and prints the accuracy.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import timeline
from tests.rca.judge import judge, matches
from tests.rca.scenarios import SCENARIOS, Cause, build
from timeline.analysis import rates
from timeline.outputs.findings import findings
from timeline.outputs.report import render

#: Scenarios the current evidence model gets wrong, and how (a strict xfail each).
KNOWN_WRONG: dict[str, str] = {
    "infra_fails_jobs": "the failing jobs are found, but a rollout whose program no CI job "
    "names is not tied to them, and its thin trickle of errors makes no spike",
}

#: Scenarios whose incident the current model ends at the wrong time (a strict xfail each
#: of :func:`test_the_incident_recovers_when_its_trouble_ends`).
KNOWN_WRONG_RECOVERY: dict[str, str] = {}


def _case(name: str, known: dict[str, str] = KNOWN_WRONG):
    marks = ()
    if name in known:
        marks = (pytest.mark.xfail(strict=True, reason=known[name]),)
    return pytest.param(name, id=name, marks=marks)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, request):
    """Each scenario read and analysed once per module (the bundled sample once per
    session, shared with the other tests)."""
    done = {}

    def get(name: str):
        if name not in done:
            root, truth = build(name, tmp_path_factory.mktemp(name), seed=1)
            if name == "bundled":
                loaded = request.getfixturevalue("sample_loaded")
                done[name] = (loaded, request.getfixturevalue("sample_analysis"), truth)
            else:
                loaded = timeline.read(root)
                done[name] = (loaded, timeline.analyze(loaded), truth)
        return done[name]

    return get


@pytest.mark.parametrize("name", [_case(n) for n in SCENARIOS])
def test_scenario_truth_holds(analysed, name):
    loaded, analysis, truth = analysed(name)
    verdict = judge(truth, analysis)
    assert verdict.found_incident, f"no incident within 30m of {truth.onset:%m-%d %H:%M}"
    if not truth.causes:
        assert verdict.no_change_said, f"blamed: {verdict.top}"
        return
    assert verdict.top1, f"rank 1 is {verdict.top}; causes rank {verdict.ranks}"
    assert verdict.top3, f"causes rank {verdict.ranks}"
    assert not verdict.decoy_in_top3
    assert all(verdict.mitigations_found), "the mitigation is not labelled one"


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "bundled"])
def test_scenario_files_are_read_whole(analysed, name):
    """Every generated line parses; pod logs under a node's folder know their node."""
    loaded, _, _ = analysed(name)
    assert loaded.summary.unparsed_lines == 0, loaded.summary.warnings.head(3)
    logs = loaded.events.filter(
        (pl.col("kind") == "log") & pl.col("file").str.contains("pods/[^/]+_[^/]+_")
    )
    assert logs.height > 1000
    on_nodes = logs.filter(pl.col("file").str.contains("/var/log/pods/"))
    if on_nodes.height:
        assert on_nodes.height == logs.height
        assert on_nodes["host"].null_count() == 0
        folders = {
            Path(f).parts[Path(f).parts.index("nodes") + 1] for f in on_nodes["file"].unique()
        }
        assert set(on_nodes["host"].unique()) == folders


@pytest.mark.parametrize("seed", [4])
def test_scenarios_differ_by_seed_and_by_shape(tmp_path, seed):
    """Names, hosts and times are drawn, not fixed: no two scenarios share an onset or
    node names, and another seed moves them."""
    onsets, hosts = set(), set()
    for name in ("immediate_trigger", "slow_burn", "no_change"):
        root, truth = build(name, tmp_path / f"{name}-{seed}", seed=seed)
        other_root, other = build(name, tmp_path / f"{name}-{seed}-b", seed=seed + 10)
        assert truth.onset != other.onset
        nodes = {p.name for p in (root / "nodes").iterdir()}
        assert nodes != {p.name for p in (other_root / "nodes").iterdir()}
        onsets.add(truth.onset)
        hosts.add(frozenset(nodes))
    assert len(onsets) == 3 and len(hosts) == 3


def test_a_controller_echo_is_not_the_persons_change():
    """The judge takes a change for the cause only by its own target and time; a
    ReplicaSet the controller made counts as the same program only for decoys."""
    at = datetime(2025, 1, 1, 9, 30, tzinfo=UTC)
    cause = Cause("deployment/shop/checkout", at)
    window = timedelta(minutes=10)
    assert matches(
        {"target": "deployment/shop/checkout", "ts": at + timedelta(minutes=2)}, cause, window
    )
    assert not matches({"target": "replicaset/shop/checkout-7d9f8c6b5d", "ts": at}, cause, window)
    assert not matches(
        {"target": "deployment/shop/checkout", "ts": at + timedelta(hours=1)}, cause, window
    )
    assert matches({"target": "pod/shop/checkout-7d9f8c6b5d-x2kqz", "ts": at}, cause, None)
    assert not matches({"target": "deployment/shop/checkout-ui", "ts": at}, cause, None)


def test_a_cause_shown_under_its_consumer_counts_only_with_its_actor():
    at = datetime(2025, 1, 1, 9, 30, tzinfo=UTC)
    cause = Cause("configmap/shop/checkout-config", at, ("deployment/shop/checkout",), "kim@x")
    window = timedelta(minutes=10)
    mine = {"target": "deployment/shop/checkout", "ts": at, "description": "config by kim@x"}
    sync = {"target": "deployment/shop/checkout", "ts": at, "description": "deploy by argocd"}
    assert matches(mine, cause, window)
    assert not matches(sync, cause, window)


@pytest.mark.parametrize("name", [_case(n, KNOWN_WRONG | KNOWN_WRONG_RECOVERY) for n in SCENARIOS])
def test_the_incident_recovers_when_its_trouble_ends(analysed, name):
    """Recovery is when the incident's own series are back at their baselines: within a
    bucket or two of the last error, or of the trailing CI window after the last
    delayed job, whatever the shape."""
    _, analysis, truth = analysed(name)
    near = analysis.incidents.with_columns(_off=(pl.col("onset") - truth.onset).abs()).sort("_off")
    incident = near.row(0, named=True)
    assert abs(incident["onset"] - truth.onset) <= timedelta(minutes=10)
    assert abs(incident["recovery"] - truth.recovered) <= timedelta(minutes=25), (
        f"recovery {incident['recovery']:%m-%d %H:%M}, trouble ended {truth.recovered:%m-%d %H:%M}"
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_node_pool_upgrade_reaches_its_nodes_and_its_runners_are_no_hosts(tmp_path, seed):
    """A node pool's upgrade (GKE, AKS or EKS, by seed) is the trigger of the errors on
    the nodes it brought up; those nodes' own starts (kubelet, kube-proxy, their Node
    objects) are its doing, not changes that made it worse; and the runners the CI jobs
    name are where jobs ran, never hosts of the incident."""
    root, truth = build("node_pool_upgrade", tmp_path, seed=seed)
    loaded = timeline.read(root)
    analysis = timeline.analyze(loaded)
    verdict = judge(truth, analysis)
    assert verdict.top1 and not verdict.decoy_in_top3, verdict.top
    new = set(truth.notes["new"])
    upgrade = analysis.changes.filter(pl.col("target") == truth.causes[0].target).row(0, named=True)
    assert new <= set(upgrade["hosts"])
    own = analysis.changes.filter(pl.col("node").is_in(sorted(new)))
    assert own.height == 0, own["description"].to_list()
    near = analysis.incidents.with_columns(_off=(pl.col("onset") - truth.onset).abs()).sort("_off")
    incident = near.row(0, named=True)
    worse = analysis.contributors.filter(
        (pl.col("incident_id") == incident["incident_id"]) & (pl.col("role") == "made worse")
    )
    assert worse.height == 0, worse["description"].to_list()
    events = loaded.events
    runners = set(rates.jobs(events)["runner_name"].drop_nulls())
    writers = set(events.filter(pl.col("kind") == "log")["host"].drop_nulls())
    assert runners and not (set(incident["hosts"]) & (runners - writers))
    ci_hosts = analysis.spikes.filter(pl.col("source") == "github-actions")["hosts"].explode()
    assert set(ci_hosts.drop_nulls()) <= set(truth.notes["nodes"])


def _policy_elsewhere(folder: Path, kind: str, namespace: str, name: str) -> tuple[str, str]:
    """The role and scope of the scenario's NetworkPolicy once its audit events say it
    was written in namespace ``batch``, where no program logged the errors."""
    audit = folder / "k8s" / "audit.log"
    elsewhere = audit.read_text().replace(
        f"namespaces/{namespace}/networkpolicies/{name}?",
        f"namespaces/batch/networkpolicies/{name}?",
    )
    elsewhere = elsewhere.replace(
        f'"resource":"networkpolicies","namespace":"{namespace}"',
        '"resource":"networkpolicies","namespace":"batch"',
    )
    assert elsewhere != audit.read_text()
    audit.write_text(elsewhere)
    analysis = timeline.analyze(timeline.read(folder, cache=False))
    moved = analysis.contributors.filter(pl.col("target") == f"{kind}/batch/{name}")
    return moved.select("role", "scope").row(0)


@pytest.mark.parametrize("seed", [1, 3])
def test_a_namespace_wide_change_reaches_only_its_own_namespaces_programs(tmp_path, seed):
    """The NetworkPolicy that cut the service off is tied to its errors through the
    namespace its pods run in; the same policy written in a namespace where no program
    logged the errors is tied to nothing."""
    folder, truth = build("network_policy", tmp_path / "own", seed)
    cause = truth.causes[0]
    kind, namespace, name = cause.target.split("/")
    analysis = timeline.analyze(timeline.read(folder, cache=False))
    ranked = analysis.contributors.filter(pl.col("target") == cause.target)
    assert ranked.select("rank", "role", "scope").row(0) == (1, "trigger", "namespace")
    assert _policy_elsewhere(folder, kind, namespace, name) == ("unrelated", "none")


#: A pod folder as the kubelet names it: ``<namespace>_<pod>_<uid>/<container>/<n>.log``.
_POD_FOLDER = re.compile(r"^(?P<ns>[^_]+)_(?P<pod>[^_]+)_(?P<uid>[^_/]+)$")


def _collected(root: Path) -> list[dict]:
    """Every container line the nodes' pod folders hold, with what a collector's
    Kubernetes metadata knows of it; the folders removed, as a reviewer who has only the
    log store's export would have them."""
    records = []
    for path in sorted(root.glob("nodes/*/var/log/pods/*/*/*.log")):
        folder = _POD_FOLDER.match(path.parent.parent.name)
        node = path.parts[len(root.parts) + 1]
        for line in path.read_text().splitlines():
            ts, stream, tag, text = line.split(" ", 3)
            records.append(
                {
                    "ts": ts,
                    "stream": stream,
                    "tag": tag,
                    "line": text,
                    "node": node,
                    "namespace": folder["ns"],
                    "pod": folder["pod"],
                    "uid": folder["uid"],
                    "container": path.parent.name,
                }
            )
        path.unlink()
    shutil.rmtree(root / "nodes")
    return sorted(records, key=lambda r: r["ts"])


def _fluent_bit_export(root: Path, records: list[dict], rng: random.Random) -> None:
    """Fluent Bit's ``tail`` input (the ``cri`` parser) and ``kubernetes`` filter, written
    by its ``file`` output as JSON lines: its ``date``, the line as ``log``, the pod's
    metadata under ``kubernetes``."""
    out = []
    for r in records:
        whole, _, fraction = r["ts"].rstrip("Z").partition(".")
        seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
        record = {
            "date": float(f"{seconds:.0f}.{fraction[:6] or '0'}"),
            "time": r["ts"],
            "stream": r["stream"],
            "_p": r["tag"],
            "log": r["line"],
            "kubernetes": {
                "pod_name": r["pod"],
                "namespace_name": r["namespace"],
                "pod_id": r["uid"],
                "labels": {"app.kubernetes.io/name": r["pod"].rsplit("-", 2)[0]},
                "host": r["node"],
                "container_name": r["container"],
                "docker_id": f"{rng.getrandbits(128):032x}",
                "container_image": f"registry.example/{r['container']}:1.{rng.randrange(9)}",
            },
        }
        out.append(json.dumps(record, separators=(",", ":")))
    path = root / "exports" / f"fluent-bit-{rng.randrange(10**6):06d}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def _loki_export(root: Path, records: list[dict], rng: random.Random) -> None:
    """``logcli query --output=jsonl`` of the cluster's streams, newest first as logcli
    lists them: the line, its time, and the stream's labels as Promtail's Kubernetes
    discovery names them."""
    out = []
    for r in reversed(records):
        labels = {
            "app": r["pod"].rsplit("-", 2)[0],
            "container": r["container"],
            "filename": f"/var/log/pods/{r['namespace']}_{r['pod']}_{r['uid']}/"
            f"{r['container']}/0.log",
            "job": f"{r['namespace']}/{r['pod'].rsplit('-', 2)[0]}",
            "namespace": r["namespace"],
            "node_name": r["node"],
            "pod": r["pod"],
            "stream": r["stream"],
        }
        # Promtail's pipeline may drop the file's path: the labels alone say the namespace
        if rng.random() < 0.5:
            del labels["filename"]
        out.append(json.dumps({"labels": labels, "line": r["line"], "timestamp": r["ts"]}))
    path = root / "loki" / "query-result.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize(
    ("export", "seed"), [(_fluent_bit_export, 1), (_loki_export, 3), (_loki_export, 1)]
)
def test_a_namespace_wide_change_reaches_programs_whose_logs_a_collector_exported(
    tmp_path, export, seed
):
    """The service's logs come from a log store's export, not from the nodes: each record
    states the pod's namespace, so the NetworkPolicy that cut it off is still the trigger
    through its namespace, and the report says so; the same policy written in another
    namespace is tied to nothing."""
    folder, truth = build("network_policy", tmp_path / "own", seed)
    cause = truth.causes[0]
    kind, namespace, name = cause.target.split("/")
    export(folder, _collected(folder), random.Random(seed))
    assert not any(namespace in p.name for p in folder.rglob("*.log*"))
    loaded = timeline.read(folder, cache=False)
    analysis = timeline.analyze(loaded)
    ranked = analysis.contributors.filter(pl.col("target") == cause.target)
    assert ranked.select("rank", "role", "scope").row(0) == (1, "trigger", "namespace")
    report = render(findings(loaded, analysis), format="md")
    assert f"it changed namespace {namespace} as a whole, whose pods logged the errors" in report
    assert _policy_elsewhere(folder, kind, namespace, name) == ("unrelated", "none")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_flaky_teams_failing_jobs_are_no_incident(tmp_path, seed):
    """The control: a small team whose jobs fail a tenth to a third of the time all day
    makes no spike of failed jobs, so its CI note is never blamed; the bad deploy beside
    it is still the cause."""
    root, truth = build("flaky_ci", tmp_path, seed=seed)
    analysis = timeline.analyze(timeline.read(root))
    assert analysis.spikes.filter(pl.col("metric") == "failed_jobs").height == 0
    verdict = judge(truth, analysis)
    assert verdict.top1 and not verdict.decoy_in_top3, verdict.top
