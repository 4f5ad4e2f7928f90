"""GitLab CI jobs and pipelines from the REST API: one ``kind = job`` row each.

Reads saved API answers, which GitLab gives as arrays (a page; several pages one after
another, pretty-printed or on one line each; JSON lines): the jobs of a project (``GET
/projects/:id/jobs``) or of a pipeline (``GET /projects/:id/pipelines/:pipeline_id/jobs``),
its trigger jobs (``.../bridges``, with ``downstream_pipeline``), one job (``GET
/projects/:id/jobs/:job_id``), pipeline lists (``GET /projects/:id/pipelines``: ``id``,
``iid``, ``status``, ``source``, ``ref``, ``sha``, ``created_at``, ``updated_at``) and one
pipeline (with ``started_at``, ``finished_at``, ``duration``, ``queued_duration``). A job
has ``stage``, ``status``, ``failure_reason``, ``created_at``, ``started_at``,
``finished_at``, ``duration`` and ``queued_duration`` (seconds), ``allow_failure``,
``tag_list``, ``pipeline``, ``runner`` (null until a runner takes it) and, in newer
GitLab, ``runner_manager`` (which machine of a runner that several share). What ``glab``
writes with ``--output json`` has the API's keys: ``glab ci list`` an array of
pipelines; ``glab ci get`` a pipeline holding its ``jobs``, read as a page of them (the
pipeline itself gives no row), and, with ``--with-downstream-pipelines``, ``bridges``,
each read as its trigger job (the downstream pipeline's jobs inside it are not read).
glab writes a job no runner took with a runner of id 0, read as none.

**When a job was queued.** ``created_at`` is when the pipeline made the job, which for a
job of a later stage is long before it could run; GitLab's ``queued_duration`` is the
time it then waited for a runner. So a started job was queued at ``started_at -
queued_duration``, and its queue delay is GitLab's own figure. Without both (older
GitLab has no ``queued_duration``; a job not started has one that counts up to the
moment of the API call) it was queued at ``created_at``, and a job not started has no
delay yet.

**Executor.** A CI series is one executor's jobs (``<executor> jobs``,
:func:`timeline.analysis.rates.job_signature`): the pool of capacity a job waits for,
which a change to that pool (fewer runners, a broken image) slows as a whole. CircleCI's
is the executor type or resource class the job asks for and GitHub's the ``runs-on``
labels, both known before any machine takes the job. GitLab's equivalent is the job's
``tag_list``: a runner takes only jobs whose tags it has, so the tag set is the queue a
job waits in. It is written sorted and joined with commas (``docker,linux``, as
``gitlab-runner register --tag-list`` takes it); a job without tags is ``untagged`` (it
waits for the runners that take untagged jobs). The runner that took a job (its
description) is its ``runner_name``, as GitHub's is: where a job ran, not a host. The runner's type
(``instance_type``) would put every shared runner in one series and is unknown while a
job waits, so it only goes to ``attrs``.

**Failures.** ``failure_reason`` is shown beside the status (``failed
[runner_system_failure]``), so each reason is its own signature, and ``failure_kind``
says ``infrastructure`` for the reasons the runners or GitLab caused
(:data:`INFRASTRUCTURE`) and ``job`` for the rest (the script, the job's own timeout,
its configuration). ``allow_failure`` jobs stay failed: they used and lost the same
capacity.
"""

from __future__ import annotations

import polars as pl

from parsers import jobs, registry
from parsers.registry import Sample, Score

NAME = "gitlab-ci"

#: ``glab ci get``: a pipeline holding its jobs and its trigger jobs.
LIST_KEYS = ("jobs", "bridges")

#: Job and pipeline statuses. ``created`` waits for earlier stages, ``preparing`` and
#: ``waiting_for_resource`` for what must come first; none has started.
STATUS = {
    "success": "success",
    "failed": "failed",
    "canceled": "cancelled",
    "canceling": "cancelled",
    "running": "running",
    "waiting_for_callback": "running",
    "pending": "queued",
    "created": "queued",
    "preparing": "queued",
    "waiting_for_resource": "queued",
    "scheduled": "queued",
    "manual": "other",
    "skipped": "other",
}

