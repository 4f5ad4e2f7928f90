"""Jenkins: builds and queue items from the remote API, and console logs, as Jenkins and
its Timestamper and metrics plugins write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import parsers
import timeline
from parsers import jenkins_log
from timeline.analysis import rates

T0 = datetime(2023, 3, 14, 18, 0, 1, 123000, tzinfo=UTC)
MS = 1678816801123  # T0 in epoch milliseconds


def job_rows(loaded: timeline.Loaded) -> list[dict]:
    """The job rows, in line order, each with its attrs read."""
    rows = loaded.events.filter(pl.col("kind") == "job").sort("line").to_dicts()
    return [{**row, **json.loads(row["attrs"])} for row in rows]


def time_in_queue(waited_ms: int) -> dict:
    """The metrics plugin's action, as a build's ``actions`` hold it."""
    return {
        "_class": "jenkins.metrics.impl.TimeInQueueAction",
        "blockedDurationMillis": 0,
        "buildableDurationMillis": waited_ms - 5,
        "buildingDurationMillis": 61000,
        "executingTimeMillis": 61000,
        "executorUtilization": 1.0,
        "subTaskCount": 0,
        "waitingDurationMillis": 5,
        "queuingDurationMillis": waited_ms,
        "queuingTimeMillis": waited_ms,
        "totalDurationMillis": waited_ms + 61000,
    }


FREESTYLE_BUILD = {
    "_class": "hudson.model.FreeStyleBuild",
    "actions": [
        {
            "_class": "hudson.model.CauseAction",
            "causes": [
                {
                    "_class": "hudson.model.Cause$UserIdCause",
                    "shortDescription": "Started by user Jane Doe",
                    "userId": "jane",
                    "userName": "Jane Doe",
                }
            ],
        },
        {},
        time_in_queue(42500),
        {"_class": "org.jenkinsci.plugins.displayurlapi.actions.RunDisplayAction"},
    ],
    "artifacts": [],
    "building": False,
    "description": None,
    "displayName": "#57",
    "duration": 61000,
    "estimatedDuration": 58211,
    "executor": None,
    "fullDisplayName": "deploy #57",
    "id": "57",
    "keepLog": False,
    "number": 57,
    "queueId": 20411,
    "result": "ABORTED",
    "timestamp": MS,
    "url": "https://ci.example.com/job/deploy/57/",
    "builtOn": "agent-3",
    "changeSet": {"_class": "hudson.scm.EmptyChangeLogSet", "items": [], "kind": None},
    "culprits": [],
}


def pipeline_builds() -> dict:
    """A folder's Pipeline job's builds, as ``tree=builds[...]`` gives them."""
    url = "https://ci.example.com/job/team/job/app/"
    build = {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun"}
    return {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
        "builds": [
            {
                **build,
                "building": True,
                "duration": 0,
                "fullDisplayName": "team » app #12",
                "number": 12,
                "queueId": 311,
                "result": None,
                "timestamp": MS + 600_000,
                "url": f"{url}12/",
            },
            {
                **build,
                "building": False,
                "duration": 95_250,
                "fullDisplayName": "team » app #11",
                "number": 11,
                "queueId": 305,
                "result": "UNSTABLE",
                "timestamp": MS + 300_000,
                "url": f"{url}11/",
            },
            {
                **build,
                "building": False,
                "duration": 30_000,
                "fullDisplayName": "team » app #10",
                "number": 10,
                "queueId": 301,
                "result": "SUCCESS",
                "timestamp": MS,
                "url": f"{url}10/",
            },
        ],
    }


QUEUE = {
    "_class": "hudson.model.Queue",
    "discoverableItems": [],
    "items": [
        {
            "_class": "hudson.model.Queue$BuildableItem",
            "actions": [
                {
                    "_class": "hudson.model.CauseAction",
                    "causes": [{"shortDescription": "Started by timer"}],
                }
            ],
            "blocked": False,
            "buildable": True,
            "id": 20981,
            "inQueueSince": MS,
            "params": "",
            "stuck": True,
            "task": {
                "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
                "name": "app",
                "url": "https://ci.example.com/job/team/job/app/",
                "color": "blue_anime",
            },
            "url": "queue/item/20981/",
            "why": "Waiting for next available executor on ‘linux’",
            "buildableStartMilliseconds": MS + 7,
            "pending": False,
        },
        {
            "_class": "hudson.model.Queue$BlockedItem",
            "actions": [],
            "blocked": True,
            "buildable": False,
            "id": 20982,
            "inQueueSince": MS + 2000,
            "params": "",
            "stuck": False,
            "task": {"name": "deploy", "url": "https://ci.example.com/job/deploy/"},
            "url": "queue/item/20982/",
            "why": "Build #57 is already in progress (ETA: 1 min 2 sec)",
        },
    ],
}


def test_a_freestyle_build_states_its_wait_and_its_agent(read):
    loaded = read("jenkins/deploy-57.json", json.dumps(FREESTYLE_BUILD, indent=2))
    assert loaded.summary.files["format"].to_list() == ["jenkins-api"]
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    (build,) = job_rows(loaded)
    assert build["source"] == "jenkins" and build["component"] == "deploy"
    assert build["status"] == "cancelled" and build["raw_status"] == "ABORTED"
    assert build["level"] == "warning"
    # queued 42.5 s before it began, as the metrics plugin says
    assert build["ts"] == T0 - timedelta(seconds=42.5)
    assert build["queue_delay_s"] == 42.5 and build["duration_s"] == 61.0
    assert build["started_at"] == "2023-03-14T18:00:01.123Z"
    assert build["stopped_at"] == "2023-03-14T18:01:02.123Z"
    assert build["runner_name"] == "agent-3" and build["host"] is None
    assert build["cause"] == "Started by user Jane Doe"
    assert build["line"] == 1 and build["job_id"] == "deploy#57"


def test_pipeline_builds_of_a_folder_job_have_no_wait_the_api_does_not_state(read):
    loaded = read("api/app-builds.json", json.dumps(pipeline_builds(), indent=2))
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    builds = sorted(job_rows(loaded), key=lambda b: b["number"] if "number" in b else b["line"])
    by_number = {b["job_id"]: b for b in builds}
    assert set(by_number) == {"team/app#10", "team/app#11", "team/app#12"}
    running, unstable, good = (by_number[f"team/app#{n}"] for n in (12, 11, 10))
    assert {b["component"] for b in builds} == {"team/app"}
    assert running["status"] == "running" and running["stopped_at"] is None
    assert running["duration_s"] is None
    assert unstable["status"] == "failed" and unstable["raw_status"] == "UNSTABLE"
    assert unstable["duration_s"] == 95.25
    assert good["status"] == "success" and good["ts"] == T0
    assert all(b["queue_delay_s"] is None and b["queued_at"] is None for b in builds)
    assert all(b.get("runner_name") is None for b in builds)
    # each build spans its own lines of the pretty-printed document
    assert [b["line"] for b in sorted(builds, key=lambda b: b["line"])] == [1, 15, 26]


def test_queue_items_are_queued_jobs_waiting_for_their_label(read):
    loaded = read("queue.json", json.dumps(QUEUE))
    assert loaded.summary.files["format"].to_list() == ["jenkins-api"]
    stuck, blocked = sorted(job_rows(loaded), key=lambda b: b["job_id"])
    assert stuck["status"] == "queued" and stuck["record_type"] == "queue_item"
    assert stuck["ts"] == T0 and stuck["queued_at"] == "2023-03-14T18:00:01.123Z"
    assert stuck["queue_delay_s"] is None and stuck["started_at"] is None
    assert stuck["executor"] == "linux" and stuck["stuck"] is True
    assert stuck["component"] == "team/app" and stuck["cause"] == "Started by timer"
    assert "Waiting for next available executor on ‘linux’" in stuck["message"]
    assert blocked["blocked"] is True and blocked["executor"] is None
    assert blocked["component"] == "deploy"


def test_what_is_no_build_is_unparsed_with_its_reason(read):
    job = {
        "_class": "hudson.model.FreeStyleProject",
        "builds": [{"_class": "hudson.model.FreeStyleBuild", "number": 57, "url": "u/57/"}],
    }
    broken = json.dumps(pipeline_builds(), indent=2)[:700]
    loaded = read("job.json", json.dumps(job, indent=2) + "\n" + broken)
    reasons = loaded.summary.warnings["reason"].unique().to_list()
    assert any("not a jenkins job record" in r for r in reasons)
    assert any(r.startswith("JSON breaks at line") for r in reasons)
    assert loaded.events.filter(pl.col("kind") == "job").height == 1


ESC = "\x1b"


def pipeline_log(*, verdict: str = "FAILURE", agent_line: bool = True) -> str:
    """A Pipeline build's console log with Timestamper's global option: the cause before
    the first time, a node that waits for a 'linux' executor, a stage that fails."""
    stamped = [
        ("18:00:02.031", "[Pipeline] Start of Pipeline"),
        ("18:00:02.512", "[Pipeline] node"),
        ("18:00:17.520", "Still waiting to schedule task"),
        ("18:00:17.521", "Waiting for next available executor on ‘linux’"),
    ]
    if agent_line:
        stamped += [
            (
                "18:02:41.310",
                f"Running on {ESC}[1magent-7{ESC}[0m in /home/jenkins/workspace/team_app",
            ),
            ("18:02:41.322", "[Pipeline] {"),
            ("18:02:41.350", "[Pipeline] stage"),
            ("18:02:41.351", "[Pipeline] { (Test)"),
            ("18:02:41.420", "[Pipeline] sh"),
            ("18:02:41.733", "+ make test"),
            ("18:03:58.907", f"{ESC}[31mdial tcp 10.96.0.10:53: i/o timeout{ESC}[0m"),
            ("18:03:58.950", "WARNING: retrying in 5s"),
            ("18:03:58.990", "ERROR: script returned exit code 2"),
            ("18:03:59.012", "[Pipeline] }"),
            ("18:03:59.020", "[Pipeline] // stage"),
            ("18:03:59.031", "[Pipeline] }"),
            ("18:03:59.040", "[Pipeline] // node"),
        ]
    stamped += [("18:04:00.052", "[Pipeline] End of Pipeline"), ("18:04:00.071", "")]
    lines = ["Started by user Jane Doe"]
    lines += [f"[2023-03-14T{t}Z] {text}" for t, text in stamped]
    lines[-1] += f"Finished: {verdict}"
    return "\n".join(lines) + "\n"


def test_a_pipeline_log_shows_its_wait_agent_stage_and_verdict(read):
    loaded = read("jenkins/job/team/job/app/142/consoleText", pipeline_log())
    assert loaded.summary.files["format"].to_list() == ["jenkins-log"]
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    (build,) = job_rows(loaded)
    assert build["component"] == "team/app" and build["job_id"] == "team/app#142"
    assert build["message"].startswith(
        "build team/app #142 failed [FAILURE] (linux, runner agent-7"
    )
    assert build["status"] == "failed" and build["level"] == "error"
    # queued when its node step asked for an executor, started when agent-7 took it
    assert build["queued_at"] == "2023-03-14T18:00:02.512Z"
    assert build["started_at"] == "2023-03-14T18:02:41.310Z"
    assert build["queue_delay_s"] == 158.798
    assert build["stopped_at"] == "2023-03-14T18:04:00.071Z"
    assert build["executor"] == "linux" and build["runner_name"] == "agent-7"
    assert build["host"] is None and build["derived_from"] == "log"
    assert build["workspace"] == "/home/jenkins/workspace/team_app"
    assert build["error_lines"] == 1 and build["failed_stage"] == "Test"
    assert build["first_error"] == "ERROR: script returned exit code 2"
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs.height == 20 and logs["line"].to_list() == list(range(1, 21))
    assert logs["component"].unique().to_list() == ["team/app"]
    first = logs.row(0, named=True)
    assert first["message"] == "Started by user Jane Doe" and first["ts"] == datetime(
        2023, 3, 14, 18, 0, 2, 31000, tzinfo=UTC
    )
    agent = logs.filter(pl.col("line") == 6).row(0, named=True)
    assert agent["message"] == "Running on agent-7 in /home/jenkins/workspace/team_app"
    error = logs.filter(pl.col("level") == "error").row(0, named=True)
    assert error["line"] == 14 and json.loads(error["attrs"]) == {"stage": "Test"}
    assert error["ts"] == datetime(2023, 3, 14, 18, 3, 58, 990000, tzinfo=UTC)
    warning = logs.filter(pl.col("level") == "warning").row(0, named=True)
    assert warning["message"] == "WARNING: retrying in 5s"
    assert logs.filter(pl.col("line") == 12)["message"].item() == (
        "dial tcp 10.96.0.10:53: i/o timeout"
    )


def test_a_build_aborted_while_it_waited_never_started(read):
    loaded = read("app-build-143.log", pipeline_log(verdict="ABORTED", agent_line=False))
    (build,) = job_rows(loaded)
    assert build["component"] == "app-build" and build["job_id"] == "app-build#143"
    assert build["status"] == "cancelled" and build["started_at"] is None
    assert build["queued_at"] == "2023-03-14T18:00:02.512Z"
    assert build["queue_delay_s"] is None and "runner_name" not in build


#: The sample freestyle build up to its script, which this one cannot run.
FREESTYLE_LOG = (
    "".join(jenkins_log.SAMPLES[1].text.splitlines(keepends=True)[:7])
    + """FATAL: command execution failed
