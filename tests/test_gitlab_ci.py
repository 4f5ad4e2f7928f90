"""GitLab CI: jobs, trigger jobs and pipelines from the REST API and glab, as job rows
with GitLab's own queue delays, every line accounted for."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import parsers
import timeline
from parsers import gitlab_ci
from tests.lines import every_line_accounted as accounted
from tests.lines import read_real

PROJECT = 39114522
PIPELINE = 1290817733
SHA = "3f6c2d9e8b7a41c05d2e9f8a7b6c5d4e3f2a1b0c"

K8S_RUNNER = {
    "id": 30118744,
    "description": "k8s-large runners",
    "ip_address": None,
    "active": True,
    "paused": False,
    "is_shared": False,
    "runner_type": "group_type",
    "name": "gitlab-runner",
    "online": True,
    "status": "online",
}
SHARED_RUNNER = {
    "id": 12270837,
    "description": "2-blue.saas-linux-small-amd64.runners-manager.gitlab.com/default",
    "ip_address": None,
    "active": True,
    "paused": False,
    "is_shared": True,
    "runner_type": "instance_type",
    "name": "gitlab-runner",
    "online": True,
    "status": "online",
}


def gl_job(job_id: int, name: str, **changes) -> dict:
    """A job as ``GET /projects/:id/jobs`` lists it (GitLab 17), with real field names."""
    job = {
        "id": job_id,
        "status": "success",
        "stage": "test",
        "name": name,
        "ref": "main",
        "tag": False,
        "coverage": None,
        "allow_failure": False,
        "created_at": "2024-05-14T09:10:02.913Z",
        "started_at": "2024-05-14T09:12:31.482Z",
        "finished_at": "2024-05-14T09:13:33.795Z",
        "erased_at": None,
        "duration": 62.313361,
        "queued_duration": 4.871,
        "user": {
            "id": 4418,
            "username": "mkowalski",
            "name": "Marta Kowalski",
            "state": "active",
            "locked": False,
            "avatar_url": "https://secure.gravatar.com/avatar/0c4d?s=80&d=identicon",
            "web_url": "https://gitlab.com/mkowalski",
        },
        "commit": {
            "id": SHA,
            "short_id": SHA[:8],
            "created_at": "2024-05-14T11:09:41.000+02:00",
            "parent_ids": ["a81d0c7f2e9b34d6c5a1f0e9d8c7b6a5f4e3d2c1"],
            "title": "Retry ledger writes on conflict",
            "message": "Retry ledger writes on conflict\n",
            "author_name": "Marta Kowalski",
            "author_email": "marta@acme.example",
            "web_url": f"https://gitlab.com/acme/payments/-/commit/{SHA}",
        },
        "pipeline": {
            "id": PIPELINE,
            "iid": 48211,
            "project_id": PROJECT,
            "sha": SHA,
            "ref": "main",
            "status": "running",
            "source": "push",
            "created_at": "2024-05-14T09:10:02.771Z",
            "updated_at": "2024-05-14T09:12:31.520Z",
            "web_url": f"https://gitlab.com/acme/payments/-/pipelines/{PIPELINE}",
        },
        "web_url": f"https://gitlab.com/acme/payments/-/jobs/{job_id}",
        "project": {"ci_job_token_scope_enabled": False},
        "artifacts": [
            {"file_type": "trace", "size": 48211, "filename": "job.log", "file_format": None}
        ],
        "runner": K8S_RUNNER,
        "runner_manager": {
            "id": 5541871,
            "system_id": "r_M2SnBWn0aV2C",
            "version": "16.11.1",
            "revision": "535ced5f",
            "platform": "linux",
            "architecture": "amd64",
            "created_at": "2024-05-13T22:04:17.112Z",
            "contacted_at": "2024-05-14T09:13:30.006Z",
            "ip_address": "10.42.3.17",
            "status": "online",
        },
        "artifacts_expire_at": "2024-06-13T09:13:33.620Z",
        "archived": False,
        "tag_list": ["k8s-large"],
    }
    job.update(changes)
    return job


def pending(job_id: int, name: str, **changes) -> dict:
    """A job no runner has taken: no runner, no start; its ``queued_duration`` counts up
    to the moment of the API call."""
    return gl_job(
        job_id,
        name,
        status="pending",
        started_at=None,
        finished_at=None,
        duration=None,
        queued_duration=131.208,
        runner=None,
        runner_manager=None,
        artifacts=[],
        artifacts_expire_at=None,
        **changes,
    )


def gl_pipeline(pipeline_id: int, iid: int, **changes) -> dict:
    """A pipeline as ``GET /projects/:id/pipelines`` lists it."""
    pipeline = {
        "id": pipeline_id,
        "iid": iid,
        "project_id": PROJECT,
        "sha": SHA,
        "ref": "main",
        "status": "success",
        "source": "push",
        "created_at": "2024-05-14T09:10:02.771Z",
        "updated_at": "2024-05-14T09:21:40.015Z",
        "web_url": f"https://gitlab.com/acme/payments/-/pipelines/{pipeline_id}",
        "name": None,
    }
    pipeline.update(changes)
    return pipeline


def pipeline_detail(pipeline_id: int, iid: int, **changes) -> dict:
    """A pipeline as ``GET /projects/:id/pipelines/:pipeline_id`` answers."""
    detail = gl_pipeline(pipeline_id, iid) | {
        "before_sha": "a81d0c7f2e9b34d6c5a1f0e9d8c7b6a5f4e3d2c1",
        "tag": False,
        "yaml_errors": None,
        "user": {"id": 4418, "username": "mkowalski", "name": "Marta Kowalski"},
        "started_at": "2024-05-14T09:10:09.120Z",
        "finished_at": "2024-05-14T09:21:39.998Z",
        "committed_at": None,
        "duration": 611,
        "queued_duration": 6,
        "coverage": None,
        "detailed_status": {
            "icon": "status_success",
            "text": "Passed",
            "label": "passed",
            "group": "success",
            "tooltip": "passed",
            "has_details": False,
            "details_path": f"/acme/payments/-/pipelines/{pipeline_id}",
        },
    }
    detail.update(changes)
    return detail


def bridge(job_id: int, name: str, **changes) -> dict:
    """A trigger job as ``GET /projects/:id/pipelines/:pipeline_id/bridges`` lists it."""
    job = gl_job(job_id, name, stage="deploy", duration=240.413, queued_duration=0.123)
    for key in ("runner", "runner_manager", "tag_list", "artifacts", "artifacts_expire_at"):
        job.pop(key)
    job["downstream_pipeline"] = {
        "id": 1290818040,
        "iid": 912,
        "project_id": 39114601,
        "sha": "f62a4b2fb89754372a346f24659212eb8da13601",
        "ref": "main",
        "status": "success",
        "source": "pipeline",
        "created_at": "2024-05-14T09:12:31.900Z",
        "updated_at": "2024-05-14T09:16:31.952Z",
        "web_url": "https://gitlab.com/acme/deploy/-/pipelines/1290818040",
    }
    job.update(changes)
    return job


def attrs_by_id(events: pl.DataFrame) -> dict[str, dict]:
    return {json.loads(a)["job_id"]: json.loads(a) for a in events["attrs"]}


def row_of(events: pl.DataFrame, job_id: int) -> dict:
    return events.filter(pl.col("attrs").str.contains(f'"job_id":"{job_id}"')).row(0, named=True)


# --- jobs ----------------------------------------------------------------------------------


def test_a_project_jobs_page_gives_job_rows_queued_when_gitlab_says(read):
    page = [
        gl_job(7201446811, "rspec 2/4"),
        gl_job(
            7201446812,
            "rspec 3/4",
            status="failed",
            failure_reason="runner_system_failure",
            duration=3.2,
            finished_at="2024-05-14T09:12:34.682Z",
        ),
        gl_job(
            7201446813,
            "lint",
            stage="build",
            tag_list=["linux", "docker"],
            runner=SHARED_RUNNER,
            runner_manager=None,
            created_at="2024-05-14T09:10:02.801Z",
            started_at="2024-05-14T09:10:09.402Z",
            finished_at="2024-05-14T09:10:51.007Z",
            queued_duration=6.402,
            duration=41.605,
        ),
        pending(7201446815, "rspec 4/4"),
    ]
    text = json.dumps(page, indent=2) + "\n"
    loaded = read("jobs.json", text)
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci"]
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line == "  {"]
    assert loaded.events.sort("line")["line"].to_list() == [1, *starts[1:]]
    done = row_of(loaded.events, 7201446811)
    assert done["kind"] == "job" and done["source"] == "gitlab-ci" and done["level"] == "info"
    # queued when it began to wait for a runner, not when the pipeline made it
    assert done["ts"] == datetime(2024, 5, 14, 9, 12, 26, 611000, tzinfo=UTC)
    # the runner is where the job ran, not a host of the cluster's logs
    assert done["host"] is None and done["component"] == "rspec 2/4"
    assert done["message"] == (
        "job rspec 2/4 #7201446811 success (k8s-large, runner k8s-large runners, queued 4.9s, "
        "ran 62.3s)"
    )
    a = json.loads(done["attrs"])
    assert (a["queue_delay_s"], a["duration_s"]) == (4.871, 62.313)
    assert a["queued_at"] == "2024-05-14T09:12:26.611Z"
    assert a["created_at"] == "2024-05-14T09:10:02.913Z"
    assert a["started_at"] == "2024-05-14T09:12:31.482Z"
    assert a["stopped_at"] == "2024-05-14T09:13:33.795Z"
    assert (a["executor"], a["tag_list"], a["stage"]) == ("k8s-large", ["k8s-large"], "test")
    assert a["runner_name"] == "k8s-large runners"
    assert (a["runner_id"], a["runner_type"], a["runner_shared"]) == (30118744, "group_type", False)
    assert (a["runner_manager"], a["runner_version"]) == ("r_M2SnBWn0aV2C", "16.11.1")
    assert (a["project_id"], a["pipeline_id"], a["pipeline_iid"]) == (PROJECT, PIPELINE, 48211)
    assert (a["ref"], a["sha"], a["user"], a["record_type"]) == ("main", SHA, "mkowalski", "job")
    assert a["url"] == "https://gitlab.com/acme/payments/-/jobs/7201446811"
    assert "failure_reason" not in a and "allow_failure" not in a and "note" not in a
    lint = attrs_by_id(loaded.events)["7201446813"]
    assert lint["executor"] == "docker,linux" and lint["runner_shared"] is True
    assert lint["queue_delay_s"] == 6.402 and "runner_manager" not in lint
    assert lint["runner_name"] == SHARED_RUNNER["description"]


def test_a_job_no_runner_took_has_no_host_and_no_delay_whatever_gitlab_counted(read):
    row = read("pending.json", json.dumps([pending(7201446815, "rspec 4/4")])).events.row(
        0, named=True
    )
    a = json.loads(row["attrs"])
    assert row["host"] is None and row["level"] == "info"
    assert row["ts"] == datetime(2024, 5, 14, 9, 10, 2, 913000, tzinfo=UTC)  # created
    assert a["status"] == "queued" and a["raw_status"] == "pending"
    assert a["queue_delay_s"] is None and a["started_at"] is None and a["duration_s"] is None
    assert a["executor"] == "k8s-large" and "runner_name" not in a and "runner_shared" not in a
    assert row["message"] == "job rspec 4/4 #7201446815 queued [pending] (k8s-large, not started)"


def test_a_running_job_has_no_duration_until_it_finishes(read):
    job = gl_job(7201446816, "e2e", status="running", finished_at=None, duration=48.2)
    a = json.loads(read("running.json", json.dumps(job)).events["attrs"][0])
    assert a["status"] == "running" and a["stopped_at"] is None and a["duration_s"] is None
    assert a["queue_delay_s"] == 4.871


def test_without_queued_duration_a_job_is_queued_when_it_was_created(read):
    """GitLab before 13.x (and a record cut down by hand) has no ``queued_duration``: the
    wait then runs from ``created_at`` and includes the earlier stages."""
    job = gl_job(7201446817, "rspec 1/4")
    del job["queued_duration"]
    row = read("old.json", json.dumps([job])).events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert a["queued_at"] == "2024-05-14T09:10:02.913Z" and a["queue_delay_s"] == 148.569
    assert row["ts"] == datetime(2024, 5, 14, 9, 10, 2, 913000, tzinfo=UTC)


def test_a_stated_offset_is_brought_to_utc(read):
    job = gl_job(
        7201446818,
        "rspec 1/4",
        created_at="2024-05-14T11:10:02.913+02:00",
        started_at="2024-05-14T11:12:31.482+02:00",
        finished_at="2024-05-14T11:13:33.795+02:00",
    )
    row = read("zoned.json", json.dumps([job])).events.row(0, named=True)
    assert row["ts"] == datetime(2024, 5, 14, 9, 12, 26, 611000, tzinfo=UTC)
    assert json.loads(row["attrs"])["queue_delay_s"] == 4.871


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("runner_system_failure", "infrastructure"),
        ("stuck_or_timeout_failure", "infrastructure"),
        ("scheduler_failure", "infrastructure"),
        ("stuck_pending_no_matching_runners", "infrastructure"),
        ("script_failure", "job"),
        ("job_execution_timeout", "job"),
        ("missing_dependency_failure", "job"),
        ("some_future_failure", "job"),
    ],
)
def test_the_failure_reason_is_in_the_message_and_says_whose_it_is(read, reason, kind):
    job = gl_job(7201446812, "rspec 3/4", status="failed", failure_reason=reason)
    row = read("failed.json", json.dumps([job])).events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert row["level"] == "error" and a["status"] == "failed"
    assert (a["failure_reason"], a["failure_kind"]) == (reason, kind)
    assert row["message"].startswith(f"job rspec 3/4 #7201446812 failed [{reason}] (k8s-large, ")


def test_a_job_stuck_in_the_queue_has_failed_without_starting(read):
    """No runner took it before GitLab gave up: the failure is the queue's own."""
    stuck = pending(7201446819, "deploy", failure_reason="stuck_or_timeout_failure") | {
        "status": "failed",
        "finished_at": "2024-05-14T10:10:03.020Z",
    }
    row = read("stuck.json", json.dumps([stuck])).events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert a["failure_kind"] == "infrastructure" and a["queue_delay_s"] is None
    assert row["message"] == "job deploy #7201446819 failed [stuck_or_timeout_failure] (k8s-large)"
    assert row["host"] is None and a["stopped_at"] == "2024-05-14T10:10:03.020Z"


