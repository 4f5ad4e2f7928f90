"""The evidence model of contributing changes, on generated incidents of several shapes:
tests suited to counts, a slow burn from a partial rollout among routine churn, base
rates, cascades, change-log targets in words, pods read as their nodes, an incident no
change explains, and the error lines quoted behind each figure."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tests.scenarios import EventBuilder
from timeline.analysis import analyze
from timeline.analysis import contributors as contrib
from timeline.analysis.contributors.measures import JobCounter, binomial_tail, rate_test
from timeline.analysis.rates import to_timedelta
from timeline.reading.pods import node_of_host, pod_nodes, with_pod_log_origin
from timeline.schema import EVENT_SCHEMA

H = timedelta(hours=1)
M = timedelta(minutes=1)


# --- tests suited to counts ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binomial_tail_matches_the_sum_of_the_probabilities(seed):
    rng = random.Random(seed)
    for _ in range(40):
        n = rng.randrange(0, 60)
        k = rng.randrange(0, n + 2)
        p = rng.uniform(0.01, 0.99)
        terms = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
        assert binomial_tail(k, n, p) == pytest.approx(sum(terms[k:]), abs=1e-9)
        assert binomial_tail(k, n, p, upper=False) == pytest.approx(sum(terms[: k + 1]), abs=1e-9)


def test_rate_test_tells_a_rise_from_noise_and_from_a_fall():
    up, down = rate_test(1, 80, share_after=0.8)
    assert up < 1e-4 and down > 0.99
    up, down = rate_test(10, 38, share_after=0.8)  # 1/4 of the time, 1/4 of the rows
    assert up > 0.2 and down > 0.2
    up, down = rate_test(60, 1, share_after=0.5)
    assert down < 1e-15


# --- a slow burn from a partial rollout, with routine churn near the onset -------------------


def slow_burn(seed: int, *, restart: str | None = None):
    """A DaemonSet rolled by a person to some nodes hours before the onset starts a trickle
    on exactly those nodes; a load rise later turns it into an incident there. Routine
    churn lands every few minutes all along: GitOps syncs by a service account, pods a
    controller makes on random nodes, node status patches, CronJob runs.

    ``restart`` adds a restart of a program that logs none of the errors, minutes before
    the onset, on the touched nodes and one clean node: ``"trickle"``, the errors stay on
    the touched nodes; ``"own"``, they also begin on its clean node at once."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2024 + seed % 3, 1 + seed % 11, 3 + seed, tzinfo=UTC)
    n_nodes = rng.randrange(8, 15)
    prefix = rng.choice(["ip-10-0-3-", "node-", "worker-"])
    nodes = [f"{prefix}{i}" for i in rng.sample(range(10, 250), n_nodes)]
    program = rng.choice(["metrics-agent", "log-shipper", "cni-plugin"])
    touched = sorted(rng.sample(nodes, rng.randrange(3, n_nodes // 2 + 1)))
    error = rng.choice(["failed to flush batch: <ERR>", "sync loop stalled for <NUM>s"])
    start, end = day, day + 30 * H
    app = {"source": program, "component": program}
    b.logs(**app, hosts=nodes, template="tick", level="info", start=start, end=end, per_min=0.5)
    b.logs(
        **app,
        hosts=nodes,
        template="slow peer",
        level="warning",
        start=start,
        end=end,
        per_min=0.01,
    )
    rollout = day + rng.randrange(8, 12) * H + rng.randrange(0, 50) * M
    for i, node in enumerate(touched):
        b.change(
            rollout + i * 2 * M,
            "upgrade",
            f"daemonset/kube-system/{program}",
            old="1.8.2",
            new="1.9.0",
            actor="dana@example.com",
            host=node,
        )
    onset = rollout + rng.randrange(5, 9) * H
    b.logs(
        **app,
        hosts=touched,
        template=error,
        level="error",
        start=rollout + 20 * M,
        end=onset,
        per_min=0.03,
    )
    b.logs(
        **app,
        hosts=touched,
        template=error,
        level="error",
        start=onset,
        end=onset + 3 * H,
        per_min=4.0,
    )
    churn = day + 5 * M
    while churn < end:
        kind = rng.choice(["sync", "pod", "status", "cron"])
        node = rng.choice(nodes)
        if kind == "sync":
            b.change(
                churn,
                "config",
                "deployment/shop/cart",
                actor="system:serviceaccount:argocd:argocd-application-controller",
            )
        elif kind == "pod":
            b.change(
                churn,
                "create",
                f"pod/shop/cart-7d4f9c8b6-{rng.randrange(10**4):05d}",
                actor="replicaset-controller",
                host=node,
            )
        elif kind == "status":
            b.change(churn, "config", f"node/{node}", actor=f"system:node:{node}", host=node)
        else:
            b.change(churn, "create", "job/ops/backup-28391", actor="cronjob-controller", host=node)
        churn += rng.randrange(3, 9) * M
    if restart:
        at = onset - rng.randrange(4, 12) * M
        clean = rng.choice([n for n in nodes if n not in touched])
        other = rng.choice(["quote-engine", "search-api", "pricing"])
        for k, node in enumerate([*touched, clean]):
            b.change(
                at + k * 15 * timedelta(seconds=1),
                "restart",
                f"deployment/shop/{other}",
                actor=rng.choice(["oncall@example.com", "sam@example.com"]),
                host=node,
            )
        if restart == "own":
            b.logs(
                **app,
                hosts=[clean],
                template=error,
                level="error",
                start=at + M,
                end=onset + 3 * H,
                per_min=4.0,
            )
    return b.frame(), {"rollout": rollout, "onset": onset, "touched": touched, "program": program}


@pytest.fixture(scope="module", params=[4, 5, 6])
def burn(request):
    frame, truth = slow_burn(request.param)
    return truth, analyze(frame)


def incident_at(result, onset: datetime) -> dict:
    near = [r for r in result.incidents.to_dicts() if abs(r["onset"] - onset) <= 15 * M]
    assert len(near) == 1, result.incidents.select("onset", "sources")
    return near[0]


def test_slow_burn_the_partial_rollout_ranks_first_not_the_churn_near_the_onset(burn):
    truth, result = burn
    incident = incident_at(result, truth["onset"])
    rows = result.contributors.filter(pl.col("incident_id") == incident["incident_id"])
    top = rows.sort("rank").row(0, named=True)
    assert top["target"] == f"daemonset/kube-system/{truth['program']}"
    assert abs(top["ts"] - truth["rollout"]) <= M
    assert top["role"] == "precursor"
    assert top["touched_hosts"] == len(truth["touched"])
    assert top["part_cohort"] > 0 and top["cohort_p"] < 0.05
    assert any(
        s.startswith("cohort: errors") and f"on the {len(truth['touched'])} hosts it touched" in s
        for s in top["evidence"]
    )
    churn = rows.filter(pl.col("automated"))
    assert churn.height > 0
    assert churn.filter(pl.col("role").is_in(["trigger", "precursor", "made worse"])).height == 0


@pytest.mark.parametrize("seed", [7, 10, 12])
def test_a_restart_on_the_trickles_hosts_before_the_onset_is_no_trigger(seed):
    """The errors stood out on the restarted program's hosts because the rollout had put
    them there: the rollout stays first, and the restart is no cause, saying why."""
    frame, truth = slow_burn(seed, restart="trickle")
    rows = analyze(frame).contributors
    top = rows.sort("rank").row(0, named=True)
    assert top["target"] == f"daemonset/kube-system/{truth['program']}"
    restart = rows.filter(pl.col("change_type") == "restart").row(0, named=True)
    assert restart["role"] not in contrib.CAUSES, restart["evidence"]
    assert f"daemonset/kube-system/{truth['program']}" in restart["hosts_explained_by"]
    assert any("already had a trickle of them" in e for e in restart["evidence"])


@pytest.mark.parametrize("seed", [9, 11, 13])
def test_a_restart_whose_errors_began_on_a_clean_host_is_not_explained_by_the_trickle(seed):
    frame, _truth = slow_burn(seed, restart="own")
    restart = analyze(frame).contributors.filter(pl.col("change_type") == "restart")
    row = restart.row(0, named=True)
    assert row["hosts_explained_by"] is None
    assert row["role"] in contrib.CAUSES, row["evidence"]


def test_slow_burn_the_trickle_is_credited_to_the_change_on_its_hosts(burn):
    truth, result = burn
    incident = incident_at(result, truth["onset"])
    credited = result.changes.filter(pl.col("change_id") == incident["precursor_change_id"])
    assert credited["target"][0] == f"daemonset/kube-system/{truth['program']}"
    assert set(incident["precursor_change"].split()) >= {"upgrade"}


def test_nearness_alone_is_weak(burn):
    """Every part of a change that only happened to be near the onset is small."""
    truth, result = burn
    incident = incident_at(result, truth["onset"])
    rows = result.contributors.filter(pl.col("incident_id") == incident["incident_id"])
    near = rows.filter(pl.col("lead_s").is_between(0, 1800)).to_dicts()
    for row in near:
        assert (row["part_onset"] or 0) * contrib.WEIGHTS["onset"] <= contrib.WEIGHTS["onset"]
        assert row["score"] < rows.sort("rank")["score"][0]


def _host_tied(seed: int, *, erring: int, trickle: bool) -> pl.DataFrame:
    """A restart of a program that logs none of the errors, on five of ten nodes, ten
    minutes before another program's errors rise on ``erring`` of those five; with
    ``trickle``, those errors were already there in the quarter hour before it."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2024, 2 + seed, 10 + seed, 6, tzinfo=UTC)
    nodes = [f"{rng.choice(['node-', 'aks-pool1-vmss0000'])}{i}" for i in range(10)]
    touched = sorted(rng.sample(nodes, 5))
    hit = touched[:erring]
    app = {"source": "payments", "component": "payments"}
    b.logs(
        **app, hosts=nodes, template="tick", level="info", start=day, end=day + 12 * H, per_min=1
    )
    restart = day + rng.randrange(6, 8) * H + rng.randrange(0, 50) * M
    for i, node in enumerate(touched):
        b.change(
            restart + i * 20 * timedelta(seconds=1),
            "restart",
            "deployment/shop/inventory",
            actor="maria@example.com",
            host=node,
        )

    def errors(start: datetime, end: datetime, per_min: float) -> None:
        error = "upstream connect error: <ERR>"
        b.logs(
            **app, hosts=hit, template=error, level="error", start=start, end=end, per_min=per_min
        )

    if trickle:
        errors(restart - 15 * M, restart, 0.4)
    errors(restart + 10 * M, restart + 3 * H, 6.0)
    return b.frame()


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("erring", "trickle", "cause"),
    [(5, False, True), (3, False, True), (2, False, True), (2, True, False)],
)
def test_a_change_tied_by_its_hosts_alone_is_a_cause_where_its_hosts_bear_it_out(
    seed, erring, trickle, cause
):
    """A change of another program is a cause of the errors when they rose on most of the
    hosts it touched, or began there after it; not when they only grew on a few of its
    hosts where they were already, its other hosts staying clear."""
    result = analyze(_host_tied(seed, erring=erring, trickle=trickle))
    rows = result.contributors.filter(pl.col("target") == "deployment/shop/inventory")
    assert rows.height == 1
    row = rows.row(0, named=True)
    assert not row["name_match"] and row["touched_hosts"] == 5
    assert row["host_share"] == pytest.approx(erring / 5)
    assert (row["role"] in contrib.CAUSES) is cause, (row["role"], row["evidence"])


def _cluster_restart(seed: int, *, named: bool) -> tuple[pl.DataFrame, str]:
    """A RabbitMQ-like cluster of three to five nodes; one node is restarted (a change
    record naming it) and the cluster then errs on every node, the others more than it.
    With ``named``, the others' errors name the restarted node (``We saw DOWN from
    rabbit@mq-b``), as a cluster's do; without, they do not. A routine restart of another
    node the day before changes nothing. Returns the frame and the restarted node."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2022 + seed, 1 + seed, 3 + seed, 8, tzinfo=UTC)
    stem = rng.choice(["mq-", "rabbitmq-", "rmq-prod-"])
    nodes = [f"{stem}{c}" for c in "abcde"[: rng.randint(3, 5)]]
    broken, quiet = rng.sample(nodes, 2)
    mq = {"source": "rabbitmq", "component": "rabbitmq"}
    b.logs(
        **mq,
        hosts=nodes,
        template="accepting AMQP connection",
        level="info",
        start=day - 24 * H,
        end=day + 8 * H,
        per_min=2,
    )
    b.change(day - 20 * H, "restart", "rabbitmq", host=quiet)
    restart = day + rng.randrange(2, 5) * H + rng.randrange(0, 50) * M
    b.change(restart, "restart", "rabbitmq", host=broken)
    others = [n for n in nodes if n != broken]
    partition = (
        f"Partial partition detected: * We saw DOWN from rabbit@{broken} * We can still see"
        if named
        else "closing AMQP connection <PID> (<IP>:<PORT> -> <IP>:<PORT>): missed heartbeats"
    )
    b.logs(
        **mq,
        hosts=others,
        template=partition,
        level="error",
        start=restart + 3 * M,
        end=restart + 50 * M,
        per_min=4,
    )
    b.logs(
        **mq,
        hosts=[broken],
        template="Cluster minority/secondary status detected",
        level="warning",
        start=restart + 3 * M,
        end=restart + 50 * M,
        per_min=2,
    )
    return b.frame(), broken


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_restart_of_one_node_whose_cluster_names_it_in_its_errors_is_the_trigger(seed):
    """A change to one member of a cluster reaches the others: their errors naming it make
    them its reach, not a comparison that clears it."""
    frame, broken = _cluster_restart(seed, named=True)
    result = analyze(frame)
    assert result.incidents.height == 1
    top = result.contributors.filter(pl.col("rank") == 1).row(0, named=True)
    assert (top["change_type"], top["role"]) == ("restart", "trigger"), top["evidence"]
    assert top["called_out_hosts"] == [broken]
    assert any(f"the errors name '{broken}'" in e for e in top["evidence"])
    quiet = result.contributors.filter(pl.col("lead_s") > 12 * 3600)
    assert quiet.height == 1 and quiet["role"][0] not in contrib.CAUSES


@pytest.mark.parametrize("seed", [1, 2])
def test_a_restart_of_one_node_is_no_cause_where_the_others_err_alike_without_naming_it(seed):
    frame, _broken = _cluster_restart(seed, named=False)
    result = analyze(frame)
    restart = result.contributors.filter(pl.col("lead_s").is_between(0, 6 * 3600))
    assert restart.height == 1
    assert restart["called_out_hosts"][0].to_list() == []
    assert restart["role"][0] not in contrib.CAUSES, restart["evidence"][0]


def _two_changes_before(seed: int, *, app_errors_from: str) -> pl.DataFrame:
    """An app deploy, then 20 to 40 minutes later a DNS config change that breaks lookups:
    DNS errors begin with it, and the app logs failures too, from the DNS change on
    (``app_errors_from="dns"``) or from its own deploy on (``"deploy"``)."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2024, 3 + seed, 2 + seed, 7, tzinfo=UTC)
    app = rng.choice(["checkout", "payments", "search-api"])
    pods = [f"{app}-{rng.randrange(16**5):05x}-{c}" for c in "abc"]
    dns = [f"coredns-5d78c9869d-{c}" for c in ("x2kq", "p7wm")]
    b.logs(
        source="go-logs",
        component=app,
        hosts=pods,
        template="request served",
        level="info",
        start=day - 20 * H,
        end=day + 6 * H,
        per_min=3,
    )
    b.logs(
        source="coredns",
        component="coredns",
        hosts=dns,
        template="A IN <NAME> NOERROR",
        level="info",
        start=day - 20 * H,
        end=day + 6 * H,
        per_min=3,
    )
    deploy = day + rng.randrange(1, 4) * H + rng.randrange(0, 20) * M
    config = deploy + rng.randrange(20, 41) * M
    b.change(deploy, "deploy", f"deployment/shop/{app}", actor="dev@example.com")
    b.change(config, "config", "configmap/kube-system/coredns", actor="sre@example.com")
    end = config + 45 * M
    b.logs(
        source="coredns",
        component="coredns",
        hosts=dns,
        template="A IN <NAME> SERVFAIL",
        level="error",
        start=config + M,
        end=end,
        per_min=5,
    )
    began = config if app_errors_from == "dns" else deploy
    b.logs(
        source="go-logs",
        component=app,
        hosts=pods,
        template="lookup failed: <ERR>",
        level="error",
        start=began + M,
        end=end,
        per_min=4,
    )
    return b.frame()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_earlier_change_whose_errors_began_only_after_a_later_one_is_no_trigger(seed):
    result = analyze(_two_changes_before(seed, app_errors_from="dns"))
    rows = {r["change_type"]: r for r in result.contributors.iter_rows(named=True)}
    assert rows["config"]["role"] == "trigger" and rows["config"]["rank"] == 1
    assert rows["deploy"]["role"] not in contrib.CAUSES
    assert "configmap/kube-system/coredns" in rows["deploy"]["errors_began_after"]
    assert any("which began them" in e for e in rows["deploy"]["evidence"])


@pytest.mark.parametrize("seed", [1, 2])
def test_an_earlier_change_whose_errors_began_after_it_stays_a_trigger(seed):
    result = analyze(_two_changes_before(seed, app_errors_from="deploy"))
    rows = {r["change_type"]: r for r in result.contributors.iter_rows(named=True)}
    assert rows["deploy"]["role"] in contrib.CAUSES
    assert rows["deploy"]["errors_began_after"] is None


@pytest.mark.parametrize("seed", [1, 2])
def test_a_change_to_a_runner_fleet_named_by_its_executor_is_the_trigger_of_its_queueing(seed):
    """Self-hosted runners (the job rows name the runner) of one executor lose capacity
    after an image upgrade whose target names the executor: its jobs queue for long."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2024, 3, 9 + seed, 8, tzinfo=UTC)
    fleet = rng.choice(["ci-large", "gpu-runners", "arm64-xl"])
    upgrade = day + rng.randrange(4, 7) * H
    b.jobs(
        source="github-actions",
        executor=fleet,
        start=day - 20 * H,
        end=upgrade + 15 * M,
        per_min=2,
        delay_s=(5, 15),
    )
    b.jobs(
        source="github-actions",
        executor=fleet,
        start=upgrade + 15 * M,
        end=upgrade + 3 * H,
        per_min=2,
        delay_s=(600, 3000),
    )
    b.jobs(
        source="github-actions",
        executor="ubuntu-latest",
        start=day - 20 * H,
        end=upgrade + 3 * H,
        per_min=1,
        delay_s=(2, 8),
    )
    b.change(
        upgrade, "upgrade", f"runner-image/{fleet}", old="2.313.0", new="2.314.1", actor="priya"
    )
    b.change(upgrade + 12 * M, "upgrade", "acme-org/web", actor="renovate[bot]")
    frame = b.frame()
    runners = [f"gha-{fleet}-{i:02d}" for i in range(16)]
    hosts = pl.Series([rng.choice(runners) for _ in range(frame.height)])
    frame = frame.with_columns(
        host=pl.when((pl.col("kind") == "job") & pl.col("attrs").str.contains(fleet))
        .then(hosts)
        .otherwise(pl.col("host"))
    )
    result = analyze(frame)
    top = result.contributors.filter(pl.col("rank") == 1).row(0, named=True)
    assert (top["target"], top["role"]) == (f"runner-image/{fleet}", "trigger"), top["evidence"]
    assert top["called_out_hosts"] == []


def _journal_programs(b: EventBuilder, programs: dict[str, list[str]], day: datetime) -> None:
    """Programs logging through one journal source, each on its own hosts, all well."""
    for program, hosts in programs.items():
        b.logs(
            source="journald",
            component=program,
            hosts=hosts,
            template=f"{program} ok",
            level="info",
            start=day - 20 * H,
            end=day + 8 * H,
            per_min=2,
        )


def _outage_after_a_deploy(seed: int, *, others_fail: bool) -> pl.DataFrame:
    """Programs logging through one journal source on their own hosts; a deploy of one of
    them, then 12 to 20 minutes later its errors begin: with ``others_fail``, together
    with every other program's (an upstream provider failing), else alone."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2024, 10, 20 + seed, 6, tzinfo=UTC)
    programs = {
        "invoice-mailer": ["fra1-wrk-01", "fra1-wrk-02"],
        "checkout": ["fra1-app-01", "fra1-app-02", "fra1-app-03"],
        "media-resizer": ["fra1-wrk-01", "fra1-wrk-02"],
        "backup-agent": ["fra1-app-01", "fra1-app-02", "fra1-app-03", "fra1-wrk-01"],
    }
    _journal_programs(b, programs, day)
    deploy = day + rng.randrange(2, 5) * H
    b.change(deploy, "deploy", "invoice-mailer", actor="dev@example.com")
    began = deploy + rng.randrange(12, 21) * M
    failing = programs if others_fail else {"invoice-mailer": programs["invoice-mailer"]}
    for program, hosts in failing.items():
        b.logs(
            source="journald",
            component=program,
            hosts=hosts,
            template=f"{program}: upstream returned 503",
            level="error",
            start=began,
            end=began + 45 * M,
            per_min=3,
        )
    return b.frame()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_change_whose_errors_began_with_every_other_program_s_is_no_trigger(seed):
    result = analyze(_outage_after_a_deploy(seed, others_fail=True))
    deploy = result.contributors.filter(pl.col("change_type") == "deploy").row(0, named=True)
    assert deploy["role"] not in contrib.CAUSES, deploy["evidence"]
    assert "checkout" in deploy["began_with_others"]
    assert any("began only well after it" in e for e in deploy["evidence"])


@pytest.mark.parametrize("seed", [1, 2])
def test_a_change_whose_errors_began_alone_minutes_later_stays_a_trigger(seed):
    result = analyze(_outage_after_a_deploy(seed, others_fail=False))
    deploy = result.contributors.filter(pl.col("change_type") == "deploy").row(0, named=True)
    assert deploy["role"] == "trigger" and deploy["began_with_others"] is None


def _change_then_failures(
    seed: int, programs: dict[str, list[str]], target: str, failures: dict[str, str], lag
) -> pl.DataFrame:
    """Programs on hosts of their own, logging through one journal; a config change of
    ``target``; ``lag`` later, each program of ``failures`` logs its error for 40 minutes."""
    b = EventBuilder(seed=seed)
    day = datetime(2024, 6, 10 + seed, 6, tzinfo=UTC)
    _journal_programs(b, programs, day)
    change = day + 3 * H
    b.change(change, "config", target, actor="sre@example.com")
    for program, template in failures.items():
        b.logs(
            source="journald",
            component=program,
            hosts=programs[program],
            template=template,
            level="error",
            start=change + lag,
            end=change + lag + 40 * M,
            per_min=3,
        )
    return b.frame()


#: Changes that bite minutes later, under load or as caches expire, and the failures that
#: then begin at once: the clients of pgbouncer name it (its cascade); those of CoreDNS do
#: not (``lookup x on 10.96.0.10:53``), but the lag is too short for a wider event.
BITES_LATER = {
    "pgbouncer": {
        "pgbouncer": ("db-1", "db-2"),
        "checkout": ("app-1", "app-2", "app-3"),
        "invoice-worker": ("wrk-1", "wrk-2"),
    },
    "coredns": {
        "coredns": ("coredns-5d78c9869d-x2kq", "coredns-5d78c9869d-p7wm"),
        "checkout": ("app-1", "app-2", "app-3"),
        "ci-runner": ("runner-1", "runner-2"),
    },
}
FAILURES = {
    "pgbouncer": {
        "pgbouncer": "pgbouncer: no more connections allowed (max_client_conn)",
        "checkout": "checkout: could not connect to pgbouncer: dial tcp <IP>:6432: refused",
        "invoice-worker": "invoice-worker: pgbouncer: sorry, too many clients already",
    },
    "coredns": {
        "coredns": "plugin/errors: 2 <NAME> A: read udp <IP>:<PORT>-><IP>:<PORT>: i/o timeout",
        "checkout": "dial tcp: lookup <NAME> on <IP>:53: server misbehaving",
        "ci-runner": "fatal: unable to access <URL>: Could not resolve host: <NAME>",
    },
}


@pytest.mark.parametrize(
    ("target", "lag_min", "seed"),
    [
        ("pgbouncer", 12, 1),
        ("pgbouncer", 13, 2),
        ("coredns", 3, 3),
        ("coredns", 7, 7),
        ("coredns", 9, 9),
    ],
)
def test_a_change_that_bites_minutes_later_with_its_clients_is_still_the_trigger(
    target, lag_min, seed
):
    programs = {p: list(hosts) for p, hosts in BITES_LATER[target].items()}
    frame = _change_then_failures(seed, programs, target, FAILURES[target], lag_min * M)
    row = analyze(frame).contributors.filter(pl.col("target") == target).row(0, named=True)
    assert row["role"] == "trigger" and row["began_with_others"] is None, row["evidence"]


def test_a_host_named_like_a_word_of_the_errors_is_not_called_out_by_them():
    """A host called ``api`` is not named by ``/api/orders`` or ``server: api``: the errors
    of untouched hosts alike still clear a change made on it."""
    hosts = ["api", "web-1", "web-2"]
    for template in (
        'upstream timed out while reading "GET /api/orders" server: api',
        "upstream timed out while reading response header",
    ):
        b = EventBuilder(seed=3)
        day = datetime(2024, 6, 12, 6, tzinfo=UTC)
        b.logs(
            source="nginx",
            component="nginx",
            hosts=hosts,
            template="GET 200",
            level="info",
            start=day - 20 * H,
            end=day + 8 * H,
            per_min=3,
        )
        change = day + 3 * H
        b.change(change, "upgrade", "node-exporter", actor="ops@example.com", host="api")
        b.logs(
            source="nginx",
            component="nginx",
            hosts=hosts,
            template=template,
            level="error",
            start=change + 3 * M,
            end=change + 60 * M,
            per_min=4,
        )
        rows = analyze(b.frame()).contributors.filter(pl.col("target") == "node-exporter")
        row = rows.row(0, named=True)
        assert row["called_out_hosts"] == [] and row["role"] not in contrib.CAUSES, template


def test_the_hosts_compared_with_a_change_s_are_those_its_program_runs_on():
    """Programs logging through one source (a journal) run on hosts of their own: a
    change on both of a program's hosts has no untouched hosts to compare, not the hosts
    of every program of the journal."""
    b = EventBuilder(seed=5)
    day = datetime(2024, 10, 22, 6, tzinfo=UTC)
    _journal_programs(
        b, {"invoice-mailer": ["wrk-01", "wrk-02"], "checkout": ["app-01", "app-02", "app-03"]}, day
    )
    deploy = day + 3 * H
    for host in ("wrk-01", "wrk-02"):
        b.change(deploy, "deploy", "invoice-mailer", actor="dev@example.com", host=host)
    b.logs(
        source="journald",
        component="invoice-mailer",
        hosts=["wrk-01", "wrk-02"],
        template="invoice-mailer: render failed",
        level="error",
        start=deploy + 2 * M,
        end=deploy + 50 * M,
        per_min=3,
    )
    row = (
        analyze(b.frame()).contributors.filter(pl.col("change_type") == "deploy").row(0, named=True)
    )
    assert row["touched_hosts"] == 2 and row["untouched_hosts"] is None
    assert not any("others" in e for e in row["evidence"])


def _latent_ramp(seed: int) -> pl.DataFrame:
    """A connection limit lowered on two of six hosts in the evening; the next morning's
    load brings its errors there, a trickle for half an hour or more, then a surge."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2024, 10, 27 + seed, 6, tzinfo=UTC)
    hosts = [f"fra1-app-{i:02d}" for i in range(1, 7)]
    touched = sorted(rng.sample(hosts, 2))
    b.logs(
        source="pgbouncer",
        component="pgbouncer",
        hosts=hosts,
        template="stats: <NUM> xacts",
        level="info",
        start=day - 20 * H,
        end=day + 30 * H,
        per_min=1,
    )
    change = day + 12 * H + rng.randrange(0, 50) * M
    for host in touched:
        b.change(change, "config", "pgbouncer", actor="ops@example.com", host=host)
    morning = change + rng.randrange(13, 16) * H
    pooler = {
        "source": "pgbouncer",
        "component": "pgbouncer",
        "hosts": touched,
        "template": "pooler error: no more connections allowed (max_client_conn)",
        "level": "warning",
    }
    surge = morning + rng.randrange(30, 60) * M
    b.logs(**pooler, start=morning, end=surge, per_min=0.3)
    b.logs(**pooler, start=surge, end=surge + 40 * M, per_min=5)
    return b.frame()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_latent_cause_is_found_where_its_errors_climbed_into_the_incident(seed):
    result = analyze(_latent_ramp(seed))
    row = result.contributors.filter(pl.col("change_type") == "config").row(0, named=True)
    assert row["role"] == "latent cause", (row["role"], row["evidence"])


# --- base rates ----------------------------------------------------------------------------


def test_a_routine_class_is_judged_by_all_its_occurrences():
    """A worker restarted by a CronJob every two hours always brings a burst of warnings;
    the one that happens at an incident's onset is judged with the others."""
    rng = random.Random(9)
    b = EventBuilder(seed=9)
    day = datetime(2025, 6, 2, tzinfo=UTC)
    hosts = [f"batch-{i}" for i in range(4)]
    worker = {"source": "batch-worker", "component": "batch-worker"}
    b.logs(
        **worker,
        hosts=hosts,
        template="job done",
        level="info",
        start=day,
        end=day + 30 * H,
        per_min=0.3,
    )
    burst = "lost connection to broker, retrying"
    restarts = [day + (2 * k + 1) * H + rng.randrange(0, 5) * M for k in range(14)]
    for at in restarts:
        b.change(at, "restart", "deployment/batch/batch-worker", actor="cronjob-controller")
        b.logs(
            **worker,
            hosts=hosts,
            template=burst,
            level="warning",
            start=at,
            end=at + 10 * M,
            per_min=2,
        )
    frame = b.frame()
    changes = contrib.change_events(frame)
    onset = restarts[-2]
    target = contrib.Target(
        target_id=0,
        onset=onset,
        end=onset + 30 * M,
        hosts=frozenset(hosts),
        signatures=(contrib.Signature("batch-worker", burst, frozenset({"batch-worker"})),),
    )
    ranked = contrib.rank_changes([target], changes, frame, lookback="30h")
    at_onset = ranked.filter(pl.col("ts") == onset).row(0, named=True)
    assert at_onset["class_size"] >= 10 and at_onset["routine"]
    assert at_onset["rate_bits"] > 2  # its burst is real, like every other one
    assert at_onset["role"] not in ("trigger", "precursor") and at_onset["score"] <= 0
    assert any(s.startswith("base rate: ") for s in at_onset["evidence"])
    assert ranked["rank"].is_null().all()


# --- an incident that no change caused -----------------------------------------------------


def test_when_no_change_explains_an_incident_none_is_ranked():
    b = EventBuilder(seed=21)
    day = datetime(2026, 2, 9, tzinfo=UTC)
    hosts = [f"api-{i}" for i in range(6)]
    api = {"source": "api", "component": "api"}
    b.logs(
        **api,
        hosts=hosts,
        template="GET /v1/items 200",
        level="info",
        start=day,
        end=day + 20 * H,
        per_min=1,
    )
    b.logs(
        **api,
        hosts=hosts,
        template="upstream timeout <NUM>ms",
        level="error",
        start=day,
        end=day + 20 * H,
        per_min=0.01,
    )
    onset = day + 14 * H + 7 * M
    b.logs(
        **api,
        hosts=hosts,
        template="upstream timeout <NUM>ms",
        level="error",
        start=onset,
        end=onset + 90 * M,
        per_min=3,
    )
    at = day + 2 * H
    while at < day + 20 * H:
        b.change(at, "config", "deployment/api/api", actor="flux-system")
        at += 47 * M
    b.change(onset - 6 * M, "deploy", "deployment/web/landing", actor="erin")
    result = analyze(b.frame())
    incident = incident_at(result, onset)
    rows = result.contributors.filter(pl.col("incident_id") == incident["incident_id"])
    assert rows.height > 3
    assert rows["rank"].is_null().all()
    assert incident["top_change_id"] is None
    considered = rows.filter(pl.col("role") == contrib.CONSIDERED)
    assert 1 <= considered.height <= 5
    assert (considered["lead_s"] > 0).all()
    assert "no change explains this incident" in str(result)
    assert "#1" not in str(result)
    shown = result.top(incident["incident_id"], 3)
    assert shown.height >= 1 and (shown["role"] == contrib.CONSIDERED).all()


# --- cascades ------------------------------------------------------------------------------


def change_row(
    ts,
    change_type,
    target,
    *,
    host=None,
    actor=None,
    source="k8s-event",
    inferred=False,
    message=None,
    line=1,
    **extra,
) -> dict:
    attrs = {"change_type": change_type, "target": target, "inferred": inferred, **extra}
    if actor:
        attrs["actor"] = actor
    return {
        "ts": ts,
        "source": source,
        "host": host,
        "component": target.rsplit("/", 1)[-1],
        "level": "info",
        "kind": "change",
        "message": message or f"{change_type} {target}",
        "template": None,
        "attrs": json.dumps(attrs),
        "file": f"{source}.json",
        "line": line,
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_a_person_s_deployment_patch_and_what_controllers_did_are_one_change(seed):
    rng = random.Random(seed)
    t0 = datetime(2024, 9, 1 + seed, 13, rng.randrange(60), tzinfo=UTC)
    name = rng.choice(["checkout", "search-api", "billing"])
    nodes = [f"node-{i}" for i in rng.sample(range(1, 40), 3)]
    rs = f"{name}-{rng.randrange(16**9):09x}"
    rows = [
        change_row(
            t0,
            "deploy",
            f"deployment/shop/{name}",
            actor="frank@example.com",
            source="k8s-audit",
            to="v2",
        ),
        change_row(
            t0 + 2 * M,
            "deploy",
            f"deployment/shop/{name}",
            actor="frank@example.com",
            source="changelog",
            message=f"Roll out {name} v2",
        ),
        change_row(t0 + 3e-6 * M, "create", f"replicaset/shop/{rs}", actor="deployment-controller"),
    ]
    for i, node in enumerate(nodes):
        pod = f"pod/shop/{rs}-{rng.randrange(36**5):05d}"
        rows.append(
            change_row(
                t0 + (i + 1) * M,
                "create",
                pod,
                actor="replicaset-controller",
                host=node,
                line=10 + i,
            )
        )
        rows.append(
            change_row(
                t0 + (i + 1) * M + 20e-6 * M,
                "restart",
                name,
                host=node,
                source="shop",
                inferred=True,
                line=20 + i,
            )
        )
    frame = pl.DataFrame(rows, schema=EVENT_SCHEMA)
    changes = contrib.change_events(frame)
    assert changes.height == 1
    one = changes.row(0, named=True)
    assert one["actor"] == "frank@example.com" and not one["automated"]
    assert one["target"] == f"deployment/shop/{name}"
    assert sorted(one["hosts"]) == sorted(nodes)
    assert [h["host"] for h in one["host_times"]] == nodes
    assert set(one["sources"]) == {"changelog", "k8s-audit", "k8s-event", "shop"}


def test_a_configmap_patch_and_its_reloads_and_a_reboot_and_its_restarts_fold():
    t0 = datetime(2025, 3, 4, 9, 12, tzinfo=UTC)
    rows = [
        change_row(
            t0, "config", "configmap/kube-system/coredns-config", actor="gus", source="k8s-audit"
        ),
        change_row(t0 + 40e-6 * M, "config", "coredns", host="n1", source="coredns", inferred=True),
        change_row(
            t0 + 50e-6 * M, "config", "coredns", host="n2", source="coredns", inferred=True, line=2
        ),
        change_row(t0 + 2 * H, "reboot", "node/n7", actor="kubelet", host="n7"),
        change_row(
            t0 + 2 * H + 3 * M,
            "restart",
            "kube-proxy",
            host="n7",
            source="kube-proxy",
            inferred=True,
        ),
        change_row(
            t0 + 2 * H + 4 * M,
            "restart",
            "pod/kube-system/kube-proxy-x8k2p",
            actor="kubelet",
            host="n7",
        ),
    ]
    changes = contrib.change_events(pl.DataFrame(rows, schema=EVENT_SCHEMA))
    assert changes["target"].to_list() == ["configmap/kube-system/coredns-config", "node/n7"]
    config, reboot = changes.to_dicts()
    assert config["hosts"] == ["n1", "n2"] and config["actor"] == "gus"
    assert reboot["n_rows"] == 3 and reboot["change_type"] == "reboot"


@pytest.mark.parametrize(
    ("kind", "name", "controller"),
    [
        (
            "statefulset",
            "rabbitmq-server",
            "system:serviceaccount:kube-system:statefulset-controller",
        ),
        ("daemonset", "node-local-dns", "system:serviceaccount:kube-system:daemon-set-controller"),
    ],
)
def test_a_controllers_pod_deletes_that_name_no_node_fold_into_the_rollout_of_their_program(
    kind, name, controller
):
    """Rolling a StatefulSet or a DaemonSet, its controller deletes the pods one by one;
    the audit log names no node for those deletes. They are the rollout going on, not
    changes of their own to outrank it."""
    t0 = datetime(2024, 11, 5, 9, 2, tzinfo=UTC)
    rows = [
        change_row(
            t0,
            "upgrade",
            f"{kind}/messaging/{name}",
            actor="jonas@corp.example",
            source="k8s-audit",
        ),
    ]
    for k, suffix in enumerate(("2", "1", "0") if kind == "statefulset" else ("x7k2p", "q9z4m")):
        rows.append(
            change_row(
                t0 + (2 + 2 * k) * M,
                "delete",
                f"pod/messaging/{name}-{suffix}",
                actor=controller,
                source="k8s-audit",
                line=10 + k,
            )
        )
    changes = contrib.change_events(pl.DataFrame(rows, schema=EVENT_SCHEMA))
    assert changes.height == 1
    rollout = changes.row(0, named=True)
    assert rollout["target"] == f"{kind}/messaging/{name}"
    assert rollout["actor"] == "jonas@corp.example" and rollout["n_rows"] == len(rows)


@pytest.mark.parametrize("apart", [6, 10, 14])
def test_restarts_on_nodes_rebooted_minutes_apart_each_fold_into_their_own_reboot(apart):
    """kube-proxy's restarts on two nodes rebooted ``apart`` minutes apart are one change
    of kube-proxy until folded: each node's restart goes to that node's reboot."""
    t0 = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
    second = t0 + apart * M
    rows = [
        change_row(t0, "reboot", "node/k8s-worker-02.prod.internal", actor="ops"),
        change_row(
            t0 + 7 * M,
            "restart",
            "kube-proxy",
            host="k8s-worker-02",
            source="kube-proxy",
            inferred=True,
            line=3,
        ),
        change_row(second, "reboot", "node/k8s-worker-03.prod.internal", actor="ops", line=2),
        change_row(
            second + 2 * M,
            "restart",
            "kube-proxy",
            host="k8s-worker-03",
            source="kube-proxy",
            inferred=True,
            line=4,
        ),
    ]
    changes = contrib.change_events(pl.DataFrame(rows, schema=EVENT_SCHEMA))
    assert changes["target"].to_list() == [
        "node/k8s-worker-02.prod.internal",
        "node/k8s-worker-03.prod.internal",
    ]
    assert changes["hosts"].to_list() == [["k8s-worker-02"], ["k8s-worker-03"]]
    assert changes["n_rows"].to_list() == [2, 2]


@pytest.mark.parametrize(("name", "lag_s"), [("ledger-api-config", 30), ("coredns-cm", 5)])
def test_a_change_log_s_config_line_and_the_configmap_patch_it_made_are_one_change(name, lag_s):
    t0 = datetime(2024, 12, 31, 23, 15, tzinfo=UTC)
    rows = [
        change_row(t0, "config", name, actor="finops", source="changelog"),
        change_row(
            t0 + timedelta(seconds=lag_s),
            "config",
            f"configmap/payments/{name}",
            actor="system:serviceaccount:argocd:argocd-application-controller",
            source="k8s-audit",
            line=2,
        ),
    ]
    changes = contrib.change_events(pl.DataFrame(rows, schema=EVENT_SCHEMA))
    assert changes.height == 1
    (change,) = changes.to_dicts()
    assert change["actor"] == "finops" and change["sources"] == ["changelog", "k8s-audit"]


# --- change-log targets in words -----------------------------------------------------------


def words_frame() -> pl.DataFrame:
    b = EventBuilder(seed=3)
    day = datetime(2024, 11, 20, tzinfo=UTC)
    nodes = [f"ip-10-8-0-{i}.eu-west-1.compute.internal" for i in (11, 12, 13, 14)]
    b.logs(
        source="kube-proxy",
        component="kube-proxy",
        hosts=nodes,
        template="sync",
        level="info",
        start=day,
        end=day + 6 * H,
        per_min=0.2,
    )
    b.logs(
        source="coredns",
        component="node-local-dns",
        hosts=nodes,
        template="A IN",
        level="info",
        start=day,
        end=day + 6 * H,
        per_min=0.2,
    )
    for executor in ("docker", "machine", "macos"):
        b.jobs(
            source="circleci",
            executor=executor,
            start=day,
            end=day + 6 * H,
            per_min=0.2,
            delay_s=(1, 10),
        )
    b.change(day + 1 * H, "reboot", "node/ip-10-8-0-12", host=nodes[1], actor="ops")
    b.change(day + 2 * H, "restart", "nodes/all", actor="ops")
    b.change(day + 2 * H + 4 * M, "reboot", "node/ip-10-8-0-13", host=nodes[2], actor="kubelet")
    b.change(day + 3 * H, "restart", "pool/macos", actor="ops")
    b.change(day + 4 * H, "restart", "dns", actor="ops")
    b.change(day + 5 * H, "config", "flux-capacitor", actor="ops")
    notes = {
        "nodes/all": "Rolling reboot of all remaining nodes, one by one",
        "pool/macos": "Restarted the macOS provisioning pool",
        "dns": "Restarted DNS to rule it out",
        "flux-capacitor": "Tweaked the flux capacitor",
    }
    target = pl.col("attrs").str.json_path_match("$.target")
    return b.frame().with_columns(
        message=pl.when(target.is_in(list(notes)))
        .then(target.replace_strict(notes, default=None))
        .otherwise(pl.col("message"))
    )


def test_change_log_words_are_read_as_hosts_programs_and_executors():
    changes = {r["target"]: r for r in contrib.change_events(words_frame()).to_dicts()}
    rolling = changes["nodes/all"]
    assert rolling["found"] == "words"
    assert rolling["hosts"] == ["ip-10-8-0-11", "ip-10-8-0-13", "ip-10-8-0-14"]  # not 12
    reached = {h["host"]: h["ts"] for h in rolling["host_times"]}
    assert reached["ip-10-8-0-13"] == changes["node/ip-10-8-0-12"]["ts"] + 64 * M
    assert changes["pool/macos"]["executors"] == ["macos"]
    assert "dns" in changes["dns"]["names"]
    assert changes["flux-capacitor"]["found"] == "not found"


def test_a_change_log_line_whose_words_match_nothing_says_so():
    frame = words_frame()
    changes = contrib.change_events(frame)
    day = datetime(2024, 11, 20, tzinfo=UTC)
    target = contrib.Target(
        target_id=0,
        onset=day + 5 * H + 10 * M,
        end=day + 6 * H,
        hosts=frozenset(),
        signatures=(contrib.Signature("kube-proxy", "sync", frozenset({"kube-proxy"})),),
    )
    ranked = contrib.rank_changes([target], changes, frame, lookback="1h")
    row = ranked.filter(pl.col("target") == "flux-capacitor").row(0, named=True)
    assert row["role"] == "target not found"
    assert any("target not found in the logs" in s for s in row["evidence"])


def _noted(frame: pl.DataFrame, notes: dict[str, str]) -> pl.DataFrame:
    """Change-log rows whose target is in ``notes`` carry that note as their message."""
    target = pl.col("attrs").str.json_path_match("$.target")
    return frame.with_columns(
        message=pl.when((pl.col("kind") == "change") & target.is_in(list(notes)))
        .then(target.replace_strict(notes, default=None))
        .otherwise(pl.col("message"))
    )


@pytest.mark.parametrize(
    ("target", "note", "word"),
    [
        (
            ".github/workflows/ci.yml",
            "Moved runs-on from ubuntu-22.04 to ubuntu-24.04",
            ".github/workflows",
        ),
        (".gitlab-ci.yml", "Pinned the dind service to 24.0", ".gitlab-ci.yml"),
        ("Jenkinsfile", "Switched the agent label to k8s-large", "jenkinsfile"),
        ("circleci orbs", "Upgraded the node orb to 5.2.0", "circleci"),
        ("actions runner image", "Bumped the self-hosted runner image to 2.317.0", "runner"),
        ("ci registry credentials", "Rotated the Docker Hub token in the org context", "ci"),
    ],
)
def test_a_change_log_line_that_names_ci_is_a_ci_side_change(target, note, word):
    b = EventBuilder(seed=5)
    day = datetime(2025, 2, 3, 9, tzinfo=UTC)
    b.jobs(
        source="circleci", executor="machine", start=day, end=day + H, per_min=0.3, delay_s=(1, 5)
    )
    b.change(day + 20 * M, "other", target, actor="mara")
    b.change(day + 30 * M, "config", "grafana dashboards", actor="mara")
    frame = _noted(
        b.frame(), {target: note, "grafana dashboards": "Added panels for checkout latency"}
    )
    changes = {r["target"]: r for r in contrib.change_events(frame).to_dicts()}
    assert changes[target]["found"] == "ci"
    assert changes["grafana dashboards"]["found"] == "not found"
    assert contrib.changes.ci_side_word(f"{target} {note}") == word
    # CI in a longer word is no CI: a "circuit", "cider", "specific" change is not one
    assert (
        contrib.changes.ci_side_word("Raised the circuit breaker limit for specific cider") is None
    )


def _team_failing_after_a_change(
    b: EventBuilder,
    *,
    source: str,
    executor: str,
    day: datetime,
    began: datetime,
    fixed: datetime,
    per_min: float,
    fail_p: float,
    usual_fail_p: float,
    delay_s: tuple[float, float],
) -> None:
    """A team's jobs all day, failing ``fail_p`` of the time from ``began`` to ``fixed``
    and ``usual_fail_p`` otherwise, beside a service's steady info lines."""
    common = {"source": source, "executor": executor, "per_min": per_min, "delay_s": delay_s}
    b.jobs(start=day, end=began, fail_p=usual_fail_p, **common)
    b.jobs(start=began, end=fixed, fail_p=fail_p, **common)
    b.jobs(start=fixed, end=fixed + 3 * H, fail_p=usual_fail_p, **common)
    b.logs(
        source="checkout",
        component="checkout",
        hosts=["ip-10-1-0-5", "ip-10-1-0-6"],
        template="GET /cart 200",
        level="info",
        start=day,
        end=fixed + 3 * H,
        per_min=3,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_ci_side_change_before_a_small_team_s_failing_jobs_is_their_trigger(seed):
    """A small team's few jobs a quarter hour nearly all fail after a change-log line that
    rotated the token the workflows pull with; a harmless note and an unrelated deploy lie
    nearby. The CI-side change ranks first, tied by its words; the incident begins at a
    failed job."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2025, 1, 10 + seed, 6, tzinfo=UTC)
    executor = rng.choice(["docker", "machine", "ubuntu-latest"])
    changed = day + rng.randrange(10, 14) * H + rng.randrange(0, 50) * M
    began = changed + rng.randrange(1, 4) * M
    fixed = began + rng.randrange(60, 120) * M
    per_min = rng.uniform(0.3, 0.6)
    _team_failing_after_a_change(
        b,
        source="circleci",
        executor=executor,
        day=day,
        began=began,
        fixed=fixed,
        per_min=per_min,
        fail_p=0.9,
        usual_fail_p=0.02,
        delay_s=(1, 6),
    )
    target = rng.choice(["ci registry credentials", ".circleci/config.yml", "circleci orbs"])
    b.change(changed, "other", target, actor="mara")
    b.change(changed - rng.randrange(10, 30) * M, "config", "pagerduty schedule", actor="lee")
    b.change(changed - rng.randrange(5, 20) * M, "deploy", "deployment/shop/checkout", actor="ci")
    frame = _noted(
        b.frame(),
        {
            target: "Rotated the pull token used by the jobs",
            "pagerduty schedule": "Swapped on-call",
        },
    )
    result = analyze(frame)
    assert result.incidents.height >= 1
    incident = result.incidents.sort("onset").filter(pl.col("onset") >= changed).row(0, named=True)
    jobs = frame.filter(pl.col("kind") == "job").with_columns(
        status=pl.col("attrs").str.json_path_match("$.status")
    )
    failed = jobs.filter((pl.col("status") == "failed") & (pl.col("ts") >= began))["ts"]
    # the onset is a failed job's queue time, not the start of the bucket that was hot
    assert incident["onset"] in failed.to_list()
    ranked = result.contributors.filter(pl.col("incident_id") == incident["incident_id"]).sort(
        "rank"
    )
    top = ranked.row(0, named=True)
    assert (top["target"], top["role"]) == (target, "trigger"), top["evidence"]
    assert any("a CI-side change (its words name CI" in e for e in top["evidence"])
    blamed = ranked.filter(pl.col("role").is_in(["trigger", "precursor", "made worse"]))
    assert set(blamed["target"]) == {target}


@pytest.mark.parametrize(
    ("seed", "per_min", "fail_p"), [(1, 0.14, 0.85), (2, 0.2, 0.7), (3, 0.35, 0.95), (4, 0.15, 0.9)]
)
def test_a_sparse_team_s_failing_jobs_are_judged_by_their_share_that_failed(seed, per_min, fail_p):
    """Two to five jobs a quarter hour, 70-95% of them failing after a CI-side change: as
    counts the failures are few (a dozen against one or two), as shares of the jobs they
    are plain (5% -> 60%). The change is the trigger, and its evidence says how many of
    how many jobs failed on each side of it, which the job rows bear out."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2025, 3, 3 + seed, 5, tzinfo=UTC)
    executor = rng.choice(["docker", "linux-large", "self-hosted"])
    changed = day + rng.randrange(8, 12) * H + rng.randrange(0, 50) * M
    began = changed + rng.randrange(1, 5) * M
    fixed = began + rng.randrange(70, 130) * M
    _team_failing_after_a_change(
        b,
        source="github-actions",
        executor=executor,
        day=day,
        began=began,
        fixed=fixed,
        per_min=per_min,
        fail_p=fail_p,
        usual_fail_p=0.05,
        delay_s=(2, 20),
    )
    target = rng.choice([".github/workflows/build.yml", "runs-on label", "ci cache action"])
    b.change(changed, "other", target, actor="ines")
    b.change(changed - rng.randrange(5, 25) * M, "deploy", "deployment/web/api", actor="ci")
    frame = _noted(b.frame(), {target: "Moved the jobs to the new runner image"})
    result = analyze(frame)
    incident = result.incidents.sort("onset").filter(pl.col("onset") >= changed).row(0, named=True)
    top = (
        result.contributors.filter(pl.col("incident_id") == incident["incident_id"])
        .sort("rank")
        .row(0, named=True)
    )
    assert (top["target"], top["role"]) == (target, "trigger"), top["evidence"]
    said = next(e for e in top["evidence"] if e.startswith("effect:"))
    found = re.search(
        r"(\d+) of (\d+) jobs failed in the (\S+) before, (\d+) of (\d+) in the (\S+) after",
        said,
    )
    assert found, said
    k1, n1, before, k2, n2, after = found.groups()
    jobs = frame.filter(pl.col("kind") == "job").with_columns(
        failed=pl.col("attrs").str.json_path_match("$.status") == "failed"
    )

    def tally(lo: datetime, hi: datetime) -> tuple[int, int]:
        inside = jobs.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
        return inside["failed"].sum(), inside.height

    assert tally(changed - to_timedelta(before), changed) == (int(k1), int(n1))
    assert tally(changed, changed + to_timedelta(after)) == (int(k2), int(n2))
    assert int(k2) / int(n2) > max(0.3, 3 * int(k1) / int(n1))


def test_the_job_counter_counts_each_executor_s_jobs_and_failures_in_a_window():
    rng = random.Random(5)
    b = EventBuilder(seed=5)
    for executor, fail_p in (("docker", 0.3), ("machine", 0.6)):
        b.jobs(
            source="circleci",
            executor=executor,
            start=datetime(2025, 4, 1, 8, tzinfo=UTC),
            end=datetime(2025, 4, 1, 12, tzinfo=UTC),
            per_min=0.5,
            delay_s=(1, 30),
            fail_p=fail_p,
        )
    frame = b.frame()
    counter = JobCounter(frame)
    rows = frame.filter(pl.col("kind") == "job").select(
        "ts",
        executor=pl.col("attrs").str.json_path_match("$.executor"),
        failed=pl.col("attrs").str.json_path_match("$.status") == "failed",
    )
    for _ in range(100):
        lo = rng.choice(rows["ts"].to_list()) if rng.random() < 0.3 else None
        lo = lo or datetime(2025, 4, 1, 7, tzinfo=UTC) + rng.randrange(0, 300) * M
        hi = lo + rng.randrange(0, 120) * M
        executors = rng.choice([{"docker"}, {"machine"}, {"docker", "machine"}, {"nowhere"}])
        inside = rows.filter(
            pl.col("executor").is_in(list(executors)) & (pl.col("ts") >= lo) & (pl.col("ts") < hi)
        )
        assert counter.count(executors, lo, hi) == (inside.height, inside["failed"].sum())


# --- node pools: a change to a pool reaches the nodes that carry its name -------------------


@pytest.mark.parametrize(
    ("target", "pool", "cluster"),
    [
        ("nodepool/ci-runners-v2", "ci-runners-v2", None),
        ("projects/acme-ci/locations/us-central1-a/clusters/build/nodePools/gha", "gha", "build"),
        (
            "/subscriptions/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/resourceGroups/rg-ci/providers/"
            "Microsoft.ContainerService/managedClusters/ci/agentPools/runners",
            "runners",
            "ci",
        ),
        ("arn:aws:eks:eu-west-1:123456789012:nodegroup/prod/ci-ng/8ec7e1a2-1b2c", "ci-ng", "prod"),
        ("agentpool/cirunnersv2", "cirunnersv2", None),
        ("the gpu-a100 node pool", "gpu-a100", None),
        ("daemonset/kube-system/kube-proxy", None, None),
        ("nodes/all", None, None),
    ],
)
def test_node_pool_targets_as_clouds_and_people_write_them(target, pool, cluster):
    named = pl.select(contrib.node_pool(pl.lit(target))).item()
    assert (named and (named["pool"], named["cluster"])) == (pool and (pool, cluster))


def pool_frame(seed: int, cloud: str, target: str) -> tuple[pl.DataFrame, dict]:
    """A pool's upgrade replacing its nodes one by one (kubelet and kube-proxy starting on
    each new node, as inferred from their logs), beside another pool whose name begins
    like this one's, a default pool, a person's reboot of a pool node afterwards and a
    reboot of a default node during it."""
    rng = random.Random(seed)
    t0 = datetime(2025, 2, 10 + seed, 9, rng.randrange(60), tzinfo=UTC)
    group = "".join(rng.choice("0123456789abcdef") for _ in range(8))

    def name(pool: str, i: int) -> str:
        if cloud == "gke":
            return f"gke-ci-{pool}-{group}-{rng.choice('bcdfg')}{i}k{i}"
        return f"aks-{pool}-{int(group, 16) % 10**8:08d}-vmss{i:06x}"

    pool, sibling = ("ci-runners-v2", "ci-runners") if cloud == "gke" else ("runnersv2", "runners")
    old = [name(pool, i) for i in range(3)]
    new = [name(pool, i) for i in range(3, 6)]
    other = [name(sibling, i) for i in range(2)]
    default = [name("default-pool" if cloud == "gke" else "system", i) for i in range(3)]
    rows = [
        change_row(t0, "upgrade", target, actor="ops@corp.example", source="changelog"),
    ]
    for host in old + other + default:
        rows.append(change_row(t0 - 3 * H, "other", "kube-proxy", host=host, line=9))
    for i, (gone, fresh) in enumerate(zip(old, new, strict=True)):
        up = t0 + (3 + 7 * i) * M
        rows.append(change_row(up, "reboot", f"node/{fresh}", host=fresh, inferred=True, line=i))
        rows.append(
            change_row(up + M, "restart", "kube-proxy", host=fresh, inferred=True, line=10 + i)
        )
        rows.append(
            change_row(up + 2 * M, "other", f"node/{gone}", host=gone, actor="kubelet", line=20)
        )
    reboot = change_row(t0 + 9 * M, "reboot", f"node/{default[0]}", host=default[0], inferred=True)
    person = change_row(
        t0 + 50 * M, "reboot", f"node/{new[1]}", host=new[1], actor="kim", source="changelog"
    )
    rows += [reboot, person]
    frame = pl.DataFrame(rows, schema=EVENT_SCHEMA).with_columns(
        kind=pl.when(pl.col("line") == 9).then(pl.lit("log")).otherwise(pl.col("kind"))
    )
    # the nodes wrote logs while they lived: old ones until drained, new ones from start
    lived = [
        {"host": h, "ts": t0 - 3 * H, "last": t0 + 40 * M if h in old else t0 + 3 * H}
        for h in old + other + default
    ] + [{"host": h, "ts": t0 + (3 + 7 * i) * M, "last": t0 + 3 * H} for i, h in enumerate(new)]
    logs = pl.DataFrame(
        [
            {
                "ts": at,
                "source": "kube-proxy",
                "host": x["host"],
                "component": "kube-proxy",
                "level": "info",
                "kind": "log",
                "message": "Syncing iptables rules",
                "template": "Syncing iptables rules",
                "attrs": "{}",
                "file": "kp.log",
                "line": 1,
            }
            for x in lived
            for at in (x["ts"], x["last"])
        ],
        schema=EVENT_SCHEMA,
    )
    frame = pl.concat([frame.filter(pl.col("kind") == "change"), logs])
    return frame, {"t0": t0, "old": old, "new": new, "other": other, "default": default}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    ("cloud", "target"),
    [
        ("gke", "nodepool/ci-runners-v2"),
        ("gke", "projects/acme/locations/us-east1-b/clusters/ci/nodePools/ci-runners-v2"),
        ("aks", "agentpool/runnersv2"),
        (
            "aks",
            "/subscriptions/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/resourceGroups/rg-ci/providers/"
            "Microsoft.ContainerService/managedClusters/ci/agentPools/runnersv2",
        ),
    ],
)
def test_a_node_pool_change_reaches_its_nodes_and_their_starts_fold_into_it(seed, cloud, target):
    """The nodes that carry the pool's name are what it touched (not those of a pool
    whose name begins like it); each new node is reached when its kubelet started, and
    that start and its programs' are the upgrade going on, not changes of their own. A
    person's reboot of a pool node, and a default node's reboot, stay their own."""
    frame, world = pool_frame(seed, cloud, target)
    changes = contrib.change_events(frame)
    pooled = changes.filter(pl.col("target") == target).row(0, named=True)
    assert pooled["hosts"] == sorted(world["old"] + world["new"])
    assert pooled["found"] == "target" and pooled["names"] == [target.rsplit("/", 1)[-1].lower()]
    reached = {h["host"]: h["ts"] for h in pooled["host_times"]}
    for i, node in enumerate(world["new"]):
        assert reached[node] == world["t0"] + (3 + 7 * i) * M
    assert pooled["n_rows"] == 1 + 3 * 3
    left = set(changes["target"]) - {target}
    assert left == {f"node/{world['default'][0]}", f"node/{world['new'][1]}"}


def test_a_node_pool_is_found_in_the_data_where_its_nodes_names_do_not_say_it(write, tmp_path):
    """EKS nodes are named by their address: a node group reaches the nodes the audit log
    registered with its label, or whose kubelet's flags carry it, and no other."""
    import timeline

    t0 = datetime(2025, 3, 3, 14, 20, tzinfo=UTC)
    group, other_group = "ci-runners", "ci-runners-v1"
    labelled = "ip-10-40-3-17.ec2.internal"  # by the audit log
    flagged = "ip-10-40-7-201.ec2.internal"  # by its kubelet's flags
    elsewhere = "ip-10-40-9-66.ec2.internal"  # another group's
    unknown = "ip-10-40-1-5.ec2.internal"  # said nowhere

    def node_create(node: str, ng: str, at: datetime) -> str:
        obj = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "name": node,
                "labels": {"eks.amazonaws.com/nodegroup": ng, "kubernetes.io/os": "linux"},
            },
        }
        return json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "RequestResponse",
                "auditID": f"5d0c{abs(hash(node)) % 10**8:08d}-0000-4000-8000-000000000000",
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/nodes",
                "verb": "create",
                "user": {"username": f"system:node:{node}"},
                "userAgent": "kubelet/v1.29.3-eks-ae9a62a (linux/amd64) kubernetes/fa3d799",
                "objectRef": {"resource": "nodes", "apiVersion": "v1"},
                "responseStatus": {"metadata": {}, "code": 201},
                "requestObject": obj,
                "responseObject": obj,
                "requestReceivedTimestamp": f"{at:%Y-%m-%dT%H:%M:%S}.104512Z",
                "stageTimestamp": f"{at:%Y-%m-%dT%H:%M:%S}.118790Z",
            }
        )

    write(
        "eks/audit.log",
        node_create(labelled, group, t0 + 3 * M)
        + "\n"
        + node_create(elsewhere, other_group, t0)
        + "\n",
    )
    at = t0 + 9 * M
    flags = f"eks.amazonaws.com/nodegroup={group},eks.amazonaws.com/capacityType=ON_DEMAND"
    write(
        f"eks/nodes/{flagged}/kubelet.log",
        f"{at:%b %d %H:%M:%S}.201233 {flagged} kubelet[2871]: I{at:%m%d %H:%M:%S}.201233"
        f'    2871 flags.go:64] FLAG: --node-labels="{flags}"\n',
    )
    for node in (labelled, flagged, elsewhere, unknown):
        lines = [
            f"{t:%Y-%m-%dT%H:%M:%S}.000000000Z stderr F I{t:%m%d %H:%M:%S}.000000       1 "
            'proxier.go:820] "Syncing iptables rules"'
            for t in (t0 - H, t0 + 30 * M)
        ]
        folder = f"eks/nodes/{node}/var/log/pods/kube-system_kube-proxy-x7k2p_5a273e8f-302e-44aa-854e-0bbc490164f1"
        write(f"{folder}/kube-proxy/0.log", "\n".join(lines) + "\n")
    arn = f"arn:aws:eks:us-east-1:123456789012:nodegroup/prod/{group}/8ec7e1a2-1b2c-4d3e"
    write(
        "eks/changelog.csv",
        "time,type,target,description,actor\n"
        f"{t0:%Y-%m-%d %H:%M}Z,upgrade,{arn},Managed node group to 1.29,dana\n"
        f"{t0:%Y-%m-%d %H:%M}Z,upgrade,nodegroup/gpu-ng,GPU node group to 1.29,dana\n",
    )
    loaded = timeline.read(tmp_path / "eks", cache=False)
    audit = loaded.events.filter((pl.col("source") == "k8s-audit") & (pl.col("host") == labelled))
    assert json.loads(audit["attrs"][0])["node_pool"] == group
    changes = contrib.change_events(loaded.events)
    ng = changes.filter(pl.col("target") == arn).row(0, named=True)
    assert ng["hosts"] == sorted([labelled, flagged]) and ng["found"] == "target"
    gpu = changes.filter(pl.col("target") == "nodegroup/gpu-ng").row(0, named=True)
    assert gpu["hosts"] == [] and gpu["found"] != "target"


