"""CI output as people paste it: CircleCI API v1.1 builds and v2 pipeline lists,
`circleci local execute` output, and GitHub Actions logs copied from the web page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

V1_BUILDS = [
    {
        "vcs_url": "https://github.com/acme/api",
        "build_url": "https://circleci.com/gh/acme/api/48211",
        "build_num": 48211,
        "branch": "main",
        "vcs_revision": "1d231626ba1d2838e599c5c598d28e2306ad4e48",
        "committer_name": "Jo Doe",
        "subject": "Retry the queue consumer on connection loss",
        "why": "github",
        "queued_at": "2023-03-14T18:02:11.412Z",
        "start_time": "2023-03-14T18:04:41.020Z",
        "stop_time": "2023-03-14T18:06:02.113Z",
        "build_time_millis": 81093,
        "username": "acme",
        "reponame": "api",
        "lifecycle": "finished",
        "outcome": "infrastructure_fail",
        "status": "infrastructure_fail",
        "workflows": {
            "job_name": "integration-tests",
            "workflow_name": "build-and-test",
            "workflow_id": "5034460f-c7c4-4c43-9457-de07e2029e7b",
        },
        "picard": {"executor": "docker", "resource_class": {"class": "medium", "cpu": 2.0}},
        "previous": {"status": "success", "build_num": 48190},
    },
    {
        "build_url": "https://circleci.com/gh/acme/api/48212",
        "build_num": 48212,
        "branch": "main",
        "queued_at": "2023-03-14T18:02:12.001Z",
        "start_time": None,
        "stop_time": None,
        "build_time_millis": None,
        "username": "acme",
        "reponame": "api",
        "lifecycle": "queued",
        "outcome": None,
        "status": "queued",
        "workflows": {"job_name": "deploy", "workflow_name": "build-and-test"},
    },
]

V2_PIPELINES = {
    "items": [
        {
            "id": "1e2d3c4b-5a69-7887-9a0b-1c2d3e4f5061",
            "errors": [],
            "project_slug": "gh/acme/api",
            "updated_at": "2023-03-14T18:02:09.871Z",
            "number": 8812,
            "trigger_parameters": {},
            "state": "created",
            "created_at": "2023-03-14T18:02:09.871Z",
            "trigger": {
                "type": "webhook",
                "received_at": "2023-03-14T18:02:09.400Z",
                "actor": {"login": "jdoe", "avatar_url": "https://avatars/u/1"},
            },
            "vcs": {"branch": "main", "revision": "1d231626ba1d2838e599c5c598d28e2306ad4e48"},
        },
        {
            "id": "9c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f",
            "errors": [{"type": "config", "message": "Config does not conform to schema"}],
            "project_slug": "gh/acme/api",
            "number": 8813,
            "state": "errored",
            "created_at": "2023-03-14T18:05:00.000Z",
            "trigger": {"type": "api", "actor": {"login": "deploy-bot"}},
            "vcs": {"branch": "release/1.4"},
        },
    ],
    "next_page_token": "AARLwwV4MA7bC2nR",
}


def test_circleci_v1_1_builds(read):
    loaded = read("recent-builds.json", json.dumps(V1_BUILDS, indent=2))
    assert loaded.summary.files["format"].to_list() == ["circleci"]
    assert loaded.summary.unparsed_lines == 0
    first, second = loaded.events.sort("ts").iter_rows(named=True)
    attrs = json.loads(first["attrs"])
    assert first["ts"] == datetime(2023, 3, 14, 18, 2, 11, 412000, tzinfo=UTC)
    assert (first["level"], attrs["status"], attrs["raw_status"]) == (
        "error",
        "failed",
        "infrastructure_fail",
    )
    assert attrs["queue_delay_s"] == 149.608
    assert (attrs["executor"], attrs["workflow"], attrs["project"]) == (
        "docker",
        "build-and-test",
        "acme/api",
    )
    assert first["component"] == "integration-tests"
    assert json.loads(second["attrs"])["status"] == "queued"


def test_circleci_v2_pipeline_list(read):
    loaded = read("pipelines.json", json.dumps(V2_PIPELINES))
    assert loaded.summary.files["format"].to_list() == ["circleci"]
    events = loaded.events.sort("ts")
    assert events["message"].to_list()[0].startswith("pipeline main #8812")
    assert events["level"].to_list() == ["info", "error"]
    assert [json.loads(a)["status"] for a in events["attrs"]] == ["other", "failed"]
    assert events["ts"][1] == datetime(2023, 3, 14, 18, 5, tzinfo=UTC)


LOCAL_EXECUTE = """\
Fetching latest build environment...
Docker image digest: sha256:480880a9a20859b277ee2365e4bdef6c68c0d23c022461d046c630697f771871
====>> Spin up environment
Build-agent version 1.0.12255-8a4b1a90 (2019-07-26T14:18:48+0000)
Starting container cimg/go:1.20
  using image cimg/go@sha256:12ebf5607ce13e26bed447c445bff8de17200b1c5c59ef825040d5176f8d7c85
====>> Checkout code
  #!/bin/bash -eo pipefail
  git clone --depth 1 "$CIRCLE_REPOSITORY_URL" .
====>> make test
  #!/bin/bash -eo pipefail
  make test
go test ./...
--- FAIL: TestQueue (0.02s)
    queue_test.go:41: expected 3 jobs, got 2
FAIL
Error: Exited with code exit status 2
Step failed
Task failed
"""


def test_circleci_local_execute_steps_and_outcome(read):
    loaded = read("local-execute.txt", LOCAL_EXECUTE)
    assert loaded.summary.files["format"].to_list() == ["circleci-local"]
    assert loaded.summary.unparsed_lines == 0
    events = loaded.events.sort("line")
    steps = [json.loads(a).get("step") for a in events["attrs"]]
    assert [s for s in steps if s] == ["Spin up environment", "Checkout code", "make test"]
    assert events.filter(events["level"] == "error")["message"].to_list() == [
        "Exited with code exit status 2",
        "Step failed",
        "Task failed",
    ]
    # the failing test's output belongs to its step
    make_test = events.filter(events["message"].str.starts_with("make test")).row(0, named=True)
    assert "--- FAIL: TestQueue (0.02s)" in make_test["message"]
    assert events["ts"].null_count() == events.height


def test_github_actions_log_copied_from_the_web_page(read):
    copied = """\
Run actions/checkout@v4
with:
  repository: acme/api
Syncing repository: acme/api
Run make test
go test ./...
--- FAIL: TestQueue (0.02s)
FAIL
Error: Process completed with exit code 2.
"""
    loaded = read("job-log.txt", copied)
    assert loaded.summary.files["format"].to_list() == ["github-actions-log"]
    logs = loaded.events.filter(loaded.events["kind"] == "log").sort("line")
    assert logs.filter(logs["level"] == "error")["message"].to_list() == [
        "Process completed with exit code 2."
    ]
    job = loaded.events.filter(loaded.events["kind"] == "job").row(0, named=True)
    assert json.loads(job["attrs"])["status"] == "failed"


def test_github_actions_raw_log_without_times_keeps_its_markers(read):
    raw = """\
##[group]Run make test
make test
shell: /usr/bin/bash -e {0}
##[endgroup]
##[warning]Node.js 16 actions are deprecated.
##[error]Process completed with exit code 2.
"""
    loaded = read("job-log.txt", raw)
    logs = loaded.events.filter(loaded.events["kind"] == "log").sort("line")
    assert logs["level"].to_list()[-2:] == ["warning", "error"]
    assert logs["ts"].null_count() == logs.height
