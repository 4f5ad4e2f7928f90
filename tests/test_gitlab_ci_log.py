"""GitLab CI job logs (traces): every line a row at the time its section marker or its
own prefix gives, without markers or colours, and one job row with the runner's verdict."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import parsers
from tests.lines import read_real

REAL = Path(__file__).parent / "data" / "real" / "gitlab-ci"
ESC = "\x1b"


def marker(edge: str, epoch: int, name: str) -> str:
    """A section marker as the runner writes it, with its carriage return and erase."""
    return f"{ESC}[0Ksection_{edge}:{epoch}:{name}\r{ESC}[0K"


def trace(*, version: str, runner: str, executor: str, start: int, verdict: str) -> str:
    """A trace of one job: greeting, executor section, script section, verdict."""
    return "\n".join(
        [
            f"{ESC}[0KRunning with gitlab-runner {version}{ESC}[0;m",
            f"{ESC}[0K  on {runner}{ESC}[0;m",
            marker("start", start, "prepare_executor")
            + f'{ESC}[0K{ESC}[36;1mPreparing the "{executor}" executor{ESC}[0;m',
            marker("end", start + 9, "prepare_executor")
            + marker("start", start + 9, "step_script")
            + f'{ESC}[0K{ESC}[36;1mExecuting "step_script" stage of the job script{ESC}[0;m',
            f"{ESC}[32;1m$ ./deploy.sh{ESC}[0;m",
            f"{ESC}[0;33mWARNING: retrying rabbitmq publish (1/3){ESC}[0;m",
            "Downloading 10%\rDownloading 100%",
            marker("end", start + 70, "step_script") + f"{ESC}[31;1m{verdict}{ESC}[0;m",
            "",
        ]
    )


@pytest.mark.parametrize(
    ("version", "runner", "runner_name", "executor", "start", "verdict", "status", "level"),
    [
        (
            "16.3.0 (8ec04662)",
            "deploy-runner zbF4zAjwx, system ID: s_18faf34db374",
            "deploy-runner",
            "docker",
            1678816800,
            "ERROR: Job failed: exit code 1",
            "failed",
            "error",
        ),
        (
            "13.1.0 (6214287e)",
            "docker-auto-scale 72989761",
            "docker-auto-scale",
            "docker+machine",
            1593796383,
            "Job succeeded",
            "success",
            "info",
        ),
        (
            "11.8.0 (4745a6f3)",
            "k8s runner eu-1 (a21b584f)",
            "k8s runner eu-1",
            "kubernetes",
            1551398400,
            "ERROR: Job failed: canceled",
            "cancelled",
            "warning",
        ),
    ],
)
def test_trace_lines_are_at_their_section_times_and_the_job_has_the_verdict(
    read, version, runner, runner_name, executor, start, verdict, status, level
):
    text = trace(version=version, runner=runner, executor=executor, start=start, verdict=verdict)
    loaded = read("job-4711.log", text)
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci-log"]
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    began = datetime.fromtimestamp(start, UTC)
    assert logs["ts"].dt.epoch("s").to_list() == [start] * 3 + [start + 9] * 4 + [start + 70]
    assert not logs["message"].str.contains(f"section_|{ESC}|\r").any()
    assert logs["message"][5] == "WARNING: retrying rabbitmq publish (1/3)"
    assert logs["message"][6] == "Downloading 100%"
    assert logs["level"].to_list()[5] == "warning"
    assert json.loads(logs["attrs"][5]) == {"section": "step_script"}
    assert set(logs["component"]) == {"job-4711"}
    job = loaded.events.filter(pl.col("kind") == "job").row(0, named=True)
    assert (job["source"], job["component"], job["host"], job["level"]) == (
        "gitlab-ci",
        "job-4711",
        None,
        level,
    )
    assert job["ts"] == began
    attrs = json.loads(job["attrs"])
    assert attrs["status"] == status
    assert (attrs["queued_at"], attrs["queue_delay_s"], attrs["duration_s"]) == (None, None, 70.0)
    assert attrs["runner_name"] == runner_name and runner_name not in set(loaded.events["host"])
    assert attrs["runner_executor"] == attrs["executor"] == executor
    assert attrs["runner_version"] == version.split(" ")[0]


def test_timestamped_trace_lines_keep_their_own_times_and_lose_the_stream_header(read):
    """Runner 17+ (``FF_TIMESTAMPS``, the default since 18.7) writes each line's UTC time
    and a stream header; ``00O+`` continues a line a carriage return broke."""
    lines = [
        "2024-06-03T09:15:02.104840Z 00O Running with gitlab-runner 17.0.0 (44feccdf)",
        "2024-06-03T09:15:02.104912Z 00O   on build-7 t3_Zx9aQ, system ID: s_5f0c1a2b3c4d",
        f"2024-06-03T09:15:02.105120Z 00O section_start:1717406102:prepare_executor\r{ESC}[0K",
        f'2024-06-03T09:15:02.105122Z 00O+{ESC}[36;1mPreparing the "docker" executor{ESC}[0;m',
        f"2024-06-03T09:15:40.800301Z 00O section_end:1717406140:prepare_executor\r{ESC}[0K",
        f"2024-06-03T09:15:40.800400Z 00O+section_start:1717406140:step_script\r{ESC}[0K",
        "2024-06-03T09:16:05.250000Z 01E dial tcp 10.0.0.5:5672: connect: connection refused",
        f"2024-06-03T09:16:05.900000Z 00O section_end:1717406165:step_script\r{ESC}[0K",
        f"2024-06-03T09:16:05.901000Z 00O {ESC}[31;1mERROR: Job failed (system failure): "
        f'pod "runner-t3zx9aq" status is "Failed"{ESC}[0;m',
    ]
    loaded = read("build.log", "\n".join(lines) + "\n")
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    written = [line.split(" ", 1)[0][:26] for line in lines]
    assert logs["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%6f").to_list() == written
    assert logs["message"][0] == "Running with gitlab-runner 17.0.0 (44feccdf)"
    assert logs["message"][3] == 'Preparing the "docker" executor'
    assert json.loads(logs["attrs"][6]) == {"stream": "stderr"}
    job = json.loads(loaded.events.filter(pl.col("kind") == "job")["attrs"][0])
    assert (job["status"], job["failure_kind"], job["runner_name"]) == (
        "failed",
        "infrastructure",
        "build-7",
    )
    assert job["started_at"] == "2024-06-03T09:15:02.104Z" and job["queue_delay_s"] is None


def test_real_raw_trace_with_a_section_s_end_and_the_next_start_on_one_line():
    """A runner 16.3 trace (antmicro/ci-timeline-visualizer README): every line a row at
    its section's time, the markers gone, one successful job of 13 s."""
    loaded = read_real(REAL / "trace-shell-sections.log")
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs.height == 30
    assert logs["ts"].dt.epoch("s").unique().sort().to_list() == [
        1694763179,
        1694763186,
        1694763192,
    ]
    assert logs["message"][4] == "Preparing environment"
    assert logs["message"][29] == "Job succeeded"
    assert not logs["message"].str.contains("section_", literal=True).any()
    job = json.loads(loaded.events.filter(pl.col("kind") == "job")["attrs"][0])
    assert (job["status"], job["duration_s"], job["runner_name"]) == (
        "success",
        13.0,
        "example-runner",
    )


