"""The reading pipeline as a map and a reduce: chunks of big files, worker processes, the
partial cache, the event store and a Dask cluster all give the rows of a plain read."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import parsers
import timeline
from parsers import routing, wrappers
from tests.lines import every_line_accounted as accounted
from timeline.cli import app
from timeline.errors import TimelineError
from timeline.reading import executor, loader, mapper
from timeline.reading import store as event_store
from timeline.reading.lines import split_lines, split_many
from timeline.schema import KIND, TIME_ORDER, time_order

KEY = ["file", "line", "ts", "source", "host", "component", "level", "message", "template"]


def kube_proxy_log(rng: random.Random, start: datetime, n: int, *, prefix: bool) -> str:
    """kube-proxy lines as klog writes them, with multi-line ``err=<`` blocks and a panic
    now and then, optionally behind a CRI prefix."""
    out = []
    t = start
    for i in range(n):
        t += timedelta(seconds=rng.randint(1, 40), microseconds=rng.randint(0, 999_999))
        head = f"{t:%m%d %H:%M:%S.%f}    {rng.randint(1, 9)}"
        kind = rng.random()
        if kind < 0.1:
            lines = [
                f'E{head} proxier.go:1520] "Failed to execute iptables-restore" err=<',
                "\texit status 2: iptables-restore v1.8.7 (legacy): "
                f"Couldn't load target `KUBE-SVC-{rng.getrandbits(40):X}'",
                f"\tError occurred at line: {rng.randint(10, 9999)}",
                "\t >",
            ]
        elif kind < 0.12:
            lines = [
                f"E{head} runtime.go:79] Observed a panic: invalid memory address",
                "goroutine 1 [running]:",
                "k8s.io/kubernetes/pkg/proxy/iptables.(*Proxier).syncProxyRules(0xc000aa8)",
            ]
        else:
            lines = [
                f'I{head} proxier.go:{rng.choice([823, 1508])}] "Syncing iptables rules" ip={i % 7}'
            ]
        if prefix:
            stamp = f"{t.year}-{t:%m-%dT%H:%M:%S.%f}123Z stderr F "
            lines = [stamp + line for line in lines]
        out.extend(lines)
    return "\n".join(out) + "\n"


def rabbitmq_log(rng: random.Random, start: datetime, n: int) -> str:
    """RabbitMQ 3.8 lager lines mixed with multi-line error reports."""
    out = []
    t = start
    for i in range(n):
        t += timedelta(seconds=rng.randint(1, 30), microseconds=rng.randint(0, 999_999))
        stamp = f"{t:%Y-%m-%d %H:%M:%S.%f}"[:-3]
        if rng.random() < 0.15:
            out += [
                f"{stamp} [error] <0.{rng.randint(100, 9999)}.0> closing AMQP connection "
                f"<0.{i}.0> (10.0.{rng.randint(0, 9)}.{rng.randint(1, 250)}:5672 -> "
                "10.0.0.5:5672):",
                "missed heartbeats from client, timeout: 60s",
            ]
        else:
            out.append(
                f"{stamp} [info] <0.{rng.randint(100, 9999)}.0> accepting AMQP connection "
                f"<0.{i}.0> (10.0.1.{rng.randint(1, 250)}:4{rng.randint(1000, 9999)} -> "
                "10.0.0.5:5672)"
            )
    return "\n".join(out) + "\n"


@pytest.fixture
def logs(tmp_path):
    rng = random.Random(20240611)
    node = tmp_path / "ip-10-1-2-3" / "var/log/pods/kube-system_kube-proxy-q8x2d_9f1c/kube-proxy"
    node.mkdir(parents=True)
    (node / "0.log").write_text(kube_proxy_log(rng, datetime(2024, 6, 11, 7, 0), 1500, prefix=True))
    (tmp_path / "kube-proxy.log").write_text(
        kube_proxy_log(rng, datetime(2024, 12, 31, 20, 0), 1200, prefix=False)
    )
    (tmp_path / "rabbit@mq-0.log").write_text(rabbitmq_log(rng, datetime(2024, 6, 11, 7), 900))
    return tmp_path


def rows(loaded: timeline.Loaded) -> pl.DataFrame:
    return loaded.events.select(KEY).sort("file", "line", "message")


def test_big_files_read_in_chunks_give_the_rows_of_a_whole_read(logs, monkeypatch):
    whole = timeline.read(logs, cache=False, year=2024)
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 16 << 10)
    tasks = {str(p): mapper.plan(str(p)) for p in logs.rglob("*.log")}
    assert all(len(t) > 3 for t in tasks.values()), "every file is cut into several chunks"
    for parts in tasks.values():
        assert [t.start for t in parts[1:]] == [t.end for t in parts[:-1]]
    chunked = timeline.read(logs, cache=False, year=2024)
    assert rows(chunked).equals(rows(whole))
    assert chunked.summary.files.drop("score").equals(whole.summary.files.drop("score"))
    assert accounted(chunked.summary)
    assert chunked.summary.unparsed_lines == 0
    # the yearless file runs from December into January: the year moves on in its chunks
    plain = chunked.events.filter(pl.col("file").str.ends_with("/kube-proxy.log"))
    assert plain["ts"].dt.year().unique().sort().to_list() == [2024, 2025]
    assert plain["ts"].is_sorted()


def test_no_chunk_starts_inside_a_record(logs, monkeypatch):
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 8 << 10)
    path = str(logs / "rabbit@mq-0.log")
    data = (logs / "rabbit@mq-0.log").read_bytes()
    for task in mapper.plan(path)[1:]:
        assert data[task.start - 1 : task.start] == b"\n"
        assert data[task.start : task.start + 2] == b"20", "a chunk starts at a record's time"


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_a_big_file_is_cut_in_even_chunks_one_for_each_worker(logs, monkeypatch, parts):
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 64 << 10)
    path = logs / "rabbit@mq-0.log"
    size = path.stat().st_size
    chunks = mapper.plan(str(path), parts=parts)
    assert len(chunks) % parts == 0 and len(chunks) >= -(-size // mapper.CHUNK_BYTES)
    lengths = [t.end - t.start for t in chunks]
    assert max(lengths) <= mapper.CHUNK_BYTES
    assert max(lengths) - min(lengths) < 2048, "no chunk much longer than another"


@pytest.mark.parametrize("pieces", [2, 6])
def test_the_chunks_of_big_files_are_read_and_finished_in_threads(logs, monkeypatch, pieces):
    """Two chunks, or more than processes would be started for: the chunks of big files
    are polars queries with little Python around them, read and finished in threads."""
    path = logs / "rabbit@mq-0.log"
    alone = timeline.read(path, cache=False, workers=1)
    monkeypatch.setattr(loader, "MIN_BYTES_FOR_WORKERS", 0)
    monkeypatch.setattr(loader, "BATCH_BYTES", 1)  # each chunk a batch of its own
    monkeypatch.setattr(mapper, "CHUNK_BYTES", path.stat().st_size // (pieces - 1) - 1)
    started = []

    class CountingThreads(executor.ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            started.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(executor, "ThreadPoolExecutor", CountingThreads)
    monkeypatch.setattr(executor, "ProcessPoolExecutor", None)  # never started
    side_by_side = timeline.read(path, cache=False, workers=2)
    assert pieces >= executor.MIN_TASKS_FOR_WORKERS or pieces == 2
    assert started == ["map_batch"] * pieces + ["finish_job"] * pieces, (
        "each chunk read, then finished, in a thread"
    )
    assert rows(side_by_side).equals(rows(alone))
    assert side_by_side.summary.files.drop("score").equals(alone.summary.files.drop("score"))


def test_worker_processes_give_the_rows_of_a_read_in_this_process(logs, monkeypatch):
    # a small whole file among the chunks: not only chunks, so processes, not threads
    (logs / "coredns.log").write_text(coredns_log(random.Random(3), datetime(2024, 6, 11, 7), 20))
    monkeypatch.setattr(loader, "MIN_BYTES_FOR_WORKERS", 0)
    monkeypatch.setattr(loader, "BATCH_BYTES", 32 << 10)
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 32 << 10)
    submitted = []

    class CountingPool(ProcessPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            submitted.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(executor, "ProcessPoolExecutor", CountingPool)
    alone = timeline.read(logs, cache=False, workers=1)
    assert submitted == []
    pooled = timeline.read(logs, cache=False, workers=2)
    assert submitted.count("map_batch") >= executor.MIN_TASKS_FOR_WORKERS
    assert "finish_job" not in submitted, "the finish's polars queries run in threads"
    assert rows(pooled).equals(rows(alone))
    assert pooled.summary.assumptions.sort("file", "what").equals(
        alone.summary.assumptions.sort("file", "what")
    )


@pytest.mark.parametrize("cores", [2, 8])
def test_each_worker_process_runs_polars_on_its_share_of_the_cores(monkeypatch, cores):
    """Worker processes on every core, each with polars' threads on every core, contend
    for the cores; a ``POLARS_MAX_THREADS`` the user set stands."""
    monkeypatch.delenv(executor.POLARS_THREADS_ENV, raising=False)
    monkeypatch.setattr(executor, "default_workers", lambda: cores)
    asked = [executor.POLARS_THREADS_ENV] * executor.MIN_TASKS_FOR_WORKERS
    seen = [value for _, value in executor.run(os.getenv, asked, workers=2)]
    assert seen == [str(cores // 2)] * len(asked)
    assert executor.POLARS_THREADS_ENV not in os.environ, "this process's own is left alone"
    monkeypatch.setenv(executor.POLARS_THREADS_ENV, "3")
    seen = [value for _, value in executor.run(os.getenv, asked, workers=2)]
    assert seen == ["3"] * len(asked)


def test_unchanged_files_are_not_read_again_and_changed_ones_are(logs, tmp_path_factory, spy):
    cache = tmp_path_factory.mktemp("cache")
    first = timeline.read(logs, cache=cache)
    mapped = spy(mapper, "map_batch")
    second = timeline.read(logs, cache=cache)
    assert mapped == []
    assert rows(second).equals(rows(first))
    changed = logs / "rabbit@mq-0.log"
    changed.write_text(rabbitmq_log(random.Random(1), datetime(2024, 6, 12), 50))
    os.utime(changed, (1e9, 1e9))
    third = timeline.read(logs, cache=cache)
    assert [task.path for (tasks,) in mapped for task in tasks] == [str(changed)]
    assert third.events.filter(pl.col("file") == str(changed))["ts"].min().day == 12
    # the small files of a batch share one rows file; the unchanged ones are read from it
    partials = cache / "partials"
    assert len(list(partials.glob("batch-*.parquet"))) == 1
    unchanged = pl.col("file") != str(changed)
    assert rows(third).filter(unchanged).equals(rows(first).filter(unchanged))
    assert rows(third).filter(~unchanged).height == 50


def test_a_second_read_of_unchanged_logs_takes_the_finished_store(
    logs, tmp_path_factory, monkeypatch
):
    """Unchanged logs read again with the same options skip the reduce too; other
    options, another name for a file or a changed file reduce anew. A store filled from
    the cache and then replaced leaves the cached one whole."""
    cache = tmp_path_factory.mktemp("cache")
    reduced = []
    original = loader._reduce_and_finish

    def counting(*args, **kwargs):
        reduced.append(kwargs["year"])
        return original(*args, **kwargs)

    monkeypatch.setattr(loader, "_reduce_and_finish", counting)

    def summary(loaded: timeline.Loaded) -> list[pl.DataFrame]:
        s = loaded.summary
        return [s.files, s.warnings.sort("file", "line"), s.assumptions.sort("file", "what")]

    first = timeline.read(logs, cache=cache, year=2024)
    store = tmp_path_factory.mktemp("store")
    again = timeline.read(logs, cache=cache, year=2024, store=store)
    assert reduced == [2024]
    assert again.events.equals(first.events)
    assert all(a.equals(b) for a, b in zip(summary(again), summary(first), strict=True))

    timeline.read(logs / "kube-proxy.log", cache=cache, year=2024, store=store)
    restored = timeline.read(logs, cache=cache, year=2024)
    assert reduced == [2024, 2024]
    assert rows(restored).equals(rows(first))

    other_year = timeline.read(logs, cache=cache, year=2023)
    assert reduced[-1] == 2023
    yearless = pl.col("file") == str(logs / "kube-proxy.log")
    assert other_year.events.filter(yearless)["ts"].min().year == 2023

    monkeypatch.chdir(logs)
    named = timeline.read(".", cache=cache, year=2024)
    assert len(reduced) == 4
    assert "./rabbit@mq-0.log" in named.events["file"].to_list()

    changed = logs / "rabbit@mq-0.log"
    changed.write_text(rabbitmq_log(random.Random(1), datetime(2024, 6, 12), 50))
    os.utime(changed, (1e9, 1e9))
    third = timeline.read(logs, cache=cache, year=2024)
    assert len(reduced) == 5
    assert third.events.filter(pl.col("file") == str(changed))["ts"].min().day == 12
    kept = [p for p in (cache / "stores").iterdir() if not p.name.startswith(".")]
    assert len(kept) == event_store.FinishedStores.KEPT


def test_a_finished_store_the_cache_lost_or_never_completed_is_read_anew(logs, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    first = timeline.read(logs, cache=cache)
    (kept,) = (cache / "stores").iterdir()
    manifest = json.loads((kept / "store.json").read_text())
    (kept / "store.json").write_text(json.dumps({**manifest, "complete": False}))
    again = timeline.read(logs, cache=cache)
    assert again.events.equals(first.events)
    assert json.loads((kept / "store.json").read_text())["complete"], "kept anew"
    shutil.rmtree(cache / "stores")
    (cache / "stores").mkdir()
    (cache / "stores" / kept.name).mkdir()  # an empty folder under the key
    stopped = cache / "stores" / f".{kept.name}-4242"  # a run stopped half way, days ago
    (stopped / "events").mkdir(parents=True)
    os.utime(stopped, (1e9, 1e9))
    third = timeline.read(logs, cache=cache)
    assert third.events.equals(first.events)
    assert third.summary.files.equals(first.summary.files)
    assert sorted(p.name for p in (cache / "stores").iterdir()) == [kept.name]


def test_a_second_report_of_the_same_logs_takes_the_kept_analysis(
    logs, tmp_path_factory, monkeypatch, spy
):
    """The analysis of all the data is kept beside the cached store: a report of another
    window of the same logs gives what a run without the cache gives, without analysing
    again; another bucket is analysed anew."""
    import timeline.analysis.run

    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    runner = CliRunner()
    outputs = tmp_path_factory.mktemp("reports")  # not among the logs

    def report(name: str, *more: str) -> dict:
        out = outputs / name
        done = runner.invoke(
            app, ["report", str(logs), "-q", "--year", "2024", "-o", str(out), *more]
        )
        assert done.exit_code == 0, done.output
        found = json.loads(out.read_text())
        return {k: v for k, v in found.items() if k not in ("generated_at", "store", "root")}

    report("first.json")
    analysed = spy(timeline.analysis.run, "_analyze_all")
    worked_out = spy(timeline.analysis.run, "analysis_frame")
    for since in ("2024-06-11 00:00", "2024-06-11 09:00", "2024-12-31 23:00"):
        again = report("again.json", "--since", since)
        assert again == report("fresh.json", "--since", since, "--no-cache")
    assert len(analysed) == 3, "only the runs without the cache analysed"
    assert len(worked_out) == 3, "nor did the others read the store for the kept rows"
    report("bucket.json", "--bucket", "10m")
    assert (len(analysed), len(worked_out)) == (4, 3)
    kept = Path(os.environ[loader.CACHE_ENV]).glob("stores/*/*")
    for path in [p for p in kept if p.name.startswith(("analysis-", "rows-"))]:
        path.write_bytes(b"PAR1\x80\x05 not what was kept PAR1")  # damaged: made anew
    assert report("damaged.json") == report("fresh.json", "--no-cache")
    assert (len(analysed), len(worked_out)) == (6, 5)


def test_reports_of_a_parsed_store_keep_its_analysis_until_it_is_written_anew(
    logs, tmp_path_factory, monkeypatch, spy
):
    """``timeline parse -o events/`` then reports of ``events/`` with other windows: the
    analysis of all its data is kept in the cache, and what a report without the cache
    gives is given without analysing again; a store written anew is analysed anew, and
    the store itself gets nothing written into it."""
    import timeline.analysis.run

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(loader.CACHE_ENV, str(cache))
    runner = CliRunner()
    store = tmp_path_factory.mktemp("parsed") / "events"
    outputs = tmp_path_factory.mktemp("reports")

    def parse(*more: str) -> None:
        done = runner.invoke(app, ["parse", str(logs), "-q", "-o", str(store), *more])
        assert done.exit_code == 0, done.output

    def report(name: str, *more: str) -> dict:
        out = outputs / name
        done = runner.invoke(app, ["report", str(store), "-q", "-o", str(out), *more])
        assert done.exit_code == 0, done.output
        found = json.loads(out.read_text())
        return {k: v for k, v in found.items() if k not in ("generated_at", "store", "root")}

    parse("--year", "2024")
    written = sorted(p.relative_to(store) for p in store.rglob("*"))
    analysed = spy(timeline.analysis.run, "_analyze_all")
    worked_out = spy(timeline.analysis.run, "analysis_frame")
    report("first.json")
    for since in ("2024-06-11 09:00", "2024-12-31 23:00"):
        assert report("again.json", "--since", since) == report(
            "fresh.json", "--since", since, "--no-cache"
        )
    assert len(analysed) == len(worked_out) == 3, "the first report and those without the cache"
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == written
    assert len(list((cache / "opened").iterdir())) == 1

    parse("--year", "2023")
    assert report("anew.json") == report("fresh.json", "--no-cache")
    assert len(analysed) == len(worked_out) == 5


def test_a_second_name_for_a_cached_file_keeps_its_own_name(logs, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    timeline.read(logs / "rabbit@mq-0.log", cache=cache)
    other = os.path.relpath(logs / "rabbit@mq-0.log")
    again = timeline.read(other, cache=cache)
    assert again.events["file"].unique().to_list() == [other]


def test_the_event_store_holds_the_frame_and_the_summary(logs, tmp_path):
    store = tmp_path / "events"
    loaded = timeline.read(logs, store=store, cache=False)
    scanned = timeline.scan(store).collect()
    assert scanned.height == loaded.events.height
    assert scanned.schema == timeline.EVENT_SCHEMA
    reopened = timeline.read(store)
    assert reopened.summary.files.equals(loaded.summary.files)
    assert rows(reopened).equals(rows(loaded))


def test_the_store_refuses_a_folder_of_other_files(logs):
    with pytest.raises(TimelineError, match="not an event store"):
        timeline.read(logs / "rabbit@mq-0.log", store=logs)


def test_parse_to_a_folder_then_analyze_it_gives_the_same_findings(logs, tmp_path):
    runner = CliRunner()
    store = tmp_path / "events"
    made = runner.invoke(app, ["parse", str(logs), "-o", str(store), "-q", "--no-cache"])
    assert made.exit_code == 0, made.output
    assert "event store" in made.stdout
    from_store = runner.invoke(app, ["analyze", str(store), "--json", "-q"])
    from_logs = runner.invoke(app, ["analyze", str(logs), "--json", "-q", "--no-cache"])
    assert from_store.exit_code == 0, from_store.output
    found_in_store, found_in_logs = json.loads(from_store.stdout), json.loads(from_logs.stdout)
    # the findings, not the generation time nor the appendix of what was loaded (the store
    # keeps only the files that gave rows)
    for found in (found_in_store, found_in_logs):
        del found["generated_at"], found["loading"]
    assert found_in_store == found_in_logs


def test_parse_to_a_file_writes_every_row_in_time_order(logs, tmp_path):
    out = tmp_path / "events.parquet"
    result = CliRunner().invoke(app, ["parse", str(logs), "-o", str(out), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    written = pl.read_parquet(out)
    assert written.height == timeline.read(logs).events.height
    assert written["ts"].drop_nulls().is_sorted()


def test_a_dask_cluster_reads_what_this_machine_reads(logs, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 32 << 10)
    local = timeline.read(logs, cache=False, workers=1)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = timeline.read(logs, cache=False, client=client)
        assert len(client.scheduler_info()["workers"]) == 2
        # the workers open a URL themselves (here file://, as s3:// or gs:// through fsspec)
        from_url = timeline.read(logs.as_uri() + "/", cache=False, client=client)
    assert rows(on_cluster).equals(rows(local))
    assert on_cluster.summary.files.drop("score").equals(local.summary.files.drop("score"))
    local_names = rows(local).with_columns(file=pl.lit("file://") + pl.col("file"))
    assert rows(from_url).equals(local_names)


def test_urls_are_listed_and_read_through_fsspec(tmp_path):
    """A folder URL gives the files under it (dot files left out), a glob URL its matches;
    gzip, line numbers and the layout's node come out as from a disk; a URL of nothing
    and a URL of an unknown kind are clear errors."""
    fsspec = pytest.importorskip("fsspec")
    import gzip

    memory = fsspec.filesystem("memory")
    root = f"/logs-{random.Random().getrandbits(32):08x}"
    pod = f"{root}/nodes/ip-10-4-7-9/var/log/pods/kube-system_kube-proxy-z9k2m_8c1f/kube-proxy"
    text = kube_proxy_log(random.Random(3), datetime(2024, 6, 11, 7, 0), 400, prefix=True)
    memory.pipe(f"{pod}/0.log.gz", gzip.compress(text.encode()))
    memory.pipe(
        f"{root}/rabbitmq/rabbit@mq-1.log",
        rabbitmq_log(random.Random(4), datetime(2024, 6, 11, 7), 200).encode(),
    )
    memory.pipe(f"{root}/rabbitmq/.rabbit@mq-1.log.swp", b"\x00\x01")
    (tmp_path / "0.log").write_text(text)
    disk = timeline.read(tmp_path / "0.log", cache=False, workers=1)

    found = timeline.read(f"memory://{root}/", cache=False, workers=1)
    files = found.summary.files.sort("file")
    assert files["file"].to_list() == [
        f"memory://{pod}/0.log.gz",
        f"memory://{root}/rabbitmq/rabbit@mq-1.log",
    ]
    assert files["format"].to_list() == ["klog", "rabbitmq"]
    assert accounted(found.summary)
    proxy = found.events.filter(pl.col("file").str.ends_with(".gz"))
    assert proxy.select("ts", "line", "message").equals(disk.events.select("ts", "line", "message"))
    assert proxy["host"].unique().to_list() == ["ip-10-4-7-9"]

    globbed = timeline.read(f"memory://{root}/rabbitmq/*.log", cache=False, workers=1)
    assert globbed.summary.files["file"].to_list() == [f"memory://{root}/rabbitmq/rabbit@mq-1.log"]
    with pytest.raises(TimelineError, match="no such file or folder"):
        timeline.read(f"memory://{root}/nothing-here/", cache=False, workers=1)
    with pytest.raises(TimelineError, match="cannot open this kind of URL"):
        timeline.read("nosuchprotocol://bucket/logs/", cache=False, workers=1)


def coredns_log(rng: random.Random, start: datetime, n: int) -> str:
    """CoreDNS query-log and errors-plugin lines, with a multi-line panic now and then."""
    out, t = [], start
    for i in range(n):
        t += timedelta(seconds=rng.randint(1, 20))
        if rng.random() < 0.2:
            out.append(
                f"[ERROR] plugin/errors: 2 api-{i}.svc.cluster.local. A: "
                "read udp 10.4.0.7:41234->10.96.0.10:53: i/o timeout"
            )
        elif rng.random() < 0.03:
            out += ["panic: runtime error: index out of range", "goroutine 41 [running]:"]
        else:
            out.append(
                f"[INFO] 10.4.{i % 9}.{rng.randint(2, 250)}:{rng.randint(30000, 60000)} - "
                f'{rng.randint(1, 65000)} "A IN web-{i % 5}.default.svc.cluster.local. udp '
                f'62 false 512" NOERROR qr,aa,rd 118 0.000{rng.randint(100, 999)}s'
            )
    return "\n".join(out) + "\n"


def test_many_small_files_read_in_one_query_give_the_rows_of_one_file_at_a_time(tmp_path):
    rng = random.Random(77)
    for i in range(40):
        node = tmp_path / f"ip-10-9-{i}-{rng.randint(2, 250)}" / "var/log/pods"
        proxy = node / f"kube-system_kube-proxy-{i:05x}_{i:08x}" / "kube-proxy"
        dns = node / f"kube-system_node-local-dns-{i:05x}_{i:08x}" / "node-cache"
        proxy.mkdir(parents=True)
        dns.mkdir(parents=True)
        start = datetime(2024, 2, 28, 23, rng.randint(0, 59))
        (proxy / "0.log").write_text(kube_proxy_log(rng, start, rng.randint(2, 25), prefix=True))
        (dns / "0.log").write_text(coredns_log(rng, start, rng.randint(2, 25)))
    # a file rotated in the middle of a record begins with its continuation lines
    (tmp_path / "rotated.log").write_text(
        "\tError occurred at line: 7\n\t >\n"
        + kube_proxy_log(rng, datetime(2024, 2, 29, 1), 5, prefix=False)
    )
    # a pod's log in colour is peeled on its own, and its path still names node and pod
    coloured = tmp_path / "ip-10-9-99-7/var/log/pods/kube-system_kube-proxy-zz_1/kube-proxy"
    coloured.mkdir(parents=True)
    (coloured / "0.log").write_text(
        "2024-02-29T01:00:00.000000001Z stderr F \x1b[32mI0229 01:00:00.000000       1 "
        'proxier.go:823] "Syncing iptables rules"\x1b[0m\n'
    )
    files = sorted(str(p) for p in tmp_path.rglob("*.log"))
    one_by_one = [mapper.map_task(mapper.Task(f)) for f in files]
    together = mapper.map_batch([mapper.Task(f) for f in files])
    for alone, batched in zip(one_by_one, together, strict=True):
        assert batched.path == alone.path
        assert batched.records.equals(alone.records), alone.path
        assert (batched.rows, batched.first_lines, batched.covered_lines) == (
            alone.rows,
            alone.first_lines,
            alone.covered_lines,
        )
        assert batched.warnings.equals(alone.warnings)
        assert batched.evidence == alone.evidence
    rotated = together[files.index(str(tmp_path / "rotated.log"))]
    assert rotated.warnings["line"].to_list()[:1] == [1], "its first lines are told as unparsed"
    for k, batched in enumerate(together):
        if "/var/log/pods/" in files[k]:
            node = Path(files[k]).relative_to(tmp_path).parts[0]
            assert batched.records["host"].unique().to_list() == [node], files[k]
            if "/kube-proxy/" in files[k]:
                assert batched.records["component"].unique().to_list() == ["kube-proxy"]


def test_files_of_one_container_are_sniffed_once_and_a_stranger_among_them_still_in_full(
    tmp_path, spy
):
    rng = random.Random(5)
    start = datetime(2025, 11, 30, 22, 10)
    written = {}
    for i in range(12):
        folder = tmp_path / f"node-{i}/var/log/pods/kube-system_kube-proxy-{i:05x}_{i:08x}"
        (folder / "kube-proxy").mkdir(parents=True)
        path = folder / "kube-proxy" / f"{rng.randint(0, 3)}.log"
        if i == 7:  # the same container name, written by another runtime and logger
            text = "".join(
                json.dumps(
                    {
                        "log": f'{{"ts":{1764540600 + k}.5,"v":0,"msg":"Syncing"}}\n',
                        "stream": "stderr",
                        "time": f"2025-11-30T22:10:{k:02d}.5Z",
                    }
                )
                + "\n"
                for k in range(rng.randint(3, 9))
            )
        elif i == 9:  # no runtime prefix at all
            text = kube_proxy_log(rng, start, rng.randint(3, 30), prefix=False)
        else:
            text = kube_proxy_log(rng, start, rng.randint(3, 30), prefix=True)
        path.write_text(text)
        written[str(path)] = i
    files = sorted(written, key=written.get)
    one_by_one = [mapper.map_task(mapper.Task(f)) for f in files]
    sniffed = spy(parsers.registry, "rank")
    together = mapper.map_batch([mapper.Task(f) for f in files])
    for alone, batched in zip(one_by_one, together, strict=True):
        assert (batched.format, batched.prefix) == (alone.format, alone.prefix), alone.path
        assert batched.records.equals(alone.records), alone.path
    assert together[7].prefix == "docker-json" and together[9].prefix is None
    assert len(sniffed) == 3, "the first file and the two strangers only"


def test_every_partial_finished_on_its_own_keeps_its_rows(logs, monkeypatch):
    together = rows(timeline.read(logs, workers=1, cache=False))
    monkeypatch.setattr(loader, "FINISH_TOGETHER_BYTES", 0)  # every partial streams alone
    monkeypatch.setattr(mapper, "SHARED_MAX_ROWS", 0)  # each in a rows file of its own
    alone = timeline.read(logs, workers=1, cache=False)
    assert rows(alone).equals(together)
    assert accounted(alone.summary)


@pytest.mark.parametrize("shared", [False, True])
def test_small_partials_written_a_few_at_a_time_keep_their_rows(logs, monkeypatch, shared):
    """Small partials go to the store in pieces of about ``FINISH_WRITE_BYTES``: at one
    byte, a store file per rows file and settlement (a partial's own rows file, or the
    one the small files of a map batch share), and the same rows, in the same order. Two
    of the files (two RabbitMQ nodes' logs) are settled alike."""
    (logs / "rabbit@mq-1.log").write_text(
        rabbitmq_log(random.Random(7), datetime(2024, 6, 11, 8), 300)
    )
    together = timeline.read(logs, workers=1, cache=False)
    monkeypatch.setattr(loader, "FINISH_WRITE_BYTES", 1)
    if not shared:
        monkeypatch.setattr(mapper, "SHARED_MAX_ROWS", 0)
    pieces = timeline.read(logs, workers=1, cache=False)
    stored = sorted(p.name for p in (Path(pieces.store) / "events").glob("part-*.parquet"))
    files = pieces.summary.files.filter(pl.col("rows") > 0).height
    assert files == 4
    assert len(stored) < files if shared else len(stored) == files
    assert pieces.events.equals(together.events)
    assert accounted(pieces.summary)


def test_a_partial_cri_line_at_a_files_end_never_joins_the_next_files_first_line(tmp_path):
    rng = random.Random(31)
    files = []
    for i in range(6):
        folder = tmp_path / f"node-{i}/var/log/pods/kube-system_coredns-{i:05x}_{i:08x}/coredns"
        folder.mkdir(parents=True)
        text = "".join(
            f"2025-03-0{1 + i}T08:{k:02d}:00.{rng.randint(0, 999999):06d}Z stdout F "
            f'[INFO] 10.0.{i}.{k}:5353 - {k} "A IN db.svc. udp 40 false 512" NOERROR qr 90 '
            "0.0001s\n"
            for k in range(rng.randint(2, 6))
        )
        if i % 2 == 0:  # the runtime was cut off in the middle of a long line
            text += f"2025-03-0{1 + i}T08:59:59.5Z stdout P [ERROR] plugin/errors: 2 cut. A: "
        (folder / "0.log").write_text(text)
        files.append(str(folder / "0.log"))
    one_by_one = [mapper.map_task(mapper.Task(f)) for f in files]
    together = mapper.map_batch([mapper.Task(f) for f in files])
    for alone, batched in zip(one_by_one, together, strict=True):
        assert batched.records.equals(alone.records), alone.path
        assert batched.covered_lines == alone.covered_lines == alone.lines
    first_of_second = together[1].records.filter(pl.col("line") == 1)["message"].item()
    assert "plugin/errors" not in first_of_second


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                [b"I0314 18:00:01.123456       1 proxier.go:1] m", b"", b"\r", b"\xc3\xa9", b"\t>"]
            ),
            max_size=5,
        ).map(lambda parts: b"\n".join(parts)),
        min_size=2,
        max_size=6,
    ),
    st.booleans(),
)
def test_small_files_split_together_as_each_would_alone(datas, broken):
    """Lines, numbers and paths of files split in one query are each file's own, whether
    a file ends with a newline or not, is empty or not; a file that is not UTF-8 has
    every file split on its own, with its note."""
    if broken:
        datas = [*datas[:-1], datas[-1] + b"\xff\xfe"]
    paths = [f"/var/log/pods/ns_p-{i}_u/c/0.log" for i in range(len(datas))]
    together = split_many(datas, paths)
    for data, path, (lines, problem) in zip(datas, paths, together, strict=True):
        alone, alone_problem = split_lines(data, path)
        assert lines.equals(alone)
        assert problem == alone_problem


