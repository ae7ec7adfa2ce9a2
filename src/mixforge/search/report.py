"""What a search shows: the Pareto plot, an HTML page around it, and MLflow runs (a parent, one child a trial).

    png = pareto_plot(trials, pareto=["customer-50", ...], recommended="customer-50", target=0.95)
    write_search_html(out / "search.html", search)          # `search` is what search.json holds
    log_search_to_mlflow(search, tracking_uri=..., experiment=..., state_file=out / "mlflow.json")

The per-trial table, curves and intervals in full are the forgetting report's (`report/report.html`, written
by mixforge.eval.report over the base and every trial); this page links to it.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def pareto_plot(trials: Sequence[Mapping[str, Any]], *, pareto: Sequence[str], recommended: str | None,
                target: float, domain_label: str, validation: Mapping[str, Any] | None = None) -> bytes:
    """Retention (x) against the domain metric (y), 95% intervals as error bars, the front joined by a line,
    the target as a vertical line, the recommendation circled."""
    from mixforge.eval.plots import _png, _pyplot  # the report's Agg figure machinery

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for t in trials:
        on_front = t["name"] in pareto
        x, y = t["retention"], t["domain"]
        xerr = [[max(x - t["intervals"]["retention"][0], 0)], [max(t["intervals"]["retention"][1] - x, 0)]]
        yerr = [[max(y - t["intervals"]["domain"][0], 0)], [max(t["intervals"]["domain"][1] - y, 0)]]
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o" if on_front else "s", capsize=2, alpha=0.9,
                    color="tab:blue" if on_front else "tab:gray")
        ax.annotate(t["name"], (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    front = sorted((t for t in trials if t["name"] in pareto), key=lambda t: t["retention"])
    if len(front) > 1:
        ax.plot([t["retention"] for t in front], [t["domain"] for t in front], color="tab:blue", lw=1,
                label="Pareto front")
    rec = next((t for t in trials if t["name"] == recommended), None)
    if rec is not None:
        ax.scatter([rec["retention"]], [rec["domain"]], s=220, facecolors="none", edgecolors="tab:red", lw=1.5,
                   label=f"recommended: {rec['name']}")
    if validation is not None:
        ax.scatter([validation["retention"]], [validation["domain"]], marker="*", s=160, color="tab:green",
                   label=f"full budget: {validation['name']}")
    ax.axvline(target, color="tab:red", ls="--", lw=1, label=f"target retention {target:g}")
    ax.set_xlabel("retention (general / base general)")
    ax.set_ylabel(f"domain {domain_label}")
    ax.set_title("Mixture search: domain skill against general retention (95% intervals)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)


def _fmt(value: float | None, ci: Sequence[float] | None = None, percent: bool = False) -> str:
    if value is None:
        return ""
    f = (lambda v: f"{v * 100:.1f}%") if percent else (lambda v: f"{v:.3f}")
    return f(value) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci else "")


def trial_rows(search: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The trials as table cells (also used for the terminal table)."""
    head = ["trial", "customer %", "category weights", f"domain {search['domain_metric']}",
            f"general {search['general_metric']}", "retention", "KL to base", "train s", "tokens", "pareto"]
    body = []
    for t in search["trials"]:
        cats = ", ".join(f"{c} {v:g}" for c, v in t["mix"]["categories"].items()) if t["weights_search"] else \
            "the config's" if t["mix"]["categories"] else "-"  # weights differ only in weight trials
        body.append([t["name"], f"{t['mix']['customer_data_percent']:g}", cats,
                     _fmt(t["domain"], t["intervals"]["domain"]), _fmt(t["general"], t["intervals"]["general"]),
                     _fmt(t["retention"], t["intervals"]["retention"], percent=True),
                     "" if t["signals"]["kl_to_base"] is None else f"{t['signals']['kl_to_base']:.4f}",
                     f"{t['cost']['train_seconds']:.0f}", f"{t['cost']['tokens'] or 0:,}",
                     "yes" if t["name"] in search["pareto"] else ""])
    return head, body


