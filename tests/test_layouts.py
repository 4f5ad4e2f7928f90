"""Bundle and node layouts: whose log a file is, from where it sits."""

from __future__ import annotations

import json

import polars as pl
import pytest

import timeline
from parsers import layouts
from timeline.reading import loader

UID = "5e0c3a1f-8d2b-4f6e-9a7c-1b2d3e4f5a6b"
DOCKER_ID = "28b3cc46d6750edad33ece61f70b0a4feb09f9d811ab98763c1a248b8d5a32c7"


@pytest.mark.parametrize(
    ("path", "node", "namespace", "pod", "container", "layout"),
    [
        (
            f"incident/kube-system_kube-proxy-x7k2p_{UID}/kube-proxy/0.log",
            None,
            "kube-system",
            "kube-proxy-x7k2p",
            "kube-proxy",
            "kubelet-copied",
        ),
        (
            f"kube-system_coredns-5d78c9869d-abcde_{UID.replace('-', '')}/coredns/3.log.20230314-180001.gz",
            None,
            "kube-system",
            "coredns-5d78c9869d-abcde",
            "coredns",
            "kubelet-copied",
        ),
        (
            "cluster-state/kube-system/ebs-csi-node-7kq2n/logs.txt",
            None,
            "kube-system",
            "ebs-csi-node-7kq2n",
            None,
            "cluster-info-dump",
        ),
        (
            "must-gather.local.5528/quay-io-openshift-release-dev-ocp-v4-0-art-dev-sha256-7f1a/"
            "namespaces/openshift-dns/pods/dns-default-x2v9q/dns/dns/logs/current.log",
            None,
            "openshift-dns",
            "dns-default-x2v9q",
            "dns",
            "must-gather",
        ),
        (
            "must-gather.local.5528/quay-io-ocp-sha256-7f1a/nodes/worker-2.lab.example/"
            "worker-2.lab.example_logs_kubelet.log",
            "worker-2.lab.example",
            None,
            None,
            None,
            "nodes",
        ),
        (
            "sosreport-ip-10-0-1-5-2023-03-14-qxmbvzf/var/log/messages",
            "ip-10-0-1-5",
            None,
            None,
            None,
            "sosreport",
        ),
        (
            "sosreport-db01-04567123-2023-03-14-abcdefg/sos_commands/logs/journalctl_--no-pager",
            "db01",
            None,
            None,
            None,
            "sosreport",
        ),
        (
            "agent-3/var/lib/rancher/k3s/agent/containerd/containerd.log",
            "agent-3",
            None,
            None,
            None,
            "node, k3s",
        ),
        (
            "server-1/var/lib/rancher/rke2/agent/logs/kubelet.log",
            "server-1",
            None,
            None,
            None,
            "node, rke2",
        ),
        (
            f"ip-10-42-33-18.eu-west-1.compute.internal/var/lib/docker/containers/{DOCKER_ID}/"
            f"{DOCKER_ID}-json.log",
            "ip-10-42-33-18.eu-west-1.compute.internal",
            None,
            None,
            None,
            "node",
        ),
        ("support/172.20.1.2/kubelet.log", "172.20.1.2", None, None, None, "talos"),
        # the EKS log collector copies the kubelet's links into var_log/, by their names,
        # in a bundle named by the instance id (which stands for the node until the
        # bundle's kubelet journal names it: tests/test_eks_log_collector.py)
        (
            f"eks_i-0a1b2c3d4e5f60718_2024-06-20_1102-UTC_0.7.8/var_log/"
            f"kube-proxy-qv4f2_kube-system_kube-proxy-{DOCKER_ID}.log",
            "i-0a1b2c3d4e5f60718",
            "kube-system",
            "kube-proxy-qv4f2",
            "kube-proxy",
            "eks-log-collector, kubelet-containers",
        ),
        (
            f"node-logs/coredns-7db6d8ff4d-5xkq8_kube-system_coredns-{DOCKER_ID}.log.gz",
            None,
            "kube-system",
            "coredns-7db6d8ff4d-5xkq8",
            "coredns",
            "kubelet-containers",
        ),
        ("rabbitmq/rabbit@rmq-1.log", None, None, None, None, None),
        (
            "incident-4411/checkout-api-7d9f8c6b54-q2x7w.log",
            None,
            None,
            None,
            "checkout-api",
            "kubectl-logs",
        ),
        (
            "logs/kube-system_kube-proxy-zb9vk.previous.log",
            None,
            "kube-system",
            None,
            "kube-proxy",
            "kubectl-logs",
        ),
        (
            "nodes/gke-main-pool-3f2a/ingress-nginx-controller-5c8d9bdf4-hvw6t_previous.txt.gz",
            "gke-main-pool-3f2a",
            None,
            None,
            "ingress-nginx-controller",
            "nodes, kubectl-logs",
        ),
        # a StatefulSet's ordinal, a process id, a word: no pod's random suffix
        ("dumps/rabbitmq-server-0.log", None, None, None, None, None),
        ("tmp/app-server-25689.log", None, None, None, None, None),
        ("build/server-debug.log", None, None, None, None, None),
    ],
)
def test_layouts_say_node_pod_and_container(path, node, namespace, pod, container, layout):
    hints = layouts.hints_from_path(path)
    assert (hints.node, hints.namespace, hints.pod, hints.container) == (
        node,
        namespace,
        pod,
        container,
    )
    assert hints.layout == layout


