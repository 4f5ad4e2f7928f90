"""GitHub Actions: jobs and runs from the REST API, and raw job logs, as job and log rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import parsers
import timeline
from parsers.common import LINE_SCHEMA
from tests.lines import every_line_accounted, read_real

REAL = Path(__file__).parent / "data" / "real" / "github-actions"


def gh_job(job_id: int, name: str, **changes) -> dict:
    """A workflow job as ``GET /repos/{o}/{r}/actions/runs/{id}/jobs`` lists it."""
    job = {
        "id": job_id,
        "run_id": 4421567890,
        "workflow_name": "CI",
        "head_branch": "main",
        "run_url": "https://api.github.com/repos/acme/api/actions/runs/4421567890",
        "run_attempt": 1,
        "node_id": "CR_kwDOH1a2b88AAAACyE0mPw",
        "head_sha": "9b1f0c4e2d7a6b3c8e5f1a0d2c4b6e8f0a1c3e5d",
        "url": f"https://api.github.com/repos/acme/api/actions/jobs/{job_id}",
        "html_url": f"https://github.com/acme/api/actions/runs/4421567890/job/{job_id}",
        "status": "completed",
        "conclusion": "success",
        "created_at": "2023-03-14T18:04:51Z",
        "started_at": "2023-03-14T18:06:33Z",
        "completed_at": "2023-03-14T18:09:02Z",
        "name": name,
        "steps": [
            {
                "name": "Set up job",
                "status": "completed",
                "conclusion": "success",
                "number": 1,
                "started_at": "2023-03-14T18:06:32.000Z",
                "completed_at": "2023-03-14T18:06:35.000Z",
            }
        ],
        "check_run_url": f"https://api.github.com/repos/acme/api/check-runs/{job_id}",
        "labels": ["ubuntu-latest"],
        "runner_id": 7,
        "runner_name": "GitHub Actions 7",
        "runner_group_id": 2,
        "runner_group_name": "GitHub Actions",
    }
    job.update(changes)
    return job


def gh_run(run_id: int, number: int, **changes) -> dict:
    """A workflow run as ``GET /repos/{o}/{r}/actions/runs`` lists it."""
    run = {
        "id": run_id,
        "name": "CI",
        "node_id": "WFR_kwLOH1a2b88AAAABB3x1Eg",
        "head_branch": "main",
        "head_sha": "9b1f0c4e2d7a6b3c8e5f1a0d2c4b6e8f0a1c3e5d",
        "path": ".github/workflows/ci.yml",
        "display_title": "Bump kube-proxy to v1.24.10",
        "run_number": number,
        "event": "push",
        "status": "completed",
        "conclusion": "success",
        "workflow_id": 51234567,
        "check_suite_id": 11623456789,
        "url": f"https://api.github.com/repos/acme/api/actions/runs/{run_id}",
        "html_url": f"https://github.com/acme/api/actions/runs/{run_id}",
        "created_at": "2023-03-14T18:04:50Z",
        "updated_at": "2023-03-14T18:12:10Z",
        "actor": {"login": "octo-sre", "id": 1},
        "run_attempt": 1,
        "run_started_at": "2023-03-14T18:05:02Z",
        "jobs_url": f"https://api.github.com/repos/acme/api/actions/runs/{run_id}/jobs",
    }
    run.update(changes)
    return run


def by_name(events: pl.DataFrame) -> dict[str, dict]:
    return {json.loads(a)["name"]: json.loads(a) for a in events["attrs"]}


# --- jobs and runs -----------------------------------------------------------------------


def test_jobs_response_gives_job_rows_with_runner_and_queue_delay(read):
    page = {
        "total_count": 4,
        "jobs": [
            gh_job(1, "build"),
            gh_job(
                2,
                "test-windows",
                status="in_progress",
                conclusion=None,
                completed_at=None,
                labels=["windows-latest"],
                runner_name="GitHub Actions 9",
            ),
            gh_job(
                3,
                "test-macos",
                status="queued",
                conclusion=None,
                completed_at=None,
                started_at="2023-03-14T18:04:51Z",
                labels=["macos-13"],
                runner_name=None,
                runner_id=None,
                runner_group_name=None,
            ),
            gh_job(
                4,
                "deploy",
                conclusion="failure",
                labels=["self-hosted", "linux", "deployer"],
                runner_name="deployer-7f9c2",
                runner_group_name="Default",
            ),
        ],
    }
    loaded = read("jobs.json", json.dumps(page, indent=2) + "\n")
    assert loaded.summary.files["format"].to_list() == ["github-actions"]
    assert loaded.summary.unparsed_lines == 0
    jobs = by_name(loaded.events)
    assert jobs["build"]["status"] == "success" and jobs["build"]["queue_delay_s"] == 102.0
    assert jobs["build"]["executor"] == "machine" and jobs["build"]["duration_s"] == 149.0
    assert jobs["build"]["url"] == "https://github.com/acme/api/actions/runs/4421567890/job/1"
    assert (
        jobs["test-windows"]["status"] == "running"
        and jobs["test-windows"]["executor"] == "windows"
    )
    assert jobs["test-windows"]["stopped_at"] is None
    macos = jobs["test-macos"]
    assert macos["status"] == "queued" and macos["executor"] == "macos"
    assert macos["started_at"] is None and macos["queue_delay_s"] is None  # GitHub's is a stand-in
    assert jobs["deploy"]["executor"] == "deployer" and jobs["deploy"]["status"] == "failed"
    deploy = loaded.events.filter(pl.col("component") == "deploy").row(0, named=True)
    # the runner is where the job ran, said in its row, but no host of the cluster
    assert deploy["host"] is None and deploy["level"] == "error"
    assert jobs["deploy"]["runner_name"] == "deployer-7f9c2"
    assert deploy["ts"] == datetime(2023, 3, 14, 18, 4, 51, tzinfo=UTC)
    assert deploy["message"] == (
        "job deploy #4 failed [failure] (deployer, runner deployer-7f9c2, queued 102.0s, "
        "ran 149.0s)"
    )
    queued = loaded.events.filter(pl.col("component") == "test-macos").row(0, named=True)
    assert queued["host"] is None and queued["message"].endswith("queued (macos, not started)")


def test_runs_are_queued_at_created_and_started_at_run_started(read):
    page = {
        "total_count": 2,
        "workflow_runs": [
            gh_run(10, 3187),
            gh_run(
                11, 3188, status="in_progress", conclusion=None, updated_at="2023-03-14T18:20:00Z"
            ),
        ],
    }
    loaded = read("runs.json", json.dumps(page))
    runs = {json.loads(a)["job_id"]: json.loads(a) for a in loaded.events["attrs"]}
    done, running = runs["10"], runs["11"]
    assert done["record_type"] == "workflow_run" and done["run_number"] == 3187
    assert done["queued_at"] == "2023-03-14T18:04:50.000Z"
    assert done["started_at"] == "2023-03-14T18:05:02.000Z"
    assert done["stopped_at"] == "2023-03-14T18:12:10.000Z" and done["queue_delay_s"] == 12.0
    assert done["executor"] is None and done["actor"] == "octo-sre"
    assert running["status"] == "running" and running["stopped_at"] is None
    assert running["duration_s"] is None
    assert sorted(loaded.events["message"]) == [
        "workflow run CI #3187 success (queued 12.0s, ran 428.0s)",
        "workflow run CI #3188 running [in_progress] (queued 12.0s)",
    ]


def test_a_re_run_is_placed_at_its_own_start_with_no_wait_of_the_first_attempt(read):
    rerun = gh_run(12, 3190) | {
        "created_at": "2023-03-13T10:00:00Z",
        "run_started_at": "2023-03-14T18:05:00Z",
        "updated_at": "2023-03-14T18:09:00Z",
        "run_attempt": 2,
    }
    loaded = read("runs.json", json.dumps({"total_count": 1, "workflow_runs": [rerun]}))
    row = loaded.events.row(0, named=True)
    attrs = json.loads(row["attrs"])
    assert row["ts"] == datetime(2023, 3, 14, 18, 5, tzinfo=UTC)
    assert attrs["queue_delay_s"] is None and attrs["duration_s"] == 240.0
    assert attrs["run_attempt"] == 2


def test_gh_cli_runs_and_jobs_are_read_by_their_camel_case_keys(read):
    """``gh run list --json ...`` and ``gh run view --json jobs`` write camelCase keys, and
    an empty ``conclusion`` for a run not yet done."""
    runs = [
        {
            "attempt": 1,
            "conclusion": "failure",
            "createdAt": "2023-03-14T18:04:50Z",
            "databaseId": 4421567890,
            "displayTitle": "Bump kube-proxy",
            "event": "push",
            "headBranch": "main",
            "name": "CI",
            "number": 3187,
            "startedAt": "2023-03-14T18:05:02Z",
            "status": "completed",
            "updatedAt": "2023-03-14T18:12:10Z",
            "workflowDatabaseId": 51234567,
            "workflowName": "CI",
        },
        {
            "attempt": 1,
            "conclusion": "",
            "createdAt": "2023-03-14T18:05:20Z",
            "databaseId": 4421571234,
            "event": "pull_request",
            "headBranch": "fix-flake",
            "name": "CI",
            "number": 3188,
            "startedAt": "2023-03-14T18:05:20Z",
            "status": "queued",
            "updatedAt": "2023-03-14T18:05:21Z",
            "workflowDatabaseId": 51234567,
            "workflowName": "CI",
        },
    ]
    loaded = read("runs.json", json.dumps(runs, indent=2))
    assert loaded.summary.files["format"].to_list() == ["github-actions"]
    rows = {json.loads(a)["job_id"]: json.loads(a) for a in loaded.events["attrs"]}
    done, queued = rows["4421567890"], rows["4421571234"]
    assert (done["status"], done["queue_delay_s"], done["duration_s"]) == ("failed", 12.0, 428.0)
    assert (done["run_number"], done["workflow"]) == (3187, "CI")
    assert queued["status"] == "queued" and queued["started_at"] is None
    jobs = {
        "jobs": [
            {
                "completedAt": "2023-03-14T18:12:01Z",
                "conclusion": "failure",
                "databaseId": 12400700001,
                "name": "build",
                "startedAt": "2023-03-14T18:05:09Z",
                "status": "completed",
                "steps": [{"name": "Run make test", "conclusion": "failure"}],
                "url": "https://github.com/acme/api/actions/runs/1/job/2",
            }
        ]
    }
    job = json.loads(read("jobs.json", json.dumps(jobs)).events["attrs"][0])
    assert (job["name"], job["status"], job["duration_s"]) == ("build", "failed", 412.0)


def test_json_lines_of_jobs_and_runs(read):
    text = "\n".join(json.dumps(x) for x in (gh_job(1, "build"), gh_run(10, 3187))) + "\n"
    loaded = read("export.jsonl", text)
    assert sorted(loaded.events["line"].to_list()) == [1, 2]
    assert {json.loads(a)["record_type"] for a in loaded.events["attrs"]} == {"job", "workflow_run"}


def test_webhook_payload_carries_a_job(read):
    payload = {
        "action": "completed",
        "workflow_job": gh_job(5, "lint", conclusion="timed_out"),
        "repository": {"full_name": "acme/api"},
        "sender": {"login": "octo-sre"},
    }
    row = read("hook.json", json.dumps(payload, indent=2)).events.row(0, named=True)
    assert row["component"] == "lint" and row["level"] == "error"
    assert json.loads(row["attrs"])["raw_status"] == "timed_out"


def test_unknown_conclusion_is_other_and_noted(read):
    loaded = read(
        "jobs.json", json.dumps({"total_count": 1, "jobs": [gh_job(1, "b", conclusion="exploded")]})
    )
    a = json.loads(loaded.events["attrs"][0])
    assert a["status"] == "other" and a["raw_status"] == "exploded"
    assert a["note"].startswith("unknown GitHub Actions status 'exploded'")


@pytest.mark.parametrize(
    ("conclusion", "status", "level"),
    [
        ("success", "success", "info"),
        ("failure", "failed", "error"),
        ("cancelled", "cancelled", "warning"),
        ("skipped", "other", "info"),
        ("startup_failure", "failed", "error"),
    ],
)
def test_conclusions_are_normalised(read, conclusion, status, level):
    loaded = read(
        "jobs.json", json.dumps({"total_count": 1, "jobs": [gh_job(1, "b", conclusion=conclusion)]})
    )
    assert json.loads(loaded.events["attrs"][0])["status"] == status
    assert loaded.events["level"][0] == level


def test_truncated_jobs_page_keeps_the_complete_jobs(read):
    text = json.dumps(
        {"total_count": 3, "jobs": [gh_job(1, "a"), gh_job(2, "b"), gh_job(3, "c")]}, indent=2
    )
    cut = text[: text.index('"name": "c"')]
    loaded = read("jobs.json", cut)
    assert sorted(by_name(loaded.events)) == ["a", "b"]
    reasons = set(loaded.summary.warnings["reason"].drop_nulls())
    assert len(reasons) == 1 and "2 complete items before it were read" in reasons.pop()


def test_jobs_documents_are_github_not_circleci():
    lines = json.dumps({"total_count": 1, "jobs": [gh_job(1, "a")]}, indent=2).splitlines()
    best, score = parsers.registry.rank(lines)[0]
    assert best.name == "github-actions" and score.score >= 0.5
    runs = json.dumps({"total_count": 1, "workflow_runs": [gh_run(1, 2)]}).splitlines()
    assert parsers.registry.rank(runs)[0][0].name == "github-actions"


# --- raw job logs ------------------------------------------------------------------------

FAILED_LOG = """\ufeff2023-03-14T18:04:51.5012450Z Requested labels: ubuntu-latest
2023-03-14T18:04:51.5012484Z Job defined at: acme/api/.github/workflows/ci.yml@refs/heads/main
2023-03-14T18:04:51.5012509Z Waiting for a runner to pick up this job...
2023-03-14T18:06:31.9572229Z Job is waiting for a hosted runner to come online.
2023-03-14T18:06:33.0751730Z Job is about to start running on the hosted runner: GitHub Actions 7 (hosted)
2023-03-14T18:06:35.3693461Z Current runner version: '2.302.1'
2023-03-14T18:06:35.3721172Z ##[group]Operating System
2023-03-14T18:06:35.3721722Z Ubuntu
2023-03-14T18:06:35.3722018Z 22.04.2
2023-03-14T18:06:35.3722317Z LTS
2023-03-14T18:06:35.3722615Z ##[endgroup]
2023-03-14T18:06:35.3722899Z ##[group]Runner Image
2023-03-14T18:06:35.3723252Z Image: ubuntu-22.04
2023-03-14T18:06:35.3723638Z Version: 20230305.1
2023-03-14T18:06:35.3725215Z ##[endgroup]
2023-03-14T18:06:38.1204277Z ##[group]Run make test
2023-03-14T18:06:38.1204901Z \x1b[36;1mmake test\x1b[0m
2023-03-14T18:06:38.1205311Z shell: /usr/bin/bash -e {0}
2023-03-14T18:06:38.1391664Z ##[endgroup]
2023-03-14T18:06:38.2000001Z ##[debug]Evaluating condition for step: 'Run make test'
2023-03-14T18:07:12.5500000Z ##[warning]Node.js 12 actions are deprecated.
2023-03-14T18:08:59.0027346Z dial tcp: lookup rabbitmq.ci.svc.cluster.local on 10.96.0.10:53: read udp 10.244.3.17:48123->10.96.0.10:53: i/o timeout
2023-03-14T18:09:01.4427431Z ##[error]Process completed with exit code 2.
2023-03-14T18:09:01.5003112Z ##[notice]Tests failed on the first attempt
2023-03-14T18:09:01.6112213Z Post job cleanup.
2023-03-14T18:09:01.9934512Z Cleaning up orphan processes
"""  # noqa: E501


def test_job_log_through_the_loader_gives_a_job_row_and_every_line(read):
    loaded = read("logs_4421567890/1_build.txt", FAILED_LOG)
    files = loaded.summary.files.row(0, named=True)
    assert files["prefix"] == "kubectl-timestamps" and files["format"] == "github-actions-log"
    assert files["unparsed_lines"] == 0
    events = loaded.events.sort("line", "kind")
    job = events.filter(pl.col("kind") == "job").row(0, named=True)
    logs = events.filter(pl.col("kind") == "log")
    assert logs.height == 26 and logs["line"].to_list() == list(range(1, 27))
    assert job["source"] == "github-actions" and job["component"] == "build"
    assert job["host"] is None and job["level"] == "error"
    assert job["message"] == (
        "job build failed (machine, runner GitHub Actions 7, queued 101.6s, ran 148.9s)"
    )
    assert logs["host"].null_count() == logs.height
    a = json.loads(job["attrs"])
    assert a["runner_name"] == "GitHub Actions 7"
    assert a["derived_from"] == "log" and a["status"] == "failed" and a["raw_status"] is None
    assert a["queued_at"] == "2023-03-14T18:04:51.501Z"
    assert a["started_at"] == "2023-03-14T18:06:33.075Z"
    assert a["stopped_at"] == "2023-03-14T18:09:01.993Z"
    assert a["queue_delay_s"] == pytest.approx(101.574)
    assert (
        a["failed_step"] == "Run make test"
        and a["first_error"] == "Process completed with exit code 2."
    )
    assert a["repository"] == "acme/api" and a["workflow_file"] == ".github/workflows/ci.yml"
    assert logs["ts"][0] == datetime(2023, 3, 14, 18, 4, 51, 501245, tzinfo=UTC)  # the BOM line
    assert logs["ts"][21] == datetime(2023, 3, 14, 18, 8, 59, 2734, tzinfo=UTC)
    levels = dict(zip(logs["message"], logs["level"], strict=True))
    assert levels["Process completed with exit code 2."] == "error"
    assert levels["Node.js 12 actions are deprecated."] == "warning"
    assert levels["Evaluating condition for step: 'Run make test'"] == "debug"
    assert levels["Tests failed on the first attempt"] == "info"
    assert levels["Ubuntu"] is None
    error = logs.filter(pl.col("level") == "error").row(0, named=True)
    assert json.loads(error["attrs"]) == {"marker": "error", "step": "Run make test"}


def as_lines(text: str, path: str = "1_build.txt", prefix_ts=None) -> pl.LazyFrame:
    rows = text.splitlines()
    return (
        pl.LazyFrame({"line": range(1, len(rows) + 1), "text": rows, "path": path})
        .with_columns(
            end_line="line",
            prefix_ts=pl.lit(prefix_ts),
            stream=pl.lit(None),
            host=pl.lit(None),
            container=pl.lit(None),
        )
        .select([pl.col(c).cast(t) for c, t in LINE_SCHEMA.items()])
    )


@pytest.mark.parametrize("job", ["build", "test (3.11, ubuntu-latest)"])
def test_the_step_logs_of_a_log_archive_count_no_job_and_no_error_twice(write, job):
    """GitHub's log archive holds each job's log (``1_build.txt``) and, in a folder named
    after the job, each step's log again (``build/3_Run make test.txt``)."""
    lines = FAILED_LOG.lstrip("\ufeff").splitlines()
    setup = lines[:16]
    step = lines[16:24]
    log = write(f"logs_4421567890/1_{job}.txt", FAILED_LOG)
    write(f"logs_4421567890/{job}/1_Set up job.txt", "\n".join(setup) + "\n")
    write(f"logs_4421567890/{job}/3_Run make test.txt", "\n".join(step) + "\n")
    loaded = timeline.read(log.parent, infer=False, cache=False)
    events = loaded.events
    assert events.filter(pl.col("kind") == "job").height == 1
    errors = events.filter((pl.col("kind") == "log") & (pl.col("level") == "error"))
    assert errors["message"].to_list() == ["Process completed with exit code 2."]
    warnings = loaded.summary.warnings.filter(pl.col("unparsed"))
    assert warnings.height == len(setup) + len(step)
    assert set(warnings["reason"]) == {
        f"a step's log in GitHub's log archive; its lines are in 1_{job}.txt"
    }


def test_job_log_outside_a_runtime_prefix_reads_its_own_times(read):
    parsed = parsers.registry.get("github-actions-log").parse(as_lines(FAILED_LOG)).collect()
    job = parsed.filter(pl.col("kind") == "job").row(0, named=True)
    through_loader = read("1_build.txt", FAILED_LOG).events.filter(pl.col("kind") == "job")
    assert job["attrs"] == through_loader["attrs"][0]
    logs = parsed.filter(pl.col("kind") == "log").sort("line")
    assert logs["ts"][21] == datetime(2023, 3, 14, 18, 8, 59, 2734)
    assert logs["utc_offset_s"].unique().to_list() == [0]
    assert logs["message"][22] == "Process completed with exit code 2."


def test_job_log_inside_a_cri_prefix_keeps_the_runner_times(read):
    cri = "\n".join(
        f"2023-03-14T18:10:0{i % 10}.000000000Z stdout F {line.lstrip(chr(0xFEFF))}"
        for i, line in enumerate(FAILED_LOG.splitlines())
    )
    loaded = read("runner-0.log", cri + "\n")
    assert loaded.summary.files["prefix"].to_list() == ["cri"]
    assert loaded.summary.files["format"].to_list() == ["github-actions-log"]
    job = json.loads(loaded.events.filter(pl.col("kind") == "job")["attrs"][0])
    assert job["queued_at"] == "2023-03-14T18:04:51.501Z" and job["status"] == "failed"
    assert loaded.events.filter(pl.col("level") == "error")["message"].to_list()[-1] == (
        "Process completed with exit code 2."
    )


def test_a_runner_s_log_in_a_node_s_pod_folder_is_on_that_node_not_on_the_runner(write):
    """A self-hosted runner's output kept by the kubelet of the node its pod ran on: the
    node is the rows' host; the runner is the job's ``runner_name``, never a host."""
    runner = "arc-runner-set-7x9kq-runner-2fj8d"
    node = "gke-ci-ci-runners-v2-5f1b7c6a-9k2x"
    body = FAILED_LOG.lstrip("\ufeff").replace(
        "the hosted runner: GitHub Actions 7 (hosted)", f"the runner: {runner} (organization)"
    )
    cri = "\n".join(
        f"2023-03-14T18:10:{i:02d}.000000000Z stdout F {line}"
        for i, line in enumerate(body.splitlines())
    )
    folder = f"nodes/{node}/var/log/pods/arc-runners_{runner}_5a273e8f-302e-44aa-854e-0bbc490164f1"
    path = write(f"{folder}/runner/0.log", cri + "\n")
    events = timeline.read(path, cache=False).events
    assert set(events["host"]) == {node}
    job = events.filter(pl.col("kind") == "job").row(0, named=True)
    assert json.loads(job["attrs"])["runner_name"] == runner
    assert f"runner {runner}" in job["message"]


CANCELLED_LOG = """2022-05-02T10:14:19.8913682Z Requested labels: self-hosted, linux, x64, ci-large
2022-05-02T10:14:19.8913775Z Job defined at: acme/api/.github/workflows/deploy.yml@refs/heads/main
2022-05-02T10:14:19.8913803Z Waiting for a runner to pick up this job...
2022-05-02T10:14:20.0647620Z Job is about to start running on the runner: ci-large-7f9c2 (organization)
2022-05-02T10:14:25.0321997Z Current runner version: '2.290.1'
2022-05-02T10:14:25.0328014Z Runner name: 'ci-large-7f9c2'
2022-05-02T10:14:25.0328504Z Runner group name: 'Default'
2022-05-02T10:14:27.1204277Z ##[group]Run ./deploy.sh
2022-05-02T10:14:27.1391664Z ##[endgroup]
2022-05-02T10:18:40.0019475Z ##[error]The operation was canceled.
"""  # noqa: E501


def test_cancelled_log_on_a_self_hosted_runner(read):
    job = (
        read("2_deploy.txt", CANCELLED_LOG)
        .events.filter(pl.col("kind") == "job")
        .row(0, named=True)
    )
    a = json.loads(job["attrs"])
    assert a["status"] == "cancelled" and job["level"] == "warning"
    assert a["executor"] == "ci-large" and a["runner_name"] == "ci-large-7f9c2"
    assert job["host"] is None
    assert a["runner_group"] == "Default" and job["component"] == "deploy"


def test_a_job_that_no_runner_picked_up_has_no_start_and_no_queue_delay(read):
    waited = CANCELLED_LOG.splitlines()[:3]
    text = "\n".join([*waited, "2022-05-02T10:44:19.9000000Z ##[error]The operation was canceled."])
    job = (
        read("2_deploy.txt", text + "\n").events.filter(pl.col("kind") == "job").row(0, named=True)
    )
    a = json.loads(job["attrs"])
    assert a["status"] == "cancelled" and a["started_at"] is None
    assert a["queue_delay_s"] is None and a["duration_s"] is None
    assert a["queued_at"] == "2022-05-02T10:14:19.891Z"
    picked = read("3_deploy.txt", CANCELLED_LOG).events.filter(pl.col("kind") == "job")
    started = json.loads(picked["attrs"][0])
    assert started["started_at"] == "2022-05-02T10:14:20.064Z" and started["queue_delay_s"] > 0


def test_log_without_errors_is_a_success(read):
    text = "".join(line + "\n" for line in CANCELLED_LOG.splitlines()[:-1])
    job = read("3_deploy.txt", text).events.filter(pl.col("kind") == "job").row(0, named=True)
    assert json.loads(job["attrs"])["status"] == "success" and job["level"] == "info"


def test_step_log_is_recognised_by_its_group_markers(read):
    step = """2023-03-14T18:06:38.1204277Z ##[group]Run make test
2023-03-14T18:06:38.1204901Z make test
2023-03-14T18:06:38.1391664Z ##[endgroup]
2023-03-14T18:06:40.1000000Z go test ./...
2023-03-14T18:08:59.0027346Z FAIL	github.com/acme/api/queue	12.004s
2023-03-14T18:09:01.4427431Z ##[error]Process completed with exit code 2.
"""
    loaded = read("build/4_Run make test.txt", step)
    assert loaded.summary.files["format"].to_list() == ["github-actions-log"]
    job = loaded.events.filter(pl.col("kind") == "job").row(0, named=True)
    assert job["component"] == "Run make test"
    assert json.loads(job["attrs"])["queue_delay_s"] is None  # a step log shows no wait


def test_an_application_log_with_timestamps_is_not_a_job_log():
    app = [
        '2023-03-14T18:00:01.123456789Z level=info msg="starting worker"',
        '2023-03-14T18:00:02.123456789Z level=error msg="dial tcp 10.96.0.10:53: i/o timeout"',
    ]
    assert parsers.registry.get("github-actions-log").sniff(app).score == 0.0


@pytest.mark.parametrize(
    "name", ["checkout-fetch-retry.txt", "playwright-job.txt", "docker-action-build.txt"]
)
def test_real_job_log_lines_are_rows_at_the_runner_s_times(name):
    """Raw job logs as pasted in public issues (``tests/data/real/README.md``): every
    line a log row at its runner time, to the microsecond, and one job row for the file."""
    path = REAL / name
    loaded = read_real(path)
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    written = [line.split(" ", 1)[0] for line in path.read_text().splitlines()]
    assert logs["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%6f").to_list() == [w[:26] for w in written]
    job = loaded.events.filter(pl.col("kind") == "job")
    assert job.height == 1 and job["component"][0] == path.stem
    assert not logs["message"].str.contains("##[", literal=True).any()


def test_real_jobs_api_response_is_one_failed_job_at_its_queue_time():
    """``GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs`` as a public repository
    saved it (luoda2023/LUODA-v3.0.1 ``.firecrawl/exejobs5.md``): one job row, queued at
    ``created_at``, started 3 s later, failed, its runner kept as the runner and not as a
    host, and none of its 37 steps a row of its own."""
    loaded = timeline.read(REAL / "jobs-api-windows-build.json", infer=False, cache=False)
    assert every_line_accounted(loaded)
    assert loaded.summary.files["unparsed_lines"].sum() == 0
    assert loaded.events.height == 1
    job = loaded.events.row(0, named=True)
    assert (job["kind"], job["level"], job["source"]) == ("job", "error", "github-actions")
    assert (job["component"], job["host"], job["line"]) == ("build-exe (x64)", None, 1)
    assert job["ts"] == datetime(2026, 7, 26, 14, 53, 24, tzinfo=UTC)
    attrs = json.loads(job["attrs"])
    assert (attrs["queue_delay_s"], attrs["duration_s"]) == (3.0, 2260.0)
    assert attrs["runner_name"] == "GitHub Actions 1000018024"


def gh_log(job: str, lines: list[tuple[str, str, str]]) -> str:
    """Lines as ``gh run view --log`` writes them: job, step, the runner's time and text."""
    return "".join(f"{job}\t{step}\t{time} {text}\n" for step, time, text in lines)


def test_gh_run_view_log_gives_each_job_its_row_and_each_line_its_step(read):
    build = gh_log(
        "build (ubuntu-22.04)",
        [
            ("Set up job", "2024-11-05T07:12:40.1011111Z", "Current runner version: '2.320.0'"),
            ("Run make test", "2024-11-05T07:12:41.2022222Z", "##[group]Run make test"),
            ("Run make test", "2024-11-05T07:12:41.2033333Z", "##[endgroup]"),
            ("Run make test", "2024-11-05T07:13:30.5044444Z", "hint: \tgo mod tidy"),
            (
                "Run make test",
                "2024-11-05T07:13:31.6055555Z",
                "##[error]Process completed with exit code 2.",
            ),
        ],
    )
    lint = gh_log(
        "lint",
        [
            ("Set up job", "2024-11-05T07:12:39.0000001Z", "Current runner version: '2.320.0'"),
            ("Run ruff check", "2024-11-05T07:12:52.0000002Z", "All checks passed!"),
            ("Complete job", "2024-11-05T07:12:53.0000003Z", "Cleaning up orphan processes"),
        ],
    )
    loaded = read("run-11668.log", build + lint)
    assert loaded.summary.files["format"].to_list() == ["github-actions-log"]
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    jobs = {
        row["component"]: json.loads(row["attrs"])
        for row in loaded.events.filter(pl.col("kind") == "job").iter_rows(named=True)
    }
    assert {name: job["status"] for name, job in jobs.items()} == {
        "build (ubuntu-22.04)": "failed",
        "lint": "success",
    }
    assert jobs["lint"]["started_at"] == "2024-11-05T07:12:39.000Z"
    assert jobs["build (ubuntu-22.04)"]["failed_step"] == "Run make test"
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["ts"].dt.strftime("%H:%M:%S.%6f").to_list()[:2] == [
        "07:12:40.101111",
        "07:12:41.202222",
    ]
    assert logs["message"][3] == "hint: \tgo mod tidy"
    assert logs["component"].to_list() == ["build (ubuntu-22.04)"] * 5 + ["lint"] * 3
    assert json.loads(logs["attrs"][4]) == {"marker": "error", "step": "Run make test"}


def test_real_gh_run_view_log_lines_are_rows_of_their_job_at_the_runner_s_times():
    """``gh run view --log`` as a public repository saved it (lomendor/Project-Dixis,
    ``tests/data/real/README.md``): the job's name from the line, not the file, every
    line at its runner time, and the failed job failed in the step that failed."""
    for name, job_name, status in [
        ("gh-run-log-smoke-tests.txt", "Smoke Tests", "success"),
        ("gh-run-log-commitlint-failed.txt", "PR Hygiene Check", "failed"),
    ]:
        path = REAL / name
        loaded = read_real(path)
        logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
        times = [line.split("\t")[2].lstrip("\ufeff") for line in path.read_text().splitlines()]
        assert logs["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%6f").to_list() == [t[:26] for t in times]
        assert set(logs["component"]) == {job_name}
        assert not logs["message"].str.starts_with(f"{job_name}\t").any()
        job = loaded.events.filter(pl.col("kind") == "job").row(0, named=True)
        attrs = json.loads(job["attrs"])
        assert (job["component"], attrs["status"]) == (job_name, status)
    assert attrs["failed_step"] == "Run commitlint"


@pytest.mark.parametrize(
    ("output", "name"),
    [
        ("Error: connect ECONNREFUSED 10.0.3.7:5672 (retrying in 2s)", "1_integration.txt"),
        ("Warning: apt-key is deprecated. Manage keyring files in trusted.gpg.d", "3_setup.txt"),
        ("Notice: npm 11.0.0 is available", "deploy (prod).log"),
    ],
)
def test_a_program_s_error_line_in_a_timed_log_is_no_runner_marker(read, output, name):
    """``Error: `` marks an error only in text copied from the web page; in a log with the
    runner's times it is a program's output, and a job that printed one and passed passed."""
    text = (
        "2024-02-01T10:00:00.0000001Z Current runner version: '2.312.0'\n"
        "2024-02-01T10:00:02.0000002Z ##[group]Run ./ci.sh\n"
        "2024-02-01T10:00:02.0000003Z ##[endgroup]\n"
        f"2024-02-01T10:00:09.0000004Z {output}\n"
        "2024-02-01T10:00:15.0000005Z Cleaning up orphan processes\n"
    )
    loaded = read(name, text)
    line = loaded.events.filter(pl.col("line") == 4, pl.col("kind") == "log").row(0, named=True)
    assert (line["message"], line["level"], line["attrs"]) == (output, None, "{}")
    job = loaded.events.filter(pl.col("kind") == "job").row(0, named=True)
    assert json.loads(job["attrs"])["status"] == "success" and job["level"] == "info"


@pytest.mark.parametrize(
    ("name", "queued_at", "started_at"),
    [
        # GitHub wrote the wait into the log: queued at the first line, started when picked up
        ("playwright-job.txt", "2023-02-22T10:26:10.560Z", None),
        # the log opens with the runner's own lines: how long the job waited is unknown
        ("gh-run-log-smoke-tests.txt", None, "2025-09-20T08:40:01.198Z"),
        ("checkout-fetch-retry.txt", None, "2024-05-06T04:58:15.248Z"),
    ],
)
def test_a_job_log_has_a_queue_delay_only_where_it_shows_the_wait(name, queued_at, started_at):
    loaded = read_real(REAL / name)
    job = json.loads(loaded.events.filter(pl.col("kind") == "job")["attrs"][0])
    assert job["queued_at"] == queued_at
    if queued_at is None:
        assert (job["started_at"], job["queue_delay_s"]) == (started_at, None)
    else:
        assert job["queue_delay_s"] is not None and job["queue_delay_s"] >= 0
