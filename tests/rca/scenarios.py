"""Incidents of different shapes, each written to a folder with its ground truth.

Every scenario is a function ``seed -> (World, Truth)``: it builds a
:class:`~tests.rca.world.World` (its own node names, programs, times, rates and sizes,
drawn from ``seed``) and says what caused the incident: the change or changes, the decoys
(changes that did not), the expected mitigations, or no change at all. :func:`build`
writes the world's files under a folder (the bundled sample is read where it lies).

>>> import tempfile
>>> root, truth = build("rollback", Path(tempfile.mkdtemp()), seed=7)
>>> sorted(p.name for p in root.iterdir())
['k8s', 'nodes']
>>> truth.causes[0].target.startswith("deployment/"), len(truth.mitigations)
(True, 1)
"""

from __future__ import annotations

import random
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sample_logs import SAMPLE_DIR, expected
from tests.rca.world import (
    HOUR,
    MIN,
    NS,
    SEC,
    Workload,
    World,
    coredns_program,
    daily_load,
    dind_program,
    kube_proxy_program,
    node_names,
    pool_node_names,
    service_program,
    suffix,
)

__all__ = ["SCENARIOS", "Cause", "Truth", "build"]


@dataclass(frozen=True)
class Cause:
    """A change by its target as the analysis names it (``deployment/shop/checkout``,
    ``configmap/kube-system/coredns``; for a change-log line, the words of its target),
    made at ``at`` by ``actor``; ``aliases`` are other targets the same action may be
    shown under (the Deployment that reloaded an edited ConfigMap), counted only when the
    change names the same actor."""

    target: str
    at: datetime
    aliases: tuple[str, ...] = ()
    actor: str | None = None


@dataclass(frozen=True)
class Truth:
    """What a scenario's incident is, and what caused it.

    ``onset`` is when the incident began (the analysis' incident nearest to it is judged);
    ``causes`` the contributing changes (empty: no change caused it); ``decoys`` changes
    that did not contribute; ``mitigations`` changes that ended it; ``recovered`` when the
    last of its trouble ended (the last error, the last delayed CI job queued).
    """

    scenario: str
    shape: str
    onset: datetime
    causes: tuple[Cause, ...]
    decoys: tuple[Cause, ...] = ()
    mitigations: tuple[Cause, ...] = ()
    recovered: datetime | None = None
    notes: dict = field(default_factory=dict)


def _dt(t: int) -> datetime:
    return datetime.fromtimestamp(t / NS, tz=UTC)


APPS = (
    ("payments-api", ("/v1/charges", "/v1/refunds", "/v1/customers")),
    ("checkout", ("/cart", "/checkout/confirm", "/checkout/shipping")),
    ("orders-svc", ("/orders", "/orders/{id}", "/orders/search")),
    ("inventory", ("/stock", "/stock/reserve", "/warehouses")),
    ("auth-gateway", ("/oauth/token", "/userinfo", "/login")),
    ("media-resizer", ("/resize", "/thumb", "/crop")),
    ("quote-engine", ("/quotes", "/quotes/price", "/rates")),
)
PEOPLE = (
    "maria@corp.example",
    "kenji@corp.example",
    "olu@corp.example",
    "priya@corp.example",
    "tom@corp.example",
    "lena@corp.example",
)
NAMESPACES = ("shop", "prod", "payments", "core", "web")
#: The accounts CI pipelines deploy with.
PIPELINES = (
    "system:serviceaccount:ci:deployer",
    "system:serviceaccount:gitlab-runner:helm-deploy",
)

#: Error messages a Go service writes with klog, each one signature.
APP_ERRORS = (
    (
        "E|handler.go:211",
        '"Request failed" err="upstream connect error or disconnect/reset '
        'before headers. reset reason: connection termination" code=503',
    ),
    (
        "E|client.go:87",
        '"Failed to query database" err="pq: too many connections for role \\"app\\""',
    ),
    (
        "E|handler.go:164",
        '"Panic recovered" err="runtime error: invalid memory address or nil pointer dereference"',
    ),
    ("E|cache.go:142", '"Cache lookup failed" err="dial tcp 10.96.14.3:6379: i/o timeout"'),
    (
        "E|grpc.go:301",
        '"RPC failed" method="/ledger.v1.Ledger/Post" err="rpc error: code = '
        'Unavailable desc = connection refused"',
    ),
)


def _fixed(message: tuple[str, str]) -> Callable[[random.Random], tuple[str, str]]:
    return lambda rng: message


def _with_port(code: str, text: str) -> Callable[[random.Random], tuple[str, str]]:
    """A message whose address varies line to line (masked into one signature)."""

    def make(rng: random.Random) -> tuple[str, str]:
        ip = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}"
        return code, text.replace("<IP>", ip).replace("<PORT>", str(rng.randint(32768, 60999)))

    return make


def _base(
    seed: int,
    *,
    hours_before: tuple[float, float],
    hours_after: tuple[float, float],
    n_nodes: tuple[int, int],
) -> tuple[World, int, random.Random]:
    """A world spanning some hours before and after an onset on a random day."""
    rng = random.Random(seed)
    day = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 700))
    onset = int((day + timedelta(hours=rng.uniform(6, 20))).timestamp()) * NS
    onset -= onset % MIN
    onset += rng.randint(0, 59) * SEC
    start = onset - int(rng.uniform(*hours_before) * HOUR)
    start -= start % MIN
    end = onset + int(rng.uniform(*hours_after) * HOUR)
    nodes = node_names(rng, rng.randint(*n_nodes))
    return World(seed=seed, start=start, end=end, nodes=nodes), onset, rng


def _app(
    world: World,
    rng: random.Random,
    *,
    nodes: list[str] | None = None,
    exclude: tuple[str, ...] = (),
) -> Workload:
    name, paths = rng.choice([a for a in APPS if a[0] not in exclude])
    namespace = rng.choice(NAMESPACES)
    chosen = nodes or rng.sample(world.nodes, max(2, min(len(world.nodes), rng.randint(2, 5))))
    major = rng.randint(1, 7)
    work = world.workload(
        "Deployment",
        namespace,
        name,
        service_program(name, paths),
        version=f"v{major}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        nodes=chosen,
    )
    world.background(work, rng.uniform(0.5, 1.2))
    return work


def _platform(world: World, rng: random.Random) -> tuple[Workload, Workload]:
    """kube-proxy on every node and CoreDNS on two, with their everyday lines."""
    proxy = world.workload(
        "DaemonSet",
        "kube-system",
        "kube-proxy",
        kube_proxy_program(),
        version=rng.choice(("v1.26.9", "v1.27.4", "v1.28.2")),
        image="registry.k8s.io/kube-proxy",
    )
    world.background(proxy, rng.uniform(0.2, 0.5))
    dns = world.workload(
        "Deployment",
        "kube-system",
        "coredns",
        coredns_program(),
        version=rng.choice(("1.10.1", "1.9.4")),
        nodes=rng.sample(world.nodes, 2),
        image="registry.k8s.io/coredns/coredns",
    )
    world.background(dns, rng.uniform(0.8, 2.0))
    return proxy, dns


def _next_version(version: str, rng: random.Random) -> str:
    head, minor, patch = version.lstrip("v").split(".")
    prefix = "v" if version.startswith("v") else ""
    return f"{prefix}{head}.{int(minor) + rng.randint(0, 1)}.{int(patch) + rng.randint(1, 3)}"


def _errors_after(
    world: World,
    work: Workload,
    reached: dict[str, int],
    end: int,
    per_min,
    message,
    *,
    delay_s: tuple[float, float] = (5, 40),
) -> None:
    """Errors on each node from shortly after the change reached it until ``end`` (an
    int, or per node)."""
    for node, t in reached.items():
        stop = end[node] if isinstance(end, dict) else end
        world.emit(work, node, t + int(world.rng.uniform(*delay_s) * SEC), stop, per_min, message)


