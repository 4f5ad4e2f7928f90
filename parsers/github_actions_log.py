"""GitHub Actions raw job logs: every line as a log row, plus one job row for the file.

A job's log (``1_build.txt`` in the run's log archive, or ``GET .../jobs/{id}/logs``) has
one line per output line, each after a UTC time with seven fractional digits::

    2023-03-14T18:00:01.1234567Z ##[group]Run make test

Those times look like ``kubectl logs --timestamps`` to the loader, which strips them
before this parser runs and keeps them as ``prefix_ts``; a line it did not strip (the
first, which starts with a byte order mark) still carries its own, which is read here.
``##[error]``, ``##[warning]``, ``##[notice]`` and ``##[debug]`` give the level. Text
copied from a job's web page has no times, and may show those markers as the page does
(``Error: Process completed with exit code 1.``): both are read, the rows without a time.
In a log with the runner's times, a line ``Error: ...`` is what a program wrote.

The run's log archive also holds each step's log again, in a folder named after the job
(``build/2_Run make test.txt`` beside ``1_build.txt``): its lines are counted as unparsed,
naming the job's log, so that no job and no error is counted twice.

``gh run view --log`` (and ``--log-failed``) writes the lines of every job of a run, each
after its job's and its step's names and a tab each::

    build\tRun make test\t2023-03-14T18:08:59.0027346Z dial tcp: ... i/o timeout

Those names are read off the line (the step's the one the line is in); each job of such
a file is a job row of its own.

The job row is derived from the log: queued at its first line where the log shows the
wait ("Requested labels", "Waiting for a runner to pick up this job..."), started when a
runner took it ("Job is about to start running on ...", else at the first line),
stopped at its last line; a log that opens with the runner's own lines (``Current runner
version``, as job logs do now) does not say when the job was queued, so its queue delay
is unknown, not zero; cancelled if the runner wrote
"The operation was canceled.", failed if it wrote any ``##[error]``, else success. The
job's name comes from the file name (``1_build.txt``), else the file's stem.

The runner the log names is where the job ran, not a host of the cluster: it is the job
row's ``runner_name`` and is said in its message. The rows' ``host`` is what a wrapper or
the file's path names (the node whose pod log held a self-hosted runner's output), else
none.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import PurePath

import polars as pl

from parsers import jobs, registry
from parsers.common import json_object, local_path, records
from parsers.registry import Parser, Sample, Score

NAME = "github-actions-log"
SOURCE = "github-actions"

#: A runner's own time: UTC, up to seven fractional digits, after an optional BOM.
OWN_TIME = (
    r"^\x{FEFF}?(?P<own_ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z)"
    r"(?: |$)"
)
#: The runner's time as it always writes it (seven fractional digits), trusted even on a
#: line that had a runtime prefix of its own (a CRI log of a runner's output).
RUNNER_TIME = (
    r"^\x{FEFF}?(?P<own_ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{7}Z)(?: |$)"
)
#: ``gh run view --log``: the job's and the step's names before the runner's time.
GH_CLI = (
    r"^(?P<gh_job>[^\t]+)\t(?P<gh_step>[^\t]*)\t"
    r"(?P<gh_text>\x{FEFF}?[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9:.]+Z(?: .*)?)$"
)
MARKER = r"^##\[(?P<marker>[a-z]+)\](?P<rest>.*)$"
MARKER_LITERAL = "##["
#: How the web UI shows ``##[error]`` and its kin, in text copied from a job's page.
UI_MARKER = r"^(?P<ui>Error|Warning|Notice): "
#: The line a failed step always ends with, as the web UI shows it.
UI_FAILED_STEP = r"^(?:##\[error\]|Error: )Process completed with exit code [0-9]+\.$"
UI_FAILED_LITERAL = "Process completed with exit code "
#: Lines GitHub writes into a job's log while the job waits for a runner.
QUEUED_LINES = (
    "Requested labels: ",
    "Requested runner group: ",
    "Job defined at: ",
    "Waiting for a runner to pick up this job",
)
RUNNER_LINES = (
    *QUEUED_LINES,
    "Job is about to start running on ",
    "Current runner version: ",
    "Runner name: ",
)
PICKED_UP = (
    r"^Job is about to start running on the (?:hosted )?runner: "
    r"(?P<runner>.+) \((?P<where>[a-z]+)\)$"
)
RUNNER_NAME = r"^Runner name: '(?P<runner>[^']*)'$"
DEFINED_AT = r"^Job defined at: (?P<repository>[^/]+/[^/]+)/(?P<workflow_file>[^@]+)@(?P<ref>.+)$"
CANCELED = "##[error]The operation was canceled."
#: The runner describes itself (labels, name, image) in a job log's first lines.
SETUP_LINES = 300

LEVEL = {"error": "error", "warning": "warning", "notice": "info", "debug": "debug"}


def _bodies(sample: list[str]) -> pl.Series:
    """The sample's lines without ``gh``'s job and step names, a BOM and the runner's
    time, had the loader not cut it."""
    lines = pl.Series(sample, dtype=pl.String).str.replace(GH_CLI, "${gh_text}")
    return lines.str.replace(OWN_TIME, "").str.strip_prefix("\ufeff")


def sniff(sample: list[str]) -> Score:
    """Runner set-up lines make a job log sure; ``##[group]`` markers make it likely."""
    bodies = _bodies(sample)
    runner = bodies.str.starts_with(RUNNER_LINES[0])
    for literal in RUNNER_LINES[1:]:
        runner = runner | bodies.str.starts_with(literal)
    if runner.any():
        return Score(0.95, "GitHub Actions runner set-up lines")
    markers = bodies.str.extract(MARKER, 1).drop_nulls()
    if markers.is_in(["group", "endgroup"]).any():
        return Score(0.7, "GitHub Actions ##[group] markers")
    if markers.is_in(["error", "warning", "notice", "debug", "command"]).any():
        return Score(0.55, "GitHub Actions ##[error]/##[warning] markers")
    if bodies.str.contains(UI_FAILED_STEP).any():
        return Score(0.55, "a step's 'Process completed with exit code', as the web UI shows it")
    return Score(0.0, "no GitHub Actions runner lines or ##[...] markers")