SYNC = (
    'E0314 18:{m:02d}:01.123456       1 proxier.go:1508] "Failed to execute iptables-restore" '
    'err="exit status 1"\n'
)


def cri(lines: str, minute: int = 0) -> str:
    return "".join(
        f"2023-03-14T18:{minute:02d}:{i:02d}.5Z stderr F {line}\n"
        for i, line in enumerate(lines.splitlines())
    )


def test_pod_folder_copied_out_alone_gives_host_and_source(read):
    name = f"copied/monitoring_node-exporter-8fj2k_{UID}/kube-rbac-proxy/0.log"
    loaded = read(name, cri("".join(SYNC.format(m=m) for m in range(3))))
    events = loaded.events
    assert set(events["host"]) == {"node-exporter-8fj2k"}
    # a generic klog program is named by its container folder, not "klog"
    assert set(events["source"]) == {"kube-rbac-proxy"}
    assert set(events["component"]) == {"kube-rbac-proxy"}


def test_kubectl_logs_saved_by_pod_name_give_the_program(write):
    """``kubectl logs --timestamps POD > POD.log`` for a few pods in one folder: each file's
    program is its workload's name, where the lines do not name it; its host stays
    unknown, as nothing names the pod's node."""
    logrus = (
        '{t} time="{t}" level=error msg="publish failed" queue=orders.created '
        'err="connection blocked"\n'
    )
    times = [f"2024-02-06T09:4{i}:0{i}.51{i}Z" for i in range(3)]
    write("dump/order-api-5f6d8b7c9-4fp77.log", "".join(logrus.format(t=t) for t in times))
    write("dump/payments-worker-79c5d4f6b8-nq2zk.previous.log", logrus.format(t=times[0]))
    folder = write("dump/kube-proxy-zb9vk.log", cri(SYNC.format(m=1))).parent
    loaded = timeline.read(folder, infer=False, cache=False)
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    shown = loaded.events.select(pl.col("file").str.extract(r"([^/]+)$"), "component").unique()
    assert dict(shown.rows()) == {
        "order-api-5f6d8b7c9-4fp77.log": "order-api",
        "payments-worker-79c5d4f6b8-nq2zk.previous.log": "payments-worker",
        "kube-proxy-zb9vk.log": "kube-proxy",
    }
    assert loaded.events["host"].null_count() == loaded.events.height


@pytest.mark.parametrize("dump", ["kubectl", "saved"])
def test_a_pods_saved_log_and_its_nodes_copy_each_keep_their_own_prefix(write, dump):
    """The same container's ``kubectl logs --timestamps`` file and a node's CRI file, read
    together: the time-only prefix that the saved log carries is not taken for the CRI
    prefix, which also begins with a time."""
    error = (
        "[ERROR] plugin/errors: 2 registry.npmjs.org. A: read udp "
        "10.244.1.7:41532->10.96.0.10:53: i/o timeout"
    )
    stamps = [f"2024-04-09T11:3{i}:0{i}.41{i}000000Z" for i in range(4)]
    write(f"{dump}/coredns-6f9c7b8d4-p8mdx.log", "".join(f"{t} {error}\n" for t in stamps))
    pod = f"nodes/aks-sys-1/var/log/pods/kube-system_coredns-6f9c7b8d4-k2vzq_{UID}/coredns"
    folder = write(f"{pod}/0.log", "".join(f"{t} stdout F {error}\n" for t in stamps)).parents[7]
    loaded = timeline.read(folder, infer=False, cache=False)
    files = loaded.summary.files.sort("file")
    expected = ["cri" if "/nodes/" in f else "kubectl-timestamps" for f in files["file"]]
    assert files["prefix"].to_list() == expected
    events = loaded.events
    assert events.height == 8 and set(events["level"]) == {"error"}
    assert set(events["message"].str.head(14)) == {"plugin/errors:"}


