"""When things happened in the reconstructed incident, and the cluster it happened on.

Everything is decided up front from the scale and the seed (nodes, pods, reboot times,
which nodes show the precursor): it is small, and the log streams only read it.
"""

from __future__ import annotations

import bisect
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sample_logs.formats import NS

SEED = 20230314
DEFAULT_OUT = Path(__file__).parent / "circleci-2023-03-14"

SEC = NS
MIN = 60 * NS
HOUR = 3600 * NS

#: kubelet's ``containerLogMaxSize`` on these nodes: a container log rotates past this.
ROTATE_BYTES = 2 * 1024 * 1024
#: CircleCI's API pages hold this many job records.
PAGE_SIZE = 100

OLD = "v1.23.17"
NEW = "v1.24.10"
KUBE_PROXY_IMAGE = "registry.k8s.io/kube-proxy:{}"
NODE_CACHE_IMAGE = "registry.k8s.io/dns/k8s-dns-node-cache:1.22.13"
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.8.7"
KUBE_DNS_UPSTREAM = "172.20.113.25"
KUBE_DNS_VIP = "172.20.0.10"
LINK_LOCAL_DNS = "169.254.20.10"
VPC_RESOLVER = "10.20.0.2"
RABBIT_VERSION = "3.11.10"
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def at(text: str) -> int:
    """Nanoseconds since the epoch of a UTC wall-clock time written ``2023-03-14 17:40``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS


class Story:
    """When things happened. Everything else is derived from these and the seed."""

    START = at("2023-03-13 00:00")
    END = at("2023-03-15 14:00")
    UPGRADE = at("2023-03-13 10:05")
    ROLLBACK = at("2023-03-13 14:20")
    DECOY_CONFIG = at("2023-03-14 15:10")
    DECOY_DEPLOY = at("2023-03-14 15:25")
    RESUMED_UPGRADE = at("2023-03-14 17:40")
    ONSET = at("2023-03-14 18:00")
    SERVICE_RESTARTS = (
        (at("2023-03-14 18:40"), "dispatcher", "Restarted dispatcher: job queue backing up"),
        (at("2023-03-14 19:15"), "api-gateway", "Restarted api-gateway: 5xx from upstreams"),
    )
    NODE_LOCAL_DNS_RESTART = at("2023-03-14 20:20")
    COREDNS_RESTART = at("2023-03-14 20:35")
    FIRST_REBOOT = at("2023-03-14 21:05")
    ROLLING_REBOOTS = (at("2023-03-14 21:25"), at("2023-03-14 22:55"))
    DOCKER_RECOVERED = at("2023-03-14 23:00")
    POOL_RESTART = at("2023-03-15 00:50")
    MACHINE_RECOVERED = at("2023-03-15 01:15")
    ALL_JOBS_OK = at("2023-03-15 01:27")
    ALL_NORMAL = at("2023-03-15 02:40")
    RABBIT_ROLL = (at("2023-03-15 02:50"), at("2023-03-15 03:01"), at("2023-03-15 03:12"))
    RABBIT_MITIGATED = at("2023-03-15 03:35")
    RABBIT_RESOLVED = at("2023-03-15 05:14")
    QUEUE_TRICKLE = at("2023-03-15 05:40")
    QUEUE_RESTART = (at("2023-03-15 09:50"), at("2023-03-15 09:58"), at("2023-03-15 10:06"))
    QUEUE_MITIGATED = at("2023-03-15 11:08")
    QUEUE_RESOLVED = at("2023-03-15 13:15")


# --- small helpers -----------------------------------------------------------------------


def rng_for(seed: int, *names: object) -> random.Random:
    """An independent, reproducible random stream per named thing (str seeds hash with
    SHA-512, so no dependence on ``PYTHONHASHSEED``)."""
    return random.Random("/".join(map(str, (seed, *names))))


def suffix(rng: random.Random, n: int = 5) -> str:
    """A Kubernetes generated-name suffix."""
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def new_uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def jitter(rng: random.Random, spread_s: float) -> int:
    return int(rng.uniform(0, spread_s) * NS)


def curve(points: list[tuple[int, float]]) -> Callable[[int], float]:
    """Piecewise-linear function of time through ``points``; zero outside them."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]

    def value(t: int) -> float:
        if t <= xs[0] or t >= xs[-1]:
            return 0.0
        i = bisect.bisect_right(xs, t)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (t - x0) / (x1 - x0)

    return value


def arrivals(
    rng: random.Random, start: int, end: int, rate: Callable[[int], float], peak: float
) -> Iterator[int]:
    """Times of a Poisson process with ``rate(t)`` events a minute (at most ``peak``)."""
    if peak <= 0:
        return
    t = start
    while True:
        t += int(rng.expovariate(peak) * MIN) + 1
        if t >= end:
            return
        if rng.random() * peak < rate(t):
            yield t


