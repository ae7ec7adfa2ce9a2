"""Category weights: a multi-objective search over the simplex with Optuna (extra: mixforge[search]).

    study = weight_study(categories=["baseline", "math", ...], seed=0, defaults={"baseline": 20, ...})
    trial = study.ask(); percents = percents_from_trial(trial, categories)   # sums to exactly 100
    ... train and evaluate ...; study.tell(trial, [retention, domain])

Each category gets u_c in (0, 1]; its weight is -log(u_c), normalized to percents. Uniform u gives weights
uniform on the simplex, so the sampler sees the whole simplex without a sum constraint. The seed's default
weights are the study's first trial (`enqueue_trial`), so the search starts from what users get anyway.
Percents are rounded to tenths by largest remainder (sum exactly 100): the same suggestion is the same
trial key, so a rerun with the same seed reuses every finished trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

INSTALL_HINT = "pip install 'mixforge[search]' (optuna==5.0.0)"
U_MIN = 1e-4  # -log(1e-4) = 9.2: the largest weight relative to the mean that the search can express


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError(f"the category-weight search needs Optuna: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def weight_study(*, categories: Sequence[str], seed: int, defaults: Mapping[str, float]):
    """A two-objective study (maximize retention, maximize the domain metric), TPE sampler, seeded; the
    default weights are enqueued as its first trial."""
    optuna = _optuna()
    study = optuna.create_study(directions=["maximize", "maximize"],
                                sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))
    study.enqueue_trial(params_for(defaults, categories))
    return study


def params_for(percents: Mapping[str, float], categories: Sequence[str]) -> dict[str, float]:
    """The u_c that give these percents back: u_c = exp(-K * p_c / 100) for K categories."""
    k = len(categories)
    return {f"u_{c}": max(U_MIN, math.exp(-k * float(percents.get(c, 0.0)) / 100)) for c in categories}


def percents_from_trial(trial: Any, categories: Sequence[str]) -> dict[str, float]:
    """Ask the trial for one u per category and turn them into percents (tenths, summing to 100)."""
    weights = {c: -math.log(trial.suggest_float(f"u_{c}", U_MIN, 1.0)) for c in categories}
    return round_percents(weights)


def round_percents(weights: Mapping[str, float]) -> dict[str, float]:
    """Non-negative weights -> percents in tenths that sum to exactly 100 (largest remainder, ties by order)."""
    total = math.fsum(weights.values())
    if total <= 0:
        raise ValueError("at least one weight must be positive")
    ideal = {c: 1000 * w / total for c, w in weights.items()}  # in tenths of a percent
    tenths = {c: math.floor(v) for c, v in ideal.items()}
    order = sorted(ideal, key=lambda c: -(ideal[c] - tenths[c]))
    for c in order[: 1000 - sum(tenths.values())]:
        tenths[c] += 1
    return {c: t / 10 for c, t in tenths.items()}