@pytest.mark.parametrize(
    ("raw", "status", "level"),
    [
        ("success", "success", "info"),
        ("failed", "failed", "error"),
        ("canceled", "cancelled", "warning"),
        ("canceling", "cancelled", "warning"),
        ("running", "running", "info"),
        ("pending", "queued", "info"),
        ("created", "queued", "info"),
        ("preparing", "queued", "info"),
        ("waiting_for_resource", "queued", "info"),
        ("scheduled", "queued", "info"),
        ("manual", "other", "info"),
        ("skipped", "other", "info"),
    ],
)
def test_gitlab_statuses_are_normalised(read, raw, status, level):
    row = read("job.json", json.dumps([gl_job(5, "b", status=raw)])).events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert (a["status"], a["raw_status"], row["level"]) == (status, raw, level)
    assert "note" not in a


def test_an_unknown_status_is_other_keeps_raw_and_is_noted(read):
    row = read("odd.json", json.dumps([gl_job(5, "b", status="paused_by_admin")])).events.row(
        0, named=True
    )
    a = json.loads(row["attrs"])
    assert a["status"] == "other" and a["raw_status"] == "paused_by_admin"
    assert a["note"].startswith("unknown GitLab CI status 'paused_by_admin'")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["k8s-large"], "k8s-large"),
        (["linux", "docker"], "docker,linux"),
        (["docker", "docker runner", "ubuntu18"], "docker,docker runner,ubuntu18"),
        ([], "untagged"),
    ],
)
def test_the_executor_is_the_queue_the_tags_choose(read, tags, expected):
    row = read("job.json", json.dumps([gl_job(3, "build", tag_list=tags)])).events.row(
        0, named=True
    )
    assert json.loads(row["attrs"])["executor"] == expected
    assert f"({expected}, runner " in row["message"]


