"""How the whole tool scales: time and peak memory of ``timeline report`` on generated
incidents of growing size, beside ``zcat -f FILES | wc -l`` on the same files; a second
report of the same logs from the cache; many small files; one central syslog file of many
hosts; and one Dask worker against two.

Peak memory is the largest sum of the resident memory of the command and every process
it started (worker processes included), sampled every 50 ms: what the machine must hold.
"Cores busy" is the CPU time of the command and its worker processes over its wall time:
on two cores, near 2 says the work itself, not waiting, is what takes the time.

    python benchmarks/bench_scale.py --scales 2 8
    python benchmarks/bench_scale.py --scales 8 --dask --small-files 20000
    python benchmarks/bench_scale.py --scales --syslog-hosts 5000 --keep   # one central syslog
    python benchmarks/bench_scale.py --scales 8 --keep --again "2023-03-14 17:00"
    python benchmarks/bench_scale.py --scales 220 --keep   # about 100 million lines
    python benchmarks/bench_scale.py --scales 8 --keep --rounds 3 --baseline /tmp/old-checkout

Data sets are generated with ``python -m sample_logs.generate --scale S`` into ``--data``
(kept there with ``--keep`` for the next run).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import psutil

ROOT = Path(__file__).resolve().parent.parent


class Measured(NamedTuple):
    wall: float
    peak_mib: float
    cpu_s: float
    out: str


def with_bytecode(tree: Path) -> Path:
    """``tree`` with its modules compiled, as ``pip install`` leaves an installed package:
    a tree run with ``PYTHONDONTWRITEBYTECODE`` set would otherwise compile every module
    again in each process it starts (about 0.3 s a process on a 2-core machine)."""
    packages = [str(tree / name) for name in ("timeline", "parsers", "sample_logs")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
    return tree


def measure(command: list[str], **kwargs) -> Measured:
    """Wall seconds, peak MiB of the process tree, CPU seconds of it (user and system, of
    every process it started and waited for) and stdout of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    peak = [0]
    parent = psutil.Process(process.pid)

    def sample() -> None:
        while process.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    sampler.join()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Measured(wall, peak[0] / 2**20, cpu, out)


def dataset(data: Path, scale: int) -> Path:
    folder = data / f"scale-{scale}"
    if not (folder / "changelog.csv").exists():
        print(f"generating scale {scale} into {folder} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "sample_logs.generate", "--scale", str(scale), "--out", folder],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
    return folder


def count_lines(folder: Path) -> tuple[float, int]:
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    started = time.perf_counter()
    zcat = subprocess.Popen(["zcat", "-f", *files], stdout=subprocess.PIPE)
    lines = int(subprocess.run(["wc", "-l"], stdin=zcat.stdout, capture_output=True).stdout)
    zcat.wait()
    return time.perf_counter() - started, lines


def report(folder: Path, workers: int | None, tree: Path = ROOT) -> Measured:
    """``timeline report`` of ``folder`` by the source tree ``tree``."""
    out = Path(tempfile.mkdtemp()) / "report.html"
    command = [sys.executable, "-m", "timeline", "report", str(folder), "-o", str(out)]
    command += ["-q", "--no-cache"] + (["--workers", str(workers)] if workers else [])
    measured = measure(command, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)))
    shutil.rmtree(out.parent)
    return measured


@dataclass
class Runs:
    """One tree's runs at one scale, each beside the ``zcat`` run of its round."""

    tree: Path
    walls: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)

    def add(self, measured: Measured, zcat_s: float) -> None:
        self.walls.append(measured.wall)
        self.ratios.append(measured.wall / zcat_s)
        self.peaks.append(measured.peak_mib)
        self.busy.append(measured.cpu_s / measured.wall)

    def shown(self, values: list[float], unit: str = "") -> str:
        """The best and the median of ``values`` (the median only with three or more)."""
        if len(values) < 3:
            return " / ".join(f"{v:,.1f}{unit}" for v in values)
        return f"{min(values):,.1f}{unit} (median {statistics.median(values):,.1f}{unit})"


def scale_runs(
    folder: Path, trees: list[Path], rounds: int, workers: int | None
) -> tuple[int, list[float], list[Runs]]:
    """``rounds`` rounds of ``zcat`` then each tree's report, in turn: the machine's speed
    drifts (by a quarter within minutes on a shared one), and a tree's ratio to the
    ``zcat`` of its own round, or its time beside another tree's in the same round,
    says more than one run of each."""
    runs = [Runs(tree) for tree in trees]
    zcats = []
    for _ in range(rounds):
        zcat_s, lines = count_lines(folder)
        zcats.append(zcat_s)
        for each in runs:
            each.add(report(folder, workers, each.tree), zcat_s)
    return lines, zcats, runs


