"""Jenkins console logs: every line as a log row, plus one job row for the build.

What ``.../job/NAME/142/consoleText`` answers (or the build's ``log`` file under
``$JENKINS_HOME/jobs/NAME/builds/142/``): the cause first, then where the build ran, the
program's output, and Jenkins' verdict last::

    Started by user Jane Doe
    [Pipeline] Start of Pipeline
    [Pipeline] node
    Still waiting to schedule task
    Waiting for next available executor on ‘linux’
    Running on agent-7 in /home/jenkins/workspace/team/app-build
    [Pipeline] { (Build)
    ERROR: script returned exit code 1
    Finished: FAILURE

A freestyle build names its agent as ``Building remotely on agent-7 (linux docker) in
workspace /home/jenkins/workspace/app`` (``Building in workspace ...`` on a controller
without agents). Colours (the AnsiColor plugin) are taken out.

**Times.** The Timestamper plugin puts ``[2023-03-14T18:00:01.123Z] `` (UTC, from its
global option for every Pipeline, or its ``timestamps`` step) before each line it sees;
lines written before the step (the cause) have none. Its ``/timestamps/`` page with
``appendLog`` writes the time, two spaces, then the line: in the format asked for
(``time=yyyy-MM-dd'T'HH:mm:ss.SSSX``, read as a time when it has a date and a zone), as a
clock (``time=HH:mm:ss``) or an elapsed time (``elapsed=HH:mm:ss.S``; the default is
elapsed seconds, ``12.345``). A clock or elapsed time has no date: it is taken off the
line and kept in ``attrs.clock`` or ``attrs.elapsed_s``, and the line has no time. Such
a prefix is taken off only where most lines carry it, so that a program's own
``12:00:01`` is not. The console page shows one space after a clock, the
``/timestamps/`` page two: whichever most of the file's clocks have is the separator,
and only it is taken off, so that a line Jenkins wrote with a leading space (the git
plugin's `` > git fetch ...``, Docker's `` ---> 3bd5ba0a82f0``) keeps it. A line
without a time of its own is at the time of the line before it, the first ones at the
first time; a time that cannot be (``2023-02-30``) makes the line unparsed, saying so.

**The job row.** Started at the first line's time, stopped at the last one's once Jenkins
wrote ``Finished: RESULT``, whose result is the status (none yet: running). A Pipeline
whose ``node`` waited for an executor (``Still waiting to schedule task``, ``Waiting for
next available executor``) shows the wait: it was queued at that ``[Pipeline] node``
line and started at the ``Running on`` line after it, and the label it waited on is the
executor; a log without the wait (a freestyle build waits before its log begins) has no
queue delay, not a zero one. The agent is the job's ``runner_name``, never a host.
``ERROR:`` and ``FATAL:`` lines are errors, ``WARNING:`` lines warnings, each with the
Pipeline stage it was in, and so are git's own ``fatal:``, ``error:`` and ``warning:``
lines and a freestyle build step's ``Build step 'Execute shell' marked build as
failure``. The job is named by its file: ``app-build`` #142 for
``jenkins/app-build/142/consoleText`` or ``app-build-142.log``, ``team/app-build`` for
``jobs/team/jobs/app-build/builds/142/log``.
"""

from __future__ import annotations

import re

import polars as pl

from parsers import jenkins, jobs, registry
from parsers.common import json_object
from parsers.registry import Parser, Sample, Score, unnamed

NAME = "jenkins-log"
SOURCE = jenkins.SOURCE