def test_an_allowed_failure_still_counts_as_failed(read):
    job = gl_job(9, "audit", status="failed", allow_failure=True, failure_reason="script_failure")
    row = read("job.json", json.dumps([job])).events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert a["status"] == "failed" and a["allow_failure"] is True and row["level"] == "error"


# --- trigger jobs and pipelines -------------------------------------------------------------


def test_trigger_jobs_name_their_downstream_pipeline_and_run_on_no_runner(read):
    loaded = read("bridges.json", json.dumps([bridge(7201446820, "deploy:staging")], indent=2))
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci"]
    row = loaded.events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert a["record_type"] == "bridge" and row["host"] is None and a["executor"] is None
    assert (a["downstream_pipeline_id"], a["downstream_status"]) == (1290818040, "success")
    assert row["message"] == (
        "trigger job deploy:staging #7201446820 success (queued 0.1s, ran 240.4s)"
    )


def test_a_pipeline_list_gives_a_row_per_pipeline_queued_when_created(read):
    pipelines = [
        gl_pipeline(1290817733, 48211, status="running", updated_at="2024-05-14T09:12:31.520Z"),
        gl_pipeline(
            1290809120,
            48210,
            status="failed",
            ref="renovate/pg-16.x",
            source="merge_request_event",
            created_at="2024-05-14T08:52:19.340Z",
            updated_at="2024-05-14T09:04:55.871Z",
        ),
        gl_pipeline(1290801544, 48209, status="canceled", created_at="2024-05-14T08:40:00.002Z"),
    ]
    loaded = read("pipelines.json", json.dumps(pipelines))
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci"]
    assert loaded.events["line"].to_list() == [1, 1, 1]
    rows = attrs_by_id(loaded.events)
    running, failed, cancelled = rows["1290817733"], rows["1290809120"], rows["1290801544"]
    assert {r["record_type"] for r in rows.values()} == {"pipeline"}
    assert running["status"] == "running" and running["stopped_at"] is None
    assert failed["queued_at"] == "2024-05-14T08:52:19.340Z"
    assert failed["stopped_at"] == "2024-05-14T09:04:55.871Z"
    assert (failed["pipeline_iid"], failed["pipeline_source"]) == (48210, "merge_request_event")
    assert failed["executor"] is None and failed["sha"] == SHA
    assert cancelled["status"] == "cancelled"
    messages = set(loaded.events["message"])
    assert "pipeline renovate/pg-16.x #1290809120 failed" in messages
    assert "pipeline main #1290801544 cancelled [canceled]" in messages


