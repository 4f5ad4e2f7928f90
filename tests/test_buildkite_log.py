"""Buildkite job logs, as the agent writes them and "Download log" or the raw log API gives
them: every timed line a row at the agent's time, untimed lines joined to the row above,
and one job row with how the job ended."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

import parsers
import timeline
from timeline.analysis import rates

ESC = "\x1b"
GREY, RED, YELLOW, OFF = f"{ESC}[90m", f"{ESC}[31m", f"{ESC}[33m", f"{ESC}[0m"


def job_log(start: datetime, lines: list[tuple[float, str]], *, plain: bool = False) -> str:
    """Lines as the agent writes them, each after its time (``start`` plus its seconds);
    ``plain``: with the escapes taken out, as a plain copy keeps them."""
    ms = int(start.timestamp() * 1000)
    text = "".join(f"{ESC}_bk;t={ms + round(at * 1000)}\x07{line}\n" for at, line in lines)
    return text.replace(ESC, "").replace("\x07", "") if plain else text


def agent_lines(agent: str, org: str, pipeline: str, command: str) -> list[tuple[float, str]]:
    """What the agent writes before a job's command runs."""
    return [
        (0.0, "~~~ Running global environment hook"),
        (0.001, f"{GREY}${OFF} /etc/buildkite-agent/hooks/environment"),
        (0.05, "~~~ Preparing working directory"),
        (0.051, f"{GREY}${OFF} cd /var/lib/buildkite-agent/builds/{agent}/{org}/{pipeline}"),
        (0.06, f'{GREY}# Host "github.com" already in list of known hosts{OFF}'),
        (0.07, f"{GREY}${OFF} git clean -ffxdq"),
        (2.4, "~~~ Running commands"),
        (2.401, f"{GREY}${OFF} {command}"),
    ]


def job_rows(loaded: timeline.Loaded) -> list[dict]:
    rows = loaded.events.filter(pl.col("kind") == "job").sort("file").to_dicts()
    return [{**row, **json.loads(row["attrs"])} for row in rows]


FAILING_END = [
    (30.0, "+++ :rabbit: integration tests"),
    (88.25, f"{RED}amqp.exceptions.ConnectionForced: (0, 0): (320) CONNECTION_FORCED{OFF}"),
    (88.9, f"{RED}🚨 Error: The command exited with status 2{OFF}"),
    (88.9, "^^^ +++"),
]
PASSING_END = [
    (5.0, "--- :docker: build"),
    (41.5, "Successfully tagged registry.example.com/web:9f3c2a1"),
    (42.0, "~~~ Uploading artifacts"),
]
CANCELLED_END = [
    (3.0, "--- :terraform: plan"),
    (600.0, "Received cancellation signal, interrupting"),
    (600.2, "Terminated"),
    (600.3, f"{RED}🚨 Error: The command was interrupted by a signal{OFF}"),
    (600.3, "^^^ +++"),
]


@pytest.mark.parametrize(
    ("file", "agent", "pipeline", "start", "end", "status", "level", "ran", "message"),
    [
        (
            "acme-api-4821-rspec.txt",
            "agent-stack-k8s-7f9c2",
            "acme/api",
            datetime(2023, 3, 14, 18, 0, 1, 123000, tzinfo=UTC),
            FAILING_END,
            "failed",
            "error",
            88.9,
            "job acme-api-4821-rspec failed [exit 2] (runner agent-stack-k8s-7f9c2, ran 88.9s)",
        ),
        (
            "web_build.log",
            "ci-large-2",
            "shop/web",
            datetime(2024, 11, 2, 7, 45, 30, 5000, tzinfo=UTC),
            PASSING_END,
            "success",
            "info",
            42.0,
            "job web_build success (runner ci-large-2, ran 42.0s)",
        ),
        (
            "infra-plan.txt",
            "i-0a1b2c3d4e-1",
            "platform/infra",
            datetime(2022, 6, 30, 23, 59, 58, tzinfo=UTC),
            CANCELLED_END,
            "cancelled",
            "warning",
            600.3,
            "job infra-plan cancelled [interrupted by a signal] (runner i-0a1b2c3d4e-1, ran 600.3s)",
        ),
    ],
)
def test_a_job_log_s_lines_are_at_the_agent_s_times_and_the_job_has_its_end(
    read, file, agent, pipeline, start, end, status, level, ran, message
):
    org, slug = pipeline.split("/")
    lines = agent_lines(agent, org, slug, "make test") + end
    loaded = read(file, job_log(start, lines))
    assert loaded.summary.files["format"].to_list() == ["buildkite-log"]
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["line"].to_list() == list(range(1, len(lines) + 1))
    assert logs["ts"].to_list() == [start + timedelta(seconds=at) for at, _ in lines]
    assert not logs["message"].str.contains(f"{ESC}|_bk;t=|\x07").any()
    assert logs["message"][1] == "$ /etc/buildkite-agent/hooks/environment"
    assert set(logs["component"]) == {file.rsplit(".", 1)[0]}
    (job,) = job_rows(loaded)
    assert (job["source"], job["status"], job["level"], job["message"]) == (
        "buildkite",
        status,
        level,
        message,
    )
    assert job["ts"] == start and job["duration_s"] == ran
    assert job["queued_at"] is None and job["queue_delay_s"] is None
    assert job["runner_name"] == agent and job["host"] is None
    assert agent not in set(loaded.events["host"].drop_nulls())
    assert job["pipeline"] == pipeline and job["derived_from"] == "log"


