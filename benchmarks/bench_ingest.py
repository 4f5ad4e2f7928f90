"""Ingest speed and memory: ``timeline.load`` against a per-line Python loop and lnav.

Writes realistic logs of N lines per format into a temporary folder (kube-proxy klog text
always; CoreDNS behind a CRI prefix and RabbitMQ when their parsers are registered; the
kube-proxy lines again as Fluent Bit's JSON records, a collector's envelope), then
runs each contender on the same file in a child process of its own and reports wall time,
lines per second and peak resident memory (``ru_maxrss`` of that child from ``wait4``:
polars allocates in Rust, where ``tracemalloc`` sees nothing).

Contenders:

- ``timeline.load``: the whole loader (read, split, runtime prefix, sniff, parse, years
  and zones, templates, sort), as ``timeline.load(path, year=2023)``.
- ``python re``: one ``re`` match per line in a Python loop, rows into a pandas frame,
  times parsed with ``pandas.to_datetime``: what a quick script would do.
- ``lnav``: ``lnav -n -c ';SELECT count(*) FROM all_logs' FILE`` (when lnav is on PATH;
  skipped with a note otherwise).

``wall`` is the child's whole life (interpreter, imports); ``work`` is the time the child
spent on the work itself; ``cpu`` the child's user and system CPU time over all its
threads (``wait4``), which other jobs on a shared machine disturb less than wall time.
Targets: for the kube-proxy file, ``timeline.load`` faster than lnav, five times the
per-line loop or more and peak memory under three times the input; for CoreDNS and
RabbitMQ, three times the loop or more; for the Fluent Bit records (whose loop decodes
each line's JSON first), as fast as the loop or more. The table shows the other ratios too.

    python benchmarks/bench_ingest.py                    # 1,000,000 lines per format
    python benchmarks/bench_ingest.py --lines 200000 --repeat 3 --stages
    python benchmarks/bench_ingest.py --baseline /tmp/old-checkout   # before and after
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import with_bytecode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START = 1678809600  # 2023-03-14T16:00:00Z
YEAR = 2023


# --- realistic lines --------------------------------------------------------------------


def _klog_head(level: str, t: float, where: str) -> str:
    tm = time.gmtime(int(t))
    micros = int(round((t - int(t)) * 1e6)) % 1_000_000
    return (
        f"{level}{tm.tm_mon:02d}{tm.tm_mday:02d} {tm.tm_hour:02d}:{tm.tm_min:02d}:"
        f"{tm.tm_sec:02d}.{micros:06d}       1 {where}] "
    )


KUBE_PROXY_STARTUP = [
    ("I", "node.go:163", "Successfully retrieved node IP: 10.0.1.5"),
    ("I", "server_others.go:138", '"Detected node IP" address="10.0.1.5"'),
    ("I", "server_others.go:206", '"Using iptables Proxier"'),
    ("I", "server_others.go:213", '"kube-proxy running in dual-stack mode" ipFamily=IPv4'),
    ("I", "server.go:661", '"Version info" version="v1.24.10"'),
    ("I", "server.go:663", '"Golang settings" GOGC="" GOMAXPROCS="" GOTRACEBACK=""'),
    ("I", "conntrack.go:52", '"Setting nf_conntrack_max" nf_conntrack_max=131072'),
    ("I", "config.go:317", '"Starting service config controller"'),
    ("I", "shared_informer.go:255", "Waiting for caches to sync for service config"),
    ("I", "config.go:226", '"Starting endpoint slice config controller"'),
    ("I", "shared_informer.go:255", "Waiting for caches to sync for endpoint slice config"),
    ("I", "shared_informer.go:262", "Caches are synced for service config"),
    ("I", "shared_informer.go:262", "Caches are synced for endpoint slice config"),
]


def kube_proxy_lines(count: int, seed: int) -> list[str]:
    """kube-proxy 1.24 at ``--v=2`` on one node through the incident: restarts, a sync
    every few seconds, failing syncs (``err=<`` blocks) in bursts, endpoint updates and
    the odd watch warning, ``count`` lines in all."""
    rng = random.Random(seed)
    out: list[str] = []
    t = float(START)
    failing = False
    while len(out) < count:
        if not out or rng.random() < 0.0002:
            for level, where, message in KUBE_PROXY_STARTUP:
                t += rng.random() * 0.002
                out.append(_klog_head(level, t, where) + message)
        t += rng.random() * 2.0
        if rng.random() < 0.01:
            failing = not failing
        services, endpoints = rng.randint(780, 830), rng.randint(2200, 2400)
        out.append(_klog_head("I", t, "proxier.go:1520") + '"Syncing iptables rules"')
        t += rng.random() * 0.01
        out.append(
            _klog_head("I", t, "proxier.go:1464")
            + f'"Reloading service iptables data" numServices={services} '
            f"numEndpoints={endpoints} numFilterChains=4 numFilterRules={rng.randint(5, 12)} "
            f"numNATChains={services * 2 + 200} numNATRules={endpoints * 3 - 800}"
        )
        t += rng.random() * 0.02
        if failing:
            line = rng.choice((8022, 8022, 8022, 8019, 8031))
            out.append(
                _klog_head("E", t, "proxier.go:1508") + '"Failed to execute iptables-restore" err=<'
            )
            out.append(f"\texit status 1 (iptables-restore: line {line} failed")
            out.append("\t)")
            out.append(" >")
            out.append(
                _klog_head("I", t + 0.00007, "proxier.go:858") + '"Sync failed" retryingTime="30s"'
            )
        out.append(
            _klog_head("I", t + 0.0001, "proxier.go:820")
            + f'"SyncProxyRules complete" elapsed="{rng.random() * 40 + 5:.3f}ms"'
        )
        if rng.random() < 0.05:
            pod = f"10.244.{rng.randint(0, 40)}.{rng.randint(2, 250)}"
            out.append(
                _klog_head("I", t + 0.0002, "endpointslicecache.go:366")
                + '"Setting endpoints for service port name" portName="default/web:http" '
                f"endpoints=[{pod}:8080 10.244.2.9:8080]"
            )
        if rng.random() < 0.002:
            out.append(
                _klog_head("W", t + 0.0003, "reflector.go:442")
                + "k8s.io/client-go/informers/factory.go:134: watch of *v1.EndpointSlice "
                'ended with: an error on the server ("unable to decode an event from the '
                'watch stream: http2: client connection lost") has prevented the request '
                "from succeeding"
            )
    return out[:count]


def _cri(t: float, text: str, stream: str = "stdout") -> str:
    tm = time.gmtime(int(t))
    nanos = int((t - int(t)) * 1e9)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', tm)}.{nanos:09d}Z {stream} F {text}"


def coredns_lines(count: int, seed: int) -> list[str]:
    """CoreDNS query and error lines as the kubelet stores them (CRI prefix)."""
    rng = random.Random(seed)
    names = ["api.github.com.", "circleci.com.", "rabbitmq.default.svc.cluster.local."]
    names += ["github.com.", "registry-1.docker.io."]
    out = []
    t = float(START)
    for _ in range(count):
        t += rng.random() * 0.05
        name = rng.choice(names)
        client = f"10.244.{rng.randint(0, 40)}.{rng.randint(2, 250)}:{rng.randint(30000, 60000)}"
        if rng.random() < 0.1:
            port = rng.randint(30000, 60000)
            text = f"[ERROR] plugin/errors: 2 {name} A: read udp 10.244.0.5:{port}->10.0.0.2:53: "
            text += "i/o timeout"
        else:
            rcode = rng.choice(("NOERROR", "NOERROR", "NOERROR", "NXDOMAIN", "SERVFAIL"))
            text = (
                f'[INFO] {client} - {rng.randint(1, 65535)} "A IN {name} udp '
                f'{len(name) + 17} false 512" {rcode} qr,rd,ra {rng.randint(60, 200)} '
                f"{rng.random() * 0.01:.6f}s"
            )
        out.append(_cri(t, text))
    return out


def rabbitmq_lines(count: int, seed: int) -> list[str]:
    """RabbitMQ 3.9+ connection churn, with the two-line 'closing' records."""
    rng = random.Random(seed)
    out: list[str] = []
    t = float(START)
    while len(out) < count:
        t += rng.random() * 0.2
        tm = time.gmtime(int(t))
        stamp = f"{time.strftime('%Y-%m-%d %H:%M:%S', tm)}.{int((t % 1) * 1e6):06d}+00:00"
        pid = f"<0.{rng.randint(200, 30000)}.0>"
        peer = f"10.244.{rng.randint(0, 40)}.{rng.randint(2, 250)}:{rng.randint(30000, 60000)}"
        kind = rng.random()
        if kind < 0.45:
            out.append(
                f"{stamp} [info] {pid} accepting AMQP connection {pid} ({peer} -> 10.244.0.5:5672)"
            )
        elif kind < 0.9:
            out.append(
                f"{stamp} [info] {pid} connection {pid} ({peer} -> 10.244.0.5:5672): user "
                "'circleci' authenticated and granted access to vhost '/'"
            )
        else:
            out.append(
                f"{stamp} [warning] {pid} closing AMQP connection {pid} ({peer} -> "
                "10.244.0.5:5672, vhost: '/', user: 'circleci'):"
            )
            out.append("client unexpectedly closed TCP connection")
    return out[:count]


def fluent_bit_lines(count: int, seed: int) -> list[str]:
    """The kube-proxy lines as Fluent Bit hands them over from containerd (the CRI parser,
    the Kubernetes filter, JSON lines): each line a record with its runtime time, stream,
    ``_p`` flag and the pod's metadata, the records of eight nodes' pods interleaved as
    one export of them all has them."""
    rng = random.Random(seed)
    records = []
    node = 0
    for line in kube_proxy_lines(count, seed):
        if not line.startswith(("\t", " ")):  # a block's lines stay with their record's pod
            node = rng.randrange(8)
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(START + len(records) // 100))
        nanos = len(records) % 100 * 10**7 + rng.randrange(10**7)
        meta = {
            "pod_name": f"kube-proxy-{node:05d}",
            "namespace_name": "kube-system",
            "host": f"ip-10-0-{node}-5.ec2.internal",
            "container_name": "kube-proxy",
            "container_image": "registry.k8s.io/kube-proxy:v1.24.10",
        }
        record = {"time": f"{t}.{nanos:09d}Z", "stream": "stderr", "_p": "F"}
        records.append(json.dumps(record | {"log": line, "kubernetes": meta}))
    return records


#: Shapes of the lines of the programs no format knows, in a cluster's export.
APP_SHAPES = (
    lambda app, t, n: json.dumps({"level": "info", "ts": t, "msg": "handled", "path": f"/v1/{n}"}),
    lambda app, t, n: (
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t))},{n % 1000:03d} INFO "
        f"[http-nio-8080-exec-{n % 9}] com.example.{app.title()}Controller - order {n} ok"
    ),
    lambda app, t, n: (
        f'10.244.{n % 40}.{n % 250} - - [14/Mar/2023:18:00:00 +0000] "GET '
        f'/{app}/{n} HTTP/1.1" 200 {n % 5000} "-" "kube-probe/1.24"'
    ),
    lambda app, t, n: f"worker {n % 7} picked job {n} from queue {app}",
)


def cluster_export_lines(count: int, seed: int, programs: int = 400) -> list[str]:
    """A Fluent Bit export of a whole cluster: kube-proxy's lines beside those of
    ``programs`` other containers, each of one shape of its own (JSON, Java, access log,
    plain), every container's records interleaved with the others'. Each program's format
    is recognised from its own sample."""
    rng = random.Random(seed)
    apps = [
        f"{rng.choice(('orders', 'billing', 'search', 'auth'))}-{n:03d}" for n in range(programs)
    ]
    shape = {app: rng.choice(APP_SHAPES) for app in apps}
    kube_proxy = iter(kube_proxy_lines(count, seed))
    records = []
    for n in range(count):
        t = START + n / 100
        app = rng.choice(apps) if rng.random() < 0.5 else "kube-proxy"
        line = next(kube_proxy) if app == "kube-proxy" else shape[app](app, t, n)
        node = 0 if app == "kube-proxy" else n % 8  # a klog block's lines stay on one pod
        meta = {"pod_name": f"{app}-7d9f8b6c5-x{node % 3}", "namespace_name": "default"}
        meta |= {"host": f"ip-10-0-{node}-5.ec2.internal", "container_name": app}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        record = {"time": f"{stamp}.{n % 100:02d}0000000Z", "stream": "stdout", "_p": "F"}
        records.append(json.dumps(record | {"log": line, "kubernetes": meta}))
    return records


@dataclass(frozen=True)
class Format:
    """A format to read: its file, how to write its lines, the loop's regex, and its
    targets: ``speedup`` over the loop, faster than lnav (``beats_lnav``), and peak
    memory under ``memory_under`` times the input (None: no target)."""

    name: str
    parser: str
    file: str
    lines: object
    pattern: str
    speedup: float = 3.0
    beats_lnav: bool = False
    memory_under: float | None = None
    #: The JSON key that holds the program's line (a collector's record), for the loop.
    json_key: str | None = None


FORMATS = [
    Format(
        "kube-proxy",
        "klog",
        "kube-proxy.log",
        kube_proxy_lines,
        r"([IWEF])(\d{4} \d{2}:\d{2}:\d{2}\.\d{6}) +(\d+) ([^ \]]+)\] ?(.*)",
        speedup=5.0,
        beats_lnav=True,
        memory_under=3.0,
    ),
    Format(
        "coredns",
        "coredns",
        "coredns.log",
        coredns_lines,
        r"(\S+) (stdout|stderr) [FP] \[(\w+)\] (.*)",
    ),
    Format(
        "rabbitmq",
        "rabbitmq",
        "rabbit@rmq-0.log",
        rabbitmq_lines,
        r"(\S+ \S+) \[(\w+)\] (<[^>]+>) (.*)",
    ),
    Format(
        "fluent-bit",
        "klog",
        "fluent-bit-kube-proxy.json",
        fluent_bit_lines,
        r"([IWEF])(\d{4} \d{2}:\d{2}:\d{2}\.\d{6}) +(\d+) ([^ \]]+)\] ?(.*)",
        speedup=1.0,
        json_key="log",
    ),
    Format(
        "cluster-export",
        "klog",
        "fluent-bit-cluster.json",
        cluster_export_lines,
        # the loop takes each record's time and line apart with a regex, its programs'
        # lines being of many shapes
        r'\{"time": "([^"]+)", "stream": "(\w+)", "_p": "[FP]", "log": "(.*)", "kubernetes"',
        speedup=1.0,
    ),
]


# --- contenders, each run in a child process --------------------------------------------


def child(
    contender: str, path: str, pattern: str, root: Path = ROOT, json_key: str | None = None
) -> None:
    """Run one contender on ``path`` and print what it made of it as JSON; ``load`` runs
    the ``timeline`` package of the source tree ``root``; the loop first decodes each
    line's JSON and matches its ``json_key`` where given."""
    start = time.perf_counter()
    if contender == "load":
        sys.path.insert(0, str(root))
        import timeline

        imported = time.perf_counter()
        rows = timeline.load(path, year=YEAR).height
    elif contender == "python-re":
        import re

        import pandas as pd

        imported = time.perf_counter()
        header = re.compile(pattern)
        rows_seen: list[tuple] = []
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if json_key:
                    line = json.loads(line)[json_key]
                match = header.match(line)
                if match:
                    rows_seen.append((number, *match.groups()))
        frame = pd.DataFrame(rows_seen)
        if len(frame) and pattern.startswith("([IWEF])"):  # klog: no year in the line
            frame[2] = pd.to_datetime(f"{YEAR}" + frame[2], format="%Y%m%d %H:%M:%S.%f")
        elif len(frame):
            frame[1] = pd.to_datetime(frame[1], format="ISO8601", utc=True)
        rows = len(frame)
    else:
        raise SystemExit(f"unknown contender {contender}")
    done = time.perf_counter()
    print(json.dumps({"rows": rows, "work": done - imported, "imports": imported - start}))


