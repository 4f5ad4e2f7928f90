"""Changes inferred from logs: restarts, upgrades and rollbacks by version, config reloads,
reboots, the caller witness, and merging with recorded changes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import timeline
from parsers.changes_common import compare_versions, version_key
from timeline.analysis import contributors as contrib
from timeline.reading.changes import caller_switches, infer_changes, with_inferred_changes
from timeline.schema import EVENT_SCHEMA

NODE_A, NODE_B, NODE_C = "ip-10-0-1-5", "ip-10-0-2-7", "ip-10-0-3-9"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Frame:
    """Rows in the event frame schema, numbered per file as a parser would."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.lines: dict[str, int] = {}

    def add(self, ts: str, message: str, *, file: str, **columns) -> None:
        self.lines[file] = self.lines.get(file, 0) + 1
        row = {
            "ts": at(ts),
            "source": None,
            "host": None,
            "component": None,
            "level": "info",
            "kind": "log",
            "message": message,
            "template": None,
            "attrs": "{}",
            "file": file,
            "line": self.lines[file],
        }
        row.update(columns)
        self.rows.append(row)

    def klog(self, ts: str, host: str, caller: str, msg: str, program="kube-proxy", **kv) -> None:
        """A klog structured record as the klog parser gives it."""
        pairs = "".join(f' {k}="{v}"' for k, v in kv.items())
        self.add(
            ts,
            f'"{msg}"{pairs}',
            file=f"nodes/{host}/{program}.log",
            source=program,
            host=host,
            component=program,
            template=msg,
            attrs=json.dumps({"thread": "1", "caller": caller, **kv}, separators=(",", ":")),
        )

    def kube_proxy_start(self, ts: str, host: str, version: str | None, build: str) -> None:
        """kube-proxy's start-up lines; ``build`` picks the source lines of one build."""
        callers = {
            "old": ("server_others.go:206", "server.go:661"),
            "new": ("server_others.go:212", "server.go:650"),
        }[build]
        self.klog(ts, host, callers[0], "Using iptables Proxier")
        if version:
            stamp = (at(ts) + timedelta(microseconds=700)).isoformat()[:26]
            self.klog(stamp, host, callers[1], "Version info", version=version)

    def syncing(self, start: str, host: str, caller: str, minutes: int) -> None:
        for m in range(minutes):
            stamp = (at(start) + timedelta(minutes=m)).isoformat()[:19]
            self.klog(stamp, host, caller, "Syncing iptables rules")

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=EVENT_SCHEMA, orient="row")


def inferred(events: pl.DataFrame) -> list[dict]:
    rows = infer_changes(events).iter_rows(named=True)
    return [{**json.loads(r["attrs"]), "_row": r} for r in rows]


# --- versions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("v1.24.9", "v1.24.10", "upgrade"),
        ("v1.24.10", "v1.23.6", "rollback"),
        ("v1.24.10-eks-1234", "v1.24.10-eks-5678", "same"),
        ("v1.23.17-minimal-eksbuild.2", "v1.24.10-minimal-eksbuild.1", "upgrade"),
        ("1.22.20", "1.22.13", "rollback"),
        ("3.11.8", "3.11.10", "upgrade"),
        ("1.25.0-rc.1", "1.25.0", "upgrade"),
        ("latest", "1.9.3", None),
    ],
)
def test_versions_compare_as_numbers(old, new, expected):
    assert compare_versions(old, new) == expected


def test_version_key_strips_v_and_build_suffixes():
    assert version_key("v1.24.10-eks-fb459a0") == version_key("1.24.10")
    assert version_key("v1.24.10+k3s1") > version_key("v1.24.9+k3s2")


# --- starts, versions, reloads, reboots -------------------------------------------------


def kube_proxy_story() -> Frame:
    f = Frame()
    f.kube_proxy_start("2023-03-06T10:02:11.100000", NODE_A, "v1.23.6", "old")
    f.kube_proxy_start("2023-03-13T14:06:01.200000", NODE_A, "v1.24.10", "new")
    f.kube_proxy_start("2023-03-13T16:41:02.518302", NODE_A, "v1.23.6", "old")
    f.kube_proxy_start("2023-03-14T17:41:05.000000", NODE_A, "v1.24.10", "new")
    f.kube_proxy_start("2023-03-14T21:30:40.000000", NODE_A, "v1.24.10", "new")
    return f


def test_starts_read_as_restart_upgrade_rollback_by_version():
    got = inferred(kube_proxy_story().frame())
    assert [(c["change_type"], c.get("from"), c.get("to")) for c in got] == [
        ("restart", None, "v1.23.6"),
        ("upgrade", "v1.23.6", "v1.24.10"),
        ("rollback", "v1.24.10", "v1.23.6"),
        ("upgrade", "v1.23.6", "v1.24.10"),
        ("restart", None, "v1.24.10"),
    ]
    rollback = got[2]
    row = rollback["_row"]
    assert row["kind"] == "change" and rollback["inferred"] is True
    assert (row["host"], row["component"], rollback["target"]) == (
        NODE_A,
        "kube-proxy",
        "kube-proxy",
    )
    assert row["ts"] == at("2023-03-13T16:41:02.518302")
    assert (row["file"], row["line"]) == (f"nodes/{NODE_A}/kube-proxy.log", 5)
    assert rollback["witnesses"] == [
        f"nodes/{NODE_A}/kube-proxy.log:5",
        f"nodes/{NODE_A}/kube-proxy.log:6",
    ]
    assert row["message"] == "kube-proxy on ip-10-0-1-5 rolled back v1.24.10 -> v1.23.6"
    # the source lines changed with each build: a second witness on the version changes
    assert rollback["binary_changed"] is True and rollback["returned_to_earlier_binary"] is True
    assert "binary_changed" not in got[4]
    timeline.validate(infer_changes(kube_proxy_story().frame()))


