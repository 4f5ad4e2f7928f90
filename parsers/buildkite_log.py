"""Buildkite job logs: every timed line as a log row, plus one job row for the file.

What a job's "Download log" button or ``GET .../builds/{n}/jobs/{id}/log`` (raw, ``.txt``)
gives: the agent's output, each line after the time the agent read it, in epoch
milliseconds, as an APC escape (``ESC _bk;t=<ms> BEL``), with the colours the programs
and the agent wrote::

    \\e_bk;t=1678816800123\\a~~~ Preparing working directory
    \\e_bk;t=1678816800124\\a\\e[90m$\\e[0m cd /var/lib/buildkite-agent/builds/agent-7/acme/api
    \\e_bk;t=1678816861907\\a\\e[31m🚨 Error: The command exited with status 2\\e[0m
    \\e_bk;t=1678816861907\\a^^^ +++

Text whose escapes were taken out (a plain download, a copy) keeps ``_bk;t=<ms>`` and
the bare colour codes (``[31m``); both forms are read. A line without a time of its own
is more of the line above (a program's multi-line output): it joins that row. A log with
no time at all (the times cut off) is read line by line, its rows without a time.

**Sections.** ``--- name`` (collapsed), ``+++ name`` (expanded) and ``~~~ name`` (the
agent's own: ``~~~ Preparing working directory``, ``~~~ Running commands``, ``~~~ Running
global environment hook``) name the section the lines after them are in; ``^^^ +++``
(expand the section above, what the agent writes after an error) names none.

**Levels.** The agent's ``🚨 Error: ...`` lines are errors and its ``⚠️ Warning: ...``
lines (a retried checkout) warnings, as are ``buildkite-agent`` subcommands' own
``ERROR``/``FATAL`` and ``WARN`` lines (``2023-10-17 13:30:28 WARN   Pipeline upload not
yet applied``); what the job's programs write has no level.

**The job row.** Started at the first line's time, stopped at the last one's: a log does
not say when the job was queued, so its queue delay is unknown (the REST API's
``runnable_at`` gives it). Failed if the agent wrote an error (``The command exited with
status N``: the exit status is shown beside the status, as the API's job is; else the
error itself), cancelled if it wrote ``Received cancellation signal`` and the command was
then interrupted, else success: the agent writes nothing when a job passes. The agent is
the job's ``runner_name`` where the log's checkout folder names it (the default
``.../builds/<agent>/<org>/<pipeline>``), never a host; the job is named by its file.
"""

from __future__ import annotations

import polars as pl

from parsers import buildkite, jobs, registry
from parsers.common import LINE_SCHEMA, join_continuations, json_object
from parsers.registry import Parser, Sample, Score

NAME = "buildkite-log"
SOURCE = buildkite.NAME

#: The agent's time of a line: ``ESC _bk;t=<ms> BEL``; without the escapes (a plain
#: copy) the time is the 13 digits of any epoch millisecond from 2001 to 2286.
STAMP = r"\x1b?_bk;t=(?:([0-9]+)\x07|([0-9]{13}))"
STAMP_AT_START = rf"^{STAMP}"
ANSI = r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
#: Colour codes whose escape was taken out with the time's, in a plain copy.
BARE_SGR = r"\[[0-9;]*m"
#: The latest time a line may have: a larger one is no time (it leaves the line to the
#: line above), not a failed file.
LATEST_MS = 253402300799999
SECTION = r"^(?P<mark>---|\+\+\+|~~~) (?P<name>.*)$"
ERROR = r"^🚨 Error: (?P<error>.*)$"
WARNING = r"^⚠\x{FE0F}? Warning: "
#: A ``buildkite-agent`` subcommand's own log line, in the job's output.
AGENT_CLI = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} (?P<word>[A-Z]+) "
CLI_LEVEL = {"ERROR": "error", "FATAL": "error", "WARN": "warning"}
EXITED = r"^The command exited with status (?P<exit>-?[0-9]+)$"
INTERRUPTED = "The command was interrupted by a signal"
CANCELLING = "Received cancellation signal"
#: The agent's own sections, which make a log without times the agent's.
AGENT_SECTION = (
    r"^~~~ (?:Preparing (?:working directory|build (?:folder|directory))|Setting up plugins"
    r"|Running (?:commands|script|batch script|(?:global|local|plugin [^ ]+) [a-z-]+ hook)"
    r"|Uploading artifacts)$"
)
#: Where the agent checks a job out by default: ``<build-path>/<agent>/<org>/<pipeline>``.
CHECKOUT = r"^\$ cd (?:.*/)?builds/(?P<agent>[^/ ]+)/(?P<org>[^/ ]+)/(?P<pipeline>[^/ ]+)$"
#: The agent prepares the checkout in a job log's first lines.
SETUP_LINES = 200