def _unrelated_deploy(world: World, rng: random.Random, t: int, exclude: tuple[str, ...]) -> Cause:
    """A person's deploy of an app that has nothing to do with the incident."""
    other = _app(world, rng, exclude=exclude)
    world.roll(other, t, _next_version(other.version, rng), actor=rng.choice(PEOPLE))
    return Cause(other.target, _dt(t))


def _churn_decoys(world: World, *synced: Workload) -> tuple[Cause, ...]:
    """Routine churn over the world's span (GitOps also syncing ``synced`` as they are);
    every program it touches is a decoy."""
    names = world.churn(world.start, world.end, synced=synced)
    return tuple(Cause(name, _dt(world.end)) for name in names)


# --- the scenarios ---------------------------------------------------------------------------


def immediate_trigger(seed: int) -> tuple[World | None, Truth]:
    """A person rolls a service to a new version; its pods fail right after they start."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(4, 9))
    _platform(world, rng)
    app = _app(world, rng)
    at = onset - int(rng.uniform(2, 6) * MIN)
    reached = world.roll(
        app, at, _next_version(app.version, rng), actor=rng.choice(PEOPLE), step_s=(5, 20)
    )
    fixed = onset + int(rng.uniform(50, 100) * MIN)
    _errors_after(world, app, reached, fixed, rng.uniform(6, 15), _fixed(rng.choice(APP_ERRORS)))
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(15, 40) * MIN), (app.name,))
    config = f"{rng.choice(('feature-flags', 'rate-limits', 'banner-text'))}"
    world.config_edit(
        at - int(rng.uniform(50, 90) * MIN),
        app.namespace,
        config,
        rng.choice(PEOPLE),
        {"enabled": "true"},
    )
    churn = _churn_decoys(world)
    min_reached = min(reached.values())
    return world, Truth(
        "immediate_trigger",
        "an immediate trigger",
        _dt(min_reached + 20 * SEC),
        (Cause(app.target, _dt(at)),),
        decoys=(decoy, Cause(f"configmap/{app.namespace}/{config}", _dt(at)), *churn),
        recovered=_dt(fixed),
    )


def slow_burn(seed: int) -> tuple[World | None, Truth]:
    """A DaemonSet rolled to some nodes hours before leaves a trickle on exactly those
    nodes; the day's load turns it into an incident amid routine churn."""
    world, onset, rng = _base(seed, hours_before=(14, 20), hours_after=(2, 3), n_nodes=(6, 10))
    proxy, _ = _platform(world, rng)
    agent_name = rng.choice(("node-agent", "log-shipper", "csi-node", "net-agent"))
    agent = world.workload(
        "DaemonSet",
        "kube-system",
        agent_name,
        service_program(agent_name, ("/metrics", "/healthz")),
        version=f"v0.{rng.randint(10, 40)}.{rng.randint(0, 9)}",
    )
    world.background(agent, rng.uniform(0.2, 0.5))
    touched = rng.sample(world.nodes, max(2, len(world.nodes) // 3))
    at = onset - int(rng.uniform(4, 7) * HOUR)
    reached = world.roll(
        agent,
        at,
        _next_version(agent.version, rng),
        actor=rng.choice(PEOPLE),
        nodes=touched,
        step_s=(60, 240),
    )
    load = daily_load(peak_hour=(onset // NS % 86400) / 3600 + 0.4)
    message = _with_port(
        "E|conn.go:93",
        '"Dropped connection" peer="<IP>:<PORT>" err="write: broken pipe" queue="events"',
    )

    def rate(t: int) -> float:
        if t < onset:
            return 0.02 + 0.08 * load(t)
        return 2.0 + 10.0 * load(t)

    fixed = onset + int(rng.uniform(70, 110) * MIN)
    _errors_after(world, agent, reached, fixed, rate, message, delay_s=(60, 600))
    decoys = _churn_decoys(world, agent)
    other = _app(world, rng)
    t_restart = onset - int(rng.uniform(4, 12) * MIN)
    world.restart_pods(other, t_restart, other.nodes)
    return world, Truth(
        "slow_burn",
        "a slow burn from a partial rollout with routine churn",
        _dt(onset),
        (Cause(agent.target, _dt(at)),),
        decoys=(*decoys, Cause(other.target, _dt(t_restart)), Cause(proxy.target, _dt(onset))),
        notes={"touched": touched, "proxy": proxy.name},
        recovered=_dt(fixed),
    )


def cascade(seed: int) -> tuple[World | None, Truth]:
    """A person's Deployment change cascades: a ReplicaSet, pods on several nodes, events,
    the change log line; the service fails, and the one calling it too."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(2, 4), n_nodes=(5, 8))
    _platform(world, rng)
    app = _app(world, rng, nodes=rng.sample(world.nodes, rng.randint(3, 5)))
    caller = _app(world, rng, exclude=(app.name,))
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(3, 8) * MIN)
    version = _next_version(app.version, rng)
    reached = world.roll(
        app, at, version, actor=person, via="kubectl-client-side-apply", step_s=(15, 45)
    )
    world.note(
        at,
        "deploy",
        f"{app.namespace}/{app.name}",
        f"Deploy {app.name} {version}",
        person.split("@")[0],
    )
    fixed = onset + int(rng.uniform(60, 120) * MIN)
    _errors_after(world, app, reached, fixed, rng.uniform(4, 10), _fixed(rng.choice(APP_ERRORS)))
    calling = {n: min(reached.values()) for n in caller.nodes}
    _errors_after(
        world,
        caller,
        calling,
        fixed,
        rng.uniform(3, 8),
        _fixed(
            ("E|client.go:58", f'"Call failed" service="{app.name}" err="unexpected status 503"')
        ),
    )
    churn = _churn_decoys(world)
    return world, Truth(
        "cascade",
        "a person's action cascading through controllers",
        _dt(min(reached.values()) + 20 * SEC),
        (Cause(app.target, _dt(at)),),
        decoys=churn,
        notes={"person": person},
        recovered=_dt(fixed),
    )


def config_reload(seed: int) -> tuple[World | None, Truth]:
    """The DNS ConfigMap edited; CoreDNS reloads it (no restart) and starts failing the
    names of one zone."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(2, 3), n_nodes=(4, 8))
    _, dns = _platform(world, rng)
    app = _app(world, rng)
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(2, 5) * MIN)
    zone = rng.choice(("corp.internal.", "db.example.net.", "partners.example.org."))
    world.config_edit(
        at,
        "kube-system",
        "coredns",
        person,
        {
            "Corefile": f".:53 {{\n    errors\n    forward {zone} 10.9.{rng.randint(0, 9)}.53\n"
            "    cache 30\n    reload\n}\n"
        },
    )
    reloads = {}
    for node in dns.nodes:
        t = at + int(rng.uniform(20, 90) * SEC)
        sha = "".join(rng.choice("0123456789abcdef") for _ in range(128))
        for k, text in enumerate(
            (
                "[INFO] Reloading",
                f"[INFO] plugin/reload: Running configuration SHA512 = {sha}",
                "[INFO] Reloading complete",
            )
        ):
            world.lines[(dns.name, node)].append((t + k * 40_000_000, "", text))
        reloads[node] = t
    fixed = onset + int(rng.uniform(40, 90) * MIN)
    host = rng.choice(("ldap", "billing-db", "vault", "sso"))

    def failure(r: random.Random) -> tuple[str, str]:
        return "", (
            f"[ERROR] plugin/errors: 2 {host}.{zone} {r.choice(('A', 'AAAA'))}: "
            f"read udp 10.{r.randint(0, 3)}.{r.randint(0, 255)}.{r.randint(2, 250)}:"
            f"{r.randint(32768, 60999)}->10.9.0.53:53: i/o timeout"
        )

    _errors_after(world, dns, reloads, fixed, rng.uniform(5, 12), failure, delay_s=(2, 30))
    _errors_after(
        world,
        app,
        {n: at for n in app.nodes},
        fixed,
        rng.uniform(1, 3),
        _fixed(
            (
                "E|client.go:71",
                f'"Lookup failed" host="{host}.{zone.rstrip(".")}" err="server misbehaving"',
            )
        ),
        delay_s=(60, 120),
    )
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(10, 25) * MIN), (app.name,))
    churn = _churn_decoys(world)
    return world, Truth(
        "config_reload",
        "a config change with reloads and no restarts",
        _dt(min(reloads.values()) + 10 * SEC),
        (Cause("configmap/kube-system/coredns", _dt(at), (dns.target,), person),),
        decoys=(decoy, *churn),
        recovered=_dt(fixed),
    )


def thin_trickle(seed: int) -> tuple[World | None, Truth]:
    """A forwarder's address changed in the DNS ConfigMap; one CoreDNS replica, the one
    whose upstream path broke, fails a lookup every half minute or so and no more: too
    few for any fine bucket, plain over five minutes. The span is short, so the buckets
    are fine."""
    world, onset, rng = _base(seed, hours_before=(1.2, 1.8), hours_after=(0.8, 1.2), n_nodes=(4, 7))
    _, dns = _platform(world, rng)
    app = _app(world, rng)  # its lookups go to other replicas
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(1, 3) * MIN)
    upstream = f"10.{rng.randint(10, 90)}.{rng.randint(0, 9)}.53"
    world.config_edit(
        at,
        "kube-system",
        "coredns",
        person,
        {"Corefile": f".:53 {{\n    errors\n    forward . {upstream}\n    reload\n}}\n"},
    )
    broken = rng.choice(dns.nodes)
    name = rng.choice(("api.stripe.com.", "hooks.slack.com.", "oauth2.googleapis.com."))

    def failure(r: random.Random) -> tuple[str, str]:
        return "", (
            f"[ERROR] plugin/errors: 2 {name} {r.choice(('A', 'AAAA'))}: read udp "
            f"10.{r.randint(0, 3)}.{r.randint(0, 255)}.{r.randint(2, 250)}:"
            f"{r.randint(32768, 60999)}->{upstream}:53: i/o timeout"
        )

    fixed = onset + int(rng.uniform(25, 40) * MIN)
    _errors_after(world, dns, {broken: at}, fixed, rng.uniform(1.5, 2.5), failure, delay_s=(30, 60))
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(20, 30) * MIN), (app.name,))
    return world, Truth(
        "thin_trickle",
        "a config change that leaves one replica failing a lookup every half minute",
        _dt(at + 45 * SEC),
        (Cause("configmap/kube-system/coredns", _dt(at), (dns.target,), person),),
        decoys=(decoy,),
        recovered=_dt(fixed),
    )