def test_a_start_without_a_version_is_a_plain_restart_per_host():
    f = Frame()
    f.kube_proxy_start("2023-03-14T21:05:00", NODE_A, None, "old")
    f.kube_proxy_start("2023-03-14T21:06:30", NODE_B, None, "old")
    got = inferred(f.frame())
    assert [(c["change_type"], c["_row"]["host"]) for c in got] == [
        ("restart", NODE_A),
        ("restart", NODE_B),
    ]
    assert got[0]["_row"]["message"] == "kube-proxy restarted on ip-10-0-1-5"


def test_old_style_version_line_and_kubelet_start_is_a_reboot():
    f = Frame()
    f.add(
        "2023-03-13T14:02:11.907126",
        "Version: v1.23.17",
        file="kube-proxy.log",
        source="kube-proxy",
        component="kube-proxy",
        host=NODE_C,
        attrs='{"thread":"1","caller":"server.go:540"}',
    )
    f.klog(
        "2023-03-14T21:04:01.000000",
        NODE_C,
        "server.go:487",
        "Kubelet version",
        program="kubelet",
        kubeletVersion="v1.24.10-eks-48e63af",
    )
    f.klog(
        "2023-03-14T21:04:03.000000", NODE_C, "server.go:156", "Started kubelet", program="kubelet"
    )
    got = inferred(f.frame())
    assert [(c["change_type"], c["target"], c.get("to")) for c in got] == [
        ("restart", "kube-proxy", "v1.23.17"),
        ("reboot", f"node/{NODE_C}", "v1.24.10-eks-48e63af"),
    ]
    assert len(got[1]["witnesses"]) == 2
    assert (
        got[1]["_row"]["message"]
        == f"node {NODE_C} rebooted (kubelet started, v1.24.10-eks-48e63af)"
    )


def test_dns_reload_is_config_and_node_cache_versions_compare_in_their_own_scheme():
    f = Frame()
    dns = {"source": "coredns", "component": "node-local-dns", "host": NODE_A}
    f.add("2023-03-10T08:00:00", "Starting node-cache image: 1.22.13", file="nld.log", **dns)
    f.add("2023-03-10T08:00:00.5", "CoreDNS-1.9.3", file="nld.log", **dns)
    f.add("2023-03-14T20:05:00", "Reloading", file="nld.log", **dns)
    f.add("2023-03-14T20:05:00.2", "Reloading complete", file="nld.log", **dns)
    f.add("2023-03-14T20:31:05", "Starting node-cache image: 1.22.20", file="nld.log", **dns)
    f.add("2023-03-14T20:31:06", "CoreDNS-1.10.1", file="nld.log", **dns)
    got = inferred(f.frame())
    assert [(c["change_type"], c.get("from"), c.get("to")) for c in got] == [
        ("restart", None, "1.22.13"),
        ("config", None, None),
        ("upgrade", "1.22.13", "1.22.20"),
    ]
    assert got[2]["version_scheme"] == "node-cache"
    assert got[1]["_row"]["message"] == "node-local-dns on ip-10-0-1-5 reloaded its configuration"


def test_rabbitmq_stop_then_start_is_one_restart_and_versions_tell_an_upgrade():
    f = Frame()
    rmq = {"source": "rabbitmq", "component": "rabbit@rmq-1", "host": "rmq-1"}
    f.add(
        "2023-03-12T09:00:00",
        " Starting RabbitMQ 3.11.8 on Erlang 25.2.2 [jit]",
        file="r.log",
        **rmq,
    )
    f.add("2023-03-12T09:00:04", "Server startup complete; 4 plugins started.", file="r.log", **rmq)
    f.add("2023-03-15T02:50:01", "RabbitMQ is asked to stop...", file="r.log", **rmq)
    f.add(
        "2023-03-15T02:50:03",
        "Successfully stopped RabbitMQ and its dependencies",
        file="r.log",
        **rmq,
    )
    f.add(
        "2023-03-15T02:51:10",
        " Starting RabbitMQ 3.11.10 on Erlang 25.2.3 [jit]",
        file="r.log",
        **rmq,
    )
    f.add("2023-03-15T02:51:14", "Server startup complete; 4 plugins started.", file="r.log", **rmq)
    got = inferred(f.frame())
    assert [(c["change_type"], c.get("from"), c.get("to")) for c in got] == [
        ("restart", None, "3.11.8"),
        ("upgrade", "3.11.8", "3.11.10"),
    ]
    assert got[1]["stopped_at"] == "2023-03-15T02:50:01+00:00"
    assert len(got[1]["witnesses"]) == 4
    assert got[1]["_row"]["ts"] == at("2023-03-15T02:51:10")


def test_a_stop_with_no_start_after_it_is_reported():
    f = Frame()
    rmq = {"source": "rabbitmq", "component": "rabbit@rmq-2", "host": "rmq-2"}
    f.add("2023-03-15T09:50:01", "RabbitMQ is asked to stop...", file="r2.log", **rmq)
    (got,) = inferred(f.frame())
    assert (got["change_type"], got["to"]) == ("other", "stopped")


@pytest.mark.parametrize("ci", ["circleci", "github-actions", "gitlab-ci"])
def test_lines_in_ci_output_and_records_are_not_witnesses(ci):
    f = Frame()
    f.add("2023-03-14T18:00:00", "CoreDNS-1.9.3", file="job.log", source=ci)
    f.add("2023-03-14T18:00:01", "Reloading", file="x.log", source="myapp", component="myapp")
    assert infer_changes(f.frame()).height == 0


# --- the caller witness -----------------------------------------------------------------