java.io.IOException: Cannot run program "/bin/sh"
\tat hudson.Proc$LocalProc.<init>(Proc.java:252)
Finished: FAILURE
"""
)


def test_a_freestyle_log_without_times_has_rows_without_a_time_and_no_wait(read):
    loaded = read("builds/deploy/58/log", FREESTYLE_LOG)
    assert loaded.summary.files["format"].to_list() == ["jenkins-log"]
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    (build,) = job_rows(loaded)
    assert build["component"] == "deploy" and build["job_id"] == "deploy#58"
    assert build["status"] == "failed" and build["runner_name"] == "agent-3"
    assert build["queue_delay_s"] is None and build["queued_at"] is None
    assert build["cause"] == "an SCM change" and build["ts"] is None
    logs = loaded.events.filter(pl.col("kind") == "log")
    assert logs.height == 11 and logs["ts"].null_count() == 11
    assert logs.filter(pl.col("level") == "error")["line"].to_list() == [8]


@pytest.mark.parametrize(
    ("prefix", "key", "first"),
    [
        (lambda s: f"18:00:{s:02d}  ", "clock", "18:00:00"),
        (lambda s: f"{s}.{s * 7 % 1000:03d}  ", "elapsed_s", 0.0),
    ],
)
def test_timestamps_page_prefixes_are_taken_off_and_kept(read, prefix, key, first):
    lines = FREESTYLE_LOG.splitlines()
    text = "\n".join(prefix(s) + line for s, line in enumerate(lines)) + "\n"
    loaded = read("deploy-59.txt", text)
    assert loaded.summary.files["format"].to_list() == ["jenkins-log"]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["message"].to_list() == lines
    assert json.loads(logs["attrs"][0]) == {key: first}
    (build,) = job_rows(loaded)
    assert build["runner_name"] == "agent-3" and build["status"] == "failed"


def test_dated_timestamps_page_prefixes_give_times(read):
    lines = FREESTYLE_LOG.splitlines()
    text = "".join(f"2023-03-14T19:00:{s:02d}.000+0100  {line}\n" for s, line in enumerate(lines))
    loaded = read("deploy-60.txt", text)
    (build,) = job_rows(loaded)
    assert build["started_at"] == "2023-03-14T18:00:00.000Z"
    assert build["stopped_at"] == "2023-03-14T18:00:10.000Z" and build["duration_s"] == 10.0


def test_an_impossible_timestamper_time_is_an_unparsed_line_with_its_reason(read):
    text = pipeline_log().replace("[2023-03-14T18:02:41.733Z]", "[2023-02-30T18:02:41.733Z]")
    loaded = read("app-144.log", text)
    warnings = loaded.summary.warnings
    assert warnings["line"].to_list() == [11]
    assert warnings["reason"][0] == (
        "a timestamper time that cannot be read: '2023-02-30T18:02:41.733Z'"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("jenkins/app-build/142/consoleText", ("app-build", 142)),
        ("job/team/job/app/7/consoleText.txt", ("team/app", 7)),
        ("/var/jenkins_home/jobs/team/jobs/app/builds/9/log.gz", ("team/app", 9)),
        ("app-build-142.log", ("app-build", 142)),
        ("app-build.log", ("app-build", None)),
    ],
)
def test_a_console_log_is_named_by_its_file(path, expected):
    assert jenkins_log.build_of_file(path) == expected


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (json.dumps(FREESTYLE_BUILD), "jenkins-api"),
        (json.dumps(QUEUE, indent=2), "jenkins-api"),
        (pipeline_log(), "jenkins-log"),
        (FREESTYLE_LOG, "jenkins-log"),
    ],
)
def test_jenkins_files_are_recognised_as_jenkins(text, name):
    best, score = parsers.registry.rank(text.splitlines())[0]
    assert best.name == name and score.score >= parsers.registry.MIN_SCORE


def test_growing_queue_waits_are_a_jenkins_ci_spike(write, tmp_path):
    """Builds every two minutes wait seconds for an executor, then, once agents are
    lost, ten minutes: the queue delay spikes, and the spike is the jenkins source's."""
    start = datetime(2024, 6, 10, 5, 0, tzinfo=UTC)
    bad_from = start + timedelta(hours=8)
    builds = []
    for k in range(300):
        began = start + timedelta(minutes=2 * k)
        waited_ms = 600_000 + 1000 * (k % 7) if began >= bad_from else 3000 + 400 * (k % 5)
        builds.append(
            {
                "_class": "hudson.model.FreeStyleBuild",
                "actions": [{"_class": "hudson.model.CauseAction"}, time_in_queue(waited_ms)],
                "building": False,
                "duration": 90_000,
                "fullDisplayName": f"build-api #{k + 1}",
                "number": k + 1,
                "queueId": 5000 + k,
                "result": "SUCCESS",
                "timestamp": int(began.timestamp() * 1000),
                "url": f"https://ci.example.com/job/build-api/{k + 1}/",
                "builtOn": f"agent-{k % 4}",
            }
        )
    job = {"_class": "hudson.model.FreeStyleProject", "builds": builds[::-1]}
    write("logs/jenkins/build-api.json", json.dumps(job))
    loaded = timeline.read(tmp_path / "logs", cache=False)
    assert rates.jobs(loaded.events)["source"].unique().to_list() == ["jenkins"]
    analysis = timeline.analyze(loaded)
    ci = analysis.spikes.filter(pl.col("source") == "jenkins")
    assert ci.height >= 1
    assert ci["start"].min() >= bad_from - timedelta(minutes=30)


