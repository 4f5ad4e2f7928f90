"""Archives and compressed files as they are downloaded: a support bundle as ``.tar.gz``,
``.tar.xz``, ``.tar.zst`` or ``.zip``, a CI run's log archive, rotated logs packed with
bzip2, xz or zstd. Each is read as the files it holds, shown under the archive's name, and
what it cannot give is said."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import random
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import zstandard

import timeline
from tests.lines import every_line_accounted
from timeline.reading.sources import Limits

NODES = {
    "aws": [
        "ip-10-20-3-33.eu-west-1.compute.internal",
        "ip-10-20-7-132.eu-west-1.compute.internal",
    ],
    "gke": ["gke-prod-default-pool-8f2a1c3e-x7k2", "gke-prod-default-pool-8f2a1c3e-q9wd"],
    "plain": ["worker-a1", "worker-b2", "worker-c3"],
}


def cri(t: datetime, text: str, rng: random.Random) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S.%f}{rng.randrange(100, 999)}Z stderr F {text}"


def kube_proxy_log(rng: random.Random, start: datetime, n: int) -> str:
    lines = []
    for i in range(n):
        t = start + timedelta(seconds=30 * i + rng.random())
        if rng.random() < 0.2:
            text = '"Failed to execute iptables-restore" err="exit status 1"'
            head = f"E{t:%m%d %H:%M:%S.%f}       1 proxier.go:1508] "
        else:
            text = f'"Syncing iptables rules" numServices={rng.randrange(100, 900)}'
            head = f"I{t:%m%d %H:%M:%S.%f}       1 proxier.go:820] "
        lines.append(cri(t, head + text, rng))
    return "\n".join(lines) + "\n"


def coredns_log(rng: random.Random, start: datetime, n: int) -> str:
    lines = []
    for i in range(n):
        t = start + timedelta(seconds=20 * i + rng.random())
        rcode = rng.choice(["NOERROR", "NOERROR", "SERVFAIL"])
        text = (
            f"[INFO] 10.244.{rng.randrange(9)}.{rng.randrange(255)}:{rng.randrange(1024, 65535)} "
            f'- {rng.randrange(65535)} "A IN api.shop.svc.cluster.local. udp 54 false 512" '
            f"{rcode} qr,aa,rd 106 0.000{rng.randrange(100, 999)}s"
        )
        lines.append(cri(t, text, rng))
    return "\n".join(lines) + "\n"


def rabbitmq_log(rng: random.Random, start: datetime, n: int) -> str:
    lines = []
    for i in range(n):
        t = start + timedelta(seconds=45 * i + rng.random())
        port = rng.randrange(30000, 60000)
        lines.append(
            f"{t:%Y-%m-%d %H:%M:%S.%f}+00:00 [erro] <0.{rng.randrange(900, 9999)}.0> "
            f"closing AMQP connection <0.{rng.randrange(900, 9999)}.0> "
            f"(10.244.1.{rng.randrange(2, 250)}:{port} -> 10.244.2.9:5672):"
            if rng.random() < 0.3
            else f"{t:%Y-%m-%d %H:%M:%S.%f}+00:00 [info] <0.{rng.randrange(900, 9999)}.0> "
            f"accepting AMQP connection 10.244.1.{rng.randrange(2, 250)}:{port} -> 10.244.2.9:5672"
        )
    return "\n".join(lines) + "\n"


def node_logs(node: Path, rng: random.Random, start: datetime) -> None:
    """A node's kube-proxy and CoreDNS pod logs, as the kubelet writes them."""
    pods = node / "var" / "log" / "pods"
    for program, write in (("kube-proxy", kube_proxy_log), ("coredns", coredns_log)):
        uid = f"{rng.getrandbits(32):08x}-4e5f-4a1b-9c2d-{rng.getrandbits(48):012x}"
        where = pods / f"kube-system_{program}-{rng.getrandbits(20):05x}_{uid}" / program
        where.mkdir(parents=True)
        (where / "0.log").write_text(write(rng, start, rng.randrange(20, 60)))