def test_new_source_lines_after_a_start_mark_a_binary_change_and_a_return_a_rollback():
    f = Frame()
    f.kube_proxy_start("2023-03-06T10:00:00", NODE_B, None, "old")
    f.syncing("2023-03-06T10:00:30", NODE_B, "proxier.go:823", 5)
    f.kube_proxy_start("2023-03-13T14:06:00", NODE_B, None, "new")
    f.syncing("2023-03-13T14:06:30", NODE_B, "proxier.go:841", 5)
    f.kube_proxy_start("2023-03-13T16:41:00", NODE_B, None, "old")
    f.syncing("2023-03-13T16:41:30", NODE_B, "proxier.go:823", 5)
    got = inferred(f.frame())
    assert [c["change_type"] for c in got] == ["restart", "other", "rollback"]
    changed, back = got[1], got[2]
    assert changed["binary_changed"] is True and "returned_to_earlier_binary" not in changed
    assert "Syncing iptables rules: proxier.go:823 -> proxier.go:841" in changed["callers_changed"]
    assert back["returned_to_earlier_binary"] is True
    assert back["_row"]["message"] == "kube-proxy on ip-10-0-2-7 rolled back"


def test_a_switch_with_no_start_seen_stands_alone():
    f = Frame()
    for m in range(5):
        f.klog(
            f"2023-03-13T16:0{m}:00", NODE_C, "proxier.go:857", "Sync failed", retryingTime="30s"
        )
    for m in range(5):
        f.klog(
            f"2023-03-13T16:4{m}:00", NODE_C, "proxier.go:858", "Sync failed", retryingTime="30s"
        )
    (got,) = inferred(f.frame())
    assert (got["change_type"], got["binary_changed"]) == ("other", True)
    assert got["changed_after"] == "2023-03-13T16:04:00+00:00"
    assert got["_row"]["ts"] == at("2023-03-13T16:40:00")
    assert got["_row"]["line"] == 6


def test_two_call_sites_taking_turns_are_not_a_switch():
    f = Frame()
    for m in range(20):
        caller = "proxier.go:823" if m % 2 else "proxier.go:1120"
        f.klog(f"2023-03-14T18:{m:02d}:00", NODE_A, caller, "Syncing iptables rules")
    assert caller_switches(f.frame()).height == 0
    assert infer_changes(f.frame()).height == 0


# --- merging with records ---------------------------------------------------------------


IMAGE = "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy"


def record(
    f: Frame, ts: str, change_type: str, target: str, *, to=None, host=None, **extra
) -> None:
    attrs = {"change_type": change_type, "target": target, "to": to, "inferred": False, **extra}
    f.add(
        ts,
        f"{change_type} {target}",
        file="records",
        source="k8s-audit",
        component="kube-apiserver",
        kind="change",
        host=host,
        attrs=json.dumps({k: v for k, v in attrs.items() if v is not None}),
    )


def rollout() -> Frame:
    f = Frame()
    for host in (NODE_A, NODE_B, NODE_C):
        f.kube_proxy_start("2023-03-13T16:00:00", host, "v1.23.6", "old")
    record(
        f,
        "2023-03-14T17:40:02.131877",
        "upgrade",
        "daemonset/kube-system/kube-proxy",
        to=f"{IMAGE}:v1.24.10-minimal-eksbuild.1",
    )
    for i, host in enumerate((NODE_A, NODE_B, NODE_C)):
        f.kube_proxy_start(f"2023-03-14T17:4{1 + i * 2}:05", host, "v1.24.10", "new")
    return f


@pytest.mark.parametrize(("fleet", "pool", "seed"), [(6, 2, 1), (10, 3, 2), (14, 4, 3)])
def test_a_record_that_names_no_host_takes_the_hosts_its_witnesses_showed_it_on(fleet, pool, seed):
    """A DaemonSet of one node pool, patched in the audit log (no host), restarts its pods
    on that pool's nodes only, one every few minutes: the change has those nodes, each
    with its own time."""
    rng = random.Random(seed)
    nodes = [f"k8s-worker-{n:02d}" for n in rng.sample(range(1, 60), fleet)]
    patched = sorted(rng.sample(nodes, pool))
    f = Frame()
    for host in nodes:
        f.kube_proxy_start("2024-12-30T09:00:00", host, "v1.28.5", "old")
    record(
        f,
        "2025-01-01T02:10:00",
        "upgrade",
        "daemonset/kube-system/kube-proxy-pool-b",
        to=f"{IMAGE}:v1.29.1",
    )
    reached = {}
    for i, host in enumerate(patched):
        when = at("2025-01-01T02:10:30") + timedelta(minutes=4 * i, seconds=rng.randint(0, 50))
        f.kube_proxy_start(when.isoformat(), host, "v1.29.1", "new")
        reached[host] = when
    merged = with_inferred_changes(f.frame())
    upgrade = next(
        json.loads(a)
        for a in merged.filter(pl.col("kind") == "change")["attrs"]
        if '"upgrade"' in a
    )
    # the restarts within the matching window are its witnesses; later ones fold into it
    assert patched[0] in {w["host"] for w in upgrade["witness_hosts"]} <= set(patched)
    changes = contrib.change_events(merged)
    row = changes.filter(pl.col("target").str.ends_with("kube-proxy-pool-b")).row(0, named=True)
    assert row["hosts"] == patched
    started = {h["host"]: h["ts"] for h in row["host_times"]}
    assert set(started) == set(patched)
    assert all(abs(started[h] - reached[h]) < timedelta(seconds=60) for h in patched)


def test_inferred_changes_a_record_tells_are_not_counted_twice():
    merged = with_inferred_changes(rollout().frame())
    changes = merged.filter(pl.col("kind") == "change")
    upgrades = [json.loads(a) for a in changes["attrs"] if '"upgrade"' in a]
    assert len(upgrades) == 1
    (kept,) = upgrades
    assert kept["inferred"] is False and kept["seen_in_logs"] is True
    assert kept["witness_count"] == 3
    assert kept["witnesses"][0].startswith(f"nodes/{NODE_A}/kube-proxy.log:")
    restarts = [json.loads(a) for a in changes["attrs"] if '"restart"' in a]
    assert len(restarts) == 3 and all(r["inferred"] for r in restarts)
    timeline.validate(merged)