def report_again(folder: Path, workers: int | None, since: str) -> tuple[float, float]:
    """``timeline report`` with an empty cache, then again with ``--since``: the wall
    seconds of each (the second reads nothing again)."""
    cache = Path(tempfile.mkdtemp())
    command = [sys.executable, "-m", "timeline", "report", str(folder), "-q"]
    command += ["-o", str(cache / "report.html")] + (["--workers", str(workers)] if workers else [])
    env = {**os.environ, "INCIDENT_TIMELINE_CACHE": str(cache / "cache")}
    first = measure(command, cwd=ROOT, env=env).wall
    second = measure([*command, "--since", since], cwd=ROOT, env=env).wall
    shutil.rmtree(cache)
    return first, second


def parse(path: Path) -> tuple[float, float]:
    """``timeline parse`` of ``path`` (a file or a folder) to a Parquet file: wall seconds
    and peak MiB."""
    out = Path(tempfile.mkdtemp()) / "events.parquet"
    command = [sys.executable, "-m", "timeline", "parse", str(path), "-q", "--no-cache"]
    measured = measure([*command, "-o", str(out)], cwd=ROOT)
    shutil.rmtree(out.parent)
    return measured.wall, measured.peak_mib


def lnav_count(path: Path) -> float | None:
    """lnav's wall seconds to read ``path`` and count its records, or None without lnav."""
    if not shutil.which("lnav"):
        return None
    return measure(["lnav", "-n", "-c", ";SELECT count(*) FROM all_logs", str(path)]).wall


def small_files(count: int, folder: Path) -> Path:
    """``count`` small kube-proxy logs (a few lines each) in kubelet's folder layout."""
    rng = random.Random(count)
    start = datetime(2024, 5, 2, 9, 0)
    for i in range(count):
        node = f"ip-10-{i // 4000}-{(i // 250) % 16}-{i % 250}"
        pod = folder / node / f"var/log/pods/kube-system_kube-proxy-{i:05x}_{i:08x}/kube-proxy"
        pod.mkdir(parents=True, exist_ok=True)
        t = start + timedelta(seconds=rng.randint(0, 3600))
        lines = []
        for j in range(rng.randint(3, 12)):
            t += timedelta(seconds=rng.randint(1, 30))
            stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z stderr F "
            level = "E" if rng.random() < 0.1 else "I"
            lines.append(
                f"{stamp}{level}{t:%m%d %H:%M:%S.%f}       1 proxier.go:{823 + j}] "
                f'"Syncing iptables rules" numServices={rng.randint(10, 90)}'
            )
        (pod / "0.log").write_text("\n".join(lines) + "\n")
    return folder


def central_syslog(hosts: int, folder: Path, lines: int = 100_000) -> Path:
    """One syslog file as a central rsyslog writes it: ``lines`` entries from ``hosts``
    hosts interleaved, each host's kubelet (klog, its errors with an ``err=<`` block over
    entries of their own), containerd (logfmt) and systemd (plain)."""
    rng = random.Random(hosts)
    names = [f"ip-10-{i // 250 % 256}-{i % 250}-{rng.randint(1, 250)}" for i in range(hosts)]
    start = datetime(2024, 5, 2, 9, 0)
    out = []
    while len(out) < lines:
        t = start + timedelta(milliseconds=len(out) * 20)
        host, kind = rng.choice(names), rng.random()
        head = f"{t:%b %d %H:%M:%S} {host}"
        if kind < 0.5:
            level = "E" if rng.random() < 0.05 else "I"
            out.append(
                f"{head} kubelet[1203]: {level}{t:%m%d %H:%M:%S.%f}    1203 kubelet.go:2616] "
                f'"SyncLoop (PLEG): event for pod" pod="ns/web-{rng.randint(0, 99)}"'
                + (" err=<" if level == "E" else "")
            )
            if level == "E":
                out += [
                    f"{head} kubelet[1203]: \tcontext deadline exceeded",
                    f"{head} kubelet[1203]:  >",
                ]
        elif kind < 0.8:
            out.append(
                f'{head} containerd[880]: time="{t:%Y-%m-%dT%H:%M:%S.%f}Z" level=info '
                f'msg="StartContainer for \\"{rng.getrandbits(32):08x}\\" returns successfully"'
            )
        else:
            out.append(f"{head} systemd[1]: Started Session {len(out)} of user core.")
    path = folder / "syslog"
    path.write_text("\n".join(out) + "\n")
    return path


