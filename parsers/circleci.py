"""CircleCI jobs from the API: one ``kind = job`` row per job, with its queue delay.

Reads what the API answers, saved as files: job details (``GET
/project/{slug}/job/{number}``: ``number``, ``queued_at``, ``started_at``, ``stopped_at``,
``duration`` in ms, ``executor: {type, resource_class}``, ``web_url``), workflow job lists
(``GET /workflow/{id}/job``: ``items`` with ``job_number``, ``id``, ``type``,
``dependencies``, ``project_slug``), and workflow lists (``items`` with ``pipeline_id``),
as a page (``{"items": [...], "next_page_token": ...}``), an array, one object, several
pages in a row, or JSON lines. API v1.1 builds (``GET /api/v1.1/project/.../:build_num``
and the recent-builds lists: ``build_num``, ``queued_at``, ``start_time``, ``stop_time``,
``build_time_millis``, ``workflows.job_name``, ``picard.executor``) are jobs too, and the
v2 pipeline lists (``GET /project/{slug}/pipeline``: ``number``, ``state``,
``created_at``, ``trigger``, ``errors``) give one row per pipeline, timed when it was
created, ``errored`` as failed. Statuses are brought to success, failed, cancelled,
running, queued or other; the status CircleCI wrote stays in ``raw_status``.
"""

from __future__ import annotations

import polars as pl

from parsers import jobs, registry
from parsers.registry import Sample, Score

NAME = "circleci"

LIST_KEYS = ("items",)

#: CircleCI job and workflow statuses (API v2, plus v1.1's ``fixed`` and ``no_tests``).
STATUS = {
    "success": "success",
    "fixed": "success",
    "no_tests": "success",
    "failed": "failed",
    "infrastructure_fail": "failed",
    "timedout": "failed",
    "terminated-unknown": "failed",
    "unauthorized": "failed",
    "error": "failed",
    "failing": "failed",
    "canceled": "cancelled",
    "running": "running",
    "queued": "queued",
    "not_running": "queued",
    "not_run": "other",
    "retried": "other",
    "on_hold": "other",
    "blocked": "other",
    "scheduled": "queued",
    # v2 pipeline states
    "created": "other",
    "errored": "failed",
    "setup-pending": "queued",
    "setup": "queued",
    "pending": "queued",
}

#: Literals found in CircleCI API v2 job JSON and rarely elsewhere.
LITERALS = (
    '"job_number"',
    '"queued_at"',
    '"stopped_at"',
    '"project_slug"',
    '"executor"',
    '"resource_class"',
    '"latest_workflow"',
    '"parallel_runs"',
    '"web_url"',
    '"build_num"',
    '"build_time_millis"',
    '"vcs_revision"',
    '"trigger_parameters"',
)
#: Literals of GitHub Actions jobs and runs, which share ``status`` and ``started_at``,
#: of GitLab CI jobs and pipelines, which share ``web_url`` and ``pipeline``, and of
#: Buildkite's jobs and builds, which share ``web_url``.
OTHER_CI = (
    '"runner_name"',
    '"workflow_runs"',
    '"run_started_at"',
    '"conclusion"',
    '"completed_at"',
    *jobs.GITLAB_KEYS,
    *jobs.BUILDKITE_KEYS,
)


def sniff(sample: list[str]) -> Score:
    """JSON whose keys are CircleCI's: two literals make it likely, more make it sure."""
    return jobs.sniff_keys(sample, own=LITERALS, others=OTHER_CI, per_key=0.3, label="CircleCI job")


S = pl.String
#: The fields read from a job detail, a workflow job item or a workflow, leaves as text.
DTYPE = pl.Struct(
    {
        "number": S,
        "job_number": S,
        "id": S,
        "name": S,
        "status": S,
        "type": S,
        "created_at": S,
        "queued_at": S,
        "started_at": S,
        "stopped_at": S,
        "duration": S,
        "web_url": S,
        "parallelism": S,
        "project_slug": S,
        "pipeline_id": S,
        "pipeline_number": S,
        "executor": pl.Struct({"type": S, "resource_class": S}),
        "project": pl.Struct({"slug": S}),
        "pipeline": pl.Struct({"id": S}),
        "latest_workflow": pl.Struct({"id": S, "name": S}),
        # API v1.1 builds
        "build_num": S,
        "build_url": S,
        "start_time": S,
        "stop_time": S,
        "build_time_millis": S,
        "lifecycle": S,
        "reponame": S,
        "username": S,
        "branch": S,
        "workflows": pl.Struct({"job_name": S, "workflow_name": S, "workflow_id": S}),
        "build_parameters": pl.Struct({"CIRCLE_JOB": S}),
        "picard": pl.Struct({"executor": S, "resource_class": pl.Struct({"class": S})}),
        # API v2 pipelines
        "state": S,
        "trigger": pl.Struct({"type": S, "actor": pl.Struct({"login": S})}),
        "vcs": pl.Struct({"branch": S, "revision": S}),
    }
)
_get = jobs.field