@dataclass
class Result:
    contender: str
    rows: int
    wall: float
    work: float | None
    peak_mb: float
    cpu: float = 0.0


#: Runs a command and reports its wall time and peak memory. It is a small process of its
#: own: Linux counts what a process held before ``exec`` into its peak, so the command must
#: not be started from this (large) process directly.
RUNNER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
sys.stdout.flush()
print(json.dumps({"wall": time.perf_counter() - start, "maxrss_kb": usage.ru_maxrss,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "code": os.waitstatus_to_exitcode(status)}))
"""


def run(command: list[str], parse_json: bool) -> Result:
    """Run ``command`` in a child of its own; its wall time, peak memory and output. The
    loader's cache of partial results is an empty folder of its own, so every run reads."""
    with tempfile.TemporaryDirectory(prefix="bench_ingest_cache_") as cache:
        done = subprocess.run(
            [sys.executable, "-S", "-c", RUNNER, *command],
            capture_output=True,
            text=True,
            env={**os.environ, "INCIDENT_TIMELINE_CACHE": cache},
        )
    *output, last = done.stdout.strip().splitlines() or [""]
    runner = json.loads(last)
    if runner["code"] != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr[-2000:]}")
    if parse_json:
        data = json.loads(output[-1])
        rows, work = int(data["rows"]), float(data["work"])
    else:
        numbers = [int(tok) for line in output for tok in line.split() if tok.isdigit()]
        rows, work = (numbers[-1] if numbers else -1), None
    return Result("", rows, runner["wall"], work, runner["maxrss_kb"] / 1024, runner["cpu"])


