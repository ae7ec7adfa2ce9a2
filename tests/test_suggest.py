"""One 'did you mean': the closest known name, or nothing when none is close."""

from __future__ import annotations

from mixforge.suggest import closest, did_you_mean


def test_the_closest_name_or_nothing():
    known = ["customer_data_percent", "math_percent", "general_data"]
    assert closest("math_precent", known) == "math_percent"
    assert did_you_mean("genral_data", known) == "; did you mean 'general_data'?"
    assert closest("zzz", known) is None and did_you_mean("zzz", known) == ""
    assert closest("answr", ["question", "answer"], cutoff=0.6) == "answer"