# --- pods read as their nodes --------------------------------------------------------------


def scheduled_event(pod: str, node: str, at: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod}.17a1b2c3d4e5f6a7", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": "shop"},
        "reason": "Scheduled",
        "message": f"Successfully assigned shop/{pod} to {node}",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
        "type": "Normal",
    }


def binding_audit(pod: str, node: str, at: str) -> str:
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Request",
            "auditID": f"9c1f{abs(hash(pod)) % 10**8:08d}-0000-4000-8000-000000000000",
            "stage": "ResponseComplete",
            "requestURI": f"/api/v1/namespaces/shop/pods/{pod}/binding",
            "verb": "create",
            "user": {"username": "system:kube-scheduler"},
            "objectRef": {
                "resource": "pods",
                "namespace": "shop",
                "name": pod,
                "apiVersion": "v1",
                "subresource": "binding",
            },
            "responseStatus": {"metadata": {}, "code": 201},
            "requestObject": {
                "kind": "Binding",
                "apiVersion": "v1",
                "metadata": {"name": pod, "namespace": "shop"},
                "target": {"kind": "Node", "name": node},
            },
            "requestReceivedTimestamp": at,
            "stageTimestamp": at,
        }
    )


def test_pod_nodes_from_scheduler_events_audit_bindings_and_kubelet_lines(write):
    import timeline

    events = write(
        "events.json",
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    scheduled_event(
                        "cart-6f7d8c9b5-abcde", "ip-10-1-2-3.ec2.internal", "2024-04-02T10:00:01Z"
                    ),
                    scheduled_event(
                        "cart-6f7d8c9b5-fghij", "ip-10-1-2-4.ec2.internal", "2024-04-02T10:00:02Z"
                    ),
                ],
            }
        ),
    )
    write(
        "audit.log",
        binding_audit(
            "search-5c6d7e8f9-klmno", "ip-10-1-2-5.ec2.internal", "2024-04-02T10:01:00.123456Z"
        )
        + "\n",
    )
    write(
        "ip-10-1-2-6.ec2.internal/var/log/kubelet.log",
        'I0402 10:02:03.456789    2211 kubelet.go:2163] "SyncLoop ADD" source="api" '
        'pods=["shop/queue-7b8c9d0e1-pqrst"]\n'
        'I0402 10:02:04.000001    2211 kuberuntime_manager.go:1012] "Creating container" '
        'pod="shop/queue-7b8c9d0e1-pqrst"\n',
    )
    loaded = timeline.read(events.parent, infer=False)
    pods = pod_nodes(loaded.events)
    found = {r["pod"]: (r["node"], r["via"]) for r in pods.to_dicts()}
    assert found["cart-6f7d8c9b5-abcde"] == ("ip-10-1-2-3.ec2.internal", "event")
    assert found["cart-6f7d8c9b5-fghij"] == ("ip-10-1-2-4.ec2.internal", "event")
    assert found["search-5c6d7e8f9-klmno"] == ("ip-10-1-2-5.ec2.internal", "audit")
    assert found["queue-7b8c9d0e1-pqrst"][1] == "kubelet"
    assert found["queue-7b8c9d0e1-pqrst"][0].startswith("ip-10-1-2-6")
    # a pod log copied out of /var/log/pods without the node's folder above it
    write(
        "pods/shop_cart-6f7d8c9b5-fghij_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/cart/0.log",
        "2024-04-02T10:05:00.123456789Z stderr F E0402 10:05:00.123456       1 main.go:88] "
        '"Export failed" err="tls: failed to verify certificate"\n',
    )
    rows = with_pod_log_origin(timeline.read(events.parent, infer=False).events).collect()
    exported = rows.filter(pl.col("message").str.contains("Export failed")).row(0, named=True)
    assert (exported["host"], exported["source"], exported["component"]) == (
        "cart-6f7d8c9b5-fghij",
        "cart",
        "cart",
    )
    kubelet = rows.filter(pl.col("component") == "kubelet")
    assert kubelet["host"].str.starts_with("ip-10-1-2-6").all()  # hosts it had are kept
    hosts = pl.DataFrame({"host": ["cart-6f7d8c9b5-fghij", "unknown-pod-zzzzz", None]})
    mapped = hosts.select(node_of_host(pl.col("host"), pods))["host"].to_list()
    assert mapped == ["ip-10-1-2-4.ec2.internal", "unknown-pod-zzzzz", None]


