"""Contributing changes: grouping change rows, ranking with evidence, cohort comparison,
mitigations, precursors and the before/after signature diff."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tests.scenarios import EventBuilder
from timeline.analysis import analyze
from timeline.analysis import contributors as contrib
from timeline.schema import EVENT_SCHEMA

T0 = datetime(2024, 5, 6, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("name", "other", "same"),
    [
        ("kube-proxy", "kube-proxy", True),
        ("ingress-nginx-controller", "ingress-nginx", True),
        ("rabbitmq", "RabbitMQ", True),
        ("coredns", "node-local-dns", False),
        ("ci", "circleci", False),  # too short to say
        (None, "kube-proxy", False),
    ],
)
def test_names_match(name, other, same):
    assert contrib.names_match(name, other) is same


def test_host_key_and_node_local():
    assert pl.select(contrib.host_key(pl.lit("Node-7.ec2.internal"))).item() == "node-7"
    assert contrib.node_local({"target": "node/ip-10-0-0-1"})
    assert contrib.node_local({"target": "pod/kube-system/kube-proxy-abcde"})
    assert not contrib.node_local({"target": "configmap/ci/feature-flags"})


def change_row(ts: datetime, change_type: str, target: str, host=None, line=1, **attrs) -> dict:
    return {
        "ts": ts,
        "source": "k8s-event",
        "host": host,
        "component": None,
        "level": "info",
        "kind": "change",
        "message": f"{change_type} {target}",
        "template": None,
        "attrs": json.dumps({"change_type": change_type, "target": target, **attrs}),
        "file": "events.json",
        "line": line,
    }


def test_the_rows_of_one_rollout_are_one_change_with_its_hosts_in_order():
    rows = [
        change_row(
            T0,
            "deploy",
            "daemonset/kube-system/kube-proxy",
            line=1,
            to="registry.k8s.io/kube-proxy:v1.24.10",
            actor="alice",
        ),
        change_row(T0 + 20 * 1e-6 * M, "delete", "pod/kube-system/kube-proxy-wjlqd", line=2),
    ]
    for i, host in enumerate(["n3", "n1", "n2"]):
        at = T0 + (i + 1) * M
        rows.append(change_row(at, "restart", f"pod/kube-system/kube-proxy-ab{i}cd", host, 10 + i))
        rows.append(
            change_row(
                at,
                "upgrade",
                f"pod/kube-system/kube-proxy-x{i}yz9",
                host,
                20 + i,
                **{"from": "v1.23.17", "to": "v1.24.10", "actor": "kubelet"},
            )
        )
    rows.append(change_row(T0 + 3 * H, "restart", "pod/kube-system/kube-proxy-qqqqq", "n1", 40))
    rows.append(change_row(T0 + 30 * M, "restart", "node/n2.ec2.internal", "n2", 50))
    rows.append(change_row(T0 + 31 * M, "config", "node/n2.ec2.internal", "n2", 51, to=1))
    frame = pl.DataFrame(rows, schema=EVENT_SCHEMA)
    changes = contrib.change_events(frame, group_gap="15m")
    assert changes.height == 3
    rollout = changes.row(0, named=True)
    assert rollout["change_type"] == "upgrade"
    assert rollout["target"] == "daemonset/kube-system/kube-proxy"
    assert rollout["hosts"] == ["n1", "n2", "n3"]
    assert [h["host"] for h in rollout["host_times"]] == ["n3", "n1", "n2"]
    assert rollout["n_rows"] == 8
    assert rollout["actor"] == "alice"
    assert (rollout["from"], rollout["to"]) == ("v1.23.17", "v1.24.10")
    assert "kube-proxy" in rollout["names"] and "daemonset" not in rollout["names"]
    assert rollout["examples"][:2] == ["events.json:1", "events.json:2"]
    assert (
        "upgrade daemonset/kube-system/kube-proxy v1.23.17 -> v1.24.10 on 3 hosts"
        in (rollout["description"])
    )
    node = changes.row(1, named=True)
    assert (node["change_type"], node["node"], node["n_rows"]) == ("restart", "n2.ec2.internal", 2)
    assert node["to"] is None  # the config row's value is not this restart's
    late = changes.row(2, named=True)
    assert late["ts"] == T0 + 3 * H and late["change_type"] == "restart"


def test_no_change_rows_gives_an_empty_change_table():
    frame = pl.DataFrame(schema=EVENT_SCHEMA)
    assert contrib.change_events(frame).columns == list(contrib.CHANGE_SCHEMA)


# --- ranking on a small story ------------------------------------------------------------


def story() -> pl.DataFrame:
    """Six hosts. An agent config pushed to h1-h3 at 10:00 brings errors on those three only;
    an agent upgrade at 06:00 started a trickle on h2 at 07:00 (an older upgrade at 03:00
    did not); a cache restart at 10:38 brings a second error on h1-h4; h1 is rebooted at
    11:00 and its errors stop; decoys: a frontend deploy at 09:50 and a reboot of the
    healthy h5 at 09:58."""
    b = EventBuilder(seed=13)
    hosts = [f"h{i}" for i in range(1, 7)]
    end = T0 + 14 * H
    agent = {"source": "agent", "component": "agent"}
    b.logs(**agent, hosts=hosts, template="heartbeat", level="info", start=T0, end=end, per_min=0.2)
    b.logs(
        source="fcache",
        component="fcache",
        hosts=hosts,
        template="hit",
        level="info",
        start=T0,
        end=end,
        per_min=0.2,
    )
    b.logs(
        **agent,
        hosts=["h2"],
        template="E push failed",
        level="error",
        start=T0 + 7 * H,
        end=T0 + 10 * H,
        per_min=0.05,
    )
    b.logs(
        **agent,
        hosts=["h1"],
        template="E push failed",
        level="error",
        start=T0 + 10 * H + 2 * M,
        end=T0 + 11 * H,
        per_min=6,
    )
    b.logs(
        **agent,
        hosts=["h2", "h3"],
        template="E push failed",
        level="error",
        start=T0 + 10 * H + 2 * M,
        end=T0 + 12 * H,
        per_min=6,
    )
    b.logs(
        source="fcache",
        component="fcache",
        hosts=["h1"],
        template="F cache miss storm",
        level="error",
        start=T0 + 10 * H + 40 * M,
        end=T0 + 11 * H,
        per_min=3,
    )
    b.logs(
        source="fcache",
        component="fcache",
        hosts=["h2", "h3", "h4"],
        template="F cache miss storm",
        level="error",
        start=T0 + 10 * H + 40 * M,
        end=T0 + 12 * H,
        per_min=3,
    )
    b.change(T0 + 3 * H, "upgrade", "daemonset/app/agent", old="1.1", new="1.2")
    b.change(T0 + 6 * H, "upgrade", "daemonset/app/agent", old="1.2", new="1.3")
    b.change(T0 + 9 * H + 50 * M, "deploy", "deployment/web/frontend", old="5", new="6")
    b.change(T0 + 9 * H + 58 * M, "reboot", "node/h5")
    for i, host in enumerate(["h1", "h2", "h3"]):
        b.change(
            T0 + 10 * H + i * 10 * 1e-6 * M,
            "config",
            "daemonset/app/agent",
            host=host,
            old="rev-1",
            new="rev-2",
        )
    b.change(T0 + 10 * H + 38 * M, "restart", "daemonset/app/fcache")
    b.change(T0 + 11 * H, "reboot", "node/h1", host="h1")
    return b.frame()


@pytest.fixture(scope="module")
def ranked():
    result = analyze(story())
    assert result.incidents.height == 1
    table = result.contributors.filter(pl.col("incident_id") == 0)
    return result, {r["description"].split(" ", 2)[2].split(" by ")[0]: r for r in table.to_dicts()}


def find(ranked_rows: dict, prefix: str) -> dict:
    hits = [row for name, row in ranked_rows.items() if name.startswith(prefix)]
    assert len(hits) == 1, (prefix, list(ranked_rows))
    return hits[0]


def test_the_change_on_exactly_the_failing_hosts_ranks_first_on_cohort_evidence(ranked):
    result, rows = ranked
    push = find(rows, "config daemonset/app/agent")
    assert push["rank"] == 1
    assert push["role"] == "trigger"
    assert push["touched_hosts"] == 3 and push["untouched_hosts"] == 3
    assert push["untouched_before"] == 0 and push["untouched_after"] == 0
    assert push["after"] > 500 and push["cohort_bits"] > 5
    assert push["part_cohort"] == 1 and push["part_effect"] == 1
    assert any(
        s.startswith("cohort: ") and "none on the others (0 -> 0 on 3 hosts)" in s
        for s in push["evidence"]
    )
    assert any("made 2m before the onset" in s or "made 1m before" in s for s in push["evidence"])


def test_decoys_score_nothing_and_say_why(ranked):
    _, rows = ranked
    deploy = find(rows, "deploy deployment/web/frontend")
    assert (deploy["role"], deploy["score"], deploy["relation"]) == ("unrelated", 0, 0)
    assert "it names no host" in deploy["evidence"][1]
    reboot = find(rows, "reboot node/h5")
    assert reboot["role"] == "unrelated"
    assert "none of the 1 host(s) it touched show them" in reboot["evidence"][1]


def test_the_reboot_after_which_its_host_went_quiet_is_a_mitigation(ranked):
    _, rows = ranked
    reboot = find(rows, "reboot node/h1")
    assert reboot["role"] == "mitigation"
    assert reboot["when"] == "during"
    assert reboot["before"] > 50 and reboot["after"] == 0
    assert reboot["cohort_bits"] < -3 and reboot["score"] < 0
    assert any("mitigation: the errors on its hosts stopped" in s for s in reboot["evidence"])


def test_a_restart_after_which_its_signature_rose_made_it_worse(ranked):
    _, rows = ranked
    cache = find(rows, "restart daemonset/app/fcache")
    assert cache["role"] == "made worse"
    assert cache["affected"] == ["F cache miss storm"]
    assert cache["new_signatures"] == ["F cache miss storm"]


def test_the_precursor_is_credited_to_the_nearest_related_change_before_it(ranked):
    result, rows = ranked
    near = find(rows, "upgrade daemonset/app/agent 1.2 -> 1.3")
    far = find(rows, "upgrade daemonset/app/agent 1.1 -> 1.2")
    assert near["role"] == "precursor" and near["part_precursor"] == 1
    assert near["precursor_signature"] == "E push failed"
    assert near["precursor_hosts"] == ["h2"]
    assert T0 + 7 * H <= near["precursor_start"] < T0 + 7 * H + 60 * M
    assert far["part_precursor"] == 0 and far["role"] == "no clear effect"
    incident = result.incidents.row(0, named=True)
    assert incident["precursor_change_id"] == near["change_id"]
    assert incident["first_anomaly_at"] == near["precursor_start"]


def test_every_score_is_the_sum_of_its_shown_parts(ranked):
    _, rows = ranked
    for row in rows.values():
        inner = sum(
            contrib.WEIGHTS[k] * row[f"part_{k}"]
            for k in contrib.WEIGHTS
            if row[f"part_{k}"] is not None
        )
        assert row["score"] == pytest.approx(row["relation"] * inner)
        assert row["score_parts"].endswith(f"= {row['score']:.2f}")
        for k in contrib.WEIGHTS:
            if row[f"part_{k}"]:
                assert f" {k}" in row["score_parts"], (k, row["score_parts"])
        assert row["evidence"] and all(isinstance(s, str) for s in row["evidence"])


def test_ranks_put_causes_first_then_what_made_it_worse_then_what_helped(ranked):
    _, rows = ranked
    ordered = sorted(rows.values(), key=lambda r: r["rank"])
    assert [r["rank"] for r in ordered] == list(range(1, len(ordered) + 1))
    causes = [r for r in ordered if r["role"] in ("trigger", "precursor")]
    worse = [r for r in ordered if r["role"] == "made worse"]
    helped = [r for r in ordered if r["role"] == "mitigation"]
    rest = [r for r in ordered if r not in causes + worse + helped]
    assert causes and worse and helped and rest
    assert ordered == causes + worse + helped + rest
    for group in (causes, worse):
        assert [r["score"] for r in group] == sorted((r["score"] for r in group), reverse=True)
    assert ordered[0]["role"] == "trigger"
    assert {r["role"] for r in rest} <= {"unrelated", "no clear effect"}


def test_each_spike_gets_its_own_short_ranking(ranked):
    result, _ = ranked
    per_spike = result.spike_contributors
    assert per_spike["rank"].max() <= 5
    log_spikes = result.spikes.filter(pl.col("metric") == "errors")["spike_id"].to_list()
    assert set(per_spike["spike_id"].unique()) == set(log_spikes)
    cache_spike = result.spikes.filter(pl.col("signature") == "F cache miss storm")["spike_id"][0]
    top = per_spike.filter((pl.col("spike_id") == cache_spike) & (pl.col("rank") == 1))
    assert top["target"][0] == "daemonset/app/fcache"


# --- counting and diffs ------------------------------------------------------------------


def test_row_counter_counts_exactly_the_rows_in_each_window():
    rng = random.Random(4)
    records = [
        {
            "ts": T0 + timedelta(seconds=rng.randrange(0, 7200)),
            "source": "s",
            "host": rng.choice(["a", "b", "c.example"]),
            "component": "c",
            "level": "error",
            "kind": "log",
            "message": "x",
            "template": rng.choice(["x", "y"]),
            "attrs": "{}",
            "file": "f",
            "line": i + 1,
        }
        for i in range(400)
    ]
    frame = pl.DataFrame(records, schema=EVENT_SCHEMA)
    counter = contrib.RowCounter(frame, {("s", "x"), ("s", "y"), ("s", "z")})
    queries = []
    for q in range(200):
        # windows that open or close exactly on a row's time, and others anywhere
        exact = rng.random() < 0.3
        lo = (
            rng.choice(records)["ts"]
            if exact
            else T0 + timedelta(seconds=rng.randrange(-600, 7200))
        )
        hi = lo + timedelta(seconds=rng.randrange(0, 3000))
        hk = rng.choice([None, "a", "b", "c", "d"])
        queries.append((q, "s", rng.choice(["x", "y", "z"]), hk, lo, hi))
    table = pl.DataFrame(
        queries,
        schema={
            "q": pl.Int64,
            "source": pl.String,
            "template": pl.String,
            "hk": pl.String,
            "lo": pl.Datetime("us", "UTC"),
            "hi": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    got = dict(counter.count(table).iter_rows())  # a window of no rows may be left out
    for q, _, template, hk, lo, hi in queries:
        want = sum(
            1
            for r in records
            if r["template"] == template
            and lo <= r["ts"] < hi
            and (hk is None or r["host"].split(".")[0] == hk)
        )
        assert got.get(q, 0) == want, (q, template, hk)


def test_row_counter_quotes_the_rows_nearest_a_change_in_time_file_and_line_order():
    rng = random.Random(9)
    moments = [T0 + timedelta(seconds=rng.randrange(0, 3600)) for _ in range(60)]
    records = [
        {
            "ts": rng.choice(moments),  # many rows share a time: file and line break ties
            "source": "s",
            "host": rng.choice(["a", "b.example", "c"]),
            "component": "c",
            "level": "error",
            "kind": "log",
            "message": f"m{i}",
            "template": rng.choice(["x", "y", "w"]),
            "attrs": "{}",
            "file": rng.choice(["b.log", "a.log"]),
            "line": rng.randrange(1, 50),
        }
        for i in range(500)
    ]
    counter = contrib.RowCounter(
        pl.DataFrame(records, schema=EVENT_SCHEMA), {("s", "x"), ("s", "y")}
    )

    def brute(signatures, hosts, at, before, after, n):
        chosen = sorted(
            (
                r
                for r in records
                if r["template"] in {t for _, t in signatures}
                and at - before <= r["ts"] < at + after
                and (hosts is None or r["host"].split(".")[0] in hosts)
            ),
            key=lambda r: (r["ts"], r["file"], r["line"]),
        )
        keys = [(r["ts"], r["file"], r["line"]) for r in chosen]
        early = [k for k in keys if k[0] < at]
        return (early[-n:] if n else []), [k for k in keys if k[0] >= at][:n]

    for _ in range(150):
        at = (
            rng.choice(moments)
            if rng.random() < 0.5
            else T0 + timedelta(seconds=rng.randrange(3600))
        )
        before, after = (timedelta(seconds=rng.randrange(0, 2400)) for _ in range(2))
        signatures = rng.sample([("s", "x"), ("s", "y"), ("s", "z"), ("s", "x")], 2)
        hosts = rng.choice([None, ["a"], ["b", "c"], ["nowhere"]])
        n = rng.choice([0, 1, 3, 5])
        got = counter.quote(signatures, hosts, at=at, before=before, after=after, n=n)
        quoted = tuple([(r["ts"], r["file"], r["line"]) for r in side] for side in got)
        assert quoted == brute(signatures, hosts, at, before, after, n)
        assert all(set(r) == set(contrib.measures.QUOTE_SCHEMA) for side in got for r in side)


def test_signature_diff_names_new_vanished_risen_and_fallen():
    b = EventBuilder(seed=2)
    at = T0 + 5 * H
    app = {"source": "app", "component": "app", "hosts": ["h1"]}
    b.logs(**app, template="old timeout", level="error", start=T0, end=at, per_min=0.5)
    b.logs(**app, template="steady", level="warning", start=T0, end=T0 + 8 * H, per_min=0.5)
    b.logs(
        **app, template="brand new", level="error", start=at + 5 * M, end=T0 + 8 * H, per_min=0.5
    )
    b.logs(**app, template="busy", level="warning", start=T0, end=T0 + 8 * H, per_min=0.2)
    b.logs(**app, template="busy", level="warning", start=at, end=T0 + 8 * H, per_min=1.0)
    b.logs(**app, template="slow", level="warning", start=T0, end=at, per_min=1.0)
    b.logs(**app, template="slow", level="warning", start=at, end=T0 + 8 * H, per_min=0.1)
    b.logs(
        source="other",
        component="other",
        hosts=["h9"],
        template="elsewhere",
        level="error",
        start=at,
        end=T0 + 8 * H,
        per_min=2,
    )
    b.change(at, "deploy", "deployment/prod/app", old="1", new="2")
    frame = b.frame()
    changes = contrib.change_events(frame)
    diffs = contrib.signature_diffs(frame, changes, window="1h")
    status = dict(zip(diffs["template"], diffs["status"], strict=True))
    assert status == {
        "old timeout": "vanished",
        "brand new": "new",
        "busy": "risen",
        "slow": "fallen",
    }
    new = diffs.filter(pl.col("template") == "brand new").row(0, named=True)
    assert new["before"] == 0 and new["after"] > 10 and new["first_seen_at"] >= at


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_signature_diffs_count_each_change_scope_as_a_row_by_row_count(seed):
    """Each change's diff against a count row by row: rows on the hosts a node-local
    change names (short or full names, any case), else of the programs its name names,
    else all rows; before the change and after it within the window, its edges exact."""
    rng = random.Random(seed)
    hosts = ["ip-10-0-1-5.ec2.internal", "IP-10-0-1-5", "ip-10-0-2-9", "node-c", None]
    programs = [("kube-proxy", "kube-proxy"), ("coredns", "node-cache"), ("app", None)]
    rows = []
    for n in range(4000):
        source, component = rng.choice(programs)
        rows.append(
            {
                "ts": T0 + M * rng.randint(0, 600),
                "source": source,
                "component": component,
                "host": rng.choice(hosts),
                "kind": rng.choice(["log"] * 9 + ["job"]),
                "level": rng.choice(["info", "warning", "error", "critical"]),
                "template": rng.choice(["Sync failed", "i/o timeout", "reload", None]),
                "message": rng.choice(["dial tcp", "read udp 10.0.0.1:53"]),
                "file": "x.log",
                "line": n + 1,
            }
        )
    frame = pl.DataFrame(rows, schema={k: EVENT_SCHEMA[k] for k in rows[0]})
    kinds = [
        (
            "daemonset/kube-system/kube-proxy",
            ["ip-10-0-1-5", "NODE-C.internal"],
            None,
            "kube-proxy",
        ),
        ("daemonset/kube-system/kube-proxy", ["nowhere"], None, "kube-proxy"),
        ("node/ip-10-0-2-9", [], "ip-10-0-2-9", None),
        ("deployment/kube-system/coredns", ["ip-10-0-2-9"], None, "coredns"),
        ("deployment/prod/checkout", [], None, "checkout"),
    ]
    changes = pl.DataFrame(
        [
            {
                "change_id": i,
                "ts": T0 + M * rng.randint(0, 600),
                "target": target,
                "hosts": named,
                "node": node,
                "name": name,
            }
            for i, (target, named, node, name) in enumerate(kinds * 3)
        ],
        schema_overrides={"change_id": pl.UInt32, "ts": EVENT_SCHEMA["ts"]},
    )
    window = timedelta(minutes=rng.choice([10, 60]))
    diffs = contrib.signature_diffs(frame, changes, window=window, min_rows=2)

    problems = [
        {**r, "template": r["template"] or r["message"]}
        for r in rows
        if r["kind"] == "log" and r["level"] != "info"
    ]
    first_seen = {}
    for r in problems:
        key = (r["source"], r["template"])
        first_seen[key] = min(first_seen.get(key, r["ts"]), r["ts"])
    short = contrib.changes._host_key
    expected = set()
    for change in changes.iter_rows(named=True):
        t0, name = change["ts"], change["name"]
        explicit = {short(h) for h in change["hosts"]} if contrib.node_local(change) else set()
        explicit |= {short(change["node"])} if change["node"] else set()
        named = {
            (r["source"], r["component"])
            for r in problems
            if contrib.names_match(name, r["source"]) or contrib.names_match(name, r["component"])
        }
        counts = {}
        for r in problems:
            if not t0 - window <= r["ts"] < t0 + window:
                continue
            if explicit and short(r["host"]) not in explicit:
                continue
            if not explicit and named and (r["source"], r["component"]) not in named:
                continue
            side = counts.setdefault((r["source"], r["template"]), [0, 0])
            side[r["ts"] >= t0] += 1
        for (source, template), (before, after) in counts.items():
            seen = first_seen[(source, template)]
            moved = abs(after - before) >= 2
            status = (
                "new"
                if before == 0 and after > 0 and seen >= t0
                else "vanished"
                if before >= 2 and after == 0
                else "risen"
                if moved and after >= 2 * before
                else "fallen"
                if moved and 2 * after <= before
                else None
            )
            if status:
                expected.add((change["change_id"], source, template, before, after, status, seen))
    assert set(diffs.iter_rows()) == expected
    order = sorted(expected, key=lambda r: (r[0], r[5], -r[4], r[1], r[2]))
    assert diffs.rows() == order, "each change's statuses, most rows after first, then by name"
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
    assert contrib.signature_diffs(shuffled, changes, window=window, min_rows=2).equals(diffs)
    assert len(expected) > 10 and {s for *_, s, _ in expected} >= {"risen", "fallen", "vanished"}


def test_host_tallies_count_the_hosts_that_started_stopped_got_worse_or_better():
    """The hosts of each side that started, stopped, got worse or got better, tallied in
    one query, are those a host-by-host reading of the windows' counts finds, with each
    pair's own scales (the change's before window, and the baseline before the onset of
    a latent change)."""
    from types import SimpleNamespace

    from timeline.analysis.contributors import score

    after = timedelta(hours=1)
    sides = {"t": ("before", "after", "base"), "u": ("before", "after", "base")}
    sides |= {"ft": ("after", "base"), "fu": ("after", "base")}
    for seed in range(40):
        rng = random.Random(seed)
        pairs, rows = [], []
        for i in range(rng.randint(1, 4)):
            change = T0 + timedelta(minutes=rng.randrange(0, 600))
            onset = change + timedelta(minutes=rng.choice([5, 30, 61, 90, 400]))
            pairs.append(
                SimpleNamespace(
                    before_window=timedelta(minutes=rng.choice([15, 20, 45, 60])),
                    change={"ts": change},
                    target=SimpleNamespace(onset=onset),
                )
            )
            latent = change <= onset - after
            for side, windows in sides.items():
                if side.startswith("f") and not latent:
                    continue
                for host in rng.sample(["a", "b", "c", "d", "e"], rng.randint(0, 5)):
                    for window in windows:
                        if rng.random() < 0.7:
                            n = rng.choice([1, 1, 2, 3, 5, 8, 13, 40])
                            rows.append((i, f"{side}_{window}", host, n))
        per_host = pl.DataFrame(
            rows,
            schema={"i": pl.Int64, "role": pl.String, "host": pl.String, "n": pl.Int64},
            orient="row",
        )
        got = {
            (i, name): n for i, name, n in score._host_tallies(per_host, pairs, after=after).rows()
        }
        want = {}
        for i, p in enumerate(pairs):
            counts = {}
            for k, role, host, n in rows:
                if k == i:
                    counts.setdefault(role, {})[host] = n
            for side in sides:
                if side.startswith("f"):
                    if not p.change["ts"] <= p.target.onset - after:
                        continue
                    span = min(score.BASELINE * p.before_window, p.target.onset - p.change["ts"])
                    scale = after / span
                else:
                    scale = after / p.before_window
                before, later = counts.get(f"{side}_before", {}), counts.get(f"{side}_after", {})
                expected = {
                    h: n * scale / score.BASELINE for h, n in counts.get(f"{side}_base", {}).items()
                }
                own = after / p.before_window  # stopping is judged on the change's window
                found = {
                    "started": sum(1 for h in later if h not in before),
                    "stopped": sum(
                        1 for h, n in before.items() if later.get(h, 0) <= n * own * score.STOPPED
                    ),
                    "worse": sum(1 for h, n in later.items() if n > 2 * expected.get(h, 0) + 0.5),
                    "better": sum(
                        1 for h, e in expected.items() if e >= 2 and later.get(h, 0) < e / 2
                    ),
                }
                want |= {(i, f"{side}_{k}"): n for k, n in found.items() if n}
        assert got == want, seed


def _coredns_replica(start: datetime, change: datetime, *, seed: int, prefix) -> list[str]:
    """A CoreDNS replica's log from ``start``: its banner, a query a minute, and after
    ``change`` its upstream timing out (two ``[ERROR]`` lines a minute for 40 minutes),
    each line behind ``prefix(time)``."""
    rng = random.Random(seed)
    lines = [prefix(start) + ".:53", prefix(start) + "CoreDNS-1.11.3"]
    moment = start + timedelta(seconds=5)
    while moment < change + timedelta(minutes=40):
        client = f"10.{rng.randint(40, 44)}.{rng.randint(1, 9)}.{rng.randint(2, 250)}"
        port = rng.randint(30000, 60000)
        if moment >= change + timedelta(minutes=1):
            lines.append(
                prefix(moment) + f"[ERROR] plugin/errors: 2 ledger.payments.svc.cluster.local. A: "
                f"read udp {client}:{port}->10.96.0.53:53: i/o timeout"
            )
            moment += timedelta(seconds=rng.uniform(25, 35))
        else:
            lines.append(
                prefix(moment) + f'[INFO] {client}:{port} - {rng.randint(1, 65535)} "A IN '
                f'ledger.payments.svc.cluster.local. udp 61 false 512" NOERROR qr,aa,rd 120 '
                f"{rng.uniform(0.0001, 0.002):.9f}s"
            )
            moment += timedelta(seconds=rng.uniform(50, 70))
    return lines


def test_errors_counted_on_every_host_say_so_and_how_many_no_host_is_known_for(write):
    """A ConfigMap change is weighed against its program's errors on every host: the
    words must not put them all on the one host a record names, and must say how many
    came from replicas whose host no record names (kubectl logs saved to a file)."""
    import timeline
    from timeline.outputs.findings import findings

    start = datetime(2024, 4, 9, 6, 0, tzinfo=UTC)
    change = datetime(2024, 4, 9, 11, 32, 5, tzinfo=UTC)

    def cri(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z") + " stdout F "

    def kubectl(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z") + " "

    node = "aks-system-27461930-vmss000002"
    pod_dir = f"nodes/{node}/var/log/pods/kube-system_coredns-6f9c7b8d4-k2vzq_0a7c4e1e-5b2d-4f3a-9e8d-1c2b3a4d5e6f"
    known = _coredns_replica(start, change, seed=1, prefix=cri)
    write(f"{pod_dir}/coredns/0.log", "\n".join(known) + "\n")
    unnamed = 0
    for seed, pod in ((2, "coredns-6f9c7b8d4-p8mdx"), (3, "coredns-6f9c7b8d4-tq4nw")):
        lines = _coredns_replica(start, change, seed=seed, prefix=kubectl)
        unnamed += sum(
            "[ERROR]" in line
            and change <= datetime.fromisoformat(line[:26] + "+00:00") < change + timedelta(hours=1)
            for line in lines
        )
        write(f"kubectl/{pod}.log", "\n".join(lines) + "\n")
    update = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "b3c1d9e2-77a4-4f0e-9a51-6d2e8f4c1a07",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/kube-system/configmaps/coredns",
        "verb": "update",
        "user": {"username": "sre-oncall@northwind.example", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.224.0.14"],
        "userAgent": "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
        "objectRef": {
            "resource": "configmaps",
            "namespace": "kube-system",
            "name": "coredns",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-04-09T11:32:05.000000Z",
        "stageTimestamp": "2024-04-09T11:32:05.011000Z",
    }
    audit = write("audit/kube-apiserver-audit.log", json.dumps(update) + "\n")
    loaded = timeline.read(audit.parent.parent, workers=1)
    found = findings(loaded, analyze(loaded.events))
    (c,) = [
        c
        for i in found["incidents"]
        for c in i["contributors"]
        if c["target"] == "configmap/kube-system/coredns"
    ]
    assert c["role"] == "trigger"
    after, unknown = c["measures"]["after"], c["measures"]["after_unknown_host"]
    assert unknown == unnamed and after > unknown > 0
    errors = loaded.events.filter(
        (pl.col("level") == "error")
        & pl.col("ts").is_between(change, change + timedelta(hours=1), closed="left")
    )
    assert errors.height == after
    assert errors.filter(pl.col("host").is_null()).height == unknown
    assert c["headline"].startswith("errors ")
    assert "the host it touched" not in " ".join(c["evidence"])
    assert (
        f"on every host, {unknown:,} of the {after:,} after it from hosts no record names"
        in (c["headline"])
    )
    # the counts are of the signature named as new above, not of the others alone
    (detail,) = [e for e in c["evidence"] if e.startswith(f"{c['measures']['before']:,} rows in")]
    assert detail.endswith(f"{after:,} in the 1h after (of the 1 signature above)")


def _rabbitmq_node(start, trigger, fix, *, client: str, seed: int, json_mode: bool) -> str:
    """A RabbitMQ node's log: connections accepted all along and, from a minute after
    ``trigger`` until ``fix``, ``client``'s publishes failing on an exchange it no longer
    declares (the error's values name ``client``; its fixed words do not)."""
    rng = random.Random(seed)
    out = []

    def say(moment: datetime, level: str, text: str, pid: str) -> None:
        if json_mode:
            stamp = moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
            record = {"time": stamp, "level": level, "msg": text, "pid": pid}
            out.append(json.dumps(record | {"domain": "rabbitmq"}, separators=(",", ":")))
        else:
            out.append(f"{moment:%Y-%m-%d %H:%M:%S.%f}+00:00 [{level}] {pid} {text}")

    moment = start
    while moment < fix + timedelta(minutes=20):
        moment += timedelta(seconds=rng.uniform(5, 12))
        pid = f"<0.{rng.randint(1000, 60000)}.0>"
        peer = f"10.42.{rng.randint(0, 3)}.{rng.randint(2, 250)}:{rng.randint(30000, 60000)}"
        say(moment, "info", f"accepting AMQP connection {peer} -> 10.42.0.9:5672", pid)
        if trigger + timedelta(minutes=1) <= moment < fix:
            for _ in range(rng.randint(2, 4)):
                say(
                    moment,
                    "error",
                    f"Channel error on connection {pid} ({peer} -> 10.42.0.9:5672, vhost: '/', "
                    f"user: '{client}'), channel 1:\noperation basic.publish caused a channel "
                    f"exception not_found: no exchange '{client}.events' in vhost '/'",
                    pid,
                )
    return "\n".join(out) + "\n"


def _audit_patch(moment: datetime, resource: str, namespace: str, name: str, user: str) -> str:
    group = "/api/v1" if resource == "configmaps" else "/apis/apps/v1"
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"{abs(hash((moment, name))) % 10**12:012d}-4f0e-9a51-6d2e8f4c1a07",
            "stage": "ResponseComplete",
            "requestURI": f"{group}/namespaces/{namespace}/{resource}/{name}",
            "verb": "patch",
            "user": {"username": user, "groups": ["system:authenticated"]},
            "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
            "objectRef": {"resource": resource, "namespace": namespace, "name": name},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "stageTimestamp": (moment + timedelta(milliseconds=9)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
        }
    )