def test_a_reading_worker_does_not_import_the_analysis():
    """Each worker process imports the package to read; the analysis (and what it
    imports) is loaded on first use, so that workers start sooner."""
    code = (
        "import sys, timeline.reading.mapper, timeline.reading.loader\n"
        "assert not any(m.startswith('timeline.analysis') for m in sys.modules), sorted(\n"
        "    m for m in sys.modules if m.startswith('timeline.analysis'))\n"
        "import timeline\n"
        "assert callable(timeline.analyze) and timeline.Analysis.__name__ == 'Analysis'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_thousands_of_small_files_go_to_workers_in_several_batches(tmp_path, monkeypatch):
    """A few small files are read in this process; a thousand of them, though only some
    hundred kilobytes, are work enough for the workers (a file counts as
    ``FILE_WORK_BYTES`` besides its bytes) and travel in several batches."""
    line = '2024-05-02T09:00:00.000000000Z stderr F I0502 09:00:00.000000       1 p.go:1] "ok"\n'
    asked = []

    def run(fn, tasks, *, workers=None, client=None, threads=False):
        assert not threads or fn.__name__ != "map_batch", "small files go to processes"
        asked.append((fn.__name__, workers, len(tasks)))
        for i, task in enumerate(tasks):
            yield i, fn(task)

    monkeypatch.setattr(executor, "run", run)
    for count in (20, 1000):
        folder = tmp_path / f"n{count}"
        for i in range(count):
            pod = folder / f"var/log/pods/kube-system_kube-proxy-{i:05x}_{i:08x}/kube-proxy"
            pod.mkdir(parents=True)
            (pod / "0.log").write_text(line * 3)
        asked.clear()
        loaded = timeline.read(folder, cache=False)
        assert loaded.summary.files["rows"].sum() == 3 * count
        (name, workers, batches), *_ = asked
        assert name == "map_batch"
        if count == 20:
            assert (workers, batches) == (1, 1)
        else:
            assert workers is None and batches == -(
                -count * loader.FILE_WORK_BYTES // loader.BATCH_BYTES
            )


@pytest.mark.parametrize(
    "text",
    [
        'E0314 18:00:01.123456       1 proxier.go:1520] "Failed to execute iptables-restore" err=<\n'
        "\texit status 1\n >\n"
        "rabbitmq-1  | 2023-03-15 02:50:01.123456+00:00 [error] <0.1234.0> closing\n",
        "2023-03-14T18:00:01.000000001Z stderr P I0314 18:00:01.000000       1 a.go:1] par\n"
        "2023-03-14T18:00:01.000000002Z stderr F tial\n",
        "Mar 14 18:00:01 node-3 kubelet[926]: E0314 18:00:01.945743     926 kubelet.go:2267] x\n",
        "CoreDNS-1.9.3\nrabbitmq-1  | 2023-03-15 02:50:01.123456+00:00 [error] <0.1234.0> closing",
    ],
)
def test_a_files_lines_reach_its_parsers_in_one_chunk_a_column(tmp_path, monkeypatch, text):
    """Peeling may leave a column in pieces unlike the others', and polars 2.1 panics on
    some string queries over such a frame ("assertion failed: i < self.len()")."""
    seen = []

    def parse_segments(lines, *args, **kwargs):
        seen.append(lines.n_chunks("all"))
        return real(lines, *args, **kwargs)

    real = routing.parse_segments
    monkeypatch.setattr(routing, "parse_segments", parse_segments)
    path = tmp_path / "a.log"
    path.write_text(text)
    result = mapper.map_task(mapper.Task(str(path)))
    assert result.rows > 0
    assert seen and all(set(chunks) == {1} for chunks in seen), seen


def test_small_files_without_a_layer_are_peeled_together_as_each_alone(tmp_path, spy):
    """Bare logs of many nodes (``/var/log/kube-proxy.log``, rotated copies, CoreDNS without
    a runtime prefix) go through one peel, with the journal-wrapped, coloured, blank and
    empty files among them given what a read of each alone gives."""
    rng = random.Random(23)
    for i in range(24):
        folder = tmp_path / f"ip-10-7-{i}-{rng.randint(2, 250)}" / "var/log"
        folder.mkdir(parents=True)
        start = datetime(2025, 2, 28, 23, rng.randint(0, 59))
        name = rng.choice(["kube-proxy.log", "kube-proxy.log.1", "kube-proxy-2025-02-28.log"])
        (folder / name).write_text(kube_proxy_log(rng, start, rng.randint(1, 20), prefix=False))
        if i % 3 == 0:
            (folder / "coredns.log").write_text(coredns_log(rng, start, rng.randint(2, 15)))
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "kubelet.journal").write_text(
        "".join(
            f"Feb 28 23:0{k}:01 ip-10-7-1-9 kubelet[812]: I0228 23:0{k}:01.000001     812 "
            f'kubelet.go:2{k}] "SyncLoop (PLEG)"\n'
            for k in range(5)
        )
    )
    (odd / "coloured.log").write_text(
        '\x1b[32mI0228 23:10:01.000001       1 proxier.go:823] "Syncing iptables rules"\x1b[0m\n'
    )
    (odd / "blank.log").write_text("\n\n  \n")
    (odd / "empty.log").write_text("")
    files = sorted(str(p) for p in tmp_path.rglob("*") if p.is_file())
    one_by_one = [mapper.map_task(mapper.Task(f)) for f in files]
    groups = spy(wrappers, "peel_together")
    alone = spy(wrappers, "peel")
    together = mapper.map_batch([mapper.Task(f) for f in files])
    assert [layer for _, _, layer in groups] == [None]
    assert len(groups[0][0]) >= 24 + 8 + 2, "every bare log, the coloured and blank one among them"
    # only the coloured file, the journal and the empty one are peeled on their own
    assert len(alone) <= 3, [call[0]["path"][0] for call in alone if call[0].height]
    for alone, batched in zip(one_by_one, together, strict=True):
        assert (batched.path, batched.format, batched.prefix) == (
            alone.path,
            alone.format,
            alone.prefix,
        )
        assert (batched.records is None) == (alone.records is None), alone.path
        if alone.records is not None:
            assert batched.records.equals(alone.records), alone.path
        assert batched.warnings.equals(alone.warnings), alone.path
        assert (batched.rows, batched.lines, batched.wrapper_lines) == (
            alone.rows,
            alone.lines,
            alone.wrapper_lines,
        )
    journal = together[files.index(str(odd / "kubelet.journal"))]
    assert journal.prefix == "syslog" and journal.rows == 5


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 3)),
            st.one_of(
                st.none(),
                st.sampled_from(["", "a.log", "b.log", "B.log", "é.log", "/var/log/pods/x/0.log"]),
            ),
            st.integers(1, 4),
            st.sampled_from(["log", "change", "job"]),
        ),
        max_size=40,
    ),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_the_fast_time_order_is_the_time_order(rows, nulls_last):
    """Sorting by :func:`timeline.schema.time_order` (files by rank) gives the frame
    that sorting by the column names of ``TIME_ORDER`` gives: ties of time, missing
    times and files, and names that sort by bytes, not by letters."""
    frame = pl.DataFrame(
        [(None if t is None else datetime(2023, 3, 14, 18, t), f, n, k) for t, f, n, k in rows],
        schema={
            "ts": pl.Datetime("us", "UTC"),
            "file": pl.String,
            "line": pl.UInt32,
            "kind": KIND,
        },
        orient="row",
    ).with_row_index("i")
    expected = frame.sort(TIME_ORDER, nulls_last=nulls_last, maintain_order=True)
    got = frame.sort(time_order(), nulls_last=nulls_last, maintain_order=True)
    assert got["i"].to_list() == expected["i"].to_list()