def test_rows_named_by_pod_are_weighed_on_the_pod_s_node():
    """Errors written by pods (no node in their rows) are tied to a node reboot through
    the scheduler's events."""
    b = EventBuilder(seed=31)
    day = datetime(2025, 8, 14, tzinfo=UTC)
    pods = {
        f"cart-6f7d8c9b5-{s}": f"node-{i}"
        for i, s in enumerate(["a1b2c", "d3e4f", "g5h6i", "j7k8l"])
    }
    for pod in pods:
        b.logs(
            source="cart",
            component="cart",
            hosts=[pod],
            template="GET /cart 200",
            level="info",
            start=day,
            end=day + 8 * H,
            per_min=0.5,
        )
    sick = list(pods)[:2]
    for pod, until in zip(sick, (4 * H, 5 * H), strict=True):
        b.logs(
            source="cart",
            component="cart",
            hosts=[pod],
            template="redis: connection reset",
            level="error",
            start=day + 2 * H,
            end=day + until,
            per_min=3,
        )
    b.change(day + 4 * H, "reboot", "node/node-0", host="node-0", actor="ops")
    frame = b.frame()
    events = pl.DataFrame(
        [
            {
                "ts": day,
                "source": "k8s-event",
                "host": None,
                "component": "default-scheduler",
                "level": "info",
                "kind": "log",
                "template": None,
                "attrs": "{}",
                "message": f"Scheduled: Successfully assigned shop/{pod} to {node}",
                "file": "events.json",
                "line": i + 1,
            }
            for i, (pod, node) in enumerate(pods.items())
        ],
        schema=EVENT_SCHEMA,
    )
    frame = pl.concat([frame, events]).sort("ts")
    changes = contrib.change_events(frame)
    target = contrib.Target(
        target_id=0,
        onset=day + 2 * H,
        end=day + 5 * H,
        hosts=frozenset(sick),
        signatures=(contrib.Signature("cart", "redis: connection reset", frozenset({"cart"})),),
    )
    row = contrib.rank_changes([target], changes, frame).row(0, named=True)
    assert row["target"] == "node/node-0"
    assert row["role"] == "mitigation", row["evidence"]
    assert row["before"] > 20 and row["after"] == 0
    assert row["untouched_hosts"] == 3 and row["untouched_after"] > 100
    assert row["scope"] == "node" and row["shared_hosts"] == ["node-0"]
    # the same through analyze, which keeps the scheduler's info-level events for this
    incident = analyze(frame).contributors.filter(pl.col("target") == "node/node-0")
    assert incident["role"].to_list() == ["mitigation"]


