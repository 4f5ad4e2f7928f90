"""Contributing changes: which changes before and during an incident plausibly contributed.

Every change made from ``lookback`` before an incident's onset to its end is scored for
the incident (and for each spike). The score is a sum of parts, each in ``[-1, 1]``, each
shown in its own column and explained in a sentence of ``evidence``:

``relation``
    Does the change touch what is failing? 1 when its target names a source or component
    of the incident's signatures; else the share of the hosts it touched that show them.
    A change with no relation scores 0 whatever its timing, and says why.
``onset``
    For a change made before the onset: ``exp(-lead / tau)`` times how much the affected
    signatures rose right after it (the incident followed closely *and* it rose).
``effect``
    The rate of the affected signatures on the change's hosts (all hosts when it names
    none, or when it is a cluster-wide object) in the ``before_window`` before it against
    the ``window`` after it, in bits (``log2`` of the ratio, one row of smoothing) over 3:
    a factor of 8 is full marks; shrunk when fewer than ``min_rows`` rows back it;
    negative when they fell. For a change made before the onset it counts only if that
    window reaches the onset.
``cohort``
    Where the change touched some hosts and not others (a node restarted, a DaemonSet
    rolled node by node; not a Deployment or ConfigMap, whose reach is the cluster), the
    same before/after comparison on the touched hosts minus the one on the untouched
    hosts that run the same programs (a difference in differences, in bits, over 3). It
    is the strongest evidence, so it replaces ``effect`` in the score when it can be
    computed. It does not count for a change whose own hosts did not get worse.
``new``
    1 when an affected signature was seen for the first time in the ``window`` after it
    (for a change made before the onset, only if that window reaches the onset).
``precursor``
    1 when the trickle that led up to a spike began within ``precursor_window`` after it,
    and it is the nearest related change before that trickle.

``score = relation + relation * (2 onset + 2 effect + 3 cohort + 0.5 new + 1.5 precursor)``
(see ``WEIGHTS``). Each change gets a ``role``: before the onset ``precursor``,
``trigger`` or ``no clear effect``; during the incident ``made worse`` (the affected
signatures rose after it, and not only as much as on the hosts it did not touch),
``mitigation`` (on its own hosts they stopped, or fell to an eighth of their rate or less)
or ``no clear effect``; and
``unrelated`` when nothing ties it to the incident. The ranking lists the contributors
first, then the mitigations, then the rest.
"""

from timeline.analysis.contributors.changes import (
    CHANGE_SCHEMA,
    change_events,
    host_key,
    names_match,
    node_local,
)
from timeline.analysis.contributors.diffs import DIFF_SCHEMA, signature_diffs
from timeline.analysis.contributors.measures import RowCounter
from timeline.analysis.contributors.score import FULL_BITS, STOPPED, WEIGHTS, rank_changes
from timeline.analysis.contributors.targets import (
    Signature,
    Target,
    host_population,
    incident_targets,
    spike_targets,
)

__all__ = [
    "CHANGE_SCHEMA",
    "DIFF_SCHEMA",
    "FULL_BITS",
    "STOPPED",
    "WEIGHTS",
    "RowCounter",
    "Signature",
    "Target",
    "change_events",
    "host_key",
    "host_population",
    "incident_targets",
    "names_match",
    "node_local",
    "rank_changes",
    "signature_diffs",
    "spike_targets",
]