def test_real_console_page_clock_on_step_output_only():
    """The console page with Timestamper's clock (jenkinsci/JenkinsPipelineUnit#329)
    shows it on the steps' output, never on Pipeline's own ``[Pipeline]`` lines, so that
    most lines carry none: the clock is still taken off and kept."""
    from pathlib import Path

    from tests.lines import read_real

    loaded = read_real(
        Path(__file__).parent / "data" / "real" / "jenkins" / "console-page-clock.txt"
    )
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    by_line = dict(zip(logs["line"], logs["message"], strict=True))
    assert [by_line[n] for n in (2, 3, 4, 14, 15)] == [
        "+ echo 123",
        "+ false",
        "123",
        "+ echo Will run cleanup",
        "Will run cleanup",
    ]
    assert json.loads(logs.filter(pl.col("line") == 14)["attrs"][0])["clock"] == "11:37:08"
    assert by_line[1] == "[Pipeline] sh" and logs["ts"].null_count() == logs.height
    (build,) = job_rows(loaded)
    assert build["status"] == "failed"


def test_a_program_s_clocks_on_a_few_output_lines_stay_in_them(read):
    """Where most output lines carry no clock, a program's own ``12:00:01`` stays."""
    text = (
        "Started by user Jane Doe\n[Pipeline] Start of Pipeline\n[Pipeline] sh\n"
        "12:00:01  backup started\nrsync: sending files\nrsync: done\n"
        "backup finished\n[Pipeline] End of Pipeline\nFinished: SUCCESS\n"
    )
    loaded = read("backup-3.log", text)
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs.filter(pl.col("line") == 4)["message"].item() == "12:00:01  backup started"


