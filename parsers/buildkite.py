"""Buildkite jobs from the REST API: one ``kind = job`` row for each job an agent runs.

Reads saved API answers: a pipeline's or an organization's builds (``GET
/v2/organizations/{org}/pipelines/{pipeline}/builds``, ``GET .../builds``: an array of
builds, each holding its ``jobs``), one build (``GET .../builds/{number}``), a build's
jobs (``GET .../builds/{number}/jobs``: an array of jobs) and one job; several pages one
after another, pretty-printed or on one line each, and JSON lines. A job has ``type``
(``script``, ``waiter``, ``manual``, ``trigger``), ``state``, ``name``, ``step_key``,
``agent_query_rules`` (``["queue=linux"]``), ``agent`` (null until an agent takes it),
``exit_status``, ``soft_failed``, ``retried``, ``web_url`` and the times
``created_at``, ``scheduled_at``, ``runnable_at``, ``started_at`` and ``finished_at``.

**What is a job.** A ``script`` job is a command step an agent runs: it is a job row. A
``waiter`` (a ``wait`` step), a ``manual`` job (a ``block`` step, which waits for a
person) and a ``trigger`` job (which starts another pipeline's build, whose own jobs are
that pipeline's) run on no agent and wait for none, so they are no job rows: in a build
they are lines of the build's record; alone (a build's jobs listed) they are unparsed
lines that say what they are. A build with no script job at all, or listed without its
jobs (``exclude_jobs=true``), is unparsed lines that say so. Every job of a build is a
row of the build's lines (the rows of one build share its first line), and its number
is the build's (``job rspec #4821``), which the job's ``web_url`` also states.

**When a job was queued.** ``created_at`` is when the pipeline upload made the job and
``scheduled_at`` when Buildkite put it up to be dispatched, both long before it could
run for a job after a ``wait``; ``runnable_at`` is when nothing stood before it any
more (earlier steps, concurrency groups) and it waited for an agent only. So a job is
queued at ``runnable_at``, and its queue delay is ``started_at - runnable_at`` where both
are stated: a job no agent took yet, or one that expired in the queue, has none. A job
without ``runnable_at`` (never runnable) is placed at ``created_at``.

**Executor.** The queue a job asks for (``queue=linux`` among its
``agent_query_rules``) is the pool of agents it waits for, as GitHub's runner labels
and GitLab's tags are: its executor. A job that names no queue goes to Buildkite's
``default`` queue. The agent that took it (its ``name``, else its ``hostname``) is its
``runner_name``: where it ran, never a host of the cluster.

**Statuses.** ``passed`` is success; ``failed``, ``timed_out`` and ``expired`` (no agent
took it before it expired: the queue's failure) are failed; ``canceled`` is cancelled;
``scheduled``, ``assigned``, ``accepted`` and the states of a job that still waits for
earlier steps are queued. The state is kept as the raw status and shown beside the
normalised one, with the exit status where it is not 0 and ``soft failed`` for a
failure the step allows (``failed [soft failed, exit 1]``): a soft failure stays
failed, as GitLab's allowed failures do, having used and lost the same capacity. A
retried job keeps its row (it ran), and says ``retried`` and which job replaced it.
"""

from __future__ import annotations

import polars as pl

from parsers import circleci, github_actions, gitlab_ci, jobs, registry
from parsers.registry import Sample, Score

NAME = "buildkite"

#: A job's ``state`` as the REST API writes it.
STATUS = {
    "passed": "success",
    "failed": "failed",
    "timed_out": "failed",
    "expired": "failed",
    "canceled": "cancelled",
    "canceling": "cancelled",
    "running": "running",
    "timing_out": "running",
    "scheduled": "queued",
    "assigned": "queued",
    "accepted": "queued",
    "pending": "queued",
    "waiting": "queued",
    "blocked": "queued",
    "limiting": "queued",
    "limited": "queued",
    "skipped": "other",
    "broken": "other",
    "waiting_failed": "other",
    "blocked_failed": "other",
    "unblocked": "other",
    "unblocked_failed": "other",
    "not_run": "other",
}