def test_real_kubernetes_trace_of_an_old_runner():
    """An early sections trace (gitlabhq/gitlabhq ``spec/fixtures/trace/trace_with_sections``):
    the runner named with its token in brackets, eight empty sections on one line."""
    loaded = read_real(REAL / "trace-kubernetes-sections.log")
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["message"][11] == "$ whoami"
    assert logs["ts"][11] == datetime(2017, 9, 21, 14, 42, 38, tzinfo=UTC)
    assert logs["level"][2] == "warning"
    job = json.loads(loaded.events.filter(pl.col("kind") == "job")["attrs"][0])
    assert (job["status"], job["runner_name"], job["runner_executor"]) == (
        "success",
        "kitsune minikube",
        "kubernetes",
    )


def test_real_trace_copied_from_the_web_page_has_no_times_and_is_still_running():
    """Text copied from a job's page (superlinear-ai/substrate#167): no markers and no
    times, so rows without a time; no verdict yet, so the job is running."""
    loaded = read_real(REAL / "trace-web-page.txt")
    assert loaded.events["ts"].is_null().all()
    job = json.loads(loaded.events.filter(pl.col("kind") == "job")["attrs"][0])
    assert (job["status"], job["runner_name"], job["runner_executor"]) == (
        "running",
        "project-runner",
        "docker",
    )


def test_job_logs_of_other_ci_systems_are_not_gitlab_traces():
    gitlab = parsers.registry.get("gitlab-ci-log")
    github = (REAL.parent / "github-actions" / "checkout-fetch-retry.txt").read_text()
    assert gitlab.sniff(github.splitlines()).score == 0.0
    application = ["ERROR: connection refused", "Job succeeded in 3 attempts"]
    assert gitlab.sniff(application).score == 0.0


@pytest.mark.parametrize("epoch", ["99999999999999999999", "18446744073709551616"])
def test_a_marker_time_too_large_for_a_number_leaves_the_line_to_its_neighbours(read, epoch):
    text = (
        "Running with gitlab-runner 16.0.0 (6f3a1b2c)\n"
        f"section_start:{epoch}:step_script\r{ESC}[0KExecuting step\n"
        f"section_end:1700000000:step_script\r{ESC}[0K\n"
        "Job succeeded\n"
    )
    loaded = read("trace.log", text)
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["ts"].dt.epoch("s").to_list() == [1700000000] * 4
    assert logs["message"][1] == "Executing step"