def latent_load(seed: int) -> tuple[World | None, Truth]:
    """A pool limit lowered in a ConfigMap hours before: a first few new errors at low
    traffic, then the day's peak turns them into an incident."""
    world, onset, rng = _base(seed, hours_before=(12, 18), hours_after=(2, 3), n_nodes=(4, 8))
    _platform(world, rng)
    app = _app(world, rng)
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(3, 6) * HOUR)
    config = f"{app.name}-config"
    limit = rng.choice((10, 16, 20))
    world.config_edit(
        at, app.namespace, config, person, {"DB_POOL_MAX": str(limit), "DB_POOL_TIMEOUT": "2s"}
    )
    for node in app.nodes:
        t = at + int(rng.uniform(5, 40) * SEC)
        world.lines[(app.name, node)].append(
            (t, "I|config.go:77", f'"Configuration reloaded" file="/etc/{app.name}/config.yaml"')
        )
    load = daily_load(peak_hour=(onset // NS % 86400) / 3600 + 0.7, low=0.2)
    t_load = onset

    def rate(t: int) -> float:
        if t < t_load:
            return 0.05 * load(t)
        return 1.0 + 12.0 * load(t)

    message = _fixed(
        (
            "E|pool.go:133",
            f'"Connection pool exhausted" pool="db" max={limit} '
            'err="timeout waiting for a free connection"',
        )
    )
    fixed = onset + int(rng.uniform(60, 100) * MIN)
    _errors_after(world, app, {n: at for n in app.nodes}, fixed, rate, message, delay_s=(60, 900))
    decoy = _unrelated_deploy(world, rng, onset - int(rng.uniform(8, 30) * MIN), (app.name,))
    churn = _churn_decoys(world, app)
    return world, Truth(
        "latent_load",
        "a load-driven onset with a latent cause",
        _dt(onset),
        (Cause(f"configmap/{app.namespace}/{config}", _dt(at), (app.target,), person),),
        decoys=(decoy, *churn),
        recovered=_dt(fixed),
    )


def dns_to_ci(seed: int) -> tuple[World | None, Truth]:
    """CoreDNS upgraded: the new pods cannot reach upstream; CI jobs fail to start and
    wait longer, and the CI side had its own harmless change."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(4, 7))
    _, dns = _platform(world, rng)
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(2, 6) * MIN)
    reached = world.roll(dns, at, "1.11.1", actor=person, step_s=(20, 40))
    fixed = onset + int(rng.uniform(60, 120) * MIN)
    outside = rng.sample(
        (
            "github.com.",
            "registry-1.docker.io.",
            "api.github.com.",
            "s3.amazonaws.com.",
            "ghcr.io.",
        ),
        2,
    )

    def failure(r: random.Random) -> tuple[str, str]:
        return "", (
            f"[ERROR] plugin/errors: 2 {r.choice(outside)} A: dial udp "
            f"169.254.169.253:53: connect: network is unreachable"
        )

    _errors_after(world, dns, reached, fixed, rng.uniform(5, 12), failure, delay_s=(2, 20))
    executor = rng.choice(("docker", "machine"))
    normal = 3.0 if executor == "docker" else 25.0
    first = min(reached.values())
    world.ci_jobs(
        rng.uniform(1.0, 2.5),
        executor=executor,
        delay_s=lambda t: normal * (40 if first + 3 * MIN <= t < fixed else 1),
        fail_p=lambda t: 0.5 if first + 3 * MIN <= t < fixed else 0.03,
    )
    ci_change = onset - int(rng.uniform(50, 120) * MIN)
    world.note(
        ci_change,
        "config",
        "ci/runners",
        "Rotated the runner registration tokens",
        rng.choice(PEOPLE).split("@")[0],
    )
    churn = _churn_decoys(world)
    return world, Truth(
        "dns_to_ci",
        "a change in one system surfacing in another (DNS -> CI)",
        _dt(first + 10 * SEC),
        (Cause(dns.target, _dt(at)),),
        decoys=(Cause("ci/runners", _dt(ci_change)), *churn),
        recovered=_dt(fixed),
    )


def two_changes(seed: int) -> tuple[World | None, Truth]:
    """kube-proxy upgraded on every node breaks some syncs; half an hour later a service
    rolled to a bad version adds its own errors: both contributed."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(4, 8))
    proxy, _ = _platform(world, rng)
    app = _app(world, rng)
    people = rng.sample(PEOPLE, 2)
    t1 = onset - int(rng.uniform(3, 8) * MIN)
    reached = world.roll(
        proxy, t1, _next_version(proxy.version, rng), actor=people[0], step_s=(10, 30)
    )
    fixed = onset + int(rng.uniform(100, 150) * MIN)
    sync = _fixed(
        (
            "E|proxier.go:1537",
            '"Failed to execute iptables-restore" err="exit status '
            '2 (iptables-restore v1.8.7 (nf_tables): unknown option \\"--xor-mark\\"\\n)"',
        )
    )
    _errors_after(world, proxy, reached, fixed, rng.uniform(2, 5), sync)
    t2 = onset + int(rng.uniform(15, 25) * MIN)
    reached2 = world.roll(app, t2, _next_version(app.version, rng), actor=people[1], step_s=(5, 15))
    _errors_after(world, app, reached2, fixed, rng.uniform(5, 10), _fixed(rng.choice(APP_ERRORS)))
    churn = _churn_decoys(world)
    return world, Truth(
        "two_changes",
        "two contributing changes",
        _dt(min(reached.values()) + 10 * SEC),
        (Cause(proxy.target, _dt(t1)), Cause(app.target, _dt(t2))),
        decoys=churn,
        recovered=_dt(fixed),
    )


def rollback(seed: int) -> tuple[World | None, Truth]:
    """A bad version rolled out; rolling it back node by node ends the errors node by node."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(3, 5), n_nodes=(4, 9))
    _platform(world, rng)
    app = _app(world, rng, nodes=None)
    person = rng.choice(PEOPLE)
    good = app.version
    at = onset - int(rng.uniform(2, 6) * MIN)
    reached = world.roll(app, at, _next_version(good, rng), actor=person, step_s=(10, 30))
    back_at = onset + int(rng.uniform(40, 90) * MIN)
    undone = world.roll(
        app, back_at, good, actor=rng.choice(PEOPLE), step_s=(60, 180), via="kubectl-rollout"
    )
    _errors_after(world, app, reached, undone, rng.uniform(6, 14), _fixed(rng.choice(APP_ERRORS)))
    churn = _churn_decoys(world)
    return world, Truth(
        "rollback",
        "a rollback as mitigation",
        _dt(min(reached.values()) + 10 * SEC),
        (Cause(app.target, _dt(at)),),
        decoys=churn,
        mitigations=(Cause(app.target, _dt(back_at)),),
        recovered=_dt(max(undone.values())),
    )


def no_change(seed: int) -> tuple[World | None, Truth]:
    """An outside dependency times out: errors on every pod of the service calling it,
    with routine churn and a person's unrelated deploy around. No change caused it."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(4, 9))
    _platform(world, rng)
    app = _app(world, rng)
    provider = rng.choice(
        ("api.stripe.com", "hooks.slack.com", "api.twilio.com", "sqs.eu-west-1.amazonaws.com")
    )
    ended = onset + int(rng.uniform(30, 90) * MIN)
    message = _with_port(
        "E|client.go:112",
        f'"Upstream request failed" upstream="{provider}:443" err="dial tcp <IP>:443: i/o timeout"',
    )
    _errors_after(
        world,
        app,
        {n: onset for n in app.nodes},
        ended,
        rng.uniform(5, 12),
        message,
        delay_s=(0, 30),
    )
    decoy = _unrelated_deploy(world, rng, onset - int(rng.uniform(60, 150) * MIN), (app.name,))
    churn = _churn_decoys(world, app)
    return world, Truth(
        "no_change",
        "an incident no change caused",
        _dt(onset),
        (),
        decoys=(decoy, *churn),
        recovered=_dt(ended),
    )


def changelog_only(seed: int) -> tuple[World | None, Truth]:
    """A change made outside Kubernetes, written only in the change log and naming its
    target loosely ("the ingress tier"); the proxies it names start failing."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(2, 3), n_nodes=(4, 8))
    _platform(world, rng)
    name, words = rng.choice(
        (
            ("ingress-nginx-controller", "ingress tier"),
            ("envoy-gateway", "the gateway fleet"),
            ("haproxy-edge", "edge proxies"),
        )
    )
    edge_nodes = rng.sample(world.nodes, max(2, len(world.nodes) // 2))
    edge = world.workload(
        "Deployment",
        rng.choice(("ingress", "edge", "gateway")),
        name,
        service_program(name, ("/", "/api", "/static")),
        version=f"v{rng.randint(1, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}",
        nodes=edge_nodes,
    )
    world.background(edge, rng.uniform(0.8, 1.6))
    at = onset - int(rng.uniform(3, 9) * MIN)
    what = rng.choice(
        (
            "Lowered keepalive_timeout",
            "Raised worker_connections",
            "Rotated the TLS certificates",
            "Tuned the kernel conntrack limits",
        )
    )
    world.note(
        at,
        "config",
        words,
        f"{what} on the {words.removeprefix('the ')}",
        rng.choice(PEOPLE).split("@")[0],
    )
    fixed = onset + int(rng.uniform(40, 90) * MIN)
    _errors_after(
        world,
        edge,
        {n: at for n in edge_nodes},
        fixed,
        rng.uniform(5, 12),
        _with_port(
            "E|proxy.go:250", '"Upstream reset" client="<IP>:<PORT>" err="connection reset by peer"'
        ),
        delay_s=(30, 150),
    )
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(5, 20) * MIN), (name,))
    churn = _churn_decoys(world)
    return world, Truth(
        "changelog_only",
        "a change only in the change log with a vague target",
        _dt(onset),
        (Cause(words, _dt(at)),),
        decoys=(decoy, *churn),
        recovered=_dt(fixed),
    )


def broker_restart(seed: int) -> tuple[World | None, Truth]:
    """A person restarts the RabbitMQ StatefulSet (highest ordinal first); a durable
    queue's home node is gone for a while, channels fail on the other nodes and CI jobs
    wait. The brokers' own logs show the restarts."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(3, 6))
    _platform(world, rng)
    cluster = rng.choice(("rabbitmq", "broker", "mq"))
    namespace = rng.choice(("ci", "messaging", "infra"))
    brokers = [f"{cluster}-server-{i}" for i in range(rng.choice((3, 5)))]
    user = rng.choice(("ci", "builds", "app"))
    world.rabbit_background(brokers, rng.uniform(1.0, 2.5), user)
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(3, 6) * MIN)
    stamp = datetime.fromtimestamp(at // NS, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}
        }
    }
    world.audit_record(
        at,
        "patch",
        f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{cluster}-server"
        "?fieldManager=kubectl-rollout",
        "statefulsets",
        namespace,
        f"{cluster}-server",
        person,
        api_group="apps",
        request=patch,
        response={"kind": "StatefulSet", "metadata": {"name": f"{cluster}-server"}, **patch},
    )
    version = rng.choice(("3.12.13", "3.13.2"))
    t = at + int(rng.uniform(5, 20) * SEC)
    restarted = {}
    for node in reversed(brokers):
        start = t + int(rng.uniform(40, 90) * SEC)
        world.rabbit_restart(node, t, start, version, [b for b in brokers if b != node])
        restarted[node] = t
        t = start + int(rng.uniform(30, 90) * SEC)
    home, queue = brokers[0], rng.choice(("builds.dispatch", "jobs", "events.fanout"))
    fixed = onset + int(rng.uniform(40, 80) * MIN)
    for node in brokers[1:]:
        world.rabbit_lines(
            node,
            rng.uniform(3, 8),
            lambda r: (
                "error",
                f"Channel error on connection <PID> (10.{r.randint(0, 3)}.{r.randint(0, 255)}."
                f"{r.randint(2, 250)}:{r.randint(32768, 60999)} -> 10.0.9.{r.randint(2, 250)}:5672"
                f", vhost: '/', user: '{user}'), channel 1:\noperation queue.declare caused a "
                f"channel exception not_found: home node 'rabbit@{home}' of durable queue "
                f"'{queue}' in vhost '/' is down or inaccessible",
            ),
            start=restarted[home] + int(rng.uniform(5, 30) * SEC),
            end=fixed,
        )
    executor = rng.choice(("docker", "machine"))
    normal = 3.0 if executor == "docker" else 25.0
    world.ci_jobs(
        rng.uniform(1.0, 2.0),
        executor=executor,
        delay_s=lambda q: normal * (30 if onset + 2 * MIN <= q < fixed else 1),
    )
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(20, 60) * MIN), ())
    churn = _churn_decoys(world)
    return world, Truth(
        "broker_restart",
        "a broker restart failing a queue, felt by CI",
        _dt(restarted[home]),
        (Cause(f"statefulset/{namespace}/{cluster}-server", _dt(at)),),
        decoys=(decoy, *churn),
        recovered=_dt(fixed),
    )


