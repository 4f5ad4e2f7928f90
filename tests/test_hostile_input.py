"""Broken and hostile input files: bounded, never blocking, every refusal said aloud.

Each test is one case of the hardening issue, in the real formats: klog from kube-proxy,
CoreDNS, RabbitMQ.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import threading
import time
import zlib
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import timeline
from tests.lines import every_line_accounted as accounted
from timeline.cli import app
from timeline.reading.sources import Limits, read_bytes, scan, shown_name

runner = CliRunner()


def klog(n: int, *, seed: int = 0, hour: int = 18) -> str:
    """``n`` kube-proxy klog lines from one minute of an afternoon, levels and files varied."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        level = rng.choice("IIIWE")
        sec = i * 60 // max(n, 1)
        out.append(
            f"{level}0314 {hour}:{rng.randrange(60):02d}:{sec:02d}.{rng.randrange(10**6):06d}"
            f"       1 {rng.choice(['proxier.go:1520', 'config.go:317', 'server.go:661'])}] "
            f'"Sync step {i}" node="ip-10-0-{rng.randrange(255)}-{rng.randrange(255)}"'
        )
    return "\n".join(out) + "\n"


def coredns(n: int, *, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(
        f"[INFO] 10.244.{rng.randrange(9)}.{rng.randrange(255)}:{rng.randrange(1024, 65535)} - "
        f'{rng.randrange(65535)} "A IN svc{i}.default.svc.cluster.local. udp 54 false 512" '
        f"NOERROR qr,aa,rd 106 0.000{rng.randrange(100, 999)}s\n"
        for i in range(n)
    )


def problems_of(loaded: timeline.Loaded, name: str) -> str:
    files = loaded.summary.files.filter(pl.col("file").str.ends_with(name))
    return files["problem"][0] or ""


def gzip_of_repeats(block: bytes, times: int) -> bytes:
    """A gzip of ``block`` repeated ``times`` times, without holding the whole text."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(packer.compress(block) for _ in range(times)) + packer.flush()


# --- 1. decompression bombs ---------------------------------------------------------------


def test_gzip_of_newlines_stops_at_the_ratio_limit_and_the_normal_log_beside_it_loads(tmp_path):
    bomb = tmp_path / "logs" / "kube-proxy.log.1.gz"
    bomb.parent.mkdir()
    bomb.write_bytes(gzip_of_repeats(b"\n" * (1 << 20), 256))  # 256 MiB of newlines
    (tmp_path / "logs" / "coredns.log").write_text(coredns(50, seed=3))
    loaded = timeline.read(tmp_path / "logs", infer=False)
    problem = problems_of(loaded, "kube-proxy.log.1.gz")
    assert "decompression bomb" in problem and "kept the first" in problem
    files = loaded.summary.files
    bomb_lines = files.filter(pl.col("file").str.ends_with(".gz"))["lines"][0]
    assert 0 < bomb_lines < 256 << 20
    assert loaded.events.filter(pl.col("source") == "coredns").height == 50


@pytest.mark.parametrize(
    "head",
    [b"x\x01\x02\x01", b"x^2 + y^2 = r^2", b"x\x9c\x03", b"x\xda", b"(\xb5/\xfd started"],
)
@pytest.mark.parametrize("many", [False, True])
def test_text_that_begins_like_compressed_data_is_read_as_it_is(tmp_path, head, many):
    """polars inflates bytes that begin as zlib or zstd do; a log that merely begins so
    (``x^...``) is text, and every line of it is accounted for."""
    path = tmp_path / "x.log"
    path.write_bytes(head + b"\nI0314 18:00:01.000000       1 a.go:1] second\n")
    paths = [path]
    if many:
        other = tmp_path / "y.log"
        other.write_bytes(b"plain line\n")
        paths.append(other)
    loaded = timeline.read(paths if many else path, cache=False)
    files = loaded.summary.files.filter(pl.col("file").str.ends_with("x.log")).row(0, named=True)
    assert files["lines"] == 2
    assert files["first_lines"] + files["continuation_lines"] + files["unparsed_lines"] == 2


def test_gzip_of_zeros_is_refused_as_binary_without_decompressing_it_all(tmp_path):
    path = tmp_path / "dump.log.gz"
    path.write_bytes(gzip_of_repeats(b"\x00" * (1 << 20), 512))
    data, problems, _ = read_bytes(str(path))
    assert data is None and "binary" in problems[-1]


def test_expanded_size_limit_keeps_the_first_part_and_says_how_much(tmp_path):
    text = klog(4000, seed=1).encode()
    path = tmp_path / "kube-proxy.log.gz"
    path.write_bytes(gzip.compress(text))
    limits = Limits(max_expanded_bytes=64 << 10, chunk_bytes=16 << 10)
    data, problems, _ = read_bytes(str(path), limits)
    assert problems and "past the limit of 64.0 KiB" in problems[0]
    assert 64 << 10 < len(data) <= (64 << 10) + (16 << 10)
    assert text.startswith(data)


@pytest.mark.parametrize("cut", [0.3, 0.7])
def test_truncated_multi_member_gzip_keeps_whole_members_and_reports(tmp_path, cut):
    first, second = klog(300, seed=2).encode(), klog(300, seed=5).encode()
    packed = gzip.compress(first) + gzip.compress(second)
    path = tmp_path / "rotated.log.gz"
    path.write_bytes(packed[: int(len(packed) * (0.5 + cut / 2))])
    data, problems, _ = read_bytes(str(path))
    assert data.startswith(first) and "truncated gzip" in problems[0]


@pytest.mark.parametrize(
    "tail", [b"x" * 8, b"x0" * 40, b"\\x00" * 9, b"junk\n", bytes(range(40, 200)), b"\x1f\x8b\x08"]
)
def test_bytes_after_the_last_gzip_member_are_reported_not_dropped(tmp_path, tail):
    """Only NUL padding may follow the last member unsaid; any other byte after it is a
    broken or foreign end, whatever bytes it is made of."""
    lines = klog(200, seed=len(tail)).encode()
    path = tmp_path / "kube-proxy.log.gz"
    path.write_bytes(gzip.compress(lines) + tail)
    data, problems, _ = read_bytes(str(path))
    assert data == lines
    assert len(problems) == 1 and "gzip" in problems[0]
    assert f"{len(lines):,} bytes" in problems[0]
    padded = tmp_path / "padded.log.gz"
    padded.write_bytes(gzip.compress(lines) + b"\x00" * len(tail))
    assert read_bytes(str(padded))[1] == []


# --- 2. pipes ------------------------------------------------------------------------------


def test_a_pipe_found_in_a_folder_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "kube-proxy.log").write_text(klog(20))
    os.mkfifo(tmp_path / "p.log")
    loaded = timeline.read(tmp_path, infer=False)
    assert "named pipe found in a folder" in problems_of(loaded, "p.log")
    assert loaded.events.height == 20


def test_a_pipe_matched_by_a_glob_is_skipped(tmp_path):
    os.mkfifo(tmp_path / "p.log")
    (tmp_path / "a.log").write_text(klog(5))
    found = scan(str(tmp_path / "*.log"))
    assert [os.path.basename(f) for f in found.files] == ["a.log"]
    assert "named pipe" in found.skipped[0][1]


def test_detect_and_parse_skip_a_pipe_in_a_folder_with_a_warning(tmp_path):
    (tmp_path / "kube-proxy.log").write_text(klog(20, seed=11))
    os.mkfifo(tmp_path / "p.log")
    for verb in (["detect"], ["parse", "-q", "-o", str(tmp_path / "events.csv")]):
        result = runner.invoke(app, [*verb, str(tmp_path)], env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        assert "p.log: named pipe found in a folder or glob: skipped" in result.stderr


def test_a_cache_folder_that_cannot_be_used_is_a_warning_and_the_read_goes_on(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "kube-proxy.log").write_text(klog(20, seed=3))
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    result = runner.invoke(
        app,
        ["analyze", str(logs), "--year", "2023", "-q"],
        env={"COLUMNS": "400", "INCIDENT_TIMELINE_CACHE": str(blocked)},
    )
    assert result.exit_code == 0, result.output
    assert f"warning: the cache folder {blocked} cannot be used" in result.stderr
    assert "Traceback" not in result.output
    with pytest.warns(timeline.TimelineWarning, match="cannot be used.*reading without it"):
        loaded = timeline.read(logs, cache=blocked / "cache", year=2023)
    assert loaded.events.equals(timeline.read(logs, cache=False, year=2023).events)
    # a store written before, opened with the same cache folder
    store = tmp_path / "events"
    timeline.read(logs, cache=False, year=2023, store=store)
    opened = runner.invoke(
        app,
        ["report", str(store), "-q", "-o", str(tmp_path / "r.md")],
        env={"COLUMNS": "400", "INCIDENT_TIMELINE_CACHE": str(blocked)},
    )
    assert opened.exit_code == 0, opened.output
    assert f"warning: the cache folder {blocked} cannot be used" in opened.stderr
    assert "TimelineWarning" not in opened.stderr and (tmp_path / "r.md").exists()


def test_cached_files_cut_short_are_read_anew(tmp_path):
    """A disk that filled up or a copy stopped half way can leave the cache's Parquet
    files cut short: those files are read again, and the run does not fail."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(3):
        (logs / f"kube-proxy-{n}.log").write_text(klog(30, seed=n))
    cache = tmp_path / "cache"
    # read before the damage: the store's event files are links to the cache's
    first = timeline.read(logs, cache=cache, year=2023).events
    first_files = timeline.read(logs, cache=cache, year=2023).summary.files
    stored = sorted(cache.rglob("*.parquet"))
    assert any("stores" in p.parts for p in stored) and any("partials" in p.parts for p in stored)
    for path in stored:
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    again = timeline.read(logs, cache=cache, year=2023)
    assert again.events.equals(first)
    assert again.summary.files.equals(first_files)


def test_what_is_kept_beside_a_finished_store_is_made_anew_when_it_cannot_be_read(tmp_path):
    """The rows the analysis keeps, cut short in the cache, and the list of partials a
    kept store was made from, turned into bytes that are no text: the next read and
    analysis do without them or make them anew, and do not fail."""
    from timeline.analysis import kept_rows

    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(3):
        (logs / f"kube-proxy-{n}.log").write_text(klog(40, seed=n))
    cache = tmp_path / "cache"
    first = timeline.read(logs, cache=cache, year=2023)
    rows = kept_rows(first).events
    kept = sorted(cache.glob("stores/*/rows-*.parquet")) + sorted(cache.glob("stores/*/made-*"))
    assert len(kept) == 2
    kept[0].write_bytes(kept[0].read_bytes()[: kept[0].stat().st_size // 2])
    kept[1].write_bytes(b"\xff\xfe\x00\x80 not names")
    again = timeline.read(logs, cache=cache, year=2023)
    assert kept_rows(again).events.equals(rows)
    assert again.events.equals(first.events)


def test_a_named_pipe_without_a_writer_does_not_wait_forever(tmp_path):
    os.mkfifo(tmp_path / "p.log")
    data, problems, _ = read_bytes(str(tmp_path / "p.log"), Limits(pipe_wait_s=0.2))
    assert data == b"" and "nothing came through the pipe" in problems[0]


def test_a_pipe_named_directly_is_read_like_process_substitution():
    text = klog(500, seed=9)
    reader, writer = os.pipe()

    def write() -> None:
        with os.fdopen(writer, "w") as handle:
            handle.write(text)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        loaded = timeline.read(f"/dev/fd/{reader}", infer=False)
    finally:
        thread.join()
        os.close(reader)
    assert loaded.events.height == 500
    assert loaded.summary.files["problem"][0] is None


# --- 3. long lines -------------------------------------------------------------------------


def test_a_long_line_is_cut_while_reading_and_reported_with_its_number(tmp_path):
    text = klog(3) + "W0314 18:59:59.000001       1 x.go:1] " + "é" * (3 << 20) + "\n" + klog(2)
    path = tmp_path / "kube-proxy.log"
    path.write_text(text)
    limits = Limits(max_line_bytes=1 << 20, chunk_bytes=64 << 10)
    data, _, cuts = read_bytes(str(path), limits)
    assert [c.line for c in cuts] == [4] and cuts[0].length == len(text.splitlines()[3].encode())
    longest = max(map(len, data.split(b"\n")))
    assert longest <= 1 << 20
    data.decode("utf-8")  # never cut inside a character
    loaded = timeline.read(path, infer=False, limits=limits)
    notes = loaded.summary.warnings.filter(pl.col("reason").str.starts_with("line is"))
    assert notes["line"].to_list() == [4]
    assert loaded.summary.files["lines"][0] == 6


@pytest.mark.parametrize("cut", [[2], [1, 5, 6]])
def test_the_lines_cut_short_are_said_with_the_other_problems(tmp_path, cut):
    """A reader is told which lines were read in part, on the command line and in the
    summary, not only in the warnings table."""
    lines = klog(7, seed=len(cut)).splitlines()
    for n in cut:
        lines[n - 1] += " " + "x" * ((1 << 20) + 100 * n)
    path = tmp_path / "logs" / "kube-proxy.log"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    said = [text for kind, text in timeline.read(path).summary.notes() if kind == "cut"]
    many = "s" if len(cut) > 1 else ""
    assert len(said) == 1 and said[0].startswith(f"kube-proxy.log: {len(cut)} line{many} too long")
    assert (
        f"(first: {', '.join(map(str, cut))}; line is {len(lines[cut[0] - 1]):,} bytes" in said[0]
    )
    result = runner.invoke(
        app, ["parse", str(path.parent), "-o", str(tmp_path / "e.jsonl")], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 0
    assert f"warning: {said[0]}" in " ".join(result.stderr.split())


def test_lines_shorter_than_the_limit_pass_whole_across_chunk_boundaries(tmp_path):
    text = klog(2000, seed=4)
    path = tmp_path / "kube-proxy.log"
    path.write_text(text)
    data, problems, cuts = read_bytes(str(path), Limits(max_line_bytes=4096, chunk_bytes=777))
    assert data == text.encode() and problems == [] and cuts == []


# --- 5, 6. names and folders -------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_loads_and_is_shown_escaped(tmp_path):
    bad = os.path.join(os.fsencode(tmp_path), b"kube-proxy-\xff.log")
    with open(bad, "wb") as handle:
        handle.write(klog(10).encode())
    loaded = timeline.read(tmp_path, infer=False)
    assert loaded.events.height == 10
    assert loaded.events["file"][0].endswith("kube-proxy-\\xff.log")


def test_a_symlink_leading_out_of_the_folder_is_not_followed_unless_asked(tmp_path):
    outside = tmp_path / "secret.log"
    outside.write_text(coredns(7, seed=8))
    logs = tmp_path / "bundle"
    logs.mkdir()
    (logs / "kube-proxy.log").write_text(klog(4))
    (logs / "passwd.log").symlink_to(outside)
    (logs / "same.log").symlink_to(logs / "kube-proxy.log")
    loaded = timeline.read(logs, infer=False)
    assert "outside the paths given" in problems_of(loaded, "passwd.log")
    assert loaded.events.filter(pl.col("source") == "coredns").height == 0
    # a second name for a file of the folder reads it once, under the name that is no link
    assert loaded.events.filter(pl.col("file").str.ends_with("same.log")).height == 0
    assert loaded.events.filter(pl.col("file").str.ends_with("kube-proxy.log")).height == 4
    assert "the same file as" in problems_of(loaded, "same.log")
    followed = timeline.read(logs, infer=False, follow_symlinks=True)
    assert followed.events.filter(pl.col("source") == "coredns").height == 7


def test_a_symlink_to_a_folder_outside_is_said_as_one_to_a_file_is(tmp_path):
    """``current -> ../releases/2023-03-14``: the folder's files are not read unless asked,
    and the user is told so, as for a link to a file."""
    outside = tmp_path / "releases" / "2023-03-14"
    outside.mkdir(parents=True)
    (outside / "coredns.log").write_text(coredns(7, seed=8))
    logs = tmp_path / "bundle"
    (logs / "nodes").mkdir(parents=True)
    (logs / "kube-proxy.log").write_text(klog(4))
    (logs / "current").symlink_to(outside)
    (logs / "nodes" / "again").symlink_to(logs)  # a link inside: its files are read anyway
    loaded = timeline.read(logs, infer=False)
    assert loaded.events.height == 4
    assert "outside the paths given" in problems_of(loaded, "current")
    assert not loaded.summary.files["file"].str.contains("again").any()
    followed = timeline.read(logs, infer=False, follow_symlinks=True)
    assert followed.events.filter(pl.col("source") == "coredns").height == 7


@pytest.mark.parametrize("absolute", [False, True])
def test_a_nodes_container_log_links_do_not_count_its_pod_logs_twice(tmp_path, absolute):
    """A node's ``/var/log`` as the kubelet leaves it: ``containers/POD_NS_CONTAINER-ID.log``
    links to ``pods/NS_POD_UID/CONTAINER/0.log``. Each line is read once, under the pods
    name; each link is said, as is a hidden file."""
    node = tmp_path / "var" / "log"
    pods = {
        "kube-system_kube-proxy-7x2kq_0a1b2c3d-4e5f": ("kube-proxy", klog(6, seed=1)),
        "kube-system_coredns-5d78c9869d-p2v7h_9f8e7d6c-5b4a": ("coredns", coredns(5, seed=2)),
    }
    (node / "containers").mkdir(parents=True)
    for folder, (container, text) in pods.items():
        log = node / "pods" / folder / container / "0.log"
        log.parent.mkdir(parents=True)
        log.write_text(text)
        namespace, pod, _uid = folder.split("_")
        link = node / "containers" / f"{pod}_{namespace}_{container}-4f1c2e8a9b7d.log"
        link.symlink_to(log if absolute else os.path.relpath(log, link.parent))
    (node / "pods" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    loaded = timeline.read(tmp_path, infer=False)
    files = loaded.summary.files
    read = files.filter(pl.col("lines") > 0)["file"].to_list()
    assert len(read) == 2 and all("/pods/" in name for name in read)
    assert loaded.events.height == 11
    for link in (node / "containers").iterdir():
        assert "the same file as" in problems_of(loaded, link.name)
        assert "/pods/" in problems_of(loaded, link.name)
    assert "hidden file" in problems_of(loaded, ".DS_Store")


EKS_BUNDLE = "eks_i-0a1b2c3d4e5f60718_2024-06-20_1102-UTC_0.7.8"
KUBE_PROXY_POD = "kube-proxy-qv4f2"
CONTAINER_LINK = (
    f"var_log/{KUBE_PROXY_POD}_kube-system_kube-proxy-"
    "9c1f0e7a3b5d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e.log"
)
POD_LOG = (
    f"var_log/kube-system_{KUBE_PROXY_POD}_7d3c2b1a-0f9e-4d8c-b7a6-5e4f3d2c1b0a/kube-proxy/0.log"
)


def kube_proxy_cri(errors: int, *, sync_ms: int = 123) -> str:
    """kube-proxy's container log as containerd writes it: ``errors`` failed iptables
    restores, each after a sync line."""
    out = []
    for i in range(errors):
        at = f"11:{i:02d}:01.{sync_ms:03d}456"
        out.append(
            f"2024-06-20T{at}789Z stderr F I0620 {at}       1 proxier.go:1436] "
            '"Syncing iptables rules"\n'
        )
        out.append(
            f"2024-06-20T{at}901Z stderr F E0620 {at}       1 proxier.go:1471] "
            '"Failed to execute iptables-restore" err="exit status 1"\n'
        )
    return "".join(out)


def test_copies_of_a_log_under_other_names_are_read_once(tmp_path):
    """The EKS log collector copies kube-proxy's log from ``/var/log/containers`` (the
    link's name) and from ``/var/log/pods`` into its ``var_log/``, and an SRE copied it
    once more by hand beside them: the same bytes three times. Its errors are counted
    once, from the pods copy (whose path names the pod's uid too, as for a symlink); each
    other copy is said, in the load summary and on the command line."""
    text = kube_proxy_cri(6)
    bundle = tmp_path / EKS_BUNDLE
    for name in (CONTAINER_LINK, POD_LOG, "var_log/kube-proxy-copy.log"):
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_text(text)
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    assert loaded.events.filter(pl.col("level") == "error").height == 6
    assert set(loaded.events["file"]) == {str(bundle / POD_LOG)}
    for copy in (CONTAINER_LINK, "var_log/kube-proxy-copy.log"):
        assert problems_of(loaded, copy) == f"the same content as {bundle / POD_LOG}: read once"
    result = runner.invoke(app, ["detect", str(tmp_path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "kube-proxy-copy.log: the same content as" in result.stderr
    assert len(result.stdout.splitlines()) == 1 and "kubelet-copied layout" in result.stdout


def test_files_of_one_size_are_both_read_unless_their_bytes_are_the_same(tmp_path):
    """Two kube-proxy logs of one size, a millisecond apart: the hash decides, not the
    size. Empty files are no copies of each other, each has nothing to read."""
    one, other = kube_proxy_cri(4, sync_ms=123), kube_proxy_cri(4, sync_ms=124)
    assert len(one) == len(other) and one != other
    (tmp_path / "kube-proxy-a.log").write_text(one)
    (tmp_path / "kube-proxy-b.log").write_text(other)
    (tmp_path / "empty-1.log").write_text("")
    (tmp_path / "empty-2.log").write_text("")
    found = scan(str(tmp_path))
    assert len(found.files) == 4 and found.skipped == []
    loaded = timeline.read(tmp_path, infer=False, cache=False)
    assert loaded.events.filter(pl.col("level") == "error").height == 8
    for empty in ("empty-1.log", "empty-2.log"):
        assert problems_of(loaded, empty).startswith("nothing to read")


def test_the_same_bytes_on_two_nodes_are_each_nodes(tmp_path):
    """A copy is of the same owner: a file whose bytes another node's file holds too is
    that node's record, and both are read."""
    text = kube_proxy_cri(2)
    for node in ("ip-10-0-1-5", "ip-10-0-1-6"):
        (tmp_path / node / "var" / "log").mkdir(parents=True)
        (tmp_path / node / "var" / "log" / "kube-proxy.log").write_text(text)
    found = scan(str(tmp_path))
    assert len(found.files) == 2 and found.skipped == []


def test_the_same_bytes_in_two_folders_that_name_no_owner_are_both_read(tmp_path):
    """``node-1/`` and ``node-2/`` name no owner the tool knows, but may be two hosts'
    logs: the same bytes in both are read twice. In one folder, or in an archive and the
    folder it was unpacked to, they are one file's copies."""
    text = kube_proxy_cri(2)
    for place in ("node-1/kube-proxy.log", "node-2/kube-proxy.log", "node-2/kube-proxy (1).log"):
        (tmp_path / place).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / place).write_text(text)
    found = scan(str(tmp_path))
    assert sorted(os.path.relpath(f, tmp_path) for f in found.files) == [
        "node-1/kube-proxy.log",
        "node-2/kube-proxy.log",
    ]
    assert [reason for _, reason in found.skipped] == [
        f"the same content as {tmp_path / 'node-2' / 'kube-proxy.log'}: read once"
    ]


def test_a_folder_symlinked_into_itself_is_walked_once(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "kube-proxy.log").write_text(klog(3))
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    assert len(scan(str(tmp_path), follow_symlinks=True).files) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_is_reported(tmp_path):
    (tmp_path / "kube-proxy.log").write_text(klog(3))
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.log").write_text(klog(3))
    locked.chmod(0)
    try:
        found = scan(str(tmp_path))
    finally:
        locked.chmod(0o755)
    assert found.skipped and "cannot read folder" in found.skipped[0][1]


def test_an_unreadable_folder_walk_error_is_reported(tmp_path, monkeypatch):
    """Also as root: a folder the walk cannot list is turned into a skip, and the walk
    goes on with the rest."""
    (tmp_path / "kube-proxy.log").write_text(klog(3))
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "x.log").write_text(klog(3))
    listing = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = scan(str(tmp_path))
    assert found.skipped == [(str(tmp_path / "locked"), "cannot read folder: Permission denied")]
    assert len(found.files) == 1


def test_a_file_name_that_is_not_utf8_is_shown_escaped_by_the_cli(tmp_path):
    bad = os.path.join(os.fsencode(tmp_path), b"kube-proxy-\xff.log")
    with open(bad, "wb") as handle:
        handle.write(klog(10, seed=12).encode())
    result = runner.invoke(app, ["detect", str(tmp_path)], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "kube-proxy-\\xff.log" in result.stdout
    result = runner.invoke(app, ["parse", str(tmp_path), "-o", str(tmp_path / "e.jsonl")])
    assert result.exit_code == 0, result.output


def test_progress_is_reported_for_every_one_of_many_small_files(tmp_path):
    for i in range(60):
        (tmp_path / f"kube-proxy-{i:03d}.log").write_text(klog(2, seed=i))
    seen: list[str] = []
    timeline.read(tmp_path, infer=False, on_file=seen.append, cache=False)
    assert len(seen) == 60 and len(set(seen)) == 60


def test_shown_name_escapes_only_undecodable_bytes():
    assert shown_name(os.fsdecode(b"a/b\xfe\xffc.log")) == "a/b\\xfe\\xffc.log"
    assert shown_name("日本/x.log") == "日本/x.log"


# --- 13-16. odd encodings ----------------------------------------------------------------


def test_cr_only_line_ends_are_read_as_lines_and_reported(read):
    text = klog(40, seed=6).replace("\n", "\r")
    loaded = read("kube-proxy.log", text)
    assert loaded.summary.files["lines"][0] == 40
    assert loaded.events.height == 40
    assert "CR only" in loaded.summary.files["problem"][0]


def test_a_binary_file_is_said_to_be_one_and_nothing_about_its_line_ends(read):
    """Bytes with a CR and no LF in a binary file are no line ends: its one sentence says
    it is binary, which is why it is not read, and ``detect`` gives that reason."""
    data = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)).replace(b"\n", b"") * 4
    loaded = read("core.log", data)
    assert loaded.summary.files["problem"].to_list() == [
        "binary file (it holds NUL bytes): skipped"
    ]


@pytest.mark.parametrize(
    ("text", "said", "lines"),
    [
        ("", "holds no log lines", 0),
        ("\n\n   \n\t\n", "holds only blank lines", 4),
        ("-- No entries --\n", "holds no log lines", 1),
    ],
)
def test_a_file_with_nothing_to_read_is_said_so_not_of_an_unknown_format(read, text, said, lines):
    """An empty file, one of blank lines, a journal of no entries: no format is to blame."""
    loaded = read("kube-proxy.log", text)
    files = loaded.summary.files
    assert files["problem"].to_list() == [f"nothing to read: the file {said}"]
    assert files["lines"].to_list() == [lines] and accounted(loaded)


def test_a_utf8_bom_does_not_make_line_one_unparsed(read):
    loaded = read(
        "rabbit@node1.log",
        "\ufeff"
        + (
            "2023-03-15 02:50:01.123456+00:00 [warning] <0.8812.0> closing AMQP connection\n"
            "2023-03-15 02:50:02.398201+00:00 [info] <0.8830.0> accepting AMQP connection\n"
        ),
    )
    assert loaded.summary.unparsed_lines == 0
    assert loaded.events["level"].to_list() == ["warning", "info"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_is_decoded(read, encoding):
    text = klog(30, seed=7).replace("Sync", "Synchronisation für")
    bom = "\ufeff".encode(encoding)
    loaded = read("kube-proxy.log", bom + text.encode(encoding))
    assert loaded.events.height == 30
    assert loaded.events["message"].str.contains("für").all()


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_decoded_and_said_not_refused_as_binary(read, encoding):
    """A Windows runner's log written as UTF-16 with no byte order mark has a NUL in every
    other byte: it is text, decoded, with a note that says which UTF-16 was assumed."""
    text = klog(30, seed=7).replace("Sync", "Synchronisation für")
    loaded = read("kube-proxy.log", text.encode(encoding))
    assert loaded.events.height == 30
    assert loaded.events["message"].str.contains("für").all()
    assert accounted(loaded) and loaded.summary.unparsed_lines == 0
    endian = "little" if encoding.endswith("le") else "big"
    assert loaded.summary.files["problem"].to_list() == [
        f"UTF-16 ({endian}-endian) without a byte order mark: decoded"
    ]


def test_nul_bytes_after_the_sniffed_start_are_dropped_and_reported(read):
    head = klog(200, seed=1)
    assert len(head) > 8192
    tail = klog(10, seed=2).replace("Sync", "Sy\x00\x00nc")
    loaded = read("kube-proxy.log", head + tail)
    assert loaded.events.height == 210
    assert not loaded.events["message"].str.contains("\x00").any()
    assert "20 NUL bytes dropped (the first on line 201)" in loaded.summary.files["problem"][0]


@pytest.mark.parametrize(
    ("spoilt", "said"),
    [
        (lambda tail: bytes(4096) + tail, "4,096 NUL bytes dropped (the first on line 11)"),
        (lambda tail: tail.replace(b"Sync", b"Sy\x00nc", 1), "1 NUL bytes dropped (the first on line 11)"),
    ],
)  # fmt: skip
def test_nul_bytes_in_the_first_kilobytes_of_a_log_are_dropped_not_the_file(read, spoilt, said):
    """A node that lost power leaves a hole of NUL bytes where its log had not been
    written yet; a program can log a NUL in a line. Among a log's first lines either is
    dropped and said, as further on, and the file is read, not refused as binary."""
    head, tail = klog(10, seed=1).encode(), klog(10, seed=2).encode()
    assert b"Sync" in tail
    loaded = read("kube-proxy.log", head + spoilt(tail))
    assert loaded.events.height == 20 and accounted(loaded)
    assert not loaded.events["message"].str.contains("\x00").any()
    assert loaded.summary.files["problem"].to_list() == [said]


# --- values only Python writes, and structures that multiply -------------------------------


def _laughs(indent: str, levels: int = 9) -> str:
    """YAML anchors each standing for nine of the one before: ``9 ** levels`` strings."""
    names = "abcdefghijklmnop"
    rows = [f'{indent}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        prev = names[n - 1]
        rows.append(f"{indent}{names[n]}: &{names[n]} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "changes.json",
            '[{"time":"2023-03-15T09:50:00Z","type":"restart","target":"statefulset/mq/rmq",'
            '"description":"d","ticket":NaN,"n":' + "9" * 400 + "},"
            '{"time":"2023-03-15T09:51:00Z","type":"restart","target":"y",'
            '"description":"\\ud800 half a pair","count":Infinity}]',
        ),
        (
            "events.json",
            json.dumps(
                {
                    "kind": "List",
                    "items": [
                        {
                            "kind": "Event",
                            "reason": reason,
                            "type": "Normal",
                            "message": message,
                            "involvedObject": {"kind": "Pod", "name": "rmq-1", "namespace": "mq"},
                            "lastTimestamp": f"2023-03-14T18:0{n}:41Z",
                            "count": "COUNT",
                        }
                        for n, (reason, message) in enumerate(
                            [("Killing", "Stopping container"), ("Unhealthy", "\ud800 probe")]
                        )
                    ],
                }
            )
            .replace('"COUNT"', "Infinity", 1)
            .replace('"COUNT"', "1" + "0" * 300),
        ),
    ],
)
def test_change_records_with_values_only_python_writes_are_read_and_analysed(tmp_path, name, text):
    """NaN, Infinity, a 400-digit number, half a surrogate pair: Python's JSON reader takes
    them, polars' does not. The records are read, their attrs are JSON any reader takes,
    and the analysis goes on."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    assert loaded.events.height >= 2 and loaded.summary.unparsed_lines == 0
    assert "parser failed" not in (loaded.summary.files["problem"][0] or "")
    decoded = loaded.events["attrs"].str.json_decode()
    assert decoded.len() == loaded.events.height
    timeline.analyze(loaded)


def test_a_docker_log_value_polars_cannot_decode_costs_that_line_only(tmp_path):
    lines = [
        '{"log":"\\udc00 x\\n","stream":"stderr","time":"2023-03-14T18:00:01.1Z"}',
        '{"log":"E0314 18:00:02.123456       1 proxier.go:1508] \\"Sync failed\\"\\n",'
        '"stream":"stderr","time":"2023-03-14T18:00:02.1Z"}',
    ]
    (tmp_path / "abc-json.log").write_text("\n".join(lines) + "\n")
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    assert loaded.events["level"].to_list() == ["error"]
    assert loaded.summary.unparsed_lines == 1


def test_a_docker_log_record_cut_in_the_middle_is_unparsed_not_joined_to_the_one_above(
    tmp_path,
):
    """A full disk or a copy cut one record short and the next line begins in the middle
    of the following one: both halves are unparsed lines with their reason, and the
    record above keeps its own message."""
    records = [
        json.dumps(
            {
                "log": f'E0314 18:00:0{i}.000001       1 proxier.go:1520] "Sync failed" n={i}\n',
                "stream": "stderr",
                "time": f"2023-03-14T18:00:0{i}.000001Z",
            }
        )
        for i in range(6)
    ]
    records[2], records[3] = records[2][:40], records[3][30:]
    (tmp_path / "abc-json.log").write_text("\n".join(records) + "\n")
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    assert accounted(loaded)
    assert loaded.events["message"].to_list() == [f'"Sync failed" n={i}' for i in (0, 1, 4, 5)]
    warnings = loaded.summary.warnings.filter(pl.col("unparsed"))
    assert warnings["line"].to_list() == [3, 4]
    assert warnings["reason"].str.contains("docker json-file record cut short").all()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "kube-proxy.log",
            'I0314 17:41:02.518302       1 server.go:206] "A"\n'
            '\ufeffE0314 17:41:03.518302       1 server.go:207] "B failed"\n'
            'I0314 17:41:04.518302       1 server.go:208] "C"\n',
        ),
        (
            "rabbit@rmq-0.log",
            "2023-03-15 02:50:01.123456+00:00 [info] <0.1.0> accepting AMQP connection\n"
            "\ufeff2023-03-15 02:50:02.123456+00:00 [error] <0.2.0> closing AMQP connection\n"
            "2023-03-15 02:50:03.123456+00:00 [info] <0.3.0> accepting AMQP connection\n",
        ),
    ],
)
def test_a_bom_at_the_start_of_a_line_mid_file_is_dropped_like_the_first(tmp_path, name, text):
    """``cat a.log b.log`` keeps b's BOM mid-file: the record after it still starts."""
    for gz in (False, True):
        path = tmp_path / (name + (".gz" if gz else ""))
        data = text.encode()
        path.write_bytes(gzip.compress(data) if gz else data)
        loaded = timeline.read(path, cache=False, infer=False)
        assert loaded.events.sort("line")["level"].to_list() == ["info", "error", "info"]
        path.unlink()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "changes.yaml",
            "changes:\n  - time: 2023-03-14 21:02\n    type: restart\n    target: x\n"
            "    description: d\n    extra:\n" + _laughs("      ") + "      z: *i\n"
            "  - time: 2023-03-14 21:05\n    type: restart\n    target: y\n"
            "    description: fine\n",
        ),
        (
            "events.yaml",
            "apiVersion: v1\nkind: List\n" + _laughs("") + "items:\n"
            "- apiVersion: v1\n  kind: Event\n  involvedObject: {kind: Pod, name: rmq-1}\n"
            "  reason: Unhealthy\n  message: *i\n  type: Warning\n"
            '  lastTimestamp: "2023-03-14T18:05:41Z"\n',
        ),
    ],
)
def test_yaml_aliases_are_refused_before_they_multiply(tmp_path, name, text):
    """A few anchors can stand for 9 ** 9 strings (the "billion laughs"): aliases are
    refused with a reason, in no time and memory."""
    (tmp_path / name).write_text(text)
    started = time.perf_counter()
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    assert time.perf_counter() - started < 30  # unbounded before: minutes and gigabytes
    reasons = loaded.summary.warnings["reason"].to_list() + [loaded.summary.files["problem"][0]]
    assert any("aliases (*name) are not read" in (r or "") for r in reasons)


def test_kubectl_events_lines_without_a_type_continue_the_row_above_not_lost(tmp_path):
    """kubectl prints a message's own line breaks: the line under a row is the rest of
    its message."""
    (tmp_path / "events.txt").write_text(
        "LAST SEEN   TYPE      REASON              OBJECT                              MESSAGE\n"
        "12m         Normal    Scheduled           pod/api-7d9f8c6b5d-x2x7k            "
        "Successfully assigned default/api-7d9f8c6b5d-x2x7k to\n"
        "ip-10-0-1-5\n"
        "3m5s        Warning   BackOff             pod/api-7d9f8c6b5d-x2x7k            "
        "Back-off restarting failed container\n"
    )
    loaded = timeline.read(tmp_path, cache=False, infer=False, now="2023-03-14T18:30:00Z")
    files = loaded.summary.files
    events = loaded.events.filter(pl.col("kind") == "log").sort("line")
    assert events.height == files["rows"][0] == 2
    assert loaded.summary.warnings.filter(pl.col("unparsed")).height == 0
    assert events["message"][0].endswith(" to\nip-10-0-1-5")
    assert files["continuation_lines"][0] == 2  # the header, and the line under the row


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize(
    ("name", "text", "rows"),
    [
        (
            "app.log",
            '{"level":"error","ts":1678816801.1,"msg":"x","deep":' + _deep(10_000) + "}\n"
            '{"level":"info","ts":1678816802.1,"msg":"fine"}\n',
            1,
        ),
        ("jobs.json", '{"items":[{"job_number":1,"deep":' + _deep(10_000) + "}]}\n", 0),
        (
            "changes.json",
            '[{"time":"2023-03-15T09:50:00Z","type":"restart","target":"x","description":'
            + _deep(10_000)
            + '},\n{"time":"2023-03-15T09:51:00Z","type":"restart","target":"y",'
            '"description":"fine"}]\n',
            1,
        ),
        (
            "events.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- kind: Event\n  reason: Started\n"
            "  deep: " + "[" * 10_000 + "]" * 10_000 + "\n",
            0,
        ),
    ],
)
def test_a_value_nested_thousands_deep_costs_its_lines_not_the_file(tmp_path, name, text, rows):
    """Python's JSON and YAML readers give up past about a thousand levels: that value's
    lines are unparsed with a reason, the rest of the file is read."""
    (tmp_path / name).write_text(text)
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    files = loaded.summary.files
    assert "parser failed" not in (files["problem"][0] or "")
    assert loaded.events.height == rows and files["unparsed_lines"][0] >= 1


def test_a_big_latin1_log_is_cut_in_chunks_and_read(tmp_path, monkeypatch):
    """A big log written in Latin-1 (a Windows host's) is cut where a record starts as a
    UTF-8 one is; looking for that line among bytes that are not UTF-8 raised."""
    from timeline.reading import mapper

    text = klog(200, seed=3).replace("Sync", "Synchronisation f\u00fcr")
    path = tmp_path / "kube-proxy.log"
    path.write_bytes(text.encode("latin-1"))
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 2048)
    assert len(mapper.plan(str(path), parts=2)) > 4
    loaded = timeline.read(path, infer=False, cache=False)
    assert loaded.events.height == 200 and accounted(loaded)
    assert "not valid UTF-8" in loaded.summary.files["problem"][0]


#: A format whose continuation lines make its own pattern backtrack without end in a
#: backtracking regex engine: ``(?:[a-z]+ ?)+$`` against a line that begins like a record
#: and ends in a run of letters and a ``!``.
BACKTRACKING_FORMAT = r"""
name = "wordy"
regex = '^(?P<ts>[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}) (?P<level>[A-Z]+) (?P<message>(?:[a-z]+ ?)+)$'
time = { format = "%Y/%m/%d %H:%M:%S", zone = "UTC" }
multiline = { join = true }

[[sample]]
text = '''
2023/03/14 18:00:01 INFO queue drained
2023/03/14 18:00:02 ERROR queue full again
'''
rows = 2
"""


def test_a_big_file_of_a_format_whose_pattern_backtracks_is_cut_and_read(tmp_path, monkeypatch):
    """A big file is cut into chunks where a record starts; finding that line with the
    format's own pattern must take time in proportion to the text, whatever the pattern."""
    from timeline.reading import mapper
    from timeline.reading.formats import using_formats

    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "wordy.toml").write_text(BACKTRACKING_FORMAT)
    lines = []
    for n in range(400):
        lines.append(f"2023/03/14 18:{n // 60:02d}:{n % 60:02d} INFO step {'abc ' * (n % 5)}done")
        # not records (the "!"), so they continue the one above
        lines += [f"2023/03/14 18:{n // 60:02d}:{n % 60:02d} INFO {'a' * 60}!"] * (n % 3)
    path = tmp_path / "wordy.log"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(mapper, "CHUNK_BYTES", 2048)
    with using_formats(tmp_path / "formats"):
        tasks = mapper.plan(str(path), format="wordy", parts=2)
    assert len(tasks) > 4
    loaded = timeline.read(
        path, format="wordy", formats=tmp_path / "formats", infer=False, cache=False
    )
    files = loaded.summary.files.row(0, named=True)
    assert files["format"] == "wordy"
    assert (files["first_lines"], files["continuation_lines"]) == (400, 399)
    assert files["unparsed_lines"] == 0
    joined = loaded.events.filter(pl.col("message").str.ends_with("!"))
    assert joined.height == 266
    assert (joined["message"].str.count_matches("!") == pl.Series([1, 2] * 133)).all()