def test_a_single_pipeline_has_its_own_wait_and_run(read):
    loaded = read("pipeline.json", json.dumps(pipeline_detail(1290817733, 48211), indent=2))
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci"]
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0
    row = loaded.events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert a["queued_at"] == "2024-05-14T09:10:03.120Z" and a["queue_delay_s"] == 6.0
    assert a["duration_s"] == 611.0 and a["stopped_at"] == "2024-05-14T09:21:39.998Z"
    assert row["message"] == "pipeline main #1290817733 success (queued 6.0s, ran 611.0s)"


# --- what glab writes -----------------------------------------------------------------------


def _glab_job(job: dict) -> dict:
    """A job as glab writes it: the client's structs, a missing runner as a zero one."""
    out = {k: job[k] for k in job if k not in ("runner_manager", "archived", "project")}
    if out["runner"] is None:
        out["runner"] = {
            "id": 0,
            "description": "",
            "active": False,
            "is_shared": False,
            "name": "",
        }
    for key in ("duration", "queued_duration"):
        out[key] = out[key] or 0
    return out


def test_glab_ci_get_is_a_pipeline_holding_its_jobs_and_trigger_jobs(read):
    """``glab ci get -F json --with-downstream-pipelines``: the pipeline's own fields, its
    ``jobs``, and ``bridges`` that each hold the trigger job with the downstream pipeline
    and its jobs."""
    jobs = [
        _glab_job(gl_job(7201446811, "rspec 2/4")),
        _glab_job(pending(7201446815, "rspec 4/4")),
    ]
    document = pipeline_detail(PIPELINE, 48211, status="running") | {
        "jobs": jobs,
        "bridges": [
            {
                "bridge": bridge(7201446820, "deploy:staging"),
                "pipeline": pipeline_detail(1290818040, 912, project_id=39114601),
                "jobs": [_glab_job(gl_job(7201447001, "helm upgrade", stage="deploy"))],
                "variables": None,
            }
        ],
        "variables": None,
    }
    for indent in (None, 2):
        loaded = read("glab-ci-get.json", json.dumps(document, indent=indent) + "\n")
        assert loaded.summary.files["format"].to_list() == ["gitlab-ci"]
        assert accounted(loaded) and loaded.summary.unparsed_lines == 0
        rows = attrs_by_id(loaded.events)
        assert sorted(rows) == ["7201446811", "7201446815", "7201446820"]
        assert rows["7201446811"]["queue_delay_s"] == 4.871
        waiting = row_of(loaded.events, 7201446815)
        assert waiting["host"] is None and "runner_id" not in json.loads(waiting["attrs"])
        assert json.loads(waiting["attrs"])["queue_delay_s"] is None
        assert rows["7201446820"]["record_type"] == "bridge"