@pytest.mark.parametrize("change_type", ["deploy", "upgrade", "restart"])
def test_a_record_without_versions_takes_those_its_witnesses_showed(change_type):
    """An audit log at Metadata level says a DaemonSet was patched, not to what: the
    restarts it matches say which version it went from and to. A record that names its
    version keeps it."""
    f = Frame()
    for host in (NODE_A, NODE_B):
        f.kube_proxy_start("2024-05-02T08:00:00", host, "v1.28.9", "old")
    record(f, "2024-05-02T13:20:41", change_type, "daemonset/kube-system/kube-proxy")
    record(f, "2024-05-03T09:00:00", change_type, "daemonset/kube-system/kube-proxy", to="v1.29.0")
    for i, host in enumerate((NODE_A, NODE_B)):
        f.kube_proxy_start(f"2024-05-02T13:2{1 + i}:10", host, "v1.29.4", "new")
    f.kube_proxy_start("2024-05-03T09:01:10", NODE_A, "v1.29.0", "old")
    # a restart at the version it ran, and a stop, say nothing of a version change
    record(f, "2024-05-04T07:30:00", change_type, "daemonset/kube-system/kube-proxy")
    f.kube_proxy_start("2024-05-04T07:30:40", NODE_A, "v1.29.0", "old")
    changes = with_inferred_changes(f.frame()).filter(pl.col("source") == "k8s-audit")
    first, second, third = (json.loads(a) for a in changes.sort("ts")["attrs"])
    assert (first["from"], first["to"], first["witness_count"]) == ("v1.28.9", "v1.29.4", 2)
    assert second["to"] == "v1.29.0" and "from" not in second
    assert third["seen_in_logs"] and "to" not in third and "from" not in third


def test_merging_twice_gives_the_same_frame():
    once = with_inferred_changes(rollout().frame())
    twice = with_inferred_changes(once)
    assert once.equals(twice)


def test_no_match_outside_the_window_or_for_another_version_or_a_failed_request():
    f = Frame()
    f.kube_proxy_start("2023-03-13T16:00:00", NODE_A, "v1.23.6", "old")
    f.kube_proxy_start("2023-03-14T17:41:05", NODE_A, "v1.24.10", "new")
    record(
        f,
        "2023-03-14T17:10:00",
        "upgrade",
        "daemonset/kube-system/kube-proxy",
        to=f"{IMAGE}:v1.24.10",
    )
    record(
        f,
        "2023-03-14T17:40:00",
        "upgrade",
        "daemonset/kube-system/kube-proxy",
        to=f"{IMAGE}:v1.25.6",
    )
    record(
        f,
        "2023-03-14T17:40:30",
        "upgrade",
        "daemonset/kube-system/kube-proxy",
        to=f"{IMAGE}:v1.24.10",
        failed=True,
    )
    record(
        f, "2023-03-14T17:40:40", "upgrade", "daemonset/kube-system/coredns", to="coredns:v1.24.10"
    )
    merged = with_inferred_changes(f.frame())
    inferred_rows = merged.filter(pl.col("attrs").str.contains('"inferred":true'))
    assert inferred_rows.height == 2
    assert not merged["attrs"].str.contains("seen_in_logs").any()
    assert (
        with_inferred_changes(f.frame(), window=timedelta(minutes=40))
        .filter(pl.col("attrs").str.contains("seen_in_logs"))
        .height
        == 1
    )


def test_node_reboot_record_absorbs_the_kubelet_start_on_that_node():
    f = Frame()
    f.klog(
        "2023-03-14T21:04:01",
        NODE_C,
        "server.go:487",
        "Kubelet version",
        program="kubelet",
        kubeletVersion="v1.24.10",
    )
    f.klog(
        "2023-03-14T21:04:01",
        NODE_A,
        "server.go:487",
        "Kubelet version",
        program="kubelet",
        kubeletVersion="v1.24.10",
    )
    f.add(
        "2023-03-14T21:02:00",
        "Restart one node as a test",
        file="changes.csv",
        source="changelog",
        component=f"{NODE_C}.ec2.internal",
        kind="change",
        host=f"{NODE_C}.ec2.internal",
        attrs=json.dumps(
            {"change_type": "reboot", "target": f"node/{NODE_C}.ec2.internal", "inferred": False}
        ),
    )
    merged = with_inferred_changes(f.frame())
    changes = merged.filter(pl.col("kind") == "change").sort("ts")
    assert changes.height == 2
    first = json.loads(changes["attrs"][0])
    assert first["seen_in_logs"] is True and first["witness_count"] == 1
    assert json.loads(changes["attrs"][1])["target"] == f"node/{NODE_A}"


def test_a_node_record_absorbs_only_its_own_nodes_start_in_a_big_fleet():
    """Forty nodes reboot within minutes; each record names its node, in the long form on
    some (``.eu-west-1.compute.internal``). ``ip-10-0-7-4`` is a run of words of neither
    ``ip-10-0-7-40`` nor ``ip-10-0-7-41``, so each start is matched by its own record."""
    f = Frame()
    hosts = [f"ip-10-0-7-{n}" for n in range(4, 44)]
    for n, host in enumerate(hosts):
        start = at("2023-06-02T03:10:00") + timedelta(seconds=7 * n)
        named = f"{host}.eu-west-1.compute.internal" if n % 3 == 0 else host
        f.add(
            start.isoformat(),
            f"Rebooting {named}",
            file="changes.csv",
            source="changelog",
            component=named,
            kind="change",
            host=named,
            attrs=json.dumps({"change_type": "reboot", "target": f"node/{named}"}),
        )
        f.klog(
            (start + timedelta(minutes=2)).isoformat(),
            host,
            "server.go:487",
            "Kubelet version",
            program="kubelet",
            kubeletVersion="v1.27.3",
        )
    changes = with_inferred_changes(f.frame()).filter(pl.col("kind") == "change")
    attrs = [json.loads(a) for a in changes["attrs"]]
    assert changes.height == len(hosts)
    assert all(a["seen_in_logs"] and a["witness_count"] == 1 for a in attrs)
    witnessed = {a["witnesses"][0].split("/")[1]: a["target"] for a in attrs}
    assert all(witnessed[host].startswith(f"node/{host}") for host in hosts)
    assert witnessed["ip-10-0-7-4"] == "node/ip-10-0-7-4.eu-west-1.compute.internal"