# --- raw lines behind the figures ----------------------------------------------------------


def test_each_ranked_change_quotes_the_error_lines_on_its_hosts(burn):
    truth, result = burn
    incident = incident_at(result, truth["onset"])
    top = result.contributors.filter(
        (pl.col("incident_id") == incident["incident_id"]) & (pl.col("rank") == 1)
    ).row(0, named=True)
    after = top["lines_after"]
    assert after and len(after) <= 3
    for line in after:
        assert line["host"] in truth["touched"]
        assert line["ts"] >= top["ts"]
        assert line["file"] == f"{truth['program']}/{line['host']}.log" and line["line"] >= 1
    assert any(s.startswith("first after: ") and after[0]["file"] in s for s in top["evidence"])


def test_routine_actions_every_few_minutes_do_not_chain_into_one_day_long_change():
    rng = random.Random(17)
    t0 = datetime(2025, 10, 6, 6, 3, tzinfo=UTC)
    rows, at = [], t0
    while at < t0 + 10 * H:
        rows.append(
            change_row(
                at,
                "config",
                "deployment/shop/cart",
                source="k8s-audit",
                actor="system:serviceaccount:argocd:argocd-application-controller",
                line=len(rows) + 1,
            )
        )
        at += rng.randrange(3, 12) * M
    changes = contrib.change_events(pl.DataFrame(rows, schema=EVENT_SCHEMA))
    spans = (changes["last_ts"] - changes["ts"]).to_list()
    assert changes.height >= 5
    assert max(spans) <= contrib.changes.MAX_SPAN
    assert changes["n_rows"].sum() == len(rows)
    assert changes["automated"].all()


