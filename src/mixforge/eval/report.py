"""The forgetting report: a base model against tuned runs, on a domain task and a general task.

    from mixforge.eval.report import forgetting_report
    report = forgetting_report({"base": base_result, "domain-only": r1, "mixed-50": r2}, base="base",
                               out_dir="reports/medical")
    print(report.table())          # Markdown; report.markdown / report.html are the files

One table: for each checkpoint the domain metric, the general metric, retention = general / base general,
and domain gain = domain - base domain, each with a 95% paired-bootstrap interval: every resample draws the
same questions (by id) for the base and the run, so the interval reflects the difference between the two
models on one benchmark rather than the benchmark's own sampling noise twice.

Plots (grouped bars; per-source validation loss and KL-to-base curves read from a run's `metrics.jsonl`),
links to each run's mixture manifest (`mix_manifest.json` or `mixture_manifest.json`; its content is embedded
in the HTML too), per-subject general accuracy. Written as `report.md` (+ `plots/*.png`), one self-contained
`report.html` (images base64-embedded; opens without a server) and `report.json`; logged to MLflow when a
tracking URI or run id is given.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixforge.errors import ConfigError, DataError
from mixforge.eval.metrics import classification_report, macro_f1_indices, paired_bootstrap
from mixforge.eval.tasks import EvalResult, TaskResult

Interval = tuple[float, float]
# a run folder's mixture manifest: the training recipe writes mix_manifest.json (mixforge.mix.manifest)
MANIFEST_NAMES = ("mixture_manifest.json", "mix_manifest.json")


@dataclass
class ReportRow:
    """One checkpoint's line in the report (the base's retention is 1 and its gain 0 by definition)."""

    run: str
    model: str
    domain: float
    domain_ci: Interval
    general: float
    general_ci: Interval
    retention: float
    retention_ci: Interval
    domain_gain: float
    domain_gain_ci: Interval
    n_domain: int
    n_general: int
    manifest: str | None = None
    metrics_file: str | None = None


@dataclass
class Report:
    rows: list[ReportRow]
    domain_label: str
    general_label: str
    markdown: Path
    html: Path
    json: Path
    plots: dict[str, Path] = field(default_factory=dict)
    mlflow_run_id: str | None = None

    def table(self) -> str:
        return markdown_table(self.rows, self.domain_label, self.general_label)


# ---- statistics ----------------------------------------------------------------------------------------------


def _aligned(base: TaskResult, run: TaskResult, run_name: str) -> tuple[list[dict], list[dict]]:
    """The two runs' examples in the base's order; the same ids are required (a paired comparison)."""
    by_id = {e["id"]: e for e in run.examples}
    base_ids = [e["id"] for e in base.examples]
    if set(by_id) != set(base_ids):
        missing, extra = set(base_ids) - set(by_id), set(by_id) - set(base_ids)
        raise DataError(
            f"run {run_name!r} was evaluated on other examples than the base for task {base.task!r} "
            f"({len(missing)} missing, {len(extra)} extra, e.g. {sorted(missing or extra)[:3]})",
            hint="evaluate every checkpoint on the same task file with the same limit",
        )
    return list(base.examples), [by_id[i] for i in base_ids]


def metric_on(examples: list[dict], kind: str, metric: str) -> Callable[[np.ndarray], float]:
    """statistic(indices) -> `metric` on the examples at those indices (indices may repeat: a resample)."""
    if kind == "classification" and metric == "macro_f1":
        codes: dict[str, int] = {}  # labels coded once: the bootstrap calls this 1,000 times
        gold = np.array([codes.setdefault(e["gold"], len(codes)) for e in examples])
        pred = np.array([codes.setdefault(e["pred"], len(codes)) for e in examples])
        return lambda idx: macro_f1_indices(gold[idx], pred[idx], len(codes))
    if kind == "classification" and metric == "weighted_f1":
        return lambda idx: classification_report([examples[i]["gold"] for i in idx],
                                                 [examples[i]["pred"] for i in idx])["weighted_f1"]
    key = {"acc": "correct", "accuracy": "correct", "micro_f1": "correct", "acc_norm": "correct_norm",
           "exact_match": "exact_match", "f1": "f1"}.get(metric)
    if key is None or key not in examples[0]:
        raise ConfigError(f"metric: {metric!r} is not available per example for a {kind} task")
    values = np.array([float(e[key]) for e in examples])
    return lambda idx: float(values[idx].mean())


def compare(
    results: Mapping[str, EvalResult],
    *,
    base: str,
    domain: str = "domain",
    general: str = "general",
    domain_metric: str | None = None,
    general_metric: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[ReportRow]:
    """The report's rows (base first), with paired-bootstrap 95% intervals."""
    if base not in results:
        raise ConfigError(f"base: {base!r} is not one of the results ({', '.join(results)})")
    base_result = results[base]
    base_dom, base_gen = base_result[domain], base_result[general]
    dom_metric = domain_metric or base_dom.main_metric
    gen_metric = general_metric or base_gen.main_metric
    rows = []
    for name, result in results.items():
        dom_b, dom_r = _aligned(base_dom, result[domain], name)
        gen_b, gen_r = _aligned(base_gen, result[general], name)
        f_dom_b, f_dom_r = metric_on(dom_b, base_dom.kind, dom_metric), metric_on(dom_r, base_dom.kind, dom_metric)
        f_gen_b, f_gen_r = metric_on(gen_b, base_gen.kind, gen_metric), metric_on(gen_r, base_gen.kind, gen_metric)
        boot = dict(n_resamples=n_resamples, seed=seed)
        d, *d_ci = paired_bootstrap(f_dom_r, len(dom_r), **boot)
        g, *g_ci = paired_bootstrap(f_gen_r, len(gen_r), **boot)
        gain, *gain_ci = paired_bootstrap(lambda i, r=f_dom_r, b=f_dom_b: r(i) - b(i), len(dom_r), **boot)
        ret, *ret_ci = paired_bootstrap(lambda i, r=f_gen_r, b=f_gen_b: _ratio(r(i), b(i)), len(gen_r), **boot)
        rows.append(ReportRow(
            run=name, model=result.model, domain=d, domain_ci=tuple(d_ci), general=g, general_ci=tuple(g_ci),
            retention=ret, retention_ci=tuple(ret_ci), domain_gain=gain, domain_gain_ci=tuple(gain_ci),
            n_domain=len(dom_r), n_general=len(gen_r),
        ))
    rows.sort(key=lambda r: r.run != base)  # base first, the others in the order given
    return rows


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# ---- run folders: training metrics and mixture manifests -----------------------------------------------------


