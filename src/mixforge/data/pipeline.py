"""`prepare`: the data recipe, top to bottom, streaming in batches.

    load -> map to canonical records -> sanitize -> validate (token lengths with the model's chat template)
    -> filter (quality, language, exact / near-duplicate) -> [split] -> save, plus rejects.jsonl and
    manifest.json (written last)

    report = prepare("data.jsonl", mapping="question=question,answer=answer", method="sft_lora",
                     model="tiny-chat", out_dir="out", split=(0.9, 0.05, 0.05))

Memory stays flat in the number of rows: one batch is in flight, plus what dedup and split must remember
(a digest, a label and a group id per row). Each stage's time, rows/s and peak RSS are in the report.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mixforge.data.filters import (
    ExactDedupFilter,
    FuzzyDedupFilter,
    LanguageFilter,
    Quality,
    QualityFilter,
    RowFilter,
    apply_filters,
    record_text,
)
from mixforge.data.load import Format, head, iter_batches
from mixforge.data.mapping import ColumnMapping, infer_mapping, parse_mapping
from mixforge.data.messages import check_shape, transform
from mixforge.data.rows import Reject, Row
from mixforge.data.sanitize import Action, Sanitizer, build_sanitizer, sanitize
from mixforge.data.split import SPLIT_NAMES, assign_splits, near_duplicate_groups, parse_ratios
from mixforge.data.validate import TokenLengths, TooLong, ValidationReport, Validator
from mixforge.data.write import SUFFIX, OutputFormat, RecordWriter, join
from mixforge.errors import DataError
from mixforge.fingerprint import file_sha256
from mixforge.io.atomic import write_json_atomic
from mixforge.io.jsonl import read_jsonl
from mixforge.methods import RECORD_KIND, RecordKind, TrainingMethod, parse_method
from mixforge.progress import progress_bar

STAGES: tuple[str, ...] = ("load", "transform", "sanitize", "validate", "filter", "save", "split")


def _rss() -> int:
    """Resident memory of this process in bytes (the kernel's own count; cheap enough to read per batch)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        import psutil

        return psutil.Process().memory_info().rss


@dataclass
class StageStats:
    name: str
    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    peak_rss: int = 0  # bytes: the largest RSS seen right after this stage ran

    @property
    def rows_per_s(self) -> float:
        return self.rows_in / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "seconds": round(self.seconds, 4),
                "rows_per_s": round(self.rows_per_s, 1) if self.seconds > 0 else None,
                "peak_rss_mib": round(self.peak_rss / 2**20, 1)}


