"""The programs' own log streams: kube-proxy, CoreDNS and node-local-dns, RabbitMQ.

Each stream is a generator of time-ordered records for one log file, seeded by the file's
identity, so that files can be written one at a time and come out the same every run.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass

from sample_logs import formats as fmt
from sample_logs.story import (
    HOUR,
    KUBE_DNS_UPSTREAM,
    KUBE_DNS_VIP,
    LINK_LOCAL_DNS,
    MIN,
    NEW,
    OLD,
    RABBIT_VERSION,
    SEC,
    VPC_RESOLVER,
    Cluster,
    Node,
    Pod,
    Run,
    Story,
    arrivals,
    day_shape,
    jitter,
    rng_for,
    suffix,
)

# --- kube-proxy --------------------------------------------------------------------------

KLOG_WHERE = {
    OLD: {
        "syncing": "proxier.go:853",
        "restore": "proxier.go:1484",
        "failed": "proxier.go:811",
        "complete": "proxier.go:826",
        "version": "server.go:656",
        "informer_wait": "shared_informer.go:240",
        "informer_done": "shared_informer.go:247",
        "detect_local": "server_others.go:491",
        "proxy_mode": "server_others.go:561",
    },
    NEW: {
        "syncing": "proxier.go:861",
        "restore": "proxier.go:1565",
        "failed": "proxier.go:819",
        "complete": "proxier.go:834",
        "version": "server.go:661",
        "informer_wait": "shared_informer.go:255",
        "informer_done": "shared_informer.go:262",
        "detect_local": "server_others.go:501",
        "proxy_mode": "server_others.go:578",
    },
}


def kube_proxy_startup(version: str, node: Node, t: int) -> Iterator[tuple[int, str]]:
    where = KLOG_WHERE[version]
    lines = [
        ("node.go:163", f"Successfully retrieved node IP: {node.ip}"),
        ("server_others.go:138", f'"Detected node IP" address="{node.ip}"'),
        (where["proxy_mode"], '"Unknown proxy mode, assuming iptables proxy" proxyMode=""'),
        ("server_others.go:206", '"Using iptables Proxier"'),
        ("server_others.go:213", '"kube-proxy running in dual-stack mode" ipFamily=IPv4'),
        ("server_others.go:214", '"Creating dualStackProxier for iptables"'),
        (
            where["detect_local"],
            '"Detect-local-mode set to ClusterCIDR, but no IPv6 cluster CIDR defined, , '
            'defaulting to no-op detect-local for IPv6"',
        ),
        (
            "proxier.go:259",
            '"Setting route_localnet=1, use nodePortAddresses to filter loopback addresses '
            'for NodePorts to skip it https://issues.k8s.io/90259"',
        ),
        (where["version"], f'"Version info" version="{version}"'),
    ]
    if version == NEW:
        lines.append(("server.go:663", '"Golang settings" GOGC="" GOMAXPROCS="" GOTRACEBACK=""'))
    lines += [
        ("conntrack.go:52", '"Setting nf_conntrack_max" nf_conntrack_max=262144'),
        (
            "conntrack.go:100",
            '"Set sysctl" entry="net/netfilter/nf_conntrack_tcp_timeout_close_wait" value=3600',
        ),
        ("config.go:317", '"Starting service config controller"'),
        (where["informer_wait"], "Waiting for caches to sync for service config"),
        ("config.go:226", '"Starting endpoint slice config controller"'),
        (where["informer_wait"], "Waiting for caches to sync for endpoint slice config"),
    ]
    if version == NEW:
        lines += [
            ("config.go:444", '"Starting node config controller"'),
            (where["informer_wait"], "Waiting for caches to sync for node config"),
            (where["informer_done"], "Caches are synced for node config"),
        ]
    lines += [
        (where["informer_done"], "Caches are synced for endpoint slice config"),
        (where["informer_done"], "Caches are synced for service config"),
    ]
    step = 0
    for k, (w, message) in enumerate(lines):
        step += 40_000 + (k * 7919) % 300_000
        yield t + step, fmt.klog("I", t + step, w, message)


def failure_chance(node: Node, pod: Pod, run: Run, t: int) -> float:
    """How likely a sync is to fail: the trickle after the rollback, the spike after the
    resumed upgrade, nothing before the rollback or after the node's reboot."""
    if pod.phase == "rollback" and node.trickle_from is not None and t >= node.trickle_from:
        grown = (t - Story.ROLLBACK) / (Story.RESUMED_UPGRADE - Story.ROLLBACK)
        per_hour = 0.5 + 7.5 * grown * grown
        return per_hour / 150
    if pod.phase == "resumed" and run.restart == 0 and t >= node.onset:
        return min(0.97, 0.4 + 0.57 * (t - node.onset) / (25 * MIN))
    return 0.0


