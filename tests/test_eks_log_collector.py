"""EKS log collector bundles (``eks-log-collector.sh``): a node's files sit in a folder or
tarball named by its EC2 instance id, and its pod logs are the node's by the hostname the
bundle's kubelet journal names, as change records and Kubernetes events name the node."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import polars as pl

import timeline
from parsers import layouts
from timeline.analysis.contributors import change_events

UID = "5e0c3a1f-8d2b-4f6e-9a7c-1b2d3e4f5a6b"
CONTAINER_ID = "28b3cc46d6750edad33ece61f70b0a4feb09f9d811ab98763c1a248b8d5a32c7"
SYNC_FAILED = (
    'E0314 18:{m:02d}:{s:02d}.123456       1 proxier.go:1508] "Failed to execute '
    'iptables-restore" err="exit status 1 (iptables-restore: line 7 failed)"'
)
KUBELET = (
    'I0314 18:00:{s:02d}.654321    3456 kubelet.go:2198] "SyncLoop (PLEG): event for pod" '
    'pod="kube-system/kube-proxy-{pod}" event={{"Type":"ContainerStarted"}}'
)


def kube_proxy_lines(minutes: range) -> list[tuple[str, str]]:
    return [
        (f"2023-03-14T18:{m:02d}:{s:02d}.5{s}Z", SYNC_FAILED.format(m=m, s=s))
        for m in minutes
        for s in (1, 31)
    ]


def cri(lines: list[tuple[str, str]]) -> str:
    return "".join(f"{t} stderr F {line}\n" for t, line in lines)


def docker_json(lines: list[tuple[str, str]]) -> str:
    return "".join(
        json.dumps({"log": line + "\n", "stream": "stderr", "time": t}) + "\n" for t, line in lines
    )


def journal(hostname: str, pod: str) -> str:
    """``journalctl --unit=kubelet`` as the collector saves it: a header, then lines that
    carry the hostname."""
    header = (
        "-- Logs begin at Tue 2023-03-14 17:00:00 UTC, end at Tue 2023-03-14 18:05:00 UTC. --\n"
    )
    return header + "".join(
        f"Mar 14 18:00:{s:02d} {hostname} kubelet[3456]: {KUBELET.format(s=s, pod=pod)}\n"
        for s in (0, 5, 9)
    )


def bundle_files(
    instance: str,
    hostname: str | None,
    *,
    pod: str = "x7k2p",
    runtime: str = "containerd",
    minutes: range = range(3),
) -> dict[str, str]:
    """A node's bundle as the collector lays it out (paths inside its folder): kube-proxy's
    log copied from /var/log/containers and /var/log/pods into var_log/, the kubelet
    journal (left out without ``hostname``), and system files."""
    lines = kube_proxy_lines(minutes)
    log = cri(lines) if runtime == "containerd" else docker_json(lines)
    files = {
        f"var_log/kube-proxy-{pod}_kube-system_kube-proxy-{CONTAINER_ID}.log": log,
        f"var_log/kube-system_kube-proxy-{pod}_{UID}/kube-proxy/0.log": log,
        "system/instance-id.txt": instance + "\n",
        "system/availability-zone.txt": "us-east-1a\n",
    }
    if hostname:
        files["kubelet/kubelet.log"] = journal(hostname, pod)
    return files


def write_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def write_tarball(path: Path, files: dict[str, str]) -> Path:
    """Packed as the collector packs it: ``tar --gzip --directory=COLLECT_DIR .``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"./{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path


def hosts_by_source(loaded: timeline.Loaded) -> dict[tuple[str, str], set[str]]:
    """The hosts of each bundle's (instance id's) rows of each source."""
    rows = loaded.events.with_columns(
        bundle=pl.col("file").str.extract(r"(i-[0-9a-f]+)_"),
    )
    grouped = rows.group_by("bundle", "source").agg(pl.col("host").unique())
    return {(b, s): set(h) for b, s, h in grouped.iter_rows()}


