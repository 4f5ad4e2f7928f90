"""CircleCI API v2 jobs: every saved shape becomes job rows with queue delays, nothing lost."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import parsers
import timeline
from parsers import jobs
from parsers.common import LINE_SCHEMA
from tests.lines import every_line_accounted as accounted
from tests.lines import read_real


def job_detail(number: int, name: str = "build-and-test", **changes) -> dict:
    """A job as ``GET /project/{slug}/job/{number}`` answers, with real field names."""
    job = {
        "web_url": f"https://app.circleci.com/pipelines/github/acme/api/8812/workflows/"
        f"5034460f-c7c4-4c43-9457-de07e2029e7b/jobs/{number}",
        "project": {
            "external_url": "https://github.com/acme/api",
            "slug": "gh/acme/api",
            "name": "api",
            "id": "9f1c2f6a-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        },
        "parallel_runs": [{"index": 0, "status": "success"}],
        "started_at": "2023-03-14T18:02:15.612Z",
        "latest_workflow": {"name": "main", "id": "5034460f-c7c4-4c43-9457-de07e2029e7b"},
        "name": name,
        "executor": {"resource_class": "medium", "type": "docker"},
        "parallelism": 1,
        "status": "success",
        "number": number,
        "pipeline": {"id": "1e2d3c4b-5a69-7887-9a0b-1c2d3e4f5061"},
        "duration": 61204,
        "created_at": "2023-03-14T18:02:09.871Z",
        "messages": [],
        "contexts": [{"name": "org-global"}],
        "organization": {"name": "acme"},
        "queued_at": "2023-03-14T18:02:11.412Z",
        "stopped_at": "2023-03-14T18:03:16.816Z",
    }
    job.update(changes)
    return job


WORKFLOW_JOBS = {
    "next_page_token": None,
    "items": [
        {
            "dependencies": [],
            "job_number": 482120,
            "id": "c1a5e1d2-58f3-4b8e-9d4c-2f1b0e6a7c90",
            "started_at": "2023-03-14T19:41:02Z",
            "name": "integration-tests",
            "project_slug": "gh/acme/api",
            "status": "timedout",
            "type": "build",
            "stopped_at": "2023-03-14T19:51:02Z",
        },
        {
            "dependencies": ["c1a5e1d2-58f3-4b8e-9d4c-2f1b0e6a7c90"],
            "id": "7e0a3c55-2b1f-4d8e-a6c9-0f1e2d3c4b5a",
            "name": "hold-for-approval",
            "project_slug": "gh/acme/api",
            "status": "on_hold",
            "type": "approval",
            "approval_request_id": "7e0a3c55-2b1f-4d8e-a6c9-0f1e2d3c4b5a",
        },
    ],
}


def attrs(events: pl.DataFrame) -> list[dict]:
    return [json.loads(a) for a in events.sort("line")["attrs"]]


def test_job_detail_gives_one_job_row_with_queue_delay(read):
    loaded = read("job-482113.json", json.dumps(job_detail(482113), indent=2) + "\n")
    assert loaded.summary.files["format"].to_list() == ["circleci"]
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0
    row = loaded.events.row(0, named=True)
    assert row["kind"] == "job" and row["source"] == "circleci" and row["level"] == "info"
    assert row["ts"] == datetime(2023, 3, 14, 18, 2, 11, 412000, tzinfo=UTC)
    # the executor is a kind of machine the job asked for, not a host of the cluster
    assert row["component"] == "build-and-test" and row["host"] is None
    assert row["message"] == "job build-and-test #482113 success (docker, queued 4.2s, ran 61.2s)"
    a = json.loads(row["attrs"])
    assert a["job_id"] == "482113" and a["status"] == "success" and a["raw_status"] == "success"
    assert a["queued_at"] == "2023-03-14T18:02:11.412Z"
    assert a["started_at"] == "2023-03-14T18:02:15.612Z"
    assert a["stopped_at"] == "2023-03-14T18:03:16.816Z"
    assert a["queue_delay_s"] == pytest.approx(4.2)
    assert a["duration_s"] == pytest.approx(61.204)  # the API's own ms duration
    assert a["url"].endswith("/jobs/482113") and a["workflow"] == "main"
    assert a["project"] == "gh/acme/api" and a["resource_class"] == "medium"


def test_array_of_jobs_spans_every_line_from_where_each_object_starts(read):
    text = json.dumps([job_detail(1), job_detail(2), job_detail(3)], indent=2) + "\n"
    loaded = read("jobs.json", text)
    lines = text.splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if line == "  {"]
    assert loaded.events.sort("line")["line"].to_list() == [1, *starts[1:]]
    assert loaded.summary.unparsed_lines == 0 and accounted(loaded)


def test_paged_response_keeps_page_token_lines_inside_the_last_job(read):
    page = {"items": [job_detail(10), job_detail(11, status="running", stopped_at=None)]}
    page["next_page_token"] = "AARLwwV4YbW2KqBsUqh6BLZYtu5uxUN8m8e0dVuc0wAQ7wM2bOzz5pn"
    loaded = read("page-1.json", json.dumps(page, indent=2))
    running = loaded.events.filter(pl.col("message").str.contains("#11")).row(0, named=True)
    a = json.loads(running["attrs"])
    assert a["status"] == "running" and a["stopped_at"] is None and a["queue_delay_s"] == 4.2
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0


def test_pages_in_several_files_load_together(write):
    first = write("pages/1.json", json.dumps({"items": [job_detail(1)], "next_page_token": "x"}))
    second = write("pages/2.json", json.dumps({"items": [job_detail(2)], "next_page_token": None}))
    loaded = timeline.read([first, second])
    assert sorted(json.loads(a)["job_id"] for a in loaded.events["attrs"]) == ["1", "2"]
    assert loaded.summary.files["format"].to_list() == ["circleci", "circleci"]


def test_pages_one_after_another_in_one_file(read):
    page1 = json.dumps({"items": [job_detail(1), job_detail(2)], "next_page_token": "a"})
    page2 = json.dumps({"items": [job_detail(3)], "next_page_token": None}, indent=2)
    loaded = read("all-pages.json", page1 + "\n" + page2 + "\n")
    assert loaded.events.height == 3 and loaded.summary.unparsed_lines == 0
    assert loaded.events.sort("line")["line"].to_list() == [1, 1, 4]  # where page 2's job starts


def test_json_lines_of_pages_keep_each_page_on_its_line(read):
    pages = [
        {"items": [job_detail(1), job_detail(2)], "next_page_token": "AARLwwV4"},
        {"items": [job_detail(3)], "next_page_token": None},
    ]
    loaded = read("pages.jsonl", "".join(json.dumps(p) + "\n" for p in pages))
    assert sorted(loaded.events["line"].to_list()) == [1, 1, 2]
    assert loaded.summary.unparsed_lines == 0


def test_json_lines_one_job_per_line_and_a_bad_line_is_reported_alone(read):
    good = [json.dumps(job_detail(n)) for n in (100, 101, 102)]
    text = "\n".join([good[0], "", good[1], good[2][:120], json.dumps(job_detail(103))]) + "\n"
    loaded = read("jobs.jsonl", text)
    assert sorted(loaded.events["line"].to_list()) == [1, 3, 5]
    warnings = loaded.summary.warnings.filter(pl.col("line").is_not_null())
    assert warnings["line"].to_list() == [4]
    assert "JSON breaks at line 4" in warnings["reason"][0]


def test_one_line_page_puts_every_job_on_line_1(read):
    loaded = read("page.json", json.dumps(WORKFLOW_JOBS))
    assert loaded.events["line"].to_list() == [1, 1]
    assert loaded.summary.unparsed_lines == 0


def test_workflow_job_list_has_no_queue_time(read):
    loaded = read("workflow-jobs.json", json.dumps(WORKFLOW_JOBS, indent=2))
    timedout, held = attrs(loaded.events)
    assert timedout["status"] == "failed" and timedout["raw_status"] == "timedout"
    assert timedout["queued_at"] is None and timedout["queue_delay_s"] is None
    assert timedout["duration_s"] == 600.0 and timedout["job_id"] == "482120"
    assert timedout["job_uuid"] == "c1a5e1d2-58f3-4b8e-9d4c-2f1b0e6a7c90"
    first = loaded.events.sort("line").row(0, named=True)
    assert first["level"] == "error"
    assert first["ts"] == datetime(2023, 3, 14, 19, 41, 2, tzinfo=UTC)  # started, not queued
    assert held["status"] == "other" and held["job_type"] == "approval"
    assert "note" not in held  # on_hold is a known status


def test_unknown_status_is_other_keeps_raw_and_is_noted(read):
    loaded = read("odd.json", json.dumps(job_detail(7, status="paused_for_maintenance")))
    row = loaded.events.row(0, named=True)
    a = json.loads(row["attrs"])
    assert a["status"] == "other" and a["raw_status"] == "paused_for_maintenance"
    assert "unknown CircleCI status 'paused_for_maintenance'" in a["note"]
    assert row["level"] == "info" and "paused_for_maintenance" in row["message"]


@pytest.mark.parametrize(
    ("raw", "status", "level"),
    [
        ("success", "success", "info"),
        ("failed", "failed", "error"),
        ("infrastructure_fail", "failed", "error"),
        ("terminated-unknown", "failed", "error"),
        ("canceled", "cancelled", "warning"),
        ("running", "running", "info"),
        ("queued", "queued", "info"),
        ("not_running", "queued", "info"),
        ("not_run", "other", "info"),
        ("blocked", "other", "info"),
    ],
)
def test_circleci_statuses_are_normalised(read, raw, status, level):
    loaded = read("job.json", json.dumps(job_detail(5, status=raw)))
    row = loaded.events.row(0, named=True)
    assert json.loads(row["attrs"])["status"] == status and row["level"] == level


def test_queued_job_has_no_delay_yet(read):
    job = job_detail(9, status="queued", started_at=None, stopped_at=None, duration=None)
    row = read("q.json", json.dumps(job)).events.row(0, named=True)
    assert json.loads(row["attrs"])["queue_delay_s"] is None
    assert row["message"] == "job build-and-test #9 queued (docker, not started)"


def test_truncated_page_keeps_complete_jobs_and_names_the_break(read):
    lines = json.dumps({"items": [job_detail(n) for n in (1, 2, 3)]}, indent=2).splitlines()
    second = [i + 1 for i, line in enumerate(lines) if line == "    {"][1]
    keep = second + 20  # the file ends 20 lines into the second job
    loaded = read("cut.json", "\n".join(lines[:keep]) + "\n")
    assert [json.loads(a)["job_id"] for a in loaded.events["attrs"]] == ["1"]
    warnings = loaded.summary.warnings.filter(pl.col("line").is_not_null())
    assert warnings["line"].to_list() == list(range(second, keep + 1))
    assert warnings["reason"][0] == (
        f"JSON breaks at line {keep} (the text ends inside a value); 1 complete items "
        f"before it were read, the one from line {second} on was lost"
    )
    assert loaded.summary.files["continuation_lines"].to_list() == [second - 2]
    assert accounted(loaded)


def test_truncated_one_line_page_keeps_what_is_complete(read):
    text = json.dumps({"items": [job_detail(1), job_detail(2)]})
    loaded = read("cut.json", text[: len(text) - 300])
    assert [json.loads(a)["job_id"] for a in loaded.events["attrs"]] == ["1"]
    reasons = loaded.summary.warnings["reason"].drop_nulls().to_list()
    assert reasons and reasons[0].startswith("JSON breaks at line 1 (the text ends inside a value)")


def test_error_response_is_not_a_job(read):
    text = '{\n  "message": "Job not found"\n}\n'
    assert read("missing.json", text).summary.files["format"].to_list() == [None]
    forced = read("missing.json", text, format="circleci")
    assert forced.events.height == 0 and forced.summary.unparsed_lines == 3
    assert set(forced.summary.warnings["reason"]) == {
        "a JSON object that is not a circleci job record"
    }


def test_an_object_that_is_not_a_job_is_reported(read):
    page = {"items": [job_detail(1), {"kind": "artifact", "path": "junit.xml"}]}
    loaded = read("mixed.json", json.dumps(page, indent=2))
    assert loaded.events.height == 1
    reasons = set(loaded.summary.warnings["reason"].drop_nulls())
    assert reasons == {"a JSON object that is not a circleci job record"}
    assert accounted(loaded)


@pytest.mark.parametrize(
    ("executor", "expected"),
    [
        ({"type": "docker", "resource_class": "large"}, "docker"),
        ({"type": "machine", "resource_class": "medium"}, "machine"),
        ({"type": "macos", "resource_class": "macos.m1.medium.gen1"}, "macos"),
        ({"type": "machine", "resource_class": "windows.medium"}, "windows"),
        ({"type": "windows", "resource_class": "windows.large"}, "windows"),
        ({"type": "machine", "resource_class": "acme/linux-runner"}, "acme/linux-runner"),
    ],
)
def test_executor_types(read, executor, expected):
    row = read("job.json", json.dumps(job_detail(3, executor=executor))).events.row(0, named=True)
    assert json.loads(row["attrs"])["executor"] == expected
    assert row["host"] is None and f"({expected}, queued" in row["message"]


def test_stated_offset_is_brought_to_utc(read):
    job = job_detail(4, queued_at="2023-03-14T20:02:11.412+02:00")
    row = read("job.json", json.dumps(job)).events.row(0, named=True)
    assert row["ts"] == datetime(2023, 3, 14, 18, 2, 11, 412000, tzinfo=UTC)
    assert json.loads(row["attrs"])["queue_delay_s"] == pytest.approx(4.2)


def test_github_documents_are_not_taken_for_circleci():
    gh = json.dumps(
        {
            "total_count": 1,
            "jobs": [
                {
                    "id": 1,
                    "run_id": 2,
                    "status": "completed",
                    "conclusion": "success",
                    "runner_name": "x",
                    "completed_at": "2023-03-14T18:00:00Z",
                }
            ],
        },
        indent=2,
    ).splitlines()
    assert parsers.registry.get("circleci").sniff(gh).score < 0.5
    cci = json.dumps(WORKFLOW_JOBS, indent=2).splitlines()
    best, score = parsers.registry.rank(cci)[0]
    assert best.name == "circleci" and score.score >= 0.5


def test_parse_on_lines_directly_accounts_for_blank_lines():
    text = ["", json.dumps(job_detail(1)), "", json.dumps(job_detail(2)), ""]
    lines = (
        pl.LazyFrame(
            {"line": range(1, 6), "end_line": range(1, 6), "text": text, "path": "x.jsonl"}
        )
        .with_columns(
            prefix_ts=pl.lit(None), stream=pl.lit(None), host=pl.lit(None), container=pl.lit(None)
        )
        .select([pl.col(c).cast(t) for c, t in LINE_SCHEMA.items()])
    )
    out = parsers.registry.get("circleci").parse(lines).collect().sort("line")
    assert out.select("line", "end_line").rows() == [(1, 3), (4, 5)]


def test_walk_json_reports_where_text_breaks():
    items, broken = jobs.walk_json('{"items": [{"a": 1}, {"a": 2} {"a": 3}]}', ["items"])
    assert [key for _start, _end, key in items] == ["items", "items"]
    assert broken == (30, 30, "expected ',' or ']', found '{'")


def test_many_saved_pages_read_together_give_each_file_its_own_rows(tmp_path, spy):
    """An export of hundreds of API pages, one file each, is read in a few queries; files
    that are not one JSON value a line (pretty-printed, broken, with a blank line) are
    read on their own, and every file gets the rows and warnings of a read of it alone."""
    from tests.test_github_actions import gh_job
    from timeline.reading import mapper

    rng = random.Random(12)
    number = 9000
    texts = {}
    for page in range(30):
        items = []
        for _ in range(rng.randint(1, 6)):
            number += 1
            items.append(job_detail(number, rng.choice(["lint", "unit", "deploy"])))
        if rng.random() < 0.2:
            items.append({"id": "not-a-job", "kind": "annotation"})
        body = {"next_page_token": f"tok{page}" if page < 29 else None, "items": items}
        texts[f"circleci/jobs-page-{page:03d}.json"] = json.dumps(body)
    texts["circleci/pretty.json"] = json.dumps({"items": [job_detail(1)]}, indent=2)
    texts["circleci/cut.json"] = json.dumps({"items": [job_detail(2), job_detail(3)]})[:900]
    texts["circleci/blank.jsonl"] = json.dumps(job_detail(4)) + "\n\n" + json.dumps(job_detail(5))
    texts["circleci/lines.jsonl"] = "".join(json.dumps(job_detail(n)) + "\n" for n in (6, 7))
    texts["actions/jobs.jsonl"] = "".join(
        json.dumps(gh_job(7000 + k, f"build-{k}")) + "\n" for k in range(3)
    )
    files = []
    for name, text in texts.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text if text.endswith("\n") else text + "\n")
        files.append(str(tmp_path / name))
    one_by_one = [mapper.map_task(mapper.Task(f)) for f in files]
    groups = spy(mapper, "_parse_together")
    together = mapper.map_batch([mapper.Task(f) for f in files])
    assert sorted(len(indexes) for _, indexes in groups) == [31], (
        "the one-line pages and JSON lines of CircleCI together"
    )
    for alone, batched in zip(one_by_one, together, strict=True):
        assert batched.format == alone.format and alone.format in ("circleci", "github-actions")
        assert batched.records.equals(alone.records), alone.path
        assert batched.warnings.equals(alone.warnings), alone.path
        assert (batched.rows, batched.covered_lines) == (alone.rows, alone.covered_lines)
    cut = together[files.index(str(tmp_path / "circleci/cut.json"))]
    assert cut.rows == 1 and "JSON breaks" in cut.warnings["reason"][0]


@pytest.mark.parametrize("seed", [3, 17])
def test_pages_saved_one_a_line_give_the_items_of_each_page_read_alone(seed):
    """An export that saves every API page on a line of its own: its pages are decoded
    together, and every line gives what walking that line alone gives, whatever its
    shape (several list keys, an empty or cut page, items that are not jobs or do not fit
    the job's fields, values of any JSON type)."""
    from parsers import circleci, github_actions
    from tests.test_github_actions import gh_job

    rng = random.Random(seed)
    number = 100

    def circle_page() -> dict:
        nonlocal number
        items = []
        for _ in range(rng.randint(1, 5)):
            number += 1
            job = job_detail(number, rng.choice(["lint", "unit-tests", "deploy-eu"]))
            if rng.random() < 0.3:
                job.update(parallelism=rng.choice([1, 4.0, True, None]), duration=None)
            items.append(job)
        if rng.random() < 0.3:
            items.insert(rng.randrange(len(items) + 1), rng.choice([None, {"kind": "note"}]))
        return {"next_page_token": rng.choice([None, "AARLwwV4"]), "items": items}

    def gh_page() -> dict:
        nonlocal number
        number += 1
        runs = [gh_job(number * 10 + k, f"build-{k}") for k in range(rng.randint(1, 3))]
        return {"total_count": len(runs), rng.choice(["jobs", "workflow_runs"]): runs}

    def lines_of(pages: list[dict], odd: list[str]) -> list[str]:
        texts = [json.dumps(p, ensure_ascii=rng.random() < 0.5) for p in pages]
        for text in odd:
            texts.insert(rng.randrange(len(texts) + 1), text)
        return texts

    circle = lines_of(
        [circle_page() for _ in range(12)],
        [
            json.dumps({"items": [], "next_page_token": None}),
            json.dumps({"items": [job_detail(1)], "next_page_token": None})[:300],
            json.dumps(job_detail(2, "ünïcode-job")),
        ],
    )
    actions = lines_of(
        [gh_page() for _ in range(8)],
        [json.dumps({"workflow_runs": [gh_job(1, "a")], "jobs": [gh_job(2, "b")]})],
    )
    misfit = [json.dumps(circle_page()) for _ in range(3)]
    misfit.insert(1, json.dumps({"items": [job_detail(3, executor="docker")]}))
    cases = [
        (circle, circleci.LIST_KEYS, circleci.DTYPE),
        (actions, github_actions.LIST_KEYS, github_actions.DTYPE),
        (misfit, circleci.LIST_KEYS, circleci.DTYPE),
    ]
    for texts, keys, dtype in cases:
        lines = pl.LazyFrame(
            {"line": range(1, len(texts) + 1), "text": texts},
            schema={"line": pl.UInt32, "text": pl.String},
        )
        together = jobs.json_items(lines, keys, dtype)
        walked = pl.concat(
            jobs._items_of_document(pl.DataFrame({"line": [n], "text": [t]}), keys, dtype)
            for n, t in enumerate(texts, start=1)
        )
        assert together.to_dicts() == walked.to_dicts()
        assert together.filter(pl.col("reason").is_null()).height > len(texts)


REAL = Path(__file__).parent / "data" / "real" / "circleci"


@pytest.mark.parametrize(
    ("name", "jobs"),
    [
        # name, line, time (queued_at, else started_at), queue delay, run time
        ("job-details-v2.json", [("build", 1, "2020-12-24T12:59:24.256", 2.98, 41.658)]),
        ("workflow-jobs.json", [("build", 1, "2020-12-24T12:59:27.000", None, 41.0)]),
        (
            "workflow-jobs-approval.json",
            [
                # an approval gate: no job number, no time at all
                ("approve_prod", 1, None, None, None),
                ("build_and_deploy_prod", 13, "2020-12-18T16:18:02.000", None, 496.0),
            ],
        ),
    ],
)
def test_real_api_v2_responses_are_a_job_row_each(name, jobs):
    """API v2 responses a public repository quotes (LF-Engineering/da-ds
    ``circleci/README.md``: job details, and a workflow's jobs with and without an
    approval), pretty-printed with CircleCI's ``" : "``: a job row per job, on the line its
    object starts, at its queue time where the response has one."""
    loaded = read_real(REAL / name)
    rows = loaded.events.sort("line")
    assert set(rows["kind"]) == {"job"} and set(rows["level"]) == {"info"}
    assert rows.height == len(jobs)
    for row, (component, line, ts, queued, ran) in zip(
        rows.iter_rows(named=True), jobs, strict=True
    ):
        assert (row["component"], row["line"]) == (component, line)
        assert (row["ts"] and row["ts"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]) == ts
        attrs = json.loads(row["attrs"])
        assert (attrs["queue_delay_s"], attrs["duration_s"]) == (queued, ran)


def test_real_api_v1_1_shallow_recent_build_is_queued_at_queued_at_not_usage_queued_at():
    """API v1.1 ``recent-builds?shallow=true`` as CircleCI's API reference quotes it (tab
    indented, a 2.0 build with its workflow): one job row named after its workflow job,
    at ``queued_at``, waiting 1.643 s for a machine (not from ``usage_queued_at``, when
    the plan let it queue), running ``build_time_millis``."""
    loaded = read_real(REAL / "recent-builds-v1.1-shallow.json")
    assert loaded.events.height == 1
    row = loaded.events.row(0, named=True)
    assert (row["kind"], row["level"], row["component"], row["host"], row["line"]) == (
        "job",
        "info",
        "build-preview",
        None,
        1,
    )
    assert row["ts"] == datetime(2019, 4, 12, 17, 46, 11, 289000, tzinfo=UTC)
    attrs = json.loads(row["attrs"])
    assert (attrs["queue_delay_s"], attrs["duration_s"]) == (1.643, 89.366)
    assert (attrs["job_number"], attrs["workflow"], attrs["status"]) == (
        16315,
        "build-website",
        "success",
    )
