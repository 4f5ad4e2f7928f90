"""A small cluster that writes its logs and change records in the real formats.

A :class:`World` has nodes, workloads (DaemonSets, Deployments) whose pods run on them,
a RabbitMQ cluster and a CI queue. Scenarios add log lines per workload and node, roll
workloads to new versions (with the audit records, the controller's ReplicaSets and pods
and the events they leave), edit ConfigMaps, write change-log lines and add the routine
churn of a live cluster. :meth:`World.write` puts everything in a folder laid out as an SRE
collects it:

```
nodes/<node>/var/log/pods/<ns>_<pod>_<uid>/<container>/<restart>.log   CRI lines
  (or pods/<ns>_<pod>_<uid>/<container>/<restart>.log, copied out without the node)
nodes/<node>/kubelet.log                                  journalctl -u kubelet -o short-precise
rabbitmq/rabbit@<name>.log                                             RabbitMQ 3.11
circleci/jobs-page-NNN.json                                            API v2 job details
github/<repo>-jobs.json            GitHub Actions jobs API pages (gh api --paginate)
k8s/audit.log                                                          audit.k8s.io/v1
k8s/events.json                                                        kubectl get events -o json
changelog.csv                                                          time,type,target,...
```

Times are integer nanoseconds since the epoch (UTC), as in :mod:`sample_logs.formats`.
"""

from __future__ import annotations

import csv
import io
import json
import random
import string
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sample_logs import formats as fmt
from sample_logs.formats import NS
from tests.rca.libraries import WRITERS, LogStyle

SEC = NS
KUBECTL = "kubectl/v1.27.4 (linux/amd64) kubernetes/fa3d799"
#: What Helm 3 sends as its user agent (``version.GetUserAgent()``: ``Helm/`` and the
#: version without its ``v``).
HELM = "Helm/3.13.2"
MIN = 60 * NS
HOUR = 60 * MIN

#: What a rate can be: a constant per minute, or a function of the time (ns).
Rate = float | Callable[[int], float]


def suffix(rng: random.Random, n: int = 5) -> str:
    """Kubernetes' generated-name suffix alphabet (no vowels, no confusable digits)."""
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def uid(rng: random.Random) -> str:
    h = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def arrivals(rng: np.random.Generator, start: int, end: int, per_min: Rate) -> np.ndarray:
    """Times of a Poisson process with ``per_min`` events a minute (constant or a function
    of the minute's start), sorted, as int64 ns."""
    if end <= start:
        return np.empty(0, dtype=np.int64)
    minutes = np.arange(start, end, MIN, dtype=np.int64)
    if callable(per_min):
        rates = np.array([max(0.0, per_min(int(m))) for m in minutes])
    else:
        rates = np.full(len(minutes), max(0.0, per_min))
    counts = rng.poisson(rates)
    base = np.repeat(minutes, counts)
    times = base + (rng.uniform(0, MIN, size=len(base))).astype(np.int64)
    return np.sort(times[times < end])


def daily_load(peak_hour: float, low: float = 0.3) -> Callable[[int], float]:
    """Traffic over a day as a share of its peak: ``low`` at night, 1 at ``peak_hour``."""

    def load(t: int) -> float:
        hour = (t // NS % 86400) / 3600
        distance = min(abs(hour - peak_hour), 24 - abs(hour - peak_hour))
        return low + (1 - low) * max(0.0, 1 - distance / 7) ** 2

    return load


# --- programs: how each writes its lines ------------------------------------------------


@dataclass(frozen=True)
class Program:
    """How one program writes: its start-up lines (given the version) and its everyday
    info lines; errors are given by the scenarios as message makers."""

    name: str
    startup: Callable[[str, random.Random], list[tuple[str, str]]]
    info: Callable[[random.Random], tuple[str, str]]
    stream: str = "stderr"
    #: an application service, whose logging library and container name a world draws
    service: bool = False


def _klog_lines(level: str, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f"{level}|{where}", message) for where, message in items]


def kube_proxy_program() -> Program:
    def startup(version: str, rng: random.Random) -> list[tuple[str, str]]:
        ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}"
        return _klog_lines(
            "I",
            [
                ("server_others.go:138", f'"Detected node IP" address="{ip}"'),
                ("server_others.go:206", '"Using iptables Proxier"'),
                ("server.go:656", f'"Version info" version="{version}"'),
                ("config.go:317", '"Starting service config controller"'),
                ("shared_informer.go:262", "Caches are synced for service config"),
            ],
        )

    def info(rng: random.Random) -> tuple[str, str]:
        if rng.random() < 0.5:
            return "I|proxier.go:820", '"Syncing iptables rules"'
        elapsed = fmt.go_duration(rng.randint(40, 190) * 1_000_000)
        return "I|proxier.go:812", f'"SyncProxyRules complete" elapsed="{elapsed}"'

    return Program("kube-proxy", startup, info)


def service_program(name: str, paths: tuple[str, ...]) -> Program:
    """An application service: a version line at start, request lines after (in klog's
    form; the world draws the library it writes them with)."""

    def startup(version: str, rng: random.Random) -> list[tuple[str, str]]:
        port = rng.choice((8080, 8443, 9090, 3000))
        return _klog_lines(
            "I",
            [
                ("main.go:61", f'"Version info" version="{version}" component="{name}"'),
                ("server.go:94", f'"Listening" address=":{port}"'),
                ("healthz.go:41", '"Serving healthz" path="/healthz"'),
            ],
        )

    def info(rng: random.Random) -> tuple[str, str]:
        path = rng.choice(paths)
        took = fmt.go_duration(rng.randint(2, 180) * 1_000_000 + rng.randint(0, 999_999))
        return (
            "I|handler.go:118",
            f'"Request served" method="GET" path="{path}" code=200 duration="{took}"',
        )

    return Program(name, startup, info, service=True)


def coredns_program(version: str = "1.10.1") -> Program:
    def startup(_version: str, rng: random.Random) -> list[tuple[str, str]]:
        sha = "".join(rng.choice("0123456789abcdef") for _ in range(128))
        return [
            ("", ".:53"),
            ("", f"[INFO] plugin/reload: Running configuration SHA512 = {sha}"),
            ("", f"CoreDNS-{version}"),
            ("", "linux/amd64, go1.20, 055b2c3"),
        ]

    def info(rng: random.Random) -> tuple[str, str]:
        service = rng.choice(("api", "db", "cache", "queue", "auth", "search"))
        name = f"{service}.{rng.choice(('default', 'prod', 'ci'))}.svc.cluster.local."
        client = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}"
        line = fmt.coredns_query(
            client,
            rng.randint(32768, 60999),
            rng.randint(1, 65535),
            rng.choice(("A", "AAAA")),
            name,
            "udp",
            rng.randint(30, 90),
            512,
            "NOERROR",
            "qr,aa,rd",
            rng.randint(90, 200),
            rng.randint(40_000, 900_000),
        )
        return "", line

    return Program("coredns", startup, info, stream="stdout")


def klog_text(code: str, t: int, message: str) -> str:
    """A program's line at ``t``: ``code`` is ``L|file.go:N`` for klog, ``logfmt|level``
    for logrus' text formatter (Docker's daemon), empty for text."""
    if not code:
        return message
    level, where = code.split("|", 1)
    if level == "logfmt":
        return f'time="{fmt.rfc3339_nano(t)}" level={where} msg={fmt.go_quote(message)}'
    return fmt.klog(level, t, where, message)


#: The container names a service's pod may give it besides the service's own.
NAMELESS_CONTAINERS = ("app", "main", "server")


def draw_style(seed: int, name: str) -> tuple[LogStyle, str]:
    """A service's logging library and container name, drawn from their own generator so
    that the world's other draws stay what they were for a seed."""
    rng = random.Random(f"{seed}:{name}:format")
    style = LogStyle(rng.choice(tuple(WRITERS)), name, traces=rng.random() < 0.5)
    return style, rng.choice((name, name, *NAMELESS_CONTAINERS))