def log_lines(lines: pl.LazyFrame, job_name: str | None) -> pl.LazyFrame:
    """Each line's job (``gh``'s name for it, else ``job_name``), time (its own, else the
    prefix's), body, marker, level and step."""
    gh = pl.col("text").str.extract_groups(GH_CLI)
    lines = lines.with_columns(
        job=pl.coalesce(gh.struct.field("gh_job"), pl.lit(job_name, pl.String)),
        gh_step=gh.struct.field("gh_step"),
        text=pl.coalesce(gh.struct.field("gh_text"), pl.col("text")),
    )
    own_text = (
        pl.when(pl.col("prefix_ts").is_null())
        .then(pl.col("text").str.extract(OWN_TIME, 1))
        .otherwise(pl.col("text").str.extract(RUNNER_TIME, 1))
    )
    own = own_text.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    body = (
        pl.when(own_text.is_not_null())
        .then(pl.col("text").str.replace(OWN_TIME, ""))
        .otherwise(pl.col("text"))
        .str.strip_prefix("\ufeff")
    )
    parsed = lines.with_columns(_time=pl.coalesce(own, pl.col("prefix_ts")), body=body)
    # only text copied from the web page (no times) shows markers so; in a log with the
    # runner's times a line "Error: ..." is a program's own output
    ui_word = pl.when(pl.col("_time").is_null()).then(pl.col("body").str.extract(UI_MARKER, 1))
    parsed = parsed.with_columns(
        marker=pl.coalesce(pl.col("body").str.extract(MARKER, 1), ui_word.str.to_lowercase()),
        rest=pl.coalesce(
            pl.col("body").str.extract(MARKER, 2),
            pl.when(ui_word.is_not_null()).then(pl.col("body").str.replace(UI_MARKER, "")),
        ),
    )
    return parsed.with_columns(
        level=pl.col("marker").replace_strict(LEVEL, default=None, return_dtype=pl.String),
        step=pl.coalesce(
            "gh_step",
            pl.when((pl.col("marker") == "group") & pl.col("rest").str.starts_with("Run "))
            .then(pl.col("rest"))
            .forward_fill()
            .over("job"),
        ),
    )