def test_a_bundles_folder_names_its_instance_and_its_var_log_the_pods():
    hints = layouts.hints_from_path(
        f"eks_i-0abc123def4567890_2023-03-14_1805-UTC_0.7.6/var_log/"
        f"kube-proxy-x7k2p_kube-system_kube-proxy-{CONTAINER_ID}.log"
    )
    assert (hints.node, hints.pod, hints.container) == (
        "i-0abc123def4567890",
        "kube-proxy-x7k2p",
        "kube-proxy",
    )
    assert hints.layout == "eks-log-collector, kubelet-containers"
    packed = layouts.hints_from_path(
        "logs/eks_i-0abc1234_2022-11-02_0912-UTC_0.6.2.tar.gz/var_log/"
        f"kube-system_kube-proxy-x7k2p_{UID}/kube-proxy/0.log"
    )
    assert (packed.node, packed.layout) == ("i-0abc1234", "eks-log-collector, kubelet-copied")
    # an instance id alone is no bundle: nothing the collector writes is under it
    assert layouts.hints_from_path("i-0abc1234/app.log").node is None


def test_two_bundles_side_by_side_name_their_pod_logs_by_each_nodes_hostname(tmp_path):
    nodes = {
        "i-0abc123def4567890": "ip-192-168-12-34.ec2.internal",
        "i-0fed987cba6543210": "ip-192-168-40-7.ec2.internal",
    }
    for (instance, hostname), pod, stamp in zip(
        nodes.items(),
        ["x7k2p", "m9q4z"],
        ["2023-03-14_1805-UTC_0.7.6", "2023-03-14_1811-UTC_0.7.6"],
        strict=True,
    ):
        write_folder(
            tmp_path / f"eks_{instance}_{stamp}", bundle_files(instance, hostname, pod=pod)
        )
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    assert hosts_by_source(loaded) == {
        (instance, source): {hostname}
        for instance, hostname in nodes.items()
        for source in ("kube-proxy", "kubelet")
    }
    said = loaded.summary.assumptions.filter(pl.col("what") == "host")
    assert sorted(said["value"]) == sorted(nodes.values())
    assert set(said["certainty"]) == {"stated"}


def test_a_tarball_bundle_is_read_as_its_folder(tmp_path):
    name = "eks_i-0abc123def4567890_2023-03-14_1805-UTC_0.7.6.tar.gz"
    files = bundle_files("i-0abc123def4567890", "ip-192-168-12-34.ec2.internal")
    loaded = timeline.read(write_tarball(tmp_path / "bundles" / name, files), infer=False)
    assert hosts_by_source(loaded) == {
        ("i-0abc123def4567890", "kube-proxy"): {"ip-192-168-12-34.ec2.internal"},
        ("i-0abc123def4567890", "kubelet"): {"ip-192-168-12-34.ec2.internal"},
    }


def test_a_bundles_two_copies_of_a_pod_log_are_read_once_packed_or_not(tmp_path):
    """The collector's tarball holds kube-proxy's log twice (from /var/log/containers
    and from /var/log/pods), and the SRE unpacked it beside itself: four copies of one
    log. Its errors are counted once, from the pods copy of the folder (the shorter
    name); every other copy is said, in the archive's name for its own."""
    stem = "eks_i-0abc123def4567890_2023-03-14_1805-UTC_0.7.6"
    files = bundle_files("i-0abc123def4567890", "ip-192-168-12-34.ec2.internal")
    tarball = write_tarball(tmp_path / f"{stem}.tar.gz", files)
    alone = timeline.read(tarball, infer=False, cache=False)
    errors = alone.events.filter(pl.col("level") == "error")
    assert errors.height == 6 and set(errors["file"]) == {
        f"{tarball}/var_log/kube-system_kube-proxy-x7k2p_{UID}/kube-proxy/0.log"
    }
    write_folder(tmp_path / stem, files)
    beside = timeline.read(tmp_path, infer=False, cache=False)
    kept = f"{tmp_path / stem}/var_log/kube-system_kube-proxy-x7k2p_{UID}/kube-proxy/0.log"
    errors = beside.events.filter(pl.col("level") == "error")
    assert errors.height == 6 and set(errors["file"]) == {kept}
    said = beside.summary.files.filter(pl.col("problem").str.starts_with("the same content as"))
    assert said.height == 3 + 3  # the journal and two system files are copies too
    assert set(said.filter(pl.col("file").str.contains("kube-proxy"))["problem"]) == {
        f"the same content as {kept}: read once"
    }


