"""Fixed cost per file: ``timeline.load`` on many small kube-proxy and CoreDNS files.

Writes ``--files`` small logs into a temporary folder, alternately kube-proxy klog text
(as ``/var/log/kube-proxy.log`` holds it) and CoreDNS behind a CRI prefix (as the kubelet
stores it under ``/var/log/pods``), each of ``--lines`` lines, then loads the folder with
``timeline.load`` and reports the time per file, and the part of it spent recognising
formats (``runtime.detect`` and ``registry.rank``, the sniffing every file goes through).

    python benchmarks/bench_small_files.py                    # 2,000 files of 50 lines
    python benchmarks/bench_small_files.py --files 20000 --repeat 1
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import YEAR, coredns_lines, kube_proxy_lines  # noqa: E402


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


def measure(folder: Path, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` loads: wall and CPU seconds, and the time spent sniffing."""
    import parsers
    import timeline
    from timeline.reading import loader

    spent = {"sniff": 0.0}

    def timed(function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent["sniff"] += time.perf_counter() - start

        return wrapper

    rank, detect = parsers.registry.rank, loader.runtime.detect
    parsers.registry.rank = timed(rank)
    loader.runtime.detect = timed(detect)
    best: dict[str, float] = {}
    try:
        for _ in range(repeat):
            spent["sniff"] = 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            rows = timeline.load(str(folder), year=YEAR).height
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if not best or wall < best["wall"]:
                best = {"wall": wall, "cpu": cpu, "sniff": spent["sniff"], "rows": rows}
    finally:
        parsers.registry.rank, loader.runtime.detect = rank, detect
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=50, help="lines per file")
    parser.add_argument("--repeat", type=int, default=2, help="loads to time (best kept)")
    parser.add_argument("--seed", type=int, default=20230314)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_small_files_"))
    try:
        write_files(folder, args.files, args.lines, args.seed)
        result = measure(folder, args.repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per_file = 1000 / args.files
    print(
        f"{args.files:,} files of {args.lines} lines ({int(result['rows']):,} rows): "
        f"wall {result['wall']:.2f} s ({result['wall'] * per_file:.2f} ms a file), "
        f"CPU {result['cpu']:.2f} s, sniffing {result['sniff']:.2f} s "
        f"({result['sniff'] * per_file:.2f} ms a file)"
    )


if __name__ == "__main__":
    main()
