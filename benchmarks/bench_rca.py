"""How well does the analysis rank the changes that caused an incident, on incidents of
many shapes it was not tuned to?

Each scenario of :mod:`tests.rca.scenarios` writes an incident in the real formats (pod
logs with CRI prefixes, CoreDNS, RabbitMQ, CircleCI jobs, the audit log, events, a change
log) into a temporary folder, with its ground truth; this script reads it with
``timeline.read``, runs ``timeline.analyze`` and judges the ranking
(:func:`tests.rca.judge.judge`). It prints one row per scenario and seed, then:

- **top-1**: share of incidents with a cause whose rank-1 change is a true cause;
- **top-3**: share whose true causes all rank in the first three;
- **decoy in top 3**: share of all incidents where a decoy (a change that did not
  contribute: routine churn, an unrelated deploy) is in the first three *blamed* (role
  trigger, precursor or made worse);
- **no change**: share of the incidents no change caused where the analysis blames none;
- **mean rank**: of the true cause (the worst, for two), over those ranked at all.

    python benchmarks/bench_rca.py                    # every scenario, seed 1
    python benchmarks/bench_rca.py --seeds 1 2 3      # more draws of each shape
    python benchmarks/bench_rca.py --scenarios slow_burn no_change --keep /tmp/rca

Nothing is written in the repository; ``--keep DIR`` keeps each scenario's files there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import timeline  # noqa: E402
from tests.rca.judge import Verdict, judge  # noqa: E402
from tests.rca.scenarios import SCENARIOS, build  # noqa: E402


def run_one(name: str, seed: int, folder: Path) -> tuple[Verdict, str, float]:
    """Build, read, analyse and judge one scenario; returns the verdict, its shape and the
    seconds that reading and analysing took."""
    root, truth = build(name, folder, seed)
    started = time.perf_counter()
    analysis = timeline.analyze(timeline.read(root))
    return judge(truth, analysis), truth.shape, time.perf_counter() - started


def _rank_text(verdict: Verdict) -> str:
    if not verdict.found_incident:
        return "no incident"
    if verdict.no_change_truth:
        return "-"
    return ", ".join("not ranked" if r is None else str(r) for r in verdict.ranks)


def table(rows: list[tuple[str, int, str, Verdict, float]]) -> str:
    """The per-scenario rows as a Markdown table."""
    lines = [
        "| scenario | seed | shape | rank of cause | rank 1 | decoy in top 3 | no change said |"
        " s |",
        "|---|---:|---|---|---|---|---|---:|",
    ]
    for name, seed, shape, v, seconds in rows:
        said = ("yes" if v.no_change_said else "no") if v.found_incident else "-"
        lines.append(
            f"| {name} | {seed} | {shape} | {_rank_text(v)} | {v.top[:70]} | "
            f"{'yes' if v.decoy_in_top3 else 'no'} | {said} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def summary(verdicts: list[Verdict]) -> dict[str, str]:
    """Top-1, top-3, decoy-in-top-3, no-change accuracy and mean rank, as text."""
    caused = [v for v in verdicts if not v.no_change_truth]
    uncaused = [v for v in verdicts if v.no_change_truth]
    ranked = [v.rank for v in caused if v.rank is not None]

    def share(hits: int, n: int) -> str:
        return f"{hits}/{n} ({100 * hits / n:.0f}%)" if n else "-"

    return {
        "top-1": share(sum(v.top1 for v in caused), len(caused)),
        "top-3": share(sum(v.top3 for v in caused), len(caused)),
        "decoy in top 3": share(sum(v.decoy_in_top3 for v in verdicts), len(verdicts)),
        "no change": share(
            sum(v.found_incident and v.no_change_said for v in uncaused), len(uncaused)
        ),
        "mean rank": (
            f"{sum(ranked) / len(ranked):.2f} over {len(ranked)} ranked"
            f" ({len(caused) - len(ranked)} not ranked)"
            if ranked
            else "-"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[1])
    parser.add_argument("--keep", type=Path, help="keep each scenario's files under DIR")
    args = parser.parse_args(argv)
    rows = []
    for name in args.scenarios:
        for seed in args.seeds if name != "bundled" else args.seeds[:1]:
            with tempfile.TemporaryDirectory() as tmp:
                folder = (args.keep or Path(tmp)) / f"{name}-{seed}"
                verdict, shape, seconds = run_one(name, seed, folder)
            rows.append((name, seed, shape, verdict, seconds))
            print(f"{name} seed {seed}: {_rank_text(verdict)}", file=sys.stderr)
    print(table(rows))
    print()
    for key, value in summary([r[3] for r in rows]).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