@pytest.mark.parametrize(
    ("seed", "client", "namespace", "json_mode"),
    [
        (1, "billing", "payments", False),
        (2, "orders-sync", "shop", True),
        (3, "ledger", "fin", False),
    ],
)
def test_a_client_the_errors_name_is_tied_to_them_as_their_program_would_be(
    write, seed, client, namespace, json_mode
):
    """A broker's errors about one client (``user: 'billing'``, ``no exchange
    'billing.events'``) follow a deploy of that client, and stop after the next: its
    deploys have no log of their own, so only the errors' words tie them to the errors. A
    change to another workload of the client's namespace, whose name they never say, is
    not tied by it."""
    import timeline
    from timeline.outputs.findings import findings

    rng = random.Random(seed)
    start = datetime(2024, 2, 20, 8, 0, tzinfo=UTC) + timedelta(hours=rng.randint(0, 9))
    trigger = start + timedelta(minutes=rng.randint(70, 100), seconds=rng.randint(0, 59))
    fix = trigger + timedelta(minutes=rng.randint(25, 45))
    for k in range(rng.randint(2, 3)):
        text = _rabbitmq_node(
            start, trigger, fix, client=client, seed=seed * 10 + k, json_mode=json_mode
        )
        write(f"logs/rabbitmq-server-{k}.log", text)
    records = [
        _audit_patch(
            trigger - timedelta(minutes=6), "deployments", namespace, "invoices-api", "dev"
        ),
        _audit_patch(trigger, "deployments", namespace, client, "ci-deployer"),
        _audit_patch(fix, "deployments", namespace, client, "oncall@example.org"),
    ]
    audit = write("logs/audit.log", "\n".join(records) + "\n")
    loaded = timeline.read(audit.parent, workers=1)
    (incident,) = findings(loaded, analyze(loaded.events))["incidents"]
    by_time = {c["time"][:16]: c for c in incident["contributors"]}
    tied, mended = (by_time[f"{at:%Y-%m-%dT%H:%M}"] for at in (trigger, fix))
    assert (tied["rank"], tied["role"]) == (1, "trigger")
    assert mended["role"] == "mitigation"
    for c in (tied, mended):
        assert (
            f"the errors name what it changed: '{client}' is in most of their lines"
            in (c["evidence"])
        )
    other = by_time[f"{trigger - timedelta(minutes=6):%Y-%m-%dT%H:%M}"]
    assert other["role"] not in ("trigger", "precursor", "made worse", "mitigation")
    # each broker pod's log is a file of its own, and no row names a host
    (happened,) = [s["text"] for s in incident["story"] if s["label"] == "what happened"]
    assert happened.endswith(("spike.", "spikes.")), happened