def bundle(folder: Path, seed: int) -> Path:
    """A support bundle's folder: each node's pod logs and the brokers' logs, of varied
    names and times."""
    rng = random.Random(seed)
    month, day, hour = rng.randrange(1, 13), rng.randrange(1, 28), rng.randrange(24)
    start = datetime(2025, month, day, hour, tzinfo=UTC)
    for node in NODES[rng.choice(sorted(NODES))]:
        node_logs(folder / "nodes" / node, rng, start)
    broker = folder / "rabbitmq"
    broker.mkdir()
    for i in range(rng.randrange(1, 4)):
        (broker / f"rabbit@rmq-{i}.log").write_text(rabbitmq_log(rng, start, rng.randrange(10, 40)))
    return folder


def packed(folder: Path, archive: Path) -> Path:
    """``folder`` packed as ``archive`` says by its name, under a top folder of its name."""
    top = folder.name
    archive.parent.mkdir(parents=True, exist_ok=True)
    members = sorted(p for p in folder.rglob("*") if p.is_file())
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in members:
                out.write(path, f"{top}/{path.relative_to(folder)}")
        return archive
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        out.add(folder, arcname=top)
    data = buffer.getvalue()
    compress = {
        ".tar": lambda d: d,
        ".tar.gz": gzip.compress,
        ".tgz": gzip.compress,
        ".tar.bz2": bz2.compress,
        ".tar.xz": lzma.compress,
        ".tar.zst": lambda d: zstandard.ZstdCompressor(write_checksum=True).compress(d),
    }
    suffix = next(s for s in sorted(compress, key=len, reverse=True) if archive.name.endswith(s))
    archive.write_bytes(compress[suffix](data))
    return archive


def comparable(events: pl.DataFrame, prefix: str) -> pl.DataFrame:
    """The rows with their files named from the bundle's top folder down."""
    return events.with_columns(
        file=pl.col("file").str.strip_prefix(prefix).str.replace("^/", "")
    ).sort("file", "line", "kind", "ts")


@pytest.mark.parametrize(
    ("seed", "name"),
    [
        (1, "bundle.tar.gz"),
        (2, "support-2025.tgz"),
        (3, "must-gather.tar.xz"),
        (4, "dump.tar.bz2"),
        (5, "bundle.tar.zst"),
        (6, "logs.zip"),
        (7, "plain.tar"),
    ],
)
def test_an_archive_is_read_as_the_folder_it_holds(tmp_path, seed, name):
    folder = bundle(tmp_path / "incident-bundle", seed)
    archive = packed(folder, tmp_path / "downloads" / name)
    as_folder = timeline.read(folder, cache=False)
    as_archive = timeline.read(archive, cache=False)
    assert every_line_accounted(as_archive)
    files = as_archive.summary.files
    assert files.height == as_folder.summary.files.height
    assert files["file"].str.starts_with(f"{archive}/incident-bundle/").all()
    assert files["problem"].null_count() == files.height
    left = comparable(as_folder.events, str(folder.parent))
    right = comparable(as_archive.events, str(archive))
    assert right.drop("attrs").equals(left.drop("attrs"))
    hosts = set(right.filter(pl.col("component") == "kube-proxy")["host"])
    assert hosts == {p.name for p in (folder / "nodes").iterdir()}
    # nothing unpacked is left behind
    assert not (Path(as_archive.store) / ".unpacked").exists()


def test_an_archive_inside_a_folder_beside_plain_logs_and_one_inside_another(tmp_path):
    """A node's logs packed under its name, beside plain logs; a zip holding a tar.gz."""
    logs = tmp_path / "logs"
    rng = random.Random(3)
    node_logs(tmp_path / "node", rng, datetime(2025, 5, 1, tzinfo=UTC))
    inner = packed(tmp_path / "node" / "var", tmp_path / "worker-b2.tar.gz")
    logs.mkdir()
    (logs / "rabbit@rmq-0.log").write_text(rabbitmq_log(rng, datetime(2025, 5, 1, tzinfo=UTC), 9))
    with zipfile.ZipFile(logs / "nodes.zip", "w") as out:
        out.write(inner, "worker-b2.tar.gz")
    loaded = timeline.read(logs, cache=False)
    assert every_line_accounted(loaded)
    names = loaded.summary.files["file"].to_list()
    assert f"{logs}/rabbit@rmq-0.log" in names
    nested = [n for n in names if n.startswith(f"{logs}/nodes.zip/worker-b2.tar.gz/var/log/pods/")]
    assert len(nested) == 2
    klog = loaded.events.filter(pl.col("component") == "kube-proxy")
    assert klog.height > 0 and set(klog["host"]) == {"worker-b2"}


