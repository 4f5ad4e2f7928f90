"""The bundled sample and its generator: same bytes every run, every line readable, and the
story of the 2023-03-14 incident told the way the ground truth says."""

from __future__ import annotations

import doctest
import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import sample_logs
import timeline
from sample_logs import formats
from sample_logs.formats import NS
from sample_logs.generate import generate, main
from sample_logs.logs import NOISY_UPSTREAM
from sample_logs.story import NEW, OLD, Story, build_cluster

FAMILIES = {"klog", "coredns", "rabbitmq", "circleci", "k8s-audit", "k8s-events", "changelog"}
ROLES = {
    "root-cause",
    "precursor-start",
    "made-worse",
    "mitigation",
    "triggered-incident",
    "unrelated",
}


def utc(t: int | str) -> datetime:
    if isinstance(t, str):
        return datetime.fromisoformat(t.replace("Z", "+00:00")).replace(tzinfo=UTC)
    return datetime.fromtimestamp(t / 1e9, tz=UTC)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A quarter-scale sample (three nodes), loaded as a user would load it."""
    out = tmp_path_factory.mktemp("sample") / "circleci-2023-03-14"
    done = generate(out, scale=0.25)
    return done, timeline.read(out)


@pytest.fixture(scope="module")
def events(small) -> pl.DataFrame:
    return small[1].events


@pytest.fixture(scope="module")
def truth(small) -> dict:
    return small[0].truth


def sync_failures(events: pl.DataFrame) -> pl.DataFrame:
    return events.filter(
        (pl.col("source") == "kube-proxy")
        & (pl.col("level") == "error")
        & pl.col("message").str.contains("Failed to execute iptables-restore", literal=True)
    )


def jobs(events: pl.DataFrame, executor: str, start: str, end: str) -> pl.DataFrame:
    return events.filter(
        (pl.col("source") == "circleci")
        & (pl.col("attrs").str.json_path_match("$.executor") == executor)
        & pl.col("ts").is_between(utc(start), utc(end), closed="left")
    ).with_columns(delay=pl.col("attrs").str.json_path_match("$.queue_delay_s").cast(pl.Float64))


# --- the generator -----------------------------------------------------------------------


def test_the_same_command_writes_the_same_bytes(small, tmp_path):
    first = small[0]
    second = generate(tmp_path / "again" / "circleci-2023-03-14", scale=0.25)
    names = sorted(f.path for f in first.files)
    assert names == sorted(f.path for f in second.files)
    root = first.expected_path.with_name("circleci-2023-03-14")
    for name in names:
        assert (root / name).read_bytes() == (
            tmp_path / "again" / "circleci-2023-03-14" / name
        ).read_bytes(), name
    assert first.expected_path.read_bytes() == second.expected_path.read_bytes()


def test_another_seed_tells_the_same_story_with_other_details():
    one, two = build_cluster(0.25, seed=1), build_cluster(0.25, seed=2)
    assert [n.name for n in one.nodes] != [n.name for n in two.nodes]
    assert sorted(n.down for n in one.nodes) != sorted(n.down for n in two.nodes)
    for cluster in (one, two):
        assert cluster.first_rebooted.down == Story.FIRST_REBOOT
        assert all(
            Story.FIRST_REBOOT <= n.down <= Story.ROLLING_REBOOTS[1] + 60 * NS
            for n in cluster.nodes
        )


def test_scale_multiplies_nodes_and_pods():
    base, big = build_cluster(1, seed=7), build_cluster(30, seed=7)
    assert len(base.nodes) == 12 and len(big.nodes) == 360
    assert len({n.name for n in big.nodes}) == 360
    assert sum(p.phase == "before" for p in big.coredns) == 60


def test_gzip_headers_carry_no_clock(small):
    done, _ = small
    gz = [f for f in done.files if f.path.endswith(".gz")]
    assert gz
    for written in gz[:20]:
        header = (done.expected_path.parent / "circleci-2023-03-14" / written.path).read_bytes()[
            :10
        ]
        assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\x00\x00\x00\x00"


def test_the_ground_truth_sits_beside_the_logs_not_inside(small):
    done, loaded = small
    assert done.expected_path.name == "circleci-2023-03-14.EXPECTED.json"
    assert not any("EXPECTED" in f for f in loaded.summary.files["file"].to_list())


def test_formats_doctests_pass():
    failed, tried = doctest.testmod(formats)
    assert tried > 5 and failed == 0


def test_cli_refuses_to_overwrite_a_folder_unless_forced(tmp_path, capsys):
    out = tmp_path / "big"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["--out", str(out), "--scale", "0.1", "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "notes.txt").exists()
    assert main(["--out", str(out), "--scale", "0.1", "--quiet", "--force"]) == 0
    assert "lines" in capsys.readouterr().out
    assert not (out / "notes.txt").exists()
    assert (tmp_path / "big.EXPECTED.json").exists()


# --- every line loads --------------------------------------------------------------------


def test_every_file_loads_with_no_unparsed_line(small):
    done, loaded = small
    files = loaded.summary.files
    assert files.height == len(done.files)
    assert set(files["format"].to_list()) == FAMILIES
    bad = files.filter(
        pl.col("format").is_null()
        | (pl.col("unparsed_lines") > 0)
        | pl.col("problem").is_not_null()
    )
    assert bad.height == 0, bad.select("file", "format", "first_unparsed", "problem").to_dicts()
    assert int(files["lines"].sum()) == done.truth["lines"]


def test_klog_years_come_from_the_runtime_prefix(small):
    assumptions = small[1].summary.assumptions.filter(pl.col("what") == "year")
    assert assumptions.height > 0
    assert set(assumptions["value"].to_list()) == {"from runtime prefix"}


# --- the story ---------------------------------------------------------------------------


def test_no_sync_failure_before_the_rollback(events):
    failures = sync_failures(events)
    assert failures.height > 0
    assert failures["ts"].min() > utc(Story.ROLLBACK)


def test_the_precursor_is_a_small_growing_trickle_on_some_nodes(events, truth):
    between = sync_failures(events).filter(
        pl.col("ts").is_between(utc(Story.ROLLBACK), utc(Story.RESUMED_UPGRADE))
    )
    assert 0 < between["host"].n_unique() < len(truth["nodes"])
    hourly = between.group_by(pl.col("ts").dt.truncate("1h")).len()
    assert hourly["len"].max() < 15 * between["host"].n_unique()
    first = between["ts"].min()
    middle = first + (utc(Story.RESUMED_UPGRADE) - first) / 2
    early = between.filter(pl.col("ts") < middle).height
    assert between.height - early > early


def test_every_node_fails_from_the_spike_until_its_reboot(events, truth):
    failures = sync_failures(events)
    for node, reboot in truth["nodes"].items():
        mine = failures.filter(pl.col("host") == node)
        spike = mine.filter(pl.col("ts") >= utc(Story.ONSET) - timedelta(minutes=3))
        assert spike.height > 50, node
        calm = (utc(Story.RESUMED_UPGRADE) + timedelta(minutes=12), spike["ts"].min())
        assert mine.filter(pl.col("ts").is_between(*calm, closed="left")).is_empty(), node
        assert spike["ts"].max() < utc(reboot), node
        assert spike["ts"].max() > utc(reboot) - (utc(reboot) - utc(Story.ONSET)) / 4, node


def test_each_node_starts_fresh_after_its_reboot_with_the_new_version(events, truth):
    versions = events.filter(
        (pl.col("source") == "kube-proxy")
        & pl.col("message").str.contains('"Version info"', literal=True)
    ).sort("ts")
    for node, reboot in truth["nodes"].items():
        mine = versions.filter(pl.col("host") == node)
        seen = [json.loads(a)["version"] for a in mine["attrs"]]
        assert seen == [NEW, OLD, NEW, NEW], node
        assert mine["ts"][-1] > utc(reboot)


def test_docker_queue_delay_is_back_to_normal_before_2330(events):
    normal = jobs(events, "docker", "2023-03-13 00:00", "2023-03-14 17:00")["delay"].median()
    worst = jobs(events, "docker", "2023-03-14 20:00", "2023-03-14 21:00")["delay"].median()
    after = jobs(events, "docker", "2023-03-14 23:05", "2023-03-14 23:30")["delay"].median()
    assert normal < 10
    assert worst > 20 * 60
    assert after < 3 * normal


def test_machine_and_macos_jobs_stay_delayed_until_0115(events):
    for executor in ("machine", "macos"):
        late = jobs(events, executor, "2023-03-14 23:00", "2023-03-15 00:30")["delay"].median()
        normal = jobs(events, executor, "2023-03-13 00:00", "2023-03-14 17:00")["delay"].median()
        recovered = jobs(events, executor, "2023-03-15 02:40", "2023-03-15 02:50")["delay"]
        assert late > 30 * 60, executor
        assert recovered.is_empty() or recovered.median() < 4 * normal, executor


def test_jobs_fail_to_start_during_the_incident_only(events):
    failed = events.filter(
        (pl.col("source") == "circleci")
        & (pl.col("attrs").str.json_path_match("$.raw_status") == "infrastructure_fail")
    )
    assert failed.height > 0
    assert failed["ts"].min() >= utc(Story.ONSET)
    assert failed["ts"].max() < utc(Story.RABBIT_MITIGATED)


def test_dns_fails_only_after_the_dns_restart_and_recovers_per_node(events, truth):
    dns_errors = events.filter(
        (pl.col("source") == "coredns")
        & (pl.col("level") == "error")
        & ~pl.col("message").str.contains(NOISY_UPSTREAM, literal=True)
    )
    assert dns_errors.height > 0
    assert dns_errors["ts"].min() > utc(Story.COREDNS_RESTART)
    assert dns_errors.filter(pl.col("message").str.contains("SERVFAIL", literal=True)).height > 0
    for node, reboot in truth["nodes"].items():
        mine = dns_errors.filter(pl.col("host") == node)
        assert mine.height > 0, node
        assert mine["ts"].max() < utc(reboot), node


def test_background_dns_errors_are_there_all_along(events):
    noise = events.filter(
        (pl.col("source") == "coredns")
        & pl.col("message").str.contains(NOISY_UPSTREAM, literal=True)
    )
    assert noise["ts"].min() < utc(Story.UPGRADE)
    assert noise["ts"].max() > utc(Story.QUEUE_RESTART[0])


def test_rabbitmq_errors_cluster_in_the_two_episodes(events):
    trouble = events.filter(
        (pl.col("source") == "rabbitmq") & pl.col("level").is_in(["warning", "error"])
    )
    windows = [
        (utc(Story.RABBIT_ROLL[0]), utc(Story.RABBIT_MITIGATED)),
        (utc(Story.QUEUE_RESTART[0]), utc(Story.QUEUE_MITIGATED)),
    ]
    inside = pl.any_horizontal([pl.col("ts").is_between(a, b) for a, b in windows])
    hours_inside = sum((b - a).total_seconds() for a, b in windows) / 3600
    hours_outside = (utc(Story.END) - utc(Story.START)).total_seconds() / 3600 - hours_inside
    rate_in = trouble.filter(inside).height / hours_inside
    rate_out = trouble.filter(~inside).height / hours_outside
    assert rate_out > 0
    assert rate_in > 10 * rate_out


def test_rabbitmq_restarts_show_in_the_logs(events):
    started = events.filter(
        (pl.col("source") == "rabbitmq")
        & pl.col("message").str.contains("Server startup complete", literal=True)
    )
    assert started["host"].n_unique() == 3
    assert started.height == 6


def test_the_decoy_changes_are_recorded_and_nothing_follows_them(events, truth):
    decoys = [c for c in truth["changes"] if c["role"] == "unrelated" and c["incident"] is None]
    assert {c["target"] for c in decoys} >= {"configmap/ci/feature-flags"}
    audit = events.filter((pl.col("source") == "k8s-audit") & (pl.col("kind") == "change"))
    for change in decoys:
        at = utc(change["time"])
        near = audit.filter(pl.col("ts").is_between(at, at + timedelta(minutes=1)))
        assert near.height >= 1, change
    failures = sync_failures(events)
    decoy = utc(Story.DECOY_CONFIG)
    two_hours = timedelta(hours=2)
    before = failures.filter(pl.col("ts").is_between(decoy - two_hours, decoy)).height
    after = failures.filter(pl.col("ts").is_between(decoy, decoy + two_hours)).height
    assert after <= 2 * before + 5


def test_kube_proxy_image_changes_are_in_the_audit_log(events):
    patches = events.filter(
        (pl.col("source") == "k8s-audit")
        & (pl.col("kind") == "change")
        & pl.col("attrs").str.contains("kube-proxy", literal=True)
    ).sort("ts")
    times = patches["ts"].to_list()
    for t in (Story.UPGRADE, Story.ROLLBACK, Story.RESUMED_UPGRADE):
        assert any(abs((x - utc(t)).total_seconds()) < 60 for x in times), utc(t)
    text = " ".join(patches["attrs"].to_list())
    assert NEW in text and OLD in text


def test_node_reboots_are_in_the_events(events, truth):
    reboots = events.filter(
        (pl.col("source") == "k8s-event")
        & pl.col("message").str.contains("has been rebooted", literal=True)
    )
    assert set(reboots["host"].to_list()) == set(truth["nodes"])
    for node, reboot in truth["nodes"].items():
        when = reboots.filter(pl.col("host") == node)["ts"][0]
        assert 0 < (when - utc(reboot)).total_seconds() < 300


def test_ground_truth_shape(truth):
    assert [i["id"] for i in truth["incidents"]] == [
        "kube-proxy-sync",
        "rabbitmq-restart",
        "rabbitmq-queues",
    ]
    for incident in truth["incidents"]:
        assert incident["start"] <= incident["onset"] < incident["end"]
    roles = {c["role"] for c in truth["changes"]}
    assert roles == ROLES
    ids = {i["id"] for i in truth["incidents"]}
    assert all(c["incident"] in ids | {None} for c in truth["changes"])
    times = [c["time"] for c in truth["changes"]]
    assert times == sorted(times)


# --- the committed sample ----------------------------------------------------------------


def test_the_committed_sample_is_small_and_loads_with_no_unparsed_line():
    size = sum(p.stat().st_size for p in sample_logs.SAMPLE_DIR.rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024
    loaded = timeline.read(sample_logs.SAMPLE_DIR)
    files = loaded.summary.files
    assert set(files["format"].to_list()) == FAMILIES
    assert int(files["unparsed_lines"].sum()) == 0
    assert files["problem"].null_count() == files.height
    truth = sample_logs.expected()
    assert int(files["lines"].sum()) == truth["lines"]
    nodes = {p.name for p in (sample_logs.SAMPLE_DIR / "nodes").iterdir()}
    assert nodes == set(truth["nodes"])
    assert set(loaded.events.filter(pl.col("source") == "kube-proxy")["host"].unique()) == nodes


def test_expected_can_be_read_from_the_folder_or_the_file():
    assert sample_logs.expected(sample_logs.SAMPLE_DIR) == sample_logs.expected()
    assert sample_logs.expected(sample_logs.EXPECTED_PATH)["seed"] == 20230314
