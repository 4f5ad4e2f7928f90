"""Share of real, publicly pasted log records that load with the right time, level and
message.

``benchmarks/corpus/items.jsonl`` holds one pasted file a line: where it was pasted
(``source``), a file name, its text, and the records it holds in order, each as
``[time (UTC, ISO), level, first line of the message]``; ``year`` (for formats that write
none) and ``now`` (for relative ages) are what a user would give; ``kind`` says which
rows are the records (``log``, or ``job`` for CI records; both if not given). A record counts as
right when the loaded row at its place has that time, that level and that first message
line. Items tagged with a ``wrapper`` (journald short, compose, grep prefixes, a mixed
file) measure the reading of wrapped lines too.

Run: ``python benchmarks/bench_corpus.py [--verbose]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import polars as pl

import timeline

CORPUS = Path(__file__).parent / "corpus" / "items.jsonl"


def load_item(item: dict, folder: Path) -> pl.DataFrame:
    """The rows the tool loads from one corpus item, in line order."""
    path = folder / item["file"]
    path.write_text(item["text"], encoding="utf-8")
    options: dict[str, object] = {"infer": False}
    if "year" in item:
        options["year"] = item["year"]
    if "now" in item:
        options["now"] = datetime.fromisoformat(item["now"].replace("Z", "+00:00"))
    try:
        events = timeline.read(path, **options).events
    finally:
        path.unlink()
    # a record is a log or job row (``kind`` narrows it); change rows restate an event's
    # record as a change
    kinds = [item["kind"]] if "kind" in item else ["log", "job"]
    return events.filter(pl.col("kind").cast(pl.String).is_in(kinds)).sort("line", "kind")


def judge(row: dict | None, expected: list[str]) -> list[str]:
    """What is wrong with a loaded row, compared with the expected record."""
    if row is None:
        return ["missing"]
    ts, level, message = expected
    wrong = []
    got_ts = row["ts"].isoformat() if row["ts"] is not None else None
    if got_ts != ts:
        wrong.append(f"time {got_ts} != {ts}")
    if row["level"] != level:
        wrong.append(f"level {row['level']} != {level}")
    first = (row["message"] or "").split("\n")[0].rstrip()
    if first != message:
        wrong.append(f"message {first!r} != {message!r}")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show every miss")
    args = parser.parse_args()
    items = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    right, total = Counter(), Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for item in items:
            rows = load_item(item, Path(tmp)).to_dicts()
            group = item.get("wrapper", "plain")
            for index, expected in enumerate(item["expect"]):
                wrong = judge(rows[index] if index < len(rows) else None, expected)
                total[group] += 1
                right[group] += not wrong
                if wrong and args.verbose:
                    print(f"miss {item['source']} record {index + 1}: {'; '.join(wrong)}")
    for group in sorted(total):
        print(f"{group:16} {right[group]:3} of {total[group]:3} right")
    share = sum(right.values()) / sum(total.values())
    print(f"corpus: {sum(right.values())} of {sum(total.values())} records right ({share:.1%})")


if __name__ == "__main__":
    main()