def test_a_bundle_without_a_kubelet_journal_is_its_instances(tmp_path):
    """An older collector version's tarball beside a folder bundle whose kubelet journal
    is missing: the latter's rows keep the instance id, and that is said."""
    write_tarball(
        tmp_path / "eks_i-0abc1234_2022-11-02_0912-UTC_0.6.2.tar.gz",
        bundle_files("i-0abc1234", "ip-10-0-3-21.us-west-2.compute.internal", runtime="docker"),
    )
    write_folder(
        tmp_path / "eks_i-0fed987cba6543210_2023-03-14_1811-UTC_0.7.9",
        bundle_files("i-0fed987cba6543210", None, pod="m9q4z"),
    )
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    assert hosts_by_source(loaded) == {
        ("i-0abc1234", "kube-proxy"): {"ip-10-0-3-21.us-west-2.compute.internal"},
        ("i-0abc1234", "kubelet"): {"ip-10-0-3-21.us-west-2.compute.internal"},
        ("i-0fed987cba6543210", "kube-proxy"): {"i-0fed987cba6543210"},
    }
    unnamed = loaded.summary.assumptions.filter(
        (pl.col("what") == "host") & (pl.col("value") == "i-0fed987cba6543210")
    )
    assert unnamed.height == 1 and unnamed["certainty"][0] == "guess"
    assert "instance id" in unnamed["basis"][0]


def test_other_layouts_are_not_looked_at_for_a_bundles_node(tmp_path):
    """A node's own /var/log keeps the node its folder names, and a kubelet journal
    outside a bundle names no other file's host."""
    write_folder(
        tmp_path,
        {
            "ip-10-0-1-5/var/log/kubelet.log": journal("ip-10-0-1-5.ec2.internal", "x7k2p"),
            f"ip-10-0-1-6/var/log/pods/kube-system_kube-proxy-m9q4z_{UID}/kube-proxy/0.log": cri(
                kube_proxy_lines(range(2))
            ),
        },
    )
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    assert set(loaded.events.filter(pl.col("source") == "kube-proxy")["host"]) == {"ip-10-0-1-6"}
    assert loaded.summary.assumptions.filter(pl.col("what") == "host").height == 0


def test_a_node_group_upgrade_names_the_nodes_whose_kube_proxy_failed(tmp_path):
    """Three nodes' bundles and a change log whose node-group upgrade names two of them
    by hostname: the nodes the upgrade touched are the hosts of the kube-proxy errors,
    and the third node, untouched and quiet, is a host of its own."""
    nodes = {
        "i-0abc123def4567890": ("ip-192-168-12-34.ec2.internal", range(10, 14)),
        "i-0fed987cba6543210": ("ip-192-168-40-7.ec2.internal", range(11, 15)),
        "i-0123456789abcdef0": ("ip-192-168-77-2.ec2.internal", range(0)),
    }
    for (instance, (hostname, minutes)), pod in zip(
        nodes.items(), ["x7k2p", "m9q4z", "b2w8n"], strict=True
    ):
        files = bundle_files(instance, hostname, pod=pod, minutes=minutes)
        write_folder(tmp_path / f"eks_{instance}_2023-03-14_1830-UTC_0.7.6", files)
    touched = [hostname for hostname, minutes in nodes.values() if minutes]
    (tmp_path / "changes.csv").write_text(
        "time,type,target,description,from,to,actor\n"
        + "".join(
            f"2023-03-14 18:0{i},upgrade,node/{h},Node group ng-1 to 1.25,1.24,1.25,eks\n"
            for i, h in enumerate(touched)
        )
    )
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    events = loaded.events
    errors = events.filter((pl.col("source") == "kube-proxy") & (pl.col("level") == "error"))
    upgraded = change_events(events)
    assert set(errors["host"]) == set(touched)
    assert set(upgraded.explode("hosts")["hosts"]) == set(touched)
    assert set(upgraded["node"]) == set(touched)
    assert set(events.filter(pl.col("source") == "kubelet")["host"]) == {
        h for h, _ in nodes.values()
    }
