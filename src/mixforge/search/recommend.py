"""Which mix to train at full budget: the largest customer share that provably keeps general skill.

    rec = recommend(trials, target=0.95)
    rec["trial"], rec["rule"]             # the chosen trial's name; "retention_lower_bound" or "pareto_knee"

The rule: among trials whose retention interval's LOWER bound is at least `target`, the one with the largest
`customer_data_percent` (ties: the higher domain metric, then the earlier trial). A trial whose lower bound
meets the target keeps general skill with 95% confidence on the general benchmark used. When none does,
the knee of the Pareto front (see pareto.py) is the recommendation, and the reason says so.
A trial is a mapping with `name`, `customer_data_percent`, `retention`, `domain` and
`intervals: {"retention": [low, high]}` (as in search.json); pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mixforge.search.pareto import knee, pareto_front


def recommend(trials: Sequence[Mapping[str, Any]], *, target: float) -> dict[str, Any] | None:
    """The recommended trial with the rule that chose it; None when there are no trials."""
    if not trials:
        return None
    lows = [t["intervals"]["retention"][0] for t in trials]
    meeting = [i for i, low in enumerate(lows) if math.isfinite(low) and low >= target]
    if meeting:
        best = max(meeting, key=lambda i: (trials[i]["customer_data_percent"], trials[i]["domain"], -i))
        t = trials[best]
        return {"trial": t["name"], "customer_data_percent": t["customer_data_percent"],
                "rule": "retention_lower_bound",
                "reason": f"largest customer share whose retention lower bound ({lows[best]:.3f}) "
                          f"meets the target {target:g}"}
    front = pareto_front(trials)
    k = knee(trials, front)
    if k is None:
        return None
    t = trials[k]
    return {"trial": t["name"], "customer_data_percent": t["customer_data_percent"], "rule": "pareto_knee",
            "reason": f"no trial's retention lower bound meets the target {target:g} (best: "
                      f"{max((x for x in lows if math.isfinite(x)), default=math.nan):.3f}); the knee of the Pareto front "
                      f"(retention vs domain) instead"}
