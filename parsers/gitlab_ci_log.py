"""GitLab CI job logs (traces): every line as a log row, plus one job row for the file.

A trace (``GET /projects/:id/jobs/:job_id/trace``, the job page's raw view, ``glab ci
trace``) opens with the runner naming itself and goes through sections that the runner
marks with their Unix time::

    \\e[0KRunning with gitlab-runner 16.3.0 (8ec04662)\\e[0;m
    \\e[0K  on example-runner zbF4zAjwx, system ID: s_18faf34db374\\e[0;m
    section_start:1694763179:prepare_executor\\r\\e[0K\\e[36;1mPreparing the "shell" executor
    section_end:1694763186:step_script\\r\\e[0K\\e[32;1mJob succeeded\\e[0;m

The markers, colours and erase codes are taken out of each line (one line may hold a
section's end, the next one's start and its title). Since runner 17.0 (``FF_TIMESTAMPS``)
each line also has its own UTC time and a stream header (``00O``, ``01E``; ``00O+``
continues a line that a carriage return broke): the loader takes the time off as a
``kubectl logs --timestamps`` prefix, and the header is taken off here. Text copied from
the job's web page has neither markers nor times; it is read too, its rows without a time.

**Times.** A line's own time where it has one; else the time of the last section marker
at or before it, and the first marker's for the lines the runner writes before it (the
runner's greeting, written the same second). The runner writes ``ERROR:`` and
``WARNING:`` lines, which give the level, and so do git's own ``fatal:``, ``error:``
and ``warning:`` (a clone or fetch that failed) in the job's output.

**The job row.** Started at the first line's time, stopped at the last one's: a trace
does not say when the job was queued, so its queue delay is left unknown (the jobs API
gives it). Success if the runner wrote ``Job succeeded``, failed if it wrote ``ERROR:
Job failed`` (what follows is the failure, shown beside the status; ``(system
failure)`` is the runner's, not the script's), cancelled if the failure is
``canceled``, else still running. The runner (``on NAME TOKEN``) is where the job ran,
``runner_name``, never a host; the job's name is the file's stem. Its executor, for want
of the runner tags the jobs API gives, is the runner's kind of executor (``docker``,
``kubernetes``): what its CI series are named by.
"""

from __future__ import annotations

import polars as pl

from parsers import jobs, registry
from parsers.common import join_continuations, json_object
from parsers.registry import Parser, Sample, Score

NAME = "gitlab-ci-log"
SOURCE = "gitlab-ci"

GREETING = r"^Running with gitlab-(?:ci-multi-)?runner (?P<version>[^ ]+)"
#: The runner's description and the first letters of its token: ``on NAME TOKEN`` (and
#: ``, system ID: ...`` since runner 15.8), ``on NAME (TOKEN)`` before runner 10.
RUNNER = (
    r"^ {1,2}on (?P<runner>.+?) (?:[A-Za-z0-9_-]+|\([A-Za-z0-9_-]+\))"
    r"(?:, system ID: [A-Za-z0-9_]+)?$"
)
#: The executor as the runner names it (``Preparing the "docker+machine" executor``;
#: ``Using Kubernetes executor ...`` before runner 13).
EXECUTOR = r'^(?:Preparing the "|Using )(?P<executor>[A-Za-z0-9+ ()-]+?)"? executor'
IMAGE = r"^Using [A-Za-z]+ executor with image (?P<image>[^ ]+) \.\.\."
SECTION = r"section_(?P<edge>start|end):(?P<epoch>[0-9]+):(?P<section>[A-Za-z0-9_.-]+)"
_MARKER = rf"(?:\x1b\[0K)?{SECTION}(?:\[[^\]\r\n]*\])?\r?(?:\x1b\[0K)?"
ANSI = r"\x1b\[[0-9;?]*[A-Za-z]"
#: The stream header of a timestamped trace: stream number, ``O``/``E``, ``+`` for a
#: line a carriage return broke.
STREAM_HEADER = r"^(?P<stream>[0-9a-f]{2})(?P<kind>[OE])(?:\+| |$)"
SUCCEEDED = "Job succeeded"
FAILED = r"^ERROR: Job failed(?: \((?P<system>system failure)\))?: (?P<why>.+)$"
#: How long a section took, as the job page shows it beside the section's title: on a
#: line of its own after the title, or after it on the same line (``Preparing
#: environment 00:07``); a copy of the page keeps it, a trace has none.
DURATION = r"[0-9]{2}:[0-9]{2}(?::[0-9]{2})?"
#: The runner's own section titles, which the page may show with their duration.
RUNNER_SECTION = (
    r'^(?:Preparing the "[^"]+" executor|Preparing environment|Resolving secrets|'
    r"Getting source from Git repository|Restoring cache|Downloading artifacts|"
    r'Executing "[^"]+" stage of the job script|Running after_script|Saving cache.*|'
    r"Uploading artifacts.*|Cleaning up .*)"
)
#: The Kubernetes executor's wait for the job's pod, the page's first lines when it
#: never started.
WAITING_POD = r"^Waiting for pod [^ ]+ to be running, status is [A-Za-z]+"
#: What only the runner writes on a job's page: its executor, a section's title, or its
#: wait for the job's pod.
RUNNER_LINE = f"(?:{EXECUTOR})|(?:{RUNNER_SECTION})|(?:{WAITING_POD})"
#: The runner describes itself and its executor in a trace's first lines.
SETUP_LINES = 50