@dataclass
class PrepareReport:
    """What `prepare` did: files written, rows per split, rejects per rule, sanitize hits, validation, stages."""

    out_dir: str
    method: str
    kind: str
    mapping: dict[str, str]
    files: dict[str, str]  # split name -> path
    rows_read: int
    rows_written: dict[str, int]
    rejects: Counter[str]  # "stage/rule" -> rows
    rejects_path: str
    manifest_path: str
    sanitize_hits: dict[str, int]
    filters: dict[str, dict[str, int]]
    validation: ValidationReport
    stages: list[StageStats] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss: int = 0

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejects.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir, "method": self.method, "kind": self.kind, "mapping": self.mapping,
            "files": self.files, "rows_read": self.rows_read, "rows_written": self.rows_written,
            "rejects": dict(self.rejects), "rejects_path": self.rejects_path, "manifest_path": self.manifest_path,
            "sanitize_hits": self.sanitize_hits, "filters": self.filters, "validation": self.validation.to_dict(),
            "stages": {s.name: s.to_dict() for s in self.stages}, "seconds": round(self.seconds, 3),
            "peak_rss_mib": round(self.peak_rss / 2**20, 1),
        }

    def table(self):
        """A rich table of the run, for the CLI and notebooks."""
        from rich.table import Table

        t = Table(title=f"prepared {self.rows_read:,} rows -> {self.out_dir}", show_header=True)
        t.add_column("step")
        t.add_column("result", overflow="fold")
        t.add_row("written", ", ".join(f"{k}: {v:,}" for k, v in self.rows_written.items()))
        t.add_row("rejected", f"{self.rows_rejected:,}" + (" (" + ", ".join(
            f"{k}: {v:,}" for k, v in self.rejects.most_common(8)) + ")" if self.rejects else ""))
        if self.sanitize_hits:
            t.add_row("sanitized", ", ".join(f"{k!r}: {v:,}" for k, v in sorted(
                self.sanitize_hits.items(), key=lambda kv: -kv[1])))
        for name, c in self.filters.items():
            t.add_row(f"filter {name}", f"kept {c.get('kept', 0):,}, dropped {c.get('dropped', 0):,}")
        v = self.validation
        if v.max_seq_len:
            t.add_row("token lengths", f"max {v.max_seq_len:,}: {v.too_long:,} rows over "
                      f"({v.truncated_tokens:,} tokens would be truncated); {v.rows_tokenized:,} rows tokenized")
        for p in v.dataset_problems:
            t.add_row("[yellow]warning[/]", p)
        t.add_row("time", f"{self.seconds:.2f} s, peak RSS {self.peak_rss / 2**20:.0f} MiB")
        t.add_row("rejects", self.rejects_path)
        t.add_row("manifest", self.manifest_path)
        return t

    def stage_table(self):
        from rich.table import Table

        t = Table("stage", "rows in", "rows out", "seconds", "rows/s", "peak RSS MiB", title="stages")
        for s in self.stages:
            rate = f"{s.rows_per_s:,.0f}" if s.seconds > 0 else "-"
            t.add_row(s.name, f"{s.rows_in:,}", f"{s.rows_out:,}", f"{s.seconds:.3f}", rate,
                      f"{s.peak_rss / 2**20:.0f}")
        return t


# ---- the parts a run is made of ------------------------------------------------------------------------------
@dataclass
class _Model:
    name: str
    reserved: list[str]
    max_seq_len: int
    tokenizer: Any


def _load_model(model: str | None, max_seq_len: int | None) -> _Model | None:
    if model is None:
        return None
    from mixforge.data.validate import read_model_files
    from mixforge.models.registry import load_tokenizer, model_info

    found = read_model_files(model)  # a local folder: its files, without importing torch
    if found is not None:
        info, tokenizer = found
        return _Model(str(model), info.reserved_strings, max_seq_len or info.max_seq_len, tokenizer)
    info = model_info(model, with_lora_targets=False)
    return _Model(str(model), info.reserved_strings, max_seq_len or info.max_seq_len, load_tokenizer(info.path))


def resolve_mapping(
    input: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    mapping: ColumnMapping | Mapping[str, str] | str | None,
    **read: Any,
) -> ColumnMapping:
    """The mapping given, or one guessed from the first good row's columns."""
    parsed = parse_mapping(mapping)
    if parsed is not None:
        return parsed
    first = head(input, 1, **read)
    if not first:
        raise DataError("no readable rows to guess the column mapping from", path=str(input),
                        hint="check the file, or pass a mapping (--map question=...,answer=...)")
    return infer_mapping(list(first[0].record))


def _filters(
    *, quality: bool | Quality, languages: Sequence[str] | None, dedup: str, fuzzy_threshold: float
) -> list[RowFilter]:
    if dedup not in ("none", "exact", "fuzzy"):
        raise DataError(f"dedup must be 'none', 'exact' or 'fuzzy', got {dedup!r}")
    out: list[RowFilter] = []
    if quality:
        out.append(QualityFilter(quality if isinstance(quality, Quality) else None))
    if languages:
        out.append(LanguageFilter(list(languages)))
    if dedup in ("exact", "fuzzy"):
        out.append(ExactDedupFilter())
    if dedup == "fuzzy":
        out.append(FuzzyDedupFilter(fuzzy_threshold))
    return out