def test_the_failure_names_its_section_and_the_agent_s_errors_and_warnings_have_levels(read):
    start = datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    lines = [
        *agent_lines("agent-1", "acme", "api", "buildkite-agent pipeline upload"),
        (3.0, '2023-03-14 18:00:04 INFO   Reading pipeline config from "pipeline.yml"'),
        (
            6.0,
            "2023-03-14 18:00:07 WARN   Pipeline upload not yet applied: processing "
            "(Attempt 1/60 Retrying in 5s)",
        ),
        (9.0, f"{YELLOW}⚠️ Warning: Checkout failed! exit status 128 (Attempt 1/3){OFF}"),
        (9.0, "^^^ +++"),
        (10.0, "--- :pipeline: upload"),
        (20.0, "2023-03-14 18:00:21 FATAL  Failed to upload and process pipeline"),
        (20.5, f"{RED}🚨 Error: The command exited with status 1{OFF}"),
        (20.5, "^^^ +++"),
    ]
    loaded = read("pipeline-upload.txt", job_log(start, lines))
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    levels = logs["level"].to_list()
    assert levels[8:] == [None, "warning", "warning", None, None, "error", "error", None]
    assert levels[:8] == [None] * 8
    assert json.loads(logs["attrs"][13]) == {"section": ":pipeline: upload"}
    assert json.loads(logs["attrs"][10]) == {"section": "Running commands"}
    (job,) = job_rows(loaded)
    assert (job["status"], job["exit_status"], job["failed_section"]) == (
        "failed",
        1,
        ":pipeline: upload",
    )
    assert (job["error_lines"], job["warning_lines"]) == (2, 2)
    assert job["first_error"] == "The command exited with status 1"


def test_the_plain_download_reads_as_the_raw_one(read):
    """Escapes taken out: ``_bk;t=<ms>`` and bare colour codes are left in the text."""
    start = datetime(2024, 2, 29, 12, 0, 0, 250000, tzinfo=UTC)
    lines = agent_lines("builder-3", "acme", "mobile", "./gradlew test") + FAILING_END
    raw = read("raw/mobile-test.txt", job_log(start, lines))
    plain = read("plain/mobile-test.txt", job_log(start, lines, plain=True))
    assert plain.summary.files["format"].to_list() == ["buildkite-log"]
    assert "_bk;t=1709208000251[90m$[0m" in job_log(start, lines, plain=True)
    columns = ["line", "ts", "level", "message", "attrs"]
    assert (
        plain.events.sort("line", "kind")
        .select(columns)
        .equals(raw.events.sort("line", "kind").select(columns))
    )
    assert plain.events.filter(pl.col("line") == 2)["message"].to_list()[-1] == (
        "$ /etc/buildkite-agent/hooks/environment"
    )


def test_untimed_lines_join_the_row_above_and_a_carriage_return_keeps_what_it_wrote(read):
    start = datetime(2023, 7, 1, 9, 0, tzinfo=UTC)
    text = job_log(
        start,
        [
            (0.0, "~~~ Running commands"),
            (1.0, "Traceback (most recent call last):"),
            (1.5, "Downloading 10%\rDownloading 100%"),
            (2.0, f"{RED}🚨 Error: The command exited with status 1{OFF}"),
        ],
    )
    first, rest = text.split("\n", 2)[1], text.split("\n", 2)[2]
    stack = '  File "/app/worker.py", line 42, in consume\nConnectionResetError: [Errno 104]'
    loaded = read("worker.txt", text.split("\n")[0] + "\n" + first + "\n" + stack + "\n" + rest)
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["line"].to_list() == [1, 2, 5, 6]
    assert logs["message"][1] == "Traceback (most recent call last):\n" + stack
    assert logs["ts"][1] == start + timedelta(seconds=1)
    assert logs["message"][2] == "Downloading 100%"