def canary_without_nodes(seed: int) -> tuple[World | None, Truth]:
    """A DaemonSet's new version canaried on some nodes fails there only; the pod logs were
    copied out without their node folders, so only the events and the audit log tell which
    node ran which pod. A restart of another agent on an untouched node comes just before."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(2, 3), n_nodes=(5, 9))
    world.layout = "flat"
    _platform(world, rng)
    name = rng.choice(("cni-plugin", "dns-cache", "metrics-agent", "fluent-bit"))
    agent = world.workload(
        "DaemonSet",
        rng.choice(("kube-system", "monitoring", "logging")),
        name,
        service_program(name, ("/metrics", "/healthz", "/api/v1/push")),
        version=f"v{rng.randint(1, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
    )
    world.background(agent, rng.uniform(0.4, 1.0))
    canary = rng.sample(world.nodes, max(2, len(world.nodes) // 2 - 1))
    at = onset - int(rng.uniform(4, 10) * MIN)
    reached = world.roll(
        agent, at, _next_version(agent.version, rng), actor=rng.choice(PEOPLE), nodes=canary
    )
    fixed = onset + int(rng.uniform(50, 90) * MIN)
    _errors_after(
        world,
        agent,
        reached,
        fixed,
        rng.uniform(4, 10),
        _with_port(
            "E|export.go:77",
            '"Export failed" endpoint="<IP>:<PORT>" err="tls: failed to verify '
            'certificate: x509: certificate signed by unknown authority"',
        ),
    )
    other = world.workloads[0]  # kube-proxy
    quiet = [n for n in world.nodes if n not in canary]
    t_restart = min(reached.values()) + int(rng.uniform(1, 3) * MIN)
    world.restart_pods(other, t_restart, [rng.choice(quiet)])
    churn = _churn_decoys(world)
    return world, Truth(
        "canary_without_nodes",
        "a canary on some nodes, pod logs without node folders",
        _dt(min(reached.values()) + 20 * SEC),
        (Cause(agent.target, _dt(at)),),
        decoys=(Cause(other.target, _dt(t_restart)), *churn),
        notes={"canary": canary},
        recovered=_dt(fixed),
    )


#: Each cloud's pool: names it allows, how a change record names the pool, its label, and
#: the versions of an upgrade from and to.
POOLS = {
    "gke": (
        ("ci-runners-v2", "gha-runners", "build-pool"),
        "cloud.google.com/gke-nodepool",
        ("1.28.9-gke.1289000", "1.29.4-gke.1043002"),
    ),
    "aks": (
        ("runners", "cirunnersv2", "ghapool"),
        "kubernetes.azure.com/agentpool",
        ("1.28.9", "1.29.4"),
    ),
    "eks": (
        ("ci-runners", "gha-runners-v2", "build-ng"),
        "eks.amazonaws.com/nodegroup",
        ("v1.28.8-eks-ae9a62a", "v1.29.3-eks-ae9a62a"),
    ),
}
#: What Docker's daemon says when the node's iptables is not the one it knows.
DIND_ERROR = (
    "failed to start daemon: Error initializing network controller: error obtaining controller "
    'instance: failed to register "bridge" driver: unable to add return rule in '
    "DOCKER-ISOLATION-STAGE-1 chain:  (iptables failed: iptables --wait -A "
    "DOCKER-ISOLATION-STAGE-1 -j RETURN: iptables v1.8.9 (nf_tables): RULE_APPEND failed (No "
    "such file or directory): rule in chain DOCKER-ISOLATION-STAGE-1\n (exit status 4))"
)


def _pool_target(rng: random.Random, cloud: str, cluster: str, pool: str) -> str:
    """The pool as a change record names it: a change log's ``kind/name``, or the cloud's
    own resource name or ID."""
    if rng.random() < 0.4:
        kind = {"gke": "nodepool", "aks": "agentpool", "eks": "nodegroup"}[cloud]
        return f"{kind}/{pool}"
    if cloud == "gke":
        project = rng.choice(("acme-ci", "globex-build", "initech-prod"))
        zone = rng.choice(("us-central1-a", "europe-west1-b", "asia-east1-c"))
        return f"projects/{project}/locations/{zone}/clusters/{cluster}/nodePools/{pool}"
    if cloud == "aks":
        sub = "-".join(
            "".join(rng.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12)
        )
        return (
            f"/subscriptions/{sub}/resourceGroups/rg-{cluster}/providers/"
            f"Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{pool}"
        )
    region = rng.choice(("us-east-1", "eu-west-1", "ap-southeast-2"))
    group = "-".join(
        "".join(rng.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12)
    )
    return (
        f"arn:aws:eks:{region}:{rng.randint(10**11, 10**12 - 1)}:nodegroup/{cluster}/{pool}/{group}"
    )


def node_pool_upgrade(seed: int) -> tuple[World | None, Truth]:
    """A person upgrades the node pool the self-hosted GitHub Actions runners run on (GKE,
    AKS or EKS, drawn): the pool's nodes are replaced one by one, and Docker's daemon in
    each runner pod on a new node fails against its iptables, so the jobs those runners
    take fail. The new nodes' kubelets and programs start as the upgrade brings them up;
    the runner image pinned to the old iptables ends it. The runners are named in the
    jobs, never hosts; the new nodes carry the pool's name (GKE, AKS) or the audit log's
    and kubelet's labels do (EKS)."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(2, 3), n_nodes=(3, 5))
    cloud = rng.choice(tuple(POOLS))
    pools, label, (old_version, new_version) = POOLS[cloud]
    pool = rng.choice(pools)
    cluster = rng.choice(("ci", "build", "platform", "tools"))
    group = (
        "".join(rng.choice("0123456789abcdef") for _ in range(8))
        if cloud == "gke"
        else str(rng.randint(10_000_000, 99_999_999))
    )
    n_pool = rng.randint(2, 4)
    if cloud == "gke":
        default = pool_node_names(
            rng, cloud, cluster, "default-pool", rng.randint(3, 5), group=group[::-1]
        )
    elif cloud == "aks":
        default = pool_node_names(
            rng,
            cloud,
            cluster,
            "system",
            rng.randint(3, 5),
            group=str(rng.randint(10**7, 10**8 - 1)),
        )
    else:
        default = pool_node_names(rng, cloud, cluster, "system", rng.randint(3, 5))
    old = pool_node_names(rng, cloud, cluster, pool, n_pool, group=group)
    new = pool_node_names(rng, cloud, cluster, pool, n_pool, group=group, first=n_pool)
    world.nodes = [*default, *old]
    if rng.random() < 0.5:
        world.kubectl_logs.add("arc-runner-set")
    proxy, dns = _platform(world, rng)
    app = _app(world, rng, nodes=rng.sample(default, 2))
    runner_set = f"arc-runner-set-{suffix(rng)}-runner-"
    runners = world.workload(
        "Deployment",
        "arc-runners",
        "arc-runner-set",
        dind_program(),
        version="v24.0.9",
        nodes=old,
        image="docker.io/library/docker",
        container="dind",
        pod_prefix=runner_set,
    )
    world.background(runners, rng.uniform(0.5, 1.5))
    for node in world.nodes:
        world.kubelet_lines(node, world.start, world.end, rng.uniform(0.3, 0.8))
    churn = _churn_decoys(world)
    decoy = _unrelated_deploy(world, rng, onset - int(rng.uniform(60, 150) * MIN), (app.name,))

    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(3, 6) * MIN)
    target = _pool_target(rng, cloud, cluster, pool)
    world.note(
        at,
        "upgrade",
        target,
        rng.choice(
            (
                f"Node pool upgrade {old_version} -> {new_version}",
                f"Upgrade {pool} to {new_version} (surge 1)",
                f"Bumped the runner node pool to {new_version.split('-')[0]}",
            )
        ),
        person.split("@")[0],
    )
    labels = {label: pool, "kubernetes.io/os": "linux"}
    kubelet_version = new_version if new_version.startswith("v") else f"v{new_version}"
    started: dict[str, int] = {}
    t = at + int(rng.uniform(1, 3) * MIN)
    for gone, fresh in zip(old, new, strict=True):
        world.replace_node(
            gone,
            fresh,
            t,
            version=kubelet_version,
            labels=labels,
            cordoned_by="eks:node-manager" if cloud == "eks" else None,
            registered_in_audit=cloud == "eks",
        )
        started[fresh] = world.run_at(runners, fresh, t + 3 * MIN).start
        for work in (proxy, runners, *(w for w in (dns, app) if fresh in w.nodes)):
            world.background(work, rng.uniform(0.2, 0.6), nodes=[fresh])
        world.kubelet_lines(fresh, t + MIN, world.end, rng.uniform(0.3, 0.8))
        t += int(rng.uniform(4, 8) * MIN)
    fix_at = t + int(rng.uniform(30, 60) * MIN)
    fixed = world.roll(runners, fix_at, "v24.0.10", actor=rng.choice(PEOPLE), step_s=(20, 60))
    first_error = {n: s + int(rng.uniform(5, 40) * SEC) for n, s in started.items()}
    for node, begins in first_error.items():
        world.emit(
            runners,
            node,
            begins,
            fixed[node],
            rng.uniform(1.5, 4),
            _fixed(("logfmt|error", DIND_ERROR)),
        )

    def runner(q: int) -> tuple[str, bool] | None:
        alive = [r for r in runners.runs if r.start <= q < r.end]
        if not alive:
            return None
        run = rng.choice(alive)
        return run.pod, run.node in started and run.start >= started[run.node] and q < fixed[
            run.node
        ]

    org = rng.choice(("acme", "globex", "initech"))
    world.github_jobs(
        f"{org}/{rng.choice(('monorepo', 'api', 'web'))}",
        rng.uniform(0.8, 1.6),
        labels=["arc-runner-set"],
        runner=runner,
        delay_s=lambda q, broken: rng.uniform(40, 240) if broken else rng.uniform(2, 15),
    )
    hosted = iter(range(rng.randint(2, 50), 10**6))
    world.github_jobs(
        f"{org}/docs",
        rng.uniform(0.2, 0.5),
        labels=["ubuntu-latest"],
        runner=lambda q: (f"GitHub Actions {next(hosted)}", False),
        delay_s=lambda q, broken: rng.uniform(3, 20),
        workflow="Docs",
    )
    return world, Truth(
        "node_pool_upgrade",
        f"a node pool upgrade ({cloud}) breaking the self-hosted runners on its new nodes",
        _dt(min(first_error.values())),
        (Cause(target, _dt(at)),),
        decoys=(
            decoy,
            *churn,
            Cause("kube-proxy", _dt(world.end)),
            *(Cause(f"node/{n}", _dt(world.end)) for n in new),
        ),
        mitigations=(Cause(runners.target, _dt(fix_at)),),
        recovered=_dt(max(fixed.values())),
        notes={"cloud": cloud, "pool": pool, "nodes": [*default, *old, *new], "new": new},
    )