@pytest.mark.parametrize("seed", [41, 42])
def test_a_latent_cause_is_found_where_the_load_driven_errors_fell(seed):
    """A setting pushed to some nodes hours earlier raises nothing until a load peak; then
    errors come almost only from those nodes. A routine sync lands just before the peak."""
    rng = random.Random(seed)
    b = EventBuilder(seed=seed)
    day = datetime(2025, 4, 10 + seed % 5, tzinfo=UTC)
    nodes = [f"edge-{i:02d}" for i in rng.sample(range(1, 60), rng.randrange(9, 14))]
    touched = sorted(rng.sample(nodes, rng.randrange(3, 6)))
    proxy = {"source": "envoy", "component": "envoy"}
    b.logs(
        **proxy,
        hosts=nodes,
        template="upstream ok",
        level="info",
        start=day,
        end=day + 24 * H,
        per_min=0.5,
    )
    b.logs(
        **proxy,
        hosts=nodes,
        template="upstream connect error or disconnect/reset",
        level="error",
        start=day,
        end=day + 24 * H,
        per_min=0.004,
    )
    push = day + rng.randrange(5, 8) * H + rng.randrange(60) * M
    for i, node in enumerate(touched):
        b.change(
            push + i * M,
            "config",
            "daemonset/edge/envoy",
            old="max_conn=1024",
            new="max_conn=64",
            actor="hana@example.com",
            host=node,
        )
    peak = push + rng.randrange(4, 7) * H
    b.logs(
        **proxy,
        hosts=touched,
        template="upstream connect error or disconnect/reset",
        level="error",
        start=peak,
        end=peak + 2 * H,
        per_min=3,
    )
    b.logs(
        **proxy,
        hosts=[n for n in nodes if n not in touched][:1],
        template="upstream connect error or disconnect/reset",
        level="error",
        start=peak,
        end=peak + 2 * H,
        per_min=0.05,
    )
    sync = day + 13 * M
    while sync < day + 24 * H:
        b.change(sync, "config", "deployment/edge/envoy-control", actor="fluxcd")
        sync += rng.randrange(20, 40) * M
    result = analyze(b.frame())
    incident = incident_at(result, peak)
    rows = result.contributors.filter(pl.col("incident_id") == incident["incident_id"])
    top = rows.sort("rank").row(0, named=True)
    assert top["target"] == "daemonset/edge/envoy" and abs(top["ts"] - push) <= M
    assert top["role"] == "latent cause"
    assert top["part_footprint"] > 0.25 and top["footprint_p"] < 1e-6, top["evidence"]
    assert any(s.startswith("footprint: ") for s in top["evidence"])
    syncs = rows.filter(pl.col("target") == "deployment/edge/envoy-control")
    assert syncs.height and not syncs["role"].is_in(list(contrib.CAUSES)).any()