def transform_head(
    input: str | os.PathLike[str],
    *,
    mapping: ColumnMapping | Mapping[str, str] | str | None = None,
    method: str | TrainingMethod = "sft_lora",
    sanitizer: Sanitizer | None = None,
    n: int = 5,
    **read: Any,
) -> tuple[list[Row], list[Reject]]:
    """The first `n` input rows as canonical records (sanitized when a sanitizer is given): a preview."""
    kind: RecordKind = RECORD_KIND[parse_method(method)]
    cmap = resolve_mapping(input, mapping, **read)
    check_shape(cmap, kind)
    rows, rejects = transform(head(input, n, **read), mapping=cmap, kind=kind)
    if sanitizer is not None:
        rows, bad, _ = sanitize(rows, sanitizer)
        rejects += bad
    return rows, rejects


# ---- the recipe ----------------------------------------------------------------------------------------------
def prepare(
    input: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    mapping: ColumnMapping | Mapping[str, str] | str | None = None,
    method: str | TrainingMethod = "sft_lora",
    model: str | None = None,
    out_dir: str | os.PathLike[str],
    max_seq_len: int | None = None,
    too_long: TooLong = "warn",
    sanitize_text: bool = True,
    sanitize_actions: Mapping[str, Action] | None = None,
    reserved_action: Action = "strip",
    marker_action: Action = "escape",
    quality: bool | Quality = True,
    languages: Sequence[str] | None = None,
    dedup: str = "exact",
    fuzzy_threshold: float = 0.8,
    labels: Sequence[str] | None = None,
    split: Sequence[float] | str | None = None,
    stratify: bool = True,
    split_near_duplicates: bool = True,
    seed: int = 0,
    format: OutputFormat = "jsonl",
    strict: bool = False,
    min_rows: int | None = None,
    max_rows: int | None = None,
    input_format: Format | None = None,
    json_key: str | None = None,
    input_split: str = "train",
    batch_size: int = 2_048,
    progress: bool = False,
) -> PrepareReport:
    """Load `input`, map it with `mapping` (guessed from the columns when None) to `method`'s canonical records,
    sanitize against `model`'s chat template, validate (token lengths with `model`'s tokenizer up to
    `max_seq_len`, default the model's), filter, optionally split by `split` ratios, and write
    `out_dir/{train,validation,test}.jsonl` (or .parquet), `rejects.jsonl` and `manifest.json`.

    Bad rows never stop the run: they go to rejects.jsonl with file, row, field and reason. `strict=True`
    raises DataError instead when any row was rejected (filters aside) or a dataset rule failed."""
    started = time.perf_counter()
    # ---- settings, checked before reading a byte --------------------------------------------------------------
    method_name = parse_method(method)
    kind: RecordKind = RECORD_KIND[method_name]
    ratios = parse_ratios(split) if split is not None else None
    read = {"format": input_format, "json_key": json_key, "split": input_split}
    cmap = resolve_mapping(input, mapping, **read)
    check_shape(cmap, kind)
    filters = _filters(quality=quality, languages=languages, dedup=dedup, fuzzy_threshold=fuzzy_threshold)
    out = os.fspath(out_dir)
    if "://" not in out:
        Path(out).mkdir(parents=True, exist_ok=True)

    # ---- model: reserved strings and tokenizer -----------------------------------------------------------------
    mdl = _load_model(model, max_seq_len)
    reserved = mdl.reserved if mdl else []
    sanitizer = build_sanitizer(reserved=reserved, reserved_action=reserved_action, marker_action=marker_action,
                                actions=sanitize_actions) if sanitize_text else None
    # Validation looks for reserved strings left in the text. After sanitize that is already known: sanitize
    # rewrites every text holding a pattern, confirms none is left, and rejects the row otherwise.
    detector = None if sanitizer is not None else build_sanitizer(reserved=reserved)
    lengths = TokenLengths(mdl.tokenizer, kind=kind, max_seq_len=mdl.max_seq_len) if mdl else None
    validator = Validator(kind=kind, reserved=detector, lengths=lengths, labels=labels, too_long=too_long)

    # ---- stream: load -> transform -> sanitize -> validate -> filter -> save ----------------------------------
    stages = {name: StageStats(name) for name in STAGES}
    hits: Counter[str] = Counter()
    reject_counts: Counter[str] = Counter()
    filter_counts: dict[str, Counter[str]] = {}
    rejects_path = join(out, "rejects.jsonl")
    staging_dir = tempfile.mkdtemp(prefix=".mixforge-staging-", dir=out if "://" not in out else None)
    staged = os.path.join(staging_dir, "kept.jsonl")
    final_path = join(out, "train" + SUFFIX[format])
    main_writer = RecordWriter(staged if ratios else final_path, format="jsonl" if ratios else format)
    reject_writer = RecordWriter(rejects_path, format="jsonl")
    labels_seen: list[str | None] = []
    rows_read = 0

    def timed(stage: str, rows_in: int, fn, *args, **kwargs):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        st = stages[stage]
        st.seconds += time.perf_counter() - t0
        st.rows_in += rows_in
        st.peak_rss = max(st.peak_rss, _rss())
        return result

    def keep_rejects(rejects: list[Reject]) -> None:
        if rejects:
            for r in rejects:
                reject_counts[f"{r.stage}/{r.rule}"] += 1
            reject_writer.write([r.to_dict() for r in rejects])

    bar = progress_bar(progress)
    bar_task = bar.add_task("preparing", total=None)
    bar.start()
    try:
        batches = iter_batches(input, batch_size=batch_size, **read)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            stages["load"].seconds += time.perf_counter() - t0
            if batch is None:
                break
            rows, bad = batch
            stages["load"].rows_in += len(rows) + len(bad)
            stages["load"].rows_out += len(rows)
            stages["load"].peak_rss = max(stages["load"].peak_rss, _rss())
            rows_read += len(rows) + len(bad)
            keep_rejects(bad)

            rows, bad = timed("transform", len(rows), transform, rows, mapping=cmap, kind=kind)
            stages["transform"].rows_out += len(rows)
            keep_rejects(bad)

            if sanitizer is not None:
                n_in = len(rows)
                rows, bad, batch_hits = timed("sanitize", n_in, sanitize, rows, sanitizer)
                hits.update(batch_hits)
                stages["sanitize"].rows_out += len(rows)
                keep_rejects(bad)

            rows, bad = timed("validate", len(rows), validator, rows)
            stages["validate"].rows_out += len(rows)
            keep_rejects(bad)

            if filters:
                rows, bad = timed("filter", len(rows), apply_filters, rows, filters, filter_counts)
                stages["filter"].rows_out += len(rows)
                keep_rejects(bad)

            if ratios:
                labels_seen.extend(r.record.get("label") for r in rows)
            timed("save", len(rows), main_writer.write, [r.record for r in rows])
            stages["save"].rows_out += len(rows)
            bar.update(bar_task, advance=len(batch[0]) + len(batch[1]), description=f"prepared {main_writer.rows:,} rows")

        # ---- dataset rules, then strict mode ---------------------------------------------------------------
        report = validator.finish(rows_kept=main_writer.rows, min_rows=min_rows, max_rows=max_rows)
        refused = {k: v for k, v in reject_counts.items() if not k.startswith("filter/")}
        if strict and (refused or not report.ok):
            summary = ", ".join(f"{k}: {v:,}" for k, v in sorted(refused.items(), key=lambda kv: -kv[1]))
            raise DataError(f"strict mode: {sum(refused.values()):,} rows rejected ({summary or 'none'})\n"
                            + report.summary(), path=str(input),
                            hint="read the reasons in the rejects file (run without --strict to write it)")
        if main_writer.rows == 0:
            reject_writer.close()
            top = ", ".join(f"{k}: {v:,}" for k, v in reject_counts.most_common(5))
            raise DataError(f"no usable rows: read {rows_read:,}, rejected {sum(reject_counts.values()):,}"
                            + (f" ({top})" if top else ""), path=str(input),
                            hint=f"the reasons are in {rejects_path}" if reject_counts else "the input is empty")

        # ---- split: assign whole near-duplicate groups, stratified by label ---------------------------------
        t0 = time.perf_counter()
        main_writer.close()
        reject_writer.close()
        stages["save"].seconds += time.perf_counter() - t0
        if ratios:
            t0 = time.perf_counter()
            files, rows_written = _split_staged(
                staged, out, ratios=ratios, seed=seed, format=format,
                labels=labels_seen if stratify and cmap.label else None,
                group=split_near_duplicates and dedup != "fuzzy", threshold=fuzzy_threshold)
            split_stage = stages["split"]
            split_stage.seconds = time.perf_counter() - t0
            split_stage.rows_in = split_stage.rows_out = main_writer.rows
            split_stage.peak_rss = _rss()
        else:
            files = {"train": final_path}
            rows_written = {"train": main_writer.rows}
    except BaseException:
        main_writer.abort()
        reject_writer.abort()
        raise
    finally:
        bar.stop()
        _remove_tree(staging_dir)

    # ---- manifest, written last ----------------------------------------------------------------------------
    seconds = time.perf_counter() - started
    stage_list = [s for s in stages.values() if s.rows_in or s.seconds]
    report_obj = PrepareReport(
        out_dir=out, method=method_name, kind=kind, mapping=cmap.columns(), files=files, rows_read=rows_read,
        rows_written=rows_written, rejects=reject_counts, rejects_path=rejects_path,
        manifest_path=join(out, "manifest.json"), sanitize_hits=dict(hits),
        filters={k: dict(v) for k, v in filter_counts.items()}, validation=report, stages=stage_list,
        seconds=seconds, peak_rss=max(s.peak_rss for s in stages.values()),
    )
    write_json_atomic(report_obj.manifest_path, _manifest(
        report_obj, input=input, model=mdl, kind=kind, ratios=ratios, seed=seed, format=format,
        sanitizer=sanitizer, filters=filters, too_long=too_long, labels=labels, stratify=stratify,
        files_sha={name: file_sha256(path) for name, path in files.items()},
    ), indent=2, ensure_ascii=True, default=str)
    return report_obj