def test_a_docker_nodes_json_file_logs_name_the_node(read):
    """A node's /var/lib/docker copied as it is: dockerd's json-file lines of CoreDNS,
    which name neither node nor pod, are the node's."""
    lines = [
        ("2024-05-21T14:02:52.188305121Z", "[INFO] Reloading"),
        ("2024-05-21T14:02:52.398811470Z", "[INFO] Reloading complete"),
        (
            "2024-05-21T14:03:07.551093884Z",
            "[ERROR] plugin/errors: 2 api.stripe.com. A: read udp "
            "10.42.40.12:48213->10.99.0.2:53: i/o timeout",
        ),
    ]
    # dockerd writes with Go's encoder, which escapes ">" as \u003e
    text = "".join(
        json.dumps(
            {"log": f"{message}\n", "stream": "stdout", "time": stamp}, separators=(",", ":")
        ).replace(">", "\\u003e")
        + "\n"
        for stamp, message in lines
    )
    node = "ip-10-42-51-96.eu-west-1.compute.internal"
    loaded = read(f"{node}/var/lib/docker/containers/{DOCKER_ID}/{DOCKER_ID}-json.log", text)
    events = loaded.events.sort("line")
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    assert events["source"].to_list() == ["coredns"] * 3
    assert events["host"].to_list() == [node] * 3
    assert events["level"].to_list()[-1] == "error"
    assert "10.42.40.12:48213->10.99.0.2:53" in events["message"][-1]


CLUSTER_INFO_DUMP = """\
==== START logs for container ebs-plugin of pod kube-system/ebs-csi-node-7kq2n ====
I0314 17:58:02.113542       1 driver.go:73] "Driver Information" Driver="ebs.csi.aws.com" Version="v1.16.0"
E0314 18:00:31.204771       1 node.go:164] "NodeStageVolume: failed to find device" volumeID="vol-0a1b2c3d"
==== END logs for container ebs-plugin of pod kube-system/ebs-csi-node-7kq2n ====
==== START logs for container node-driver-registrar of pod kube-system/ebs-csi-node-7kq2n ====
I0314 17:58:01.500120       1 main.go:167] Version: v2.7.0
I0314 17:58:01.500190       1 main.go:168] Running node-driver-registrar in mode=registration
==== END logs for container node-driver-registrar of pod kube-system/ebs-csi-node-7kq2n ====
"""


def test_cluster_info_dump_sections_name_each_container(read):
    loaded = read("cluster-state/kube-system/ebs-csi-node-7kq2n/logs.txt", CLUSTER_INFO_DUMP)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "cluster-info-dump"
    assert files["wrapper_lines"] == 4 and files["unparsed_lines"] == 0
    events = loaded.events.sort("line")
    assert events["component"].to_list() == ["ebs-plugin"] * 2 + ["node-driver-registrar"] * 2
    assert set(events["host"]) == {"ebs-csi-node-7kq2n"}
    assert events["level"].to_list() == ["info", "error", "info", "info"]


def test_talosctl_logs_and_dmesg_name_the_node(read):
    text = (
        "172.20.1.2: kern:    info: [2023-03-14T18:00:01.662764956Z]: Linux version 6.1.28-talos\n"
        "172.20.1.2: kern: warning: [2023-03-14T18:00:02.100000000Z]: nvme nvme0: I/O 12 QID 3 "
        "timeout, aborting\n"
        "172.20.1.3: kern:     err: [2023-03-14T18:00:03.250000000Z]: EXT4-fs error (device "
        "sda1): ext4_find_entry:1463: inode #2: comm kubelet: reading directory lblock 0\n"
    )
    loaded = read("dmesg.txt", text)
    assert loaded.summary.files["prefix"].to_list() == ["talosctl > kmsg"]
    events = loaded.events.sort("line")
    assert events["host"].to_list() == ["172.20.1.2", "172.20.1.2", "172.20.1.3"]
    assert events["level"].to_list() == ["info", "warning", "error"]
    assert events["source"].to_list() == ["kern"] * 3
    assert events["ts"].dt.second().to_list() == [1, 2, 3]


def test_detect_says_the_layout(write):
    path = write(
        f"monitoring_node-exporter-8fj2k_{UID}/kube-rbac-proxy/0.log", cri(SYNC.format(m=0))
    )
    found = loader.detect(str(path))
    assert found["format"] == "klog"
    assert "kubelet-copied layout" in found["why"]


def test_a_host_that_cannot_be_known_is_said(read):
    loaded = read("kube-proxy.log", SYNC.format(m=0), year=2023)
    assert loaded.events["host"].null_count() == 1
    hosts = loaded.summary.assumptions.filter(pl.col("what") == "host")
    assert hosts["value"].to_list() == ["unknown"]
