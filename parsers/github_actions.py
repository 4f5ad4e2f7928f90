"""GitHub Actions jobs and workflow runs from the REST API: one ``kind = job`` row each.

Reads saved API answers: the jobs of a run (``GET /repos/{o}/{r}/actions/runs/{id}/jobs``:
``{"total_count": N, "jobs": [...]}`` with ``created_at``, ``started_at``,
``completed_at``, ``status``, ``conclusion``, ``runner_name``, ``labels``), workflow runs
(``GET .../actions/runs``: ``{"total_count": N, "workflow_runs": [...]}`` with
``created_at``, ``run_started_at``, ``updated_at``), one job or run, an array, several
pages in a row, JSON lines, and ``workflow_job`` / ``workflow_run`` webhook payloads; and
what the ``gh`` CLI writes (``gh run list --json ...``, ``gh run view --json jobs``), by
its camelCase keys (:data:`GH_CLI_KEYS`).

A job is queued at ``created_at`` and started at ``started_at`` (GitHub fills that in
for a job still queued, so it is ignored until the job runs); a run is queued at
``created_at``, started at ``run_started_at`` and, once completed, stopped at
``updated_at``; a re-run (``run_attempt`` above 1) keeps its first attempt's
``created_at`` while ``run_started_at`` is its own, so its wait is not known and it is
placed at its start. ``conclusion`` (else ``status``) is the raw status.
"""

from __future__ import annotations

import polars as pl

from parsers import jobs, registry
from parsers.registry import Sample, Score

NAME = "github-actions"

LIST_KEYS = ("jobs", "workflow_runs")

#: A job's or run's ``conclusion`` once completed, else its ``status``.
STATUS = {
    "success": "success",
    "failure": "failed",
    "timed_out": "failed",
    "startup_failure": "failed",
    "cancelled": "cancelled",
    "skipped": "other",
    "neutral": "other",
    "action_required": "other",
    "stale": "other",
    "completed": "other",
    "in_progress": "running",
    "queued": "queued",
    "waiting": "queued",
    "requested": "queued",
    "pending": "queued",
}

LITERALS = (
    '"runner_name"',
    '"run_id"',
    '"workflow_runs"',
    '"run_started_at"',
    '"conclusion"',
    '"completed_at"',
    '"check_run_url"',
    '"runner_group_name"',
    '"workflow_name"',
    '"run_attempt"',
    '"run_number"',
    '"jobs_url"',
)
#: The keys ``gh run list --json ...`` and ``gh run view --json jobs`` write instead of the
#: API's (camelCase), by the API key they stand for.
GH_CLI_KEYS = {
    "id": "databaseId",
    "run_attempt": "attempt",
    "run_number": "number",
    "workflow_id": "workflowDatabaseId",
    "workflow_name": "workflowName",
    "created_at": "createdAt",
    "started_at": "startedAt",
    "completed_at": "completedAt",
    "updated_at": "updatedAt",
    "html_url": "url",
    "head_branch": "headBranch",
    "head_sha": "headSha",
}
LITERALS += tuple(f'"{k}"' for k in GH_CLI_KEYS.values() if k not in ("number", "url", "attempt"))
#: CircleCI's, GitLab CI's and Buildkite's own keys; a document with several is not GitHub's.
OTHER_CI = (
    '"job_number"',
    '"queued_at"',
    '"stopped_at"',
    '"project_slug"',
    *jobs.GITLAB_KEYS,
    *jobs.BUILDKITE_KEYS,
)

S = pl.String
#: The fields read from a workflow job or run, leaves as text.
FIELDS = {
    "id": S,
    "run_id": S,
    "run_attempt": S,
    "run_number": S,
    "workflow_id": S,
    "workflow_name": S,
    "name": S,
    "status": S,
    "conclusion": S,
    "created_at": S,
    "started_at": S,
    "completed_at": S,
    "run_started_at": S,
    "updated_at": S,
    "html_url": S,
    "runner_name": S,
    "runner_group_name": S,
    "event": S,
    "head_branch": S,
    "head_sha": S,
    "labels": pl.List(S),
    "actor": pl.Struct({"login": S}),
}
FIELDS |= {camel: S for camel in GH_CLI_KEYS.values()}
#: A job or run, or a webhook payload that carries one.
DTYPE = pl.Struct({**FIELDS, "workflow_job": pl.Struct(FIELDS), "workflow_run": pl.Struct(FIELDS)})