_ISO = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})"
)
#: Timestamper's prefix in the console text (its global option and ``timestamps`` step).
BRACKETED = r"^\[(?P<stamp>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9:]+)?)\] "
#: ``/timestamps/?time=<a format with date and zone>&appendLog``: time, two spaces, line.
QUERIED = rf"^(?P<stamp>{_ISO})  "
#: ``/timestamps/?time=HH:mm:ss&appendLog`` or ``elapsed=HH:mm:ss.S``, and the console
#: page's timestamps as copied from it (one space).
_CLOCK_TIME = r"^(?P<clock>[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)"
CLOCK = _CLOCK_TIME + " {1,2}"
#: The console page's clock and its one space; the ``/timestamps/`` page's and its two.
CLOCK_SHOWN = _CLOCK_TIME + " "
CLOCK_QUERIED = _CLOCK_TIME + "  "
#: ``/timestamps/?appendLog``: elapsed seconds, two spaces, line.
SECONDS = r"^(?P<elapsed>[0-9]+\.[0-9]{1,3})  "
ANSI = r"\x1b\[[0-9;?]*[A-Za-z]"

STARTED = r"^Started by (?P<cause>.+)$"
PIPELINE = r"^\[Pipeline\] "
STAGE_OPEN = r"^\[Pipeline\] \{ \((?P<stage>.+)\)$"
STAGE_CLOSE = "[Pipeline] // stage"
NODE = "[Pipeline] node"
#: Where a Pipeline's ``node`` runs.
RUNNING_ON = r"^Running on (?P<agent>.+?) in (?P<workspace>(?:/|[A-Za-z]:\\).*)$"
#: Where a freestyle build runs; no agent named is the controller's built-in node.
BUILDING_ON = (
    r"^Building (?:remotely on (?P<agent>[^ ]+)(?: \([^)]*\))? |on (?:the built-in node|master) )?"
    r"in workspace (?P<workspace>.+)$"
)
WAITING = (
    r"^(?:Still waiting to schedule task|"
    r"Waiting for next available executor(?: on ‘?(?P<label>[^’]+)’?)?)$"
)
FINISHED = r"^Finished: (?P<result>[A-Z_]+)$"
#: A freestyle build step's verdict on the build, before Jenkins' own.
BUILD_STEP = (
    r"^Build step '[^']+' (?:(?P<failed>marked build as failure)|changed build result to [A-Z_]+)$"
)
LEVEL_WORD = r"^(ERROR|FATAL|WARNING): "
LEVEL = {"ERROR": "error", "FATAL": "error", "WARNING": "warning"}

LITERALS = (
    "[Pipeline] ",
    "Started by ",
    "Finished: ",
    "Building remotely on ",
    " in workspace ",
    "Still waiting to schedule task",
    "Waiting for next available executor",
    "Build step '",
)
#: The log files Jenkins keeps or serves for a build, named by neither job nor number.
BUILD_LOG_NAMES = ("consoleText", "consoleFull", "console", "log")


def _any_of(*patterns: str) -> str:
    """One pattern that matches where any of ``patterns`` does."""
    return "|".join(f"(?:{unnamed(p)})" for p in patterns)


def _bodies(texts: pl.Expr) -> pl.Expr:
    """Lines without colours and a timestamper prefix of any form."""
    stripped = texts.str.replace_all(ANSI, "")
    for pattern in (BRACKETED, QUERIED, CLOCK, SECONDS):
        stripped = stripped.str.replace(pattern, "")
    return stripped


def sniff(sample: list[str]) -> Score:
    """``[Pipeline]`` steps make a console log sure; a first line naming the cause, a
    freestyle build's workspace line, a build step's verdict (``Build step 'Execute
    shell' marked build as failure``) or Jenkins' verdict make it likely."""
    bodies = pl.select(_bodies(pl.lit(pl.Series(sample, dtype=pl.String)))).to_series()
    shown = bodies.filter(bodies.str.strip_chars() != "")
    if shown.len() == 0:
        return Score(0.0, "no lines")
    if (
        shown.str.contains(PIPELINE).any()
        and shown.str.contains(_any_of(STARTED, RUNNING_ON, WAITING, FINISHED)).any()
    ):
        return Score(0.9, "Jenkins Pipeline steps ([Pipeline] ...)")
    if shown.str.contains(STARTED).head(1).all():
        return Score(0.8, "a Jenkins build's cause on its first line (Started by ...)")
    if shown.str.contains(_any_of(BUILDING_ON, FINISHED, BUILD_STEP)).any():
        return Score(
            0.6, "a Jenkins build's workspace line, a build step's verdict or Jenkins' own"
        )
    return Score(0.0, "no Jenkins [Pipeline] steps, cause, workspace line or verdict")


