"""Pure arithmetic of mixing: percents -> exact per-source shares -> exact integer counts per optimizer step.

Shares are `Fraction`s built from the decimal the user wrote (10.5 is 21/2, not a binary float), so the
cumulative ideal of every source is exact and the same on every machine and after every resume.

A `Schedule` is piecewise constant: each point `(step, shares)` holds from its optimizer step (0-based) until
the next point. Ramps are written as several points (`ramp()` makes them).

Counting records (unit "examples"): `SlotAllocator` fills the B slots of each global batch one by one with the
earliest-deadline rule of Tijdeman's chairman assignment (R. Tijdeman, "The chairman assignment problem",
Discrete Math. 32, 1980). For n sources with positive share it keeps, after every slot and so after every
optimizer step,

    |records taken so far - ideal records so far| <= 1 - 1/(2n - 2)  < 1     for every source,

also across schedule changes (a plain largest-remainder rounding per step cannot: a source that got its
record early and whose share then drops to 0 stays over-served and the others cannot absorb it). No random
draws: the counts are a pure function of the schedule and the batch size.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

import numpy as np

from mixforge.errors import ConfigError

DOMAIN = "customer"  # the name of the user's own (domain) source in a mix
_NEVER = 1 << 62  # a slot index later than any run


def as_fraction(value: float | int | str | Fraction) -> Fraction:
    """The exact decimal a user wrote: 10.5 -> 21/2, 0.1 -> 1/10 (not the binary float's expansion)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"weight {value!r} is not a finite number")
        return Fraction(repr(value))
    return Fraction(value)


def normalize(weights: Mapping[str, float | int | Fraction]) -> dict[str, Fraction]:
    """Weights on any scale (percents, fractions, counts) -> shares that sum to exactly 1."""
    exact = {name: as_fraction(w) for name, w in weights.items()}
    bad = [f"{name}={float(w):g}" for name, w in exact.items() if w < 0]
    if bad:
        raise ConfigError(f"weights must be >= 0: {', '.join(bad)}")
    total = sum(exact.values(), Fraction(0))
    if total <= 0:
        raise ConfigError("weights must not all be 0")
    return {name: w / total for name, w in exact.items()}


def source_shares(
    customer_data_percent: float | Fraction,
    categories: Mapping[str, float | Fraction],
    sources_by_category: Mapping[str, Sequence[tuple[str, float]]],
    *,
    domain: str = DOMAIN,
) -> dict[str, Fraction]:
    """Percents -> each source's share of every global batch (exactly 1 in total).

    The domain gets customer_data_percent / 100; each category gets (1 - that) x its percent / (sum of
    category percents), split over its sources in proportion to their (name, weight) pairs. Categories with
    weight 0 and their sources are left out.
    """
    p_domain = as_fraction(customer_data_percent) / 100
    shares: dict[str, Fraction] = {domain: p_domain} if p_domain > 0 else {}
    positive = {c: as_fraction(w) for c, w in categories.items() if as_fraction(w) > 0}
    if p_domain < 1:
        if not positive:
            raise ConfigError("customer_data_percent < 100 but no category has a weight")
        for category, share in normalize(positive).items():
            sources = sources_by_category.get(category, ())
            if not sources:
                raise ConfigError(f"category {category!r} has weight {float(positive[category]):g} but no source")
            for name, share_in_category in normalize(dict(sources)).items():
                shares[name] = shares.get(name, Fraction(0)) + (1 - p_domain) * share * share_in_category
    return shares


class Schedule:
    """Per-source shares over optimizer steps, piecewise constant. `names` are sorted (a canonical order)."""

    def __init__(self, points: Mapping[str, float | Fraction] | Sequence[tuple[int, Mapping[str, float | Fraction]]]):
        if isinstance(points, Mapping):
            points = [(0, points)]
        points = sorted(((int(step), shares) for step, shares in points), key=lambda p: p[0])
        if not points or points[0][0] != 0:
            raise ConfigError("a schedule must start at step 0")
        steps = [s for s, _ in points]
        if len(set(steps)) != len(steps) or any(s < 0 for s in steps):
            raise ConfigError(f"schedule steps must be distinct and >= 0, got {steps}")
        names: list[str] = []
        for _, shares in points:
            names += [n for n in shares if n not in names]
        self.names: tuple[str, ...] = tuple(sorted(names))  # canonical order: the sequence ignores dict order
        self.starts: list[int] = steps
        self.shares: list[list[Fraction]] = []
        for _, shares in points:
            norm = normalize(shares)
            self.shares.append([norm.get(n, Fraction(0)) for n in self.names])
        # exact cumulative shares (in steps) at the start of each segment
        self._prefix: list[list[Fraction]] = [[Fraction(0)] * len(self.names)]
        for k in range(1, len(self.starts)):
            span = self.starts[k] - self.starts[k - 1]
            self._prefix.append([p + span * w for p, w in zip(self._prefix[-1], self.shares[k - 1], strict=True)])

        self._prefix_f = [np.array([float(x) for x in pre]) for pre in self._prefix]  # for telemetry only
        self._shares_f = [np.array([float(x) for x in ws]) for ws in self.shares]

    def segment(self, step: int) -> int:
        return max(bisect.bisect_right(self.starts, step) - 1, 0)

    def shares_at(self, step: int) -> dict[str, Fraction]:
        return dict(zip(self.names, self.shares[self.segment(step)], strict=True))

    def cumulative(self, steps: int) -> list[Fraction]:
        """Sum of each source's share over steps [0, steps): multiply by the batch for the ideal amount."""
        k = self.segment(max(steps - 1, 0))
        span = steps - self.starts[k]
        return [p + span * w for p, w in zip(self._prefix[k], self.shares[k], strict=True)]

    def cumulative_float(self, steps: int) -> np.ndarray:
        """`cumulative` in floats (fast; for telemetry, never for allocation)."""
        k = self.segment(max(steps - 1, 0))
        return self._prefix_f[k] + (steps - self.starts[k]) * self._shares_f[k]

    def first_step_reaching(self, index: int, target: Fraction) -> int | None:
        """The smallest number of steps t with cumulative(t)[index] >= target, or None if never."""
        if target <= 0:
            return 0
        for k, start in enumerate(self.starts):
            w, before = self.shares[k][index], self._prefix[k][index]
            end = self.starts[k + 1] if k + 1 < len(self.starts) else None
            if w > 0:
                t = start + math.ceil((target - before) / w)
                if end is None or t <= end:
                    return t
        return None

    def to_json(self) -> list[list]:
        """[[step, {name: "p/q"}], ...]: exact, for the manifest."""
        return [[s, {n: str(w) for n, w in zip(self.names, ws, strict=True)}] for s, ws in
                zip(self.starts, self.shares, strict=True)]

    @classmethod
    def from_json(cls, data: Iterable[Sequence]) -> Schedule:
        return cls([(int(s), {n: Fraction(w) for n, w in shares.items()}) for s, shares in data])


def ramp(start_step: int, end_step: int, start: Mapping[str, float], end: Mapping[str, float],
         points: int = 5) -> list[tuple[int, dict[str, float]]]:
    """A piecewise-constant linear ramp from `start` (at start_step) to `end` (from end_step on)."""
    if points < 2 or end_step <= start_step:
        raise ConfigError("a ramp needs end_step > start_step and at least 2 points")
    names = list(dict.fromkeys([*start, *end]))
    out = []
    for i in range(points):
        a = i / (points - 1)
        step = start_step + round(a * (end_step - start_step))
        out.append((step, {n: (1 - a) * start.get(n, 0.0) + a * end.get(n, 0.0) for n in names}))
    return out


class SlotAllocator:
    """Which source fills each slot of each global batch: Tijdeman's earliest-deadline rule (see module doc).

    State is the step and the records taken per source; `release`/`deadline` are recomputed from it.
    """

    def __init__(self, schedule: Schedule, batch_size: int) -> None:
        if batch_size < 1:
            raise ConfigError(f"global batch size must be >= 1, got {batch_size}")
        self.schedule, self.batch = schedule, batch_size
        n_src = len(schedule.names)
        self.active = [i for i in range(n_src) if any(ws[i] > 0 for ws in schedule.shares)]
        n = len(self.active)
        den = math.lcm(*(w.denominator for ws in schedule.shares for w in ws))
        self._den = den  # 1/(2n-2) scaled
        self._k = den * (2 * n - 2) if n > 1 else 0  # "one record" scaled to an integer
        # per segment: first slot, integer weight per slot, integer prefix before the segment
        self._seg_start = [s * batch_size for s in schedule.starts]
        self._seg_w = [[int(w * self._k) for w in ws] for ws in schedule.shares]
        self._seg_prefix = [[int(p * batch_size * self._k) for p in pre] for pre in schedule._prefix]
        # per source: cumulative weight at the end of each segment (the last one never ends): for bisection
        n_seg = len(self._seg_start)
        self._seg_end = [[self._seg_prefix[k + 1][i] for k in range(n_seg - 1)] + [math.inf]
                         for i in range(n_src)]
        self.step = 0
        self.taken = [0] * n_src
        self._refresh_all()

    # -- state
    def state_dict(self) -> dict:
        return {"step": self.step, "taken": list(self.taken)}

    def load_state_dict(self, state: Mapping) -> None:
        self.step, self.taken = int(state["step"]), [int(x) for x in state["taken"]]
        self._refresh_all()

    # -- arithmetic on scaled integers
    def _first_slot(self, i: int, target: int) -> int:
        """Smallest 0-based slot j whose cumulative weight up to and including j is >= target."""
        k = bisect.bisect_left(self._seg_end[i], target)  # the first segment that reaches the target
        w, before, start = self._seg_w[k][i], self._seg_prefix[k][i], self._seg_start[k]
        if w == 0:  # only the open last segment can have weight 0 here: never reached
            return _NEVER
        return start - 1 + max(1, -((before - target) // w))  # ceil((target - before) / w)

    def _refresh(self, i: int) -> None:
        base = self.taken[i] * self._k
        self._release[i] = self._first_slot(i, base + self._den)  # deficit >= 1/(2n-2)
        self._deadline[i] = self._first_slot(i, base + self._k - self._den + 1)  # deficit > 1 - 1/(2n-2)

    def _refresh_all(self) -> None:
        self._release = [_NEVER] * len(self.taken)
        self._deadline = [_NEVER] * len(self.taken)
        for i in self.active:
            self._refresh(i)

    def next_step(self) -> list[int]:
        """The source index of each of the next global batch's slots, in slot order."""
        out: list[int] = []
        first = self.step * self.batch
        if len(self.active) == 1:
            only = self.active[0]
            out = [only] * self.batch
            self.taken[only] += self.batch
        else:
            release, deadline, active = self._release, self._deadline, self.active
            for j in range(first, first + self.batch):
                best, best_dl = -1, _NEVER + 1
                for i in active:
                    if release[i] <= j and deadline[i] < best_dl:
                        best, best_dl = i, deadline[i]
                if best < 0:  # impossible by Tijdeman's theorem; a loud failure beats a wrong batch
                    raise RuntimeError(f"mixer found no eligible source at slot {j}")
                out.append(best)
                self.taken[best] += 1
                self._refresh(best)
        self.step += 1
        return out


def step_counts(schedule: Schedule, batch_size: int, steps: int) -> np.ndarray:
    """(steps, sources) records per source in each of the first `steps` global batches (unit "examples")."""
    alloc = SlotAllocator(schedule, batch_size)
    counts = np.zeros((steps, len(schedule.names)), dtype=np.int64)
    for t in range(steps):
        counts[t] = np.bincount(alloc.next_step(), minlength=len(schedule.names))
    return counts