#: Keys and addresses of Buildkite's jobs and builds that the other CIs' JSON lacks.
LITERALS = (
    *jobs.BUILDKITE_KEYS,
    '"scheduled_at"',
    '"exit_status"',
    '"retries_count"',
    '"artifact_paths"',
    '"graphql_id"',
    "://buildkite.com/",
    "://api.buildkite.com/",
)
#: Keys Buildkite writes as another CI does (GitLab's ``finished_at``, CircleCI's
#: ``web_url``): they do not count against it.
SHARED = ('"finished_at"', '"web_url"')
#: The other CIs' own keys: a document with two of them is not Buildkite's.
OTHER_CI = tuple(
    key
    for key in (*gitlab_ci.LITERALS, *github_actions.LITERALS, *circleci.LITERALS)
    if key not in SHARED
)

#: The fields read from a job, and from the build that holds it, leaves as text.
FIELDS = dict.fromkeys(
    (
        "id",
        "type",
        "name",
        "label",
        "command",
        "step_key",
        "state",
        "created_at",
        "scheduled_at",
        "runnable_at",
        "started_at",
        "finished_at",
        "exit_status",
        "soft_failed",
        "retried",
        "retried_in_job_id",
        "retries_count",
        "parallel_group_index",
        "parallel_group_total",
        "web_url",
        "number",
        "branch",
        "commit",
        "source",
    ),
    pl.String,
) | {
    "agent_query_rules": pl.List(pl.String),
    "agent": pl.Struct(dict.fromkeys(("id", "name", "hostname"), pl.String)),
    "pipeline": pl.Struct({"slug": pl.String}),
}
#: A job, or a build holding its jobs.
DTYPE = pl.Struct({**FIELDS, "jobs": pl.List(pl.Struct(FIELDS))})

#: A job's or build's page: organization, pipeline and build number.
WEB_URL = r"^https?://[^/]+/(?P<org>[^/]+)/(?P<pipeline>[^/]+)/builds/(?P<number>[0-9]+)"

_get = jobs.field


def sniff(sample: list[str]) -> Score:
    """JSON with Buildkite's job or build keys: two make it likely, four make it sure."""
    return jobs.sniff_keys(sample, own=LITERALS, others=OTHER_CI, per_key=0.25, label="Buildkite")


def _nonempty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr)


def _build_field(name: str) -> pl.Expr:
    return pl.col("_build").struct.field(name)


def expand(items: pl.LazyFrame) -> pl.LazyFrame:
    """One row per script job: a build becomes its script jobs (``_build`` keeps the
    build), a job stays itself; a build without a script job stays one row, and
    ``_not_job`` says what each row that is no job is."""
    is_build = _get("type").is_null() & (_get("jobs").is_not_null() | _get("number").is_not_null())
    own = pl.struct([_get(name) for name in FIELDS])
    flagged = items.with_columns(_item=pl.int_range(pl.len()), _is_build=is_build)
    alone = flagged.filter(~pl.col("_is_build")).with_columns(
        _job=own,
        _build=pl.lit(None, pl.Struct(FIELDS)),
        _not_job=pl.when(_get("type").is_not_null() & (_get("type") != "script")).then(
            pl.format("a Buildkite {} job, which runs on no agent", _get("type"))
        ),
    )
    builds = flagged.filter("_is_build").with_columns(
        # an empty list is made null, which explodes to one row, as a build must stay
        _build=own,
        _listed=_get("jobs").is_not_null(),
        _job=pl.when(_get("jobs").list.len() > 0).then(_get("jobs")),
    )
    script = (_get("type") == "script").fill_null(False)
    exploded = builds.explode("_job").with_columns(
        _script=script,
        _scripts=script.sum().over("_item"),
        _others=(_get("type").is_not_null() & ~script).sum().over("_item"),
        _first=pl.int_range(pl.len()).over("_item") == 0,
    )
    only = (pl.col("_scripts") == 0) & pl.col("_first")
    kept = exploded.filter(pl.col("_script") | only).with_columns(
        _not_job=pl.when(~pl.col("_script")).then(
            pl.when(pl.col("_listed") & (pl.col("_others") > 0))
            .then(
                pl.format(
                    "a Buildkite build with no script job, only jobs that run on no agent ({})",
                    pl.col("_others"),
                )
            )
            .when(pl.col("_listed"))
            .then(pl.lit("a Buildkite build with no jobs"))
            .otherwise(pl.lit("a Buildkite build listed without its jobs (exclude_jobs)"))
        ),
        _job=pl.when(pl.col("_script")).then("_job"),
    )
    columns = [*items.collect_schema().names(), "_build", "_not_job"]
    return pl.concat([alone.select(columns), kept.select(columns)], how="vertical_relaxed").sort(
        "line", maintain_order=True
    )