def test_real_web_page_copy_keeps_each_section_s_duration_with_its_title():
    """The job page shows a section's duration under its title (abarichello/godot-ci#49,
    runner 13.8): a copy holds it as a line of its own, which is the title's, not a line
    of the job's; the reporter's own ``...`` stays a line."""
    loaded = read_real(REAL / "trace-web-page-durations.txt")
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert not logs["message"].str.contains(r"^[0-9]{2}:[0-9]{2}$").any()
    assert logs.height == 13
    titles = logs.filter(pl.col("attrs").str.contains("section_duration"))
    durations = [json.loads(a)["section_duration"] for a in titles["attrs"]]
    assert dict(zip(titles["message"], durations, strict=True)) == {
        "Resolving secrets": "00:00",
        "Preparing environment": "00:01",
        "Getting source from Git repository": "00:04",
        "Cleaning up file based variables": "00:02",
    }
    assert "..." in logs["message"].to_list()
    assert logs.filter(pl.col("message") == "Preparing environment")["line"].to_list() == [7]
    job = json.loads(loaded.events.filter(pl.col("kind") == "job")["attrs"][0])
    assert (job["status"], job["runner_name"]) == ("failed", "newest")


def test_real_web_page_copy_with_durations_beside_the_runner_s_titles():
    """A newer page (rhel-lightspeed/linux-mcp-server#539, runner 19.1) copies the
    duration onto the title's own line: taken off the runner's titles only."""
    loaded = read_real(REAL / "trace-web-page-inline-durations.txt")
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs.height == 15
    by_line = dict(zip(logs["line"], logs["message"], strict=True))
    assert by_line[4] == 'Preparing the "kubernetes" executor'
    assert by_line[11] == "Preparing environment"
    assert json.loads(logs.filter(pl.col("line") == 11)["attrs"][0]) == {
        "section_duration": "00:07"
    }
    assert by_line[12].endswith("job timeout: 1h0m0s...")


def test_a_program_s_own_times_in_a_raw_trace_stay_its_lines(read):
    """Only a copy of the page holds durations: in a trace with section markers a line
    that is only a time is the program's, and a title's last word stays."""
    text = (
        "Running with gitlab-runner 16.3.0 (8ec04662)\n"
        "  on ci-runner-2 zbF4zAjwx\n"
        'section_start:1678816800:step_script\r\x1b[0KExecuting "step_script" stage of the job script\n'
        "$ date +%M:%S\n"
        "00:01\n"
        "section_end:1678816805:step_script\r\x1b[0KJob succeeded\n"
    )
    loaded = read("build.log", text)
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["message"].to_list()[3:5] == ["$ date +%M:%S", "00:01"]


def test_git_s_own_fatal_error_and_warning_lines_have_their_levels(read):
    """A clone that failed in a trace: git's ``fatal:`` is an error, as the runner's
    ``ERROR:`` is; a program's word elsewhere on its line is no level."""
    text = (
        "Running with gitlab-runner 17.2.0 (6428c282)\n"
        "  on build-7 t3_aBcDeF, system ID: s_0123456789ab\n"
        "section_start:1718000000:get_sources\r\x1b[0K\x1b[36;1mGetting source from Git repository\n"
        "Fetching changes with git depth set to 20...\n"
        "warning: redirecting to https://gitlab.example.com/team/api.git/\n"
        "error: RPC failed; curl 92 HTTP/2 stream 5 was not closed cleanly: CANCEL (err 8)\n"
        "fatal: early EOF\n"
        "build: no fatal: problems here\n"
        "section_end:1718000009:get_sources\r\x1b[0K\x1b[31;1mERROR: Job failed: exit code 1\n"
    )
    loaded = read("clone-9.log", text)
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["level"].to_list() == [None, None, None, None] + [
        "warning",
        "error",
        "error",
        None,
        "error",
    ]
    job = loaded.events.filter(pl.col("kind") == "job").row(0, named=True)
    assert json.loads(job["attrs"])["error_lines"] == 3


@pytest.mark.parametrize(
    "head",
    [
        ["Using attach strategy to execute scripts...", "Preparing environment 10:07"],
        ["Preparing environment", "00:41"],
        [],
    ],
)
def test_a_page_copy_of_a_pod_that_never_ran_is_gitlab(read, head):
    """kubernetes-sigs/kubespray#8451: a copy of the page from the Kubernetes executor's
    wait for the job's pod to the runner's verdict, without the greeting."""
    pod = "gitlab/runner-f-bmr8fc-project-9659330-concurrent-2rfq5v"
    lines = [
        *head,
        f"Waiting for pod {pod} to be running, status is Pending",
        "...",
        f"Waiting for pod {pod} to be running, status is Pending",
        "ERROR: Job failed (system failure): prepare environment: waiting for pod running: "
        "timed out waiting for pod to start.",
    ]
    loaded = read("deploy.log", "\n".join(lines) + "\n")
    assert loaded.summary.files["format"].to_list() == ["gitlab-ci-log"]
    job = loaded.events.filter(pl.col("kind") == "job").row(0, named=True)
    attrs = json.loads(job["attrs"])
    assert (attrs["status"], attrs["failure_kind"]) == ("failed", "infrastructure")
