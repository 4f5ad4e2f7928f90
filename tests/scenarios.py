"""Synthetic event frames for the analysis tests: two incidents of different shapes.

``reference_scenario`` follows the shape of the 2023-03-14 incident (kube-proxy rollback,
a trickle of sync failures, the upgrade resumed, a spike on every node, DNS restarted and
worse, nodes restarted one by one, then two RabbitMQ episodes after restarts, plus a decoy
deploy). ``ingress_scenario`` is another year, other programs and another cause: a config
push to an ingress controller on three of six edge hosts, 502s on those three only, a
restart of the controller on an untouched host just before, and a rollback that ends it.

Rows are drawn from Poisson counts per minute and host with a fixed seed, so each frame is
the same on every run; ``Scenario.expect`` holds what the analysis should find.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from timeline.schema import EVENT_SCHEMA


def _naive(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "us")


class EventBuilder:
    """Collects rows in the event frame schema; ``frame()`` numbers lines per file."""

    COLUMNS = (
        "source",
        "host",
        "component",
        "level",
        "kind",
        "message",
        "template",
        "attrs",
        "file",
    )

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.times: list[np.ndarray] = []
        self.columns: dict[str, list] = {c: [] for c in self.COLUMNS}

    def _add(self, ts: np.ndarray, **values: object) -> None:
        n = len(ts)
        self.times.append(ts)
        for column in self.COLUMNS:
            value = values[column]
            self.columns[column].extend(value if isinstance(value, list) else [value] * n)

    def logs(
        self,
        *,
        source: str,
        component: str,
        hosts: list[str],
        template: str,
        level: str,
        start: datetime,
        end: datetime,
        per_min: float,
        message: str | None = None,
    ) -> None:
        """Rows of one signature on each host, a Poisson number per minute."""
        minutes = int((end - start).total_seconds() // 60)
        if minutes <= 0 or per_min <= 0:
            return
        for host in hosts:
            counts = self.rng.poisson(per_min, size=minutes)
            total = int(counts.sum())
            if total == 0:
                continue
            minute = np.repeat(np.arange(minutes), counts)
            offset_us = ((minute * 60 + self.rng.uniform(0, 60, size=total)) * 1e6).astype(
                "timedelta64[us]"
            )
            self._add(
                _naive(start) + offset_us,
                source=source,
                host=host,
                component=component,
                level=level,
                kind="log",
                message=message or template,
                template=template,
                attrs="{}",
                file=f"{source}/{host}.log",
            )

    def change(
        self,
        ts: datetime,
        change_type: str,
        target: str,
        *,
        old: str | None = None,
        new: str | None = None,
        actor: str | None = "sre",
        host: str | None = None,
        source: str = "changelog",
    ) -> None:
        attrs = {"change_type": change_type, "target": target, "actor": actor, "inferred": False}
        if old:
            attrs["from"] = old
        if new:
            attrs["to"] = new
        self._add(
            np.array([_naive(ts)]),
            source=source,
            host=host,
            component=target.split("/")[-1],
            level="info",
            kind="change",
            message=f"{change_type} {target}",
            template=f"{change_type} {target}",
            attrs=json.dumps(attrs),
            file="changes.json",
        )

    def jobs(
        self,
        *,
        source: str,
        executor: str,
        start: datetime,
        end: datetime,
        per_min: float,
        delay_s: tuple[float, float],
        fail_p: float = 0.02,
        name: str = "build",
    ) -> None:
        """Jobs queued at a steady rate, with a uniform queue delay and a failure chance."""
        minutes = int((end - start).total_seconds() // 60)
        counts = self.rng.poisson(per_min, size=minutes)
        total = int(counts.sum())
        if total == 0:
            return
        minute = np.repeat(np.arange(minutes), counts)
        offsets = minute * 60 + self.rng.uniform(0, 60, size=total)
        delays = self.rng.uniform(*delay_s, size=total)
        failed = (self.rng.uniform(size=total) < fail_p).tolist()
        queued = _naive(start) + (offsets * 1e6).astype("timedelta64[us]")
        attrs = [
            json.dumps(
                {
                    "job_id": f"{executor}-{start:%H%M}-{i}",
                    "name": name,
                    "status": "failed" if bad else "success",
                    "executor": executor,
                    "queued_at": f"{q}Z",
                    "queue_delay_s": round(float(d), 3),
                    "duration_s": 120.0,
                }
            )
            for i, (q, d, bad) in enumerate(zip(queued, delays, failed, strict=True))
        ]
        self._add(
            queued,
            source=source,
            host=None,
            component=name,
            level=["error" if bad else "info" for bad in failed],
            kind="job",
            message=[f"job {name} {'failed' if bad else 'success'}" for bad in failed],
            template=f"job {name} <STATUS>",
            attrs=attrs,
            file=f"{source}-jobs.json",
        )

    def frame(self) -> pl.DataFrame:
        rows = pl.DataFrame(
            {"ts": np.concatenate(self.times), **self.columns},
            schema_overrides={"host": pl.String},
        )
        rows = (
            rows.sort("ts")
            .with_columns(line=pl.int_range(1, pl.len() + 1).over("file"))
            .with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
        )
        return rows.select([pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()])


@dataclass
class Scenario:
    frame: pl.DataFrame
    expect: dict = field(default_factory=dict)


def _t(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


SYNC_FAILED = "Sync failed"
IPTABLES = "Failed to execute iptables-restore"
SERVFAIL = "[ERROR] plugin/errors: <NUM> <NAME> A: SERVFAIL"
AMQP_CLOSED = "Error on AMQP connection <PID> (<IP> -> <IP>): connection_closed_abruptly"
QUEUE_CORRUPT = "queue <NAME> in vhost '/': segment file corrupted, recovering"


def reference_scenario(seed: int = 7) -> Scenario:
    """The 2023-03-14 shape: rollback, trickle, upgrade, spike, DNS worse, node restarts,
    RabbitMQ episodes after restarts, and a decoy deploy 10 minutes before the upgrade."""
    t = lambda d, h, m=0: _t(2023, 3, d, h, m)  # noqa: E731
    b = EventBuilder(seed)
    nodes = [f"ip-10-20-1-{i}.ec2.internal" for i in range(11, 19)]
    rmq = ["rmq-0", "rmq-1", "rmq-2"]
    begin, finish = t(12, 12), t(15, 14)
    kp = {"source": "kube-proxy", "component": "kube-proxy"}
    dns = {"source": "coredns", "component": "node-local-dns"}
    rabbit = {"source": "rabbitmq", "component": "rabbitmq-server"}
    # background
    b.logs(
        **kp,
        hosts=nodes,
        template="Syncing iptables rules",
        level="info",
        start=begin,
        end=finish,
        per_min=0.2,
    )
    b.logs(
        **kp,
        hosts=nodes,
        template="Error syncing endpoint slices",
        level="warning",
        start=begin,
        end=finish,
        per_min=0.005,
    )
    b.logs(
        **dns,
        hosts=nodes,
        template="[INFO] <IP>:<NUM> - <NUM> A IN <NAME> NOERROR",
        level="info",
        start=begin,
        end=finish,
        per_min=0.2,
    )
    b.logs(
        **dns, hosts=nodes, template=SERVFAIL, level="error", start=begin, end=finish, per_min=0.004
    )
    b.logs(
        **rabbit,
        hosts=rmq,
        template="accepting AMQP connection <PID>",
        level="info",
        start=begin,
        end=finish,
        per_min=0.2,
    )
    b.logs(
        **rabbit,
        hosts=rmq,
        template="client unexpectedly closed TCP connection",
        level="warning",
        start=begin,
        end=finish,
        per_min=0.005,
    )
    # 03-13: upgrade, unrelated upgrade, rollback, then a trickle on three nodes
    b.change(
        t(13, 10),
        "upgrade",
        "daemonset/kube-system/kube-proxy",
        old="v1.23.16",
        new="v1.24.10",
        actor="infra-bot",
    )
    b.change(
        t(13, 11, 30),
        "upgrade",
        "daemonset/kube-system/aws-node",
        old="v1.11.4",
        new="v1.12.0",
        actor="infra-bot",
    )
    b.change(
        t(13, 14),
        "rollback",
        "daemonset/kube-system/kube-proxy",
        old="v1.24.10",
        new="v1.23.16",
        actor="infra-bot",
    )
    trickle = [nodes[1], nodes[4], nodes[6]]
    for template in (SYNC_FAILED, IPTABLES):
        b.logs(
            **kp,
            hosts=trickle,
            template=template,
            level="error",
            start=t(13, 14, 12),
            end=t(14, 6),
            per_min=0.02,
        )
        b.logs(
            **kp,
            hosts=trickle,
            template=template,
            level="error",
            start=t(14, 6),
            end=t(14, 18),
            per_min=0.05,
        )
    # 03-14: decoy, upgrade node by node, spike on every node
    b.change(
        t(14, 17, 30),
        "deploy",
        "deployment/web/frontend",
        old="v5.2.0",
        new="v5.3.0",
        actor="ci-bot",
    )
    for i, node in enumerate(nodes):
        b.change(
            t(14, 17, 40 + 2 * i),
            "upgrade",
            "daemonset/kube-system/kube-proxy",
            old="v1.23.16",
            new="v1.24.10",
            actor="infra-bot",
            host=node,
        )
    restart_at = {nodes[0]: t(14, 21, 5)}
    restart_at.update(
        {node: t(14, 21, 40) + timedelta(minutes=10 * i) for i, node in enumerate(nodes[1:])}
    )
    for node in nodes:
        for template in (SYNC_FAILED, IPTABLES):
            b.logs(
                **kp,
                hosts=[node],
                template=template,
                level="error",
                start=t(14, 18),
                end=restart_at[node],
                per_min=3.0,
            )
        b.logs(
            **dns,
            hosts=[node],
            template=SERVFAIL,
            level="error",
            start=t(14, 20, 22),
            end=restart_at[node],
            per_min=6.0,
        )
        b.logs(
            **dns,
            hosts=[node],
            template="[ERROR] plugin/errors: <NUM> <NAME> AAAA: read udp <IP>-><IP>: i/o timeout",
            level="error",
            start=t(14, 20, 22),
            end=restart_at[node],
            per_min=2.0,
        )
        b.change(restart_at[node], "reboot", f"node/{node}", actor="sre")
    b.logs(
        source="dispatcher",
        component="dispatcher",
        hosts=["dispatcher-0", "dispatcher-1"],
        template="upstream connect error or disconnect/reset before headers",
        level="error",
        start=t(14, 18, 6),
        end=t(14, 22, 40),
        per_min=4.0,
    )
    b.change(t(14, 18, 30), "restart", "deployment/circleci/dispatcher", actor="sre")
    b.change(
        t(14, 18, 50), "scale", "deployment/circleci/executor-pool", old="10", new="20", actor="sre"
    )
    b.change(t(14, 20, 20), "restart", "daemonset/kube-system/node-local-dns", actor="sre")
    b.change(t(14, 20, 25), "restart", "deployment/kube-system/coredns", actor="sre")
    # CI: docker recovers when the nodes are rolled, machine after a separate pool restart
    normal = (2.0, 20.0)
    b.jobs(
        source="circleci",
        executor="docker",
        start=begin,
        end=t(14, 18, 5),
        per_min=1.0,
        delay_s=normal,
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=t(14, 18, 5),
        end=t(14, 23),
        per_min=1.0,
        delay_s=(300, 1800),
        fail_p=0.3,
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=t(14, 23),
        end=t(15, 2, 55),
        per_min=1.0,
        delay_s=normal,
    )
    b.jobs(
        source="circleci",
        executor="machine",
        start=begin,
        end=t(14, 18, 8),
        per_min=0.5,
        delay_s=normal,
    )
    b.jobs(
        source="circleci",
        executor="machine",
        start=t(14, 18, 8),
        end=t(15, 1, 20),
        per_min=0.5,
        delay_s=(600, 2400),
    )
    b.jobs(
        source="circleci",
        executor="machine",
        start=t(15, 1, 20),
        end=finish,
        per_min=0.5,
        delay_s=normal,
    )
    b.change(t(15, 1, 10), "restart", "deployment/machine/provisioner", actor="sre")
    # 03-15 02:48: the rest of the infrastructure rolled, RabbitMQ errors, jobs wait again
    for i, host in enumerate(rmq):
        b.change(
            t(15, 2, 48 + 2 * i), "restart", "statefulset/rabbitmq/rabbitmq", actor="sre", host=host
        )
    b.logs(
        **rabbit,
        hosts=rmq,
        template=AMQP_CLOSED,
        level="error",
        start=t(15, 2, 50),
        end=t(15, 3, 35),
        per_min=3.0,
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=t(15, 2, 55),
        end=t(15, 4),
        per_min=1.0,
        delay_s=(400, 1200),
    )
    b.jobs(
        source="circleci",
        executor="docker",
        start=t(15, 4),
        end=finish,
        per_min=1.0,
        delay_s=normal,
    )
    # 03-15 09:48: RabbitMQ restarted for corrupted queues, GitHub checks delayed
    b.change(t(15, 9, 48), "restart", "statefulset/rabbitmq/rabbitmq", actor="sre")
    b.logs(
        **rabbit,
        hosts=rmq,
        template=QUEUE_CORRUPT,
        level="error",
        start=t(15, 9, 50),
        end=t(15, 11, 8),
        per_min=2.0,
    )
    b.jobs(
        source="github-actions",
        executor="label",
        start=begin,
        end=t(15, 9, 55),
        per_min=0.5,
        delay_s=(1.0, 15.0),
        name="checks",
    )
    b.jobs(
        source="github-actions",
        executor="label",
        start=t(15, 9, 55),
        end=t(15, 11, 10),
        per_min=0.5,
        delay_s=(600, 1800),
        name="checks",
    )
    b.jobs(
        source="github-actions",
        executor="label",
        start=t(15, 11, 10),
        end=finish,
        per_min=0.5,
        delay_s=(1.0, 15.0),
        name="checks",
    )
    return Scenario(
        frame=b.frame(),
        expect={
            "onset": t(14, 18),
            "upgrade": (t(14, 17, 40), "daemonset/kube-system/kube-proxy", "upgrade"),
            "rollback": (t(13, 14), "daemonset/kube-system/kube-proxy", "rollback"),
            "decoy": "deployment/web/frontend",
            "worse": ["daemonset/kube-system/node-local-dns", "deployment/kube-system/coredns"],
            "mitigations": [f"node/{n}" for n in nodes],
            "nodes": nodes,
            "trickle_hosts": trickle,
            "rabbit": [t(15, 2, 50), t(15, 9, 50)],
            "rabbit_changes": [t(15, 2, 48), t(15, 9, 48)],
        },
    )


BAD_GATEWAY = '"GET /api/cart HTTP/1.1" 502 upstream prematurely closed connection'


def ingress_scenario(seed: int = 11) -> Scenario:
    """2025: a config push to an ingress controller (its DaemonSet updated on three of six
    edge hosts first, as a canary) brings 502s on those three only; a controller restart
    on an untouched host just before and a checkout deploy earlier are decoys; rolling the
    config back host by host ends it."""
    t = lambda h, m=0, s=0: _t(2025, 6, 2, h, m) + timedelta(seconds=s)  # noqa: E731
    b = EventBuilder(seed)
    edges = [f"edge-{i}" for i in range(1, 7)]
    pushed = ["edge-2", "edge-4", "edge-5"]
    begin, finish = t(0), _t(2025, 6, 3, 0)
    ing = {"source": "ingress-nginx", "component": "controller"}
    b.logs(
        **ing,
        hosts=edges,
        template='"GET <PATH> HTTP/1.1" 200',
        level="info",
        start=begin,
        end=finish,
        per_min=0.5,
    )
    b.logs(
        **ing,
        hosts=edges,
        template="an upstream response is buffered to a temporary file",
        level="warning",
        start=begin,
        end=finish,
        per_min=0.01,
    )
    b.logs(
        source="checkout",
        component="checkout-api",
        hosts=["checkout-0", "checkout-1"],
        template="payment provider timeout after <NUM>ms",
        level="error",
        start=begin,
        end=finish,
        per_min=0.02,
    )
    b.change(t(9), "deploy", "deployment/shop/checkout-api", old="v2.3.0", new="v2.4.0")
    b.change(t(13, 50), "config", "configmap/payments/payments-flags")
    b.change(
        t(14, 2),
        "restart",
        "pod/ingress-nginx/ingress-nginx-controller-7c9f",
        host="edge-3",
        source="k8s-event",
    )
    rollback_at = {}
    for i, host in enumerate(pushed):
        b.change(
            t(14, 5, 30 * i),
            "config",
            "daemonset/ingress-nginx/ingress-nginx-controller",
            old="rev-41",
            new="rev-42",
            actor="platform-ci",
            host=host,
        )
        rollback_at[host] = t(15, 10 + i)
        b.change(
            rollback_at[host],
            "rollback",
            "daemonset/ingress-nginx/ingress-nginx-controller",
            old="rev-42",
            new="rev-41",
            actor="platform-oncall",
            host=host,
        )
        b.logs(
            **ing,
            hosts=[host],
            template=BAD_GATEWAY,
            level="error",
            start=t(14, 8),
            end=rollback_at[host],
            per_min=8.0,
        )
    b.change(t(14, 40), "scale", "deployment/shop/checkout-api", old="3", new="6")
    b.jobs(
        source="github-actions",
        executor="label",
        start=begin,
        end=t(14, 10),
        per_min=0.5,
        delay_s=(1, 10),
        name="smoke",
    )
    b.jobs(
        source="github-actions",
        executor="label",
        start=t(14, 10),
        end=t(15, 12),
        per_min=0.5,
        delay_s=(1, 10),
        fail_p=0.7,
        name="smoke",
    )
    b.jobs(
        source="github-actions",
        executor="label",
        start=t(15, 12),
        end=finish,
        per_min=0.5,
        delay_s=(1, 10),
        name="smoke",
    )
    return Scenario(
        frame=b.frame(),
        expect={
            "onset": t(14, 8),
            "push": (t(14, 5), "daemonset/ingress-nginx/ingress-nginx-controller", "config"),
            "rollback": (t(15, 10), "daemonset/ingress-nginx/ingress-nginx-controller"),
            "decoys": [
                "pod/ingress-nginx/ingress-nginx-controller-7c9f",
                "deployment/shop/checkout-api",
                "configmap/payments/payments-flags",
            ],
            "pushed": pushed,
        },
    )