# --- the cluster ------------------------------------------------------------------------


@dataclass
class PodRun:
    node: str
    pod: str
    uid: str
    start: int
    end: int
    version: str
    restart: int = 0


@dataclass
class Workload:
    kind: str  # DaemonSet, Deployment, StatefulSet
    namespace: str
    name: str
    container: str
    image: str  # repository, without the tag
    version: str
    nodes: list[str]
    program: Program
    uid: str
    rs_hash: str = ""
    runs: list[PodRun] = field(default_factory=list)
    generation: int = 1
    declared: list[tuple[int, str]] = field(default_factory=list)  # (since, version)
    #: pods named ``<prefix><suffix>`` (an ARC runner set's ``<set>-<id>-runner-``)
    pod_prefix: str = ""
    #: how an application service writes its lines (others write theirs as given)
    style: LogStyle | None = None

    def text(self, code: str, t: int, message: str) -> str:
        """The workload's line at ``t``, a stack trace's lines after newlines."""
        if self.style is None:
            return klog_text(code, t, message)
        return self.style.line(code, t, message)

    @property
    def plural(self) -> str:
        return {"DaemonSet": "daemonsets", "StatefulSet": "statefulsets"}.get(
            self.kind, "deployments"
        )

    @property
    def target(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


@dataclass
class World:
    """Everything a scenario writes: pod logs, RabbitMQ, CI jobs and the change records."""

    seed: int
    start: int
    end: int
    nodes: list[str]
    rng: random.Random = field(init=False)
    np_rng: np.random.Generator = field(init=False)
    workloads: list[Workload] = field(default_factory=list)
    lines: dict[tuple[str, str], list[tuple[int, str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    audit: list[tuple[int, str]] = field(default_factory=list)
    events: dict[tuple, dict] = field(default_factory=dict)
    changelog_rows: list[list[str]] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)
    rabbit: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    rabbit_down: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    kubelet: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    github: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    rv: int = 0
    #: ``node``: ``nodes/<node>/var/log/pods/...`` as on the nodes; ``flat``: the pod
    #: folders copied out without their node (``pods/<ns>_<pod>_<uid>/...``).
    layout: str = "node"
    #: workloads whose logs were saved with ``kubectl logs -l ... --prefix --timestamps``
    #: (``kubectl/<namespace>_<name>.log``) rather than from the nodes
    kubectl_logs: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.np_rng = np.random.default_rng(self.seed)
        self.rv = self.rng.randint(10_000_000, 90_000_000)

    # --- workloads ------------------------------------------------------------------

    def workload(
        self,
        kind: str,
        namespace: str,
        name: str,
        program: Program,
        *,
        version: str,
        nodes: list[str] | None = None,
        image: str | None = None,
        container: str | None = None,
        pod_prefix: str = "",
    ) -> Workload:
        """A workload running from the start of the world, one pod per node given (a
        DaemonSet: every node); an application service logs with a drawn library, in a
        drawn container unless one is given."""
        style, drawn = draw_style(self.seed, name) if program.service else (None, name)
        work = Workload(
            style=style,
            pod_prefix=pod_prefix,
            kind=kind,
            namespace=namespace,
            name=name,
            container=container or drawn,
            image=image or f"registry.example.com/{namespace}/{name}",
            version=version,
            nodes=list(nodes or self.nodes),
            program=program,
            uid=uid(self.rng),
            rs_hash=suffix(self.rng, 10) if kind == "Deployment" else "",
            generation=self.rng.randint(2, 60),
        )
        for node in work.nodes:
            work.runs.append(self._new_run(work, node, self.start - HOUR, version))
        work.declared.append((self.start - HOUR, version))
        self.workloads.append(work)
        return work

    def _pod_name(self, work: Workload, node: str) -> str:
        if work.pod_prefix:
            return f"{work.pod_prefix}{suffix(self.rng)}"
        if work.kind == "Deployment":
            return f"{work.name}-{work.rs_hash}-{suffix(self.rng)}"
        if work.kind == "StatefulSet":
            return f"{work.name}-{work.nodes.index(node)}"
        return f"{work.name}-{suffix(self.rng)}"

    def _new_run(self, work: Workload, node: str, t: int, version: str) -> PodRun:
        pod = self._pod_name(work, node)
        return PodRun(node, pod, uid(self.rng), t, self.end + HOUR, version)

    def run_at(self, work: Workload, node: str, t: int) -> PodRun | None:
        for run in work.runs:
            if run.node == node and run.start <= t < run.end:
                return run
        return None

    # --- log lines ------------------------------------------------------------------

    def background(self, work: Workload, per_min: Rate, *, nodes: list[str] | None = None):
        """Everyday info lines of the workload on each of its nodes."""
        for node in nodes or work.nodes:
            rng = random.Random(self.rng.random())
            for t in arrivals(self.np_rng, self.start, self.end, per_min).tolist():
                code, message = work.program.info(rng)
                self.lines[(work.name, node)].append((t, code, message))

    def emit(
        self,
        work: Workload,
        node: str,
        start: int,
        end: int,
        per_min: Rate,
        message: Callable[[random.Random], tuple[str, str]],
    ) -> int:
        """Lines from ``message(rng)`` (``(code, text)``) on one node; returns how many."""
        rng = random.Random(self.rng.random())
        times = arrivals(self.np_rng, max(start, self.start), min(end, self.end), per_min)
        for t in times.tolist():
            code, text = message(rng)
            self.lines[(work.name, node)].append((t, code, text))
        return len(times)

    # --- changes --------------------------------------------------------------------

    def roll(
        self,
        work: Workload,
        t: int,
        version: str,
        *,
        actor: str,
        nodes: list[str] | None = None,
        step_s: tuple[float, float] = (20, 60),
        via: str = "kubectl-set",
        agent: str = KUBECTL,
        helm_release: str | None = None,
    ) -> dict[str, int]:
        """Roll ``work`` to ``version`` on ``nodes`` (all its nodes): the audit patch by
        ``actor`` (sent by ``agent``), then per node, one after the other, the old pod
        killed and a new one started, with the controller's audit records and events (a
        StatefulSet from its highest ordinal down, each pod deleted by its controller).
        Returns when each node got its new pod."""
        self.patch_image(
            work, t, version, actor=actor, via=via, agent=agent, helm_release=helm_release
        )
        work.version = version
        work.declared.append((t, version))
        work.generation += 1
        new_rs = ""
        if work.kind == "Deployment":
            new_rs = suffix(self.rng, 10)
            self.controller_replicaset(work, t + SEC, new_rs)
        reached: dict[str, int] = {}
        at = t + int(self.rng.uniform(2, 8) * SEC)
        order = list(nodes or work.nodes)
        if work.kind == "StatefulSet":
            order.sort(key=work.nodes.index, reverse=True)
        for node in order:
            old = self.run_at(work, node, at)
            if old is not None:
                self._stopped(work, old, at)
                if work.kind == "StatefulSet":
                    self.controller_pod_delete(work, old, at)
            if work.kind == "Deployment":
                work.rs_hash = new_rs
            run = self._new_run(work, node, at + 2 * SEC, version)
            work.runs.append(run)
            self.pod_created(work, run, at + SEC)
            reached[node] = run.start
            at += int(self.rng.uniform(*step_s) * SEC)
        return reached

    def _stopped(self, work: Workload, run: PodRun, t: int) -> None:
        """The kubelet stops a pod's container at ``t``."""
        run.end = t
        self.event(
            t,
            work.namespace,
            "Pod",
            run.pod,
            run.uid,
            "Killing",
            f"Stopping container {work.container}",
            "kubelet",
            run.node,
            field_path=f"spec.containers{{{work.container}}}",
        )

    def restart_pods(
        self, work: Workload, t: int, nodes: list[str], step_s: tuple[float, float] = (30, 90)
    ) -> dict[str, int]:
        """The container restarted in place on each node (the same pod, next log file)."""
        reached = {}
        at = t
        for node in nodes:
            old = self.run_at(work, node, at)
            if old is None:
                continue
            self._stopped(work, old, at)
            run = PodRun(
                node, old.pod, old.uid, at + 3 * SEC, self.end + HOUR, old.version, old.restart + 1
            )
            work.runs.append(run)
            self.event(
                run.start,
                work.namespace,
                "Pod",
                old.pod,
                old.uid,
                "Started",
                f"Started container {work.container}",
                "kubelet",
                node,
                field_path=f"spec.containers{{{work.container}}}",
            )
            reached[node] = run.start
            at += int(self.rng.uniform(*step_s) * SEC)
        return reached

    def patch_image(
        self,
        work: Workload,
        t: int,
        version: str,
        *,
        actor: str,
        via: str,
        agent: str = KUBECTL,
        helm_release: str | None = None,
    ):
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"image": f"{work.image}:{version}", "name": work.container}]
                    }
                }
            }
        }
        self.audit_record(
            t,
            "patch",
            f"/apis/apps/v1/namespaces/{work.namespace}/{work.plural}/{work.name}"
            f"?fieldManager={via}",
            work.plural,
            work.namespace,
            work.name,
            actor,
            api_group="apps",
            request=patch,
            response=self.object_of(work, version, helm_release=helm_release),
            agent=agent,
        )

    def object_of(self, work: Workload, version: str, *, helm_release: str | None = None) -> dict:
        self.rv += self.rng.randint(100, 5000)
        spec: dict = {
            "selector": {"matchLabels": {"app": work.name}},
            "template": {
                "metadata": {"labels": {"app": work.name}},
                "spec": {
                    "containers": [{"image": f"{work.image}:{version}", "name": work.container}]
                },
            },
        }
        if work.kind in ("Deployment", "StatefulSet"):
            spec["replicas"] = len(work.nodes)
        metadata: dict = {
            "name": work.name,
            "namespace": work.namespace,
            "uid": work.uid,
            "resourceVersion": str(self.rv),
            "generation": work.generation + 1,
        }
        if helm_release:
            metadata.update(helm_metadata(helm_release, work.namespace))
        return {"kind": work.kind, "apiVersion": "apps/v1", "metadata": metadata, "spec": spec}

    def controller_replicaset(self, work: Workload, t: int, rs_hash: str) -> None:
        rs = f"{work.name}-{rs_hash}"
        self.audit_record(
            t,
            "create",
            f"/apis/apps/v1/namespaces/{work.namespace}/replicasets",
            "replicasets",
            work.namespace,
            rs,
            "system:serviceaccount:kube-system:deployment-controller",
            api_group="apps",
            level="Metadata",
            response={"kind": "ReplicaSet", "metadata": {"name": rs}},
            agent="kube-controller-manager/v1.27.4 (linux/amd64) kubernetes/fa3d799"
            "/system:serviceaccount:kube-system:deployment-controller",
        )
        self.event(
            t,
            work.namespace,
            "Deployment",
            work.name,
            work.uid,
            "ScalingReplicaSet",
            f"Scaled up replica set {rs} to {len(work.nodes)}",
            "deployment-controller",
            api="apps/v1",
        )

    def controller_pod_delete(self, work: Workload, run: PodRun, t: int) -> None:
        """A StatefulSet's controller deletes a pod to replace it with its new revision."""
        controller = "system:serviceaccount:kube-system:statefulset-controller"
        self.audit_record(
            t,
            "delete",
            f"/api/v1/namespaces/{work.namespace}/pods/{run.pod}",
            "pods",
            work.namespace,
            run.pod,
            controller,
            level="Metadata",
            agent=f"kube-controller-manager/v1.27.4 (linux/amd64) kubernetes/fa3d799/{controller}",
        )
        self.event(
            t,
            work.namespace,
            "StatefulSet",
            work.name,
            work.uid,
            "SuccessfulDelete",
            f"delete Pod {run.pod} in StatefulSet {work.name} successful",
            "statefulset-controller",
            api="apps/v1",
        )

    def pod_created(self, work: Workload, run: PodRun, t: int) -> None:
        owner, owner_kind = {
            "Deployment": ("replicaset-controller", "ReplicaSet"),
            "StatefulSet": ("statefulset-controller", "StatefulSet"),
        }.get(work.kind, ("daemon-set-controller", "DaemonSet"))
        owner_name = f"{work.name}-{work.rs_hash}" if work.kind == "Deployment" else work.name
        self.audit_record(
            t,
            "create",
            f"/api/v1/namespaces/{work.namespace}/pods",
            "pods",
            work.namespace,
            None,
            f"system:serviceaccount:kube-system:{owner}",
            level="Metadata",
            response={"kind": "Pod", "metadata": {"name": run.pod}},
            agent=f"kube-controller-manager/v1.27.4 (linux/amd64) kubernetes/fa3d799"
            f"/system:serviceaccount:kube-system:{owner}",
        )
        self.audit_record(
            t + SEC // 2,
            "create",
            f"/api/v1/namespaces/{work.namespace}/pods/{run.pod}/binding",
            "pods",
            work.namespace,
            run.pod,
            "system:kube-scheduler",
            level="Metadata",
            subresource="binding",
            agent="kube-scheduler/v1.27.4 (linux/amd64) kubernetes/fa3d799/scheduler",
        )
        self.event(
            t,
            work.namespace,
            owner_kind,
            owner_name,
            work.uid,
            "SuccessfulCreate",
            f"Created pod: {run.pod}",
            owner,
            api="apps/v1",
        )
        self.event(
            t,
            work.namespace,
            "Pod",
            run.pod,
            run.uid,
            "Scheduled",
            f"Successfully assigned {work.namespace}/{run.pod} to {run.node}",
            "default-scheduler",
        )
        spec = f"spec.containers{{{work.container}}}"
        image = f"{work.image}:{run.version}"
        self.event(
            run.start - SEC,
            work.namespace,
            "Pod",
            run.pod,
            run.uid,
            "Pulled",
            f'Successfully pulled image "{image}" in {self.rng.uniform(0.6, 4):.3f}s',
            "kubelet",
            run.node,
            field_path=spec,
        )
        self.event(
            run.start,
            work.namespace,
            "Pod",
            run.pod,
            run.uid,
            "Started",
            f"Started container {work.container}",
            "kubelet",
            run.node,
            field_path=spec,
        )

    def helm_upgrade(
        self,
        t: int,
        *,
        release: str,
        namespace: str,
        revision: int,
        actor: str,
        objects: list[tuple[str, str, dict]],
        work: Workload | None = None,
        version: str | None = None,
        agent: str = HELM,
        level: str = "RequestResponse",
        wait: bool = False,
    ) -> dict[str, int]:
        """``helm upgrade RELEASE`` as the API server logs it: the new release Secret
        ``sh.helm.release.v1.RELEASE.vN`` created (pending-upgrade), the chart's changed
        ``objects`` (resource, name, patch) patched in Helm's kind order, then ``work``
        rolled to ``version``, then the previous release Secret marked superseded and the
        new one deployed (after the rollout with ``--wait``). Secrets are logged at
        Metadata level, as audit policies advise; the chart's objects at ``level``.
        Returns when each node got its new pod."""
        self.helm_record(t, "create", namespace, release, revision, actor, "pending-upgrade", agent)
        at = t + int(self.rng.uniform(0.1, 0.6) * SEC)
        for resource, name, patch in sorted(objects, key=lambda o: HELM_ORDER.index(o[0])):
            self.rv += self.rng.randint(100, 5000)
            body = {
                "kind": KINDS[resource],
                "apiVersion": "v1",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "resourceVersion": str(self.rv),
                    **helm_metadata(release, namespace),
                },
                **patch,
            }
            self.audit_record(
                at,
                "patch",
                f"/api/v1/namespaces/{namespace}/{resource}/{name}?fieldManager=helm",
                resource,
                namespace,
                name,
                actor,
                level="Metadata" if resource == "secrets" else level,
                request=patch,
                response=body,
                agent=agent,
            )
            at += int(self.rng.uniform(0.03, 0.4) * SEC)
        reached: dict[str, int] = {}
        if work is not None and version is not None:
            reached = self.roll(
                work,
                at,
                version,
                actor=actor,
                via="helm",
                agent=agent,
                helm_release=release if level == "RequestResponse" else None,
            )
        done = at + int(self.rng.uniform(0.2, 1.5) * SEC)
        if wait and reached:
            done = max(reached.values()) + int(self.rng.uniform(5, 30) * SEC)
        self.helm_record(
            done, "update", namespace, release, revision - 1, actor, "superseded", agent
        )
        self.helm_record(
            done + int(self.rng.uniform(0.02, 0.2) * SEC),
            "update",
            namespace,
            release,
            revision,
            actor,
            "deployed",
            agent,
        )
        return reached

    def helm_record(
        self,
        t: int,
        verb: str,
        namespace: str,
        release: str,
        revision: int,
        actor: str,
        status: str,
        agent: str = HELM,
        level: str = "Metadata",
    ) -> None:
        """One write of Helm's release record, the Secret ``sh.helm.release.v1.R.vN``."""
        self.rv += self.rng.randint(100, 5000)
        body = helm_release_secret(namespace, release, revision, status, modified_at=t // NS)
        body["metadata"]["resourceVersion"] = str(self.rv)
        name = body["metadata"]["name"]
        uri = f"/api/v1/namespaces/{namespace}/secrets"
        self.audit_record(
            t,
            verb,
            uri if verb == "create" else f"{uri}/{name}",
            "secrets",
            namespace,
            name,
            actor,
            level=level,
            request=body,
            response=body,
            agent=agent,
        )

    def config_edit(self, t: int, namespace: str, name: str, actor: str, data: dict) -> None:
        """A ConfigMap replaced (``kubectl edit`` / ``apply``)."""
        self.rv += self.rng.randint(100, 5000)
        body = {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(self.rv)},
            "data": data,
        }
        self.audit_record(
            t,
            "update",
            f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager=kubectl-edit",
            "configmaps",
            namespace,
            name,
            actor,
            request=body,
            response=body,
        )

    def apply(self, t: int, actor: str, body: dict, *, resource: str, api_group: str) -> None:
        """An object of another kind than a workload (a NetworkPolicy, a RoleBinding)
        applied with ``kubectl apply``: a patch of its spec and the last applied
        configuration, the whole object in the response."""
        self.rv += self.rng.randint(100, 5000)
        meta = body["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        scope = f"/namespaces/{namespace}" if namespace else ""
        applied = json.dumps(body, separators=(",", ":"))
        request = {
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}
            },
            **{k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")},
        }
        response = {**body, "metadata": {**meta, "resourceVersion": str(self.rv)}}
        self.audit_record(
            t,
            "patch",
            f"/apis/{api_group}/v1{scope}/{resource}/{name}?fieldManager=kubectl-client-side-apply",
            resource,
            namespace,
            name,
            actor,
            api_group=api_group,
            request=request,
            response=response,
        )

    def controller_upkeep(self, start: int, end: int, namespace: str, service: str) -> None:
        """What controllers write all day beside the workloads: a Service's endpoints, the
        leader leases, an HPA's status, cert-manager's CA injector re-patching an admission
        webhook's ``caBundle``; none of it is a change."""
        manager = "kube-controller-manager/v1.27.4 (linux/amd64) kubernetes/fa3d799"
        webhook = self.rng.choice(("policy-webhook", "cert-manager-webhook", "kyverno-resource"))
        writers = (
            (
                (1.5, 4.0),
                ("update", "endpoints", "", namespace, service),
                "system:serviceaccount:kube-system:endpoint-controller",
                manager,
                None,
            ),
            (
                (1.0, 2.0),
                ("update", "leases", "coordination.k8s.io", "kube-system", "kube-scheduler"),
                "system:kube-scheduler",
                "kube-scheduler/v1.27.4 (linux/amd64) kubernetes/fa3d799/leader-election",
                None,
            ),
            (
                (2.0, 5.0),
                ("update", "horizontalpodautoscalers", "autoscaling", namespace, service),
                "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                manager,
                "status",
            ),
            (
                (4.0, 9.0),
                (
                    "patch",
                    "validatingwebhookconfigurations",
                    "admissionregistration.k8s.io",
                    None,
                    webhook,
                ),
                "system:serviceaccount:cert-manager:cert-manager-cainjector",
                "cainjector/v1.13.2 (linux/amd64) cert-manager/0e5f5d9f5a",
                None,
            ),
        )
        for every_min, (verb, resource, group, ns, name), actor, agent, sub in writers:
            t = start + int(self.rng.uniform(0, every_min[1]) * MIN)
            while t < end:
                root = f"/apis/{group}/v1" if group else "/api/v1"
                scope = f"/namespaces/{ns}" if ns else ""
                self.audit_record(
                    t,
                    verb,
                    f"{root}{scope}/{resource}/{name}" + (f"/{sub}" if sub else ""),
                    resource,
                    ns,
                    name,
                    actor,
                    level="Metadata",
                    api_group=group,
                    subresource=sub,
                    agent=agent,
                )
                t += int(self.rng.uniform(*every_min) * MIN)

    def note(self, t: int, kind: str, target: str, description: str, actor: str) -> None:
        """A line of the team's change log, in minutes and without a zone, as typed."""
        self.changelog_rows.append([fmt.human_minute(t), kind, target, description, actor])

    # --- routine churn --------------------------------------------------------------

    def churn(
        self,
        start: int,
        end: int,
        *,
        every_min: tuple[float, float] = (4, 9),
        synced: tuple[Workload, ...] = (),
    ) -> list[str]:
        """What a live cluster does on its own: GitOps syncs by a service account of a few
        apps (and of ``synced``, unchanged), a CronJob's Job and pod every few minutes, HPA
        rescales, node status patches, and node labels set by controllers. Returns the
        names of the programs it touched."""
        apps = self.rng.sample(
            [
                "billing-api",
                "search-indexer",
                "notifications",
                "ledger",
                "profile-svc",
                "report-gen",
                "catalog",
                "session-store",
            ],
            3,
        )
        sync_ns = self.rng.choice(("apps", "prod", "platform", "default"))
        syncer = self.rng.choice(
            (
                "system:serviceaccount:argocd:argocd-application-controller",
                "system:serviceaccount:flux-system:kustomize-controller",
            )
        )
        cron = self.rng.choice(("metrics-rollup", "backup-snapshot", "cache-warmer", "cleanup"))
        cron_every = self.rng.choice((5, 10, 15)) * MIN
        owned = [
            ("Deployment", sync_ns, app, f"registry.example.com/{app}", "2.4.0") for app in apps
        ]
        t = start + int(self.rng.uniform(0, 3) * MIN)
        while t < end:
            choices = owned + [
                (w.kind, w.namespace, w.name, w.image, self.version_at(w, t)) for w in synced
            ]
            kind, namespace, app, image, version = self.rng.choice(choices)
            self.gitops_sync(t, syncer, kind, namespace, app, f"{image}:{version}")
            t += int(self.rng.uniform(*every_min) * MIN)
        t = start - start % cron_every + cron_every
        while t < end:
            job = f"{cron}-{t // NS // 60}"
            pod = f"{job}-{suffix(self.rng)}"
            node = self.rng.choice(self.nodes)
            self.event(
                t,
                "batch",
                "CronJob",
                cron,
                "",
                "SuccessfulCreate",
                f"Created job {job}",
                "cronjob-controller",
                api="batch/v1",
            )
            self.event(
                t + SEC,
                "batch",
                "Job",
                job,
                "",
                "SuccessfulCreate",
                f"Created pod: {pod}",
                "job-controller",
                api="batch/v1",
            )
            self.event(
                t + 2 * SEC,
                "batch",
                "Pod",
                pod,
                uid(self.rng),
                "Scheduled",
                f"Successfully assigned batch/{pod} to {node}",
                "default-scheduler",
            )
            self.audit_record(
                t + SEC,
                "create",
                "/api/v1/namespaces/batch/pods",
                "pods",
                "batch",
                None,
                "system:serviceaccount:kube-system:job-controller",
                level="Metadata",
                response={"kind": "Pod", "metadata": {"name": pod}},
            )
            t += cron_every
        for node in self.nodes:
            t = start + int(self.rng.uniform(0, 60) * SEC)
            while t < end:
                self.audit_record(
                    t,
                    "patch",
                    f"/api/v1/nodes/{node}/status?timeout=10s",
                    "nodes",
                    None,
                    node,
                    f"system:node:{node}",
                    level="Metadata",
                    subresource="status",
                    agent="kubelet/v1.27.4 (linux/amd64) kubernetes/fa3d799",
                )
                t += int(self.rng.uniform(4.5, 5.5) * MIN)
        t = start + int(self.rng.uniform(0, 10) * MIN)
        while t < end:
            node = self.rng.choice(self.nodes)
            actor, labels = self.rng.choice(
                (
                    (
                        "system:serviceaccount:kube-system:ttl-controller",
                        {"annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                    ),
                    (
                        f"system:node:{node}",
                        {"labels": {"topology.kubernetes.io/zone": "zone-a"}},
                    ),
                    (
                        "system:serviceaccount:kube-system:node-problem-detector",
                        {"annotations": {"npd/last-check": str(t // NS)}},
                    ),
                )
            )
            self.audit_record(
                t,
                "patch",
                f"/api/v1/nodes/{node}",
                "nodes",
                None,
                node,
                actor,
                request={"metadata": labels},
                response={"kind": "Node", "metadata": {"name": node, **labels}},
                agent="kube-controller-manager/v1.27.4 (linux/amd64) kubernetes/fa3d799",
            )
            t += int(self.rng.uniform(*every_min) * MIN)
        hpa = self.rng.choice(apps)
        t = start + int(self.rng.uniform(20, 90) * MIN)
        replicas = 3
        while t < end:
            new = max(2, replicas + self.rng.choice((-1, 1, 1)))
            rs = f"{hpa}-{suffix(self.rng, 10)}"
            self.event(
                t,
                sync_ns,
                "HorizontalPodAutoscaler",
                hpa,
                "",
                "SuccessfulRescale",
                f"New size: {new}; reason: cpu resource utilization (percentage of "
                "request) above target",
                "horizontal-pod-autoscaler",
                api="autoscaling/v2",
            )
            self.event(
                t + SEC,
                sync_ns,
                "Deployment",
                hpa,
                "",
                "ScalingReplicaSet",
                f"Scaled {'up' if new > replicas else 'down'} replica set {rs} to {new} "
                f"from {replicas}",
                "deployment-controller",
                api="apps/v1",
            )
            replicas = new
            t += int(self.rng.uniform(40, 120) * MIN)
        return [*apps, cron, *(w.name for w in synced)]

    def version_at(self, work: Workload, t: int) -> str:
        """The version the workload's spec names at ``t`` (what a sync re-applies)."""
        named = [v for since, v in work.declared if since <= t]
        return named[-1] if named else work.declared[0][1]

    def gitops_sync(
        self, t: int, actor: str, kind: str, namespace: str, name: str, image: str
    ) -> None:
        """A GitOps controller applying a workload's manifest as it already is."""
        plural = "daemonsets" if kind == "DaemonSet" else "deployments"
        body = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/instance": name},
                "annotations": {"argocd.argoproj.io/tracking-id": f"{name}:apps/{kind}"},
            },
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": image}]},
                },
            },
        }
        self.audit_record(
            t,
            "patch",
            f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}"
            "?fieldManager=argocd-controller&force=true",
            plural,
            namespace,
            name,
            actor,
            api_group="apps",
            request=body,
            response=body,
            agent="argocd-application-controller/v2.8.4",
        )

    # --- records ----------------------------------------------------------------------

    def audit_record(
        self,
        t: int,
        verb: str,
        uri: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        actor: str,
        *,
        level: str = "RequestResponse",
        api_group: str = "",
        request: dict | None = None,
        response: dict | None = None,
        subresource: str | None = None,
        agent: str = KUBECTL,
    ) -> None:
        ref: dict = {"resource": resource}
        if namespace:
            ref["namespace"] = namespace
        if name:
            ref["name"] = name
        if api_group:
            ref["apiGroup"] = api_group
        ref["apiVersion"] = "v1"
        if subresource:
            ref["subresource"] = subresource
        groups = ["system:authenticated"]
        if not actor.startswith("system:"):
            groups.insert(0, "sre")
        doc: dict = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": uid(self.rng),
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": {"username": actor, "groups": groups},
            "sourceIPs": [f"10.0.{self.rng.randint(0, 3)}.{self.rng.randint(2, 250)}"],
            "userAgent": agent,
            "objectRef": ref,
            "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
        }
        if request is not None and level == "RequestResponse":
            doc["requestObject"] = request
        if response is not None and level == "RequestResponse":
            doc["responseObject"] = response
        doc["requestReceivedTimestamp"] = fmt.iso_us(t)
        doc["stageTimestamp"] = fmt.iso_us(t + self.rng.randint(2, 40) * 1_000_000)
        self.audit.append((t, json.dumps(doc, separators=(",", ":"))))

    def event(
        self,
        t: int,
        namespace: str,
        kind: str,
        name: str,
        obj_uid: str,
        reason: str,
        message: str,
        component: str,
        host: str | None = None,
        *,
        etype: str = "Normal",
        api: str = "v1",
        field_path: str | None = None,
    ) -> None:
        """A ``v1`` Event, aggregated by (object, reason, message) as the API server does."""
        key = (namespace, kind, name, reason, message)
        if key in self.events:
            item = self.events[key]
            item["count"] += 1
            item["lastTimestamp"] = fmt.iso_s(t)
            return
        obj: dict = {"apiVersion": api, "kind": kind, "name": name, "uid": obj_uid or uid(self.rng)}
        if kind != "Node":
            obj["namespace"] = namespace
        if field_path:
            obj["fieldPath"] = field_path
        source = {"component": component}
        if host:
            source["host"] = host
        self.rv += self.rng.randint(1, 400)
        self.events[key] = {
            "apiVersion": "v1",
            "count": 1,
            "eventTime": None,
            "firstTimestamp": fmt.iso_s(t),
            "involvedObject": obj,
            "kind": "Event",
            "lastTimestamp": fmt.iso_s(t),
            "message": message,
            "metadata": {
                "creationTimestamp": fmt.iso_s(t),
                "name": f"{name}.{t + self.rng.randint(0, 999_999):x}",
                "namespace": namespace if kind != "Node" else "default",
                "resourceVersion": str(self.rv),
                "uid": uid(self.rng),
            },
            "reason": reason,
            "reportingComponent": component,
            "reportingInstance": host or "",
            "source": source,
            "type": etype,
        }

    # --- nodes, their kubelets and their pools ----------------------------------------

    def kubelet_lines(self, node: str, start: int, end: int, per_min: float) -> None:
        """The kubelet's everyday lines on ``node`` (its journal) from ``start`` to ``end``."""
        rng = random.Random(self.rng.random())
        pid = rng.randint(900, 4000)
        for t in arrivals(self.np_rng, max(start, self.start), min(end, self.end), per_min):
            t = int(t)
            if rng.random() < 0.6:
                line = fmt.klog("I", t, "kubelet.go:2457", '"SyncLoop (PLEG): event for pod"', pid)
            else:
                took = fmt.go_duration(rng.randint(2, 90) * 1_000_000)
                line = fmt.klog(
                    "I",
                    t,
                    "kubelet_node_status.go:486",
                    f'"Updated node status" took="{took}"',
                    pid,
                )
            self.kubelet[node].append((t, line))

    def kubelet_start(self, node: str, t: int, version: str, labels: dict[str, str]) -> None:
        """A node's kubelet starting: its flags (the node's labels among them), its version,
        and the few errors every node logs before its network plugin is up."""
        rng = random.Random(self.rng.random())
        pid = rng.randint(900, 4000)
        flags = ",".join(f"{k}={v}" for k, v in labels.items())
        lines = [
            ("I", "flags.go:64", f'FLAG: --node-labels="{flags}"'),
            ("I", "server.go:487", f'"Kubelet version" kubeletVersion="{version}"'),
            ("I", "kubelet.go:2318", '"Starting kubelet main sync loop"'),
        ]
        lines += [
            (
                "E",
                "kubelet.go:2855",
                '"Container runtime network not ready" networkReady="NetworkReady=false '
                "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin "
                'not initialized"',
            )
        ] * rng.randint(1, 3)
        at = t
        for level, where, message in lines:
            self.kubelet[node].append((at, fmt.klog(level, at, where, message, pid)))
            at += int(rng.uniform(0.05, 2.0) * SEC)

    def node_dies(self, node: str, die: int, back: int, *, kubelet_version: str) -> None:
        """``node`` dies at ``die`` (a kernel panic: nothing on it logs its end, no pod is
        stopped by the kubelet) and boots again at ``back``: its kubelet starts, then every
        container that ran on it starts again in the same pod (the next log file), a few
        seconds to a minute later. Nothing it would have written in between is written."""
        rng = random.Random(self.rng.random())
        for work in self.workloads:
            run = self.run_at(work, node, die)
            if run is None:
                continue
            run.end = die
            start = back + int(rng.uniform(5, 60) * SEC)
            work.runs.append(
                PodRun(node, run.pod, run.uid, start, self.end + HOUR, run.version, run.restart + 1)
            )
        self.kubelet[node] = [(t, line) for t, line in self.kubelet[node] if not die <= t < back]
        if node in self.kubelet:
            self.kubelet_start(node, back, kubelet_version, {"kubernetes.io/hostname": node})

    def replace_node(
        self,
        old: str,
        new: str,
        t: int,
        *,
        version: str,
        labels: dict[str, str],
        drain_after_s: tuple[float, float] = (60, 150),
        cordoned_by: str | None = None,
        registered_in_audit: bool = False,
    ) -> int:
        """A node pool's surge upgrade replacing ``old`` with ``new``: the new node's
        kubelet starts at ``t`` (registered with ``labels``, in the audit log when
        ``registered_in_audit``), the events of its start, every workload that ran on
        ``old`` starts a pod on it; then ``old`` is cordoned (by ``cordoned_by``, in the
        audit log, when given), drained and removed. Returns when ``old`` was drained."""
        self.nodes.append(new)
        self.kubelet_start(new, t, version, labels)
        if registered_in_audit:
            node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": new, "labels": labels}}
            self.audit_record(
                t + SEC,
                "create",
                "/api/v1/nodes",
                "nodes",
                None,
                None,
                f"system:node:{new}",
                request=node,
                response=node,
                agent=f"kubelet/{version} (linux/amd64) kubernetes/fa3d799",
            )
        for reason, message, component, lag in (
            ("Starting", "Starting kubelet.", "kubelet", 1),
            (
                "RegisteredNode",
                f"Node {new} event: Registered Node {new} in Controller",
                "node-controller",
                4,
            ),
            ("NodeReady", f"Node {new} status is now: NodeReady", "kubelet", 25),
        ):
            host = new if component == "kubelet" else None
            self.event(t + lag * SEC, "default", "Node", new, "", reason, message, component, host)
        at = t + int(self.rng.uniform(30, 50) * SEC)
        for work in self.workloads:
            if old not in work.nodes:
                continue
            work.nodes.append(new)
            run = self._new_run(work, new, at + 2 * SEC, self.version_at(work, at))
            work.runs.append(run)
            self.pod_created(work, run, at + SEC)
            at += int(self.rng.uniform(1, 6) * SEC)
        drained = t + int(self.rng.uniform(*drain_after_s) * SEC)
        if cordoned_by:
            body = {"spec": {"unschedulable": True}}
            self.audit_record(
                drained - 5 * SEC,
                "patch",
                f"/api/v1/nodes/{old}",
                "nodes",
                None,
                old,
                cordoned_by,
                request=body,
                response={"kind": "Node", "metadata": {"name": old}},
            )
        self.event(
            drained - 4 * SEC,
            "default",
            "Node",
            old,
            "",
            "NodeNotSchedulable",
            f"Node {old} status is now: NodeNotSchedulable",
            "kubelet",
            old,
        )
        for work in self.workloads:
            if old in work.nodes:
                work.nodes.remove(old)
                run = self.run_at(work, old, drained)
                if run is not None:
                    self._stopped(work, run, drained + int(self.rng.uniform(0, 20) * SEC))
        self.event(
            drained + int(self.rng.uniform(60, 120) * SEC),
            "default",
            "Node",
            old,
            "",
            "RemovingNode",
            f"Node {old} event: Removing Node {old} from Controller",
            "node-controller",
        )
        self.kubelet[old] = [(at_, line) for at_, line in self.kubelet[old] if at_ < drained + MIN]
        return drained

    # --- CI and RabbitMQ ----------------------------------------------------------------

    def github_jobs(
        self,
        repo: str,
        per_min: Rate,
        *,
        labels: list[str],
        runner: Callable[[int], tuple[str, bool] | None],
        delay_s: Callable[[int, bool], float],
        workflow: str = "CI",
        fail_p: Callable[[int], float] = lambda t: 0.05,
    ) -> None:
        """GitHub Actions jobs of ``repo`` queued at ``per_min``: ``runner(t)`` names the
        runner that took a job queued at ``t`` and whether it was broken (None: no runner
        took it, still queued at the end), ``delay_s(t, broken)`` how long it waited. A
        broken runner fails its job within a minute; any other fails with ``fail_p(t)``
        (a failing test) after its usual run."""
        names = ("build", "test", "lint", "integration", "docker-image")
        run_id = self.rng.randint(7_000_000_000, 9_000_000_000)
        job_id = run_id * 3 + self.rng.randint(0, 999)
        for t in arrivals(self.np_rng, self.start, self.end, per_min).tolist():
            run_id += self.rng.randint(1, 40)
            job_id += self.rng.randint(1, 90)
            took = runner(t)
            name = self.rng.choice(names)
            job = {
                "id": job_id,
                "run_id": run_id,
                "workflow_name": workflow,
                "head_branch": self.rng.choice(("main", "main", "release", f"pr-{job_id % 900}")),
                "run_url": f"https://api.github.com/repos/{repo}/actions/runs/{run_id}",
                "run_attempt": 1,
                "head_sha": "".join(self.rng.choice("0123456789abcdef") for _ in range(40)),
                "url": f"https://api.github.com/repos/{repo}/actions/jobs/{job_id}",
                "html_url": f"https://github.com/{repo}/actions/runs/{run_id}/job/{job_id}",
                "status": "queued",
                "conclusion": None,
                "created_at": fmt.iso_s(t),
                "started_at": fmt.iso_s(t),
                "completed_at": None,
                "name": name,
                "labels": labels,
                "runner_id": None,
                "runner_name": None,
                "runner_group_id": None,
                "runner_group_name": None,
            }
            if took is not None:
                name_, broken = took
                started = t + int(delay_s(t, broken) * SEC)
                ran = (
                    self.rng.uniform(20, 60) if broken else self.rng.lognormvariate(5.0, 0.5)
                ) * SEC
                stopped = started + int(ran)
                if stopped > self.end:
                    continue
                failed = broken or self.rng.random() < fail_p(t)
                job |= {
                    "status": "completed",
                    "conclusion": "failure" if failed else "success",
                    "started_at": fmt.iso_s(started),
                    "completed_at": fmt.iso_s(stopped),
                    "runner_id": self.rng.randint(10, 9000),
                    "runner_name": name_,
                    "runner_group_id": 1,
                    "runner_group_name": "Default",
                }
            self.github[repo].append(job)

    # --- CI and RabbitMQ ----------------------------------------------------------------

    def ci_jobs(
        self,
        per_min: Rate,
        *,
        executor: str,
        delay_s: Callable[[int], float],
        fail_p: Callable[[int], float] = lambda t: 0.04,
        project: str | None = None,
    ) -> None:
        """CircleCI job details queued at ``per_min``, waiting ``delay_s(t)`` (times a
        spread), failing with ``fail_p(t)`` (infrastructure failures: never started)."""
        org = self.rng.choice(("acme", "globex", "initech", "hooli", "umbrella-labs"))
        repo = project or self.rng.choice(("web", "api", "mobile", "billing", "infra"))
        names = {
            "docker": ("build", "test", "lint", "unit-tests"),
            "machine": ("docker-build", "e2e", "integration-tests"),
            "macos": ("build-ios", "test-ios"),
        }[executor]
        number = self.rng.randint(1000, 90000)
        for t in arrivals(self.np_rng, self.start, self.end, per_min).tolist():
            number += 1
            wait = delay_s(t) * self.rng.lognormvariate(0, 0.35)
            broken = self.rng.random() < fail_p(t)
            created = t - int(self.rng.uniform(0.1, 1.5) * SEC)
            started = None if broken else t + int(wait * SEC)
            run = int(self.rng.lognormvariate(5.2, 0.6) * SEC)
            stopped = t + int(self.rng.uniform(5, 30) * MIN) if broken else started + run
            if stopped > self.end:
                continue
            status = (
                "infrastructure_fail"
                if broken
                else ("success" if self.rng.random() < 0.9 else "failed")
            )
            slug = f"gh/{org}/{repo}"
            self.jobs.append(
                {
                    "web_url": f"https://app.circleci.com/pipelines/{slug}/{number}",
                    "project": {
                        "slug": slug,
                        "name": repo,
                        "external_url": f"https://github.com/{org}/{repo}",
                    },
                    "parallel_runs": [{"index": 0, "status": status}],
                    "started_at": fmt.iso_ms(started) if started else None,
                    "latest_workflow": {"name": "build-and-test", "id": uid(self.rng)},
                    "name": self.rng.choice(names),
                    "executor": {"resource_class": "medium", "type": executor},
                    "parallelism": 1,
                    "status": status,
                    "number": number,
                    "pipeline": {"id": uid(self.rng)},
                    "duration": (stopped - started) // 1_000_000 if started else None,
                    "created_at": fmt.iso_ms(created),
                    "messages": [],
                    "contexts": [],
                    "organization": {"name": org},
                    "queued_at": fmt.iso_ms(t),
                    "stopped_at": fmt.iso_ms(stopped),
                }
            )

    def rabbit_lines(
        self,
        node: str,
        per_min: Rate,
        message: Callable[[random.Random], tuple[str, str]],
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        """RabbitMQ 3.11+ lines on ``rabbit@<node>``: ``message(rng)`` gives level and text
        (``<PID>`` becomes an Erlang pid)."""
        rng = random.Random(self.rng.random())
        for t in arrivals(self.np_rng, start or self.start, end or self.end, per_min).tolist():
            level, text = message(rng)
            pid = f"<0.{rng.randint(300, 40000)}.0>"
            self.rabbit[node].append((t, fmt.rabbit(t, level, pid, text.replace("<PID>", pid))))

    def rabbit_background(self, nodes: list[str], per_min: float, user: str) -> None:
        """Clients connecting and leaving, now and then one that vanished or went quiet."""
        for node in nodes:

            def connection(rng: random.Random, node=node) -> tuple[str, str]:
                peer = (
                    f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}:"
                    f"{rng.randint(32768, 60999)} -> 10.0.9.{rng.randint(2, 250)}:5672"
                )
                roll = rng.random()
                if roll < 0.45:
                    return "info", f"accepting AMQP connection <PID> ({peer})"
                if roll < 0.9:
                    return "info", (
                        f"connection <PID> ({peer}): user '{user}' authenticated and granted "
                        "access to vhost '/'"
                    )
                if roll < 0.995:
                    return (
                        "info",
                        f"closing AMQP connection <PID> ({peer}, vhost: '/', user: '{user}')",
                    )
                return "warning", (
                    f"closing AMQP connection <PID> ({peer}, vhost: '/', user: '{user}'):\n"
                    "client unexpectedly closed TCP connection"
                )

            self.rabbit_lines(node, per_min, connection)

    def rabbit_restart(self, node: str, stop: int, start: int, version: str, peers: list[str]):
        """A broker node stopped and started again, as it and its peers log it."""
        self.rabbit_down[node].append((stop, start))
        lines = [
            (stop, "info", "RabbitMQ is asked to stop..."),
            (
                stop + 400 * 1_000_000,
                "info",
                "Stopping RabbitMQ applications and their dependencies in the following order:",
            ),
            (stop + 2 * SEC, "info", "Successfully stopped RabbitMQ and its dependencies"),
            (start, "info", f"Starting RabbitMQ {version} on Erlang 26.2.1 [jit]"),
            (start + 3 * SEC, "info", "Server startup complete; 5 plugins started."),
        ]
        for t, level, text in lines:
            self.rabbit[node].append((t, fmt.rabbit(t, level, "<0.229.0>", text)))
        for peer in peers:
            for t, text in (
                (stop + SEC, f"rabbit on node 'rabbit@{node}' down"),
                (start + 4 * SEC, f"rabbit on node 'rabbit@{node}' up"),
            ):
                self.rabbit[peer].append((t, fmt.rabbit(t, "info", "<0.488.0>", text)))

    # --- writing ----------------------------------------------------------------------

    def write(self, root: Path) -> Path:
        """Write every file under ``root``; returns ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        for work in self.workloads:
            self._write_pods(root, work)
        for node, lines in self.rabbit.items():
            down = self.rabbit_down.get(node, [])
            kept = [
                (t, text)
                for t, text in sorted(lines)
                if not any(stop + 3 * SEC < t < start for stop, start in down)
            ]
            path = root / "rabbitmq" / f"rabbit@{node}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(text for _, text in kept) + "\n")
        items = sorted(self.jobs, key=lambda j: j["queued_at"], reverse=True)
        for page, first in enumerate(range(0, len(items), 100), start=1):
            path = root / "circleci" / f"jobs-page-{page:03d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            last = first + 100 >= len(items)
            token = (
                None if last else "".join(self.rng.choice(string.ascii_letters) for _ in range(40))
            )
            body = {"items": items[first : first + 100], "next_page_token": token}
            path.write_text(json.dumps(body, separators=(",", ":")))
        for node, lines in self.kubelet.items():
            self._write_kubelet(root, node, sorted(lines))
        for repo, jobs in self.github.items():
            self._write_github(root, repo, jobs)
        k8s = root / "k8s"
        k8s.mkdir(exist_ok=True)
        (k8s / "audit.log").write_text(
            "\n".join(text for _, text in sorted(self.audit, key=lambda a: a[0])) + "\n"
        )
        items = sorted(self.events.values(), key=lambda e: e["lastTimestamp"])
        (k8s / "events.json").write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "items": items,
                    "kind": "List",
                    "metadata": {"resourceVersion": ""},
                },
                indent=4,
            )
        )
        if self.changelog_rows:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["time", "type", "target", "description", "actor"])
            writer.writerows(sorted(self.changelog_rows))
            (root / "changelog.csv").write_text(buffer.getvalue())
        return root

    def _write_kubelet(self, root: Path, node: str, lines: list[tuple[int, str]]) -> None:
        """``journalctl -u kubelet -o short-precise`` saved on the node: the journal's
        header, then each klog line after the journal's time, host and unit."""
        if not lines:
            return
        pid = lines[0][1].split()[2]

        def stamp(t: int, *, with_weekday: bool = False) -> str:
            second, ns = divmod(t, NS)
            moment = datetime.fromtimestamp(second, tz=UTC)
            if with_weekday:
                return moment.strftime("%a %Y-%m-%d %H:%M:%S UTC")
            return f"{moment:%b %d %H:%M:%S}.{ns // 1000:06d}"

        head = (
            f"-- Logs begin at {stamp(lines[0][0], with_weekday=True)}, "
            f"end at {stamp(lines[-1][0], with_weekday=True)}. --"
        )
        body = [f"{stamp(t)} {node} kubelet[{pid}]: {line}" for t, line in lines]
        path = root / "nodes" / node / "kubelet.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([head, *body]) + "\n")

    def _write_github(self, root: Path, repo: str, jobs: list[dict]) -> None:
        """The jobs as ``gh api --paginate .../actions/runs/{id}/jobs`` saves them: pages
        of up to 100 in a row, newest first, pretty-printed or on one line."""
        items = sorted(jobs, key=lambda j: j["created_at"], reverse=True)
        indent = self.rng.choice((None, 2))
        pages = [
            json.dumps({"total_count": len(items), "jobs": items[i : i + 100]}, indent=indent)
            for i in range(0, len(items), 100)
        ]
        path = root / "github" / f"{repo.replace('/', '_')}-jobs.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(pages) + "\n")

    def _write_pods(self, root: Path, work: Workload) -> None:
        saved: list[str] = []
        for run in work.runs:
            rng = random.Random(f"{run.uid}-{run.restart}")
            records: list[tuple[int, str]] = []
            if run.start >= self.start:
                t = run.start + int(rng.uniform(0.3, 2) * SEC)
                for code, message in work.program.startup(run.version, rng):
                    records.append((t, work.text(code, t, message)))
                    t += int(rng.uniform(5, 80) * 1_000_000)
                lo = t
            else:
                lo = self.start
            hi = min(run.end, self.end)
            for t, code, message in self.lines.get((work.name, run.node), ()):
                if lo <= t < hi:
                    records.append((t, work.text(code, t, message)))
            if not records:
                continue
            records.sort(key=lambda r: r[0])
            if work.name in self.kubectl_logs:
                where = f"[pod/{run.pod}/{work.container}]"
                saved += [f"{where} {fmt.rfc3339_nano(t)} {line}" for t, line in _lines(records)]
                continue
            pods = (
                root / "nodes" / run.node / "var/log/pods"
                if self.layout == "node"
                else root / "pods"
            )
            folder = pods / f"{work.namespace}_{run.pod}_{run.uid}" / work.container
            folder.mkdir(parents=True, exist_ok=True)
            stream = work.program.stream
            (folder / f"{run.restart}.log").write_text(
                "\n".join(fmt.cri(t, stream, line) for t, line in _lines(records)) + "\n"
            )
        if saved:
            path = root / "kubectl" / f"{work.namespace}_{work.name}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(saved) + "\n")