# --- through the loader -----------------------------------------------------------------


def cri(ts: str, line: str) -> str:
    return f"{ts}123Z stderr F {line}"


def test_real_files_through_the_loader(write, tmp_path):
    pods = "var/log/pods/kube-system_kube-proxy-{pod}_0a1b2c3d/kube-proxy"
    lines = {
        NODE_A: [
            cri(
                "2023-03-13T16:41:02.518302",
                'I0313 16:41:02.518302       1 server_others.go:206] "Using iptables Proxier"',
            ),
            cri(
                "2023-03-13T16:41:02.519047",
                'I0313 16:41:02.519047       1 server.go:661] "Version info" version="v1.23.6"',
            ),
            cri(
                "2023-03-13T16:45:02.000001",
                'I0313 16:45:02.000001       1 proxier.go:823] "Syncing iptables rules"',
            ),
        ],
        NODE_B: [
            cri(
                "2023-03-14T17:43:05.100000",
                'I0314 17:43:05.100000       1 server_others.go:212] "Using iptables Proxier"',
            ),
            cri(
                "2023-03-14T17:43:05.100700",
                'I0314 17:43:05.100700       1 server.go:650] "Version info" version="v1.24.10"',
            ),
        ],
    }
    for host, text in lines.items():
        write(f"nodes/{host}/{pods.format(pod=host[-3:])}/0.log", "\n".join(text) + "\n")
    audit = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": "0b7e1a52-5555-4c1e-9b2a-5d6e7f8a9b05",
        "stage": "ResponseComplete",
        "requestURI": (
            "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy?fieldManager=kubectl-set"
        ),
        "verb": "patch",
        "user": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "sourceIPs": ["10.0.12.7"],
        "userAgent": "kubectl/v1.24.10 (linux/amd64) kubernetes/5c1d2d4",
        "objectRef": {
            "resource": "daemonsets",
            "namespace": "kube-system",
            "name": "kube-proxy",
            "apiGroup": "apps",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"image": f"{IMAGE}:v1.24.10-minimal-eksbuild.1", "name": "kube-proxy"}
                        ]
                    }
                }
            }
        },
        "requestReceivedTimestamp": "2023-03-14T17:40:02.118462Z",
        "stageTimestamp": "2023-03-14T17:40:02.131877Z",
    }
    write("audit/kube-apiserver-audit.log", json.dumps(audit, separators=(",", ":")) + "\n")
    loaded = timeline.read(tmp_path)
    assert set(loaded.summary.files["format"]) == {"klog", "k8s-audit"}
    merged = with_inferred_changes(loaded.events)
    changes = merged.filter(pl.col("kind") == "change").sort("ts")
    attrs = [json.loads(a) for a in changes["attrs"]]
    assert [(a["change_type"], a["inferred"]) for a in attrs] == [
        ("restart", True),
        ("deploy", False),
    ]
    assert changes["host"][0] == NODE_A
    assert attrs[0]["witnesses"][0].endswith("kube-proxy/0.log:1")
    assert attrs[1]["seen_in_logs"] is True
    assert attrs[1]["witnesses"][0].endswith("kube-proxy/0.log:1")


def test_a_change_sits_beside_the_line_that_tells_it_and_every_read_is_the_same(write, tmp_path):
    """A change inferred from a log line has that line's time, file and line: the frame
    puts it right after the line, so that two reads of the same files give one frame."""
    pods = "var/log/pods/kube-system_kube-proxy-{pod}_0a1b2c3d/kube-proxy"
    for n in range(24):
        host = f"ip-10-0-{n}-{n + 5}"
        second = f"{n % 60:02d}"
        text = [
            cri(
                f"2023-03-14T17:43:{second}.100000",
                f'I0314 17:43:{second}.100000       1 server_others.go:212] "Using iptables '
                'Proxier"',
            ),
            cri(
                f"2023-03-14T17:43:{second}.100700",
                f'I0314 17:43:{second}.100700       1 server.go:650] "Version info" '
                f'version="v1.24.{10 + n % 2}"',
            ),
        ]
        write(f"nodes/{host}/{pods.format(pod=n)}/0.log", "\n".join(text) + "\n")
    frames = [timeline.read(tmp_path, cache=False).events for _ in range(3)]
    assert frames[0].equals(frames[1]) and frames[1].equals(frames[2])
    events = frames[0].with_row_index()
    changes = events.filter(pl.col("kind") == "change")
    assert changes.height == 24
    told = changes.join(
        events.filter(pl.col("kind") == "log"), on=["ts", "file", "line"], suffix="_log"
    )
    assert told.height == 24
    assert (told["index"] == told["index_log"] + 1).all()


