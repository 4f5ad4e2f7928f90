"""Buildkite: builds and jobs from the REST API, one job row per script job, queued when
it became runnable, the queue its executor and the agent its runner; every line
accounted for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import parsers
import timeline
from parsers import buildkite
from tests.lines import every_line_accounted as accounted

ORG, PIPELINE = "acme", "payments"
T0 = datetime(2023, 3, 14, 18, 0, tzinfo=UTC)


def at(seconds: float | None) -> str | None:
    """Buildkite's time ``seconds`` after 18:00 UTC: milliseconds and ``Z``."""
    if seconds is None:
        return None
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def agent(name: str, hostname: str, queue: str) -> dict:
    """An agent as a job names it: agent-stack-k8s names agents after their pods."""
    return {
        "id": f"0189{abs(hash(name)) % 10**8:08d}-7c1e-4b9a-9f1d-5b8e2a7c3d10",
        "graphql_id": "QWdlbnQtLS0wMTg5",
        "url": f"https://api.buildkite.com/v2/organizations/{ORG}/agents/{name}",
        "web_url": f"https://buildkite.com/organizations/{ORG}/agents/{name}",
        "name": name,
        "connection_state": "connected",
        "hostname": hostname,
        "ip_address": "10.42.3.17",
        "user_agent": "buildkite-agent/3.62.0.7212 (linux; amd64)",
        "version": "3.62.0",
        "creator": None,
        "created_at": at(-3600),
        "job": None,
        "last_job_finished_at": None,
        "priority": 0,
        "meta_data": [f"queue={queue}", "os=linux"],
    }


def bk_job(
    job_id: str,
    name: str,
    *,
    build: int = 4821,
    queue: str | None = "linux",
    runnable: float | None = 10,
    started: float | None = 25,
    finished: float | None = 85,
    state: str = "passed",
    exit_status: int | None = 0,
    on: dict | None = None,
    **changes,
) -> dict:
    """A script job as ``GET .../builds`` lists it, with Buildkite's real field names."""
    base = f"https://api.buildkite.com/v2/organizations/{ORG}/pipelines/{PIPELINE}/builds/{build}"
    job = {
        "id": job_id,
        "graphql_id": "Sm9iLS0tMDE4OQ==",
        "type": "script",
        "name": name,
        "step_key": name.split()[-1].lower(),
        "priority": {"number": 0},
        "agent_query_rules": [f"queue={queue}"] if queue else [],
        "state": state,
        "build_url": f"https://buildkite.com/{ORG}/{PIPELINE}/builds/{build}",
        "web_url": f"https://buildkite.com/{ORG}/{PIPELINE}/builds/{build}#{job_id}",
        "log_url": f"{base}/jobs/{job_id}/log",
        "raw_log_url": f"{base}/jobs/{job_id}/log.txt",
        "artifacts_url": f"{base}/jobs/{job_id}/artifacts",
        "command": "bin/ci",
        "soft_failed": False,
        "exit_status": exit_status,
        "artifact_paths": "",
        "agent": on,
        "created_at": at(0),
        "scheduled_at": at(0.5),
        "runnable_at": at(runnable),
        "started_at": at(started),
        "finished_at": at(finished),
        "retried": False,
        "retried_in_job_id": None,
        "retries_count": None,
        "retry_source": None,
        "retry_type": None,
        "parallel_group_index": None,
        "parallel_group_total": None,
        "matrix": None,
        "cluster_id": None,
        "cluster_url": None,
        "cluster_queue_id": None,
        "cluster_queue_url": None,
    }
    job.update(changes)
    return job


def waiter(job_id: str) -> dict:
    """A ``wait`` step's job: no agent, no name."""
    return {"id": job_id, "graphql_id": "Sm9iLS0tV2FpdA==", "type": "waiter", "step_key": None}


def bk_build(number: int, jobs: list[dict], **changes) -> dict:
    """A build as ``GET /v2/organizations/{org}/pipelines/{pipeline}/builds`` lists it."""
    build = {
        "id": f"01908131-7d9f-495e-a17b-{number:012d}",
        "graphql_id": "QnVpbGQtLS0wMTkw",
        "url": f"https://api.buildkite.com/v2/organizations/{ORG}/pipelines/{PIPELINE}/builds/{number}",
        "web_url": f"https://buildkite.com/{ORG}/{PIPELINE}/builds/{number}",
        "number": number,
        "state": "failed",
        "cancel_reason": None,
        "blocked": False,
        "message": "Retry ledger writes on conflict",
        "commit": "3f6c2d9e8b7a41c05d2e9f8a7b6c5d4e3f2a1b0c",
        "branch": "main",
        "tag": None,
        "env": {},
        "source": "webhook",
        "creator": None,
        "jobs": jobs,
        "created_at": at(0),
        "scheduled_at": at(0),
        "started_at": at(25),
        "finished_at": at(200),
        "meta_data": {"buildkite:git:commit": "commit 3f6c2d9e"},
        "pull_request": None,
        "rebuilt_from": None,
        "pipeline": {
            "id": "849411f9-9e6d-4739-a0d8-e247088e9b52",
            "url": f"https://api.buildkite.com/v2/organizations/{ORG}/pipelines/{PIPELINE}",
            "web_url": f"https://buildkite.com/{ORG}/{PIPELINE}",
            "name": "Payments",
            "slug": PIPELINE,
            "repository": "git@github.com:acme/payments.git",
        },
    }
    build.update(changes)
    return build