def test_cached_partials_no_read_has_used_for_weeks_are_removed(logs, tmp_path_factory, spy):
    """The cache keeps what reads use: a file read again marks its partials used; those
    of files no read has used for ``UNUSED_DAYS`` go (and what a stopped run left half
    written), at most once a day; a file whose partials went is read anew."""
    cache = tmp_path_factory.mktemp("cache")
    partials = cache / "partials"
    other = tmp_path_factory.mktemp("other") / "rabbit@mq-9.log"
    other.write_text(rabbitmq_log(random.Random(9), datetime(2024, 6, 11), 40))
    first = timeline.read(logs, cache=cache)
    days = event_store.PartialCache.UNUSED_DAYS
    weeks_ago = time.time() - (days + 1) * 86400
    of_logs = [p for p in partials.iterdir() if p.name != ".pruned"]
    for path in of_logs:
        os.utime(path, (weeks_ago, weeks_ago))
    left = partials / ".4f2a.pkl-4242"  # a write a stopped run never finished
    left.write_bytes(b"\x80\x04")
    os.utime(left, (weeks_ago, weeks_ago))

    timeline.read(other, cache=cache)  # pruned a moment ago: nothing goes yet
    assert all(path.exists() for path in [*of_logs, left])

    yesterday = time.time() - event_store.PartialCache.PRUNE_EVERY - 60
    os.utime(partials / ".pruned", (yesterday, yesterday))
    timeline.read(other, cache=cache)
    assert not any(path.exists() for path in [*of_logs, left])
    assert {p.suffix for p in partials.iterdir() if p.name != ".pruned"} == {".pkl", ".parquet"}

    shutil.rmtree(cache / "stores")  # so that the logs are mapped, not taken whole
    mapped = spy(mapper, "map_batch")
    again = timeline.read(logs, cache=cache, store=tmp_path_factory.mktemp("s"))
    read_again = [task.path for (tasks,) in mapped for task in tasks]
    assert sorted(read_again) == sorted(str(p) for p in logs.rglob("*") if p.is_file())
    assert rows(again).equals(rows(first))


