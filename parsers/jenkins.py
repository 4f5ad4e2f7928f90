"""Jenkins builds and queue items from its remote API: one ``kind = job`` row each.

Reads what ``/api/json`` answers, saved as a file (pretty-printed or on one line, pages
one after another, JSON lines): a job's builds (``.../job/NAME/api/json?tree=builds[number,
result,timestamp,duration,building,queueId,url,fullDisplayName,builtOn]``, under
``builds`` or ``allBuilds``, of a freestyle project or a Pipeline job), one build
(``.../job/NAME/142/api/json``) and the queue (``/queue/api/json``: ``items`` each with
``inQueueSince``, ``why``, ``blocked``, ``buildable``, ``stuck`` and its ``task``). A
build's ``timestamp`` (epoch milliseconds) is when it left the queue and began, its
``duration`` how long it ran (0 while it runs); its ``result`` is null while
``building``. Every object says what it is in ``_class`` (``hudson.model.FreeStyleBuild``,
``org.jenkinsci.plugins.workflow.job.WorkflowRun``, ``hudson.model.Queue$BuildableItem``).

**Queue delay.** A build states how long it waited only where the metrics plugin added
its ``jenkins.metrics.impl.TimeInQueueAction`` to the build's ``actions``
(``queuingDurationMillis``, from entering the queue to leaving it): the build was then
queued that long before its ``timestamp``. Without it the wait is unknown, not zero, and
the row is placed at the build's start. A queue item has waited since ``inQueueSince``
and has not started: it is ``queued``, with no delay yet (the API does not say when it
was asked), and ``why`` (``Waiting for next available executor on ‘linux’``) is shown
beside its status.

**Where it ran.** ``builtOn`` (a freestyle build's agent; empty for the built-in node,
absent for Pipeline builds, whose agents only their console log names) is the runner,
``runner_name``, never a host. The executor, the pool a job waits for, is the label a
queue item waits on (``‘linux’`` in its ``why``); the API names none for a build.

**Names.** A job's full name is its URL's ``job/`` segments (``team/app-build`` for
``.../job/team/job/app-build/142/``), else the build's ``fullDisplayName`` without its
``#number`` (folders joined with `` » ``), else the queue item task's ``name``.
"""

from __future__ import annotations

import polars as pl

from parsers import jobs, registry
from parsers.registry import Sample, Score

NAME = "jenkins-api"
SOURCE = "jenkins"

#: A job's builds, a folder's or view's jobs' builds, the queue's items.
LIST_KEYS = ("builds", "allBuilds", "items")

#: A build's ``result``; null while it runs (see :func:`build_status`).
STATUS = {
    "success": "success",
    "failure": "failed",
    # the build ran to its end but its tests failed or a step marked it so
    "unstable": "failed",
    "aborted": "cancelled",
    "not_built": "other",
}

#: Keys only Jenkins' remote API writes.
LITERALS = (
    '"_class"',
    '"fullDisplayName"',
    '"inQueueSince"',
    '"queueId"',
    '"builtOn"',
    '"queuingDurationMillis"',
)
#: Class names of Jenkins' core and plugins, one of which every ``_class`` value has.
CLASS_PACKAGES = ('"hudson.', '"jenkins.', '"org.jenkinsci.', '"com.cloudbees.')

S = pl.String
#: What the metrics plugin's ``TimeInQueueAction`` says, and a ``CauseAction``'s causes.
ACTION = pl.Struct(
    {
        "_class": S,
        "queuingDurationMillis": S,
        "blockedDurationMillis": S,
        "buildableDurationMillis": S,
        "waitingDurationMillis": S,
        "causes": pl.List(pl.Struct({"shortDescription": S})),
    }
)
#: The fields read from a build or a queue item, leaves as text.
DTYPE = pl.Struct(
    {
        "_class": S,
        "id": S,
        "number": S,
        "result": S,
        "building": S,
        "timestamp": S,
        "duration": S,
        "queueId": S,
        "url": S,
        "fullDisplayName": S,
        "builtOn": S,
        "actions": pl.List(ACTION),
        "inQueueSince": S,
        "why": S,
        "blocked": S,
        "buildable": S,
        "stuck": S,
        "task": pl.Struct({"name": S, "url": S}),
    }
)

_get = jobs.field
#: The job's folders and name in a Jenkins URL: ``job/team/job/app-build/``.
JOB_PATH = r"((?:/job/[^/]+)+)"
#: The label a queue item waits for, as ``why`` names it.
WAITING_ON = r"Waiting for next available executor on ‘(.+)’"