K8S = agent("agent-stack-k8s-7f9c2-x4q2l", "agent-stack-k8s-7f9c2-x4q2l", "k8s-large")
MAC = agent("mac-mini-3", "mac-mini-3.ci.acme.internal", "macos")


def page() -> list[dict]:
    """Two builds: passed, failed, soft-failed, timed-out, retried, canceled and still
    scheduled jobs on two queues, a wait step and a block step among them."""
    first = bk_build(
        4821,
        [
            bk_job("a1", ":rspec: RSpec", queue="k8s-large", on=K8S),
            waiter("w1"),
            bk_job(
                "a2",
                ":rubocop: Lint",
                state="failed",
                exit_status=1,
                soft_failed=True,
                queue="k8s-large",
                on=K8S,
            ),
            bk_job(
                "a3",
                ":xcode: iOS",
                queue="macos",
                state="timed_out",
                exit_status=-1,
                runnable=30,
                started=150,
                finished=1950,
                on=MAC,
            ),
            bk_job(
                "a4",
                ":pytest: Flaky",
                state="failed",
                exit_status=2,
                retried=True,
                retried_in_job_id="a5",
                on=K8S,
                queue="k8s-large",
            ),
            bk_job(
                "a5",
                ":pytest: Flaky",
                queue="k8s-large",
                on=K8S,
                retries_count=1,
                retry_type="manual",
                runnable=90,
                started=91,
                finished=140,
            ),
            {
                "id": "m1",
                "graphql_id": "Sm9iLS0tTWFudWFs",
                "type": "manual",
                "label": "Deploy?",
                "state": "blocked",
                "web_url": None,
                "unblocked_by": None,
                "unblocked_at": None,
                "unblockable": True,
                "unblock_url": "https://api.buildkite.com/v2/.../unblock",
            },
        ],
    )
    second = bk_build(
        4822,
        [
            bk_job(
                "b1",
                ":rspec: RSpec",
                build=4822,
                queue="k8s-large",
                state="scheduled",
                exit_status=None,
                started=None,
                finished=None,
                runnable=300,
            ),
            bk_job(
                "b2",
                ":docker: Build",
                build=4822,
                queue=None,
                state="canceled",
                exit_status=None,
                runnable=300,
                started=None,
                finished=320,
            ),
        ],
        state="canceled",
    )
    return [first, second]


def by_id(events: pl.DataFrame) -> dict[str, dict]:
    return {
        json.loads(row["attrs"])["job_id"]: json.loads(row["attrs"]) | row
        for row in events.filter(pl.col("kind") == "job").iter_rows(named=True)
    }


def unparsed(loaded: timeline.Loaded) -> pl.DataFrame:
    return loaded.summary.warnings.filter(pl.col("line").is_not_null())


# --- jobs ----------------------------------------------------------------------------------


def test_a_page_of_builds_gives_a_row_per_script_job(read):
    loaded = read("builds.json", json.dumps(page(), indent=2) + "\n")
    assert loaded.summary.files["format"].to_list() == ["buildkite"]
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0
    jobs = by_id(loaded.events)
    assert sorted(jobs) == ["a1", "a2", "a3", "a4", "a5", "b1", "b2"]
    a1 = jobs["a1"]
    assert a1["source"] == "buildkite" and a1["kind"] == "job" and a1["level"] == "info"
    assert a1["ts"] == T0 + timedelta(seconds=10)
    assert a1["queued_at"] == "2023-03-14T18:00:10.000Z"
    assert a1["queue_delay_s"] == 15.0 and a1["duration_s"] == 60.0
    assert a1["executor"] == "k8s-large" and a1["runner_name"] == K8S["name"]
    assert a1["host"] is None and a1["component"] == ":rspec: RSpec"
    assert a1["build_number"] == 4821 and a1["pipeline"] == PIPELINE
    assert a1["organization"] == ORG and a1["branch"] == "main"
    assert a1["scheduled_at"] == "2023-03-14T18:00:00.500Z"
    assert a1["message"] == (
        f"job :rspec: RSpec #4821 success [passed] (k8s-large, runner {K8S['name']}, "
        "queued 15.0s, ran 60.0s)"
    )


