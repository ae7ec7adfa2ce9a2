"""Pure mixing arithmetic: exact shares, schedules, and the slot allocator's deviation bound."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixforge.errors import ConfigError
from mixforge.mix.weights import (
    Schedule,
    SlotAllocator,
    as_fraction,
    normalize,
    ramp,
    source_shares,
    step_counts,
)


def test_as_fraction_keeps_the_decimal_written():
    assert as_fraction(10.5) == Fraction(21, 2)
    assert as_fraction(0.1) == Fraction(1, 10)  # not 3602879701896397/36028797018963968
    assert sum(map(as_fraction, [0.1, 0.2, 0.7])) == 1


def test_source_shares_literal():
    shares = source_shares(40, {"math": 50, "chat": 50, "rag": 0},
                           {"math": [("math/a", 1), ("math/b", 3)], "chat": [("chat/x", 1)]})
    assert shares == {"customer": Fraction(2, 5), "math/a": Fraction(3, 40), "math/b": Fraction(9, 40),
                      "chat/x": Fraction(3, 10)}
    assert sum(shares.values()) == 1


def test_normalize_refuses_negative_and_all_zero():
    with pytest.raises(ConfigError):
        normalize({"a": -1, "b": 2})
    with pytest.raises(ConfigError):
        normalize({"a": 0})


def test_step_counts_literal():
    # 1/2, 1/4, 1/4 of a batch of 4 is exactly 2, 1, 1 in every step
    sched = Schedule({"a": 2, "b": 1, "c": 1})
    assert step_counts(sched, 4, 3).tolist() == [[2, 1, 1]] * 3
    # 1/3 each of a batch of 2: cumulative counts stay within one record of 2t/3
    counts = step_counts(Schedule({"a": 1, "b": 1, "c": 1}), 2, 3)
    assert counts.sum(axis=1).tolist() == [2, 2, 2]
    assert counts.sum(axis=0).tolist() == [2, 2, 2]
    # the slot order interleaves sources: a b a c for 1/2, 1/4, 1/4 over a batch of 4
    alloc = SlotAllocator(sched, 4)
    assert alloc.next_step() == [0, 1, 0, 2]


def test_schedule_cumulative_and_first_step_reaching():
    sched = Schedule([(0, {"a": 1, "b": 1}), (4, {"a": 1, "b": 3})])
    assert sched.cumulative(4) == [2, 2]
    assert sched.cumulative(6) == [Fraction(5, 2), Fraction(7, 2)]
    assert sched.first_step_reaching(0, Fraction(5, 2)) == 6
    assert sched.first_step_reaching(1, Fraction(2)) == 4
    assert Schedule.from_json(sched.to_json()).to_json() == sched.to_json()


def test_ramp_makes_piecewise_constant_points():
    points = ramp(0, 100, {"customer": 90, "general": 10}, {"customer": 98, "general": 2}, points=5)
    assert [s for s, _ in points] == [0, 25, 50, 75, 100]
    assert points[2][1] == {"customer": 94.0, "general": 6.0}


@st.composite
def schedules(draw):
    n = draw(st.integers(1, 6))
    names = [f"s{i}" for i in range(n)]
    n_points = draw(st.integers(1, 4))
    starts = sorted({0, *draw(st.lists(st.integers(1, 25), max_size=n_points - 1))})
    points = []
    for start in starts:
        ws = draw(st.lists(st.sampled_from([0, 0, 1, 2, 3, 7, 50, 0.5, 12.5]), min_size=n, max_size=n))
        if not any(ws):
            ws[draw(st.integers(0, n - 1))] = 1
        points.append((start, dict(zip(names, ws, strict=True))))
    return Schedule(points)


@settings(max_examples=150, deadline=None)
@given(sched=schedules(), batch=st.integers(1, 24), steps=st.integers(1, 40))
def test_allocator_deviation_below_one_record_at_every_step(sched, batch, steps):
    alloc = SlotAllocator(sched, batch)
    taken = np.zeros(len(sched.names), dtype=np.int64)
    active = sum(any(ws[i] > 0 for ws in sched.shares) for i in range(len(sched.names)))
    bound = 1 - Fraction(1, 2 * active - 2) if active > 1 else Fraction(0)
    for t in range(1, steps + 1):
        slots = alloc.next_step()
        assert len(slots) == batch
        taken += np.bincount(slots, minlength=len(sched.names))
        for i, ideal in enumerate(sched.cumulative(t)):
            assert abs(int(taken[i]) - ideal * batch) <= bound < 1


@settings(max_examples=60, deadline=None)
@given(sched=schedules(), batch=st.integers(1, 12), stop=st.integers(0, 15))
def test_allocator_resumes_exactly(sched, batch, stop):
    full = SlotAllocator(sched, batch)
    sequence = [full.next_step() for _ in range(stop + 5)]
    part = SlotAllocator(sched, batch)
    for _ in range(stop):
        part.next_step()
    resumed = SlotAllocator(sched, batch)
    resumed.load_state_dict(part.state_dict())
    assert [resumed.next_step() for _ in range(5)] == sequence[stop:]