def churn(t: int) -> float:
    """Endpoint changes a minute that trigger extra syncs (the upgrade moves many pods)."""
    if Story.RESUMED_UPGRADE <= t < Story.DOCKER_RECOVERED + HOUR:
        return 2.5
    return 0.4 + 0.8 * day_shape(t)


def kube_proxy_records(
    cluster: Cluster, node: Node, pod: Pod, run: Run
) -> Iterator[tuple[int, str, str]]:
    rng = rng_for(cluster.seed, "kube-proxy", pod.uid, run.restart)
    where = KLOG_WHERE[pod.version]
    records: list[tuple[int, str]] = []
    t = run.start
    if run.start > Story.START:
        t = run.start + int(rng.uniform(0.8, 2.5) * SEC)
        records.extend(kube_proxy_startup(pod.version, node, t))
        t = records[-1][0] + int(rng.uniform(0.05, 0.2) * SEC)
    else:
        t = run.start + jitter(rng, 30)
    syncs = []
    while t < run.end:
        syncs.append(t)
        t += int(rng.uniform(30.0, 30.4) * SEC)
    syncs.extend(arrivals(rng, run.start, run.end, churn, 2.5))
    syncs.sort()
    line = node.restore_line
    for t in syncs:
        if t < run.start or t >= run.end:
            continue
        records.append((t, fmt.klog("I", t, where["syncing"], '"Syncing iptables rules"')))
        if rng.random() < failure_chance(node, pod, run, t):
            if rng.random() < 0.05:
                line += rng.choice((-3, 2, 5, 11))
            t1 = t + int(rng.uniform(0.15, 0.6) * SEC)
            err = f"exit status 1 (iptables-restore: line {line} failed\n)"
            value = fmt.go_quote(err) if pod.version == OLD else fmt.klog_value(err)
            records.append(
                (
                    t1,
                    fmt.klog(
                        "E",
                        t1,
                        where["restore"],
                        f'"Failed to execute iptables-restore" err={value}',
                    ),
                )
            )
            t2 = t1 + int(rng.uniform(60, 220) * 1000)
            records.append(
                (t2, fmt.klog("I", t2, where["failed"], '"Sync failed" retryingTime="30s"'))
            )
            t3 = t2 + int(rng.uniform(20, 90) * 1000)
        else:
            t3 = t + int(rng.uniform(0.06, 0.19) * SEC)
        elapsed = fmt.go_duration(t3 - t)
        records.append(
            (
                t3,
                fmt.klog(
                    "I", t3, where["complete"], f'"SyncProxyRules complete" elapsed="{elapsed}"'
                ),
            )
        )
    for t in arrivals(rng, run.start, run.end, lambda _: 1 / 400, 1 / 400):
        kind = rng.choice(("EndpointSlice", "Service", "Node"))
        records.append(
            (
                t,
                fmt.klog(
                    "W",
                    t,
                    "reflector.go:442",
                    "k8s.io/client-go/informers/factory.go:134: "
                    f"watch of *v1.{kind} ended with: an "
                    'error on the server ("unable to decode an event from the watch stream: http2: '
                    'client connection lost") has prevented the request from succeeding',
                ),
            )
        )
    records.sort(key=lambda r: r[0])
    read = 0
    for t, text in records:
        if t < run.end:
            read = max(t + int(rng.uniform(20, 400) * 1000), read + int(rng.uniform(2, 30) * 1000))
            yield read, "stderr", text


# --- DNS ---------------------------------------------------------------------------------