def dask_read(folder: Path, workers: int) -> float:
    from distributed import Client, LocalCluster

    import timeline

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("timeline"))  # workers ready before the clock starts
        started = time.perf_counter()
        timeline.read(folder, client=client, cache=False)
        return time.perf_counter() - started


def _named(tree: Path) -> str:
    return "this tree" if tree == ROOT else str(tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="*", default=[2, 8])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tl-bench")
    parser.add_argument("--keep", action="store_true", help="keep generated data sets")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--small-files", type=int, default=0)
    parser.add_argument("--syslog-hosts", type=int, default=0, help="hosts in one syslog file")
    parser.add_argument("--dask", action="store_true", help="1 against 2 Dask workers")
    parser.add_argument(
        "--again",
        metavar="SINCE",
        help="also report the largest scale twice with a cache, the second with --since SINCE",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of each report, each beside a zcat of its own"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="also report with this source tree (an older checkout), in turn in each round",
    )
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    trees = [with_bytecode(tree) for tree in (ROOT, *args.baseline)]
    rows = []
    peaks = {}
    for scale in args.scales:
        folder = dataset(args.data, scale)
        lines, zcats, runs = scale_runs(folder, trees, args.rounds, args.workers)
        peaks[scale] = max(runs[0].peaks)
        rows.append((scale, lines, zcats, runs))
        for each in runs:
            print(
                f"scale {scale}: {lines:,} lines; zcat|wc -l {runs[0].shown(zcats, ' s')}; "
                f"{_named(each.tree)} report {each.shown(each.walls, ' s')}, "
                f"{each.shown(each.ratios, 'x')} the zcat of its round, "
                f"peak {max(each.peaks):,.0f} MiB, cores busy {each.shown(each.busy)}",
                flush=True,
            )
    if rows:
        print(
            "\n| scale | lines | tree | zcat -f \\| wc -l | timeline report | ratio | peak memory "
            "| cores busy |"
        )
        print("|---:|---:|---|---:|---:|---:|---:|---:|")
        for scale, lines, zcats, runs in rows:
            for each in runs:
                print(
                    f"| {scale} | {lines:,} | {_named(each.tree)} | {each.shown(zcats, ' s')} | "
                    f"{each.shown(each.walls, ' s')} | {each.shown(each.ratios, 'x')} | "
                    f"{max(each.peaks):,.0f} MiB | {each.shown(each.busy)} |"
                )
        if len(peaks) > 1:
            low, high = min(peaks), max(peaks)
            print(f"\npeak at scale {high} / peak at scale {low}: {peaks[high] / peaks[low]:.2f}")
    if args.again:
        folder = dataset(args.data, max(args.scales or [8]))
        first, second = report_again(folder, args.workers, args.again)
        print(
            f"\ntimeline report with a cache: first {first:.1f} s, "
            f"again with --since {args.again!r} {second:.1f} s"
        )
    if args.small_files:
        folder = small_files(args.small_files, Path(tempfile.mkdtemp()))
        wall, peak = parse(folder)
        print(
            f"\n{args.small_files:,} small files: timeline parse {wall:.1f} s, peak {peak:,.0f} MiB"
        )
        shutil.rmtree(folder)
    if args.syslog_hosts:
        path = central_syslog(args.syslog_hosts, Path(tempfile.mkdtemp()))
        floor, lines = count_lines(path.parent)
        wall, peak = parse(path)
        lnav = lnav_count(path)
        print(
            f"\none syslog file of {args.syslog_hosts:,} hosts ({lines:,} lines): timeline parse "
            f"{wall:.1f} s ({wall / floor:.0f}x), peak {peak:,.0f} MiB; zcat|wc -l {floor:.2f} s"
            + (f"; lnav {lnav:.2f} s" if lnav is not None else "; lnav not on PATH")
        )
        shutil.rmtree(path.parent)
    if args.dask:
        folder = dataset(args.data, max(args.scales or [8]))
        one, two = dask_read(folder, 1), dask_read(folder, 2)
        print(f"\nDask read: 1 worker {one:.1f} s, 2 workers {two:.1f} s ({one / two:.2f}x)")
    if not args.keep:
        shutil.rmtree(args.data, ignore_errors=True)


if __name__ == "__main__":
    main()