LITERALS = ("_bk;t=", "~~~ ", "🚨 Error: ")


def _bodies(texts: pl.Expr) -> pl.Expr:
    """Lines without times, colours, and what a carriage return wrote over."""
    plain = texts.str.replace_all(STAMP, "").str.replace_all(ANSI, "")
    # literal searches first: the patterns run only on the lines that need them
    copied = texts.str.contains("_bk;t=", literal=True) & ~texts.str.contains(
        "\x1b_bk;t=", literal=True
    )
    plain = pl.when(copied).then(plain.str.replace_all(BARE_SGR, "")).otherwise(plain)
    overwritten = plain.str.replace_all(r"(?m)^[^\n]*\r([^\n\r])", "$1").str.strip_suffix("\r")
    return pl.when(texts.str.contains("\r", literal=True)).then(overwritten).otherwise(plain)


def sniff(sample: list[str]) -> Score:
    """The agent's times at line starts make a job log sure; the agent's own sections
    (``~~~ Running commands``) or errors (``🚨 Error: ...``, what a copy of a failed
    job's page ends with) without them likely."""
    texts = pl.Series(sample, dtype=pl.String)
    if texts.str.contains(STAMP_AT_START).any():
        return Score(0.95, "the Buildkite agent's line times (_bk;t=...)")
    bodies = pl.select(_bodies(pl.lit(texts))).to_series()
    if bodies.str.contains(AGENT_SECTION).any():
        return Score(0.7, "the Buildkite agent's sections (~~~ Running commands)")
    if bodies.str.contains(ERROR).any():
        return Score(0.6, "the Buildkite agent's errors (🚨 Error: ...)")
    return Score(0.0, "no Buildkite agent line times, sections or errors")