SERVICES = [
    ("dispatcher", "ci"),
    ("api-gateway", "ci"),
    ("builds", "ci"),
    ("output-processor", "ci"),
    ("vm-service", "ci"),
    ("contexts-service", "ci"),
    ("workflows-conductor", "ci"),
    ("web-ui", "ci"),
    ("postgres-main", "ci"),
    ("redis-cache", "ci"),
    ("vault", "infra"),
    ("prometheus", "monitoring"),
    ("kubernetes", "default"),
    ("rabbitmq", "ci"),
]
EXTERNAL = [
    "api.github.com.",
    "github.com.",
    "registry-1.docker.io.",
    "sqs.us-east-1.amazonaws.com.",
    "s3.amazonaws.com.",
    "api.bitbucket.org.",
    "sentry.io.",
    "hooks.slack.com.",
    "gitlab.com.",
    "ghcr.io.",
]
NOISY_UPSTREAM = "telemetry.cdn-vendor.net."


def config_digest(name: str) -> str:
    """A fixed SHA-512-looking digest for a Corefile, as the reload plugin prints it."""
    return f"{random.Random(name).getrandbits(512):0128x}"


COREDNS_SHA = config_digest("coredns-config")
NODECACHE_SHA = config_digest("nodecache-config")
NODE_DNS_RATE = 1.5  # cache misses a minute that each node's cache sends to CoreDNS


def cluster_name(rng: random.Random) -> tuple[str, str, str]:
    """A name a pod asks its node's DNS cache about: (name, type, rcode)."""
    roll = rng.random()
    if roll < 0.55:
        svc, ns = rng.choice(SERVICES)
        qtype = "A" if rng.random() < 0.85 else "AAAA"
        return f"{svc}.{ns}.svc.cluster.local.", qtype, "NOERROR"
    name, qtype = nxdomain_name(rng)
    return name, qtype, "NXDOMAIN"


def nxdomain_name(rng: random.Random) -> tuple[str, str]:
    """A search-path expansion of an outside name, which the cluster zone answers NXDOMAIN."""
    ext = rng.choice(EXTERNAL)
    ns = rng.choice(("ci", "infra", "monitoring"))
    expanded = rng.choice((f"{ns}.svc.cluster.local.", "svc.cluster.local.", "cluster.local."))
    return f"{ext}{expanded}", rng.choice(("A", "AAAA"))


def coredns_startup(t: int) -> Iterator[tuple[int, str, str]]:
    for k, text in enumerate(
        [
            ".:53",
            f"[INFO] plugin/reload: Running configuration SHA512 = {COREDNS_SHA}",
            "CoreDNS-1.8.7",
            "linux/amd64, go1.17.7, a9adfd56",
        ]
    ):
        yield t + k * 17_000, "stdout", text


def coredns_records(cluster: Cluster, pod: Pod, run: Run) -> Iterator[tuple[int, str, str]]:
    rng = rng_for(cluster.seed, "coredns", pod.uid)
    records: list[tuple[int, str, str]] = []
    if run.start > Story.START:
        records.extend(coredns_startup(run.start + int(rng.uniform(0.5, 1.5) * SEC)))
    replicas = sum(1 for p in cluster.coredns if p.phase == "before")
    nodes = cluster.nodes
    reboots = sorted(n.up for n in nodes)

    def clients_at(t: int) -> int:
        if t < Story.COREDNS_RESTART:
            return len(nodes)
        return bisect.bisect_right(reboots, t)

    def rate(t: int) -> float:
        return NODE_DNS_RATE * clients_at(t) / replicas * (0.6 + 0.6 * day_shape(t))

    peak = NODE_DNS_RATE * len(nodes) / replicas * 1.2
    ordered = sorted(nodes, key=lambda n: n.up)
    for t in arrivals(rng, run.start + 2 * SEC, run.end, rate, peak):
        count = clients_at(t)
        client = rng.choice(ordered[:count] if t >= Story.COREDNS_RESTART else nodes)
        name, qtype, rcode = cluster_name(rng)
        size = len(name) + 18
        answer = rcode == "NOERROR" and qtype == "A"
        rsize = size + (16 if answer else 0) + (0 if rcode == "NOERROR" else 75)
        records.append(
            (
                t,
                "stdout",
                fmt.coredns_query(
                    client.ip,
                    rng.randint(32768, 60999),
                    rng.randint(0, 65535),
                    qtype,
                    name,
                    "tcp",
                    size,
                    65535,
                    rcode,
                    "qr,aa,rd",
                    rsize,
                    int(rng.lognormvariate(11.5, 0.6)),
                ),
            )
        )
    for t in arrivals(rng, run.start, run.end, lambda _: 1 / 90, 1 / 90):
        records.append(
            (
                t,
                "stdout",
                f"[ERROR] plugin/errors: 2 {NOISY_UPSTREAM} AAAA: read udp "
                f"{pod.node.pod_ips[0]}:{rng.randint(32768, 60999)}->{VPC_RESOLVER}:53: "
                "i/o timeout",
            )
        )
    if pod.deleted is not None and run.end == pod.deleted:
        records.append(
            (run.end - 5 * SEC, "stdout", "[INFO] SIGTERM: Shutting down servers then terminating")
        )
        records.append(
            (
                run.end - 5 * SEC + 300_000,
                "stdout",
                "[INFO] plugin/health: Going into lameduck mode for 5s",
            )
        )
    records.sort(key=lambda r: r[0])
    yield from records