LEVEL = {"ERROR": "error", "WARNING": "warning"}
LITERALS = (
    "Running with gitlab-",
    "section_start:",
    "section_end:",
    "ERROR: Job failed",
    SUCCEEDED,
)


def _bodies(lines: pl.Expr) -> pl.Expr:
    """The lines without markers, colours and a stream header."""
    return (
        lines.str.replace_all(_MARKER, "")
        .str.replace_all(ANSI, "")
        .str.replace(STREAM_HEADER, "")
        .str.replace(r"(?s)^.*\r", "")
    )


def sniff(sample: list[str]) -> Score:
    """The runner's greeting makes a trace sure, its section markers likely, and its
    verdict with its executor line, one of its sections' titles or its wait for the
    job's pod (a copy of the web page) likely too."""
    texts = pl.Series(sample, dtype=pl.String)
    bodies = pl.select(_bodies(pl.lit(texts))).to_series()
    if bodies.str.contains(GREETING).any():
        return Score(0.95, "the GitLab runner's greeting (Running with gitlab-runner)")
    if texts.str.contains(SECTION).any():
        return Score(0.7, "GitLab CI section markers")
    if bodies.str.contains(RUNNER_LINE).any() and (
        (bodies == SUCCEEDED).any() or bodies.str.contains(FAILED).any()
    ):
        return Score(0.6, "a GitLab runner's executor, section or pod line and its verdict")
    return Score(0.0, "no GitLab runner greeting, section markers or verdict")


def page_durations(lines: pl.LazyFrame) -> pl.LazyFrame:
    """A copy of the job page with each section's duration, which the page shows beside
    the section's title, kept with that title's line (``attrs.section_duration``)
    rather than read as a line of the job's.

    Only a copy of the page has them (no section markers, no times): there a line that
    is only a duration (``00:01``) follows the title it belongs to, and is joined to it;
    a duration after one of the runner's own titles on the same line is taken off it.
    """
    text = pl.col("text")
    page = ~(text.str.contains(SECTION).any() | pl.col("prefix_ts").is_not_null().any())
    duration = text.str.strip_chars().str.contains(f"^{DURATION}$")
    # a duration follows a title, never another duration or nothing
    joins = page & duration & ~duration.shift(1).fill_null(True)
    joined = join_continuations(lines, ~joins).drop("header")
    below = pl.col("text").str.extract(f"\n\\s*({DURATION})\\s*$", 1)
    beside = pl.when(page & pl.col("text").str.contains(f"{RUNNER_SECTION} {DURATION}$")).then(
        pl.col("text").str.extract(f" ({DURATION})$", 1)
    )
    return joined.with_columns(section_duration=pl.coalesce(below, beside)).with_columns(
        text=pl.when(pl.col("section_duration").is_not_null())
        .then(pl.col("text").str.replace(f"(?:\n\\s*| ){DURATION}\\s*$", ""))
        .otherwise(pl.col("text"))
    )


def log_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Each line's body, time, level and section."""
    markers = pl.col("text").str.extract_all(SECTION)
    # a time too large for any clock is no time, not a failed file
    epoch = markers.list.eval(
        pl.element().str.extract(SECTION, 2).cast(pl.Int64, strict=False)
    ).list.max()
    last = markers.list.last()
    # the section a line is in: named by the last start before it, none after its end
    inside = pl.when(last.str.starts_with("section_start:")).then(last.str.extract(SECTION, 3))
    section = pl.when(last.is_not_null()).then(inside.fill_null("")).forward_fill()
    marker_time = pl.from_epoch(epoch, time_unit="s").dt.replace_time_zone("UTC")
    parsed = lines.with_columns(
        body=_bodies(pl.col("text")),
        # a line of markers only is read as the markers it holds
        marker_text=markers.list.join(" "),
        stderr=pl.col("text").str.extract(STREAM_HEADER, 2) == "E",
        _marker_time=marker_time.forward_fill().backward_fill(),
        section=pl.when(section != "").then(section),
    )
    word = pl.col("body").str.extract(r"^([A-Z]+): ", 1)
    return parsed.with_columns(
        _time=pl.coalesce("prefix_ts", "_marker_time"),
        level=pl.coalesce(
            word.replace_strict(LEVEL, default=None, return_dtype=pl.String),
            jobs.git_level(pl.col("body")),
        ),
    )