#: Failure reasons that the runners, the machines under them or GitLab itself caused,
#: not the job's script or configuration (``stuck_or_timeout_failure`` is a job no
#: runner took or finished; newer GitLab splits it into ``stuck_pending_*`` and
#: ``no_updates_*``).
INFRASTRUCTURE = frozenset(
    {
        "api_failure",
        "stuck_or_timeout_failure",
        "runner_system_failure",
        "runner_unsupported",
        "scheduler_failure",
        "data_integrity_failure",
        "no_matching_runner",
        "job_execution_server_timeout",
        "stuck_pending_with_matching_runners",
        "stuck_pending_no_matching_runners",
        "no_updates_running",
        "no_updates_canceling",
        "server_timeout_running",
        "server_timeout_canceling",
        "runner_configuration_error",
        "runner_external_dependency_failure",
        "runner_interrupted",
        "job_router_failure",
    }
)

#: Keys of GitLab jobs and pipelines that CircleCI's, GitHub's and Kubernetes' JSON lack.
LITERALS = (
    *jobs.GITLAB_KEYS,
    '"stage"',
    '"erased_at"',
    '"artifacts_expire_at"',
    '"downstream_pipeline"',
    '"project_id"',
    '"sha"',
    '"before_sha"',
    '"detailed_status"',
    '"yaml_errors"',
)
#: CircleCI's, GitHub Actions' and Buildkite's own keys, and Kubernetes' (an audit event
#: has a ``stage`` and a ``status``): a document with two of them is not GitLab's.
OTHER_CI = (
    '"job_number"',
    '"queued_at"',
    '"stopped_at"',
    '"project_slug"',
    '"build_num"',
    '"executor"',
    '"runner_name"',
    '"workflow_runs"',
    '"run_started_at"',
    '"conclusion"',
    '"completed_at"',
    '"run_id"',
    '"apiVersion"',
    '"auditID"',
    '"objectRef"',
    '"involvedObject"',
    *jobs.BUILDKITE_KEYS,
)

S = pl.String
#: The fields read from a job, a trigger job or a pipeline, leaves as text.
FIELDS = {
    "id": S,
    "iid": S,
    "project_id": S,
    "name": S,
    "stage": S,
    "status": S,
    "failure_reason": S,
    "created_at": S,
    "started_at": S,
    "finished_at": S,
    "updated_at": S,
    "erased_at": S,
    "duration": S,
    "queued_duration": S,
    "allow_failure": S,
    "tag_list": pl.List(S),
    "ref": S,
    "sha": S,
    "source": S,
    "web_url": S,
    "pipeline": pl.Struct({"id": S, "iid": S, "project_id": S, "sha": S, "status": S, "source": S}),
    "runner": pl.Struct({"id": S, "description": S, "name": S, "runner_type": S, "is_shared": S}),
    "runner_manager": pl.Struct({"system_id": S, "version": S}),
    "user": pl.Struct({"username": S}),
    "downstream_pipeline": pl.Struct({"id": S, "project_id": S, "status": S}),
}
#: A job, trigger job or pipeline, or one of ``glab ci get``'s ``bridges`` (which holds
#: its trigger job under ``bridge``).
DTYPE = pl.Struct({**FIELDS, "bridge": pl.Struct(FIELDS)})

_get = jobs.field
#: Microsecond ISO-8601 text for a time worked out here (``queued_at``).
_ISO_US = "%Y-%m-%dT%H:%M:%S%.6fZ"


def sniff(sample: list[str]) -> Score:
    """JSON with GitLab's job or pipeline keys: two make it likely, more make it sure."""
    return jobs.sniff_keys(sample, own=LITERALS, others=OTHER_CI, per_key=0.3, label="GitLab CI")


def unwrap(item: pl.Expr) -> pl.Expr:
    """The trigger job one of ``glab ci get``'s ``bridges`` holds, else the item itself."""
    own = pl.struct([item.struct.field(name) for name in FIELDS])
    return pl.coalesce(item.struct.field("bridge"), own)


def _nonempty(expr: pl.Expr) -> pl.Expr:
    """``expr``, null where it is empty text (``glab`` writes a job with no runner as one
    with id 0 and an empty description)."""
    return pl.when((expr != "") & (expr != "0")).then(expr)