def node_cache_startup(t: int) -> Iterator[tuple[int, str, str]]:
    go = [
        "[INFO] Starting node-cache image: 1.22.13",
        "[INFO] Using Corefile /etc/Corefile",
        "[INFO] Using Pidfile ",
        "[INFO] Skipping kube-dns configmap sync as no directory was specified",
        "[INFO] Added interface - nodelocaldns",
    ]
    for k, text in enumerate(go):
        yield t + k * 900_000, "stderr", fmt.go_log(t + k * 900_000, text)
    t += 120 * 1_000_000
    bind = f"{LINK_LOCAL_DNS},{KUBE_DNS_VIP}"
    plain = [
        f"cluster.local.:53 on {bind}",
        f"in-addr.arpa.:53 on {bind}",
        f"ip6.arpa.:53 on {bind}",
        f".:53 on {bind}",
        f"[INFO] plugin/reload: Running configuration SHA512 = {NODECACHE_SHA}",
        "CoreDNS-1.9.3",
        "linux/amd64, go1.19.4, ",
    ]
    for k, text in enumerate(plain):
        yield t + k * 21_000, "stdout", text


def dns_broken(node: Node, t: int) -> bool:
    """Cluster names fail on a node between the CoreDNS restart (its new endpoints never
    reach the node's broken rules) and the node's reboot."""
    return Story.COREDNS_RESTART + 15 * SEC <= t < node.down


def node_cache_records(
    cluster: Cluster, node: Node, pod: Pod, run: Run
) -> Iterator[tuple[int, str, str]]:
    rng = rng_for(cluster.seed, "node-local-dns", pod.uid, run.restart)
    records: list[tuple[int, str, str]] = []
    if run.start > Story.START:
        records.extend(node_cache_startup(run.start + int(rng.uniform(0.3, 1.0) * SEC)))

    def rate(t: int) -> float:
        return 0.5 + day_shape(t)

    broken_from = max(run.start + 2 * SEC, Story.COREDNS_RESTART + 15 * SEC)
    failing = arrivals(rng, broken_from, min(run.end, node.down), lambda _: 9.0, 9.0)
    for t in heapq.merge(arrivals(rng, run.start + 2 * SEC, run.end, rate, 1.5), failing):
        client = rng.choice(node.pod_ips)
        port, qid = rng.randint(32768, 60999), rng.randint(0, 65535)
        if dns_broken(node, t):
            svc, ns = rng.choice(SERVICES)
            name = f"{svc}.{ns}.svc.cluster.local."
            qtype = "A" if rng.random() < 0.8 else "AAAA"
            size = len(name) + 18
            t_err = t + int(rng.uniform(2.0, 2.05) * SEC)
            records.append(
                (
                    t_err,
                    "stdout",
                    f"[ERROR] plugin/errors: 2 {name} {qtype}: "
                    f"dial tcp {KUBE_DNS_UPSTREAM}:53: i/o timeout",
                )
            )
            records.append(
                (
                    t_err + 40_000,
                    "stdout",
                    fmt.coredns_query(
                        client,
                        port,
                        qid,
                        qtype,
                        name,
                        "udp",
                        size,
                        512,
                        "SERVFAIL",
                        "qr,rd",
                        size,
                        t_err - t,
                    ),
                )
            )
            continue
        name, qtype = nxdomain_name(rng)
        size = len(name) + 18
        cached = rng.random() < 0.7
        duration = (
            int(rng.lognormvariate(11.0, 0.5)) if cached else int(rng.lognormvariate(14.0, 0.5))
        )
        records.append(
            (
                t + duration,
                "stdout",
                fmt.coredns_query(
                    client,
                    port,
                    qid,
                    qtype,
                    name,
                    "udp",
                    size,
                    512,
                    "NXDOMAIN",
                    "qr,aa,rd",
                    size + 75,
                    duration,
                ),
            )
        )
    for t in arrivals(rng, run.start, run.end, lambda _: 1 / 200, 1 / 200):
        records.append(
            (
                t,
                "stdout",
                f"[ERROR] plugin/errors: 2 {NOISY_UPSTREAM} AAAA: read udp "
                f"{node.ip}:{rng.randint(32768, 60999)}->{VPC_RESOLVER}:53: i/o timeout",
            )
        )
    if pod.deleted is not None and run.end == pod.deleted:
        records.append(
            (run.end - 1 * SEC, "stdout", "[INFO] SIGTERM: Shutting down servers then terminating")
        )
        records.append(
            (run.end - SEC + 500_000, "stderr", fmt.go_log(run.end - SEC, "[INFO] Tearing down"))
        )
    records.sort(key=lambda r: r[0])
    for t, stream, text in records:
        if t < run.end:
            yield t, stream, text