def log_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Each row's body, time (its own, else the row's before it), section and level."""
    stamp = pl.col("text").str.extract_groups(STAMP_AT_START)
    ms = pl.coalesce(stamp.struct.field("1"), stamp.struct.field("2")).cast(pl.Int64, strict=False)
    own = pl.from_epoch(
        pl.when(ms.is_between(0, LATEST_MS)).then(ms), time_unit="ms"
    ).dt.replace_time_zone("UTC")
    parsed = lines.with_columns(
        body=_bodies(pl.col("text")),
        _own=own.cast(pl.Datetime("us", "UTC")),
    )
    body = pl.col("body")
    head = (
        pl.when(body.str.contains("\n", literal=True))
        .then(body.str.extract(r"^([^\n]*)", 1))
        .otherwise(body)
    )
    section = head.str.extract_groups(SECTION)
    name = section.struct.field("name").str.strip_chars()
    cli = head.str.extract(AGENT_CLI, 1).replace_strict(
        CLI_LEVEL, default=None, return_dtype=pl.String
    )
    return parsed.with_columns(
        _time=pl.coalesce("_own", "prefix_ts").forward_fill().backward_fill(),
        section=pl.when(section.struct.field("mark").is_not_null())
        .then(name)
        .forward_fill()
        .replace("", None),
        error=head.str.extract(ERROR, 1),
        level=pl.when(head.str.contains(ERROR))
        .then(pl.lit("error"))
        .when(head.str.contains(WARNING))
        .then(pl.lit("warning"))
        .otherwise(cli),
    )


def job_facts(parsed: pl.LazyFrame, name: str | None) -> pl.LazyFrame:
    """One row about the whole job: times, agent, pipeline, outcome, and its ``name``."""
    body = pl.col("body")
    error = pl.col("error")
    checkout = (
        parsed.head(SETUP_LINES)
        .select(found=body.str.extract_groups(CHECKOUT))
        .select(
            runner=pl.col("found").struct.field("agent").drop_nulls().first(),
            pipeline=pl.format(
                "{}/{}",
                pl.col("found").struct.field("org"),
                pl.col("found").struct.field("pipeline"),
            )
            .drop_nulls()
            .first(),
        )
    )
    exit_status = error.str.extract(EXITED, 1).cast(pl.Int64, strict=False).drop_nulls().last()
    interrupted = error.str.starts_with(INTERRUPTED).any()
    cancelling = body.str.contains(CANCELLING, literal=True).any()
    first_error = error.drop_nulls().first()
    whole = parsed.select(
        line=pl.col("line").min(),
        first=pl.col("_time").min(),
        last=pl.col("_time").max(),
        error_lines=(pl.col("level") == "error").sum(),
        warning_lines=(pl.col("level") == "warning").sum(),
        first_error=first_error.str.slice(0, 200),
        failed_section=pl.col("section").filter(error.is_not_null()).first(),
        exit_status=exit_status,
        failure=pl.when(exit_status.is_not_null())
        .then(pl.format("exit {}", exit_status))
        .when(interrupted)
        .then(pl.lit("interrupted by a signal"))
        .otherwise(first_error.str.slice(0, 120)),
        status=pl.when(interrupted & cancelling)
        .then(pl.lit("cancelled"))
        .when(first_error.is_not_null())
        .then(pl.lit("failed"))
        .otherwise(pl.lit("success")),
        name=pl.lit(name, pl.String),
        host=pl.col("host").drop_nulls().first(),
    )
    return pl.concat([whole, checkout], how="horizontal").filter(pl.col("line").is_not_null())


def job_row(facts: pl.LazyFrame) -> pl.LazyFrame:
    """The job record of a log, through the same builder as the REST API's jobs."""
    fields = jobs.told_by_its_log(
        facts,
        queued_at=pl.lit(None, pl.String),
        started_at=jobs.iso_utc(pl.col("first")),
        stopped_at=jobs.iso_utc(pl.col("last")),
        executor=pl.lit(None, pl.String),
    )
    basis = (
        pl.when(pl.col("status") == "success")
        .then(pl.lit("no 🚨 Error line from the agent"))
        .otherwise(pl.lit("the agent's 🚨 Error line"))
    )
    extra = {
        "derived_from": pl.lit("log"),
        "status_basis": basis,
        "pipeline": pl.col("pipeline"),
        "exit_status": pl.col("exit_status"),
        "error_lines": pl.col("error_lines"),
        "warning_lines": pl.col("warning_lines"),
        "first_error": pl.col("first_error"),
        "failed_section": pl.col("failed_section"),
    }
    return jobs.job_records(
        fields,
        source=SOURCE,
        extra=extra,
        detail=pl.when(pl.col("status") != "success").then(pl.col("failure")),
    )


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Every timed line as a log row (the untimed lines below it joined to it), and one
    job row for the file."""
    timed = pl.col("text").str.contains(STAMP_AT_START)
    path, any_timed = lines.select(pl.col("path").first(), timed.any()).collect().row(0)
    # lines before the first timed one stay rows of their own
    rows = join_continuations(lines, timed).select(*LINE_SCHEMA) if any_timed else lines
    parsed = log_lines(rows).collect().lazy()
    name = jobs.log_file_job(path)
    facts = job_facts(parsed, name).collect().lazy()
    attrs = json_object(section=pl.when(pl.col("level").is_not_null()).then(pl.col("section")))
    log_rows = jobs.log_line_records(
        parsed,
        source=SOURCE,
        component=pl.lit(name, pl.String),
        message="body",
        attrs=attrs,
    )
    return pl.concat([job_row(facts), log_rows], how="vertical")


def _stamped(start_ms: int, lines: list[tuple[int, str]]) -> str:
    """Lines as the agent writes them, each after its time (``start_ms`` plus its offset)."""
    return "".join(f"\x1b_bk;t={start_ms + at}\x07{text}\n" for at, text in lines)


SAMPLES = (
    Sample(
        text=_stamped(
            1678816800123,
            [
                (0, "~~~ Running global environment hook"),
                (1, "\x1b[90m$\x1b[0m /etc/buildkite-agent/hooks/environment"),
                (40, "~~~ Preparing working directory"),
                (41, "\x1b[90m$\x1b[0m cd /var/lib/buildkite-agent/builds/agent-7/acme/api"),
                (1890, "~~~ Running commands"),
                (1891, "\x1b[90m$\x1b[0m make test"),
                (61202, "--- :rabbit: integration tests"),
                (118_884, "dial tcp 10.96.0.10:53: i/o timeout"),
                (119_001, "\x1b[31m🚨 Error: The command exited with status 2\x1b[0m"),
                (119_001, "^^^ +++"),
            ],
        ),
        expect={
            "source": "buildkite",
            "component": "sample-0",
            "host": None,
            "ts": "2023-03-14T18:00:00.123000+00:00",
        },
        rows=11,
    ),
)

registry.register(
    Parser(
        name=NAME,
        description="Buildkite job logs (Download log, jobs/{id}/log): log lines plus a job row",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=LITERALS,
    )
)