def _split_staged(
    staged: str, out: str, *, ratios: tuple[float, ...], seed: int, format: OutputFormat,
    labels: list[str | None] | None, group: bool, threshold: float,
) -> tuple[dict[str, str], dict[str, int]]:
    """Route the staged lines into one file per split (lines are copied, not parsed, for JSONL output)."""
    n = sum(1 for _ in open(staged, "rb"))  # noqa: SIM115 - closed by the garbage collector at once
    groups = None
    if group:
        def texts():
            for _, record in read_jsonl(staged):
                yield record_text(record)

        groups = near_duplicate_groups(texts(), threshold=threshold)
    which = assign_splits(n, ratios, seed=seed, labels=labels, groups=groups)
    names = SPLIT_NAMES[: len(ratios)]
    writers = {name: RecordWriter(join(out, name + SUFFIX[format]), format=format) for name in names}
    try:
        pending: dict[str, list[bytes]] = {name: [] for name in names}
        with open(staged, "rb") as f:
            for i, line in enumerate(f):
                name = names[which[i]]
                pending[name].append(line)
                if len(pending[name]) >= 2_048:
                    writers[name].write_lines(pending[name])
                    pending[name] = []
        for name in names:
            writers[name].write_lines(pending[name])
            writers[name].close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    return {name: w.path for name, w in writers.items()}, {name: w.rows for name, w in writers.items()}