def sniff(sample: list[str]) -> Score:
    """JSON whose ``_class`` names a Jenkins class is sure; Jenkins' own keys make it
    likely."""
    text = "\n".join(sample)
    if not text.lstrip("\ufeff \t\r\n").startswith(("{", "[")):
        return Score(0.0, "not JSON")
    if '"_class"' in text and any(f'"_class":{p}' in text.replace(" ", "") for p in CLASS_PACKAGES):
        return Score(0.95, "Jenkins class names in _class")
    hits = [key for key in LITERALS if key in text]
    return Score(min(0.9, 0.3 * len(hits)), f"Jenkins API keys: {', '.join(hits) or 'none'}")


def epoch_ms(text: pl.Expr) -> pl.Expr:
    """Epoch milliseconds, as text, as a UTC datetime; null where it is not a number.

    >>> pl.select(epoch_ms(pl.lit("1678816801123"))).item().isoformat()
    '2023-03-14T18:00:01.123000+00:00'
    """
    millis = text.cast(pl.Int64, strict=False)
    return pl.from_epoch(millis, time_unit="ms").dt.replace_time_zone("UTC")


def job_name(url: pl.Expr, display_name: pl.Expr) -> pl.Expr:
    """A job's full name: its URL's ``job/`` segments joined with ``/``, else the
    build's display name without its number.

    >>> pl.select(job_name(pl.lit("https://ci/job/team/job/app/142/"), pl.lit("x"))).item()
    'team/app'
    >>> pl.select(job_name(pl.lit(None, pl.String), pl.lit("team » app #142"))).item()
    'team » app'
    """
    segments = url.str.extract(JOB_PATH, 1).str.replace_all("/job/", "/", literal=True)
    return pl.coalesce(segments.str.strip_prefix("/"), display_name.str.replace(r" #[0-9]+$", ""))


def time_in_queue(actions: pl.Expr) -> pl.Expr:
    """The ``TimeInQueueAction`` among a build's ``actions``, or null."""
    timed = actions.list.eval(
        pl.element().filter(pl.element().struct.field("queuingDurationMillis").is_not_null())
    )
    return timed.list.first()


def build_status(result: pl.Expr, building: pl.Expr) -> pl.Expr:
    """A build's status: its ``result`` mapped, ``running`` while it is building (a
    Pipeline build may have its result set before it ends), null-result builds that
    are not building are ``other``."""
    return (
        pl.when(building == "true")
        .then(pl.lit("running"))
        .when(result.is_null())
        .then(pl.lit("other"))
        .otherwise(jobs.normalised_status(result, STATUS))
    )


def job_fields(items: pl.LazyFrame) -> pl.LazyFrame:
    """The fields of builds and queue items."""
    is_queued = _get("inQueueSince").is_not_null()
    timing = time_in_queue(_get("actions"))
    waited_ms = timing.struct.field("queuingDurationMillis").cast(pl.Int64, strict=False)
    started = pl.when(~is_queued).then(epoch_ms(_get("timestamp")))
    running = _get("building") == "true"
    ran_ms = _get("duration").cast(pl.Int64, strict=False)
    stopped = pl.when(~running & (ran_ms > 0)).then(started + pl.duration(milliseconds=ran_ms))
    queued = pl.coalesce(
        epoch_ms(_get("inQueueSince")), started - pl.duration(milliseconds=waited_ms)
    )
    task_url = _get("task.url")
    causes = _get("actions").list.eval(
        pl.element().struct.field("causes").explode().struct.field("shortDescription")
    )
    agent = _get("builtOn")
    # a queue item's own url is relative (queue/item/20981/); its task's names the job
    url = pl.when(is_queued).then(task_url).otherwise(_get("url"))
    return items.with_columns(
        noun=pl.when(is_queued).then(pl.lit("queue item")).otherwise(pl.lit("build")),
        record_type=pl.when(is_queued).then(pl.lit("queue_item")).otherwise(pl.lit("build")),
        number=pl.when(is_queued)
        .then(task_url.str.extract(r"/([0-9]+)/?$", 1))
        .otherwise(_get("number")),
        name=pl.coalesce(job_name(url, _get("fullDisplayName")), _get("task.name")),
        raw_status=pl.when(is_queued).then(pl.lit(None, S)).otherwise(_get("result")),
        status=pl.when(is_queued)
        .then(pl.lit("queued"))
        .otherwise(build_status(_get("result"), _get("building"))),
        note=pl.when(~is_queued).then(jobs.status_note(_get("result"), STATUS, "Jenkins")),
        created_at=pl.lit(None, S),
        queued_at=jobs.iso_utc(queued),
        started_at=jobs.iso_utc(started),
        stopped_at=jobs.iso_utc(stopped),
        duration_s=pl.when(stopped.is_not_null()).then(ran_ms.cast(pl.Float64) / 1000),
        executor=_get("why").str.extract(WAITING_ON, 1),
        # the built-in node's builds say "" for it
        runner=pl.when(agent != "").then(agent).when(agent == "").then(pl.lit("built-in")),
        url=url,
        why=_get("why"),
        queue_id=pl.coalesce(_get("queueId"), pl.when(is_queued).then(_get("id"))).cast(
            pl.Int64, strict=False
        ),
        blocked_s=timing.struct.field("blockedDurationMillis").cast(pl.Float64, strict=False)
        / 1000,
        buildable_s=timing.struct.field("buildableDurationMillis").cast(pl.Float64, strict=False)
        / 1000,
        stuck=pl.when(_get("stuck") == "true").then(True),
        blocked=pl.when(_get("blocked") == "true").then(True),
        cause=causes.list.drop_nulls().list.first(),
        build_class=_get("_class"),
    ).with_columns(component=pl.col("name"), job_id=build_id(is_queued))