@pytest.mark.parametrize(
    ("clock", "gap"),
    [
        (lambda s: f"00:00:{s:02d}.{s * 37 % 1000:03d}", " "),  # elapsed, as the page shows
        (lambda s: f"20:41:{s:02d}", " "),  # clock, as the page shows
        (lambda s: f"18:00:{s:02d}", "  "),  # /timestamps/?time=HH:mm:ss&appendLog
    ],
)
def test_a_clock_prefix_leaves_the_space_a_line_begins_with(read, clock, gap):
    """The console page shows one space after Timestamper's time, the ``/timestamps/``
    page two (jenkinsci/build-time-blame-plugin#27, moby/moby#35875): only that
    separator goes, so the git plugin's and Docker's lines keep their leading space."""
    lines = [
        "Started by timer",
        "Building in workspace C:\\Users\\Administrator\\AppData\\Local\\Jenkins\\workspace\\app",
        " > C:\\Program Files\\Git\\bin\\git.exe rev-parse --is-inside-work-tree # timeout=10",
        "Fetching changes from the remote Git repository",
        " > git fetch --tags --force --progress -- origin # timeout=10",
        "Step 39 : COPY . /go/src/github.com/docker/docker",
        " ---> 3bd5ba0a82f0",
        "",
        "Finished: SUCCESS",
    ]
    text = "".join(f"{clock(s)}{gap}{line}\n" for s, line in enumerate(lines))
    loaded = read("app-12.log", text)
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["message"].to_list() == lines
    assert json.loads(logs["attrs"][2])["clock"] == clock(2)


