"""Judge an analysis against a scenario's truth: where the true cause ranks, whether a
decoy is blamed, whether "no change" is answered when it is the truth.

A ranked change *is* a cause when it has the cause's target (a ReplicaSet the
controller made for a person's Deployment change is not the person's change) and was made
within ``tolerance`` of it; a decoy is any change of the decoy's program (its target's
last part without generated suffixes). A change
*blames* when its role says it contributed (:data:`BLAMING_ROLES`). The incident judged
is the one whose onset is nearest the truth's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from tests.rca.scenarios import Cause, Truth

#: Roles that say a change contributed to the incident.
BLAMING_ROLES = ("trigger", "precursor", "made worse", "contributing", "contributed")
_SUFFIX = re.compile(r"-(?:[a-z0-9]{8,10}-)?[a-z0-9]{5}$")


@dataclass(frozen=True)
class Verdict:
    scenario: str
    found_incident: bool
    onset: datetime | None
    ranks: tuple[int | None, ...]  # per true cause
    top: str  # the rank-1 change's description and role
    decoy_in_top3: bool
    no_change_truth: bool
    no_change_said: bool
    mitigations_found: tuple[bool, ...]

    @property
    def rank(self) -> int | None:
        """The worst rank among the true causes (None: one of them is not ranked)."""
        if not self.ranks or any(r is None for r in self.ranks):
            return None
        return max(self.ranks)

    @property
    def top1(self) -> bool:
        return bool(self.ranks) and min((r or 99) for r in self.ranks) == 1

    @property
    def top3(self) -> bool:
        return self.rank is not None and self.rank <= 3

    @property
    def correct(self) -> bool:
        if self.no_change_truth:
            return self.found_incident and self.no_change_said
        return self.found_incident and self.top1 and self.top3 and all(self.mitigations_found)


def _stem(target: str) -> str:
    last = target.rsplit("/", 1)[-1].lower()
    return _SUFFIX.sub("", last)


def matches(row: dict, cause: Cause, tolerance: timedelta | None) -> bool:
    """Whether a ranked change is ``cause``: the same target (or one of its aliases, by
    the same actor), its rows (``ts`` to ``last_ts``, when known) reaching within
    ``tolerance`` of the cause's time; with no tolerance (a decoy), any change of its
    program."""
    target = (row.get("target") or "").lower()
    if tolerance is None:
        return _stem(target) == _stem(cause.target)
    if target != cause.target.lower():
        aliased = target in {t.lower() for t in cause.aliases}
        said = cause.actor is None or cause.actor in (row.get("description") or "")
        if not (aliased and said):
            return False
    last = row.get("last_ts") or row["ts"]
    return row["ts"] - tolerance <= cause.at <= last + tolerance


def judge(
    truth: Truth,
    analysis,
    *,
    tolerance: timedelta = timedelta(minutes=10),
    onset_slack: timedelta = timedelta(minutes=30),
) -> Verdict:
    """Compare ``analysis`` (:class:`timeline.Analysis`) with ``truth``."""
    incidents = analysis.incidents
    near = (
        incidents.with_columns(_off=(pl.col("onset") - truth.onset).abs())
        .filter(pl.col("_off") <= onset_slack)
        .sort("_off")
    )
    if near.height == 0:
        return Verdict(
            truth.scenario,
            False,
            None,
            tuple(None for _ in truth.causes),
            "",
            False,
            not truth.causes,
            False,
            tuple(False for _ in truth.mitigations),
        )
    incident = near.row(0, named=True)
    rows = (
        analysis.contributors.filter(pl.col("incident_id") == incident["incident_id"])
        .join(analysis.changes.select("change_id", "last_ts"), on="change_id", how="left")
        .sort("rank", nulls_last=True)
        .to_dicts()
    )
    ranked = [r for r in rows if r.get("rank") is not None]
    ranks = tuple(
        next((r["rank"] for r in ranked if matches(r, c, tolerance)), None) for c in truth.causes
    )
    top3 = [r for r in ranked if r["rank"] <= 3]
    decoy = any(
        r["role"] in BLAMING_ROLES
        and any(matches(r, d, None) for d in truth.decoys)
        and not any(matches(r, c, tolerance) for c in truth.causes)
        for r in top3
    )
    blamed = [r for r in rows if r["role"] in BLAMING_ROLES]
    mitigations = tuple(
        any(r["role"] == "mitigation" and matches(r, m, tolerance) for r in rows)
        for m in truth.mitigations
    )
    top = f"{ranked[0]['description']} [{ranked[0]['role']}]" if ranked else "(none ranked)"
    return Verdict(
        scenario=truth.scenario,
        found_incident=True,
        onset=incident["onset"],
        ranks=ranks,
        top=top,
        decoy_in_top3=decoy,
        no_change_truth=not truth.causes,
        no_change_said=not blamed,
        mitigations_found=mitigations,
    )