def _chart_objects(
    rng: random.Random, fullname: str, changed: dict[str, str]
) -> list[tuple[str, str, dict]]:
    """What a chart upgrade patches besides its workload: its ConfigMap (under one of the
    names charts give it) with ``changed``, and sometimes its Secret and its Service."""
    config = f"{fullname}-{rng.choice(('env', 'settings', 'properties', 'config', 'conf'))}"
    objects = [("configmaps", config, {"data": changed})]
    if rng.random() < 0.5:
        token = "".join(rng.choice(string.ascii_letters) for _ in range(24))
        objects.append(("secrets", fullname, {"data": {"api-token": token}}))
    if rng.random() < 0.5:
        port = {"name": "http", "port": 80, "targetPort": rng.choice((8080, 8443, 9090))}
        objects.append(("services", fullname, {"spec": {"ports": [port]}}))
    return objects


def helm_upgrade(seed: int) -> tuple[World | None, Truth]:
    """A person, or a CI pipeline's account, runs ``helm upgrade`` on a chart: the release
    Secret, the chart's ConfigMap (and maybe its Secret and Service) and its Deployment
    or StatefulSet are patched seconds apart, and the new pods fail. The same account
    upgrades another release a minute or two before, which did no harm."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(2, 4), n_nodes=(4, 8))
    _platform(world, rng)
    kind = rng.choice(("Deployment", "StatefulSet"))
    chart, paths = rng.choice(APPS)
    release = rng.choice((chart, rng.choice(("prod", "stable", "main", "blue"))))
    fullname = chart if release == chart else f"{release}-{chart}"
    namespace = rng.choice(NAMESPACES)
    app = world.workload(
        kind,
        namespace,
        fullname,
        service_program(fullname, paths),
        version=f"v{rng.randint(1, 7)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        nodes=rng.sample(world.nodes, rng.randint(2, min(4, len(world.nodes)))),
    )
    world.background(app, rng.uniform(0.5, 1.2))
    person = rng.choice(PEOPLE) if rng.random() < 0.6 else rng.choice(PIPELINES)
    level = rng.choice(("RequestResponse", "Metadata"))
    at = onset - int(rng.uniform(2, 6) * MIN)
    reached = world.helm_upgrade(
        at,
        release=release,
        namespace=namespace,
        revision=rng.randint(2, 40),
        actor=person,
        objects=_chart_objects(rng, fullname, {"POOL_SIZE": str(rng.choice((4, 8, 16)))}),
        work=app,
        version=_next_version(app.version, rng),
        level=level,
        wait=rng.random() < 0.5,
    )
    fixed = onset + int(rng.uniform(50, 100) * MIN)
    _errors_after(world, app, reached, fixed, rng.uniform(6, 15), _fixed(rng.choice(APP_ERRORS)))
    other = _app(world, rng, exclude=(chart,))
    other_at = at - int(rng.uniform(60, 150) * SEC)
    world.helm_upgrade(
        other_at,
        release=other.name,
        namespace=rng.choice((namespace, other.namespace)),
        revision=rng.randint(2, 40),
        actor=person,
        objects=_chart_objects(rng, other.name, {"LOG_LEVEL": "debug"}),
        work=other,
        version=_next_version(other.version, rng),
        level=level,
    )
    churn = _churn_decoys(world)
    return world, Truth(
        "helm_upgrade",
        "a Helm upgrade of a chart's config and workload",
        _dt(min(reached.values()) + 20 * SEC),
        (Cause(app.target, _dt(at)),),
        decoys=(Cause(other.target, _dt(other_at)), *churn),
        notes={"release": release, "kind": kind, "level": level, "actor": person},
        recovered=_dt(fixed),
    )


def _deny_egress(namespace: str, name: str, app: str, allowed: str) -> dict:
    """A NetworkPolicy that lets ``app``'s pods reach ``allowed`` only: no rule for DNS."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": {"app": allowed}}}],
                    "ports": [{"protocol": "TCP", "port": 5432}],
                }
            ],
        },
    }


