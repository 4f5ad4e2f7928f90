"""Declared formats against built-in ones: parse speed on the same number of lines.

Writes N realistic lines of a format declared in a format file (nginx's error log, as the
README's example declares it) and of built-in formats (kube-proxy klog text, RabbitMQ
3.9+, and the ``zap-console`` and ``logfmt`` format files that ship with the tool), then
times each parser's ``parse`` on its lines (after a warm-up run), best of ``--repeat``.
Declared formats are polars expressions like the built-in ones, so their lines per second
should be of the same order.

    python benchmarks/bench_declared.py --lines 500000 --repeat 3
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

import parsers
from parsers import declared
from parsers.common import LINE_SCHEMA

README = Path(__file__).resolve().parent.parent / "README.md"
START = datetime(2023, 3, 14, 16, 0, tzinfo=UTC)


def nginx(i: int, t: datetime) -> str:
    level = random.choice(["error", "warn", "notice", "crit", "error"])
    return (
        f"{t:%Y/%m/%d %H:%M:%S} [{level}] {30 + i % 4}#{30 + i % 4}: *{1000 + i} connect() "
        f"failed (111: Connection refused) while connecting to upstream, client: "
        f"10.0.{i % 250}.{i % 200}, server: api.acme.io"
    )


def klog(i: int, t: datetime) -> str:
    level = random.choice("IIIWE")
    return (
        f"{level}{t:%m%d %H:%M:%S}.{t.microsecond:06d}       1 proxier.go:{800 + i % 50}] "
        f'"Syncing iptables rules" ipFamily="IPv4" numServices={i % 900}'
    )


def rabbitmq(i: int, t: datetime) -> str:
    level = random.choice(["info", "info", "warning", "error"])
    return (
        f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond:06d}+00:00 [{level}] <0.{i % 9000}.0> "
        f"accepting AMQP connection <0.{i % 9000}.0> (10.0.0.{i % 250}:{40000 + i % 9999} "
        "-> 10.0.1.7:5672)"
    )


def zap(i: int, t: datetime) -> str:
    level = random.choice(["INFO", "INFO", "WARN", "ERROR"])
    return (
        f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z\t{level}\tcontroller\t"
        f'controller/reconcile.go:{60 + i % 40}\tReconciling\t{{"request": "default/api-{i % 97}"}}'
    )


def logfmt(i: int, t: datetime) -> str:
    level = random.choice(["info", "info", "warning", "error"])
    return f'time="{t:%Y-%m-%dT%H:%M:%S}Z" level={level} msg="pulled image" image=api:{i % 50}'


def lines_of(make, n: int) -> pl.DataFrame:
    texts = [make(i, START + timedelta(milliseconds=37 * i)) for i in range(n)]
    numbers = pl.int_range(1, pl.len() + 1, dtype=pl.UInt32)
    frame = pl.DataFrame({"text": texts}).with_columns(line=numbers, end_line=numbers)
    return frame.select(
        [
            pl.col(c) if c in frame.columns else pl.lit(None).cast(t).alias(c)
            for c, t in LINE_SCHEMA.items()
        ]
    )


def best_time(parser, frame: pl.DataFrame, repeat: int) -> float:
    parser.parse(frame.head(1000).lazy()).collect()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        parser.parse(frame.lazy()).collect()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--lines", type=int, default=500_000)
    args.add_argument("--repeat", type=int, default=3)
    options = args.parse_args()
    random.seed(7)
    example = re.search(r"```toml\n(.*?)```", README.read_text(), re.S).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nginx-error.toml"
        path.write_text(example)
        nginx_parser = declared.load_file(path)
    cases = [
        ("nginx-error (format file, user's)", nginx_parser, nginx),
        ("zap-console (format file, shipped)", parsers.registry.get("zap-console"), zap),
        ("logfmt (format file, shipped)", parsers.registry.get("logfmt"), logfmt),
        ("klog (built-in module)", parsers.registry.get("klog"), klog),
        ("rabbitmq (built-in module)", parsers.registry.get("rabbitmq"), rabbitmq),
    ]
    print(f"{'format':40} {'lines/s':>12}   ({options.lines:,} lines, best of {options.repeat})")
    for label, parser, make in cases:
        frame = lines_of(make, options.lines)
        seconds = best_time(parser, frame, options.repeat)
        print(f"{label:40} {options.lines / seconds:12,.0f}")


if __name__ == "__main__":
    main()