def executor_of(kind: pl.Expr, resource_class: pl.Expr) -> pl.Expr:
    """The executor a job ran on: a self-hosted runner's ``namespace/name`` resource class,
    else ``windows`` or ``macos`` (by type or resource class), else the type
    (``docker``, ``machine``).

    >>> import polars as pl
    >>> pl.select(executor_of(pl.lit("machine"), pl.lit("windows.medium"))).item()
    'windows'
    """
    kind = kind.str.to_lowercase()
    return (
        pl.when(resource_class.str.contains("/"))
        .then(resource_class)
        .when((kind == "windows") | resource_class.str.starts_with("windows."))
        .then(pl.lit("windows"))
        .when((kind == "macos") | resource_class.str.starts_with("macos."))
        .then(pl.lit("macos"))
        .when(kind.is_null() & resource_class.str.contains(r"^(arm|gpu)\."))
        .then(pl.lit("machine"))
        .otherwise(kind)
    )


def job_fields(items: pl.LazyFrame) -> pl.LazyFrame:
    """The fields of CircleCI job details, workflow job items and workflows."""
    number = pl.coalesce(_get("number"), _get("job_number"), _get("build_num"))
    is_workflow = _get("pipeline_id").is_not_null() & number.is_null()
    is_pipeline = _get("state").is_not_null() & _get("status").is_null()
    raw = pl.coalesce(_get("status"), _get("state"))
    v1_project = pl.when(_get("reponame").is_not_null()).then(
        pl.format("{}/{}", _get("username"), _get("reponame"))
    )
    duration_ms = pl.coalesce(_get("duration"), _get("build_time_millis"))
    return items.with_columns(
        noun=pl.when(is_pipeline)
        .then(pl.lit("pipeline"))
        .when(is_workflow)
        .then(pl.lit("workflow"))
        .otherwise(pl.lit("job")),
        job_id=pl.coalesce(number, _get("id")),
        number=number,
        job_uuid=_get("id"),
        name=pl.coalesce(
            _get("name"),
            _get("workflows.job_name"),
            _get("build_parameters.CIRCLE_JOB"),
            _get("reponame"),
            pl.when(is_pipeline).then(
                pl.coalesce(_get("vcs.branch"), _get("project_slug"), pl.lit("pipeline"))
            ),
        ),
        raw_status=raw,
        status=jobs.normalised_status(raw, STATUS),
        note=jobs.status_note(raw, STATUS, "CircleCI"),
        created_at=_get("created_at"),
        queued_at=_get("queued_at"),
        started_at=pl.coalesce(_get("started_at"), _get("start_time")),
        stopped_at=pl.coalesce(_get("stopped_at"), _get("stop_time")),
        duration_s=duration_ms.cast(pl.Float64, strict=False) / 1000,
        executor_type=pl.coalesce(_get("executor.type"), _get("picard.executor")),
        resource_class=pl.coalesce(
            _get("executor.resource_class"), _get("picard.resource_class.class")
        ),
        url=pl.coalesce(_get("web_url"), _get("build_url")),
        project=pl.coalesce(_get("project.slug"), _get("project_slug"), v1_project),
        pipeline_id=pl.coalesce(_get("pipeline.id"), _get("pipeline_id")),
        pipeline_number=_get("pipeline_number").cast(pl.Int64, strict=False),
        workflow=pl.coalesce(_get("latest_workflow.name"), _get("workflows.workflow_name")),
        workflow_id=pl.coalesce(_get("latest_workflow.id"), _get("workflows.workflow_id")),
        job_type=_get("type"),
        parallelism=_get("parallelism").cast(pl.Int64, strict=False),
    ).with_columns(
        executor=executor_of(pl.col("executor_type"), pl.col("resource_class")),
        component=pl.col("name"),
    )


