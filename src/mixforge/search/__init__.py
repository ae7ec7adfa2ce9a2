"""Mixture search: train one run with several mixes at a proxy budget, evaluate each like `mixforge report`,
and recommend the mix for the full run (`mixforge mix search`, `mixforge.mix_search`).

    trials.py     a trial: the run config with another mix, trained on the configured runtime, reused by key
    pareto.py     the non-dominated trials (retention vs domain metric) and the knee
    recommend.py  the largest customer share whose retention lower bound meets the target, else the knee
    weights.py    category weights over the simplex with Optuna (extra: mixforge[search])
    report.py     the Pareto plot, search.html, MLflow parent and child runs
    mix_search.py the search, top to bottom

This package sits above train and eval (it drives both); mix, train and eval import nothing from it.
"""