def prefix_forms(lines: pl.LazyFrame) -> list[str]:
    """The timestamper prefixes taken off the lines of this file: the dated ones
    always, a clock or elapsed one only where most lines carry it. The console page
    shows Pipeline's own step lines (``[Pipeline] sh``) without a time, so that most of
    a Pipeline's lines may carry none: the share counts the other lines. A clock is
    followed by the one space of the console page or the two of the ``/timestamps/``
    page, whichever most clocks have (a line may begin with a space of its own)."""
    text = pl.col("text")
    output = text.filter(~text.str.replace_all(ANSI, "").str.contains(PIPELINE))
    clocked = output.filter(output.str.contains(CLOCK))
    shares = lines.select(
        clock=output.str.contains(CLOCK).mean(),
        seconds=output.str.contains(SECONDS).mean(),
        two_spaces=clocked.str.contains(CLOCK_QUERIED).mean(),
    ).collect()
    forms = [BRACKETED, QUERIED]
    if (shares["clock"].item() or 0.0) >= 0.5:
        two = (shares["two_spaces"].item() or 0.0) >= 0.5
        forms.append(CLOCK_QUERIED if two else CLOCK_SHOWN)
    if (shares["seconds"].item() or 0.0) >= 0.5:
        forms.append(SECONDS)
    return forms


def log_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Each line's body, time (its own, else the one before it), level and stage."""
    forms = prefix_forms(lines)
    plain = pl.col("text").str.replace_all(ANSI, "")
    stamp = pl.coalesce(plain.str.extract(BRACKETED, 1), plain.str.extract(QUERIED, 1))
    body = plain
    for pattern in forms:
        body = body.str.replace(pattern, "")
    own = jobs.utc_time(stamp.str.replace(r"([+-][0-9]{2})([0-9]{2})$", "$1:$2"))
    parsed = lines.with_columns(
        body=body,
        _stamp=stamp,
        _own=own,
        clock=(
            plain.str.extract(CLOCK, 1)
            if {CLOCK_SHOWN, CLOCK_QUERIED} & set(forms)
            else pl.lit(None, pl.String)
        ),
        elapsed_s=(
            plain.str.extract(SECONDS, 1).cast(pl.Float64, strict=False)
            if SECONDS in forms
            else pl.lit(None, pl.Float64)
        ),
    )
    word = pl.col("body").str.extract(LEVEL_WORD, 1)
    stage = (
        pl.when(pl.col("body") == STAGE_CLOSE)
        .then(pl.lit(""))
        .otherwise(pl.col("body").str.extract(STAGE_OPEN, 1))
        .forward_fill()
    )
    return parsed.with_columns(
        _time=pl.coalesce("_own", "prefix_ts").forward_fill().backward_fill(),
        level=pl.coalesce(
            word.replace_strict(LEVEL, default=None, return_dtype=pl.String),
            jobs.git_level(pl.col("body")),
            pl.when(pl.col("body").str.extract(BUILD_STEP, 1).is_not_null()).then(pl.lit("error")),
        ),
        stage=pl.when(stage != "").then(stage),
        bad_time=pl.when(pl.col("_stamp").is_not_null() & pl.col("_own").is_null()).then(
            pl.format("a timestamper time that cannot be read: '{}'", pl.col("_stamp"))
        ),
    )