def test_the_jobs_of_a_build_are_rows_of_its_lines(read):
    text = json.dumps(page(), indent=2) + "\n"
    loaded = read("builds.json", text)
    lines = text.splitlines()
    second = [i for i, line in enumerate(lines, 1) if line == "  {"][1]
    jobs = by_id(loaded.events)
    assert {jobs[j]["line"] for j in ("a1", "a2", "a3", "a4", "a5")} == {1}
    assert {jobs[j]["line"] for j in ("b1", "b2")} == {second}


@pytest.mark.parametrize(
    ("job_id", "status", "level", "said"),
    [
        ("a2", "failed", "error", "failed [soft failed, exit 1]"),
        ("a3", "failed", "error", "failed [timed_out, exit -1]"),
        ("a4", "failed", "error", "failed [exit 2]"),
        ("b1", "queued", "info", "queued [scheduled] (k8s-large, not started)"),
        ("b2", "cancelled", "warning", "cancelled [canceled] (default)"),
    ],
)
def test_states_are_normalised_and_said_with_the_exit_status(read, job_id, status, level, said):
    job = by_id(read("builds.json", json.dumps(page()) + "\n").events)[job_id]
    assert job["status"] == status and job["level"] == level
    assert said in job["message"]


def test_queue_delay_only_where_runnable_and_started_are_both_stated(read):
    jobs = by_id(read("builds.json", json.dumps(page(), indent=2)).events)
    assert jobs["a3"]["queue_delay_s"] == 120.0 and jobs["a3"]["executor"] == "macos"
    assert jobs["b1"]["queue_delay_s"] is None and "runner_name" not in jobs["b1"]
    assert jobs["b2"]["queue_delay_s"] is None and jobs["b2"]["executor"] == "default"
    never = bk_job("c1", "Never runnable", state="waiting", runnable=None, started=None)
    job = by_id(read("one.json", json.dumps(never)).events)["c1"]
    assert job["queue_delay_s"] is None and job["ts"] == T0 and job["status"] == "queued"


def test_soft_failures_and_retries_are_kept_and_said(read):
    jobs = by_id(read("builds.json", json.dumps(page(), indent=2)).events)
    assert jobs["a2"]["soft_failed"] is True and "soft_failed" not in jobs["a1"]
    assert jobs["a4"]["retried"] is True and jobs["a4"]["retried_in_job_id"] == "a5"
    assert jobs["a5"]["retries_count"] == 1 and jobs["a5"]["queue_delay_s"] == 1.0
    assert jobs["a4"]["exit_status"] == 2


def test_a_stated_offset_is_brought_to_utc(read):
    job = bk_job("z1", "Zoned", runnable=None, started=None, finished=None, state="scheduled")
    job["runnable_at"] = "2023-03-14T20:00:10.000+02:00"
    row = by_id(read("job.json", json.dumps(job)).events)["z1"]
    assert row["ts"] == T0 + timedelta(seconds=10)
    assert row["queued_at"] == "2023-03-14T18:00:10.000Z"


def test_one_build_and_a_build_s_job_list_read_as_the_page_does(read):
    build, _ = page()
    one = by_id(read("build.json", json.dumps(build, indent=2)).events)
    assert sorted(one) == ["a1", "a2", "a3", "a4", "a5"]
    listed = read("jobs.json", json.dumps(build["jobs"], indent=2))
    jobs = by_id(listed.events)
    assert sorted(jobs) == ["a1", "a2", "a3", "a4", "a5"]
    # without the build, its number and pipeline come from each job's web_url
    assert jobs["a1"]["build_number"] == 4821 and jobs["a1"]["pipeline"] == PIPELINE
    assert jobs["a1"]["line"] == 1 < jobs["a2"]["line"] < jobs["a3"]["line"]
    assert listed.events.filter(pl.col("kind") == "job")["line"].n_unique() == 5
    reasons = unparsed(listed).group_by("reason").len().sort("reason")
    assert reasons["reason"].to_list() == [
        "a Buildkite manual job, which runs on no agent",
        "a Buildkite waiter job, which runs on no agent",
    ]
    assert accounted(listed)


def test_pages_one_after_another_and_json_lines(read):
    first, second = page()
    pages = json.dumps([first]) + "\n" + json.dumps([second]) + "\n"
    assert len(by_id(read("pages.json", pages).events)) == 7
    lines = "\n".join(json.dumps(b) for b in page()) + "\n"
    loaded = read("builds.jsonl", lines)
    jobs = by_id(loaded.events)
    assert len(jobs) == 7 and jobs["b2"]["line"] == 2
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0