@pytest.mark.parametrize(
    ("tail", "levels"),
    [
        (
            [
                "20:44:19 integration-cli is deprecated. Please add an API integration test to",
                "20:44:20 Build step 'Execute shell' marked build as failure",
                "20:44:20 Set build name.",
            ],
            [None, "error", None],
        ),
        (
            [
                "[oooq-deploy] $ /bin/sh -xe /tmp/hudson1628550700071820413.sh",
                "+ git clone https://git.openstack.org/openstack/tripleo-quickstart.git",
                "fatal: destination path 'tripleo-quickstart' already exists and is not an "
                "empty directory.",
                "Build step 'Execute shell' marked build as failure",
            ],
            [None, None, "error", "error"],
        ),
        (
            [
                "Recording test results",
                "Build step 'Publish JUnit test result report' changed build result to UNSTABLE",
            ],
            [None, None],
        ),
    ],
)
def test_a_fragment_whose_only_sign_is_a_build_step_verdict_is_jenkins(read, tail, levels):
    """A pasted end of a freestyle console log, without cause or ``Finished:``: the
    build step's verdict tells it; its failure and git's ``fatal:`` are errors."""
    best, score = parsers.registry.rank(tail)[0]
    assert best.name == "jenkins-log" and score.score >= parsers.registry.MIN_SCORE
    loaded = read("console.txt", "\n".join(tail) + "\n")
    assert loaded.summary.files["format"].to_list() == ["jenkins-log"]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["level"].to_list() == levels
