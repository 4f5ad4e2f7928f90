"""The same record read from two files is one row: Kubernetes events saved as JSON and as
a pasted table, CI jobs from the API and from their logs. Lines of ordinary logs are
never merged, however alike."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import timeline
from tests.lines import every_line_accounted as accounted
from timeline.analysis.rates import job_rates

T0 = datetime(2024, 2, 20, 14, 0, tzinfo=UTC)
#: When ``kubectl get events`` was run for the tables and the first JSON snapshot.
SAVED = T0 + timedelta(minutes=40)
NODE = "ip-10-20-3-41.eu-west-1.compute.internal"
POD = "ledger-api-7c9d5f6b8-x4kzp"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def kubectl_age(seconds: int) -> str:
    """An age as kubectl prints it (apimachinery's ``duration.HumanDuration``)."""
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"


def kubectl_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns as kubectl's tab writer lays them out: each as wide as its longest cell
    and three spaces (ten at least), the last one unpadded."""
    widths = [
        max(10, *(len(cell) + 3 for cell in column)) for column in zip(header, *rows, strict=True)
    ]
    return "".join(
        "".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + row[-1] + "\n"
        for row in (header, *rows)
    )


def event(
    key: str,
    *,
    kind: str,
    namespace: str,
    name: str,
    reason: str,
    message: str,
    first: datetime,
    last: datetime | None = None,
    count: int = 1,
    type: str = "Normal",
    component: str = "kubelet",
    host: str | None = NODE,
    field_path: str | None = None,
    hex_suffix: str = "17b5c2d0e4a1f3b2",
) -> dict:
    """A core/v1 Event as ``kubectl get events -o json`` writes it."""
    involved = {"apiVersion": "v1", "kind": kind, "name": name, "namespace": namespace}
    if field_path:
        involved["fieldPath"] = field_path
    involved["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"object/{name}"))
    source = {"component": component} | ({"host": host} if host else {})
    return {
        "apiVersion": "v1",
        "count": count,
        "eventTime": None,
        "firstTimestamp": iso(first),
        "involvedObject": involved,
        "kind": "Event",
        "lastTimestamp": iso(last or first),
        "message": message,
        "metadata": {
            "creationTimestamp": iso(first),
            "name": f"{name}.{hex_suffix}",
            "namespace": namespace,
            "resourceVersion": str(48710000 + len(key) * 37),
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"event/{key}")),
        },
        "reason": reason,
        "reportingComponent": component,
        "reportingInstance": host or "",
        "source": source,
        "type": type,
    }


def events(**changed: dict) -> dict[str, dict]:
    """The events of a rollout of ledger-api gone wrong, by key; ``changed`` replaces
    fields of some (a later look at the same events)."""
    found = {
        "scaled": event(
            "scaled",
            kind="Deployment",
            namespace="payments",
            name="ledger-api",
            reason="ScalingReplicaSet",
            message="Scaled up replica set ledger-api-7c9d5f6b8 to 1",
            first=at(2.2),
            component="deployment-controller",
            host=None,
            hex_suffix="17b5c1f7a2d9e001",
        ),
        "pulled": event(
            "pulled",
            kind="Pod",
            namespace="payments",
            name=POD,
            reason="Pulled",
            message='Successfully pulled image "ghcr.io/acme/ledger-api:v2.15.0" in 3.104s '
            "(3.104s including waiting)",
            first=at(2.3),
            field_path="spec.containers{ledger-api}",
            hex_suffix="17b5c1f9c4e0a112",
        ),
        "unhealthy": event(
            "unhealthy",
            kind="Pod",
            namespace="payments",
            name=POD,
            reason="Unhealthy",
            message="Readiness probe failed: HTTP probe failed with statuscode: 503",
            first=at(3.05),
            last=at(21.7),
            count=12,
            type="Warning",
            field_path="spec.containers{ledger-api}",
            hex_suffix="17b5c20a11f3c5d4",
        ),
        "backoff": event(
            "backoff",
            kind="Pod",
            namespace="payments",
            name=POD,
            reason="BackOff",
            message=f"Back-off restarting failed container ledger-api in pod {POD}_payments"
            "(3b8f0e2c-6a1d-4f5e-9c7b-2d4e6f8a0b1c)",
            first=at(10.1),
            last=at(30.75),
            count=5,
            type="Warning",
            field_path="spec.containers{ledger-api}",
            hex_suffix="17b5c27e0b9d4a37",
        ),
        "killing": event(
            "killing",
            kind="Pod",
            namespace="kube-system",
            name="coredns-5d78c9869d-9wq7f",
            reason="Killing",
            message="Stopping container coredns",
            first=at(25),
            host="ip-10-20-1-17.eu-west-1.compute.internal",
            field_path="spec.containers{coredns}",
            hex_suffix="17b5c2b5d8e3f690",
        ),
        "not-ready": event(
            "not-ready",
            kind="Node",
            namespace="default",
            name=NODE,
            reason="NodeNotReady",
            message=f"Node {NODE} status is now: NodeNotReady",
            first=at(31.2),
            component="node-controller",
            host=None,
            hex_suffix="17b5c2f1a06b7c85",
        ),
    }
    for key, fields in changed.items():
        found[key] = found[key] | fields
    return found


def events_json(items: list[dict]) -> str:
    return (
        json.dumps({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {}}, indent=4)
        + "\n"
    )


def subobject(e: dict) -> str:
    return e["involvedObject"].get("fieldPath", "")


def target(e: dict) -> str:
    return f"{e['involvedObject']['kind'].lower()}/{e['involvedObject']['name']}"


def seen(e: dict, field: str, now: datetime) -> str:
    written = datetime.fromisoformat(e[field].replace("Z", "+00:00"))
    return kubectl_age(int((now - written).total_seconds()))


def table(items: list[dict], now: datetime, *, namespaces: bool = False) -> str:
    """``kubectl get events [-A]``: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE."""
    header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    ordered = sorted(items, key=lambda e: e["lastTimestamp"])
    rows = [
        [seen(e, "lastTimestamp", now), e["type"], e["reason"], target(e), e["message"]]
        for e in ordered
    ]
    if namespaces:
        header = ["NAMESPACE", *header]
        rows = [[e["metadata"]["namespace"], *row] for e, row in zip(ordered, rows, strict=True)]
    return kubectl_table(header, rows)


def wide_table(items: list[dict], now: datetime) -> str:
    """``kubectl get events -o wide``: the message in the middle, then FIRST SEEN, COUNT
    and the event's NAME."""
    header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE"]
    header += ["FIRST SEEN", "COUNT", "NAME"]
    rows = []
    for e in sorted(items, key=lambda e: e["lastTimestamp"]):
        source = ", ".join(v for v in (e["source"]["component"], e["source"].get("host")) if v)
        rows.append(
            [
                seen(e, "lastTimestamp", now),
                e["type"],
                e["reason"],
                target(e),
                subobject(e),
                source,
                e["message"],
                seen(e, "firstTimestamp", now),
                str(e["count"]),
                e["metadata"]["name"],
            ]
        )
    return kubectl_table(header, rows)


def event_rows(loaded: timeline.Loaded) -> pl.DataFrame:
    return loaded.events.filter((pl.col("source") == "k8s-event") & (pl.col("kind") == "log"))


def attrs_of(frame: pl.DataFrame) -> list[dict]:
    return [json.loads(a) for a in frame["attrs"]]


def file_row(loaded: timeline.Loaded, name: str) -> dict:
    return loaded.summary.files.filter(pl.col("file").str.ends_with(name)).row(0, named=True)


# --- Kubernetes events -------------------------------------------------------------------


#: The reasons of :func:`events` that report a change (a change row besides the event's).
CHANGE_REASONS = ("ScalingReplicaSet", "Pulled", "Killing", "NodeNotReady")


def table_line(shown: list[dict], e: dict) -> int:
    """The line of ``e`` in :func:`table` of ``shown``: the first row's is its header's."""
    return max(1, 2 + sorted(shown, key=lambda s: s["lastTimestamp"]).index(e))


@pytest.mark.parametrize("namespaces", [False, True], ids=["-n payments", "-A"])
def test_events_as_json_and_as_a_pasted_table_are_each_one_row(write, tmp_path, namespaces):
    found = events()
    items = list(found.values())
    write("k8s/events.json", events_json(items))
    shown = items if namespaces else [e for e in items if e["metadata"]["namespace"] == "payments"]
    write("pasted/events.txt", table(shown, SAVED, namespaces=namespaces))
    loaded = timeline.read(tmp_path, now=SAVED)

    rows = event_rows(loaded)
    assert rows.height == len(items)
    assert rows["file"].str.ends_with("k8s/events.json").all()
    changes = loaded.events.filter((pl.col("source") == "k8s-event") & (pl.col("kind") == "change"))
    assert changes.height == len(CHANGE_REASONS)
    assert changes["file"].str.ends_with("k8s/events.json").all()
    unhealthy = rows.filter(pl.col("message").str.starts_with("Unhealthy")).row(0, named=True)
    assert unhealthy["ts"] == at(3.05)  # the time the JSON writes, not the table's age
    a = json.loads(unhealthy["attrs"])
    assert a["count"] == 12 and a["last_seen"] == iso(at(21.7))
    line = table_line(shown, found["unhealthy"])
    assert [p.rsplit("/", 2)[-2:] for p in a["also_in"]] == [["pasted", f"events.txt:{line}"]]

    pasted = file_row(loaded, "events.txt")
    assert pasted["rows"] == 0
    assert pasted["duplicate_lines"] == len(shown) + 1  # the header goes with the first row
    assert pasted["duplicate_rows"] == len(shown) + sum(
        e["reason"] in CHANGE_REASONS for e in shown
    )
    assert [p.rsplit("/", 2)[-2:] for p in pasted["duplicate_of"]] == [["k8s", "events.json"]]
    assert accounted(loaded.summary)
    notes = [text for kind, text in loaded.summary.notes() if kind == "duplicate"]
    assert notes == [
        f"pasted/events.txt: {pasted['duplicate_rows']} rows of records k8s/events.json "
        f"holds too, counted there ({len(shown) + 1} duplicate lines)"
    ]
    said = loaded.summary.warnings.filter(pl.col("file").str.ends_with("events.txt"))
    assert said.height == len(shown) and not said["unparsed"].any()
    assert said["reason"].str.starts_with("the same Kubernetes event as events.json:").all()


def test_an_event_seen_again_later_with_a_higher_count_is_one_row_with_that_count(write):
    """The JSON was saved at 14:40 (the probe had failed 12 times), the wide table at
    14:55 (19 times): one event object, the count only grew. The row stays the JSON's,
    timed by what it writes as times, with the higher count."""
    earlier = events()
    later = events(
        unhealthy={"count": 19, "lastTimestamp": iso(at(52))},
        backoff={"count": 9, "lastTimestamp": iso(at(54.5))},
    )
    write("events-1440.json", events_json(list(earlier.values())))
    pasted = [later[k] for k in ("scaled", "pulled", "unhealthy", "backoff")]
    folder = write("events-1455-wide.txt", wide_table(pasted, at(55))).parent
    loaded = timeline.read(folder, now=at(55))

    rows = event_rows(loaded)
    assert rows.height == len(earlier)
    by_reason = {a["reason"]: a for a in attrs_of(rows)}
    assert by_reason["Unhealthy"]["count"] == 19 and by_reason["BackOff"]["count"] == 9
    assert by_reason["Unhealthy"]["last_seen"] == iso(at(21.7))  # the time written, not the age
    assert by_reason["ScalingReplicaSet"]["count"] == 1
    assert all(
        a["also_in"][0].endswith("events-1455-wide.txt:" + str(n))
        for a, n in zip(
            [by_reason[r] for r in ("ScalingReplicaSet", "Pulled", "Unhealthy", "BackOff")],
            (1, 3, 4, 5),
            strict=True,
        )
    )
    assert "also_in" not in by_reason["NodeNotReady"]
    unhealthy = rows.filter(pl.col("message").str.starts_with("Unhealthy"))
    assert unhealthy["ts"].to_list() == [datetime(2024, 2, 20, 14, 3, 3, tzinfo=UTC)]
    assert file_row(loaded, "events-1455-wide.txt")["rows"] == 0
    assert accounted(loaded.summary)


def test_two_snapshots_of_the_events_keep_the_later_look_at_each(write):
    earlier = events()
    later = events(unhealthy={"count": 19, "lastTimestamp": iso(at(52))})
    write("events-1440.json", events_json(list(earlier.values())))
    folder = write("events-1455.json", events_json(list(later.values()))).parent
    loaded = timeline.read(folder)

    rows = event_rows(loaded)
    assert rows.height == len(earlier)
    unhealthy = rows.filter(pl.col("message").str.starts_with("Unhealthy")).row(0, named=True)
    assert unhealthy["file"].endswith("events-1455.json")
    a = json.loads(unhealthy["attrs"])
    assert a["count"] == 19 and a["last_seen"] == iso(at(52))
    assert a["also_in"][0].endswith("events-1440.json:66")
    # alike copies stay in the first file; each snapshot's other copies are duplicates
    files = loaded.summary.files.sort("file")
    assert files["rows"].sum() == len(earlier) + len(CHANGE_REASONS)
    assert files["duplicate_rows"].to_list() == [1, len(earlier) - 1 + len(CHANGE_REASONS)]
    assert (files["duplicate_lines"] > 0).all()
    assert accounted(loaded.summary)


def test_a_table_row_that_is_another_event_stays_a_row(write):
    """The same probe failing again two hours later is a new event object (the old one
    expired an hour after its last occurrence); a row the JSON does not hold is a row."""
    found = events()
    write("events.json", events_json(list(found.values())))
    again = found["unhealthy"] | {"firstTimestamp": iso(at(130)), "lastTimestamp": iso(at(138))}
    evicted = event(
        "evicted",
        kind="Pod",
        namespace="payments",
        name="ledger-api-7c9d5f6b8-m2p9c",
        reason="FailedScheduling",
        message="0/6 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/not-ready: }, 5 Insufficient cpu.",
        first=at(131),
        type="Warning",
        component="default-scheduler",
        host=None,
    )
    now = at(140)
    folder = write("events.txt", table([found["pulled"], again, evicted], now)).parent
    loaded = timeline.read(folder, now=now)

    rows = event_rows(loaded).sort("ts")
    assert rows.height == len(found) + 2
    from_table = rows.filter(pl.col("file").str.ends_with("events.txt"))
    assert [m.split(":")[0] for m in from_table["message"]] == ["FailedScheduling", "Unhealthy"]
    assert file_row(loaded, "events.txt")["duplicate_rows"] == 2  # the pull and its change
    assert accounted(loaded.summary)


def test_events_as_yaml_and_as_a_table(write):
    import yaml

    found = events()
    items = list(found.values())
    document = {
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }
    write("events.yaml", yaml.safe_dump(document, sort_keys=True))
    folder = write("events.txt", table(items, SAVED, namespaces=True)).parent
    loaded = timeline.read(folder, now=SAVED)
    rows = event_rows(loaded)
    assert rows.height == len(items)
    assert rows["file"].str.ends_with("events.yaml").all()
    assert file_row(loaded, "events.txt")["duplicate_lines"] == len(items) + 1
    assert accounted(loaded.summary)


def event_rows_line(items: list[dict], e: dict) -> int:
    """The line where ``e`` starts in :func:`events_json` of ``items`` (the first item's
    span starts at the top)."""
    index = items.index(e)
    if index == 0:
        return 1
    lines = events_json(items).splitlines()
    starts = [n for n, text in enumerate(lines, 1) if text == "        {"]
    return starts[index]


def test_the_change_an_event_reports_is_one_change_with_both_files_as_evidence(write):
    found = events()
    items = list(found.values())
    write("events.json", events_json(items))
    folder = write("events.txt", table(items, SAVED, namespaces=True)).parent
    analysis = timeline.analyze(timeline.read(folder, now=SAVED))
    node = analysis.changes.filter(pl.col("target").str.starts_with("node/"))
    assert node.height == 1 and node["n_rows"].to_list() == [1]
    examples = node["examples"][0].to_list()
    assert sorted(e.rsplit("/", 1)[-1] for e in examples) == [
        f"events.json:{event_rows_line(items, found['not-ready'])}",
        f"events.txt:{table_line(items, found['not-ready'])}",
    ]


def test_the_same_lines_in_two_logs_stay_rows_of_both(write):
    """Two kube-proxy pods logging the same failure every second, and an events file to
    compare: ordinary log lines are never taken for copies of one another."""

    def lines(minutes: range) -> str:
        return "".join(
            f'E0220 14:{m:02d}:{s:02d}.000000       1 proxier.go:1520] "Failed to execute '
            'iptables-restore" err="exit status 1"\n'
            for m in minutes
            for s in range(60)
        )

    write("node-1/kube-proxy.log", lines(range(10, 12)))
    write("node-2/kube-proxy.log", lines(range(10, 12)))
    write("node-2/kube-proxy.log.1", lines(range(8, 10)))
    folder = write("events.json", events_json(list(events().values()))).parent
    loaded = timeline.read(folder, year=2024)
    logs = loaded.events.filter(pl.col("source") == "kube-proxy")
    assert logs.height == 3 * 120
    assert loaded.summary.files["duplicate_lines"].sum() == 0
    assert loaded.summary.files["duplicate_rows"].sum() == 0


# --- CI jobs -----------------------------------------------------------------------------


def gh_job(
    job_id: int,
    name: str,
    *,
    created: datetime,
    started: datetime,
    stopped: datetime,
    conclusion: str,
    runner: str,
    labels: list[str],
    run_id: int = 7731940215,
    attempt: int = 1,
    workflow: str = "CI",
) -> dict:
    """A job of ``GET /repos/{o}/{r}/actions/runs/{id}/jobs``."""
    return {
        "id": job_id,
        "run_id": run_id,
        "workflow_name": workflow,
        "head_branch": "main",
        "run_url": f"https://api.github.com/repos/acme/payments/actions/runs/{run_id}",
        "run_attempt": attempt,
        "node_id": f"CR_kwDOH1a2b88AAAAD{job_id:x}",
        "head_sha": "2c1e4b0f8a7d6c5b4a392817f6e5d4c3b2a19080",
        "url": f"https://api.github.com/repos/acme/payments/actions/jobs/{job_id}",
        "html_url": f"https://github.com/acme/payments/actions/runs/{run_id}/job/{job_id}",
        "status": "completed",
        "conclusion": conclusion,
        "created_at": iso(created),
        "started_at": iso(started),
        "completed_at": iso(stopped),
        "name": name,
        "steps": [],
        "check_run_url": f"https://api.github.com/repos/acme/payments/check-runs/{job_id}",
        "labels": labels,
        "runner_id": 12,
        "runner_name": runner,
        "runner_group_id": 2,
        "runner_group_name": "GitHub Actions",
    }


def runner_time(t: datetime, tick: int) -> str:
    """A runner's time: UTC with seven fractional digits."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(tick * 7919) % 10_000_000:07d}Z"


def job_log(
    *,
    queued: datetime,
    picked: datetime,
    stopped: datetime,
    runner: str,
    labels: str,
    failure: str | None,
    hosted: bool = True,
) -> str:
    """A job's log as the log archive (``1_build.txt``) or ``gh api .../jobs/ID/logs``
    gives it."""
    where = "hosted runner" if hosted else "runner"
    kind = "hosted" if hosted else "organization"
    lines = [
        (queued, f"Requested labels: {labels}"),
        (queued, "Job defined at: acme/payments/.github/workflows/ci.yml@refs/heads/main"),
        (queued, "Waiting for a runner to pick up this job..."),
        (picked, f"Job is about to start running on the {where}: {runner} ({kind})"),
        (picked + timedelta(seconds=2), "Current runner version: '2.311.0'"),
        (picked + timedelta(seconds=2), "##[group]Operating System"),
        (picked + timedelta(seconds=2), "Ubuntu"),
        (picked + timedelta(seconds=2), "22.04.3"),
        (picked + timedelta(seconds=2), "##[endgroup]"),
        (picked + timedelta(seconds=6), "##[group]Run make test"),
        (picked + timedelta(seconds=6), "make test"),
        (picked + timedelta(seconds=6), "##[endgroup]"),
    ]
    if failure:
        lines += [
            (stopped - timedelta(seconds=3), failure),
            (stopped - timedelta(seconds=1), "##[error]Process completed with exit code 2."),
        ]
    lines.append((stopped, "Cleaning up orphan processes"))
    text = "".join(f"{runner_time(t, i)} {body}\n" for i, (t, body) in enumerate(lines))
    return "\ufeff" + text


JOBS = {
    "build": dict(
        created=at(15.2),
        started=at(17.8),
        stopped=at(21.1),
        conclusion="failure",
        runner="GitHub Actions 12",
        labels=["ubuntu-22.04"],
    ),
    "lint": dict(
        created=at(15.2),
        started=at(16),
        stopped=at(18.7),
        conclusion="success",
        runner="GitHub Actions 9",
        labels=["ubuntu-22.04"],
    ),
    "integration (postgres-14)": dict(
        created=at(15.25),
        started=at(19.5),
        stopped=at(24.2),
        conclusion="failure",
        runner="ci-large-5d8f2",
        labels=["self-hosted", "linux", "x64", "ci-large"],
    ),
}


def jobs_page(jobs: dict[str, dict]) -> str:
    listed = [
        gh_job(13873540211 + 97 * n, name, **fields)
        for n, (name, fields) in enumerate(jobs.items())
    ]
    return json.dumps({"total_count": len(listed), "jobs": listed}, indent=2) + "\n"


def log_of(name: str, **changed) -> str:
    job = JOBS[name] | changed
    return job_log(
        queued=job["created"] + timedelta(seconds=0.6),
        picked=job["started"] - timedelta(seconds=0.4),
        stopped=job["stopped"] - timedelta(seconds=0.2),
        runner=job["runner"],
        labels=", ".join(job["labels"]),
        failure="dial tcp: lookup proxy.golang.org on 10.96.0.10:53: read udp "
        "10.42.3.17:51234->10.96.0.10:53: i/o timeout"
        if job["conclusion"] == "failure"
        else None,
        hosted=not job["runner"].startswith("ci-large"),
    )


def job_rows(loaded: timeline.Loaded) -> pl.DataFrame:
    return loaded.events.filter(pl.col("kind") == "job")


def test_jobs_from_the_api_and_from_their_logs_are_each_one_row(write):
    write("api/jobs.json", jobs_page(JOBS))
    write("logs_7731940215/1_build.txt", log_of("build"))
    write(
        "logs_7731940215/build/3_Run make test.txt", "".join(log_of("build").splitlines(True)[9:])
    )
    # a job's log downloaded on its own, under a name of the user's choosing
    folder = write("integration-job.log", log_of("integration (postgres-14)")).parent
    loaded = timeline.read(folder, infer=False)

    jobs = job_rows(loaded)
    assert jobs.height == 3
    assert jobs["file"].str.ends_with("api/jobs.json").all()
    by_name = {a["name"]: a for a in attrs_of(jobs)}
    assert by_name["build"]["also_in"][0].endswith("logs_7731940215/1_build.txt:1")
    assert by_name["integration (postgres-14)"]["also_in"][0].endswith("integration-job.log:1")
    assert "also_in" not in by_name["lint"]
    failed = jobs.filter(pl.col("level") == "error")
    assert failed.height == 2
    # every line of the logs is still a row: a job's output is no copy of anything
    logs = loaded.events.filter(
        (pl.col("kind") == "log") & pl.col("file").str.ends_with("1_build.txt")
    )
    assert logs.height == len(log_of("build").splitlines())
    build_log = file_row(loaded, "1_build.txt")
    assert build_log["duplicate_rows"] == 1 and build_log["duplicate_lines"] == 0
    assert build_log["rows"] == len(log_of("build").splitlines())
    assert accounted(loaded.summary)


def test_ci_delays_and_failures_count_each_job_once(write):
    write("api/jobs.json", jobs_page(JOBS))
    write("logs_7731940215/1_build.txt", log_of("build"))
    folder = write(
        "logs_7731940215/2_integration (postgres-14).txt", log_of("integration (postgres-14)")
    ).parent.parent
    loaded = timeline.read(folder, infer=False)
    rates = job_rates(loaded.events, bucket="1h")
    assert rates["jobs"].sum() == 3 and rates["failed"].sum() == 2


def test_the_same_jobs_from_the_api_and_from_gh_are_one_row_each(write):
    write("api/jobs.json", jobs_page(JOBS))
    listed = json.loads(jobs_page(JOBS))["jobs"]
    gh = {
        "jobs": [
            {
                "completedAt": j["completed_at"],
                "conclusion": j["conclusion"],
                "databaseId": j["id"],
                "name": j["name"],
                "startedAt": j["started_at"],
                "status": j["status"],
                "steps": [],
                "url": j["html_url"],
            }
            for j in listed
        ]
    }
    folder = write("gh-run-view.json", json.dumps(gh, indent=2) + "\n").parent
    loaded = timeline.read(folder, infer=False)
    jobs = job_rows(loaded)
    assert jobs.height == 3 and jobs["file"].str.ends_with("api/jobs.json").all()
    assert file_row(loaded, "gh-run-view.json")["rows"] == 0
    assert accounted(loaded.summary)


def test_a_log_is_the_job_of_its_runner_not_another_of_the_same_name(write):
    """Two workflows' ``build`` jobs start in the same second on two runners; each job's
    log joins its own job. A re-run of a job (another attempt, later) is a job of its
    own, and so is a log of a job the API answer does not hold."""
    jobs = {
        "build": JOBS["build"],
        "Build": JOBS["build"] | {"runner": "GitHub Actions 31", "conclusion": "success"},
    }
    listed = json.loads(jobs_page(jobs))["jobs"]
    listed[1]["workflow_name"] = "Release"
    write("api/jobs.json", json.dumps({"total_count": 2, "jobs": listed}, indent=2))
    write("logs/1_build.txt", log_of("build", runner="GitHub Actions 31", conclusion="success"))
    rerun = {"started": at(47), "stopped": at(50), "created": at(46.5)}
    folder = write("rerun/1_build.txt", log_of("build", **rerun)).parent.parent
    loaded = timeline.read(folder, infer=False)

    jobs = job_rows(loaded)
    assert jobs.height == 3
    kept = {
        j["runner_name"]: j
        for j in attrs_of(jobs.filter(pl.col("file").str.ends_with("jobs.json")))
    }
    assert kept["GitHub Actions 31"]["also_in"][0].endswith("logs/1_build.txt:1")
    assert "also_in" not in kept["GitHub Actions 12"]
    assert jobs.filter(pl.col("file").str.ends_with("rerun/1_build.txt")).height == 1
    assert accounted(loaded.summary)