def day_shape(t: int) -> float:
    """Working-hours load for a US-heavy customer base: peaks around 18:00 UTC."""
    hour = (t // HOUR) % 24 + (t % HOUR) / HOUR
    return max(0.0, math.sin(math.pi * (hour - 11) / 13)) if 11 <= hour <= 24 else 0.0


# --- the cluster -------------------------------------------------------------------------


@dataclass
class Run:
    """One run of a container: one log file in the pod's container folder."""

    start: int
    end: int
    restart: int = 0


@dataclass
class Pod:
    """A pod as the node keeps its logs: one folder, one log file per container run."""

    name: str
    uid: str
    namespace: str
    container: str
    node: Node
    image: str
    created: int
    deleted: int | None
    runs: list[Run] = field(default_factory=list)
    version: str = ""
    phase: str = ""

    def folder(self) -> str:
        return (
            f"nodes/{self.node.name}/var/log/pods/"
            f"{self.namespace}_{self.name}_{self.uid}/{self.container}"
        )


@dataclass
class Node:
    """A node and its part of the story: when it shows the precursor, when the spike
    reaches it, when it is cordoned, goes down and comes back."""

    index: int
    name: str
    ip: str
    down: int = 0  # reboot: the node goes down
    up: int = 0  # kubelet is back
    cordoned: int = 0
    trickle_from: int | None = None
    onset: int = 0
    restore_line: int = 8022
    kube_proxy: list[Pod] = field(default_factory=list)
    node_local_dns: list[Pod] = field(default_factory=list)
    pod_ips: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    """Everything decided up front; the log streams only read it."""

    scale: float
    seed: int
    nodes: list[Node]
    coredns: list[Pod]
    first_rebooted: Node
    rollouts: dict[str, dict[str, tuple[int, int]]]
    coredns_hashes: tuple[str, str]


def build_cluster(scale: float, seed: int) -> Cluster:
    """Nodes, pods and every per-node time of the story, decided up front (it is small)."""
    rng = rng_for(seed, "cluster")
    count = max(3, round(12 * scale))
    subnets = max(3, math.ceil(count / 200))
    hosts: dict[int, list[int]] = {}
    nodes = []
    for i in range(count):
        subnet = 1 + i % subnets
        taken = hosts.setdefault(subnet, [])
        while True:
            host = rng.randint(10, 250)
            if host not in taken:
                taken.append(host)
                break
        ip = f"10.20.{subnet}.{host}"
        node = Node(i, f"ip-{ip.replace('.', '-')}.ec2.internal", ip)
        node.pod_ips = [f"10.20.{subnet}.{rng.randint(2, 254)}" for _ in range(12)]
        node.restore_line = rng.choice([8022, 8022, 7961, 8013, 8047, 8109])
        nodes.append(node)

    order = nodes[:]
    rng.shuffle(order)
    first = order[0]
    first.down = Story.FIRST_REBOOT
    rest = order[1:]
    lo, hi = Story.ROLLING_REBOOTS
    for k, node in enumerate(rest):
        node.down = lo + (hi - lo) * k // max(1, len(rest) - 1) + jitter(rng, 40)
    for node in nodes:
        node.cordoned = node.down - int(rng.uniform(150, 240) * SEC)
        node.up = node.down + int(rng.uniform(95, 150) * SEC)
        node.onset = Story.ONSET + int(rng.uniform(-3, 9) * MIN)

    trickle = nodes[:]
    rng.shuffle(trickle)
    early = max(1, round(0.25 * count))
    late = max(early + 1, round(0.6 * count))
    for k, node in enumerate(trickle[:late]):
        if k < early:
            node.trickle_from = Story.ROLLBACK + int(rng.uniform(15, 70) * MIN)
        else:
            span = Story.RESUMED_UPGRADE - Story.ROLLBACK
            node.trickle_from = Story.ROLLBACK + int(span * rng.uniform(0.2, 0.9))

    rollouts = {
        "upgrade": _rollout(nodes, Story.UPGRADE, rng),
        "rollback": _rollout(nodes, Story.ROLLBACK, rng),
        "resumed": _rollout(nodes, Story.RESUMED_UPGRADE, rng),
        "node-local-dns": _rollout(nodes, Story.NODE_LOCAL_DNS_RESTART, rng),
    }
    for node in nodes:
        _daemon_pods(node, rollouts, rng)
    hashes = (suffix(rng, 10), suffix(rng, 10))
    cluster = Cluster(scale, seed, nodes, [], first, rollouts, hashes)
    cluster.coredns = _coredns_pods(cluster, rng)
    return cluster


def _rollout(nodes: list[Node], start: int, rng: random.Random) -> dict[str, tuple[int, int]]:
    """A DaemonSet rolling update with ``maxUnavailable: 10%``: per node, when the old pod
    is killed and when the new one starts."""
    order = nodes[:]
    rng.shuffle(order)
    batch = max(1, math.ceil(len(nodes) * 0.1))
    out = {}
    t = start + int(rng.uniform(2, 6) * SEC)
    for k in range(0, len(order), batch):
        for node in order[k : k + batch]:
            kill = t + jitter(rng, 2)
            out[node.name] = (kill, kill + int(rng.uniform(3, 7) * SEC))
        t += int(rng.uniform(35, 55) * SEC)
    return out


def _daemon_pods(node: Node, rollouts: dict, rng: random.Random) -> None:
    down, up = node.down, node.up
    after_boot = up + int(rng.uniform(15, 40) * SEC)
    (k1, s1), (k2, s2), (k3, s3) = (
        rollouts[r][node.name] for r in ("upgrade", "rollback", "resumed")
    )
    spans = [
        (OLD, "before", Story.START - 6 * 24 * HOUR, Story.START, k1),
        (NEW, "upgrade", s1, s1, k2),
        (OLD, "rollback", s2, s2, k3),
    ]
    for version, phase, created, first, last in spans:
        pod = _pod(
            "kube-proxy", "kube-proxy", node, KUBE_PROXY_IMAGE.format(version), created, last, rng
        )
        pod.version, pod.phase = version, phase
        pod.runs = [Run(first, last)]
        node.kube_proxy.append(pod)
    pod = _pod("kube-proxy", "kube-proxy", node, KUBE_PROXY_IMAGE.format(NEW), s3, None, rng)
    pod.version, pod.phase = NEW, "resumed"
    pod.runs = [Run(s3, down), Run(after_boot, Story.END, 1)]
    node.kube_proxy.append(pod)

    kill, start = rollouts["node-local-dns"][node.name]
    old = _pod(
        "node-local-dns",
        "node-cache",
        node,
        NODE_CACHE_IMAGE,
        Story.START - 6 * 24 * HOUR,
        kill,
        rng,
    )
    old.runs = [Run(Story.START, kill)]
    new = _pod("node-local-dns", "node-cache", node, NODE_CACHE_IMAGE, start, None, rng)
    new.runs = [Run(start, down), Run(after_boot + int(rng.uniform(1, 4) * SEC), Story.END, 1)]
    node.node_local_dns = [old, new]


def _pod(
    base: str, container: str, node: Node, image: str, created: int, deleted: int | None, rng
) -> Pod:
    return Pod(
        f"{base}-{suffix(rng)}",
        new_uid(rng),
        "kube-system",
        container,
        node,
        image,
        created,
        deleted,
    )


def _coredns_pods(cluster: Cluster, rng: random.Random) -> list[Pod]:
    """CoreDNS Deployment pods: the old ones until the restart at 20:35, the new ones
    after, each moved off its node when the node is drained for its reboot."""
    nodes = cluster.nodes
    replicas = max(2, round(2 * cluster.scale))
    old_hash, new_hash = cluster.coredns_hashes
    pods = []
    restart = Story.COREDNS_RESTART
    placed = rng.sample(nodes, replicas)
    elsewhere = [n for n in nodes if n not in placed]
    fresh = rng.sample(elsewhere if len(elsewhere) >= replicas else nodes, replicas)
    for k in range(replicas):
        created = restart + k * int(12 * SEC) + jitter(rng, 3)
        old_end = created + int(rng.uniform(7, 10) * SEC)
        old = Pod(
            f"coredns-{old_hash}-{suffix(rng)}",
            new_uid(rng),
            "kube-system",
            "coredns",
            placed[k],
            COREDNS_IMAGE,
            Story.START - 9 * 24 * HOUR,
            old_end,
        )
        old.runs = [Run(Story.START, old_end)]
        old.phase = "before"
        pods.append(old)
        node, start = fresh[k], created
        while True:
            evicted = node.cordoned + jitter(rng, 20)
            end = evicted if start < evicted else Story.END
            pod = Pod(
                f"coredns-{new_hash}-{suffix(rng)}",
                new_uid(rng),
                "kube-system",
                "coredns",
                node,
                COREDNS_IMAGE,
                start,
                end if end < Story.END else None,
            )
            pod.runs = [Run(start + int(rng.uniform(1, 3) * SEC), end)]
            pod.phase = "restarted"
            pods.append(pod)
            if end >= Story.END:
                break
            ready = [n for n in nodes if n.up + 60 * SEC < evicted and n is not node]
            later = [n for n in nodes if n.cordoned > evicted + 10 * MIN]
            others = ready or later or [n for n in nodes if n is not node]
            node, start = rng.choice(others), evicted + int(rng.uniform(1, 3) * SEC)
    return pods