def write_search_html(path: Path, search: Mapping[str, Any], png: bytes) -> Path:
    from mixforge.io.atomic import write_text_atomic

    e = html.escape
    head, body = trial_rows(search)
    rec, val = search.get("recommendation"), search.get("validation")
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>Mixture search</title>',
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>",
        "<h1>Mixture search</h1>",
        f"<p>Base: <code>{e(search['base']['model'])}</code>; {len(search['trials'])} trials at "
        f"{e(str(search['steps'] or 'the config'))} steps (a proxy budget); target retention "
        f"{search['target_retention']:g} on the interval's lower bound.</p>",
    ]
    if rec:
        parts.append(f"<p><b>Recommendation: {e(rec['trial'])}</b> (customer_data_percent "
                     f"{rec['customer_data_percent']:g}): {e(rec['reason'])}. Ready-to-run config: "
                     f"<code>{e(rec.get('config') or '')}</code></p>")
    if val:
        parts.append(f"<p><b>Full budget ({e(val['name'])}, {val['cost']['steps']} steps)</b>: retention "
                     f"{e(_fmt(val['retention'], val['intervals']['retention'], percent=True))}, domain "
                     f"{e(_fmt(val['domain'], val['intervals']['domain']))}; meets the target: "
                     f"{'yes' if val['meets_target'] else 'no'} (lower bound: "
                     f"{'yes' if val['lower_bound_meets_target'] else 'no'}).</p>")
    parts.append(f'<figure><img alt="pareto" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>')
    parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"
                 + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body)
                 + "</tbody></table>")
    parts.append("<p>Short proxy runs can mislead: at full scale the domain data repeat more often (more "
                 "epochs) and forgetting can grow; <code>--validate</code> re-runs the recommendation at full "
                 "budget.</p>")
    if search.get("forgetting_report"):
        parts.append(f'<p>Every trial in the forgetting report (curves of validation loss per source and KL to '
                     f'base): <a href="{e(search["forgetting_report"])}">{e(search["forgetting_report"])}</a></p>')
    parts.append("</body></html>")
    return write_text_atomic(path, "\n".join(parts))


def log_search_to_mlflow(search: Mapping[str, Any], *, tracking_uri: str, experiment: str, state_file: Path,
                         artifacts: Sequence[Path]) -> str:
    """A parent run for the search and one child run per trial (mix as params; scores, intervals, signals and
    cost as metrics). The ids are kept in `state_file`, so a resumed search adds children to the same parent."""
    import mlflow

    from mixforge.io.atomic import write_json_atomic

    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}
    children: dict[str, str] = dict(state.get("children", {}))
    mlflow.set_tracking_uri(tracking_uri)
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_experiment(experiment)
    trials = list(search["trials"]) + ([search["validation"]] if search.get("validation") else [])
    with mlflow.start_run(run_id=state.get("parent")) if state.get("parent") else \
            mlflow.start_run(run_name="mix-search") as parent:
        for t in trials:
            if t["name"] in children:
                continue
            with mlflow.start_run(run_name=t["name"], nested=True) as child:
                mlflow.log_params({"customer_data_percent": t["mix"]["customer_data_percent"],
                                   **{f"category.{c}": v for c, v in t["mix"]["categories"].items()},
                                   "steps": t["cost"]["steps"], "trial_key": t["key"],
                                   "training_run_id": t.get("mlflow_run_id")})
                metrics = {"retention": t["retention"], "domain": t["domain"], "general": t["general"],
                           "domain_gain": t["domain_gain"], "train_seconds": t["cost"]["train_seconds"],
                           "eval_seconds": t["cost"]["eval_seconds"]}
                for k in ("retention", "domain", "general"):
                    metrics[f"{k}_low"], metrics[f"{k}_high"] = t["intervals"][k]
                if t["signals"]["kl_to_base"] is not None:
                    metrics["kl_to_base"] = t["signals"]["kl_to_base"]
                metrics |= {f"val_loss.{s}": v for s, v in t["signals"]["val_loss"].items()}
                if t["cost"]["tokens"] is not None:
                    metrics["tokens"] = t["cost"]["tokens"]
                mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})  # NaN: not logged
                children[t["name"]] = child.info.run_id
        rec = search.get("recommendation")
        if rec:
            mlflow.set_tags({"recommended_trial": rec["trial"], "recommendation_rule": rec["rule"]})
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="mix_search")
        parent_id = parent.info.run_id
    write_json_atomic(state_file, {"parent": parent_id, "children": children})
    return parent_id