def build_id(is_queued: pl.Expr) -> pl.Expr:
    """What names a build wherever it is read (its job's name and number, as its
    console log is named too), or a queue item (``queue/ID``)."""
    return (
        pl.when(is_queued)
        .then(pl.format("queue/{}", _get("id")))
        .otherwise(pl.format("{}#{}", pl.col("name"), pl.col("number")))
    )


EXTRA = {
    "record_type": pl.col("record_type"),
    "queue_id": pl.col("queue_id"),
    "why": pl.col("why"),
    "stuck": pl.col("stuck"),
    "blocked": pl.col("blocked"),
    "blocked_s": pl.col("blocked_s"),
    "buildable_s": pl.col("buildable_s"),
    "cause": pl.col("cause"),
    "class": pl.col("build_class"),
}


def parse(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One job row per build or queue item in the JSON; unparsed rows where the JSON
    breaks or an object is neither (a job without its builds' times, an error page)."""
    is_build = _get("number").is_not_null() & _get("timestamp").is_not_null()
    is_queue_item = _get("inQueueSince").is_not_null() & _get("task").is_not_null()
    return jobs.json_job_records(
        lines,
        source=SOURCE,
        list_keys=LIST_KEYS,
        dtype=DTYPE,
        is_job=is_build | is_queue_item,
        job_fields=job_fields,
        extra=EXTRA,
        detail=pl.col("why"),
    )


SAMPLES = (
    Sample(
        text="""{
  "_class" : "org.jenkinsci.plugins.workflow.job.WorkflowJob",
  "builds" : [
    {
      "_class" : "org.jenkinsci.plugins.workflow.job.WorkflowRun",
      "building" : false,
      "duration" : 184211,
      "fullDisplayName" : "team » app-build #142",
      "number" : 142,
      "queueId" : 20931,
      "result" : "FAILURE",
      "timestamp" : 1678816801123,
      "url" : "https://ci.example.com/job/team/job/app-build/142/"
    },
    {
      "_class" : "org.jenkinsci.plugins.workflow.job.WorkflowRun",
      "building" : true,
      "duration" : 0,
      "fullDisplayName" : "team » app-build #143",
      "number" : 143,
      "queueId" : 20977,
      "result" : null,
      "timestamp" : 1678817101456,
      "url" : "https://ci.example.com/job/team/job/app-build/143/"
    }
  ]
}
""",
        expect={
            "source": "jenkins",
            "kind": "job",
            "level": "error",
            "ts": "2023-03-14T18:00:01.123000+00:00",
            "component": "team/app-build",
            "message": "build team/app-build #142 failed [FAILURE] (ran 184.2s)",
            "attrs.queue_delay_s": None,
            "attrs.stopped_at": "2023-03-14T18:03:05.334Z",
        },
        rows=2,
    ),
    Sample(
        text="""{"_class":"hudson.model.Queue","discoverableItems":[],"items":[{"_class":"hudson.model.Queue$BuildableItem","actions":[{"_class":"hudson.model.CauseAction","causes":[{"_class":"hudson.model.Cause$UserIdCause","shortDescription":"Started by user Jane Doe","userId":"jane","userName":"Jane Doe"}]}],"blocked":false,"buildable":true,"id":20981,"inQueueSince":1678817400123,"params":"","stuck":true,"task":{"_class":"hudson.model.FreeStyleProject","name":"deploy","url":"https://ci.example.com/job/deploy/","color":"blue"},"url":"queue/item/20981/","why":"Waiting for next available executor on ‘linux’","buildableStartMilliseconds":1678817400130,"pending":false}]}
""",  # noqa: E501 (real lines are long)
        expect={
            "source": "jenkins",
            "kind": "job",
            "level": "info",
            "ts": "2023-03-14T18:10:00.123000+00:00",
            "component": "deploy",
            "attrs.status": "queued",
            "attrs.executor": "linux",
            "attrs.stuck": True,
            "attrs.cause": "Started by user Jane Doe",
        },
        rows=1,
    ),
)

registry.register(
    jobs.api_parser(
        NAME,
        "Jenkins builds and queue items from the remote API (/api/json)",
        sniff=sniff,
        parse=parse,
        samples=SAMPLES,
        literals=LITERALS,
    )
)