def test_glab_ci_list_reads_as_the_pipeline_list_does(read):
    pipelines = [gl_pipeline(1290817733, 48211), gl_pipeline(1290809120, 48210)]
    for p in pipelines:
        del p["name"]  # glab's struct of a listed pipeline has no name
    loaded = read("glab-ci-list.json", json.dumps(pipelines, indent=2) + "\n")
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci"]
    assert sorted(attrs_by_id(loaded.events)) == ["1290809120", "1290817733"]


# --- shapes ----------------------------------------------------------------------------------


def test_a_single_job_answer_is_one_row(read):
    loaded = read("job-7201446811.json", json.dumps(gl_job(7201446811, "rspec 2/4"), indent=2))
    assert loaded.events.height == 1 and loaded.events["line"].to_list() == [1]
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0


def test_pages_one_after_another_in_one_file(read):
    page1 = json.dumps([gl_job(1, "a"), gl_job(2, "b")])
    page2 = json.dumps([gl_job(3, "c")], indent=2)
    page3 = json.dumps([gl_job(4, "d"), gl_job(5, "e")])
    loaded = read("all-pages.json", "\n".join([page1, page2, page3]) + "\n")
    assert loaded.events.height == 5 and loaded.summary.unparsed_lines == 0
    lines = len(page2.splitlines())
    assert sorted(loaded.events["line"].to_list()) == [1, 1, 3, 2 + lines, 2 + lines]
    assert accounted(loaded)


def test_pages_saved_one_a_line_and_json_lines_of_jobs(read):
    pages = [[gl_job(1, "a"), gl_job(2, "b")], [gl_job(3, "c")]]
    loaded = read("pages.jsonl", "".join(json.dumps(p) + "\n" for p in pages))
    assert sorted(loaded.events["line"].to_list()) == [1, 1, 2]
    loaded = read("jobs.jsonl", "".join(json.dumps(gl_job(n, "x")) + "\n" for n in (7, 8, 9)))
    assert sorted(loaded.events["line"].to_list()) == [1, 2, 3]
    assert loaded.summary.unparsed_lines == 0