def queue_of(rules: pl.Expr) -> pl.Expr:
    """The queue a job's agent query rules ask for; ``default`` where they name none;
    null without rules.

    >>> import polars as pl
    >>> pl.select(queue_of(pl.lit(["os=linux", "queue=k8s-large"]))).item()
    'k8s-large'
    >>> pl.select(queue_of(pl.lit(["*"]))).item()
    'default'
    """
    named = rules.list.eval(pl.element().str.extract(r"^queue=(.+)$", 1)).list.drop_nulls()
    return pl.when(rules.is_not_null()).then(pl.coalesce(named.list.first(), pl.lit("default")))


def failure_detail(exit_status: pl.Expr, soft_failed: pl.Expr) -> pl.Expr:
    """What a job's end says beside its status: ``soft failed`` and a non-zero exit
    status (``exit 1``); null when neither.

    >>> import polars as pl
    >>> pl.select(failure_detail(pl.lit("1"), pl.lit("true"))).item()
    'soft failed, exit 1'
    """
    said = pl.concat_str(
        [
            pl.when(soft_failed == "true").then(pl.lit("soft failed")),
            pl.when(exit_status != "0").then(pl.format("exit {}", exit_status)),
        ],
        separator=", ",
        ignore_nulls=True,
    )
    return pl.when(said != "").then(said)


def job_fields(items: pl.LazyFrame) -> pl.LazyFrame:
    """The fields of script jobs, with their build's where the build held them."""
    raw = _get("state")
    page = _get("web_url").str.extract_groups(WEB_URL)
    number = pl.coalesce(_build_field("number"), page.struct.field("number"))
    return items.with_columns(
        noun=pl.lit("job"),
        record_type=pl.lit("job"),
        job_id=_get("id"),
        number=number,
        name=pl.coalesce(
            _nonempty(_get("name")),
            _nonempty(_get("label")),
            _nonempty(_get("step_key")),
            _nonempty(_get("command")),
        ),
        raw_status=raw,
        status=jobs.normalised_status(raw, STATUS),
        note=jobs.status_note(raw, STATUS, "Buildkite"),
        created_at=_get("created_at"),
        queued_at=_get("runnable_at"),
        started_at=_get("started_at"),
        stopped_at=_get("finished_at"),
        duration_s=pl.lit(None, pl.Float64),
        executor=queue_of(_get("agent_query_rules")),
        runner=pl.coalesce(_nonempty(_get("agent.name")), _nonempty(_get("agent.hostname"))),
        url=_get("web_url"),
        failure=failure_detail(_get("exit_status"), _get("soft_failed")),
        build_number=number.cast(pl.Int64, strict=False),
        pipeline=pl.coalesce(
            _build_field("pipeline").struct.field("slug"), page.struct.field("pipeline")
        ),
        organization=page.struct.field("org"),
    ).with_columns(component=pl.col("name"))


EXTRA = {
    "record_type": pl.col("record_type"),
    "created_at": jobs.iso_utc(jobs.utc_time(_get("created_at"))),
    "scheduled_at": jobs.iso_utc(jobs.utc_time(_get("scheduled_at"))),
    "runnable_at": jobs.iso_utc(jobs.utc_time(_get("runnable_at"))),
    "step_key": _get("step_key"),
    "exit_status": _get("exit_status").cast(pl.Int64, strict=False),
    "soft_failed": pl.when(_get("soft_failed") == "true").then(True),
    "retried": pl.when(_get("retried") == "true").then(True),
    "retried_in_job_id": _get("retried_in_job_id"),
    "retries_count": _get("retries_count").cast(pl.Int64, strict=False),
    "agent_query_rules": _get("agent_query_rules"),
    "agent_hostname": _nonempty(_get("agent.hostname")),
    "agent_id": _get("agent.id"),
    "parallel_group_index": _get("parallel_group_index").cast(pl.Int64, strict=False),
    "parallel_group_total": _get("parallel_group_total").cast(pl.Int64, strict=False),
    "build_number": pl.col("build_number"),
    "build_id": _build_field("id"),
    "build_state": _build_field("state"),
    "pipeline": pl.col("pipeline"),
    "organization": pl.col("organization"),
    "branch": _build_field("branch"),
    "commit": _build_field("commit"),
    "build_source": _build_field("source"),
}