def test_a_log_without_times_is_read_line_by_line(read):
    """A copy whose times were cut off: the agent's sections tell it, its rows have no
    time, and the job still says how it ended."""
    lines = [text for _, text in agent_lines("agent-9", "acme", "api", "make lint")]
    lines += ["lint: 3 problems", "🚨 Error: The command exited with status 3", "^^^ +++"]
    loaded = read("lint.txt", "\n".join(lines) + "\n")
    assert loaded.summary.files["format"].to_list() == ["buildkite-log"]
    logs = loaded.events.filter(pl.col("kind") == "log")
    assert logs.height == len(lines) and logs["ts"].is_null().all()
    (job,) = job_rows(loaded)
    assert (job["status"], job["exit_status"], job["runner_name"]) == ("failed", 3, "agent-9")


@pytest.mark.parametrize("stamp", ["99999999999999999999", "253402300800000"])
def test_a_time_too_large_leaves_the_line_at_the_time_above(read, stamp):
    text = (
        f"{ESC}_bk;t=1700000000000\x07~~~ Running commands\n"
        f"{ESC}_bk;t={stamp}\x07make test\n"
        f"{ESC}_bk;t=1700000005000\x07ok\n"
    )
    loaded = read("job.txt", text)
    assert loaded.summary.files["unparsed_lines"].to_list() == [0]
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["ts"].dt.epoch("s").to_list() == [1700000000, 1700000000, 1700000005]
    assert logs["message"][1] == "make test"


def test_buildkite_job_logs_are_recognised_and_claim_no_other_format():
    start = datetime(2023, 3, 14, 18, 0, 1, tzinfo=UTC)
    lines = agent_lines("agent-1", "acme", "api", "make") + FAILING_END
    for text in (job_log(start, lines), job_log(start, lines, plain=True)):
        best, score = parsers.registry.rank(text.splitlines())[0]
        assert best.name == "buildkite-log" and score.score >= parsers.registry.MIN_SCORE
    buildkite = parsers.registry.get("buildkite-log")
    others = [
        parsers.registry.get(name).samples[0].text
        for name in ("jenkins-log", "gitlab-ci-log", "github-actions-log", "buildkite")
    ]
    others.append('---\nsteps:\n  - label: ":rspec: RSpec"\n    command: make test\n')
    others.append("+++ b/app/models/user.rb\n--- a/app/models/user.rb\n~~~ note\n")
    for text in others:
        assert buildkite.sniff(text.splitlines()).score == 0.0


def test_failing_buildkite_jobs_are_ci_jobs_of_the_buildkite_source(write, tmp_path):
    """Several jobs' logs of one build: each a job row of the ``buildkite`` source, as the
    REST API's jobs are, the failed one an error whose message says its exit status."""
    start = datetime(2023, 3, 14, 18, 0, 0, tzinfo=UTC)
    steps = {
        "rspec": ("agent-1", FAILING_END),
        "lint": ("agent-2", PASSING_END),
        "docker-build": ("agent-3", PASSING_END),
        "terraform-plan": ("agent-4", CANCELLED_END),
    }
    for k, (step, (agent, end)) in enumerate(steps.items()):
        lines = agent_lines(agent, "acme", "api", f"make {step}") + end
        write(f"logs/build-4821/{step}.txt", job_log(start + timedelta(seconds=7 * k), lines))
    loaded = timeline.read(tmp_path / "logs", cache=False, infer=False)
    assert set(loaded.summary.files["format"]) == {"buildkite-log"}
    found = rates.jobs(loaded.events).sort("name")
    assert found["source"].unique().to_list() == ["buildkite"]
    assert found.select("name", "status").rows() == [
        ("docker-build", "success"),
        ("lint", "success"),
        ("rspec", "failed"),
        ("terraform-plan", "cancelled"),
    ]
    failed = loaded.events.filter((pl.col("kind") == "job") & (pl.col("level") == "error"))
    assert failed["message"].to_list() == ["job rspec failed [exit 2] (runner agent-1, ran 88.9s)"]


@pytest.mark.parametrize(
    "lines",
    [
        [
            "🚨 Error: Error creating hook script: write /tmp/buildkite-agent-bootstrap-hook-"
            "runner-584912760: no space left on device",
            "🚨 Error: Error tearing down bootstrap: write /tmp/buildkite-agent-bootstrap-hook-"
            "runner-584912760: no space left on device",
        ],
        ["rspec ./spec/models/user_spec.rb:12", "🚨 Error: The command exited with status 1"],
    ],
)
def test_a_copy_of_a_failed_job_s_last_lines_is_buildkite(read, lines):
    """buildkite/agent#1105: the agent's errors, copied from the job's page without
    times or sections, still tell a Buildkite job that failed."""
    best, score = parsers.registry.rank(lines)[0]
    assert best.name == "buildkite-log" and score.score >= parsers.registry.MIN_SCORE
    loaded = read("job.txt", "\n".join(lines) + "\n")
    logs = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert logs["level"][-1] == "error"
    (job,) = job_rows(loaded)
    assert job["status"] == "failed"
