"""The event frame written to one file a window of time at a time, in time order."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from timeline.outputs.events import windows, write_events
from timeline.schema import EVENT_SCHEMA


def events(seed: int, n: int) -> pl.DataFrame:
    """Rows of three files over two hours, a tenth without a time, many in one minute."""
    rng = random.Random(seed)
    start = datetime(2023, 3, 14, 17, 40, tzinfo=UTC)
    rows = []
    for i in range(n):
        busy = rng.random() < 0.4
        seconds = rng.randrange(60) if busy else rng.randrange(7200)
        rows.append(
            {
                "ts": None if rng.random() < 0.1 else start + timedelta(seconds=seconds),
                "source": "klog",
                "host": f"ip-10-0-{i % 5}-9",
                "component": "kube-proxy",
                "level": rng.choice(["info", "error"]),
                "kind": "log",
                "message": f'"Sync failed" n={i}, "quoted"',
                "template": "Sync failed",
                "attrs": "{}",
                "file": f"nodes/ip-10-0-{i % 3}-9/kube-proxy.log",
                "line": i + 1,
            }
        )
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


@pytest.mark.parametrize("rows", [1, 37, 10**6])
@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_written_a_window_at_a_time_is_the_whole_frame_sorted(tmp_path, rows, suffix):
    frame = events(rows, 600)
    path = tmp_path / f"events{suffix}"
    write_events(frame.lazy(), path, rows=rows)
    expected = frame.sort("ts", "file", "line", nulls_last=True)
    if suffix == ".parquet":
        assert pl.read_parquet(path).equals(expected)
    elif suffix == ".csv":
        text = path.read_text()
        assert text.count("\n") == frame.height + 1 and text.startswith("ts,")
        assert pl.read_csv(path)["line"].to_list() == expected["line"].to_list()
    else:
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [r["line"] for r in lines] == expected["line"].to_list()


def test_windows_hold_about_the_rows_asked_and_never_split_a_minute():
    frame = events(5, 2000)
    cuts = windows(frame.lazy(), rows=100)
    sizes = [frame.filter(cut).height for cut in cuts]
    assert sum(sizes) == frame.height
    assert frame.filter(cuts[-1])["ts"].null_count() == frame.filter(cuts[-1]).height
    minutes = [set(frame.filter(cut)["ts"].dt.truncate("1m").to_list()) for cut in cuts[:-1]]
    assert all(not (a & b) for i, a in enumerate(minutes) for b in minutes[i + 1 :])
    assert max(sizes[1:-1]) < 100 + frame["ts"].dt.truncate("1m").value_counts()["count"].max()


def test_no_rows_give_an_empty_file_of_the_frames_columns(tmp_path):
    path = tmp_path / "none.parquet"
    write_events(events(1, 0).lazy(), path)
    assert pl.read_parquet(path).schema == pl.Schema(EVENT_SCHEMA)