def test_a_read_that_takes_the_kept_store_marks_the_partials_it_was_made_from(
    logs, tmp_path_factory, spy
):
    """A read of unchanged logs takes their finished store whole and maps nothing, yet
    marks the partials the store was made from as used: after weeks of such reads, a
    file that changes is the only one read again. The list of them stays in the cache."""
    cache = tmp_path_factory.mktemp("cache")
    partials = cache / "partials"
    timeline.read(logs, cache=cache)
    made = sorted(p.name for p in partials.iterdir() if p.name != ".pruned")
    weeks_ago = time.time() - (event_store.PartialCache.UNUSED_DAYS + 1) * 86400
    for path in partials.iterdir():
        os.utime(path, (weeks_ago, weeks_ago))
    mapped = spy(mapper, "map_batch")
    store = tmp_path_factory.mktemp("s") / "events"
    timeline.read(logs, cache=cache, store=store)  # takes the kept store; prunes: it is due
    assert mapped == []
    assert sorted(p.name for p in store.iterdir()) == ["events", "store.json", "summary"]
    assert sorted(p.name for p in partials.iterdir() if p.name != ".pruned") == made

    changed = logs / "rabbit@mq-0.log"
    changed.write_text(rabbitmq_log(random.Random(7), datetime(2024, 6, 11, 9), 50))
    again = timeline.read(logs, cache=cache)
    assert [task.path for (tasks,) in mapped for task in tasks] == [str(changed)]
    assert rows(again).equals(rows(timeline.read(logs, cache=False)))


def test_a_read_marks_the_cached_partials_it_uses(logs, tmp_path_factory):
    """Partials used again are fresh for the pruning, however old they were written."""
    cache = tmp_path_factory.mktemp("cache")
    timeline.read(logs, cache=cache)
    partials = cache / "partials"
    days_ago = time.time() - (event_store.PartialCache.UNUSED_DAYS - 1) * 86400
    for path in partials.iterdir():
        os.utime(path, (days_ago, days_ago))
    timeline.read(logs, cache=cache, year=2021)  # other options: the map's partials again
    used = [p for p in partials.iterdir() if p.name != ".pruned"]
    assert used and all(p.stat().st_mtime > time.time() - 3600 for p in used)