def test_source_lines_tell_the_version_a_host_ran_before_its_first_start():
    f = Frame()
    f.syncing("2023-03-13T09:00:00", NODE_A, "proxier.go:823", 5)
    f.kube_proxy_start("2023-03-13T10:07:19", NODE_A, "v1.24.10", "new")
    f.syncing("2023-03-13T10:07:30", NODE_A, "proxier.go:841", 5)
    f.kube_proxy_start("2023-03-10T08:00:00", NODE_B, "v1.23.6", "old")
    f.syncing("2023-03-10T08:00:30", NODE_B, "proxier.go:823", 5)
    f.syncing("2023-03-13T09:00:00", NODE_C, "proxier.go:823", 5)
    f.syncing("2023-03-13T10:30:00", NODE_C, "proxier.go:841", 5)
    got = {(c["_row"]["host"], c["change_type"]): c for c in inferred(f.frame())}
    upgrade = got[(NODE_A, "upgrade")]
    assert (upgrade["from"], upgrade["to"], upgrade["from_by_callers"]) == (
        "v1.23.6",
        "v1.24.10",
        True,
    )
    alone = got[(NODE_C, "upgrade")]
    assert (alone["from"], alone["to"], alone["versions_by_callers"]) == (
        "v1.23.6",
        "v1.24.10",
        True,
    )
    assert alone["_row"]["message"].startswith("kube-proxy on ip-10-0-3-9 runs another build")


RABBIT = """\
2023-03-12 09:00:02.209953+00:00 [info] <0.230.0>\x20
2023-03-12 09:00:02.209953+00:00 [info] <0.230.0>  Starting RabbitMQ 3.11.8 on Erlang 25.2.2 [jit]
2023-03-12 09:00:02.209953+00:00 [info] <0.230.0>  Copyright (c) 2007-2023 VMware, Inc. or its affiliates.
2023-03-12 09:00:05.512345+00:00 [info] <0.230.0> Server startup complete; 4 plugins started.
2023-03-15 02:50:01.100912+00:00 [info] <0.1215.0> RabbitMQ is asked to stop...
2023-03-15 02:50:03.167938+00:00 [info] <0.1215.0> Successfully stopped RabbitMQ and its dependencies
2023-03-15 02:51:10.209953+00:00 [info] <0.230.0>\x20
2023-03-15 02:51:10.209953+00:00 [info] <0.230.0>  Starting RabbitMQ 3.11.10 on Erlang 25.2.3 [jit]
2023-03-15 02:51:10.209953+00:00 [info] <0.230.0>  Copyright (c) 2007-2023 VMware, Inc. or its affiliates.
2023-03-15 02:51:14.512345+00:00 [info] <0.230.0> Server startup complete; 4 plugins started.
"""

COREDNS = """\
2023-03-14T20:31:05.101234567Z .:53
2023-03-14T20:31:05.101334567Z [INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc490481273e738df5
2023-03-14T20:31:05.101434567Z CoreDNS-1.9.3
2023-03-14T20:31:05.101534567Z linux/amd64, go1.18.2, 45b0a11
2023-03-14T20:40:07.000000000Z [INFO] Reloading
2023-03-14T20:40:07.100000000Z [INFO] plugin/reload: Running configuration SHA512 = 1b2cf328cccc12bc490481273e738df5
2023-03-14T20:40:07.200000000Z [INFO] Reloading complete
"""


def test_rabbitmq_and_coredns_files_through_the_loader(write, tmp_path):
    write("rabbitmq/rabbit@rmq-1.log", RABBIT)
    write("coredns/coredns-5d8f7b9c6d-7xk2q.log", COREDNS)
    loaded = timeline.read(tmp_path)
    assert set(loaded.summary.files["format"]) == {"rabbitmq", "coredns"}
    got = inferred(loaded.events)
    summary = [(c["_row"]["component"], c["change_type"], c.get("from"), c.get("to")) for c in got]
    assert summary == [
        ("rabbit@rmq-1", "restart", None, "3.11.8"),
        ("coredns", "restart", None, "1.9.3"),
        ("coredns", "config", None, None),
        ("rabbit@rmq-1", "upgrade", "3.11.8", "3.11.10"),
    ]
    upgrade = got[3]
    assert upgrade["stopped_at"].startswith("2023-03-15T02:50:01")
    assert upgrade["witnesses"][0].endswith("rabbit@rmq-1.log:5")
    assert got[2]["_row"]["line"] == 5


def test_one_process_writing_a_message_from_two_call_sites_is_no_new_build():
    """kubelet logs ``parsed scheme: ""`` from ``remote_runtime.go`` and, 132 µs later,
    from ``remote_image.go``; kube-proxy its rule-removal error from ``proxier.go:193`` and
    then ``:197`` (real lines, ``tests/data/real/klog``): no build changes in between."""
    real = Path(__file__).parent / "data" / "real" / "klog"
    for name in ("kubelet-startup.log", "kube-proxy-iptables-mode.journal"):
        events = timeline.load(real / name, year=2023, cache=False, workers=1)
        changes = events.filter(pl.col("kind") == "change")
        assert not changes["message"].str.contains("another build").any(), name


# --- caller runs against every row they stand for ---------------------------------------

#: kube-proxy builds: the source line of ``Syncing iptables rules`` and the two call sites
#: that write ``Updating rules for service`` in turn
BUILDS = {
    "v1.23.6": ("proxier.go:823", ("proxier.go:1342", "proxier.go:1401")),
    "v1.24.9": ("proxier.go:838", ("proxier.go:1342", "proxier.go:1401")),
    "v1.24.10": ("proxier.go:841", ("proxier.go:1350", "proxier.go:1409")),
}


