"""CircleCI step output as its API gives it (a v1.1 build's ``output_url``): a JSON array
of pieces of the step's terminal, each with its time and stream."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from parsers import registry
from tests.lines import every_line_accounted

DNS_ERROR = (
    "dial tcp: lookup rabbitmq.ci.svc.cluster.local on 10.96.0.10:53: "
    "read udp 10.244.3.17:{port}->10.96.0.10:53: i/o timeout"
)


def output_pieces(seed: int, *, failed: str | None) -> list[dict]:
    """A step's output as CircleCI cuts it: a few lines a piece, CR-LF line ends, a
    progress bar's carriage returns, and the line CircleCI writes when it fails."""
    rng = random.Random(seed)
    t = datetime(2025, rng.randrange(1, 13), rng.randrange(1, 28), rng.randrange(24), tzinfo=UTC)
    pieces = [{"message": "#!/bin/bash -eo pipefail\nmake test\n", "type": "out"}]
    for _ in range(rng.randrange(3, 9)):
        lines = [
            DNS_ERROR.format(port=rng.randrange(30000, 60000))
            if rng.random() < 0.4
            else f"ok  \tgithub.com/acme/api/pkg{rng.randrange(30)}\t{rng.random():.3f}s"
            for _ in range(rng.randrange(1, 4))
        ]
        pieces.append({"message": "\r\n".join(lines) + "\r\n", "type": "out"})
    pieces.append(
        {"message": "Downloading 10%\rDownloading 60%\rDownloading 100%\n", "type": "out"}
    )
    if failed:
        pieces.append({"message": f"\r\n{failed}\r\n", "type": "err"})
    out = []
    for piece in pieces:
        t += timedelta(seconds=rng.uniform(0.1, 20))
        time = f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"
        out.append({"message": piece["message"], "time": time, **piece, "truncated": False})
    return out


def lines_of(pieces: list[dict]) -> list[tuple[str, str]]:
    """Each line of each piece, with its piece's time, as a reader would count them."""
    out = []
    for piece in pieces:
        text = piece["message"].replace("\r\n", "\n").replace("\r", "\n").removesuffix("\n")
        out += [(line, piece["time"]) for line in text.split("\n")]
    return out


@pytest.mark.parametrize(
    ("seed", "failed"),
    [
        (1, "Exited with code exit status 2"),
        (2, "Too long with no output (exceeded 10m0s): context deadline exceeded"),
        (3, "Exited with code 1"),
        (4, None),
    ],
)
@pytest.mark.parametrize("shape", ["array", "pretty"])
def test_every_line_of_a_step_s_output_is_a_row_at_its_piece_s_time(read, seed, failed, shape):
    pieces = output_pieces(seed, failed=failed)
    text = json.dumps(pieces, indent=2 if shape == "pretty" else None) + "\n"
    loaded = read(f"jobs/8812/run-tests-{seed}.json", text)
    assert loaded.summary.files["format"].to_list() == ["circleci-output"]
    assert every_line_accounted(loaded) and loaded.summary.unparsed_lines == 0
    rows = loaded.events.sort("line", "ts", maintain_order=True)
    assert (rows["kind"] == "log").all() and (rows["source"] == "circleci").all()
    assert set(rows["component"]) == {f"run-tests-{seed}"}
    expected = lines_of(pieces)
    assert sorted(rows["message"].to_list()) == sorted(line for line, _ in expected)
    times = {line: datetime.fromisoformat(time) for line, time in expected}
    assert all(times[m] == ts for m, ts in zip(rows["message"], rows["ts"], strict=True))
    errors = rows.filter(pl.col("level") == "error")["message"].to_list()
    assert errors == ([failed] if failed else [])
    streams = {json.loads(a)["stream"] for a in rows["attrs"]}
    assert streams == ({"out", "err"} if failed else {"out"})


def test_output_cut_short_keeps_its_whole_pieces(read):
    pieces = output_pieces(5, failed="Exited with code exit status 2")
    text = json.dumps(pieces, indent=2)
    cut = text[: text.index('"message"', len(text) // 2) - 10]
    loaded = read("step.json", cut)
    assert every_line_accounted(loaded)
    kept = loaded.events["message"].to_list()
    assert 0 < len(kept) < len(lines_of(pieces))
    assert loaded.summary.unparsed_lines > 0


def test_step_output_is_never_read_as_changes(read):
    """Its ``time``, ``type`` and ``message`` once made it a change log of "out" changes."""
    pieces = output_pieces(6, failed="Exited with code exit status 2")
    loaded = read("output.json", json.dumps(pieces))
    assert loaded.events.filter(pl.col("kind") == "change").height == 0
    ranked = registry.rank([json.dumps(pieces)])
    assert ranked[0][0].name == "circleci-output"