def find_run_file(model: str, name: str, run_dir: str | None = None) -> Path | None:
    """`name` in the run folder: `run_dir` when given, else the checkpoint folder or one of its two parents
    (a checkpoint usually sits at runs/NAME/final or runs/NAME/checkpoints/step-N)."""
    candidates = [Path(run_dir)] if run_dir else []
    p = Path(model).expanduser()
    if not run_dir and p.is_dir():
        candidates += [p, p.parent, p.parent.parent]
    for folder in candidates:
        if (folder / name).is_file():
            return folder / name
    return None


# ---- rendering -----------------------------------------------------------------------------------------------


def _fmt(value: float, ci: Interval, *, percent: bool = False, signed: bool = False) -> str:
    def f(x: float) -> str:
        if not np.isfinite(x):
            return "n/a"
        return f"{x * 100:+.1f}" if percent and signed else f"{x * 100:.1f}%" if percent else \
            f"{x:+.3f}" if signed else f"{x:.3f}"
    return f"{f(value)} [{f(ci[0])}, {f(ci[1])}]"


def _cells(row: ReportRow, links: bool) -> list[str]:
    manifest = f"[manifest]({row.manifest})" if links and row.manifest else (row.manifest or "")
    return [row.run, _fmt(row.domain, row.domain_ci), _fmt(row.general, row.general_ci),
            _fmt(row.retention, row.retention_ci, percent=True), _fmt(row.domain_gain, row.domain_gain_ci, signed=True),
            manifest]


def _headers(domain_label: str, general_label: str) -> list[str]:
    return ["run", f"domain {domain_label}", f"general {general_label}", "retention (general / base)",
            "domain gain", "mixture"]


def markdown_table(rows: list[ReportRow], domain_label: str, general_label: str, *, links: bool = True) -> str:
    head = _headers(domain_label, general_label)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(r, links)) + " |" for r in rows]
    return "\n".join(lines)