# --- RabbitMQ ----------------------------------------------------------------------------

RABBIT_NODES = ("rmq-0", "rmq-1", "rmq-2")
PLUGINS = (
    "rabbitmq_prometheus",
    "rabbitmq_peer_discovery_aws",
    "rabbitmq_peer_discovery_common",
    "rabbitmq_management",
    "rabbitmq_web_dispatch",
    "rabbitmq_management_agent",
    "rabbitmq_shovel",
)
CLIENT_APPS = (
    "dispatcher",
    "builds",
    "output-processor",
    "workflows-conductor",
    "vm-service",
    "github-checks",
    "contexts-service",
)


@dataclass
class RabbitNode:
    name: str
    ip: str
    restarts: list[tuple[int, int]]  # (stopped, started)

    def up_at(self, t: int) -> bool:
        return not any(stop - 4 * SEC <= t < start + 8 * SEC for stop, start in self.restarts)


def rabbit_nodes(seed: int) -> list[RabbitNode]:
    rng = rng_for(seed, "rabbit-nodes")
    out = []
    for k, name in enumerate(RABBIT_NODES):
        restarts = []
        for stop in (Story.RABBIT_ROLL[k], Story.QUEUE_RESTART[k]):
            stop += jitter(rng, 40)
            restarts.append((stop, stop + int(rng.uniform(70, 110) * SEC)))
        out.append(RabbitNode(name, f"10.20.4.{10 + k}", restarts))
    return out