def _lines(records: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Each line of the records' texts, as the runtime saves a record of several lines
    (a stack trace): one entry each, at the record's time."""
    return [(t, line) for t, text in records for line in text.split("\n")]


#: The order Helm writes a chart's objects in (``releaseutil.InstallOrder``), for the
#: kinds scenarios use.
HELM_ORDER = ("secrets", "configmaps", "services", "deployments", "statefulsets")
KINDS = {"secrets": "Secret", "configmaps": "ConfigMap", "services": "Service"}


def helm_release_secret(
    namespace: str, release: str, revision: int, status: str, *, modified_at: int
) -> dict:
    """Helm's record of one revision of a release, the Secret ``sh.helm.release.v1.R.vN``,
    as the audit log shows it (its payload left out); ``modified_at`` in epoch seconds."""
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{revision}",
            "namespace": namespace,
            "labels": {
                "modifiedAt": str(modified_at),
                "name": release,
                "owner": "helm",
                "status": status,
                "version": str(revision),
            },
        },
        "type": "helm.sh/release.v1",
    }


def helm_metadata(release: str, namespace: str) -> dict:
    """The label and annotations Helm puts on every object of a release."""
    return {
        "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": release},
        "annotations": {
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        },
    }


def node_names(rng: random.Random, n: int) -> list[str]:
    """Node names in one of the styles clouds and data centres use."""
    style = rng.choice(("aws", "gke", "aks", "dc"))
    if style == "aws":
        net = rng.randint(0, 200)
        return [
            f"ip-10-{net}-{rng.randint(0, 63)}-{rng.randint(2, 250)}.ec2.internal" for _ in range(n)
        ]
    if style == "gke":
        cluster = rng.choice(("prod", "main", "ci", "edge"))
        pool = suffix(rng, 8)
        return [f"gke-{cluster}-default-pool-{pool}-{suffix(rng, 4)}" for _ in range(n)]
    if style == "aks":
        pool = rng.randint(10_000_000, 99_999_999)
        return [f"aks-nodepool1-{pool}-vmss{i:06x}" for i in range(n)]
    dc = rng.choice(("fra1", "ams3", "iad2", "sfo2"))
    return [f"worker-{i + 1:02d}.{dc}.example.net" for i in rng.sample(range(40), n)]