def kube_proxy_fleet(seed: int) -> pl.DataFrame:
    """kube-proxy logs of a few hosts, each running builds in turn: some starts say their
    version, some say nothing; a host's log is rotated (``kube-proxy.log.1`` before
    ``kube-proxy.log``) or each pod writes its own file and the old pod's last lines
    interleave with the new one's first; clocks step back now and then; a file's rows
    come in pieces (chunks of one big file read apart), the pieces in any order."""
    rng = random.Random(seed)
    files: dict[str, list[dict]] = {}
    tick = iter(range(1, 10**6))  # no two rows share a time

    def row(ts: datetime, host: str, file: str, caller: str, msg: str, **kv) -> dict:
        pairs = "".join(f' {k}="{v}"' for k, v in kv.items())
        attrs = {"thread": str(rng.randint(1, 9)), "caller": caller, **kv}
        out = {
            "ts": ts + timedelta(microseconds=next(tick)),
            "source": "klog",
            "host": host,
            "component": "kube-proxy",
            "level": "info",
            "kind": "log",
            "message": f'"{msg}"{pairs}',
            "template": msg,
            "attrs": json.dumps(attrs, separators=(",", ":")),
            "file": file,
        }
        files.setdefault(file, []).append(out)
        return out

    hosts = [f"ip-10-0-{rng.randint(1, 9)}-{n}" for n in rng.sample(range(10, 250), 3)]
    for host in hosts:
        pods = rng.random() < 0.5
        t = at("2023-03-13T09:00:00") + timedelta(minutes=rng.randint(0, 30))
        host_rows: list[dict] = []
        old_pod: tuple[str, str, datetime] | None = None
        for _life in range(rng.randint(2, 4)):
            version = rng.choice(list(BUILDS))
            sync, turning = BUILDS[version]
            if pods:
                pod = f"kube-proxy-{rng.randrange(16**5):05x}"
                file = f"pods/{host}/kube-system_{pod}/kube-proxy/0.log"
            else:
                file = f"nodes/{host}/kube-proxy.log"
            if old_pod is not None and pods:
                # the old pod's last lines, after the new one has started
                old_file, old_sync, until = old_pod
                for s in range(rng.randint(0, 6)):
                    row(
                        t + timedelta(seconds=5 * s + 1),
                        host,
                        old_file,
                        old_sync,
                        "Syncing iptables rules",
                    )
            if rng.random() < 0.8:
                host_rows.append(
                    row(t, host, file, "server_others.go:206", "Using iptables Proxier")
                )
                if rng.random() < 0.7:
                    host_rows.append(
                        row(t, host, file, "server.go:661", "Version info", version=version)
                    )
            clock = t
            for n in range(rng.randint(15, 60)):
                clock += timedelta(seconds=rng.uniform(1, 45))
                stamp = (
                    clock - timedelta(seconds=rng.uniform(1, 90)) if rng.random() < 0.05 else clock
                )
                kind = rng.random()
                if kind < 0.5:
                    host_rows.append(row(stamp, host, file, sync, "Syncing iptables rules"))
                elif kind < 0.8:
                    caller = turning[n % 2] if rng.random() < 0.7 else turning[0]
                    host_rows.append(row(stamp, host, file, caller, "Updating rules for service"))
                else:
                    host_rows.append(
                        row(stamp, host, file, "proxier.go:900", "Syncing ipset rules")
                    )
            old_pod = (file, sync, clock)
            t = clock + timedelta(minutes=rng.randint(3, 40), seconds=rng.uniform(0, 59))
        if not pods and host_rows:
            # rotated: the older lines are kube-proxy.log.1, numbered from 1 again
            cut = rng.randint(0, len(host_rows))
            name = f"nodes/{host}/kube-proxy.log"
            for r in host_rows[:cut]:
                r["file"] = name + ".1"
            files[name + ".1"] = host_rows[:cut]
            files[name] = host_rows[cut:]
    pieces = []
    for rows in files.values():
        for number, r in enumerate(rows, start=1):
            r["line"] = number
        cuts = (
            sorted(rng.sample(range(1, len(rows)), min(2, len(rows) - 1))) if len(rows) > 1 else []
        )
        bounds = [0, *cuts, len(rows)]
        pieces.extend(rows[a:b] for a, b in zip(bounds, bounds[1:], strict=False))
    rng.shuffle(pieces)
    return pl.DataFrame([r for p in pieces for r in p], schema=EVENT_SCHEMA, orient="row")


def reference_runs(frame: pl.DataFrame) -> dict[tuple, list[dict]]:
    """Per host, component and template, every row naming a caller in time and line order,
    cut into runs of one caller (the templates with one caller included: they never
    switch)."""
    groups: dict[tuple, list[dict]] = {}
    for r in frame.sort("ts", "line").iter_rows(named=True):
        caller = json.loads(r["attrs"]).get("caller")
        if r["kind"] != "log" or r["template"] is None or caller is None:
            continue
        key = (r["host"] or "?", r["component"] or r["source"] or "?", r["template"])
        runs = groups.setdefault(key, [])
        if runs and runs[-1]["caller"] == caller:
            runs[-1]["end"] = r["ts"]
        else:
            runs.append({**r, "caller": caller, "start": r["ts"], "end": r["ts"]})
    return groups


def reference_switches(frame: pl.DataFrame, window: timedelta) -> set[tuple]:
    """:func:`caller_switches` as its docstring says it, row by row."""
    found = set()
    for (host, component, template), runs in reference_runs(frame).items():
        for i in range(1, len(runs)):
            old, new = runs[i - 1], runs[i]
            t = new["start"]
            clean_before = i < 2 or runs[i - 2]["end"] < t - window
            clean_after = i + 1 == len(runs) or runs[i + 1]["start"] > t + window
            if clean_before and clean_after and t - old["end"] >= timedelta(seconds=1):
                returned = any(r["caller"] == new["caller"] for r in runs[:i])
                found.add(
                    (
                        host,
                        component,
                        new["source"],
                        template,
                        t,
                        new["file"],
                        new["line"],
                        old["caller"],
                        new["caller"],
                        old["end"],
                        returned,
                    )
                )
    return found


def switch_set(switches: pl.DataFrame) -> set[tuple]:
    return {
        (
            r["host"] or "?",
            r["component"],
            r["source"],
            r["template"],
            r["ts"],
            r["file"],
            r["line"],
            r["old_caller"],
            r["new_caller"],
            r["old_last_ts"],
            r["returned"],
        )
        for r in switches.cast(
            {c: pl.String for c in ["component", "source", "template", "old_caller", "new_caller"]}
        ).iter_rows(named=True)
    }


