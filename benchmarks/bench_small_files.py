"""Fixed cost per file: ``timeline.read`` on many small kube-proxy and CoreDNS files.

Writes ``--files`` small logs into a temporary folder, alternately kube-proxy klog text
(as ``/var/log/kube-proxy.log`` holds it) and CoreDNS behind a CRI prefix (as the kubelet
stores it under ``/var/log/pods``), each of ``--lines`` lines, then reads the folder with
``timeline.read`` in one process (``workers=1``, no cache of partials, when the loader
has those options) and reports the time per file and the part of it spent recognising
formats (``runtime.detect`` and ``registry.rank``, which every file goes through), all
but the wall time in CPU seconds (steadier on a shared machine).

Each source tree is timed in a child process of its own on the same files: this one, and
with ``--baseline DIR`` an older checkout too, in the same run.

    python benchmarks/bench_small_files.py                    # 2,000 files of 50 lines
    python benchmarks/bench_small_files.py --baseline /tmp/old-checkout --repeat 3
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import YEAR, coredns_lines, kube_proxy_lines  # noqa: E402
from bench_scale import with_bytecode  # noqa: E402


def write_files(folder: Path, files: int, lines: int, seed: int) -> None:
    """``files`` logs of ``lines`` lines, half kube-proxy and half CoreDNS, on 40 nodes."""
    for i in range(files):
        node = f"ip-10-0-{i % 40}-{(i * 7) % 250 + 2}"
        if i % 2 == 0:
            path = folder / node / "var/log" / f"kube-proxy.log.{i}"
            text = kube_proxy_lines(lines, seed + i)
        else:
            pod = f"kube-system_coredns-6d4b75cb6d-{i:05d}_0a1b2c3d"
            path = folder / node / "var/log/pods" / pod / "coredns" / f"{i}.log"
            text = coredns_lines(lines, seed + i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(text) + "\n", encoding="utf-8")


def child(folder: Path, root: Path, repeat: int) -> None:
    """Read ``folder`` with the ``timeline`` of source tree ``root``, ``repeat`` times, and
    print the best run's wall and CPU seconds and time spent sniffing, as JSON."""
    sys.path.insert(0, str(root))
    import parsers
    import timeline
    from parsers import runtime

    spent = {"sniff": 0.0}

    def timed(function):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent["sniff"] += time.process_time() - start

        return wrapper

    parsers.registry.rank = timed(parsers.registry.rank)
    runtime.detect = timed(runtime.detect)
    options = inspect.signature(timeline.read).parameters
    extra = {"workers": 1} if "workers" in options else {}
    if "cache" in options:
        extra["cache"] = False
    best: dict[str, float] = {}
    for _ in range(repeat):
        spent["sniff"] = 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        rows = timeline.read(str(folder), year=YEAR, **extra).events.height
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if not best or wall < best["wall"]:
            best = {"wall": wall, "cpu": cpu, "sniff": spent["sniff"], "rows": rows}
    print(json.dumps(best))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=50, help="lines per file")
    parser.add_argument("--repeat", type=int, default=2, help="reads to time (best kept)")
    parser.add_argument("--seed", type=int, default=20230314)
    parser.add_argument("--baseline", type=Path, action="append", default=[])
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.repeat)
        return
    folder = Path(tempfile.mkdtemp(prefix="bench_small_files_"))
    try:
        write_files(folder, args.files, args.lines, args.seed)
        print(f"{args.files:,} files of {args.lines} lines")
        for root in [ROOT, *args.baseline]:
            with_bytecode(root)
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(folder), str(root)]
                + ["--repeat", str(args.repeat)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            per_file = 1000 / args.files
            print(
                f"  {str(root):40s} {int(r['rows']):,} rows: wall {r['wall']:.2f} s "
                f"({r['wall'] * per_file:.2f} ms a file), CPU {r['cpu']:.2f} s "
                f"({r['cpu'] * per_file:.2f} ms a file), sniffing {r['sniff']:.2f} s "
                f"({r['sniff'] * per_file:.2f} ms a file)"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
