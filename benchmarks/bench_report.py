"""Time and peak memory of ``timeline report`` on a large generated incident, and the size
of the report it writes.

    python benchmarks/bench_report.py                       # makes /tmp/timeline-bench (scale 22)
    python benchmarks/bench_report.py --data /tmp/big --keep

The sample generator writes the 2023-03-14 story at ``--scale`` (22 gives about ten
million lines); the report command then runs in a child process, so its peak resident
memory is measured on its own (``ru_maxrss`` of the child) and nothing of this script's
own memory counts.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def folder_size(path: Path) -> tuple[int, int]:
    """Files and bytes under ``path``."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/timeline-bench"))
    parser.add_argument("--scale", type=float, default=22.0)
    parser.add_argument("--keep", action="store_true", help="reuse --data if it exists")
    parser.add_argument("--report", type=Path, default=Path("/tmp/timeline-bench-report.html"))
    args = parser.parse_args(argv)

    if not (args.keep and args.data.exists()):
        began = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sample_logs.generate",
                "--scale",
                str(args.scale),
                "--out",
                str(args.data),
                "--force",
                "--quiet",
            ],
            check=True,
        )
        print(f"generated in {time.perf_counter() - began:.0f}s")
    truth = args.data.with_name(args.data.name + ".EXPECTED.json")
    files, size = folder_size(args.data)
    lines = None
    if truth.exists():
        import json

        lines = json.loads(truth.read_text()).get("lines")

    timeline = shutil.which("timeline") or "timeline"
    began = time.perf_counter()
    done = subprocess.run(
        [timeline, "report", str(args.data), "-o", str(args.report), "--quiet"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    print(done.stdout.strip())
    report_mb = args.report.stat().st_size / 1e6
    print()
    print("| input files | input lines | input on disk | report time | peak RSS | report size |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {files:,} | {lines or 0:,} | {size / 1e6:,.0f} MB | {seconds:,.0f} s "
        f"| {peak_mb:,.0f} MB | {report_mb:.1f} MB |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