def test_a_run_s_log_archive_zip_counts_its_job_once(tmp_path):
    """GitHub's "Download log archive": each job's log, and each step's log again in a
    folder named after the job. The step logs are known as copies inside the zip too."""
    log = (Path(__file__).parent / "test_github_actions.py").read_text()
    start = log.index('FAILED_LOG = """') + len('FAILED_LOG = """')
    failed = log[start : log.index('"""', start)].encode().decode("unicode_escape")
    lines = failed.lstrip("\ufeff").splitlines()
    archive = tmp_path / "logs_4421567890.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("1_build.txt", failed)
        out.writestr("build/1_Set up job.txt", "\n".join(lines[:16]) + "\n")
        out.writestr("build/3_Run make test.txt", "\n".join(lines[16:24]) + "\n")
    loaded = timeline.read(archive, infer=False, cache=False)
    events = loaded.events
    assert events.filter(pl.col("kind") == "job").height == 1
    errors = events.filter((pl.col("kind") == "log") & (pl.col("level") == "error"))
    assert errors.height == 1
    steps = loaded.summary.warnings.filter(pl.col("unparsed"))
    assert steps.height == 24 and steps["reason"].str.contains("1_build.txt").all()


@pytest.mark.parametrize(
    ("suffix", "pack"),
    [
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".zst", lambda d: zstandard.ZstdCompressor(write_checksum=True).compress(d)),
    ],
)
def test_a_log_compressed_by_logrotate_reads_as_the_plain_one(tmp_path, suffix, pack):
    rng = random.Random(len(suffix))
    text = kube_proxy_log(rng, datetime(2025, 3, 4, 1, tzinfo=UTC), 300).encode()
    plain = tmp_path / "plain" / "kube-proxy.log"
    plain.parent.mkdir()
    plain.write_bytes(text)
    # two streams one after the other, as ``cat a.xz b.xz`` gives
    cut = text.index(b"\n", len(text) // 2) + 1
    packed_path = tmp_path / "packed" / f"kube-proxy.log.1{suffix}"
    packed_path.parent.mkdir()
    packed_path.write_bytes(pack(text[:cut]) + pack(text[cut:]))
    left = timeline.read(plain, cache=False).events.drop("file")
    right = timeline.read(packed_path, cache=False)
    assert right.summary.files["problem"][0] is None
    assert right.events.drop("file").equals(left)


@pytest.mark.parametrize(
    ("suffix", "pack", "kind"),
    [(".bz2", bz2.compress, "bzip2"), (".xz", lzma.compress, "xz"), (".zst", None, "zstd")],
)
def test_a_truncated_or_corrupt_compressed_log_keeps_what_came_before(tmp_path, suffix, pack, kind):
    # the zstd command writes a checksum, by which a corrupt frame is told
    pack = pack or (lambda d: zstandard.ZstdCompressor(write_checksum=True).compress(d))
    # bzip2 packs 900 kB of text a block, and a block cut short gives nothing
    text = kube_proxy_log(random.Random(7), datetime(2025, 1, 2, tzinfo=UTC), 15_000)
    data = pack(text.encode())
    cut = tmp_path / f"cut.log{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    loaded = timeline.read(cut, cache=False)
    problem = loaded.summary.files["problem"][0]
    assert problem.startswith(f"truncated {kind}: kept the ")
    assert 0 < loaded.summary.files["lines"][0] < 15_000
    broken = tmp_path / f"broken.log{suffix}"
    broken.write_bytes(data[:200] + bytes(b ^ 0x5A for b in data[200:400]) + data[400:])
    problem = timeline.read(broken, cache=False).summary.files["problem"][0]
    assert problem.startswith((f"corrupt {kind}", f"truncated {kind}"))


def hostile_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as out:
        for info, data in members:
            info.size = len(data)
            out.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def test_a_hostile_archive_writes_nothing_outside_its_folder_and_says_its_links(tmp_path):
    members = []
    names = ("../../escaped.log", "/tmp/absolute-escape.log", "ok/kube-proxy.log")
    for seed, name in enumerate(names, start=1):  # each its own lines: copies are read once
        good = kube_proxy_log(random.Random(seed), datetime(2025, 2, 3, tzinfo=UTC), 12)
        members.append((tarfile.TarInfo(name), good.encode()))
    link = tarfile.TarInfo("ok/link.log")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    device = tarfile.TarInfo("ok/null")
    device.type = tarfile.CHRTYPE
    other = kube_proxy_log(random.Random(2), datetime(2025, 2, 3, tzinfo=UTC), 5).encode()
    members += [(link, b""), (device, b"")]
    # a second member of one name, and one named as if that file were a folder
    members += [(tarfile.TarInfo("ok/kube-proxy.log"), other)]
    members += [(tarfile.TarInfo("ok/kube-proxy.log/inner.log"), other)]
    (tmp_path / "in").mkdir()
    archive = hostile_tar(tmp_path / "in" / "evil.tar.gz", members)
    store = tmp_path / "store"
    loaded = timeline.read(archive, store=store, cache=False)
    assert not (tmp_path / "escaped.log").exists() and not Path("/tmp/absolute-escape.log").exists()
    files = loaded.summary.files
    shown = set(files["file"])
    assert {f"{archive}/escaped.log", f"{archive}/tmp/absolute-escape.log"} <= shown
    problems = dict(zip(files["file"], files["problem"], strict=True))
    assert problems[f"{archive}/ok/link.log"] == "link inside an archive: skipped"
    assert f"{archive}/ok/null" not in problems
    assert problems[f"{archive}/ok/kube-proxy.log"].startswith("a second member of the same name")
    assert problems[f"{archive}/ok/kube-proxy.log/inner.log"].startswith("cannot unpack: ")
    assert loaded.events.filter(pl.col("kind") == "log").height == 36
    assert not (store / ".unpacked").exists()


def test_an_archive_bomb_is_unpacked_only_to_the_ratio_limit(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        out.writestr(
            "a/kube-proxy.log",
            kube_proxy_log(random.Random(2), datetime(2025, 4, 5, tzinfo=UTC), 5),
        )
        for i in range(3):
            out.writestr(f"b/zeros-{i}.log", "\n" * (24 << 20))
    limits = Limits(max_ratio=50, ratio_floor_bytes=4 << 20)
    loaded = timeline.read(archive, limits=limits, cache=False)
    problem = loaded.summary.files.filter(pl.col("file") == str(archive))["problem"][0]
    assert "decompression bomb" in problem and "the rest is not read" in problem
    assert loaded.events.filter(pl.col("component") == "kube-proxy").height == 5
    assert int(loaded.summary.files["lines"].sum()) < 24 << 20


def test_a_truncated_tar_gz_keeps_the_files_before_the_cut(tmp_path):
    folder = bundle(tmp_path / "b", seed=21)
    archive = packed(folder, tmp_path / "b.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * 0.7)])
    loaded = timeline.read(archive, cache=False)
    files = loaded.summary.files
    problem = files.filter(pl.col("file") == str(archive))["problem"][0]
    assert problem.startswith("cannot unpack the rest of the archive (truncated gzip")
    read = files.filter(pl.col("file") != str(archive))
    assert 0 < read.height < sum(1 for p in folder.rglob("*") if p.is_file())
    assert loaded.events.height > 0


def test_an_archive_not_named_as_one_is_said_to_be_one(tmp_path):
    folder = bundle(tmp_path / "b", seed=5)
    archive = packed(folder, tmp_path / "b.tar.gz")
    misnamed = tmp_path / "logs" / "b.log.gz"
    misnamed.parent.mkdir()
    misnamed.write_bytes(archive.read_bytes())
    (tmp_path / "logs" / "kube-proxy.log").write_text(
        kube_proxy_log(random.Random(1), datetime(2025, 2, 3, tzinfo=UTC), 12)
    )
    problem = timeline.read(tmp_path / "logs", cache=False).summary.files.filter(
        pl.col("file").str.ends_with("b.log.gz")
    )["problem"][0]
    assert "a tar archive" in problem and ".tar.gz" in problem


def test_detect_says_what_each_file_of_an_archive_is(tmp_path):
    from typer.testing import CliRunner

    from timeline.cli import app

    folder = bundle(tmp_path / "b", seed=8)
    archive = packed(folder, tmp_path / "b.tar.xz")
    result = CliRunner().invoke(app, ["detect", "--json", str(archive)])
    assert result.exit_code == 0
    found = {
        f["file"].removeprefix(f"{archive}/b/"): f["format"] for f in json.loads(result.stdout)
    }
    expected = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert set(found) == expected
    assert {found[name] for name in found if "/kube-proxy/" in name} == {"klog"}
    assert {found[name] for name in found if name.startswith("rabbitmq/")} == {"rabbitmq"}
