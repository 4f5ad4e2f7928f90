"""The analysis as the fleet grows: ``timeline analyze`` on one event store copied N times.

Copies an event store (``timeline parse LOGS -o STORE``) N times over into one store,
each copy's hosts and files renamed (``c3-ip-10-0-1-5``), as when one review covers N
clusters, then times ``timeline analyze STORE --json`` on it in a child process per
source tree (this one, and with ``--baseline DIR`` an older checkout, in the same run)
and samples the peak resident memory of that process. The findings of both trees are
compared, apart from their generation time and the order of rows quoted from copies
that tie to the microsecond.

    python -m sample_logs.generate --scale 8 --out /tmp/big8
    python -m timeline parse /tmp/big8 -o /tmp/store8
    python benchmarks/bench_fleet.py /tmp/store8 --copies 1,4 --baseline /tmp/old-checkout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import measure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def copied(frame: pl.LazyFrame | pl.DataFrame, copy: int):
    """``frame`` as the ``copy``-th cluster: its hosts and files renamed."""
    return frame.with_columns(
        host=pl.format("c{}-{}", pl.lit(copy), "host"),
        file=pl.format("c{}/{}", pl.lit(copy), "file"),
    )


def fleet_store(store: Path, copies: int, out: Path) -> Path:
    """``store`` copied ``copies`` times into the store ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(store, out, ignore=shutil.ignore_patterns("*.parquet"))
    shutil.copytree(store / "summary", out / "summary", dirs_exist_ok=True)
    events = store / "events"
    for part in sorted(events.glob("part-*.parquet")):
        for k in range(copies):
            target = out / "events" / f"{part.stem}-c{k:03d}.parquet"
            copied(pl.scan_parquet(part), k).sink_parquet(target)
    changes = pl.concat(
        [copied(pl.scan_parquet(events / "changes.parquet"), k) for k in range(copies)]
    )
    changes.sink_parquet(out / "events" / "changes.parquet")
    return out


def analyze(store: Path, tree: Path) -> tuple[float, float, dict]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, "-m", "timeline", "analyze", str(store), "--json", "--no-cache"]
    wall, peak, out = measure(command, cwd=tree, env=env)
    found = json.loads(out)
    found.pop("generated_at", None)
    return wall, peak, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--copies", default="1,4", help="comma-separated fleet sizes")
    parser.add_argument("--baseline", type=Path, help="an older checkout to time too")
    args = parser.parse_args()
    trees = [ROOT, *([args.baseline] if args.baseline else [])]
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    print(f"{'copies':>6} {'tree':<28} {'analyze s':>9} {'peak MiB':>9}  incidents")
    try:
        for n in (int(c) for c in args.copies.split(",")):
            store = fleet_store(args.store, n, work / f"x{n}")
            results = [(tree, *analyze(store, tree)) for tree in trees]
            for tree, wall, peak, found in results:
                incidents = len(found.get("incidents", []))
                print(f"{n:>6} {str(tree)[-28:]:<28} {wall:>9.1f} {peak:>9,.0f}  {incidents}")
            if len(results) == 2:
                same = _comparable(results[0][3]) == _comparable(results[1][3])
                print(f"{'':>6} findings {'the same' if same else 'DIFFER'}")
            shutil.rmtree(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _comparable(found: dict) -> str:
    """The findings with quoted ``file:line`` of copies (``c3/...``) made alike, since rows
    of different copies at one microsecond may be quoted in either order."""
    text = json.dumps(found, sort_keys=True)
    return pl.Series([text]).str.replace_all(r"c[0-9]+/", "c*/").item()


if __name__ == "__main__":
    main()
