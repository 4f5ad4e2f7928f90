"""How long ``timeline.analyze`` takes on a large event frame, and how much memory it needs.

The frame is either built here (``--source synthetic``, the default): the shape of the
2023-03-14 incident at any size, with numpy, in seconds; or made from the sample logs
(``--source sample``): ``python -m sample_logs.generate --scale S`` into ``--cache`` and
``timeline.load``, which takes minutes at ten million lines. Either way the frame is kept
as Parquet in ``--cache`` and the analysis runs in a fresh process that reads it, so that
the peak memory measured is the analysis's (plus the frame it reads), not the building's.

    python benchmarks/bench_analysis.py --lines 10_000_000
    python benchmarks/bench_analysis.py --lines 1_000_000 --source sample --repeat 3

It prints the frame (rows, span, problem rows), the time to read it, the time of each
``analyze`` run, the peak resident memory of the analysing process (``VmHWM``) and the
resident memory before the analysis, and what was found. Nothing is written in the
repository.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timeline.schema import EVENT_SCHEMA  # noqa: E402

#: Lines of the sample at ``--scale 1`` (``sample_logs/circleci-2023-03-14.EXPECTED.json``).
SAMPLE_LINES = 458_637

START = datetime(2023, 3, 13, tzinfo=UTC)
END = datetime(2023, 3, 15, 14, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2023, 3, day, hour, minute, tzinfo=UTC)


def synthetic(lines: int, seed: int = 1) -> pl.DataFrame:
    """An event frame of about ``lines`` rows shaped like the reference incident: a node
    per 40,000 rows, nine in ten rows info, a trickle after a rollback, a spike on every
    node after the upgrade, DNS errors after its restart, node reboots one by one,
    RabbitMQ episodes, a long tail of rare error signatures, CI jobs and change rows."""
    rng = np.random.default_rng(seed)
    nodes = [f"ip-10-20-{i // 250}-{i % 250}.ec2.internal" for i in range(max(4, lines // 40_000))]
    rmq = ["rmq-0", "rmq-1", "rmq-2"]
    reboot = {
        n: at(14, 21) + timedelta(seconds=float(s))
        for n, s in zip(nodes, np.linspace(0, 7200, len(nodes)), strict=True)
    }
    # (source, component, template, level, hosts, start, end, rows per host-hour)
    segments: list[tuple] = []
    kp, dns, rabbit = "kube-proxy", "coredns", "rabbitmq"
    for template, level, rate in (
        ("Syncing iptables rules", "info", 1.0),
        ("Reloading service iptables data", "info", 0.6),
        ("Error syncing endpoint slices", "warning", 0.01),
    ):
        segments.append((kp, kp, template, level, nodes, START, END, rate))
    for template, level, rate in (
        ("[INFO] <IP>:<NUM> - <NUM> A IN <NAME> NOERROR", "info", 1.0),
        ("[INFO] <IP>:<NUM> - <NUM> AAAA IN <NAME> NOERROR", "info", 0.5),
        ("[ERROR] plugin/errors: <NUM> <NAME> A: SERVFAIL", "error", 0.003),
    ):
        segments.append((dns, "node-local-dns", template, level, nodes, START, END, rate))
    for template, level, rate in (
        ("accepting AMQP connection <PID>", "info", 40.0),
        ("client unexpectedly closed TCP connection", "warning", 0.5),
    ):
        segments.append((rabbit, "rabbitmq", template, level, rmq, START, END, rate))
    trickle = nodes[: max(2, len(nodes) // 5)]
    for template in ("Failed to execute iptables-restore", "Sync failed"):
        segments.append((kp, kp, template, "error", trickle, at(13, 14, 40), at(14, 18), 0.003))
    # (the spike and DNS errors end per node at its reboot: added below)
    for i in range(400):
        host = [nodes[i % len(nodes)]]
        s = START + timedelta(hours=float(rng.uniform(0, 55)))
        segments.append(
            (kp, kp, f"rare error {i}", "error", host, s, s + timedelta(hours=1), 0.0005)
        )
    weights = []
    for *_, hosts, s, e, rate in segments:
        weights.append(rate * len(hosts) * (e - s) / timedelta(hours=1))
    spike_rate = {  # relative to the info rate, per node-hour
        ("Failed to execute iptables-restore", kp, "error"): 0.3,
        ("Sync failed", kp, "error"): 0.3,
        ("[ERROR] plugin/errors: <NUM> <NAME> A: SERVFAIL", dns, "error"): 0.5,
    }
    per_node = []
    for node in nodes:
        for (template, source, level), rate in spike_rate.items():
            s = at(14, 18) if source == kp else at(14, 20, 35)
            if reboot[node] > s:
                component = kp if source == kp else "node-local-dns"
                per_node.append((source, component, template, level, [node], s, reboot[node], rate))
    for seg in per_node:
        *_, hosts, s, e, rate = seg
        weights.append(rate * (e - s) / timedelta(hours=1))
    segments += per_node
    for s, e in ((at(15, 2, 50), at(15, 3, 35)), (at(15, 9, 50), at(15, 11, 8))):
        segments.append(
            (rabbit, "rabbitmq", "Error on AMQP connection <PID>", "error", rmq, s, e, 2.0)
        )
        weights.append(2.0 * 3 * (e - s) / timedelta(hours=1))
    weights_arr = np.array(weights)
    counts = rng.multinomial(lines, weights_arr / weights_arr.sum())
    parts = []
    for (source, component, template, level, hosts, s, e, _), n in zip(
        segments, counts, strict=True
    ):
        if n == 0:
            continue
        lo = int(s.timestamp() * 1e6)
        hi = int(e.timestamp() * 1e6)
        host_index = rng.integers(0, len(hosts), size=n)
        parts.append(
            pl.DataFrame(
                {
                    "ts": rng.integers(lo, hi, size=n),
                    "host": pl.Series(hosts, dtype=pl.String).gather(host_index),
                }
            ).with_columns(
                source=pl.lit(source),
                component=pl.lit(component),
                level=pl.lit(level),
                template=pl.lit(template),
            )
        )
    logs = pl.concat(parts).with_columns(
        ts=pl.from_epoch("ts", time_unit="us").dt.replace_time_zone("UTC"),
        kind=pl.lit("log"),
        message=pl.col("template"),
        attrs=pl.lit("{}"),
        file=pl.format("{}/{}.log", "source", "host"),
    )
    frame = pl.concat([logs, _changes(nodes, reboot, rmq), _jobs(rng, lines)], how="diagonal")
    return (
        frame.sort("ts")
        .with_columns(line=pl.int_range(1, pl.len() + 1).over("file"))
        .select([pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()])
    )


def _changes(nodes: list[str], reboot: dict, rmq: list[str]) -> pl.DataFrame:
    rows = []

    def add(ts, change_type, target, host=None, **extra):
        attrs = {"change_type": change_type, "target": target, "actor": "sre", **extra}
        rows.append({"ts": ts, "host": host, "attrs": json.dumps(attrs)})

    ds = "daemonset/kube-system/kube-proxy"
    add(at(13, 10, 5), "upgrade", ds, **{"from": "v1.23.17", "to": "v1.24.10"})
    add(at(13, 14, 20), "rollback", ds, **{"from": "v1.24.10", "to": "v1.23.17"})
    add(at(14, 15, 10), "config", "configmap/ci/feature-flags")
    for i, node in enumerate(nodes):
        add(
            at(14, 17, 40) + timedelta(seconds=5 * i),
            "upgrade",
            ds,
            node,
            **{"from": "v1.23.17", "to": "v1.24.10"},
        )
        add(reboot[node], "restart", f"node/{node}", node)
    add(at(14, 20, 20), "restart", "daemonset/kube-system/node-local-dns")
    add(at(14, 20, 35), "restart", "deployment/kube-system/coredns")
    for day, hour, minute in ((15, 2, 48), (15, 9, 48)):
        for i, host in enumerate(rmq):
            add(
                at(day, hour, minute) + timedelta(minutes=2 * i),
                "restart",
                f"rabbitmq/rabbit@{host}",
                host,
            )
    return pl.DataFrame(
        rows, schema={"ts": pl.Datetime("us", "UTC"), "host": pl.String, "attrs": pl.String}
    ).with_columns(
        source=pl.lit("changelog"),
        component=pl.lit(None, pl.String),
        level=pl.lit("info"),
        kind=pl.lit("change"),
        message=pl.lit("change"),
        template=pl.lit("change"),
        file=pl.lit("changes.json"),
    )


def _jobs(rng: np.random.Generator, lines: int) -> pl.DataFrame:
    n = max(1000, lines // 300)
    lo, hi = int(START.timestamp() * 1e6), int(END.timestamp() * 1e6)
    queued = np.sort(rng.integers(lo, hi, size=n))
    executor = rng.choice(["docker", "machine", "macos"], size=n, p=[0.7, 0.2, 0.1])
    late = (queued >= at(14, 18, 5).timestamp() * 1e6) & (queued < at(15, 1, 15).timestamp() * 1e6)
    delay = np.where(late, rng.uniform(300, 3000, size=n), rng.uniform(1, 40, size=n))
    failed = rng.uniform(size=n) < np.where(late, 0.3, 0.02)
    attrs = [
        json.dumps(
            {
                "job_id": str(i),
                "name": "build",
                "status": "failed" if f else "success",
                "executor": e,
                "queue_delay_s": round(float(d), 2),
            }
        )
        for i, (e, d, f) in enumerate(zip(executor.tolist(), delay, failed.tolist(), strict=True))
    ]
    return pl.DataFrame(
        {"ts": queued, "attrs": attrs, "level": np.where(failed, "error", "info")}
    ).with_columns(
        ts=pl.from_epoch("ts", time_unit="us").dt.replace_time_zone("UTC"),
        source=pl.lit("circleci"),
        host=pl.lit(None, pl.String),
        component=pl.lit("build"),
        kind=pl.lit("job"),
        message=pl.lit("job"),
        template=pl.lit("job"),
        file=pl.lit("circleci/jobs.json"),
    )


def from_sample(lines: int, cache: Path) -> pl.DataFrame:
    """Generate the sample logs at the scale that gives about ``lines`` lines, and load."""
    import timeline

    scale = max(lines / SAMPLE_LINES, 0.1)
    out = cache / f"sample-x{scale:g}"
    if not out.is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sample_logs.generate",
                "--scale",
                f"{scale:g}",
                "--out",
                str(out),
                "--quiet",
            ],
            cwd=ROOT,
            check=True,
        )
    began = time.perf_counter()
    frame = timeline.load(out)
    print(f"loaded the sample logs in {time.perf_counter() - began:.1f} s", flush=True)
    return frame


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process in MB (Linux): now (``VmRSS``) or at its peak
    (``VmHWM``). Unlike ``ru_maxrss``, the peak does not carry over the memory of the
    process this one was forked from."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def analyse(parquet: Path, repeat: int) -> None:
    """The measuring process: read the frame, analyse it ``repeat`` times, report."""
    from timeline.analysis import analyze

    began = time.perf_counter()
    frame = pl.read_parquet(parquet)
    read_s = time.perf_counter() - began
    before = rss_mb()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = analyze(frame)
        times.append(time.perf_counter() - began)
    peak = rss_mb("VmHWM")
    problems = frame.filter(pl.col("level").is_in(["warning", "error", "critical"])).height
    print(
        json.dumps(
            {
                "rows": frame.height,
                "problem_rows": problems,
                "span": f"{frame['ts'].min()} .. {frame['ts'].max()}",
                "read_s": round(read_s, 2),
                "analyze_s": [round(t, 2) for t in times],
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(peak, 1),
                "incidents": result.incidents.height,
                "spikes": result.spikes.height,
                "changes": result.changes.height,
                "bucket": result.bucket,
                "top": result.contributors.filter(pl.col("rank") == 1)["description"].to_list(),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--source", choices=["synthetic", "sample"], default="synthetic")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench-analysis"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--analyse", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.analyse:
        analyse(args.analyse, args.repeat)
        return 0
    args.cache.mkdir(parents=True, exist_ok=True)
    parquet = args.cache / f"{args.source}-{args.lines}.parquet"
    if not parquet.exists():
        began = time.perf_counter()
        if args.source == "synthetic":
            frame = synthetic(args.lines)
        else:
            frame = from_sample(args.lines, args.cache)
        frame.write_parquet(parquet)
        print(f"built {frame.height:,} rows in {time.perf_counter() - began:.1f} s -> {parquet}")
        del frame
    result = subprocess.run(
        [sys.executable, __file__, "--analyse", str(parquet), "--repeat", str(args.repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"frame: {report['rows']:,} rows ({report['problem_rows']:,} warnings and errors), "
        f"{report['span']}, read in {report['read_s']} s"
    )
    print(
        f"analyze: {', '.join(f'{t} s' for t in report['analyze_s'])} (bucket {report['bucket']})"
    )
    print(
        f"memory: {report['rss_before_mb']:,} MB resident with the frame read, "
        f"peak {report['peak_rss_mb']:,} MB"
    )
    print(
        f"found: {report['incidents']} incidents, {report['spikes']} spikes, "
        f"{report['changes']} changes"
    )
    for line in report["top"]:
        print(f"  #1: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