def build_of_file(path: str | None) -> tuple[str | None, int | None]:
    """The job and build number a console log is of, by its path: the folders before
    the number for a file Jenkins names (``consoleText``, ``log``), the ``job``/``jobs``
    folders' names in Jenkins' layouts; else the file's stem, less a trailing number.

    >>> build_of_file("jenkins/app-build/142/consoleText")
    ('app-build', 142)
    >>> build_of_file("/var/jenkins_home/jobs/team/jobs/app-build/builds/142/log")
    ('team/app-build', 142)
    >>> build_of_file("logs/app-build-142.log.gz"), build_of_file("deploy.txt")
    (('app-build', 142), ('deploy', None))
    """
    if not path:
        return None, None
    parts = [p for p in re.split(r"[/\\]", path) if p]
    stem = jobs.log_file_job(path) or ""
    if stem in BUILD_LOG_NAMES and len(parts) >= 3 and parts[-2].isdigit():
        folders = parts[:-2]
        if folders and folders[-1] == "builds":
            folders = folders[:-1]
        marked = [folders[i + 1] for i, p in enumerate(folders[:-1]) if p in ("job", "jobs")]
        return ("/".join(marked) or folders[-1] if folders else None), int(parts[-2])
    numbered = re.fullmatch(r"(.+?)[-_#.]([0-9]+)", stem)
    if numbered:
        return numbered.group(1), int(numbered.group(2))
    return stem or None, None


def job_facts(parsed: pl.LazyFrame, name: str | None, number: int | None) -> pl.LazyFrame:
    """One row about the whole build: times, cause, agent, wait, verdict, name."""
    body = pl.col("body")
    agent = body.str.extract_groups(RUNNING_ON)
    freestyle = body.str.extract_groups(BUILDING_ON)
    is_agent_line = body.str.contains(_any_of(RUNNING_ON, BUILDING_ON))
    is_wait = body.str.contains(WAITING)
    first_wait = pl.col("line").filter(is_wait).min()
    # the wait began when its node step asked for an executor
    node_time = pl.when(body == NODE).then(pl.col("_time")).forward_fill()
    waited_from = pl.coalesce(node_time, pl.col("_time")).filter(is_wait).first()
    took = is_agent_line & (pl.col("line") > first_wait).fill_null(True)
    result = body.str.extract(FINISHED, 1).drop_nulls().last()
    is_error = pl.col("level") == "error"
    waited = is_wait.any()
    started = pl.col("_time").filter(took).first()
    return parsed.select(
        line=pl.col("line").min(),
        first=pl.col("_time").min(),
        last=pl.col("_time").max(),
        waited_from=waited_from,
        started=pl.when(waited).then(started).otherwise(pl.col("_time").min()),
        label=body.str.extract(WAITING, 1).drop_nulls().first(),
        runner=pl.coalesce(
            agent.struct.field("agent"),
            freestyle.struct.field("agent"),
            pl.when(body.str.contains(BUILDING_ON)).then(pl.lit("built-in")),
        )
        .filter(took)
        .first(),
        workspace=pl.coalesce(agent.struct.field("workspace"), freestyle.struct.field("workspace"))
        .filter(took)
        .first(),
        cause=body.str.extract(STARTED, 1).drop_nulls().first(),
        result=result,
        took=took.any(),
        waited=waited,
        error_lines=is_error.sum(),
        warning_lines=(pl.col("level") == "warning").sum(),
        first_error=body.filter(is_error).first().str.slice(0, 200),
        failed_stage=pl.col("stage").filter(is_error).first(),
        host=pl.col("host").drop_nulls().first(),
        name=pl.lit(name, pl.String),
        build_number=pl.lit(number, pl.Int64),
    ).filter(pl.col("line").is_not_null())


