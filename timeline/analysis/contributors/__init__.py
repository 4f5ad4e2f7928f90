"""Contributing changes: which changes before and during an incident plausibly contributed,
weighed by what the data shows after each (in the spirit of Gandalf, NSDI'20, and Groot,
ASE'21), not by how near the onset it was.

The rooms: :mod:`.changes` groups the rows of one action (a person's patch, the
controller actions that follow it, the change-log line about it) into one change with its
hosts and when it reached each, and reads change-log targets written in words;
:mod:`.targets` turns incidents and spikes into what is scored; :mod:`.measures` counts
rows and tests counts; :mod:`.score` combines the parts and gives roles and ranks;
:mod:`.words` writes one sentence per kind of evidence; :mod:`.diffs` lists the
signatures that moved around each change.

Each part is in ``[-1, 1]``, shown in its own ``part_*`` column and explained in a
sentence of ``evidence``; a part is its strength beyond chance (``strength`` of a p-value)
times its size (bits of rate change over ``FULL_BITS``):

``cohort`` (spatial)
    The touched hosts against the untouched hosts that run the same programs: did the
    touched ones get more of the after rows than their share of the before rows (a
    difference in differences, tested as binomial counts)?
``effect`` (temporal)
    The rate after the change against the rate before it on the touched hosts (all hosts
    for a change named after the failing program that names no host), tested as Poisson
    counts. Not scored where ``cohort`` is, whose comparison it already holds.
``alignment`` (per host)
    The share of touched hosts whose errors began (or stopped) within ``window`` after
    that host was touched, less the share of untouched hosts that did the same.
``footprint`` (spatial, at the onset)
    For a change made a ``window`` or more before the onset: did the incident's errors
    fall on the hosts it touched more than their share before the onset says (a latent
    cause that load brought out)? Tested on rows and on hosts.
``new``
    A signature first seen in the ``window`` after it, when its errors rose.
``precursor``
    The trickle that grew into the incident began after it on the hosts it touched.
``onset``
    Nearness to the onset, ``exp(-lead / tau)`` times how much the errors rose: weak.

``score = relation * sum(WEIGHTS[part] * part)``. ``relation`` is 1 when the change names
a program or CI executor of the errors and at most ``HOST_RELATION`` when it only shares
hosts with them. A change of a frequent class (:func:`change_class`: same actor, type and
kind of target) is judged by all its occurrences: if most were followed by nothing and
this one does not stand out, its rising parts count for nothing (``routine``). Roles:
``trigger`` and ``precursor`` (before the onset, evidence that errors rose), ``latent
cause`` (the incident's errors fell where it acted), ``made
worse``, ``mitigation`` (errors stopped on its hosts), ``no clear effect``,
``unrelated``, ``target not found`` (a change-log line whose words match nothing in the
logs) and, when no change of an incident has evidence beyond chance, ``considered, no
evidence`` for the nearest before its onset, with no change ranked.
"""

from timeline.analysis.contributors.changes import (
    CHANGE_SCHEMA,
    change_events,
    host_key,
    names_match,
    node_local,
    node_pool,
    pool_node_names,
)
from timeline.analysis.contributors.diffs import DIFF_SCHEMA, signature_diffs
from timeline.analysis.contributors.measures import RowCounter
from timeline.analysis.contributors.score import (
    CAUSES,
    CONSIDERED,
    FULL_BITS,
    STOPPED,
    WEIGHTS,
    change_class,
    rank_changes,
)
from timeline.analysis.contributors.targets import (
    Signature,
    Target,
    host_population,
    incident_targets,
    namespace_attrs,
    program_namespaces,
    spike_targets,
    stated_namespace,
)

__all__ = [
    "CAUSES",
    "CONSIDERED",
    "CHANGE_SCHEMA",
    "DIFF_SCHEMA",
    "FULL_BITS",
    "STOPPED",
    "WEIGHTS",
    "RowCounter",
    "Signature",
    "Target",
    "change_class",
    "change_events",
    "host_key",
    "host_population",
    "incident_targets",
    "names_match",
    "node_local",
    "node_pool",
    "namespace_attrs",
    "program_namespaces",
    "stated_namespace",
    "pool_node_names",
    "rank_changes",
    "signature_diffs",
    "spike_targets",
]