def network_policy(seed: int) -> tuple[World | None, Truth]:
    """A person applies a NetworkPolicy in a service's namespace that allows its egress to
    its database only: DNS is cut off, and every pod of the service fails its lookups
    right after. Controllers keep writing endpoints, leases, the HPA's status and a
    webhook's caBundle all along; another person's RoleBinding and deploy come before."""
    world, onset, rng = _base(seed, hours_before=(8, 14), hours_after=(2, 3), n_nodes=(4, 8))
    _platform(world, rng)
    app = _app(world, rng)
    person = rng.choice(PEOPLE)
    name = rng.choice(("deny-egress", "default-deny-egress", f"{app.name}-egress", "lockdown"))
    database = rng.choice(("postgres", "ledger-db", "orders-db", "mysql"))
    at = onset - int(rng.uniform(1, 4) * MIN)
    world.apply(
        at,
        person,
        _deny_egress(app.namespace, name, app.name, database),
        resource="networkpolicies",
        api_group="networking.k8s.io",
    )
    fixed = onset + int(rng.uniform(40, 90) * MIN)
    lookup = _with_port(
        "E|client.go:71",
        f'"Lookup failed" host="{database}.{app.namespace}.svc.cluster.local" '
        f'err="dial tcp: lookup {database}.{app.namespace}.svc.cluster.local on '
        '10.96.0.10:53: read udp <IP>:<PORT>->10.96.0.10:53: i/o timeout"',
    )
    reached = dict.fromkeys(app.nodes, at)
    _errors_after(world, app, reached, fixed, rng.uniform(6, 14), lookup, delay_s=(3, 30))
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(15, 40) * MIN), (app.name,))
    binding_at = at - int(rng.uniform(30, 80) * MIN)
    binding_ns = rng.choice([n for n in NAMESPACES if n != app.namespace])
    binding = f"{rng.choice(('oncall', 'readers', 'deployers'))}-view"
    world.apply(
        binding_at,
        rng.choice(PEOPLE),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": binding, "namespace": binding_ns},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sre"}],
        },
        resource="rolebindings",
        api_group="rbac.authorization.k8s.io",
    )
    world.controller_upkeep(world.start, world.end, app.namespace, app.name)
    churn = _churn_decoys(world)
    return world, Truth(
        "network_policy",
        "a NetworkPolicy that cut a service off from DNS",
        _dt(at + 15 * SEC),
        (Cause(f"networkpolicy/{app.namespace}/{name}", _dt(at), actor=person),),
        decoys=(decoy, Cause(f"rolebinding/{binding_ns}/{binding}", _dt(binding_at)), *churn),
        notes={"policy": name, "namespace": app.namespace},
        recovered=_dt(fixed),
    )