def test_the_words_of_a_signatures_values_are_those_most_of_its_rows_hold():
    """Words the template masks and most rows hold are the values that name things; the
    template's own words, and values of a few rows, are not."""
    template = "Channel error on connection <PID> (<IP>:<PORT> -> <IP>:<PORT>, user: '<STR>')"
    users = ["billing"] * 6 + ["audit-trail"] * 3
    messages = pl.Series(
        [
            f"Channel error on connection <0.{n}.0> (10.0.0.{n}:4{n} -> 10.0.0.9:5672, "
            f"user: '{user}')"
            for n, user in enumerate(users)
        ]
        + [None]
    )
    words = contrib.measures.variable_words(messages, template)
    assert "billing" in words and "audit-trail" not in words
    assert not words & {"channel", "error", "connection", "user"}


@pytest.mark.parametrize(
    "nodes",
    [
        ["10.0.1.5", "10.0.1.6", "10.0.2.17"],
        ["192.168.122.11", "192.168.122.12"],
        ["ip-10-0-1-5.ec2.internal", "10.0.1.6"],
    ],
)
def test_nodes_named_by_address_are_hosts_of_their_own(nodes):
    """Talos writes each node's logs under its address: the dots of an address are no DNS
    labels, so ``10.0.1.5`` and ``10.0.1.6`` are two hosts, not one named ``10``."""
    t = datetime(2025, 2, 3, 4, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "ts": [t + timedelta(seconds=i) for i in range(len(nodes))],
            "source": "kube-proxy",
            "component": "kube-proxy",
            "host": nodes,
            "kind": "log",
            "level": "info",
            "message": "Syncing iptables rules",
            "template": "Syncing iptables rules",
            "attrs": "{}",
            "file": [f"{n}/kube-proxy.log" for n in nodes],
            "line": 1,
        },
        schema_overrides=EVENT_SCHEMA,
    )
    hosts = contrib.host_population(frame)["kube-proxy"]
    assert len(hosts) == len(nodes)
    assert ("10.0.1.6" in hosts) == ("10.0.1.6" in nodes)
