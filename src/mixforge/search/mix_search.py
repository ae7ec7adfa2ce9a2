"""`mix_search`: train the same run with several mixes at a proxy budget, evaluate each like `mixforge report`,
and recommend the mix for the full run.

    from mixforge import mix_search
    result = mix_search("run.yaml", percents=[100, 75, 50, 25, 10], steps=200, general="general_mc.jsonl",
                        domain="test.jsonl", labels="labels.txt", target_retention=0.95, out="runs/search")
    result.recommendation["config"]        # a ready-to-run YAML for the full run

settings -> base evaluation -> sweep of customer_data_percent -> (category weights with Optuna) -> Pareto
front and recommendation -> (validation at full budget) -> forgetting report, search.html, MLflow, search.json

`DIR/search.json` holds `trials` (mix, retention, domain metric, general metric, paired-bootstrap 95%
intervals, the cheap training signals and the cost), `pareto` (names of the non-dominated trials),
`recommendation` (see recommend.py) with `config`, and `validation` when asked. A rerun reuses every trial
already trained with the same mix and settings (see trials.py) and continues a killed search.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixforge.config import RunConfig
from mixforge.errors import ConfigError
from mixforge.fingerprint import json_sha256
from mixforge.search.pareto import pareto_front
from mixforge.search.recommend import recommend
from mixforge.search.trials import (
    TRIAL_FILE,
    TrialPlan,
    plan_trial,
    read_json,
    train_trials,
    trained,
    training_signals,
)

SEARCH_FILE = "search.json"
RECOMMENDED_FILE = "recommended.yaml"


@dataclass
class SearchResult:
    """What a search wrote (`path`: search.json) and the parts of it a caller reads most."""

    path: Path
    html: Path
    trials: list[dict[str, Any]]
    pareto: list[str]
    recommendation: dict[str, Any] | None
    validation: dict[str, Any] | None = None
    reused: list[str] = field(default_factory=list)  # trials whose training a previous search had finished
    trained: list[str] = field(default_factory=list)  # trials trained by this call


def mix_search(  # noqa: C901 - a recipe reads top to bottom
    config: str | Path | RunConfig,
    *,
    percents: Sequence[float] = (100, 75, 50, 25, 10),
    steps: int | None = None,
    general: str,
    domain: str,
    labels: str | None = None,
    text_field: str | None = None,
    shots: int = 0,
    answer_format: str = "letter",
    prompt_style: str = "mmlu",
    general_metric: str | None = None,
    domain_metric: str | None = None,
    limit: int | None = None,
    target_retention: float = 0.95,
    out: str | Path = "runs/mix-search",
    validate: bool = False,
    weights_trials: int = 0,
    weights_percent: float | None = None,
    max_parallel: int | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    batch_size: int = 16,
    tracking_uri: str | None = None,
    show_progress: bool = True,
) -> SearchResult:
    """Search the mix of `config` (a run YAML or a RunConfig); see the module's docstring."""
    from rich.console import Console

    from mixforge.config import load_config
    from mixforge.eval.evaluator import evaluate
    from mixforge.eval.tasks import EvalTask
    from mixforge.train.mixing import mixing_config

    console = Console(quiet=not show_progress)
    started = time.perf_counter()

    # ---- settings ---------------------------------------------------------------------------------------
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    problems = []
    if not percents:
        problems.append("percents: give at least one customer_data_percent to try")
    if any(not 0 < p <= 100 for p in percents):
        problems.append(f"percents: each must be in (0, 100], got {list(percents)}")
    if cfg.data_mixing_enabled and mixing_config(cfg.mixing, enabled=True, model=cfg.model, method=cfg.method).schedule:
        problems.append("mixing.schedule: a search compares constant mixes; remove the schedule from the config")
    if not 0 < target_retention <= 2:
        problems.append(f"target_retention: {target_retention} is not a ratio such as 0.95")
    if weights_trials < 0:
        problems.append("weights_trials: must be >= 0")
    if steps is None and cfg.overrides.max_steps is None:
        problems.append("steps: the config sets no max_steps, so give the proxy budget (--steps N)")
    if problems:
        raise ConfigError(problems)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = tracking_uri or cfg.tracking.tracking_uri or f"sqlite:///{out / 'mlflow.db'}"
    tasks = [EvalTask.multiple_choice("general", path=general, shots=shots, answer_format=answer_format,
                                      prompt_style=prompt_style, limit=limit, seed=seed),
             EvalTask.classification("domain", path=domain, labels=labels, text_field=text_field, limit=limit)]
    eval_settings = {"tasks": [t.model_dump(mode="json") for t in tasks], "general_metric": general_metric,
                     "domain_metric": domain_metric, "n_resamples": n_resamples, "seed": seed}
    cache_dir = out / "eval-cache"

    def plan(percent: float, categories: dict[str, float] | None = None, *, budget: int | None = steps,
             prefix: str = "") -> TrialPlan:
        return plan_trial(cfg, customer_percent=percent, categories=categories, steps=budget, search_dir=out,
                          tracking_uri=store, prefix=prefix)

    def run_trials(plans: list[TrialPlan]) -> list[dict[str, Any]]:
        """Train what is not trained yet, then evaluate every plan (reusing finished evaluations)."""
        for p in plans:
            (reused if trained(p) else fresh).append(p.name)
        records = train_trials(plans, max_parallel=max_parallel, show_progress=show_progress)
        return [evaluate_trial(p, records[p.name], tasks, base_result, settings=eval_settings, cache_dir=cache_dir,
                               batch_size=batch_size, show_progress=show_progress) for p in plans]

    reused: list[str] = []
    fresh: list[str] = []

    # ---- the base model on both tasks ----------------------------------------------------------------------
    console.rule("[bold]mix search: evaluate the base model")
    base_result = evaluate(cfg.model, tasks, cache_dir=cache_dir, batch_size=batch_size, show_progress=show_progress)
    base_result.save(out / "base_eval.json")

    # ---- the sweep of customer_data_percent -------------------------------------------------------------
    console.rule(f"[bold]mix search: {len(percents)} shares of customer data at {steps or 'the config'} steps")
    sweep = [plan(p) for p in dict.fromkeys(float(p) for p in percents)]
    trials = run_trials(sweep)

    # ---- category weights: a multi-objective search with Optuna ---------------------------------------------
    if weights_trials:
        found = _weights_search(cfg, trials, weights_trials, weights_percent=weights_percent,
                                  target=target_retention, seed=seed, plan=plan, run_trials=run_trials,
                                  width=max_parallel or 1, console=console)
        trials += [t for t in found if t["name"] not in {x["name"] for x in trials}]  # the defaults: the sweep's

    # ---- the Pareto front and the recommendation --------------------------------------------------------
    pareto = [trials[i]["name"] for i in pareto_front(trials)]
    rec = recommend(trials, target=target_retention)
    if rec is not None:
        chosen = next(t for t in trials if t["name"] == rec["trial"])
        rec["config"] = str(write_recommended_config(config, cfg, chosen, out / RECOMMENDED_FILE))

    # ---- validation: the recommendation at full budget ------------------------------------------------------
    validation = None
    if validate and rec is not None:
        console.rule(f"[bold]mix search: validate {rec['trial']} at full budget")
        chosen = next(t for t in trials if t["name"] == rec["trial"])
        categories = chosen["mix"]["categories"] if chosen["weights_search"] else None
        if steps is None or steps == cfg.overrides.max_steps:  # the trials already ran at full budget
            validation = dict(chosen)
        else:
            validation = run_trials([plan(chosen["mix"]["customer_data_percent"], categories, budget=None,
                                          prefix="full-")])[0]
        validation["meets_target"] = bool(validation["retention"] >= target_retention)
        validation["lower_bound_meets_target"] = bool(validation["intervals"]["retention"][0] >= target_retention)

    # ---- the forgetting report, search.html, MLflow, search.json -------------------------------------------
    search = _write_outputs(cfg, "(a RunConfig)" if isinstance(config, RunConfig) else str(config), out, base_result, trials, pareto, rec, validation, steps=steps,
                            target=target_retention, store=store, eval_settings=eval_settings,
                            general_metric=general_metric, domain_metric=domain_metric, n_resamples=n_resamples,
                            seed=seed, seconds=time.perf_counter() - started)
    _print(console, search, out)
    return SearchResult(path=out / SEARCH_FILE, html=out / "search.html", trials=trials, pareto=pareto,
                        recommendation=rec, validation=validation, reused=reused, trained=fresh)