def node_dies(seed: int) -> tuple[World | None, Truth]:
    """A node dies (a kernel panic) and comes back half an hour or so later. It writes no
    line of its death; its pods go with it. The other nodes' kube-proxies log that the
    service it ran has no ready endpoints, and a client service on other nodes fails to
    reach it, until it is back. A person's unrelated deploy came 10 to 20 minutes
    before; routine churn goes on. The cause is the node's silence."""
    world, die, rng = _base(seed, hours_before=(6, 12), hours_after=(2, 3), n_nodes=(3, 6))
    proxy, _ = _platform(world, rng)
    dead = rng.choice(world.nodes)
    others = [n for n in world.nodes if n != dead]
    if rng.random() < 0.7:
        # the nodes' kubelet journals were collected too
        for node in world.nodes:
            world.kubelet_lines(node, world.start, world.end, rng.uniform(1, 4))
    backend = _app(world, rng, nodes=[dead, *rng.sample(others, min(len(others), 1))])
    world.background(backend, rng.uniform(1.0, 2.5), nodes=[dead])
    client = _app(world, rng, nodes=others, exclude=(backend.name,))
    decoy = _unrelated_deploy(
        world, rng, die - int(rng.uniform(10, 20) * MIN), (backend.name, client.name)
    )
    churn = _churn_decoys(world)
    back = die + int(rng.uniform(20, 55) * MIN)
    world.node_dies(dead, die, back, kubelet_version=rng.choice(("v1.27.8", "v1.28.5")))
    healed = back + int(rng.uniform(1, 3) * MIN)
    service = f"{backend.namespace}/{backend.name}:http"
    no_endpoints = _fixed(
        (
            "E|proxier.go:1564",
            f'"Failed to sync endpoint for service" servicePortName="{service}" '
            'err="no ready endpoints"',
        )
    )
    _errors_after(
        world,
        proxy,
        {n: die for n in others},
        healed,
        rng.uniform(0.5, 2),
        no_endpoints,
        delay_s=(40, 90),
    )
    _errors_after(
        world,
        client,
        {n: die for n in client.nodes},
        healed,
        rng.uniform(4, 10),
        _fixed(APP_ERRORS[0]),
        delay_s=(20, 60),
    )
    return world, Truth(
        "node_dies",
        "a node that died, with a deploy before it",
        _dt(die + 40 * SEC),
        (Cause(f"node/{dead}", _dt(die)),),
        decoys=(decoy, *churn),
        recovered=_dt(healed),
        notes={"dead": dead, "die": _dt(die), "back": _dt(back)},
    )


#: CI-side changes that break a team's builds: (system, target as the change log names
#: it, what was done).
CI_CHANGES = {
    "github": (
        (".github/workflows/ci.yml", "Moved runs-on from ubuntu-22.04 to ubuntu-24.04"),
        ("actions runner image", "Bumped the self-hosted runner image to 2.317.0"),
        ("ci registry credentials", "Rotated the GHCR pull token used by the workflows"),
    ),
    "circleci": (
        (".circleci/config.yml", "Switched the machine image to ubuntu-2404:2024.05.1"),
        ("circleci orbs", "Upgraded the node orb to 5.2.0"),
        ("ci registry credentials", "Rotated the Docker Hub token in the org context"),
    ),
}
#: Changes near them that broke nothing.
QUIET_NOTES = (
    ("grafana dashboards", "Added panels for checkout latency"),
    ("pagerduty schedule", "Swapped the weekend on-call"),
    ("terraform/s3", "Turned on bucket versioning for the backups bucket"),
    ("renovate config", "Grouped the minor updates of the dev dependencies"),
)


def _team_jobs(
    world: World,
    rng: random.Random,
    system: str,
    per_15m: float,
    usual: float,
    failing: tuple[int, int, float] | None = None,
) -> None:
    """One small team's CI jobs, ``per_15m`` of them each 15 minutes, failing with the
    ``usual`` share, and from ``start`` to ``end`` of ``failing`` (``start, end, share``)
    with that share: GitHub Actions jobs on hosted runners (a failing job fails within a
    minute), or CircleCI docker jobs (a failure is the executor's: never started)."""
    per_min = per_15m / 15
    start, end, share = failing or (0, 0, usual)

    def fail_p(t: int) -> float:
        return share if start <= t < end else usual

    if system == "github":
        org = rng.choice(("acme", "globex", "initech", "hooli"))
        hosted = iter(range(rng.randint(2, 50), 10**6))
        draw = random.Random(rng.random())
        world.github_jobs(
            f"{org}/{rng.choice(('storefront', 'api', 'mobile-app', 'billing'))}",
            per_min,
            labels=[rng.choice(("ubuntu-latest", "ubuntu-22.04", "self-hosted"))],
            runner=lambda q: (f"GitHub Actions {next(hosted)}", draw.random() < fail_p(q)),
            delay_s=lambda q, broken: draw.uniform(2, 20),
            workflow=rng.choice(("CI", "Build and test", "ci")),
            fail_p=lambda t: 0.0,
        )
    else:
        world.ci_jobs(per_min, executor="docker", delay_s=lambda t: 4.0, fail_p=fail_p)