@pytest.mark.parametrize(
    ("name", "text", "rows"),
    [
        (
            "app.jsonl",
            '{"level":"error","ts":"2023-03-14T18:00:01.5Z","msg":"bad byte \\udc80 in key"}\n'
            '{"level":"info","ts":"2023-03-14T18:00:02.5Z","msg":"emoji \\ud83d\\ude00 ok"}\n',
            2,
        ),
        (
            "audit.log",
            '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1",'
            '"stage":"ResponseComplete","requestURI":"/apis/apps/v1/namespaces/kube-system/'
            'daemonsets/kube-proxy","verb":"patch","user":{"username":"admin"},'
            '"userAgent":"kubectl/\\udc80v1.24","objectRef":{"resource":"daemonsets",'
            '"namespace":"kube-system","name":"kube-proxy","apiGroup":"apps","apiVersion":"v1"},'
            '"responseStatus":{"code":200},"requestReceivedTimestamp":"2023-03-14T17:40:00.1Z",'
            '"stageTimestamp":"2023-03-14T17:40:00.2Z"}\n',
            1,
        ),
        (
            "jobs.json",
            json.dumps(
                {
                    "items": [
                        {
                            "number": 7 + k,
                            "name": f"build-\udc80-{k}",
                            "status": "failed",
                            "created_at": "2023-03-14T18:00:09.871Z",
                            "queued_at": "2023-03-14T18:00:11.412Z",
                            "started_at": "2023-03-14T18:04:15.612Z",
                            "stopped_at": "2023-03-14T18:05:16.816Z",
                            "executor": {"resource_class": "large", "type": "docker"},
                            "project": {"slug": "gh/acme/api"},
                        }
                        for k in range(2)
                    ],
                    "next_page_token": None,
                }
            ),
            2,
        ),
    ],
)
def test_half_a_surrogate_pair_in_json_costs_no_record(tmp_path, name, text, rows):
    """``\\udc80`` (half a pair: Python's JSON reader takes it, polars' refuses it) is read
    as the replacement character; the record, and the others, are kept."""
    (tmp_path / name).write_text(text)
    loaded = timeline.read(tmp_path, cache=False, infer=False)
    assert loaded.summary.unparsed_lines == 0
    assert loaded.summary.files["problem"][0] is None
    assert loaded.events.height >= rows
    assert "\ufffd" in "".join(
        loaded.events["attrs"].fill_null("") + loaded.events["message"].fill_null("")
    )