def test_a_person_s_deploy_is_not_swallowed_by_a_chain_of_routine_syncs():
    rng = random.Random(23)
    t0 = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
    sa = "system:serviceaccount:argocd:argocd-application-controller"
    rows, at = [], t0
    while at < t0 + 3 * H:
        rows.append(
            change_row(
                at,
                "config",
                "deployment/shop/checkout",
                actor=sa,
                source="k8s-audit",
                line=len(rows) + 1,
            )
        )
        at += rng.randrange(3, 7) * M
    deploy = t0 + 97 * M
    rows.append(
        change_row(
            deploy,
            "deploy",
            "deployment/shop/checkout",
            actor="ivy@example.com",
            source="k8s-audit",
            line=len(rows) + 1,
            to="v42",
        )
    )
    changes = contrib.change_events(pl.DataFrame(rows, schema=EVENT_SCHEMA).sort("ts"))
    mine = changes.filter(pl.col("actor") == "ivy@example.com").row(0, named=True)
    assert mine["ts"] == deploy and not mine["automated"]
    assert mine["change_type"] == "deploy"


def test_a_job_queued_years_before_it_started_weighs_one_day_of_waiting():
    """A clock gone wrong gives a CI job a queue delay of years; counted once per minute
    it would be millions of rows (and all of memory), so it counts as a day at most."""
    from timeline.analysis.contributors.measures import MAX_WAIT_MINUTES, evidence_rows

    started = datetime(2023, 3, 14, 18, 5, tzinfo=UTC)
    waits = {"linux-large": 5 * 365 * 86400.0, "macos-m1": 600.0}
    jobs = pl.DataFrame(
        [
            {
                "ts": started - timedelta(seconds=wait),
                "source": "circleci",
                "host": None,
                "component": "build",
                "level": "info",
                "kind": "job",
                "message": f"build on {executor}",
                "template": "build",
                "attrs": json.dumps(
                    {"executor": executor, "queue_delay_s": wait, "status": "success"}
                ),
                "file": "jobs.json",
                "line": i + 1,
            }
            for i, (executor, wait) in enumerate(waits.items())
        ],
        schema=EVENT_SCHEMA,
    )
    counted = evidence_rows(jobs).collect().group_by("host").len()
    assert dict(counted.iter_rows()) == {"linux-large": MAX_WAIT_MINUTES, "macos-m1": 10}