def unwrap(item: pl.Expr) -> pl.Expr:
    """The job or run a ``workflow_job`` / ``workflow_run`` webhook payload carries, else
    the item itself."""
    own = pl.struct([item.struct.field(name) for name in FIELDS])
    return pl.coalesce(item.struct.field("workflow_job"), item.struct.field("workflow_run"), own)


def sniff(sample: list[str]) -> Score:
    """JSON with GitHub Actions job or run keys: two make it likely, more make it sure."""
    return jobs.sniff_keys(
        sample, own=LITERALS, others=OTHER_CI, per_key=0.25, label="GitHub Actions"
    )


def _get(key: str) -> pl.Expr:
    """A field of the job or run by the API's key, else by the ``gh`` CLI's."""
    camel = GH_CLI_KEYS.get(key)
    return pl.coalesce(jobs.field(key), jobs.field(camel)) if camel else jobs.field(key)


def _nonempty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr)


def job_fields(items: pl.LazyFrame) -> pl.LazyFrame:
    """The fields of workflow jobs and workflow runs."""
    is_run = (
        pl.when(pl.col("list_key").is_not_null())
        .then(pl.col("list_key") == "workflow_runs")
        .otherwise(
            pl.coalesce(
                _get("run_started_at"), _get("run_number"), _get("workflow_id")
            ).is_not_null()
            & _get("run_id").is_null()
        )
    )
    # gh writes "" for a run that has no conclusion yet
    raw = pl.coalesce(_nonempty(_get("conclusion")), _get("status"))
    status = jobs.normalised_status(raw, STATUS)
    started = pl.when(status != "queued").then(
        pl.coalesce(_get("run_started_at"), _get("started_at"))
    )
    stopped = (
        pl.when(~is_run)
        .then(_get("completed_at"))
        .when(_get("status") == "completed")
        .then(_get("updated_at"))
    )
    labels = _get("labels")
    rerun = (is_run & (_get("run_attempt").cast(pl.Int64, strict=False) > 1)).fill_null(False)
    return items.with_columns(
        noun=pl.when(is_run).then(pl.lit("workflow run")).otherwise(pl.lit("job")),
        record_type=pl.when(is_run).then(pl.lit("workflow_run")).otherwise(pl.lit("job")),
        job_id=_get("id"),
        number=pl.when(is_run).then(_get("run_number")).otherwise(_get("id")),
        name=_get("name"),
        raw_status=raw,
        status=status,
        note=jobs.status_note(raw, STATUS, "GitHub Actions"),
        # a re-run keeps its first attempt's created_at: its own wait is not known
        created_at=pl.when(~rerun).then(_get("created_at")),
        queued_at=pl.when(~rerun).then(_get("created_at")),
        started_at=started,
        stopped_at=stopped,
        duration_s=pl.lit(None, pl.Float64),
        labels=labels,
        executor=pl.when(~is_run).then(jobs.executor_from_labels(labels)),
        # where the job ran; a runner is no node of the cluster (see jobs.job_records)
        runner=_nonempty(_get("runner_name")),
        url=_get("html_url"),
        gh_status=_get("status"),
        conclusion=_nonempty(_get("conclusion")),
        run_id=_get("run_id").cast(pl.Int64, strict=False),
        run_number=pl.when(is_run).then(_get("run_number").cast(pl.Int64, strict=False)),
        run_attempt=_get("run_attempt").cast(pl.Int64, strict=False),
        workflow=pl.coalesce(_get("workflow_name"), pl.when(is_run).then(_get("name"))),
        workflow_id=_get("workflow_id").cast(pl.Int64, strict=False),
        event=_get("event"),
        head_branch=_get("head_branch"),
        head_sha=_get("head_sha"),
        runner_group=_nonempty(_get("runner_group_name")),
        actor=_get("actor.login"),
    ).with_columns(component=pl.col("name"))