EXTRA = {
    "record_type": pl.col("noun"),
    "job_number": pl.col("number").cast(pl.Int64, strict=False),
    "job_uuid": pl.col("job_uuid"),
    "created_at": jobs.iso_utc(jobs.utc_time(pl.col("created_at"))),
    "executor_type": pl.col("executor_type"),
    "resource_class": pl.col("resource_class"),
    "project": pl.col("project"),
    "pipeline_id": pl.col("pipeline_id"),
    "pipeline_number": pl.col("pipeline_number"),
    "workflow": pl.col("workflow"),
    "workflow_id": pl.col("workflow_id"),
    "job_type": pl.col("job_type"),
    "parallelism": pl.col("parallelism"),
}


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One job row per CircleCI job (or workflow) in the JSON; unparsed rows where the
    JSON breaks or an object is not a job."""
    is_job = (
        pl.coalesce(_get("status"), _get("state")).is_not_null()
        & pl.coalesce(
            _get("name"), _get("number"), _get("job_number"), _get("build_num")
        ).is_not_null()
    )
    return jobs.json_job_records(
        lines,
        source=NAME,
        list_keys=LIST_KEYS,
        dtype=DTYPE,
        is_job=is_job,
        job_fields=job_fields,
        extra=EXTRA,
    )


SAMPLES = (
    Sample(
        text="""{
  "web_url": "https://app.circleci.com/pipelines/github/acme/api/8812/workflows/5034460f-c7c4-4c43-9457-de07e2029e7b/jobs/482113",
  "project": {
    "external_url": "https://github.com/acme/api",
    "slug": "gh/acme/api",
    "name": "api",
    "id": "9f1c2f6a-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
  },
  "parallel_runs": [
    {
      "index": 0,
      "status": "success"
    }
  ],
  "started_at": "2023-03-14T18:02:15.612Z",
  "latest_workflow": {
    "name": "build-and-test",
    "id": "5034460f-c7c4-4c43-9457-de07e2029e7b"
  },
  "name": "build-and-test",
  "executor": {
    "resource_class": "medium",
    "type": "docker"
  },
  "parallelism": 1,
  "status": "success",
  "number": 482113,
  "pipeline": {
    "id": "1e2d3c4b-5a69-7887-9a0b-1c2d3e4f5061"
  },
  "duration": 61204,
  "created_at": "2023-03-14T18:02:09.871Z",
  "messages": [],
  "contexts": [],
  "organization": {
    "name": "acme"
  },
  "queued_at": "2023-03-14T18:02:11.412Z",
  "stopped_at": "2023-03-14T18:03:16.816Z"
}
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "circleci",
            "kind": "job",
            "level": "info",
            "ts": "2023-03-14T18:02:11.412000+00:00",
            "component": "build-and-test",
            "message": "job build-and-test #482113 success (docker, queued 4.2s, ran 61.2s)",
            "attrs.job_id": "482113",
            "attrs.queue_delay_s": 4.2,
            "attrs.executor": "docker",
        },
        rows=1,
    ),
    Sample(
        text="""{"items":[{"dependencies":[],"job_number":482120,"id":"c1a5e1d2-58f3-4b8e-9d4c-2f1b0e6a7c90","started_at":"2023-03-14T19:41:02Z","name":"integration-tests","project_slug":"gh/acme/api","status":"infrastructure_fail","type":"build","stopped_at":"2023-03-14T19:41:44Z"},{"dependencies":["c1a5e1d2-58f3-4b8e-9d4c-2f1b0e6a7c90"],"id":"0b6a29f4-1d7e-4a3b-8f25-6c9d8e7f1a2b","name":"deploy","project_slug":"gh/acme/api","status":"blocked","type":"build"}],"next_page_token":null}
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "circleci",
            "kind": "job",
            "level": "error",
            "ts": "2023-03-14T19:41:02+00:00",
            "attrs.status": "failed",
            "attrs.raw_status": "infrastructure_fail",
            "attrs.duration_s": 42.0,
        },
        rows=2,
    ),
)

registry.register(
    jobs.api_parser(
        NAME,
        "CircleCI API v2 jobs and workflow job lists (JSON)",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
    )
)