def job_facts(parsed: pl.LazyFrame) -> pl.LazyFrame:
    """One row about each job: times, runner, labels, outcome, name.

    What the runner says about itself is read from a job's first :data:`SETUP_LINES`
    lines only, where it writes it, so that a step's output cannot pass for it.
    """
    body = pl.col("body")
    picked = body.str.extract_groups(PICKED_UP)
    defined = body.str.extract_groups(DEFINED_AT)

    def first_match(pattern: str) -> pl.Expr:
        return body.str.extract(pattern, 1).drop_nulls().first()

    opening = parsed.filter(pl.int_range(pl.len()).over("job") < SETUP_LINES)
    setup = opening.group_by("job", maintain_order=True).agg(
        picked_up=pl.col("_time").filter(picked.struct.field("runner").is_not_null()).first(),
        waited=body.str.starts_with("Waiting for a runner").any(),
        queue_shown=pl.any_horizontal(body.str.starts_with(line) for line in QUEUED_LINES).any(),
        runner=pl.coalesce(
            first_match(RUNNER_NAME), picked.struct.field("runner").drop_nulls().first()
        ),
        where=picked.struct.field("where").drop_nulls().first(),
        labels=first_match(r"^Requested labels: (.+)$").str.split(", "),
        image=first_match(r"^Image: (.+)$"),
        runner_group=pl.coalesce(
            first_match(r"^Requested runner group: (.+)$"),
            first_match(r"^Runner group name: '([^']*)'$"),
        ),
        runner_version=first_match(r"^Current runner version: '([^']*)'$"),
        repository=defined.struct.field("repository").drop_nulls().first(),
        workflow_file=defined.struct.field("workflow_file").drop_nulls().first(),
        ref=defined.struct.field("ref").drop_nulls().first(),
    )
    errors = (pl.col("marker") == "error").sum()
    whole = parsed.group_by("job", maintain_order=True).agg(
        line=pl.col("line").min(),
        first=pl.col("_time").min(),
        last=pl.col("_time").max(),
        error_lines=errors,
        warning_lines=(pl.col("marker") == "warning").sum(),
        first_error=pl.col("rest").filter(pl.col("marker") == "error").first().str.slice(0, 200),
        failed_step=pl.col("step").filter(pl.col("marker") == "error").first(),
        status=pl.when((body == CANCELED).any())
        .then(pl.lit("cancelled"))
        .when(errors > 0)
        .then(pl.lit("failed"))
        .otherwise(pl.lit("success")),
        lines_host=pl.col("host").drop_nulls().first(),
    )
    self_hosted = pl.col("where").is_in(["repository", "organization", "enterprise"])
    return (
        whole.join(setup, on="job", how="left", maintain_order="left")
        .with_columns(
            executor=pl.coalesce(
                jobs.executor_from_labels(pl.coalesce("labels", pl.concat_list("image"))),
                pl.when(self_hosted).then(pl.lit("self-hosted")),
            ),
            host="lines_host",
            name="job",
        )
        .filter(pl.col("line").is_not_null())
    )


def job_row(facts: pl.LazyFrame) -> pl.LazyFrame:
    """The job record of a log, through the same builder as API jobs."""
    basis = (
        pl.when(pl.col("status") == "cancelled")
        .then(pl.lit("the runner wrote 'The operation was canceled.'"))
        .otherwise(pl.format("{} ##[error] lines", pl.col("error_lines")))
    )
    fields = jobs.told_by_its_log(
        facts,
        # a log that opens when the job started says nothing of how long it waited
        queued_at=jobs.iso_utc(pl.when(pl.col("queue_shown")).then(pl.col("first"))),
        # a log that waited for a runner and names none that picked it up never started
        started_at=jobs.iso_utc(
            pl.coalesce("picked_up", pl.when(~pl.col("waited")).then(pl.col("first")))
        ),
        stopped_at=jobs.iso_utc(pl.col("last")),
        basis=basis,
    )
    extra = {
        "derived_from": pl.lit("log"),
        "status_basis": pl.col("basis"),
        "runner_group": pl.col("runner_group"),
        "runner_version": pl.col("runner_version"),
        "labels": pl.col("labels"),
        "image": pl.col("image"),
        "repository": pl.col("repository"),
        "workflow_file": pl.col("workflow_file"),
        "ref": pl.col("ref"),
        "error_lines": pl.col("error_lines"),
        "warning_lines": pl.col("warning_lines"),
        "first_error": pl.col("first_error"),
        "failed_step": pl.col("failed_step"),
    }
    return jobs.job_records(fields, source=SOURCE, extra=extra)


def file_job_name(path: str | None) -> str | None:
    """The job a log file is of, by its name: ``build`` for ``1_build.txt`` (the run's
    log archive), else the name without ``.txt`` or ``.log``.

    >>> file_job_name("logs/3_Run tests.txt"), file_job_name("deploy.log.gz")
    ('Run tests', 'deploy')
    """
    if not path:
        return None
    archived = re.fullmatch(r"[0-9]+_(.+)\.txt", re.split(r"[/\\]", path)[-1].removesuffix(".gz"))
    return archived.group(1) if archived else jobs.log_file_job(path)


