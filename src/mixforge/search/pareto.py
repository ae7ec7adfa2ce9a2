"""The trade-off between keeping general skill and learning the domain: non-dominated trials and the knee.

    front = pareto_front(points)          # indices of the points no other point beats on both objectives
    k = knee(points, front)               # the front's point nearest the utopia corner, after normalization

A point is a mapping with the objectives as keys (both maximized): by default `retention` (general / base
general) and `domain` (the domain metric). Pure functions over plain values; nothing here trains or reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

OBJECTIVES = ("retention", "domain")  # both maximized


def dominates(a: Mapping[str, float], b: Mapping[str, float], objectives: Sequence[str] = OBJECTIVES) -> bool:
    """a is at least as good as b on every objective and better on one."""
    return all(a[k] >= b[k] for k in objectives) and any(a[k] > b[k] for k in objectives)


def pareto_front(points: Sequence[Mapping[str, float]], objectives: Sequence[str] = OBJECTIVES) -> list[int]:
    """Indices of the non-dominated points, in input order. Points with a NaN objective are never on it;
    equal points are all kept (none dominates the other)."""
    finite = [i for i, p in enumerate(points) if all(math.isfinite(p[k]) for k in objectives)]
    return [i for i in finite if not any(dominates(points[j], points[i], objectives) for j in finite if j != i)]


def knee(points: Sequence[Mapping[str, float]], front: Sequence[int],
         objectives: Sequence[str] = OBJECTIVES) -> int | None:
    """The front's point nearest the utopia corner (best of every objective over the front), each objective
    scaled to [0, 1] over the front so that units do not matter; ties go to the earlier point. None when the
    front is empty."""
    if not front:
        return None
    lo = {k: min(points[i][k] for i in front) for k in objectives}
    hi = {k: max(points[i][k] for i in front) for k in objectives}

    def gap(i: int) -> float:  # distance to the utopia corner (1, 1, ...) in scaled units
        return math.fsum(((hi[k] - points[i][k]) / (hi[k] - lo[k])) ** 2 if hi[k] > lo[k] else 0.0
                         for k in objectives)

    return min(front, key=lambda i: (gap(i), front.index(i)))
