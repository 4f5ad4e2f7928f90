"""Write the reconstruction of the 2023-03-14 incident: the bundled sample, or a larger one.

``python -m sample_logs.generate`` rewrites ``sample_logs/circleci-2023-03-14/`` and the
ground truth beside it, byte for byte the same on every run. ``--scale 30 --out /tmp/big``
tells the same story with thirty times the nodes, pods and traffic (about ten million
lines), streamed to disk file by file.

The story (all times UTC) follows ``shared/incident-2023-03-14.md``: kube-proxy is upgraded
from v1.23.17 to v1.24.10 on 2023-03-13 and rolled back; after the rollback a trickle of
``"Sync failed"`` errors grows on a few nodes; the upgrade resumes at 17:40 on 03-14 and
from 18:00 every node fails its syncs; CI jobs wait longer and longer; node-local-dns and
CoreDNS are restarted between 20:00 and 21:00 and DNS then fails; nodes are rebooted one by
one until 23:00, each node's errors stopping at its reboot; machine and macOS jobs stay
delayed until about 01:15; RabbitMQ restarts at 02:50 and 09:50 cause two more episodes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sample_logs import formats as fmt
from sample_logs.formats import NS
from sample_logs.logs import (
    coredns_records,
    kube_proxy_records,
    node_cache_records,
    rabbit_nodes,
    rabbit_records,
)
from sample_logs.records import (
    audit_records,
    changelog_rows,
    expected,
    iso,
    job_pages,
    kube_events,
)
from sample_logs.story import (
    DEFAULT_OUT,
    ROTATE_BYTES,
    SEC,
    SEED,
    Node,
    Pod,
    Run,
    Story,
    build_cluster,
)

# --- writing files -----------------------------------------------------------------------


@dataclass
class Written:
    path: str
    lines: int
    bytes: int


class Output:
    """Where files go, and a tally of what was written."""

    def __init__(self, root: Path):
        self.root = root
        self.files: list[Written] = []

    def write(self, relative: str, lines: Iterable[str], *, compress: bool = False) -> None:
        """Write ``lines`` (no newlines) to ``relative``, gzipped with a fixed header when
        ``compress`` so that the bytes never depend on the clock."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with open(path, "wb") as raw:
            if compress:
                stream = gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
                )
            else:
                stream = raw
            buffer = io.TextIOWrapper(stream, encoding="utf-8", newline="\n", write_through=False)
            chunk: list[str] = []
            for line in lines:
                chunk.append(line)
                count += line.count("\n") + 1
                if len(chunk) >= 4096:
                    buffer.write("\n".join(chunk) + "\n")
                    chunk.clear()
            if chunk:
                buffer.write("\n".join(chunk) + "\n")
            buffer.flush()
            buffer.detach()
            if compress:
                stream.close()
        self.files.append(Written(relative, count, path.stat().st_size))

    def container_log(self, pod: Pod, run: Run, records: Iterable[tuple[int, str, str]]) -> None:
        """A container's CRI log, rotated the way kubelet does past ``ROTATE_BYTES``
        (``0.log.20230314-180005``) and gzipped, as collected from the node."""
        folder = pod.folder()
        name = f"{run.restart}.log"
        segment: list[str] = []
        size = last = 0
        for t, stream, text in records:
            t = last = max(t, last)  # the runtime stamps lines as it reads them, in order
            for part in text.split("\n"):
                line = fmt.cri(t, stream, part)
                segment.append(line)
                size += len(line) + 1
            if size >= ROTATE_BYTES:
                stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime((t + 7 * SEC) // NS))
                self.write(f"{folder}/{name}.{stamp}.gz", segment, compress=True)
                segment, size = [], 0
        self.write(f"{folder}/{name}.gz", segment, compress=True)


# --- the whole thing ---------------------------------------------------------------------


class FailureTally:
    """Watches kube-proxy records go by and remembers each node's first and last failure."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}
        self.last: dict[str, str] = {}
        self.count: dict[str, int] = {}
        self.first_any: int | None = None

    def watch(
        self, node: Node, records: Iterable[tuple[int, str, str]]
    ) -> Iterator[tuple[int, str, str]]:
        for record in records:
            if record[2].startswith("E") and "Failed to execute iptables-restore" in record[2]:
                t = record[0]
                stamp = iso(t)
                self.first.setdefault(node.name, stamp)
                if self.first[node.name] > stamp:
                    self.first[node.name] = stamp
                if self.last.get(node.name, "") < stamp:
                    self.last[node.name] = stamp
                self.count[node.name] = self.count.get(node.name, 0) + 1
                if self.first_any is None or t < self.first_any:
                    self.first_any = t
            yield record


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote: the ground truth and every file with its lines and size."""

    truth: dict
    files: list[Written]
    expected_path: Path


def generate(
    out: Path,
    *,
    scale: float = 1.0,
    seed: int = SEED,
    progress: Callable[[str], None] | None = None,
) -> Generated:
    """Write the logs to ``out`` and the ground truth beside it (``<out>.EXPECTED.json``)."""
    if scale < 0.1:
        raise ValueError("scale must be at least 0.1")
    cluster = build_cluster(scale, seed)
    output = Output(out)
    tally = FailureTally()
    say = progress or (lambda _: None)
    for node in cluster.nodes:
        say(node.name)
        for pod in node.kube_proxy:
            for run in pod.runs:
                output.container_log(
                    pod, run, tally.watch(node, kube_proxy_records(cluster, node, pod, run))
                )
        for pod in node.node_local_dns:
            for run in pod.runs:
                output.container_log(pod, run, node_cache_records(cluster, node, pod, run))
    say("coredns")
    for pod in cluster.coredns:
        for run in pod.runs:
            output.container_log(pod, run, coredns_records(cluster, pod, run))
    say("rabbitmq")
    nodes = rabbit_nodes(seed)
    for rnode in nodes:
        output.write(f"rabbitmq/rabbit@{rnode.name}.log", rabbit_records(cluster, rnode, nodes))
    say("circleci")
    job_count = 0
    for number, (count, page) in enumerate(job_pages(cluster), start=1):
        output.write(f"circleci/jobs-page-{number:03d}.json", [page])
        job_count += count
    say("k8s")
    output.write("k8s/audit.log", audit_records(cluster))
    output.write("k8s/events.json", kube_events(cluster).split("\n"))
    output.write("changelog.csv", changelog_rows(cluster))
    facts = {
        "first_trickle": tally.first_any or Story.ROLLBACK,
        "first_failure": tally.first,
        "last_failure": tally.last,
        "failures": tally.count,
        "jobs": job_count,
        "files": len(output.files),
        "lines": sum(f.lines for f in output.files),
    }
    truth = expected(cluster, facts)
    truth_path = out.with_name(out.name + ".EXPECTED.json")
    truth_path.write_text(json.dumps(truth, indent=2) + "\n")
    return Generated(truth, output.files, truth_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sample_logs.generate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for the logs (default: the bundled sample)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply nodes, pods and traffic (30 gives about 14M lines)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="same story, other details")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        if out.resolve() != DEFAULT_OUT.resolve() and not args.force:
            print(f"{out} is not empty; pass --force to replace it", file=sys.stderr)
            return 1
        shutil.rmtree(out)
    began = time.perf_counter()
    progress = (
        None if args.quiet else (lambda what: print(f"  {what}", file=sys.stderr, flush=True))
    )
    done = generate(out, scale=args.scale, seed=args.seed, progress=progress)
    size = sum(f.bytes for f in done.files)
    print(
        f"wrote {len(done.files)} files, {done.truth['lines']:,} lines, {size / 1e6:.1f} MB "
        f"to {out} in {time.perf_counter() - began:.1f}s; ground truth in {done.expected_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