def measure(fmt: Format, path: Path, repeat: int, baselines: list[Path] = ()) -> list[Result]:
    """Each contender's best of ``repeat`` runs on ``path``; for each of ``baselines``,
    also ``timeline.load`` of that source tree (an older checkout), in the same run."""
    results = []
    contenders = [("timeline.load", "load", ROOT), ("python re", "python-re", ROOT)]
    for i, baseline in enumerate(baselines, 1):
        contenders.insert(i, (f"load@{baseline.name}"[:14], "load", baseline))
    for label, name, root in contenders:
        with_bytecode(root)
        command = [sys.executable, __file__, "--child", name, str(path), "--pattern", fmt.pattern]
        command += ["--root", str(root)] + (["--json-key", fmt.json_key] if fmt.json_key else [])
        best = min((run(command, True) for _ in range(repeat)), key=lambda r: r.wall)
        best.contender = label
        results.append(best)
    if shutil.which("lnav"):
        command = ["lnav", "-n", "-c", ";SELECT count(*) FROM all_logs", str(path)]
        best = min((run(command, False) for _ in range(repeat)), key=lambda r: r.wall)
        best.contender = "lnav"
        results.append(best)
    return results


# --- where the loader spends its time ---------------------------------------------------


def stages(path: str) -> None:
    """Time the loader's steps on ``path`` (best effort: it wraps whichever of the loader's
    inner functions exist) and the parser alone, wall and CPU."""
    sys.path.insert(0, str(ROOT))
    import polars as pl

    import parsers
    from parsers import runtime
    from parsers.common import LINE_SCHEMA
    from timeline.reading import loader

    spent: dict[str, list[float]] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                entry = spent.setdefault(name, [0.0, 0.0])
                entry[0] += time.perf_counter() - wall
                entry[1] += time.process_time() - cpu

        return wrapper

    names = ["_read_file", "_read_bytes", "_split_lines", "_assemble", "_settle_year"]
    names += ["_settle_zone", "_to_events", "_file_table"]
    for name in names:
        if hasattr(loader, name):
            setattr(loader, name, timed(name, getattr(loader, name)))
    try:
        from timeline.reading import changes
    except ImportError:
        changes = None
    if changes is not None and hasattr(changes, "with_inferred_changes"):
        changes.with_inferred_changes = timed(
            "with_inferred_changes", changes.with_inferred_changes
        )
    wall, cpu = time.perf_counter(), time.process_time()
    loader.read(path, year=YEAR)
    spent["read (total)"] = [time.perf_counter() - wall, time.process_time() - cpu]

    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = pl.DataFrame({"text": text.removesuffix("\n").split("\n")}).with_columns(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        path=pl.lit(path),
    )
    prefix, _ = runtime.detect(lines["text"].head(200).to_list())
    stripped = runtime.strip(lines.lazy(), prefix).collect()
    parser = parsers.registry.rank(stripped["text"].head(200).to_list())[0][0]
    wall, cpu = time.perf_counter(), time.process_time()
    parsed = parser.parse(stripped.lazy().select(list(LINE_SCHEMA))).collect(engine="in-memory")
    spent[f"{parser.name}.parse alone"] = [time.perf_counter() - wall, time.process_time() - cpu]
    templates = parsed.filter(pl.col("template").is_not_null()).height
    print(f"  {parsed.height:,} records, {templates:,} with a template of their own")
    for name, (w, c) in spent.items():
        print(f"  {name:28s} wall {w:7.2f} s   cpu {c:7.2f} s")