def job_facts(parsed: pl.LazyFrame, name: str | None) -> pl.LazyFrame:
    """One row about the whole job: times, runner, executor, outcome, and its ``name``."""
    body = pl.col("body")

    def first_match(pattern: str, frame_lines: pl.Expr = body) -> pl.Expr:
        return frame_lines.str.extract(pattern, 1).drop_nulls().first()

    setup = parsed.head(SETUP_LINES).select(
        runner=first_match(RUNNER),
        runner_version=first_match(GREETING),
        runner_executor=first_match(EXECUTOR).str.to_lowercase(),
        image=first_match(IMAGE),
    )
    failure = body.str.extract_groups(FAILED)
    why = failure.struct.field("why").drop_nulls().last()
    whole = parsed.select(
        line=pl.col("line").min(),
        first=pl.col("_time").min(),
        last=pl.col("_time").max(),
        error_lines=(pl.col("level") == "error").sum(),
        warning_lines=(pl.col("level") == "warning").sum(),
        failure=why,
        failure_kind=pl.when(why.is_not_null()).then(
            pl.when(failure.struct.field("system").is_not_null().any())
            .then(pl.lit("infrastructure"))
            .otherwise(pl.lit("job"))
        ),
        status=pl.when(why.str.strip_chars() == "canceled")
        .then(pl.lit("cancelled"))
        .when(why.is_not_null())
        .then(pl.lit("failed"))
        .when((body == SUCCEEDED).any())
        .then(pl.lit("success"))
        .otherwise(pl.lit("running")),
        name=pl.lit(name, pl.String),
        host=pl.col("host").drop_nulls().first(),
    )
    return pl.concat([whole, setup], how="horizontal").filter(pl.col("line").is_not_null())


def job_row(facts: pl.LazyFrame) -> pl.LazyFrame:
    """The job record of a trace, through the same builder as API jobs."""
    fields = jobs.told_by_its_log(
        facts,
        queued_at=pl.lit(None, pl.String),
        started_at=jobs.iso_utc(pl.col("first")),
        stopped_at=jobs.iso_utc(pl.when(pl.col("status") != "running").then(pl.col("last"))),
        executor=pl.col("runner_executor"),
    )
    extra = {
        "derived_from": pl.lit("log"),
        "runner_version": pl.col("runner_version"),
        "runner_executor": pl.col("runner_executor"),
        "image": pl.col("image"),
        "failure_kind": pl.col("failure_kind"),
        "error_lines": pl.col("error_lines"),
        "warning_lines": pl.col("warning_lines"),
    }
    return jobs.job_records(fields, source=SOURCE, extra=extra, detail=pl.col("failure"))


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Every line as a log row, and one job row for the file."""
    parsed = log_lines(page_durations(lines)).collect().lazy()
    name = jobs.log_file_job(parsed.select(pl.col("path").first()).collect().item())
    facts = job_facts(parsed, name).collect().lazy()
    attrs = json_object(
        section=pl.when(pl.col("level").is_not_null()).then(pl.col("section")),
        stream=pl.when(pl.col("stderr")).then(pl.lit("stderr")),
        section_duration=pl.col("section_duration"),
    )
    log_rows = jobs.log_line_records(
        parsed,
        source=SOURCE,
        component=pl.lit(name, pl.String),
        message=pl.when(pl.col("body") != "").then("body").otherwise("marker_text"),
        attrs=attrs,
    )
    return pl.concat([job_row(facts), log_rows], how="vertical")


SAMPLES = (
    Sample(
        text=(
            "\x1b[0KRunning with gitlab-runner 16.3.0 (8ec04662)\x1b[0;m\n"
            "\x1b[0K  on ci-runner-2 zbF4zAjwx, system ID: s_18faf34db374\x1b[0;m\n"
            "section_start:1678816800:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1m"
            'Preparing the "docker" executor\x1b[0;m\x1b[0;m\n'
            "\x1b[0KUsing Docker executor with image python:3.11 ...\x1b[0;m\n"
            "section_end:1678816805:prepare_executor\r\x1b[0Ksection_start:1678816805:step_script"
            '\r\x1b[0K\x1b[0K\x1b[36;1mExecuting "step_script" stage of the job script\x1b[0;m\n'
            "\x1b[32;1m$ pytest\x1b[0;m\n"
            "E   amqp.exceptions.ConnectionForced: (0, 0): (320) CONNECTION_FORCED\n"
            "section_end:1678816890:step_script\r\x1b[0K\x1b[31;1m"
            "ERROR: Job failed: exit code 1\x1b[0;m\n"
        ),
        expect={
            "source": "gitlab-ci",
            "component": "sample-0",
            "host": None,
            "ts": "2023-03-14T18:00:00+00:00",
        },
        rows=9,
    ),
)

registry.register(
    Parser(
        name=NAME,
        description="GitLab CI job logs (traces): log lines plus a derived job row",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=LITERALS,
    )
)