SAMPLES = (
    Sample(
        text="""[
  {
    "id": "01908131-7d9f-495e-a17b-80ed31276810",
    "graphql_id": "QnVpbGQtLS0wMTkwODEzMS03ZDlmLTQ5NWUtYTE3Yi04MGVkMzEyNzY4MTA=",
    "url": "https://api.buildkite.com/v2/organizations/acme/pipelines/payments/builds/4821",
    "web_url": "https://buildkite.com/acme/payments/builds/4821",
    "number": 4821,
    "state": "failed",
    "blocked": false,
    "message": "Retry ledger writes on conflict",
    "commit": "3f6c2d9e8b7a41c05d2e9f8a7b6c5d4e3f2a1b0c",
    "branch": "main",
    "source": "webhook",
    "jobs": [
      {
        "id": "0190813a-1c2e-4f7b-9a4d-6e1f2b3c4d5e",
        "type": "script",
        "name": ":rspec: RSpec",
        "step_key": "rspec",
        "agent_query_rules": ["queue=k8s-large"],
        "state": "failed",
        "web_url": "https://buildkite.com/acme/payments/builds/4821#0190813a-1c2e-4f7b-9a4d-6e1f2b3c4d5e",
        "raw_log_url": "https://api.buildkite.com/v2/organizations/acme/pipelines/payments/builds/4821/jobs/0190813a-1c2e-4f7b-9a4d-6e1f2b3c4d5e/log.txt",
        "command": "bin/rspec",
        "soft_failed": false,
        "exit_status": 1,
        "artifact_paths": "",
        "agent": {
          "id": "0190811f-5b4a-4c3d-8e2f-1a0b9c8d7e6f",
          "name": "agent-stack-k8s-7f9c2-x4q2l",
          "hostname": "agent-stack-k8s-7f9c2-x4q2l",
          "meta_data": ["queue=k8s-large"]
        },
        "created_at": "2023-03-14T18:00:00.412Z",
        "scheduled_at": "2023-03-14T18:00:00.412Z",
        "runnable_at": "2023-03-14T18:00:01.120Z",
        "started_at": "2023-03-14T18:04:13.120Z",
        "finished_at": "2023-03-14T18:05:14.120Z",
        "retried": false,
        "retried_in_job_id": null,
        "retries_count": null,
        "parallel_group_index": null,
        "parallel_group_total": null
      },
      {
        "id": "0190813a-1c2e-4f7b-9a4d-6e1f2b3c4d5f",
        "type": "waiter",
        "step_key": null
      }
    ],
    "created_at": "2023-03-14T18:00:00.398Z",
    "scheduled_at": "2023-03-14T18:00:00.398Z",
    "started_at": "2023-03-14T18:04:13.120Z",
    "finished_at": "2023-03-14T18:05:14.301Z",
    "pipeline": {"id": "849411f9-9e6d-4739-a0d8-e247088e9b52", "slug": "payments"}
  }
]
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "buildkite",
            "kind": "job",
            "level": "error",
            "ts": "2023-03-14T18:00:01.120000+00:00",
            "host": None,
            "component": ":rspec: RSpec",
            "message": "job :rspec: RSpec #4821 failed [exit 1] "
            "(k8s-large, runner agent-stack-k8s-7f9c2-x4q2l, queued 252.0s, ran 61.0s)",
            "attrs.queue_delay_s": 252.0,
            "attrs.executor": "k8s-large",
            "attrs.runner_name": "agent-stack-k8s-7f9c2-x4q2l",
            "attrs.build_number": 4821,
        },
        rows=1,
    ),
)


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One job row per script job in the JSON; unparsed rows where the JSON breaks, for
    jobs no agent runs that stand alone, for builds without a script job, and for
    objects that are neither (an error answer)."""
    is_job = pl.all_horizontal(
        (_get("type") == "script"), *(_get(key).is_not_null() for key in ("id", "state"))
    )
    return jobs.json_job_records(
        lines,
        source=NAME,
        list_keys=(),
        dtype=DTYPE,
        expand=expand,
        is_job=is_job,
        not_job=pl.col("_not_job"),
        job_fields=job_fields,
        extra=EXTRA,
        detail=pl.col("failure"),
    )


registry.register(
    jobs.api_parser(
        NAME,
        "Buildkite builds and jobs from the REST API (JSON)",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
    )
)