def ci_change_fails_jobs(seed: int) -> tuple[World | None, Truth]:
    """A CI-side change written in the change log (a workflow's runner image, an orb, a
    registry token) after which most of a small team's jobs fail: a few jobs each quarter
    hour, so the failures are few in number but nearly all of them. Other notes and a
    deploy lie nearby."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(3, 6))
    _platform(world, rng)
    app = _app(world, rng)
    system = rng.choice(("github", "circleci"))
    target, what = rng.choice(CI_CHANGES[system])
    at = onset - int(rng.uniform(1, 4) * MIN)
    fixed = onset + int(rng.uniform(60, 150) * MIN)
    share = rng.uniform(0.7, 1.0)
    usual = rng.uniform(0.0, 0.05)
    _team_jobs(world, rng, system, rng.uniform(3, 10), usual, (onset, fixed, share))
    world.note(at, "ci", target, what, rng.choice(PEOPLE).split("@")[0])
    quiet_at = at - int(rng.uniform(8, 40) * MIN)
    quiet_target, quiet_what = rng.choice(QUIET_NOTES)
    world.note(quiet_at, "config", quiet_target, quiet_what, rng.choice(PEOPLE).split("@")[0])
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(5, 25) * MIN), (app.name,))
    churn = _churn_decoys(world, app)
    return world, Truth(
        "ci_change_fails_jobs",
        f"a CI-side change ({system}) failing most of a small team's jobs",
        _dt(onset),
        (Cause(target, _dt(at)),),
        decoys=(Cause(quiet_target, _dt(quiet_at)), decoy, *churn),
        recovered=_dt(fixed),
        notes={"system": system, "share": share},
    )


def infra_fails_jobs(seed: int) -> tuple[World | None, Truth]:
    """An in-cluster registry mirror rolled to a version that refuses some pulls: a
    moderate share of CI jobs fail (not wait), while the mirror itself logs only a thin
    trickle of errors. A CI note and a deploy lie nearby."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(3, 6))
    _platform(world, rng)
    name = rng.choice(("registry-mirror", "harbor-proxy", "nexus-docker"))
    mirror = world.workload(
        "Deployment",
        rng.choice(("ci", "registry", "infra")),
        name,
        service_program(name, ("/v2/", "/v2/library/node/manifests", "/v2/_catalog")),
        version=f"v{rng.randint(2, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}",
        nodes=rng.sample(world.nodes, 2),
    )
    world.background(mirror, rng.uniform(0.3, 0.8))
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(2, 5) * MIN)
    reached = world.roll(
        mirror, at, _next_version(mirror.version, rng), actor=person, step_s=(20, 40)
    )
    fixed = onset + int(rng.uniform(60, 120) * MIN)
    _errors_after(
        world,
        mirror,
        reached,
        fixed,
        rng.uniform(0.1, 0.3),
        _with_port(
            "E|proxy.go:118",
            '"Upstream pull failed" client="<IP>:<PORT>" err="unexpected status 401 Unauthorized"',
        ),
        delay_s=(10, 60),
    )
    system = rng.choice(("github", "circleci"))
    share = rng.uniform(0.4, 0.7)
    usual = rng.uniform(0.0, 0.05)
    _team_jobs(world, rng, system, rng.uniform(4, 10), usual, (onset, fixed, share))
    ci_at = at - int(rng.uniform(10, 40) * MIN)
    ci_target, ci_what = rng.choice(QUIET_NOTES)
    world.note(ci_at, "config", ci_target, ci_what, rng.choice(PEOPLE).split("@")[0])
    decoy = _unrelated_deploy(world, rng, at - int(rng.uniform(5, 25) * MIN), (name,))
    churn = _churn_decoys(world, mirror)
    return world, Truth(
        "infra_fails_jobs",
        f"a registry mirror's rollout failing a share of CI jobs ({system})",
        _dt(onset),
        (Cause(mirror.target, _dt(at)),),
        decoys=(Cause(ci_target, _dt(ci_at)), decoy, *churn),
        recovered=_dt(fixed),
        notes={"system": system, "share": share},
    )


def flaky_ci(seed: int) -> tuple[World | None, Truth]:
    """The control: a small team whose jobs fail now and then all day (flaky tests, a
    tenth to nearly a third of them), with a CI note in the change log, while the
    incident is elsewhere: a service deployed with a bug. The flaky failures are no
    incident and the CI note no cause."""
    world, onset, rng = _base(seed, hours_before=(10, 16), hours_after=(2, 4), n_nodes=(3, 6))
    _platform(world, rng)
    system = rng.choice(("github", "circleci"))
    flaky = rng.uniform(0.1, 0.3)
    _team_jobs(world, rng, system, rng.uniform(3, 10), flaky)
    app = _app(world, rng)
    person = rng.choice(PEOPLE)
    at = onset - int(rng.uniform(2, 6) * MIN)
    reached = world.roll(app, at, _next_version(app.version, rng), actor=person)
    fixed = onset + int(rng.uniform(40, 90) * MIN)
    _errors_after(
        world,
        app,
        reached,
        fixed,
        rng.uniform(4, 10),
        _fixed(rng.choice(APP_ERRORS)),
    )
    ci_at = at - int(rng.uniform(10, 60) * MIN)
    ci_target, ci_what = rng.choice(CI_CHANGES[system])
    world.note(ci_at, "ci", ci_target, ci_what, rng.choice(PEOPLE).split("@")[0])
    churn = _churn_decoys(world, app)
    return world, Truth(
        "flaky_ci",
        f"a team's flaky CI ({system}, {flaky:.0%} failing) beside a bad deploy",
        _dt(min(reached.values())),
        (Cause(app.target, _dt(at)),),
        decoys=(Cause(ci_target, _dt(ci_at)), *churn),
        recovered=_dt(fixed),
        notes={"system": system, "flaky": flaky},
    )


def bundled(seed: int) -> tuple[World | None, Truth]:
    """The bundled sample (``sample_logs/``), read where it lies, judged by its own ground
    truth (``sample_logs.expected()``): its first incident, the change that triggered it,
    the changes that did nothing, and the node reboots and pool restart that ended it."""
    truth = expected()
    first = truth["incidents"][0]

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def changes(*roles: str) -> tuple[Cause, ...]:
        return tuple(
            Cause(c["target"], when(c["time"]))
            for c in truth["changes"]
            if c["role"] in roles and c["incident"] in (first["id"], None)
        )

    return None, Truth(
        "bundled",
        "the bundled incident",
        when(first["onset"]),
        changes("triggered-incident"),
        decoys=changes("unrelated"),
        mitigations=changes("mitigation"),
        recovered=when(first["end"]),
        notes={"path": str(SAMPLE_DIR)},
    )


SCENARIOS: dict[str, Callable[[int], tuple[World | None, Truth]]] = {
    f.__name__: f
    for f in (
        immediate_trigger,
        slow_burn,
        cascade,
        config_reload,
        thin_trickle,
        latent_load,
        dns_to_ci,
        two_changes,
        rollback,
        no_change,
        changelog_only,
        broker_restart,
        canary_without_nodes,
        node_pool_upgrade,
        helm_upgrade,
        node_dies,
        network_policy,
        ci_change_fails_jobs,
        infra_fails_jobs,
        flaky_ci,
        bundled,
    )
}


def build(name: str, root: Path, seed: int = 1) -> tuple[Path, Truth]:
    """Write scenario ``name`` under ``root`` (seeded); returns the folder to read and its
    truth. The bundled scenario's folder is the sample itself."""
    world, truth = SCENARIOS[name](zlib.crc32(name.encode()) + seed)
    if world is None:
        return Path(truth.notes["path"]), truth
    return world.write(root), truth