def test_pages_in_several_files_load_together(write):
    paths = [
        write(f"gitlab/jobs-page-{n}.json", json.dumps([gl_job(n * 10 + k, "t") for k in (1, 2)]))
        for n in (1, 2, 3)
    ]
    loaded = timeline.read(paths, workers=1)
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci"] * 3
    assert sorted(attrs_by_id(loaded.events)) == ["11", "12", "21", "22", "31", "32"]


# --- broken input -----------------------------------------------------------------------------


def test_a_truncated_page_keeps_the_complete_jobs_and_names_the_break(read):
    lines = json.dumps([gl_job(n, "x") for n in (1, 2, 3)], indent=2).splitlines()
    second = [i + 1 for i, line in enumerate(lines) if line == "  {"][1]
    keep = second + 30
    loaded = read("cut.json", "\n".join(lines[:keep]) + "\n")
    assert list(attrs_by_id(loaded.events)) == ["1"]
    warnings = loaded.summary.warnings.filter(pl.col("line").is_not_null())
    assert warnings["line"].to_list() == list(range(second, keep + 1))
    assert warnings["reason"][0] == (
        f"JSON breaks at line {keep} (the text ends inside a value); 1 complete items "
        f"before it were read, the one from line {second} on was lost"
    )
    assert accounted(loaded)


def test_a_broken_line_of_json_lines_is_reported_alone(read):
    good = [json.dumps(gl_job(n, "x")) for n in (1, 2, 3)]
    text = "\n".join([good[0], good[1][:200], good[2]]) + "\n"
    loaded = read("jobs.jsonl", text)
    assert sorted(loaded.events["line"].to_list()) == [1, 3]
    warnings = loaded.summary.warnings.filter(pl.col("line").is_not_null())
    assert warnings["line"].to_list() == [2] and "JSON breaks at line 2" in warnings["reason"][0]
    assert accounted(loaded)


def test_an_error_answer_is_not_a_job(read):
    text = '{\n  "message": "404 Project Not Found"\n}\n'
    assert read("missing.json", text).summary.files["format"].to_list() == [None]
    forced = read("missing.json", text, format="gitlab-ci")
    assert forced.events.height == 0 and forced.summary.unparsed_lines == 3
    assert set(forced.summary.warnings["reason"]) == {
        "a JSON object that is not a gitlab-ci job record"
    }


def test_an_impossible_start_is_flagged_and_not_counted(read):
    job = gl_job(7, "x", started_at="2024-02-30T09:12:31.482Z")
    a = json.loads(read("bad.json", json.dumps([job])).events["attrs"][0])
    assert a["queue_delay_s"] is None and a["queued_at"] == "2024-05-14T09:10:02.913Z"
    assert "impossible time '2024-02-30T09:12:31.482Z' in started_at" in a["time_problem"]


# --- detection --------------------------------------------------------------------------------