# --- the table --------------------------------------------------------------------------


def report(fmt: Format, path: Path, lines: int, results: list[Result]) -> None:
    size_mb = path.stat().st_size / 1e6
    print(f"\n{fmt.name}: {path.name}, {lines:,} lines, {size_mb:,.1f} MB")
    print(
        f"  {'contender':14s} {'rows':>10s} {'wall s':>8s} {'work s':>8s} {'cpu s':>7s} "
        f"{'lines/s':>12s} {'peak MB':>9s} {'peak/input':>10s}"
    )
    for r in results:
        work = f"{r.work:8.2f}" if r.work is not None else f"{'':8s}"
        print(
            f"  {r.contender:14s} {r.rows:>10,} {r.wall:8.2f} {work} {r.cpu:7.2f} "
            f"{lines / r.wall:>12,.0f} {r.peak_mb:9.0f} {r.peak_mb / size_mb:10.2f}"
        )
    by = {r.contender: r for r in results}
    load = by["timeline.load"]
    speedup = by["python re"].wall / load.wall
    checks = [
        (
            f"timeline.load vs python re: {speedup:.1f}x (target {fmt.speedup:.0f}x)",
            speedup >= fmt.speedup,
        )
    ]
    if fmt.memory_under is not None:
        checks.append(
            (
                f"timeline.load peak memory: {load.peak_mb / size_mb:.2f}x the input "
                f"(target under {fmt.memory_under:.0f}x)",
                load.peak_mb / size_mb < fmt.memory_under,
            )
        )
    if "lnav" not in by:
        print("  lnav is not on PATH: skipped (Debian and Ubuntu: apt-get install lnav)")
    elif fmt.beats_lnav:
        ratio = by["lnav"].wall / load.wall
        checks.append((f"timeline.load vs lnav: {ratio:.2f}x (target above 1x)", ratio > 1))
    for text, ok in checks:
        print(f"  {'met' if ok else 'MISSED':6s} {text}")
    ratios = "; ".join(
        f"{r.contender} wall {r.wall / load.wall:.2f}x, cpu {r.cpu / max(load.cpu, 1e-9):.2f}x"
        for r in results[1:]
    )
    print(f"  each contender's time over timeline.load's (cpu is steadier when shared): {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines per format")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (best kept)")
    parser.add_argument("--seed", type=int, default=20230314)
    parser.add_argument("--formats", default="", help="comma-separated subset of formats")
    parser.add_argument(
        "--keep", type=Path, help="write the logs here and keep them (reused when present)"
    )
    parser.add_argument("--stages", action="store_true", help="also time the loader's steps")
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--pattern", default="", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--json-key", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="also time timeline.load of this source tree (an older checkout) in the same run",
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.pattern, args.root, args.json_key)
        return

    sys.path.insert(0, str(ROOT))
    import parsers

    registered = {p.name for p in parsers.registry.all_parsers()}
    wanted = set(filter(None, args.formats.split(",")))
    chosen = [f for f in FORMATS if f.parser in registered and (not wanted or f.name in wanted)]
    skipped = [f.name for f in FORMATS if f.parser not in registered]
    if skipped:
        print(f"skipped (parser not registered): {', '.join(skipped)}")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for fmt in chosen:
            path = folder / fmt.file
            marker = folder / f".{fmt.file}.{args.lines}.{args.seed}"
            if args.keep is None or not (path.exists() and marker.exists()):
                lines = fmt.lines(args.lines, args.seed)
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
                marker.touch()
                del lines
            results = measure(fmt, path, args.repeat, args.baseline)
            report(fmt, path, args.lines, results)
            if args.stages:
                stages(str(path))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