def pool_node_names(
    rng: random.Random, cloud: str, cluster: str, pool: str, n: int, *, group: str = "", first=0
) -> list[str]:
    """Names of ``n`` nodes of one pool as each cloud names them: GKE's
    ``gke-CLUSTER-POOL-GROUP-XXXX`` (``group`` its instance group's hash), AKS's
    ``aks-POOL-GROUP-vmssNNNNNN`` (scale set instances numbered from ``first``), EKS's
    ``ip-10-N-N-N.ec2.internal`` (which say nothing of the node group)."""
    if cloud == "gke":
        return [f"gke-{cluster}-{pool}-{group}-{suffix(rng, 4)}" for _ in range(n)]
    if cloud == "aks":
        return [f"aks-{pool}-{group}-vmss{i:06x}" for i in range(first, first + n)]
    net = rng.randint(0, 200)
    return [
        f"ip-10-{net}-{rng.randint(0, 63)}-{rng.randint(2, 250)}.ec2.internal" for _ in range(n)
    ]


def dind_program(version: str = "24.0.9") -> Program:
    """Docker's daemon in a runner pod's ``dind`` sidecar, logging through logrus' text
    formatter: its start-up, then the containers the jobs run coming and going."""

    def startup(_version: str, rng: random.Random) -> list[tuple[str, str]]:
        return [
            ("logfmt|info", "Starting up"),
            ("logfmt|info", f"containerd successfully booted in 0.0{rng.randint(11, 59)}s"),
            ("logfmt|info", "Loading containers: start."),
            ("logfmt|info", "Loading containers: done."),
            ("logfmt|info", "Daemon has completed initialization"),
            ("logfmt|info", "API listen on [::]:2375"),
        ]

    def info(rng: random.Random) -> tuple[str, str]:
        if rng.random() < 0.5:
            return "logfmt|info", "ignoring event"
        return (
            "logfmt|info",
            f"shim disconnected id={''.join(rng.choices('0123456789abcdef', k=64))}",
        )

    return Program(f"dind-{version}", startup, info)
