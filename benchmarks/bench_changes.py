"""Change matching on a big fleet: :func:`timeline.reading.changes.reconcile` as the fleet grows.

Reads an event store (``timeline parse LOGS -o STORE``), infers its changes once, then
matches them against the recorded ones on the store's fleet copied N times over, each
copy's hosts and files renamed (``c3-ip-10-0-1-5``), as when one report covers N
clusters. Prints the time and what the matching kept, which must grow with N exactly.

    python -m sample_logs.generate --scale 8 --out /tmp/big8
    python -m timeline parse /tmp/big8 -o /tmp/store8
    python benchmarks/bench_changes.py /tmp/store8 --copies 1,4,27
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fleet import copied  # noqa: E402

from timeline.reading import store as event_store
from timeline.reading.changes import _is_inferred, infer_changes, reconcile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--copies", default="1,4,27", help="comma-separated fleet sizes")
    args = ap.parse_args()
    events = args.store / event_store.EVENTS
    logs = event_store.scan_files(sorted(str(p) for p in events.glob("part-*.parquet")))
    started = time.perf_counter()
    inferred = infer_changes(logs)
    print(f"inferred {inferred.height:,} changes in {time.perf_counter() - started:.2f} s")
    recorded = pl.read_parquet(events / "changes.parquet").filter(~_is_inferred())
    print(f"{'copies':>6} {'recorded':>9} {'inferred':>9} {'kept':>7} {'marked':>7} {'s':>8}")
    for n in (int(c) for c in args.copies.split(",")):
        many = pl.concat([copied(recorded, k) for k in range(n)])
        guesses = pl.concat([copied(inferred, k) for k in range(n)])
        started = time.perf_counter()
        out = reconcile(many, guesses)
        took = time.perf_counter() - started
        kept = out.filter(_is_inferred()).height
        marked = int(out["attrs"].str.contains('"seen_in_logs"').sum())
        print(f"{n:>6} {many.height:>9,} {guesses.height:>9,} {kept:>7,} {marked:>7,} {took:>8.2f}")


if __name__ == "__main__":
    main()