def reference_versions(frame: pl.DataFrame, starts: pl.DataFrame) -> dict[tuple, tuple]:
    """Per component, template and caller (of templates with more than one caller), the
    version of the start each of its rows follows on its host, when all agree."""
    seen: dict[tuple, set] = {}
    callers: dict[tuple, set] = {}
    for (_host, component, template), runs in reference_runs(frame).items():
        for run in runs:
            callers.setdefault((component, template), set()).add(run["caller"])
    starts_by = {}
    for s in starts.iter_rows(named=True):
        starts_by.setdefault((s["host"], s["component"]), []).append(s)
    for r in frame.iter_rows(named=True):
        caller = json.loads(r["attrs"]).get("caller")
        if r["kind"] != "log" or r["template"] is None or caller is None:
            continue
        host, component = r["host"] or "?", r["component"] or r["source"] or "?"
        if len(callers[(component, r["template"])]) < 2:
            continue
        before = [s for s in starts_by.get((host, component), []) if s["ts"] <= r["ts"]]
        if before:
            last = max(before, key=lambda s: s["ts"])
            key = (component, r["template"], caller)
            seen.setdefault(key, set()).add((last["scheme"], last["version"]))
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


@pytest.mark.parametrize("seed", range(40))
def test_caller_runs_and_versions_are_those_of_every_row(seed, monkeypatch):
    from timeline.reading import changes

    frame = kube_proxy_fleet(seed)
    # the query is reduced a few rows at a time: stretches cut at every chunk's edge
    monkeypatch.setattr(changes, "CALLER_CHUNK", random.Random(seed).choice([3, 7, 50, 1 << 18]))
    window = random.Random(seed).choice([timedelta(seconds=30), timedelta(minutes=10)])
    assert switch_set(caller_switches(frame, window=window)) == reference_switches(frame, window)
    witnesses = changes._witness_rows(frame)
    episodes = changes._episodes(witnesses, episode_gap=timedelta(minutes=2), window=window)
    starts = changes._version_starts(episodes)
    rows = changes._caller_rows(frame, starts=starts)
    assert switch_set(changes._switches(rows, window=window)) == reference_switches(frame, window)
    assert changes._caller_versions(rows, starts) == reference_versions(frame, starts)
    # the rows kept follow the runs: far fewer than the rows
    assert rows.height < frame.height


def test_a_file_written_beside_another_callers_file_keeps_the_lines_that_end_its_runs():
    """The old build's file goes quiet while another file of the host writes the template
    from another source line for two minutes, then goes on: the old build's run ends at
    its last line before the other file's first, though only the first and last lines of
    its stretch were read at first."""
    f = Frame()
    for s in range(0, 1800, 10):
        if not 600 <= s < 730:
            stamp = (at("2023-03-14T10:00:00") + timedelta(seconds=s)).isoformat()
            f.add(
                stamp,
                '"Syncing iptables rules"',
                file=f"nodes/{NODE_A}/kube-proxy.log",
                source="klog",
                host=NODE_A,
                component="kube-proxy",
                template="Syncing iptables rules",
                attrs='{"caller":"proxier.go:823"}',
            )
    for s in range(600, 725, 10):
        stamp = (at("2023-03-14T10:00:00") + timedelta(seconds=s)).isoformat()
        f.add(
            stamp,
            '"Syncing iptables rules"',
            file=f"pods/{NODE_A}/kube-proxy-7xk2p/0.log",
            source="klog",
            host=NODE_A,
            component="kube-proxy",
            template="Syncing iptables rules",
            attrs='{"caller":"proxier.go:841"}',
        )
    got = caller_switches(f.frame(), window=timedelta(seconds=30)).sort("ts")
    assert got["new_caller"].cast(pl.String).to_list() == ["proxier.go:841", "proxier.go:823"]
    assert got["old_last_ts"].to_list() == [at("2023-03-14T10:09:50"), at("2023-03-14T10:12:00")]
    assert got["returned"].to_list() == [False, True]
    assert got["line"].to_list() == [1, 61]


def test_a_source_line_logged_across_starts_of_two_versions_names_neither():
    """``proxier.go:823`` goes on through a rollback and an upgrade back (the same line in
    both builds): its lines follow starts of two versions, so it names neither, though
    its first and last lines both follow a v1.24.9 start."""
    f = Frame()
    f.kube_proxy_start("2023-03-14T10:00:00", NODE_A, "v1.24.9", "new")
    f.syncing("2023-03-14T10:01:00", NODE_A, "proxier.go:823", 25)
    f.kube_proxy_start("2023-03-14T10:30:00", NODE_A, "v1.23.6", "old")
    f.syncing("2023-03-14T10:31:00", NODE_A, "proxier.go:823", 25)
    f.kube_proxy_start("2023-03-14T11:00:00", NODE_A, "v1.24.9", "new")
    f.syncing("2023-03-14T11:01:00", NODE_A, "proxier.go:823", 25)
    f.kube_proxy_start("2023-03-14T10:00:00", NODE_B, "v1.24.10", "new")
    f.syncing("2023-03-14T10:01:00", NODE_B, "proxier.go:841", 25)
    from timeline.reading import changes

    frame = f.frame()
    episodes = changes._episodes(
        changes._witness_rows(frame), episode_gap=timedelta(minutes=2), window=timedelta(minutes=10)
    )
    starts = changes._version_starts(episodes)
    learned = changes._caller_versions(changes._caller_rows(frame, starts=starts), starts)
    assert learned == reference_versions(frame, starts)
    assert ("kube-proxy", "Syncing iptables rules", "proxier.go:823") not in learned
    assert learned[("kube-proxy", "Syncing iptables rules", "proxier.go:841")] == (
        "kubernetes",
        "v1.24.10",
    )