def queued_at(started_at: pl.Expr, queued_duration: pl.Expr, created_at: pl.Expr) -> pl.Expr:
    """When a job (or pipeline) began to wait for a runner, as text: ``started_at`` less
    GitLab's ``queued_duration`` where it started and says how long it waited, else
    ``created_at``.

    >>> import polars as pl
    >>> pl.select(
    ...     queued_at(pl.lit("2024-05-14T09:12:31.482Z"), pl.lit("4.871"), pl.lit("x"))
    ... ).item()
    '2024-05-14T09:12:26.611000Z'
    >>> pl.select(queued_at(pl.lit(None, pl.String), pl.lit("131.2"), pl.lit("x"))).item()
    'x'
    """
    started = jobs.utc_time(started_at)
    waited = queued_duration.cast(pl.Float64, strict=False)
    micros = (waited * 1e6).round().cast(pl.Int64, strict=False)
    known = started.is_not_null() & waited.is_finite() & micros.is_not_null()
    return (
        pl.when(known)
        .then((started - pl.duration(microseconds=micros)).dt.strftime(_ISO_US))
        .otherwise(created_at)
    )


def executor_of(tags: pl.Expr) -> pl.Expr:
    """The queue a job waits in: its tags, sorted and joined with commas; ``untagged``
    for a job without tags; null where the record has no ``tag_list`` (a trigger job or
    a pipeline, which no runner runs).

    >>> import polars as pl
    >>> pl.select(executor_of(pl.lit(["linux", "docker"]))).item()
    'docker,linux'
    >>> pl.select(executor_of(pl.lit([], pl.List(pl.String)))).item()
    'untagged'
    """
    joined = tags.list.eval(pl.element().str.strip_chars()).list.unique().list.sort()
    text = joined.list.join(",")
    return pl.when(text != "").then(text).when(tags.is_not_null()).then(pl.lit("untagged"))


def failure_kind(reason: pl.Expr) -> pl.Expr:
    """``infrastructure`` for a failure the runners or GitLab caused, ``job`` for any
    other reason, null without one.

    >>> import polars as pl
    >>> pl.select(failure_kind(pl.lit("stuck_or_timeout_failure"))).item()
    'infrastructure'
    """
    return (
        pl.when(reason.is_in(sorted(INFRASTRUCTURE)))
        .then(pl.lit("infrastructure"))
        .when(reason.is_not_null())
        .then(pl.lit("job"))
    )


def runner_of(runner_id: pl.Expr, description: pl.Expr, name: pl.Expr) -> pl.Expr:
    """The runner that took a job: its description, else its name, else ``runner #id``."""
    return pl.coalesce(
        _nonempty(description),
        _nonempty(name),
        pl.format("runner #{}", _nonempty(runner_id)),
    )


def job_fields(items: pl.LazyFrame) -> pl.LazyFrame:
    """The fields of jobs, trigger jobs and pipelines."""
    is_pipeline = _get("iid").is_not_null() & _get("stage").is_null()
    is_bridge = (pl.col("list_key") == "bridges").fill_null(False) | _get(
        "downstream_pipeline"
    ).is_not_null()
    raw = _get("status")
    status = jobs.normalised_status(raw, STATUS)
    finished = pl.coalesce(
        _get("finished_at"),
        pl.when(is_pipeline & status.is_in(["success", "failed", "cancelled"])).then(
            _get("updated_at")
        ),
    )
    reason = _nonempty(_get("failure_reason"))
    return items.with_columns(
        noun=pl.when(is_pipeline)
        .then(pl.lit("pipeline"))
        .when(is_bridge)
        .then(pl.lit("trigger job"))
        .otherwise(pl.lit("job")),
        record_type=pl.when(is_pipeline)
        .then(pl.lit("pipeline"))
        .when(is_bridge)
        .then(pl.lit("bridge"))
        .otherwise(pl.lit("job")),
        job_id=_get("id"),
        number=_get("id"),
        name=pl.coalesce(
            _nonempty(_get("name")), pl.when(is_pipeline).then(_get("ref")), pl.lit(None, S)
        ),
        raw_status=raw,
        status=status,
        note=jobs.status_note(raw, STATUS, "GitLab CI"),
        created_at=_get("created_at"),
        queued_at=queued_at(_get("started_at"), _get("queued_duration"), _get("created_at")),
        started_at=_get("started_at"),
        stopped_at=finished,
        # GitLab counts a running job's duration up to the API call: only a finished one's
        duration_s=pl.when(finished.is_not_null()).then(
            _get("duration").cast(pl.Float64, strict=False)
        ),
        executor=executor_of(_get("tag_list")),
        runner=runner_of(_get("runner.id"), _get("runner.description"), _get("runner.name")),
        url=_get("web_url"),
        failure_reason=reason,
        failure_kind=failure_kind(reason),
        allow_failure=_get("allow_failure") == "true",
        tag_list=_get("tag_list"),
        stage=_get("stage"),
        runner_id=_nonempty(_get("runner.id")).cast(pl.Int64, strict=False),
        runner_type=_get("runner.runner_type"),
        runner_shared=_get("runner.is_shared") == "true",
        runner_manager=_nonempty(_get("runner_manager.system_id")),
        runner_version=_nonempty(_get("runner_manager.version")),
        project_id=pl.coalesce(_get("project_id"), _get("pipeline.project_id")).cast(
            pl.Int64, strict=False
        ),
        pipeline_id=pl.when(is_pipeline)
        .then(_get("id"))
        .otherwise(_get("pipeline.id"))
        .cast(pl.Int64, strict=False),
        pipeline_iid=pl.coalesce(pl.when(is_pipeline).then(_get("iid")), _get("pipeline.iid")).cast(
            pl.Int64, strict=False
        ),
        pipeline_source=pl.coalesce(_get("source"), _get("pipeline.source")),
        ref=_get("ref"),
        sha=pl.coalesce(_get("sha"), _get("pipeline.sha")),
        user=_get("user.username"),
        erased_at=_get("erased_at"),
        downstream_pipeline_id=_get("downstream_pipeline.id").cast(pl.Int64, strict=False),
        downstream_status=_get("downstream_pipeline.status"),
    ).with_columns(component=pl.col("name"))