def archive_job_log(path: str | None) -> str | None:
    """The job's log that a step's log in GitHub's log archive repeats (``1_build.txt``
    for ``build/2_Run make test.txt``); None for another file, or where its folder cannot
    be listed."""
    if not path:
        return None
    step = PurePath(path)
    job, root = step.parent.name, step.parent.parent
    if not job or not re.fullmatch(r"[0-9]+_.+\.txt", step.name):
        return None
    wanted = re.compile(rf"[0-9]+_{re.escape(job)}\.txt")
    return next((n for n in _names_in(local_path(str(root))) if wanted.fullmatch(n)), None)


@functools.lru_cache(maxsize=64)
def _names_in(folder: str) -> tuple[str, ...]:
    """The names in ``folder``, sorted, listed once per folder: an archive's step logs
    all look at the same one."""
    try:
        return tuple(sorted(os.listdir(folder)))
    except OSError:
        return ()


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Every line as a log row, and one job row for the file; a step's log that the
    archive's job log repeats is unparsed, line by line, naming that log."""
    path = lines.select(pl.col("path").first()).collect().item()
    repeated = archive_job_log(path)
    if repeated:
        return records(
            lines,
            source=pl.lit(SOURCE),
            message="text",
            unparsed=pl.lit(f"a step's log in GitHub's log archive; its lines are in {repeated}"),
        )
    parsed = log_lines(lines, file_job_name(path)).collect().lazy()
    facts = job_facts(parsed).collect().lazy()
    attrs = json_object(
        marker=pl.col("marker"),
        step=pl.when(pl.col("marker").is_in(["error", "warning"])).then(pl.col("step")),
    )
    log_rows = jobs.log_line_records(
        parsed,
        source=SOURCE,
        component=pl.col("job"),
        message=pl.when(pl.col("marker").is_not_null())
        .then(pl.col("rest"))
        .otherwise(pl.col("body")),
        attrs=attrs,
    )
    return pl.concat([job_row(facts), log_rows], how="vertical")


SAMPLES = (
    Sample(
        text="""\ufeff2023-03-14T18:04:51.5012450Z Requested labels: ubuntu-latest
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
2023-03-14T18:06:38.1204277Z ##[group]Run make test
2023-03-14T18:06:38.1204901Z \x1b[36;1mmake test\x1b[0m
2023-03-14T18:06:38.1391664Z ##[endgroup]
2023-03-14T18:08:59.0027346Z dial tcp: lookup rabbitmq.ci.svc.cluster.local on 10.96.0.10:53: read udp 10.244.3.17:48123->10.96.0.10:53: i/o timeout
2023-03-14T18:09:01.4427431Z ##[error]Process completed with exit code 2.
2023-03-14T18:09:01.9934512Z Cleaning up orphan processes
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "github-actions",
            "component": "sample-0",
            "host": None,
            "attrs.runner_name": "GitHub Actions 7",
        },
        rows=18,
    ),
    Sample(
        text="""2022-05-02T10:14:19.8913682Z Requested labels: self-hosted, linux, x64, ci-large
2022-05-02T10:14:19.8913775Z Job defined at: acme/api/.github/workflows/deploy.yml@refs/heads/main
2022-05-02T10:14:19.8913803Z Waiting for a runner to pick up this job...
2022-05-02T10:14:20.0647620Z Job is about to start running on the runner: ci-large-7f9c2 (organization)
2022-05-02T10:14:25.0321997Z Current runner version: '2.290.1'
2022-05-02T10:14:25.0328014Z Runner name: 'ci-large-7f9c2'
2022-05-02T10:14:25.0328504Z Runner group name: 'Default'
2022-05-02T10:14:25.0329107Z Machine name: 'ci-large-7f9c2'
2022-05-02T10:14:27.1204277Z ##[group]Run ./deploy.sh
2022-05-02T10:14:27.1204901Z ##[endgroup]
2022-05-02T10:16:02.4381236Z ##[warning]Retrying kubectl apply (1/3)
2022-05-02T10:18:40.0019475Z ##[error]The operation was canceled.
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "github-actions",
            "component": "sample-1",
            "host": None,
            "attrs.runner_name": "ci-large-7f9c2",
        },
        rows=13,
    ),
)

registry.register(
    Parser(
        name=NAME,
        description="GitHub Actions raw job logs (1_build.txt): log lines plus a derived job row",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=(*RUNNER_LINES, MARKER_LITERAL, UI_FAILED_LITERAL),
    )
)