def test_gitlab_ci_and_the_other_cis_are_each_detected_as_themselves(tmp_path):
    """``timeline detect`` on a folder of every CI's API answers names each one's format."""
    from tests.test_circleci import WORKFLOW_JOBS, job_detail
    from tests.test_github_actions import gh_job, gh_run
    from timeline.cli import app

    files = {
        "gitlab/jobs.json": json.dumps([gl_job(1, "a"), pending(2, "b")], indent=2),
        "gitlab/jobs-one-line.json": json.dumps([gl_job(1, "a")]),
        "gitlab/pipelines.json": json.dumps([gl_pipeline(1, 1), gl_pipeline(2, 2)]),
        "gitlab/pipeline.json": json.dumps(pipeline_detail(1, 1), indent=2),
        "gitlab/bridges.json": json.dumps([bridge(3, "trigger")], indent=2),
        "circleci/job.json": json.dumps(job_detail(482113), indent=2),
        "circleci/workflow-jobs.json": json.dumps(WORKFLOW_JOBS),
        "actions/jobs.json": json.dumps({"total_count": 1, "jobs": [gh_job(1, "b")]}, indent=2),
        "actions/runs.json": json.dumps({"total_count": 1, "workflow_runs": [gh_run(1, 2)]}),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    result = CliRunner().invoke(app, ["detect", "--json", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    found = {f["file"].removeprefix(str(tmp_path) + "/"): f for f in json.loads(result.stdout)}
    expected = {"gitlab": "gitlab-ci", "circleci": "circleci", "actions": "github-actions"}
    for name in files:
        assert found[name]["format"] == expected[name.split("/")[0]], (name, found[name])
        assert found[name]["score"] >= 0.5


def test_gitlab_keys_take_points_from_the_other_cis_and_theirs_from_gitlab():
    gitlab = json.dumps([gl_job(1, "a")], indent=2).splitlines()
    assert parsers.registry.get("circleci").sniff(gitlab).score == 0.0
    assert parsers.registry.get("github-actions").sniff(gitlab).score == 0.0
    from tests.test_github_actions import gh_run

    # a run whose pull request names a head ``sha`` is still GitHub's
    run = gh_run(1, 2) | {"pull_requests": [{"head": {"ref": "fix", "sha": SHA}}]}
    lines = json.dumps({"total_count": 1, "workflow_runs": [run]}, indent=2).splitlines()
    assert gitlab_ci.sniff(lines).score == 0.0
    assert parsers.registry.rank(lines)[0][0].name == "github-actions"


def test_a_kubernetes_audit_event_with_a_stage_and_a_status_is_not_gitlab():
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "c4d5e6f7-0a1b-4c2d-9e3f-4a5b6c7d8e9f",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/gitlab-runner/configmaps/gitlab-runner",
        "verb": "update",
        "user": {"username": "system:serviceaccount:gitlab-runner:gitlab-runner"},
        "objectRef": {"resource": "configmaps", "namespace": "gitlab-runner", "name": "x"},
        "responseStatus": {"metadata": {}, "status": "Failure", "code": 409},
        "requestReceivedTimestamp": "2024-05-14T13:05:00.000000Z",
        "stageTimestamp": "2024-05-14T13:05:00.004000Z",
    }
    for text in (json.dumps(event), json.dumps(event, indent=2)):
        lines = text.splitlines()
        assert gitlab_ci.sniff(lines).score == 0.0
        assert parsers.registry.rank(lines)[0][0].name == "k8s-audit"


# --- end to end: a runner change and the queue behind it --------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _world(root, *, seed: int, changelog: bool = True) -> datetime:
    """A day of two projects' jobs on two runner pools, saved as the API's pages (newest
    first, 100 a page; one line each as curl saves them, or pretty-printed), the audit log of a cluster whose ``k8s-large`` runner
    Deployment is upgraded at 13:05 (and a shop deploy 40 minutes before it), and the
    team's change log line for that upgrade. From 13:08 for two hours the ``k8s-large``
    jobs wait 10 to 40 minutes for a runner; the ``docker`` jobs never wait."""
    rng = random.Random(seed)
    day = datetime(2024, 5, 14, tzinfo=UTC)
    change = day + timedelta(hours=13, minutes=5)
    slow_from, slow_to = change + timedelta(minutes=3), change + timedelta(hours=2)
    docker = SHARED_RUNNER | {"description": "docker-autoscaler", "id": 30118002}
    jobs, job_id, t = [], 7201000000, day
    while t < day + timedelta(hours=17):
        project = rng.choice([(PROJECT, "payments"), (39114601, "ledger")])
        pipeline = {"id": 1290000000 + job_id % 10000, "project_id": project[0], "ref": "main"}
        for stage, name, tags, runner in (
            ("build", "lint", ["docker"], docker),
            ("test", f"rspec {rng.randint(1, 4)}/4", ["k8s-large"], K8S_RUNNER),
        ):
            if stage == "build" and rng.random() < 0.5:
                continue
            job_id += 1
            waited = rng.uniform(600, 2400) if slow_from <= t < slow_to else rng.uniform(2, 15)
            if stage == "build":
                waited = rng.uniform(1, 8)
            started = t + timedelta(seconds=20 + waited)
            ran = rng.uniform(60, 300)
            failed = rng.random() < 0.03
            jobs.append(
                gl_job(
                    job_id,
                    name,
                    stage=stage,
                    status="failed" if failed else "success",
                    failure_reason="script_failure" if failed else None,
                    created_at=_stamp(t),
                    started_at=_stamp(started),
                    finished_at=_stamp(started + timedelta(seconds=ran)),
                    duration=round(ran, 6),
                    queued_duration=round(waited, 3),
                    pipeline=gl_job(0, "")["pipeline"] | pipeline,
                    web_url=f"https://gitlab.example.com/acme/{project[1]}/-/jobs/{job_id}",
                    tag_list=tags,
                    runner=runner,
                )
            )
        t += timedelta(seconds=rng.expovariate(1 / 60))
    jobs.sort(key=lambda job: -job["id"])
    (root / "gitlab").mkdir(parents=True)
    for page in range(0, len(jobs), 100):
        path = root / "gitlab" / f"jobs-page-{page // 100 + 1:03d}.json"
        indent = 2 if page % 200 else None  # as curl saved it, or through jq
        path.write_text(json.dumps(jobs[page : page + 100], indent=indent) + "\n")

    def patch(namespace: str, name: str, image: str, at: datetime, n: int) -> dict:
        return {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": f"5b1e7d2c-9a4f-4e3b-8c1d-2f3a4b5c6d{n:02d}",
            "stage": "ResponseComplete",
            "requestURI": f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
            "?fieldManager=helm",
            "verb": "patch",
            "user": {"username": "platform-ci-deployer", "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.12.7"],
            "userAgent": "Helm/3.14.4",
            "objectRef": {
                "resource": "deployments",
                "namespace": namespace,
                "name": name,
                "apiGroup": "apps",
                "apiVersion": "v1",
            },
            "responseStatus": {"metadata": {}, "code": 200},
            "requestObject": {
                "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}
            },
            "requestReceivedTimestamp": at.isoformat().replace("+00:00", "Z"),
            "stageTimestamp": (at + timedelta(milliseconds=14)).isoformat().replace("+00:00", "Z"),
        }

    (root / "k8s").mkdir()
    (root / "k8s" / "audit.log").write_text(
        json.dumps(
            patch(
                "shop",
                "checkout-api",
                "registry.example.com/shop/checkout-api:2.14.1",
                change - timedelta(minutes=40),
                1,
            )
        )
        + "\n"
        + json.dumps(
            patch(
                "gitlab-runner",
                "gitlab-runner-k8s-large",
                "registry.gitlab.com/gitlab-org/gitlab-runner:alpine-v17.0.0",
                change,
                2,
            )
        )
        + "\n"
    )
    if changelog:
        (root / "changelog.csv").write_text(
            "time,type,target,description,from,to,actor\n"
            f"{change:%Y-%m-%d %H:%M},upgrade,deployment/gitlab-runner/gitlab-runner-k8s-large,"
            "Runner 17.0 for the k8s-large runners,16.11.1,17.0.0,platform-ci-deployer\n"
        )
    return change


@pytest.mark.parametrize("changelog", [True, False])
def test_a_runner_upgrade_before_gitlab_jobs_queue_is_found_and_ranked_first(tmp_path, changelog):
    """With a change log line that names the runner pool, or with only the audit log's
    patch of the pool's Deployment (``gitlab-runner-k8s-large`` takes the ``k8s-large``
    jobs)."""
    change = _world(tmp_path, seed=7, changelog=changelog)
    loaded = timeline.read(tmp_path, workers=1)
    files = loaded.summary.files
    assert set(files.filter(pl.col("file").str.contains("/gitlab/"))["format"]) == {"gitlab-ci"}
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0
    result = timeline.analyze(loaded)
    delays = result.spikes.filter(
        (pl.col("source") == "gitlab-ci") & (pl.col("metric") == "queue_delay_p95_s")
    )
    (spike,) = delays.iter_rows(named=True)
    assert spike["signature"] == "k8s-large jobs" and spike["hosts"] == []
    assert change < spike["start"] < change + timedelta(minutes=15)
    assert spike["peak_value"] > 600 > 20 > spike["baseline"]
    assert result.spikes.filter(pl.col("signature") == "docker jobs").height == 0
    top = result.contributors.filter(pl.col("rank") == 1).row(0, named=True)
    assert top["target"] == "deployment/gitlab-runner/gitlab-runner-k8s-large"
    assert top["role"] == "trigger", top["evidence"]
    decoy = result.contributors.filter(pl.col("target") == "deployment/shop/checkout-api")
    assert decoy["role"].to_list() == ["unrelated"]


REAL = Path(__file__).parent / "data" / "real" / "gitlab-ci"


@pytest.mark.parametrize(
    ("name", "jobs"),
    [
        (
            "project-jobs.json",
            [
                # name, first line, level, queued at (started_at less queued_duration)
                ("teaspoon", 1, "error", "2015-12-24T17:54:27.712", "script_failure"),
                ("rspec:other", 70, "error", "2015-12-24T17:54:24.706", "stuck_or_timeout_failure"),
            ],
        ),
        ("pipeline-bridges.json", [("teaspoon", 1, "info", "2015-12-24T17:54:27.599", None)]),
    ],
)
def test_real_jobs_api_responses_are_a_job_row_each(name, jobs):
    """The Jobs API's own example responses (gitlabhq/gitlabhq doc/api/jobs.md): a job row
    per job, on the line its object starts, queued at ``started_at`` less GitLab's
    ``queued_duration``, failed jobs errors with their ``failure_reason``."""
    loaded = read_real(REAL / name)
    rows = loaded.events.sort("line")
    assert set(rows["kind"]) == {"job"} and set(rows["source"]) == {"gitlab-ci"}
    assert rows.height == len(jobs)
    for row, (component, line, level, queued, reason) in zip(
        rows.iter_rows(named=True), jobs, strict=True
    ):
        assert (row["component"], row["line"], row["level"]) == (component, line, level)
        assert row["ts"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] == queued
        assert json.loads(row["attrs"]).get("failure_reason") == reason