EXTRA = {
    "record_type": pl.col("record_type"),
    "created_at": jobs.iso_utc(jobs.utc_time(pl.col("created_at"))),
    "stage": pl.col("stage"),
    "failure_reason": pl.col("failure_reason"),
    "failure_kind": pl.col("failure_kind"),
    "allow_failure": pl.when(pl.col("allow_failure")).then(True),
    "tag_list": pl.col("tag_list"),
    "runner_id": pl.col("runner_id"),
    "runner_type": pl.col("runner_type"),
    "runner_shared": pl.when(pl.col("runner_id").is_not_null()).then(pl.col("runner_shared")),
    "runner_manager": pl.col("runner_manager"),
    "runner_version": pl.col("runner_version"),
    "project_id": pl.col("project_id"),
    "pipeline_id": pl.col("pipeline_id"),
    "pipeline_iid": pl.col("pipeline_iid"),
    "pipeline_source": pl.col("pipeline_source"),
    "ref": pl.col("ref"),
    "sha": pl.col("sha"),
    "user": pl.col("user"),
    "erased_at": jobs.iso_utc(jobs.utc_time(pl.col("erased_at"))),
    "downstream_pipeline_id": pl.col("downstream_pipeline_id"),
    "downstream_status": pl.col("downstream_status"),
}


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One job row per GitLab job, trigger job or pipeline in the JSON; unparsed rows
    where the JSON breaks or an object is none of them (an error answer)."""
    is_job = (
        _get("id").is_not_null()
        & _get("status").is_not_null()
        & pl.coalesce(_get("name"), _get("iid")).is_not_null()
    )
    return jobs.json_job_records(
        lines,
        source=NAME,
        list_keys=LIST_KEYS,
        dtype=DTYPE,
        unwrap=unwrap,
        is_job=is_job,
        job_fields=job_fields,
        extra=EXTRA,
        detail=pl.col("failure_reason"),
    )


SAMPLES = (
    Sample(
        text="""[
  {
    "id": 7201446811,
    "status": "failed",
    "stage": "test",
    "name": "rspec 2/4",
    "ref": "main",
    "tag": false,
    "coverage": null,
    "allow_failure": false,
    "created_at": "2024-05-14T09:10:02.913Z",
    "started_at": "2024-05-14T09:12:31.482Z",
    "finished_at": "2024-05-14T09:13:33.795Z",
    "erased_at": null,
    "duration": 62.313361,
    "queued_duration": 4.871,
    "user": {
      "id": 4418,
      "username": "mkowalski",
      "name": "Marta Kowalski",
      "state": "active"
    },
    "commit": {
      "id": "3f6c2d9e8b7a41c05d2e9f8a7b6c5d4e3f2a1b0c",
      "short_id": "3f6c2d9e",
      "title": "Retry ledger writes on conflict",
      "created_at": "2024-05-14T11:09:41.000+02:00"
    },
    "pipeline": {
      "id": 1290817733,
      "iid": 48211,
      "project_id": 39114522,
      "sha": "3f6c2d9e8b7a41c05d2e9f8a7b6c5d4e3f2a1b0c",
      "ref": "main",
      "status": "failed",
      "source": "push",
      "created_at": "2024-05-14T09:10:02.771Z",
      "updated_at": "2024-05-14T09:21:40.015Z",
      "web_url": "https://gitlab.com/acme/payments/-/pipelines/1290817733"
    },
    "web_url": "https://gitlab.com/acme/payments/-/jobs/7201446811",
    "project": {
      "ci_job_token_scope_enabled": false
    },
    "artifacts": [],
    "runner": {
      "id": 30118744,
      "description": "k8s-large runners",
      "ip_address": null,
      "active": true,
      "paused": false,
      "is_shared": false,
      "runner_type": "group_type",
      "name": "gitlab-runner",
      "online": true,
      "status": "online"
    },
    "runner_manager": {
      "id": 5541871,
      "system_id": "r_M2SnBWn0aV2C",
      "version": "16.11.1",
      "revision": "535ced5f",
      "platform": "linux",
      "architecture": "amd64",
      "created_at": "2024-05-13T22:04:17.112Z",
      "contacted_at": "2024-05-14T09:13:30.006Z",
      "ip_address": "10.42.3.17",
      "status": "online"
    },
    "artifacts_expire_at": null,
    "archived": false,
    "tag_list": [
      "k8s-large"
    ],
    "failure_reason": "runner_system_failure"
  },
  {
    "id": 7201446815,
    "status": "pending",
    "stage": "test",
    "name": "rspec 4/4",
    "ref": "main",
    "tag": false,
    "coverage": null,
    "allow_failure": false,
    "created_at": "2024-05-14T09:10:02.961Z",
    "started_at": null,
    "finished_at": null,
    "erased_at": null,
    "duration": null,
    "queued_duration": 131.208,
    "pipeline": {
      "id": 1290817733,
      "iid": 48211,
      "project_id": 39114522,
      "sha": "3f6c2d9e8b7a41c05d2e9f8a7b6c5d4e3f2a1b0c",
      "ref": "main",
      "status": "running",
      "source": "push"
    },
    "web_url": "https://gitlab.com/acme/payments/-/jobs/7201446815",
    "artifacts": [],
    "runner": null,
    "runner_manager": null,
    "artifacts_expire_at": null,
    "archived": false,
    "tag_list": [
      "k8s-large"
    ]
  }
]
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "gitlab-ci",
            "kind": "job",
            "level": "error",
            "ts": "2024-05-14T09:12:26.611000+00:00",
            "attrs.runner_name": "k8s-large runners",
            "component": "rspec 2/4",
            "message": "job rspec 2/4 #7201446811 failed [runner_system_failure] "
            "(k8s-large, runner k8s-large runners, queued 4.9s, ran 62.3s)",
            "attrs.queue_delay_s": 4.871,
            "attrs.executor": "k8s-large",
            "attrs.failure_kind": "infrastructure",
            "attrs.pipeline_id": 1290817733,
        },
        rows=2,
    ),
    Sample(
        text="""[{"id":1290817733,"iid":48211,"project_id":39114522,"sha":"3f6c2d9e8b7a41c05d2e9f8a7b6c5d4e3f2a1b0c","ref":"main","status":"running","source":"push","created_at":"2024-05-14T09:10:02.771Z","updated_at":"2024-05-14T09:12:31.520Z","web_url":"https://gitlab.com/acme/payments/-/pipelines/1290817733","name":null},{"id":1290809120,"iid":48210,"project_id":39114522,"sha":"a81d0c7f2e9b34d6c5a1f0e9d8c7b6a5f4e3d2c1","ref":"main","status":"failed","source":"push","created_at":"2024-05-14T08:52:19.340Z","updated_at":"2024-05-14T09:04:55.871Z","web_url":"https://gitlab.com/acme/payments/-/pipelines/1290809120","name":null}]
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "gitlab-ci",
            "kind": "job",
            "level": "error",
            "ts": "2024-05-14T08:52:19.340000+00:00",
            "component": "main",
            "message": "pipeline main #1290809120 failed",
            "attrs.record_type": "pipeline",
            "attrs.pipeline_iid": 48210,
            "attrs.stopped_at": "2024-05-14T09:04:55.871Z",
        },
        rows=2,
    ),
)

registry.register(
    jobs.api_parser(
        NAME,
        "GitLab CI jobs, trigger jobs and pipelines from the REST API and glab (JSON)",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
    )
)