# ---------------------------------------------------------------------------------------------------------
# one trial's evaluation
# ---------------------------------------------------------------------------------------------------------
def evaluate_trial(plan: TrialPlan, trained_record: dict[str, Any], tasks, base_result, *, settings: dict[str, Any],
                   cache_dir: Path, batch_size: int, show_progress: bool) -> dict[str, Any]:
    """The trial's record (trial.json): scores with paired-bootstrap intervals against the base (the forgetting
    report's `compare`), the training signals, and the cost. Reused when the same training was evaluated with
    the same settings."""
    from mixforge.eval.evaluator import evaluate
    from mixforge.eval.report import compare
    from mixforge.io.atomic import write_json_atomic

    eval_key = json_sha256(settings)[:16]
    existing = read_json(plan.directory / TRIAL_FILE)
    if existing and existing.get("key") == plan.key and existing.get("eval_key") == eval_key \
            and existing.get("trained_at") == trained_record["trained_at"]:
        return existing
    t0 = time.perf_counter()
    result = evaluate(trained_record["final_path"], tasks, cache_dir=cache_dir, batch_size=batch_size,
                      show_progress=show_progress)
    eval_seconds = time.perf_counter() - t0
    result.save(plan.directory / "eval.json")
    base_row, row = compare({"base": base_result, plan.name: result}, base="base",
                            general_metric=settings["general_metric"], domain_metric=settings["domain_metric"],
                            n_resamples=settings["n_resamples"], seed=settings["seed"])
    signals = training_signals(plan.run_dir)
    record = {
        "name": plan.name, "key": plan.key, "eval_key": eval_key, "mix": plan.mix,
        "customer_data_percent": plan.customer_data_percent,
        "weights_search": plan.custom_weights,
        "retention": row.retention, "domain": row.domain, "general": row.general, "domain_gain": row.domain_gain,
        "intervals": {"retention": list(row.retention_ci), "domain": list(row.domain_ci),
                      "general": list(row.general_ci), "domain_gain": list(row.domain_gain_ci)},
        "signals": {"val_loss": signals["val_loss"], "kl_to_base": signals["kl_to_base"]},
        "cost": {"train_seconds": trained_record["train_seconds"], "eval_seconds": round(eval_seconds, 2),
                 "tokens": signals["tokens"], "steps": signals["steps"]},
        "run_dir": str(plan.run_dir), "final_path": trained_record["final_path"], "eval": str(plan.directory / "eval.json"),
        "mlflow_run_id": trained_record.get("mlflow_run_id"), "runtime": trained_record.get("runtime"),
        "trained_at": trained_record["trained_at"], "evaluated_at": time.time(),
        "base_general": base_row.general, "base_domain": base_row.domain,
    }
    write_json_atomic(plan.directory / TRIAL_FILE, record)
    return record