def test_builds_without_a_script_job_are_unparsed_lines_that_say_why(read):
    only_waits = bk_build(5000, [waiter("w1"), waiter("w2")])
    listed = {k: v for k, v in bk_build(5001, []).items() if k != "jobs"}
    lines = [json.dumps(only_waits), json.dumps(listed), json.dumps(bk_build(5002, []))]
    loaded = read("builds.jsonl", "\n".join(lines) + "\n")
    assert accounted(loaded) and loaded.events.filter(pl.col("kind") == "job").height == 0
    assert unparsed(loaded).sort("line")["reason"].to_list() == [
        "a Buildkite build with no script job, only jobs that run on no agent (2)",
        "a Buildkite build listed without its jobs (exclude_jobs)",
        "a Buildkite build with no jobs",
    ]


def test_a_truncated_page_keeps_the_complete_builds(read):
    text = json.dumps(page(), indent=2)
    loaded = read("builds.json", text[: text.index('"b2"')])
    assert sorted(by_id(loaded.events)) == ["a1", "a2", "a3", "a4", "a5"]
    assert accounted(loaded) and loaded.summary.unparsed_lines > 0
    assert unparsed(loaded)["reason"].str.contains("JSON breaks at line").all()


def test_an_error_answer_is_not_a_job(read):
    loaded = read("builds.json", json.dumps({"message": "Not Found"}) + "\n")
    assert loaded.events.filter(pl.col("kind") == "job").height == 0
    assert accounted(loaded)


def test_an_unknown_state_is_other_kept_and_noted(read):
    job = bk_job("u1", "Odd", state="platform_limited", started=None, finished=None)
    row = by_id(read("job.json", json.dumps(job)).events)["u1"]
    assert row["status"] == "other" and row["raw_status"] == "platform_limited"
    assert "unknown Buildkite status 'platform_limited'" in row["note"]


# --- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize("pretty", [True, False])
def test_buildkite_json_is_buildkite_s_and_not_another_ci_s(pretty):
    for value in (page(), page()[0], page()[0]["jobs"], page()[0]["jobs"][0]):
        text = json.dumps(value, indent=2 if pretty else None)
        sample = text.splitlines()[:200]
        best, score = parsers.registry.rank(sample)[0]
        assert best.name == "buildkite" and score.score >= 0.9, score
        for other in ("gitlab-ci", "github-actions", "circleci"):
            assert parsers.registry.get(other).sniff(sample).score < 0.5


def test_the_other_cis_json_is_not_buildkite_s():
    from tests.test_circleci import WORKFLOW_JOBS
    from tests.test_github_actions import gh_job
    from tests.test_gitlab_ci import gl_job

    for value in (
        [gl_job(1, "a")],
        {"total_count": 1, "jobs": [gh_job(1, "b")]},
        WORKFLOW_JOBS,
    ):
        sample = json.dumps(value, indent=2).splitlines()
        assert buildkite.sniff(sample).score < 0.5


# --- end to end ----------------------------------------------------------------------------


def test_queue_waits_that_grow_on_one_queue_are_a_buildkite_ci_spike(tmp_path):
    """Builds every two minutes for six hours; after four hours the ``k8s`` queue's jobs
    wait ten to twenty minutes for an agent while the ``macos`` queue's do not."""
    builds, start = [], datetime(2024, 6, 11, 4, 0, tzinfo=UTC)
    for n in range(180):
        created = start + timedelta(minutes=2 * n)
        slow = n >= 120
        wait = 600 + (n * 37) % 600 if slow else 5 + (n * 7) % 20
        offset = (created - T0).total_seconds()
        jobs = [
            bk_job(
                f"k{n}",
                ":rspec: RSpec",
                build=1000 + n,
                queue="k8s",
                runnable=offset + 2,
                started=offset + 2 + wait,
                finished=offset + 62 + wait,
                on=K8S,
            ),
            waiter(f"w{n}"),
            bk_job(
                f"m{n}",
                ":xcode: iOS",
                build=1000 + n,
                queue="macos",
                runnable=offset + 2,
                started=offset + 10,
                finished=offset + 90,
                on=MAC,
            ),
        ]
        builds.append(bk_build(1000 + n, jobs, created_at=at(offset)))
    folder = tmp_path / "ci"
    folder.mkdir()
    for p in range(0, 180, 100):
        (folder / f"builds-{p // 100 + 1}.json").write_text(json.dumps(builds[p : p + 100]))
    loaded = timeline.read(folder, cache=False)
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0
    analysis = timeline.analyze(loaded)
    ci = analysis.spikes.filter(pl.col("source") == "buildkite")
    assert ci.height >= 1
    assert set(ci["signature"]) == {"k8s jobs"}
    assert ci["start"].min() >= start + timedelta(hours=3, minutes=45)