def _subject_table(results: Mapping[str, EvalResult], general: str) -> tuple[list[str], list[list[str]]] | None:
    per = {name: r[general].details.get("per_subject") or {} for name, r in results.items()}
    subjects = sorted({s for table in per.values() for s in table})
    if not subjects:
        return None
    head = ["subject", *results]
    body = [[s, *[f"{per[n][s]['acc']:.3f}" if s in per[n] else "" for n in results]] for s in subjects]
    return head, body


def _relative(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive on Windows
        return str(path)


def forgetting_report(
    results: Mapping[str, EvalResult | str | Path],
    *,
    base: str | None = None,
    out_dir: str | Path,
    domain: str = "domain",
    general: str = "general",
    domain_metric: str | None = None,
    general_metric: str | None = None,
    run_dirs: Mapping[str, str] | None = None,
    title: str = "Forgetting report",
    n_resamples: int = 1000,
    seed: int = 0,
    tracking_uri: str | None = None,
    mlflow_run_id: str | None = None,
    mlflow_experiment: str = "mixforge-reports",
) -> Report:
    """Write the report for {run name: results (an EvalResult or a results JSON file)}; `base` names the
    base model's entry (default: the first). Returns the rows and the paths written."""
    from mixforge.eval import plots
    from mixforge.io.atomic import AtomicFile, write_json_atomic, write_text_atomic

    loaded = {name: r if isinstance(r, EvalResult) else EvalResult.load(r) for name, r in results.items()}
    if not loaded:
        raise ConfigError("results: the report needs at least the base model's results")
    base = base or next(iter(loaded))
    rows = compare(loaded, base=base, domain=domain, general=general, domain_metric=domain_metric,
                   general_metric=general_metric, n_resamples=n_resamples, seed=seed)
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    dom_label = domain_metric or loaded[base][domain].main_metric
    gen_label = general_metric or loaded[base][general].main_metric

    # ---- run folders: manifests and training curves --------------------------------------------------------
    run_dirs = dict(run_dirs or {})
    manifests: dict[str, Any] = {}
    training: dict[str, list[dict]] = {}
    for row in rows:
        manifest = next((m for name in MANIFEST_NAMES
                         if (m := find_run_file(row.model, name, run_dirs.get(row.run)))), None)
        if manifest:
            row.manifest = _relative(manifest.resolve(), out.resolve())
            try:
                manifests[row.run] = json.loads(manifest.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                manifests[row.run] = manifest.read_text(encoding="utf-8")
        metrics_file = find_run_file(row.model, "metrics.jsonl", run_dirs.get(row.run))
        if metrics_file:
            row.metrics_file = str(metrics_file)
            training[row.run] = plots.read_training_metrics(metrics_file)

    # ---- plots --------------------------------------------------------------------------------------------
    images: dict[str, bytes] = {
        "scores": plots.grouped_bars(
            [r.run for r in rows],
            {f"domain {dom_label}": [r.domain for r in rows], f"general {gen_label}": [r.general for r in rows]},
            {f"domain {dom_label}": [r.domain_ci for r in rows], f"general {gen_label}": [r.general_ci for r in rows]},
            title="Domain and general scores (95% bootstrap intervals)",
        )
    }
    for key, draw in (("validation_loss", plots.validation_curves), ("kl_to_base", plots.kl_curves)):
        png = draw(training)
        if png:
            images[key] = png
    plot_paths = {k: out / "plots" / f"{k}.png" for k in images}
    for k, png in images.items():
        with AtomicFile(plot_paths[k]) as f:
            f.write(png)

    # ---- Markdown, HTML, JSON -----------------------------------------------------------------------------
    note = (f"Retention = general / base general; domain gain = domain - base domain. Brackets: 95% paired "
            f"bootstrap intervals ({n_resamples} resamples of the same questions for base and run, seed {seed}). "
            f"Domain: task '{domain}' ({dom_label}, n={rows[0].n_domain}); general: task '{general}' "
            f"({gen_label}, n={rows[0].n_general}).")
    subjects = _subject_table(loaded, general)
    md = [f"# {title}", "", f"Base: **{base}** (`{loaded[base].model}`)", "",
          markdown_table(rows, dom_label, gen_label), "", note, "", "![scores](plots/scores.png)", ""]
    if len(images) > 1:
        md += ["## Training curves", ""] + [f"![{k}](plots/{k}.png)" for k in images if k != "scores"] + [""]
    if subjects:
        head, body = subjects
        md += [f"## General accuracy per subject ({general})", "", "| " + " | ".join(head) + " |",
               "|" + "---|" * len(head), *["| " + " | ".join(b) + " |" for b in body], ""]
    md += ["## Checkpoints", ""] + [
        f"- **{r.run}**: `{r.model}` (fingerprint {loaded[r.run].fingerprint})"
        + (f", mixture: [{r.manifest}]({r.manifest})" if r.manifest else "") for r in rows]
    md_path = write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    html_path = write_text_atomic(out / "report.html", _html(title, base, loaded, rows, dom_label, gen_label, note,
                                                             images, subjects, manifests))
    json_path = write_json_atomic(out / "report.json", {
        "base": base, "domain_task": domain, "general_task": general, "domain_metric": dom_label,
        "general_metric": gen_label, "n_resamples": n_resamples, "seed": seed,
        "rows": [asdict(r) for r in rows]})
    report = Report(rows, dom_label, gen_label, md_path, html_path, json_path, plot_paths)
    if tracking_uri or mlflow_run_id:
        report.mlflow_run_id = log_to_mlflow(report, tracking_uri=tracking_uri, run_id=mlflow_run_id,
                                             experiment=mlflow_experiment)
    return report


def _html(title, base, loaded, rows, dom_label, gen_label, note, images, subjects, manifests) -> str:
    e = html.escape

    def img(key: str) -> str:
        data = base64.b64encode(images[key]).decode("ascii")
        return f'<figure><img alt="{e(key)}" src="data:image/png;base64,{data}"></figure>'

    head = "".join(f"<th>{e(h)}</th>" for h in _headers(dom_label, gen_label))
    body = []
    for r in rows:
        cells = _cells(r, links=False)
        cells_html = [e(c) for c in cells[:-1]]
        cells_html.append(f'<a href="{e(r.manifest)}">{e(r.manifest)}</a>' if r.manifest else "")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells_html) + "</tr>")
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}pre{background:#f6f6f6;padding:8px;"
        "overflow:auto}</style></head><body>",
        f"<h1>{e(title)}</h1>", f"<p>Base: <b>{e(base)}</b> (<code>{e(loaded[base].model)}</code>)</p>",
        f'<table id="forgetting"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>',
        f"<p>{e(note)}</p>", img("scores"),
    ]
    if len(images) > 1:
        parts += ["<h2>Training curves</h2>", *[img(k) for k in images if k != "scores"]]
    if subjects:
        shead, sbody = subjects
        parts += [f"<h2>General accuracy per subject</h2><table><thead><tr>"
                  f"{''.join(f'<th>{e(h)}</th>' for h in shead)}</tr></thead><tbody>"
                  + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in b) + "</tr>" for b in sbody)
                  + "</tbody></table>"]
    parts.append("<h2>Checkpoints</h2><ul>")
    for r in rows:
        parts.append(f"<li><b>{e(r.run)}</b>: <code>{e(r.model)}</code> (fingerprint "
                     f"{e(loaded[r.run].fingerprint)})</li>")
    parts.append("</ul>")
    for run, manifest in manifests.items():
        text = manifest if isinstance(manifest, str) else json.dumps(manifest, indent=1, ensure_ascii=False)
        parts.append(f"<details><summary>mixture manifest: {e(run)}</summary><pre>{e(text)}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def log_to_mlflow(report: Report, *, tracking_uri: str | None, run_id: str | None, experiment: str) -> str:
    """Log the report's figures as metrics and its files as artifacts; returns the MLflow run id."""
    import mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    if run_id is None:
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_id=run_id) as active:
        for r in report.rows:
            prefix = "".join(c if c.isalnum() or c in "-_." else "_" for c in r.run)
            mlflow.log_metrics({f"report/{prefix}/domain": r.domain, f"report/{prefix}/general": r.general,
                                f"report/{prefix}/retention": r.retention,
                                f"report/{prefix}/domain_gain": r.domain_gain})
        for path in (report.markdown, report.html, report.json):
            mlflow.log_artifact(str(path), artifact_path="forgetting_report")
        for path in report.plots.values():
            mlflow.log_artifact(str(path), artifact_path="forgetting_report/plots")
        return active.info.run_id