EXTRA = {
    "record_type": pl.col("record_type"),
    "created_at": jobs.iso_utc(jobs.utc_time(pl.col("created_at"))),
    "gh_status": pl.col("gh_status"),
    "conclusion": pl.col("conclusion"),
    "labels": pl.col("labels"),
    "runner_group": pl.col("runner_group"),
    "run_id": pl.col("run_id"),
    "run_number": pl.col("run_number"),
    "run_attempt": pl.col("run_attempt"),
    "workflow": pl.col("workflow"),
    "workflow_id": pl.col("workflow_id"),
    "event": pl.col("event"),
    "head_branch": pl.col("head_branch"),
    "head_sha": pl.col("head_sha"),
    "actor": pl.col("actor"),
}


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One job row per GitHub Actions job or workflow run in the JSON; unparsed rows where
    the JSON breaks or an object is neither."""
    is_job = pl.all_horizontal([_get(key).is_not_null() for key in ("id", "status", "name")])
    return jobs.json_job_records(
        lines,
        source=NAME,
        list_keys=LIST_KEYS,
        dtype=DTYPE,
        unwrap=unwrap,
        is_job=is_job,
        job_fields=job_fields,
        extra=EXTRA,
    )


SAMPLES = (
    Sample(
        text="""{
  "total_count": 1,
  "jobs": [
    {
      "id": 11950281023,
      "run_id": 4421567890,
      "workflow_name": "CI",
      "head_branch": "main",
      "run_url": "https://api.github.com/repos/acme/api/actions/runs/4421567890",
      "run_attempt": 1,
      "node_id": "CR_kwDOH1a2b88AAAACyE0mPw",
      "head_sha": "9b1f0c4e2d7a6b3c8e5f1a0d2c4b6e8f0a1c3e5d",
      "url": "https://api.github.com/repos/acme/api/actions/jobs/11950281023",
      "html_url": "https://github.com/acme/api/actions/runs/4421567890/jobs/11950281023",
      "status": "completed",
      "conclusion": "failure",
      "created_at": "2023-03-14T18:04:51Z",
      "started_at": "2023-03-14T18:06:33Z",
      "completed_at": "2023-03-14T18:09:02Z",
      "name": "build",
      "steps": [
        {
          "name": "Set up job",
          "status": "completed",
          "conclusion": "success",
          "number": 1,
          "started_at": "2023-03-14T18:06:32.000Z",
          "completed_at": "2023-03-14T18:06:35.000Z"
        },
        {
          "name": "Run make test",
          "status": "completed",
          "conclusion": "failure",
          "number": 2,
          "started_at": "2023-03-14T18:06:35.000Z",
          "completed_at": "2023-03-14T18:09:01.000Z"
        }
      ],
      "check_run_url": "https://api.github.com/repos/acme/api/check-runs/11950281023",
      "labels": [
        "ubuntu-latest"
      ],
      "runner_id": 7,
      "runner_name": "GitHub Actions 7",
      "runner_group_id": 2,
      "runner_group_name": "GitHub Actions"
    }
  ]
}
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "github-actions",
            "kind": "job",
            "level": "error",
            "ts": "2023-03-14T18:04:51+00:00",
            "host": None,
            "component": "build",
            "message": "job build #11950281023 failed [failure] "
            "(machine, runner GitHub Actions 7, queued 102.0s, ran 149.0s)",
            "attrs.runner_name": "GitHub Actions 7",
            "attrs.queue_delay_s": 102.0,
            "attrs.run_id": 4421567890,
        },
        rows=1,
    ),
    Sample(
        text="""{"total_count":2,"workflow_runs":[{"id":4421567890,"name":"CI","node_id":"WFR_kwLOH1a2b88AAAABB3x1Eg","head_branch":"main","head_sha":"9b1f0c4e2d7a6b3c8e5f1a0d2c4b6e8f0a1c3e5d","path":".github/workflows/ci.yml","display_title":"Bump kube-proxy to v1.24.10","run_number":3187,"event":"push","status":"completed","conclusion":"cancelled","workflow_id":51234567,"check_suite_id":11623456789,"url":"https://api.github.com/repos/acme/api/actions/runs/4421567890","html_url":"https://github.com/acme/api/actions/runs/4421567890","created_at":"2023-03-14T18:04:50Z","updated_at":"2023-03-14T18:35:12Z","actor":{"login":"octo-sre","id":1},"run_attempt":1,"run_started_at":"2023-03-14T18:04:50Z"},{"id":4421571234,"name":"CI","head_branch":"main","run_number":3188,"event":"push","status":"queued","conclusion":null,"workflow_id":51234567,"html_url":"https://github.com/acme/api/actions/runs/4421571234","created_at":"2023-03-14T18:05:20Z","updated_at":"2023-03-14T18:05:21Z","run_attempt":1,"run_started_at":"2023-03-14T18:05:20Z"}]}
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "github-actions",
            "kind": "job",
            "level": "warning",
            "component": "CI",
            "message": "workflow run CI #3187 cancelled (queued 0.0s, ran 1822.0s)",
            "attrs.record_type": "workflow_run",
            "attrs.stopped_at": "2023-03-14T18:35:12.000Z",
        },
        rows=2,
    ),
)

registry.register(
    jobs.api_parser(
        NAME,
        "GitHub Actions workflow jobs and runs from the REST API (JSON)",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
    )
)