def job_row(facts: pl.LazyFrame) -> pl.LazyFrame:
    """The job record of a console log, through the same builder as API builds."""
    never_ran = pl.col("waited") & ~pl.col("took")
    status = (
        pl.when(pl.col("result").is_not_null())
        .then(jobs.normalised_status(pl.col("result"), jenkins.STATUS))
        .when(never_ran)
        .then(pl.lit("queued"))
        .otherwise(pl.lit("running"))
    )
    fields = jobs.told_by_its_log(
        facts,
        queued_at=jobs.iso_utc(pl.when(pl.col("waited")).then(pl.col("waited_from"))),
        started_at=jobs.iso_utc(pl.col("started")),
        stopped_at=jobs.iso_utc(pl.when(pl.col("result").is_not_null()).then(pl.col("last"))),
        executor=pl.col("label"),
    ).with_columns(
        noun=pl.lit("build"),
        number="build_number",
        status=status,
        raw_status=pl.col("result"),
        note=jobs.status_note(pl.col("result"), jenkins.STATUS, "Jenkins"),
        job_id=pl.when(pl.col("build_number").is_not_null()).then(
            pl.format("{}#{}", pl.col("name"), pl.col("build_number"))
        ),
    )
    extra = {
        "derived_from": pl.lit("log"),
        "cause": pl.col("cause"),
        "workspace": pl.col("workspace"),
        "error_lines": pl.col("error_lines"),
        "warning_lines": pl.col("warning_lines"),
        "first_error": pl.col("first_error"),
        "failed_stage": pl.col("failed_stage"),
    }
    return jobs.job_records(fields, source=SOURCE, extra=extra)


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Every line as a log row, and one job row for the file."""
    parsed = log_lines(lines).collect().lazy()
    name, number = build_of_file(parsed.select(pl.col("path").first()).collect().item())
    facts = job_facts(parsed, name, number).collect().lazy()
    attrs = json_object(
        stage=pl.when(pl.col("level").is_not_null()).then(pl.col("stage")),
        clock=pl.col("clock"),
        elapsed_s=pl.col("elapsed_s"),
    )
    log_rows = jobs.log_line_records(
        parsed,
        source=SOURCE,
        component=pl.lit(name, pl.String),
        message="body",
        attrs=attrs,
        unparsed=pl.col("bad_time"),
    )
    return pl.concat([job_row(facts), log_rows], how="vertical")


SAMPLES = (
    Sample(
        text="""Started by user Jane Doe
[Pipeline] Start of Pipeline
[2023-03-14T18:00:02.031Z] [Pipeline] node
[2023-03-14T18:00:17.044Z] Still waiting to schedule task
[2023-03-14T18:00:17.045Z] Waiting for next available executor on ‘linux’
[2023-03-14T18:02:41.310Z] Running on agent-7 in /home/jenkins/workspace/team/app-build
[2023-03-14T18:02:41.322Z] [Pipeline] {
[2023-03-14T18:02:41.350Z] [Pipeline] stage
[2023-03-14T18:02:41.351Z] [Pipeline] { (Build)
[2023-03-14T18:02:41.420Z] [Pipeline] sh
[2023-03-14T18:02:41.733Z] + make test
[2023-03-14T18:03:58.907Z] dial tcp 10.96.0.10:53: i/o timeout
[2023-03-14T18:03:59.012Z] [Pipeline] }
[2023-03-14T18:03:59.020Z] [Pipeline] // stage
[2023-03-14T18:03:59.031Z] [Pipeline] }
[2023-03-14T18:03:59.040Z] [Pipeline] // node
[2023-03-14T18:03:59.052Z] [Pipeline] End of Pipeline
[2023-03-14T18:03:59.060Z] ERROR: script returned exit code 2
[2023-03-14T18:03:59.071Z] Finished: FAILURE
""",
        expect={
            "source": "jenkins",
            "component": "sample",
            "host": None,
            "ts": "2023-03-14T18:00:02.031000+00:00",
        },
        rows=20,
    ),
    Sample(
        text="""Started by an SCM change
Running as SYSTEM
Building remotely on agent-3 (linux docker) in workspace /home/jenkins/workspace/deploy
The recommended git tool is: NONE
 > git rev-parse --resolve-git-dir /home/jenkins/workspace/deploy/.git # timeout=10
[deploy] $ /bin/sh -xe /tmp/jenkins5912384406210.sh
+ ./deploy.sh
Recording test results
Build step 'Publish JUnit test result report' changed build result to UNSTABLE
Finished: UNSTABLE
""",
        expect={"source": "jenkins", "component": "sample", "host": None, "ts": None},
        rows=11,
    ),
)

registry.register(
    Parser(
        name=NAME,
        description="Jenkins console logs (consoleText): log lines plus a derived job row",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=LITERALS,
    )
)