# ---------------------------------------------------------------------------------------------------------
# category weights
# ---------------------------------------------------------------------------------------------------------
def _weights_search(cfg: RunConfig, sweep: list[dict[str, Any]], n_trials: int, *, weights_percent: float | None,
                    target: float, seed: int, plan, run_trials, width: int, console) -> list[dict[str, Any]]:
    """`n_trials` mixes of category weights at one customer share (given, else the sweep's recommendation,
    else 50), asked from a seeded two-objective Optuna study whose first trial is the default weights."""
    from mixforge.search.weights import percents_from_trial, weight_study
    from mixforge.train.mixing import mixing_config

    if weights_percent is None:
        rec = recommend(sweep, target=target)
        weights_percent = rec["customer_data_percent"] if rec and rec["customer_data_percent"] < 100 else 50.0
    if not 0 < weights_percent < 100:
        raise ConfigError(f"weights_percent: {weights_percent} must be in (0, 100): at 100 nothing is mixed in")
    mix = mixing_config(cfg.mixing, enabled=True, model=cfg.model, method=cfg.method)
    available = mix.category_sources()
    categories = [c for c in mix.category_percents() if available.get(c)]
    if len(categories) < 2:
        raise ConfigError(f"weights: the mix has {len(categories)} category with a source; the weights need two",
                          hint="set mixing.general_data: embedded or hub, or add sources")
    defaults = mix.category_percents()
    study = weight_study(categories=categories, seed=seed, defaults=defaults)
    console.rule(f"[bold]mix search: {n_trials} category-weight trials at customer_data_percent {weights_percent:g}")
    found: list[dict[str, Any]] = []
    while len(found) < n_trials:
        asked = [study.ask() for _ in range(min(width, n_trials - len(found)))]
        plans = [plan(weights_percent, percents_from_trial(t, categories)) for t in asked]
        records = run_trials(plans)
        for t, record in zip(asked, records, strict=True):
            study.tell(t, [record["retention"], record["domain"]])
        found += [r for r in records if r["name"] not in {x["name"] for x in found}]
    return found


