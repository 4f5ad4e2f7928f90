"""The parsing steps alone, per format: runtime prefix, detection, parser and masks.

``bench_ingest.py`` times the whole loader; this times only what turns a file's lines
into records and templates, so that a change to a parser shows without the loader's
other costs around it. For each log (``bench_ingest``'s realistic 1,000,000 lines per
format, kept in ``--keep``) and each source tree (this one and every ``--baseline``, each
in a child process of its own, one after the other in the same run), it reports the best
of ``--repeat`` runs of each step, in CPU seconds of all threads (steadier than wall time
on a shared machine) and wall seconds:

- ``strip``: ``runtime.detect`` and ``runtime.strip`` (the CRI prefix of the CoreDNS log);
- ``rank``: ``registry.rank`` on the first 200 lines;
- ``parse``: the format's ``parse``, collected;
- ``mask``: the templates of the records that have none, as the loader masks them
  (``signatures.mask_series`` where the tree has it, else ``signatures.mask``).

    python benchmarks/bench_parsers.py --baseline /tmp/old-checkout --repeat 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import FORMATS  # noqa: E402


def child(path: Path, root: Path, repeat: int) -> None:
    """Time each step on ``path`` with the modules of source tree ``root``; print JSON."""
    sys.path.insert(0, str(root))
    import polars as pl

    import parsers
    from parsers import runtime
    from parsers.common import LINE_SCHEMA
    from timeline.reading import signatures

    data = path.read_bytes()
    lines = pl.read_lines(data, name="text").select(
        line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        end_line=pl.int_range(1, pl.len() + 1, dtype=pl.UInt32),
        text="text",
        path=pl.lit(str(path)),
    )
    sample = data[: 1 << 20].decode().split("\n", 200)[:200]

    def strip():
        prefix, _share = runtime.detect(sample)
        return runtime.strip(lines.lazy(), prefix).collect().select(list(LINE_SCHEMA))

    stripped = strip()
    head = stripped["text"].head(200).to_list()
    parser = parsers.registry.rank(head)[0][0]
    records = parser.parse(stripped.lazy()).collect(engine="in-memory")
    todo = records.select(pl.when(pl.col("template").is_null()).then("message")).to_series()
    masker = getattr(signatures, "mask_series", None)

    def mask():
        if masker is not None:
            return masker(todo)
        return pl.select(signatures.mask(pl.lit(todo))).to_series()

    steps = {
        "strip": strip,
        "rank": lambda: parsers.registry.rank(head),
        "parse": lambda: parser.parse(stripped.lazy()).collect(engine="in-memory"),
        "mask": mask,
    }
    best = {}
    for name, step in steps.items():
        runs = []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            runs.append((time.process_time() - cpu, time.perf_counter() - wall))
        best[name] = min(runs)
    print(json.dumps({"parser": parser.name, "records": records.height, "steps": best}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines per format")
    parser.add_argument("--repeat", type=int, default=2, help="runs per step (best kept)")
    parser.add_argument("--seed", type=int, default=20230314)
    parser.add_argument("--formats", default="", help="comma-separated subset of formats")
    parser.add_argument("--keep", type=Path, default=Path("/tmp/bench_parsers"))
    parser.add_argument("--baseline", type=Path, action="append", default=[])
    parser.add_argument("--child", nargs=2, metavar=("FILE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.repeat)
        return
    wanted = set(filter(None, args.formats.split(",")))
    args.keep.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS:
        if wanted and fmt.name not in wanted:
            continue
        path = args.keep / fmt.file
        marker = args.keep / f".{fmt.file}.{args.lines}.{args.seed}"
        if not (path.exists() and marker.exists()):
            path.write_text("\n".join(fmt.lines(args.lines, args.seed)) + "\n", encoding="utf-8")
            marker.touch()
        print(f"\n{fmt.name}: {args.lines:,} lines; CPU s (wall s), best of {args.repeat}")
        results = {}
        for root in [ROOT, *args.baseline]:
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(path), str(root)]
                + ["--repeat", str(args.repeat)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[root] = json.loads(done.stdout.strip().splitlines()[-1])
        names = list(results[ROOT]["steps"])
        print(f"  {'tree':32s} " + " ".join(f"{n:>14s}" for n in names))
        for root, result in results.items():
            cells = [f"{c:6.2f} ({w:5.2f})" for c, w in (result["steps"][n] for n in names)]
            print(f"  {str(root)[-32:]:32s} " + " ".join(f"{cell:>14s}" for cell in cells))
        for root in args.baseline:
            ratios = [
                f"{n} {results[root]['steps'][n][0] / max(results[ROOT]['steps'][n][0], 1e-9):.2f}x"
                for n in names
            ]
            print(f"  CPU of {root} over this tree's: {', '.join(ratios)}")


if __name__ == "__main__":
    main()