class Pids:
    """Erlang process ids the way a node hands them out: a serial that grows, restarting
    low after a node restart."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def next(self, t: int, node: RabbitNode) -> str:
        since = max(
            [Story.START - 5 * 24 * HOUR] + [start for _, start in node.restarts if start <= t]
        )
        high = 1 + (t - since) // (3 * HOUR)
        return f"<0.{self.rng.randint(600, 32767)}.{high}>"


def rabbit_records(
    cluster: Cluster, rnode: RabbitNode, everyone: list[RabbitNode]
) -> Iterator[str]:
    rng = rng_for(cluster.seed, "rabbit", rnode.name)
    pids = Pids(rng)
    scale = cluster.scale
    events: list[tuple[int, int, str]] = []
    seq = 0

    def add(t: int, level: str, pid: str, message: str) -> None:
        nonlocal seq
        seq += 1
        events.append((t, seq, fmt.rabbit(t, level, pid, message)))

    clients = [
        (ip, f"{app}-{suffix(rng, 10)}-{suffix(rng)}")
        for app in CLIENT_APPS
        for ip in rng.sample(
            [ip for n in cluster.nodes for ip in n.pod_ips], max(2, round(3 * scale))
        )
    ]
    rate = lambda t: 0.8 * scale * (0.6 + 0.8 * day_shape(t))  # noqa: E731
    for t in arrivals(rng, Story.START, Story.END, rate, 1.5 * scale):
        if not rnode.up_at(t):
            continue
        ip, name = rng.choice(clients)
        pid = pids.next(t, rnode)
        peer = f"{ip}:{rng.randint(32768, 60999)} -> {rnode.ip}:5672"
        add(t, "info", pid, f"accepting AMQP connection {pid} ({peer})")
        named = f"{peer} - {name}" if rng.random() < 0.6 else peer
        t_auth = t + int(rng.uniform(2, 9) * 1_000_000)
        add(
            t_auth,
            "info",
            pid,
            f"connection {pid} ({named}): "
            "user 'circleci' authenticated and granted access to vhost '/'",
        )
        life = rng.lognormvariate(3.8, 0.9) if rng.random() < 0.7 else rng.lognormvariate(9.3, 0.8)
        close = t_auth + int(life * SEC)
        forced = next((stop for stop, _ in rnode.restarts if t_auth < stop <= close), None)
        detail = f"{named}, vhost: '/', user: 'circleci'"
        if forced is not None:
            t_f = forced + int(rng.uniform(0.2, 1.5) * SEC)
            add(
                t_f,
                "error",
                pid,
                f"Error on AMQP connection {pid} ({detail}, state: running), channel 0:\n"
                " operation none caused a connection exception connection_forced: "
                "\"broker forced connection closure with reason 'shutdown'\"",
            )
            continue
        if close >= Story.END:
            continue
        roll = rng.random()
        if roll < 0.02:
            add(
                close,
                "warning",
                pid,
                f"closing AMQP connection {pid} ({detail}):\n"
                "client unexpectedly closed TCP connection",
            )
        elif roll < 0.03:
            add(
                close,
                "error",
                pid,
                f"closing AMQP connection {pid} ({detail}):\n"
                "missed heartbeats from client, timeout: 60s",
            )
        else:
            add(close, "info", pid, f"closing AMQP connection {pid} ({detail})")

    episodes = (
        (Story.RABBIT_ROLL[0], Story.RABBIT_MITIGATED, "queue.declare", "builds.dispatch"),
        (Story.QUEUE_RESTART[0], Story.QUEUE_MITIGATED, "basic.consume", "github.checks.status"),
    )
    for begin, end, operation, queue in episodes:

        def trouble(t: int, begin=begin, end=end) -> float:
            return 2.2 * scale if begin <= t < end else 0.0

        for t in arrivals(rng, begin, end, trouble, 2.2 * scale):
            if not rnode.up_at(t):
                continue
            ip, name = rng.choice(clients)
            pid = pids.next(t, rnode)
            peer = f"{ip}:{rng.randint(32768, 60999)} -> {rnode.ip}:5672"
            down = [o for o in everyone if o is not rnode and not o.up_at(t)]
            roll = rng.random()
            if roll < 0.35:
                add(t, "info", pid, f"accepting AMQP connection {pid} ({peer})")
                add(
                    t + 10 * SEC,
                    "error",
                    pid,
                    f"closing AMQP connection {pid} ({peer}):\n{{handshake_timeout,frame_header}}",
                )
            elif roll < 0.55 or not down and operation == "queue.declare" and roll < 0.7:
                add(
                    t,
                    "warning",
                    pid,
                    f"closing AMQP connection {pid} ({peer}, vhost: '/', user: 'circleci'):\n"
                    "client unexpectedly closed TCP connection",
                )
            else:
                home = (
                    down[0].name
                    if down
                    else rng.choice([o.name for o in everyone if o is not rnode])
                )
                if operation == "queue.declare":
                    reason = (
                        f"home node 'rabbit@{home}' of durable queue '{queue}' "
                        "in vhost '/' is down or inaccessible"
                    )
                else:
                    reason = f"no queue '{queue}' in vhost '/'"
                add(
                    t,
                    "error",
                    pid,
                    f"Channel error on connection {pid} "
                    f"({peer}, vhost: '/', user: 'circleci'), channel 1:\n"
                    f"operation {operation} caused a channel exception not_found: {reason}",
                )

    if rnode.name == "rmq-1":
        for t in arrivals(
            rng, Story.QUEUE_TRICKLE, Story.QUEUE_RESTART[0], lambda _: 1 / 35, 1 / 35
        ):
            pid = pids.next(t, rnode)
            add(t, "error", pid, "Restarting crashed queue 'github.checks.status' in vhost '/'.")
            add(
                t + 180 * 1_000_000,
                "warning",
                pid,
                "Queue github.checks.status in vhost / dropped 0/0/0 persistent messages and "
                f"{rng.randint(3, 40)} transient messages after unclean shutdown",
            )

    for other in everyone:
        for stop, start in other.restarts:
            if other is rnode:
                for t, level, pid, message in rabbit_restart(rnode, stop, start, rng):
                    add(t, level, pid, message)
            else:
                pid = f"<0.{rng.randint(480, 520)}.0>"
                t = stop + int(rng.uniform(0.5, 2.0) * SEC)
                add(t, "info", pid, f"rabbit on node 'rabbit@{other.name}' down")
                add(
                    t + 30 * 1_000_000,
                    "info",
                    pid,
                    f"node 'rabbit@{other.name}' down: connection_closed",
                )
                t = start + int(rng.uniform(3, 6) * SEC)
                add(t, "info", pid, f"node 'rabbit@{other.name}' up")
                add(
                    t + int(rng.uniform(2, 4) * SEC),
                    "info",
                    pid,
                    f"rabbit on node 'rabbit@{other.name}' up",
                )
    events.sort()
    for _, _, text in events:
        yield text


def rabbit_restart(
    node: RabbitNode, stop: int, start: int, rng: random.Random
) -> Iterator[tuple[int, str, str, str]]:
    pid = f"<0.{rng.randint(9000, 30000)}.{rng.randint(1, 40)}>"
    yield stop, "info", pid, "RabbitMQ is asked to stop..."
    apps = [
        "rabbitmq_prometheus",
        "rabbitmq_management",
        "rabbitmq_web_dispatch",
        "rabbitmq_management_agent",
        "rabbitmq_peer_discovery_aws",
        "rabbitmq_peer_discovery_common",
        "rabbit",
        "rabbitmq_prelaunch",
        "rabbit_common",
    ]
    yield (
        stop + 2_000_000,
        "info",
        pid,
        "Stopping RabbitMQ applications and their dependencies in the following order:\n"
        + "\n".join(f"    {a}" for a in apps),
    )
    yield stop + int(0.9 * SEC), "info", "<0.584.0>", "stopped TCP listener on [::]:5672"
    yield stop + int(2.6 * SEC), "info", pid, "Successfully stopped RabbitMQ and its dependencies"
    boot = "<0.230.0>"
    t = start - int(rng.uniform(6, 9) * SEC)
    banner = [
        ("notice", "<0.44.0>", "Application syslog exited with reason: stopped"),
        (
            "notice",
            boot,
            "Logging: switching to configured handler(s); "
            "following messages may not be visible in this log output",
        ),
        ("notice", boot, "Logging: configured log handlers are now ACTIVE"),
        ("info", boot, "ra: starting system quorum_queues"),
        (
            "info",
            boot,
            "starting Ra system: quorum_queues in directory: "
            f"/var/lib/rabbitmq/mnesia/rabbit@{node.name}/quorum/rabbit@{node.name}",
        ),
        ("info", boot, "ra system 'quorum_queues' running pre init for 0 registered servers"),
        (
            "info",
            boot,
            f"\n Starting RabbitMQ {RABBIT_VERSION} on Erlang 25.2.3 [jit]\n"
            " Copyright (c) 2007-2023 VMware, Inc. or its affiliates.\n"
            " Licensed under the MPL 2.0. Website: https://rabbitmq.com",
        ),
        (
            "info",
            boot,
            f"\n node           : rabbit@{node.name}\n"
            " home dir       : /var/lib/rabbitmq\n"
            " config file(s) : /etc/rabbitmq/rabbitmq.conf\n"
            " cookie hash    : 3q2uYbYzxQq1K1rmWcJ0Wg==\n"
            f" log(s)         : /var/log/rabbitmq/rabbit@{node.name}.log\n"
            f" data dir       : /var/lib/rabbitmq/mnesia/rabbit@{node.name}",
        ),
        ("info", boot, "Running boot step pre_boot defined by app rabbit"),
        ("info", boot, "Waiting for Mnesia tables for 30000 ms, 9 retries left"),
        ("info", boot, "Successfully synced tables from a peer"),
        ("info", boot, "Ready to start client connection listeners"),
        ("info", "<0.611.0>", "started TCP listener on [::]:5672"),
        (
            "info",
            boot,
            "Server startup complete; 7 plugins started.\n"
            + "\n".join(f" * {plugin}" for plugin in PLUGINS),
        ),
    ]
    for k, (level, p, message) in enumerate(banner):
        t += int(rng.uniform(0.05, 0.8) * SEC)
        if k == len(banner) - 1:
            t = max(t, start)
        yield t, level, p, message