# ---------------------------------------------------------------------------------------------------------
# the recommended config
# ---------------------------------------------------------------------------------------------------------
def write_recommended_config(source: str | Path | RunConfig, cfg: RunConfig, trial: dict[str, Any],
                             path: Path) -> Path:
    """The user's config (as written: relative paths stay relative) with the trial's mix, ready for the full
    run; validated before it is written."""
    import yaml

    from mixforge.config import parse_run_config
    from mixforge.io.atomic import write_text_atomic
    from mixforge.search.trials import trial_mixing

    if isinstance(source, RunConfig):
        data = source.model_dump(mode="json", exclude_unset=True)
    else:
        data = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
    categories = trial["mix"]["categories"] if trial["weights_search"] else None
    mix = trial_mixing(cfg, customer_percent=trial["customer_data_percent"], categories=categories)
    data["data_mixing_enabled"] = mix is not None
    if mix is None:
        data.pop("mixing", None)
    else:
        data["mixing"] = {"customer_data_percent": mix.customer_data_percent, "general_data": mix.general_data,
                          "categories": {c: v for c, v in mix.categories.items()},
                          **({"sources": [s.model_dump(mode="json") for s in mix.sources]} if mix.sources else {})}
    data["output_path"] = f"{str(cfg.output_path).rstrip('/')}-{trial['name']}"
    data["job_name"] = f"{cfg.job_name}-{trial['name']}"
    parse_run_config(json.loads(json.dumps(data)))  # the file must load as it is written
    header = (f"# mixforge train --config {path}\n#\n# Recommended by `mixforge mix search` ({trial['name']}: "
              f"retention {trial['retention']:.3f} [{trial['intervals']['retention'][0]:.3f}, "
              f"{trial['intervals']['retention'][1]:.3f}], domain {trial['domain']:.3f} at "
              f"{trial['cost']['steps']} proxy steps).\n# The budget is the config's own (the full run); paths "
              "are read from the folder you run it in, as in the original config.\n")
    return write_text_atomic(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


# ---------------------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------------------
def _write_outputs(cfg: RunConfig, config_label: str, out: Path, base_result, trials, pareto, rec, validation, *, steps, target, store,
                   eval_settings, general_metric, domain_metric, n_resamples, seed, seconds) -> dict[str, Any]:
    from mixforge.eval.report import forgetting_report
    from mixforge.eval.tasks import EvalResult
    from mixforge.io.atomic import write_json_atomic
    from mixforge.search.report import log_search_to_mlflow, pareto_plot, write_search_html

    everything = trials + ([validation] if validation else [])
    report = forgetting_report({"base": base_result, **{t["name"]: EvalResult.load(t["eval"]) for t in everything}},
                               base="base", out_dir=out / "report", general_metric=general_metric,
                               domain_metric=domain_metric, run_dirs={t["name"]: t["run_dir"] for t in everything},
                               title="Mixture search: every trial against the base", n_resamples=n_resamples,
                               seed=seed)
    search = {
        "config": config_label, "base": {"model": cfg.model, "general": report.rows[0].general,
                                                  "domain": report.rows[0].domain},
        "steps": steps, "full_steps": cfg.overrides.max_steps, "target_retention": target,
        "general_metric": report.general_label, "domain_metric": report.domain_label,
        "evaluation": eval_settings, "trials": trials, "pareto": pareto, "recommendation": rec,
        "validation": validation, "forgetting_report": "report/report.html", "mlflow": store,
        "seconds": round(seconds, 1),
    }
    png = pareto_plot(trials, pareto=pareto, recommended=rec and rec["trial"], target=target,
                      domain_label=report.domain_label, validation=validation)
    (out / "pareto.png").write_bytes(png)
    html_path = write_search_html(out / "search.html", search, png)
    json_path = write_json_atomic(out / SEARCH_FILE, search)
    if cfg.tracking.enabled:
        search["mlflow_parent_run_id"] = log_search_to_mlflow(
            search, tracking_uri=store, experiment=cfg.tracking.experiment_name, state_file=out / "mlflow.json",
            artifacts=[json_path, html_path, out / "pareto.png"])
        write_json_atomic(json_path, search)
    return search


def _print(console, search: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    from mixforge.search.report import trial_rows

    head, body = trial_rows(search)
    table = Table(*head, title="mixture search (95% paired-bootstrap intervals)")
    for row in body:
        table.add_row(*row)
    console.print(table)
    rec = search["recommendation"]
    if rec:
        console.print(f"recommended: [bold]{rec['trial']}[/] ({rec['reason']})\nfull-run config: {rec['config']}")
    val = search["validation"]
    if val:
        lo, hi = val["intervals"]["retention"]
        console.print(f"full budget ({val['cost']['steps']} steps): retention {val['retention']:.3f} [{lo:.3f}, "
                      f"{hi:.3f}], domain {val['domain']:.3f}; meets the target: {val['meets_target']}")
    console.print(f"search: {out / SEARCH_FILE}\nreport: {out / 'search.html'}  (every trial: "
                  f"{out / search['forgetting_report']})\ntook {search['seconds']:.0f} s")