def _manifest(report: PrepareReport, *, input: Any, model: _Model | None, kind: str, ratios: Any, seed: int,
              format: str, sanitizer: Sanitizer | None, filters: list[RowFilter], too_long: str,
              labels: Sequence[str] | None, stratify: bool, files_sha: dict[str, str]) -> dict[str, Any]:
    from mixforge import __version__

    inputs = [os.fspath(p) for p in ([input] if isinstance(input, str | os.PathLike) else input)]
    schema = {"messages": {"id": "string", "messages": "list<{role: string, content: string}>"},
              "text": {"id": "string", "text": "string"},
              "preference": {"id": "string", "prompt": "list<{role: string, content: string}>",
                             "chosen": "string", "rejected": "string"}}[kind]
    if "label" in report.mapping:
        schema = {**schema, "label": "string"}
    steps: list[dict[str, Any]] = [
        {"step": "load", "inputs": inputs},
        {"step": "transform", "mapping": report.mapping, "kind": kind},
    ]
    if sanitizer is not None:
        steps.append({"step": "sanitize", "patterns": sanitizer.patterns, "strip_whitespace": sanitizer.strip_whitespace})
    steps.append({"step": "validate", "model": model.name if model else None,
                  "max_seq_len": model.max_seq_len if model else None, "too_long": too_long,
                  "labels": sorted(labels) if labels is not None else None})
    for f in filters:
        params = {"quality": lambda f: vars(f.quality), "language": lambda f: {"languages": sorted(f.languages)},
                  "fuzzy_dedup": lambda f: {"threshold": f._near.threshold, "num_perm": f._near.num_perm,
                                            "ngram": f._near.ngram}}.get(f.name, lambda f: {})(f)
        steps.append({"step": f"filter:{f.name}", **params})
    if ratios:
        steps.append({"step": "split", "ratios": list(ratios), "seed": seed, "stratify_by_label": stratify})
    steps.append({"step": "save", "format": format})
    return {
        "mixforge_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": report.method,
        "kind": kind,
        "schema": schema,
        "files": {name: {"path": path, "rows": report.rows_written[name], "sha256": files_sha[name]}
                  for name, path in report.files.items()},
        "rows_read": report.rows_read,
        "rejects": {"path": report.rejects_path, "rows": report.rows_rejected, "by_rule": dict(report.rejects)},
        "sanitize_hits": report.sanitize_hits,
        "filters": report.filters,
        "validation": report.validation.to_dict(),
        "steps": steps,
        "stages": {s.name: s.to_dict() for s in report.stages},
    }


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def validate_input(
    input: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    mapping: ColumnMapping | Mapping[str, str] | str | None = None,
    method: str | TrainingMethod = "sft_lora",
    model: str | None = None,
    max_seq_len: int | None = None,
    labels: Sequence[str] | None = None,
    min_rows: int | None = None,
    max_rows: int | None = None,
    input_format: Format | None = None,
    json_key: str | None = None,
    input_split: str = "train",
    strict: bool = False,
    batch_size: int = 2_048,
) -> tuple[ValidationReport, Counter[str]]:
    """Check `input` as it is (no sanitizing, nothing written): the validation report, plus the rows that
    could not even be read or mapped, per "stage/rule". `strict=True` raises DataError when anything failed."""
    kind: RecordKind = RECORD_KIND[parse_method(method)]
    read = {"format": input_format, "json_key": json_key, "split": input_split}
    cmap = resolve_mapping(input, mapping, **read)
    check_shape(cmap, kind)
    mdl = _load_model(model, max_seq_len)
    validator = Validator(kind=kind, reserved=build_sanitizer(reserved=mdl.reserved if mdl else []),
                          lengths=TokenLengths(mdl.tokenizer, kind=kind, max_seq_len=mdl.max_seq_len) if mdl else None,
                          labels=labels, too_long="reject")
    unreadable: Counter[str] = Counter()
    kept = 0
    for rows, bad in iter_batches(input, batch_size=batch_size, **read):
        for r in bad:
            unreadable[f"{r.stage}/{r.rule}"] += 1
            validator.report.note(r)
            validator.report.rows_checked += 1
            validator.report.rows_failed += 1
        rows, bad = transform(rows, mapping=cmap, kind=kind)
        for r in bad:
            unreadable[f"{r.stage}/{r.rule}"] += 1
            validator.report.note(r)
            validator.report.rows_checked += 1
            validator.report.rows_failed += 1
        rows, _ = validator(rows)
        kept += len(rows)
    report = validator.finish(rows_kept=kept, min_rows=min_rows, max_rows=max_rows)
    if strict:
        report.raise_if_failed()
    return report, unreadable
