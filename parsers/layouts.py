r"""Where a log file sits says whose it is: the layouts of nodes, bundles and dumps.

A file's path is read once, not once per line. Each layout names what it knows:

==========================  =============================================================
``kubelet``                 ``<node>/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log``,
                            also copied out alone (``<ns>_<pod>_<uid>/<container>/0.log``)
``kubelet-containers``      ``/var/log/containers/<pod>_<ns>_<container>-<id>.log``, also
                            copied elsewhere (the EKS log collector's ``var_log/``)
``cluster-info-dump``       ``kubectl cluster-info dump --output-directory``:
                            ``<ns>/<pod>/logs.txt`` (each container's section is named
                            inside the file, see :mod:`parsers.wrappers`)
``must-gather``             ``namespaces/<ns>/pods/<pod>/<container>/<container>/logs/
                            current.log``; ``nodes/<node>/...``
``sosreport``               ``sosreport-<host>-[<case>-]<date>-<random>/var/log/messages``
``k3s``, ``rke2``           ``<node>/var/lib/rancher/{k3s,rke2}/agent/...`` (``containerd.log``,
                            ``logs/kubelet.log``)
``talos``                   ``talosctl support``: a folder named by the node's address
``eks-log-collector``       ``eks-log-collector.sh``: a folder or tarball named by the EC2
                            instance id (``eks_<instance-id>_<date>_<time>-UTC_<version>``),
                            which stands for the node until the bundle's kubelet journal
                            names it (:data:`BUNDLE_NODE_FILES`); pod logs copied to
                            ``var_log/`` as ``kubelet-containers`` and ``kubelet-copied``
``node``                    ``<node>/var/log/...``, and a Docker node's
                            ``<node>/var/lib/docker/containers/<id>/<id>-json.log``
``kubectl-logs``            ``kubectl logs POD > POD.log``: a file named by a pod of a
                            Deployment (``<name>-<hash>-<suffix>``) or a DaemonSet
                            (``<name>-<suffix>``), maybe ``<ns>_`` before it and
                            ``.previous`` after it: the container is taken to be
                            ``<name>``; the host stays unknown, as no folder names the node
==========================  =============================================================

The node comes from the nearest folder that names one (``<node>/var/log``,
``<node>/var/lib/docker``, ``nodes/<node>``,
a sosreport's name, an address); the program, where the format does not say, from the
container folder or the file's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.common import NAMELESS

_UID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}"
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: The alphabet of the random parts Kubernetes adds to pod names (no vowels, no 0, 1, 3).
K8S_RANDOM = "[bcdfghjklmnpqrstvwxz2456789]"
#: Such a part as a pod's suffix: five of them, one a letter (``25689`` is more often a
#: process id).
_POD_SUFFIX = rf"(?=[0-9]*[a-z]){K8S_RANDOM}{{5}}"

#: Layouts that name the pod, most specific first; ``ns``, ``pod`` and ``c`` (container)
#: groups.
POD_LAYOUTS = {
    "kubelet": re.compile(
        r"(?:^|/)var/log/pods/(?P<ns>[^_/]+)_(?P<pod>[^_/]+)_[^/]+/(?P<c>[^/]+)/[^/]+$"
    ),
    "kubelet-copied": re.compile(
        rf"(?:^|/)(?P<ns>{_DNS_LABEL})_(?P<pod>[^_/]+)_(?:{_UID})/(?P<c>[^/]+)/"
        r"[0-9]+\.log(?:\.[0-9]{8}-[0-9]{6})?(?:\.gz)?$"
    ),
    # the kubelet's link names no other file has (a 64-hex container id), wherever a
    # collector copied it: the EKS log collector's var_log/, a node's folder, alone
    "kubelet-containers": re.compile(
        r"(?:^|/)(?P<pod>[^_/]+)_(?P<ns>[^_/]+)_(?P<c>[^/]+)-[0-9a-f]{64}\.log(?:\.gz)?$"
    ),
    "must-gather": re.compile(
        r"(?:^|/)namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/(?P<c>[^/]+)/(?:[^/]+/)?logs/"
        r"(?:current|previous)[^/]*\.log(?:\.gz)?$"
    ),
    "cluster-info-dump": re.compile(
        rf"(?:^|/)(?P<ns>{_DNS_LABEL})/(?P<pod>{_DNS_LABEL}(?:\.{_DNS_LABEL})*)/logs\.txt$"
    ),
    "kubectl-logs": re.compile(
        rf"(?:^|/)(?:(?P<ns>{_DNS_LABEL})_)?(?P<c>[a-z0-9][a-z0-9-]*?)-(?:{K8S_RANDOM}{{6,10}}-)?"
        rf"{_POD_SUFFIX}(?:[._-]previous)?\.(?:log|txt)(?:\.gz)?$"
    ),
}

#: Folders that name the node (``node`` group); the last one in the path wins.
NODE_LAYOUTS = {
    # a node's own folders of logs: /var/log, k3s and RKE2, and dockerd's json-file logs
    # (var/lib/docker/containers/<id>/<id>-json.log) on a node whose runtime is Docker
    "node": re.compile(r"(?:^|/)(?P<node>[^/]+)/var/(?:log|lib/rancher|lib/docker)/"),
    "nodes": re.compile(r"(?:^|/)nodes/(?P<node>[^/]+)/"),
    "sosreport": re.compile(
        r"(?:^|/)sosreport-(?P<node>[^/]+?)(?:-[0-9]{5,})?-[0-9]{4}-[0-9]{2}-[0-9]{2}-[a-z0-9]+"
        r"(?:\.tar\.[a-z]+)?/"
    ),
    "talos": re.compile(r"(?:^|/)(?P<node>[0-9]{1,3}(?:\.[0-9]{1,3}){3})/"),
    # eks_<instance-id>_<YYYY-MM-DD_HHMM>-UTC_<version>[.tar.gz], or a folder named by the
    # instance id alone, holding the folders the collector writes
    "eks-log-collector": re.compile(
        r"(?:^|/)(?P<root>(?:eks_)?(?P<node>i-(?:[0-9a-f]{17}|[0-9a-f]{8}))(?:_[^/]*)?)/"
        r"(?:var_log|kubelet|kernel|system|containerd|docker|ipamd|networking|storage|"
        r"sysctls|cni|nodeadm|modinfo|sandbox-image|gpu)/"
    ),
}

#: Bundles whose folder names their node by something else (the EKS log collector's EC2
#: instance id), and the file in each whose records name the node by its hostname: the
#: kubelet's journal (``journalctl --unit=kubelet``), every line of which carries the
#: hostname the kubelet registered the node by, which change records and Kubernetes
#: events name it by.
BUNDLE_NODE_FILES = {"eks-log-collector": "kubelet/kubelet.log"}

#: The end of an archive's name: a node's logs packed as ``worker-1.tar.gz`` are read as
#: the folder ``worker-1.tar.gz/var/log/...`` (:mod:`timeline.reading.archives`), and name
#: the node ``worker-1``.
ARCHIVE_SUFFIX = re.compile(r"\.(?:zip|tar(?:\.(?:gz|bz2|xz|zst))?|tgz|tbz2?|txz|tzst)$", re.I)

#: The log streams an EKS control plane writes to CloudWatch Logs: the program, then the
#: id of the instance that wrote it (``kube-apiserver-audit-0a1b...``); how ``aws logs``
#: names each event's stream, and a stream saved under its name.
CONTROL_PLANE_STREAM = re.compile(
    r"(?:^|/)(?P<c>kube-apiserver-audit|kube-apiserver|authenticator|kube-controller-manager"
    r"|kube-scheduler|cloud-controller-manager)-[0-9a-f]{16,}(?:\.log)?$"
)

#: Distributions whose files name them, for ``detect`` to say so.
DISTRIBUTIONS = {
    "k3s": re.compile(r"(?:^|/)(?:var/lib/rancher/k3s|var/log/k3s)"),
    "rke2": re.compile(r"(?:^|/)var/lib/rancher/rke2/"),
}


#: The random ends of a pod's name: a Deployment's ``-<hash>-<suffix>``, a DaemonSet's or
#: a Job's ``-<suffix>``, a StatefulSet's ``-<ordinal>``.
_POD_ENDS = re.compile(rf"-(?:(?:{K8S_RANDOM}{{6,10}}-)?{_POD_SUFFIX}|[0-9]+)$")


def program_of_container(container: str | None, pod: str | None) -> str | None:
    """The program a container stands for: its own name, or where that name could be
    any program's (``app``, ``main``, ``server``), its pod's workload, so that two
    services whose containers are both ``app`` stay two.

    >>> program_of_container("app", "checkout-5d8f7b9c6-x7k2q"), program_of_container(
    ...     "istio-proxy", "checkout-5d8f7b9c6-x7k2q"), program_of_container("main", "ledger-0")
    ('checkout', 'istio-proxy', 'ledger')

    A CI job's pod names the job, not a program: its ``build`` container keeps its name.

    >>> program_of_container("build", "runner-x7k2q-project-42-concurrent-0-b8k2m")
    'build'
    """
    if container is None or pod is None or container.lower() not in NAMELESS:
        return container
    return _POD_ENDS.sub("", pod)


@dataclass(frozen=True)
class PathHints:
    """What a log's path says: the node, the pod, its namespace and the container, and
    the layouts that said it."""

    node: str | None = None
    pod: str | None = None
    namespace: str | None = None
    container: str | None = None
    layout: str | None = None


@dataclass(frozen=True)
class Bundle:
    """A bundle whose folder names its node by a stand-in (an EC2 instance id): the folder
    (``root``, as the path has it), the stand-in, and whether the file is the one whose
    records name the node."""

    root: str
    stand_in: str
    names_node: bool


def bundle_of(path: str) -> Bundle | None:
    """The bundle of :data:`BUNDLE_NODE_FILES` that ``path`` is in, if any (the last in
    the path).

    >>> bundle = bundle_of(
    ...     "logs/eks_i-0abc123def4567890_2023-03-14_1805-UTC_0.7.6.tar.gz/kubelet/kubelet.log"
    ... )
    >>> bundle.root, bundle.stand_in, bundle.names_node
    ('logs/eks_i-0abc123def4567890_2023-03-14_1805-UTC_0.7.6.tar.gz', 'i-0abc123def4567890', True)
    >>> bundle_of("ip-10-0-1-5/var/log/kubelet.log") is None
    True
    """
    path = path.replace("\\", "/")
    for name, file in BUNDLE_NODE_FILES.items():
        found = [*NODE_LAYOUTS[name].finditer(path)]
        if found:
            last = found[-1]
            return Bundle(
                root=path[: last.end("root")],
                stand_in=last.group("node"),
                names_node=path[last.end("root") + 1 :] == file,
            )
    return None


def hints_from_path(path: str) -> PathHints:
    """Read node, pod, namespace and container from a log's path, where it has them.

    >>> hints = hints_from_path(
    ...     "ip-10-0-1-5/var/log/pods/kube-system_kube-proxy-x7k2p_0a1b/kube-proxy/0.log"
    ... )
    >>> hints.node, hints.pod, hints.namespace, hints.container, hints.layout
    ('ip-10-0-1-5', 'kube-proxy-x7k2p', 'kube-system', 'kube-proxy', 'node, kubelet')
    >>> hints_from_path("bundles/worker-1.tar.gz/var/log/kubelet.log").node
    'worker-1'
    """
    path = path.replace("\\", "/")
    said: list[str] = []
    node = None
    at = -1
    for name, pattern in NODE_LAYOUTS.items():
        for found in pattern.finditer(path):
            if found.start("node") > at:
                node, at = ARCHIVE_SUFFIX.sub("", found.group("node")), found.start("node")
                said[:] = [name]
    said += [name for name, pattern in DISTRIBUTIONS.items() if pattern.search(path)]
    for name, pattern in POD_LAYOUTS.items():
        found = pattern.search(path)
        if found:
            groups = found.groupdict()
            return PathHints(
                node=node,
                pod=groups.get("pod"),
                namespace=groups["ns"],
                container=program_of_container(groups.get("c"), groups.get("pod")),
                layout=", ".join([*said, name]),
            )
    stream = CONTROL_PLANE_STREAM.search(path)
    if stream:
        return PathHints(node=node, container=stream["c"], layout=", ".join([*said, "eks"]))
    return PathHints(node=node, layout=", ".join(said) or None)
