"""The seed's dataset loaders, as a thin layer over `mixforge.data`:

    loader = JSONLDatasetLoader(question="question", answer="answer")
    loader.load("training_data.jsonl")
    loader.show(n=3)                                                  # raw rows
    loader.sanitize(model="tiny-chat")
    loader.transform(method=TrainingMethod.SFT_LORA, model="tiny-chat")
    loader.show(n=3)                                                  # chat messages
    report = loader.validate(method=TrainingMethod.SFT_LORA, model="tiny-chat")
    train, val, test = loader.split(0.9, 0.05, 0.05, seed=0)
    loader.save("out/train.jsonl")                                    # + validation.jsonl, test.jsonl beside it

Each verb records a setting; `validate`, `split` and `save` run the streaming `prepare` recipe with them (in a
private temporary directory, reused while the settings stay the same), so nothing is held in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape

from mixforge.data.load import Format, head, read_prepared
from mixforge.data.mapping import parse_mapping
from mixforge.data.pipeline import PrepareReport, prepare, transform_head
from mixforge.data.sanitize import Action, build_sanitizer
from mixforge.data.validate import ValidationReport
from mixforge.data.write import join
from mixforge.errors import DataError
from mixforge.io.atomic import AtomicFile
from mixforge.methods import TrainingMethod, parse_method


@dataclass
class PreparedSplit:
    """One split written by `DatasetLoader.split`: iterate it, count it, preview it."""

    name: str
    path: str
    rows: int
    owner: Any = field(default=None, repr=False, compare=False)  # keeps the loader (and its files) alive

    def __len__(self) -> int:
        return self.rows

    def __iter__(self) -> Iterator[dict]:
        return read_prepared(self.path)

    def show(self, n: int = 5) -> list[dict]:
        records = [r for _, r in zip(range(n), self, strict=False)]
        _print_records(records, title=f"{self.name}: {self.rows:,} rows")
        return records


class DatasetLoader:
    """Column mapping at construction (leave every column out to guess it from the file), then the seed's verbs.
    Every verb returns the loader, except `show` (the rows), `validate` (the report) and `split` (the splits)."""

    format: Format | None = None  # the subclasses pin a format; None detects it from the file name

    def __init__(
        self,
        *,
        question: str | None = None,
        answer: str | None = None,
        system: str | None = None,
        instruction: str | None = None,
        input: str | None = None,
        output: str | None = None,
        messages: str | None = None,
        conversations: str | None = None,
        prompt: str | None = None,
        chosen: str | None = None,
        rejected: str | None = None,
        text: str | None = None,
        label: str | None = None,
        id: str | None = None,
        json_key: str | None = None,
    ) -> None:
        columns = {"question": question, "answer": answer, "system": system, "instruction": instruction,
                   "input": input, "output": output, "messages": messages, "conversations": conversations,
                   "prompt": prompt, "chosen": chosen, "rejected": rejected, "text": text, "label": label, "id": id}
        self.mapping = parse_mapping({k: v for k, v in columns.items() if v is not None} or None)
        self.json_key = json_key
        self._input: str | None = None
        self._method: str = "sft_lora"
        self._model: str | None = None
        self._transformed = False
        self._sanitize: dict[str, Any] | None = None
        self._filters: dict[str, Any] = {"dedup": "none", "quality": False, "languages": None}
        self._split: dict[str, Any] | None = None
        self._runs: dict[tuple, PrepareReport] = {}
        self._workdir: str | None = None

    # ---- the seed's verbs -----------------------------------------------------------------------------------
    def load(self, path: str | os.PathLike[str]) -> DatasetLoader:
        """Point the loader at a file (any fsspec path); reads only the first row to check the mapping."""
        self._input = os.fspath(path)
        self._runs.clear()
        if not head(self._input, 1, format=self.format, json_key=self.json_key):
            raise DataError("no readable rows", path=self._input, hint="the file is empty or every row is malformed")
        return self

    def show(self, n: int = 5) -> list[dict]:
        """Print the first `n` rows as a table: raw before `transform`, canonical records after it."""
        source = self._need_input()
        if not self._transformed:
            records = [r.record for r in head(source, n, format=self.format, json_key=self.json_key)]
            _print_records(records, title=f"{source}: first {len(records)} rows")
            return records
        sanitizer = self._sanitizer()
        rows, rejects = transform_head(source, mapping=self.mapping, method=self._method, sanitizer=sanitizer, n=n,
                                       format=self.format, json_key=self.json_key)
        records = [r.record for r in rows]
        _print_records(records, title=f"{source}: first {len(records)} rows as {self._method} records")
        for r in rejects:
            _console().print(f"[yellow]{escape(r.where())}[/]: {escape(r.reason)}", highlight=False)
        return records

    def sanitize(self, model: str | None = None, *, actions: Mapping[str, Action] | None = None,
                 reserved_action: Action = "strip", marker_action: Action = "escape") -> DatasetLoader:
        """Escape or strip the strings that collide with `model`'s chat template (and the seed's markers)."""
        self._model = model or self._model
        self._sanitize = {"actions": dict(actions or {}), "reserved_action": reserved_action,
                          "marker_action": marker_action}
        return self

    def transform(self, method: str | TrainingMethod = TrainingMethod.SFT_LORA,
                  model: str | None = None) -> DatasetLoader:
        """Map rows to `method`'s canonical records (chat messages for SFT, text for CPT, preference for DPO)."""
        self._method = parse_method(method)
        self._model = model or self._model
        self._transformed = True
        return self

    def filter(self, *, dedup: str = "exact", quality: bool = True, languages: list[str] | None = None,
               fuzzy_threshold: float = 0.8) -> DatasetLoader:
        """Drop duplicates ('exact' or 'fuzzy'), low-quality rows and rows in other languages."""
        self._filters = {"dedup": dedup, "quality": quality, "languages": languages,
                         "fuzzy_threshold": fuzzy_threshold}
        return self

    def validate(self, method: str | TrainingMethod | None = None, model: str | None = None, *,
                 max_seq_len: int | None = None, strict: bool = False) -> ValidationReport:
        """Run the pipeline and return its validation report (printed); strict=True raises on any problem."""
        if method is not None:
            self.transform(method, model)
        self._model = model or self._model
        report = self._run(max_seq_len=max_seq_len, strict=strict)
        v = report.validation
        rejected = report.rows_rejected
        _console().print(v.summary(), highlight=False, markup=False)
        if v.ok and not rejected:
            _console().print("[green]Validation completed[/]")
        else:
            _console().print(f"[yellow]Validation completed with problems[/]: {rejected:,} rows set aside "
                             f"(reasons in {report.rejects_path})")
        return v

    def split(self, train: float = 0.9, validation: float = 0.05, test: float = 0.05, *, seed: int = 0,
              stratify: bool = True) -> tuple[PreparedSplit, ...]:
        """Seeded train/validation/test split (stratified by label; near-duplicates kept on one side)."""
        ratios = (train, validation, test) if test else (train, validation)
        self._split = {"split": ratios, "seed": seed, "stratify": stratify}
        report = self._run()
        return tuple(PreparedSplit(name, path, report.rows_written[name], owner=self)
                     for name, path in report.files.items())

    def save(self, path: str | os.PathLike[str], *, format: str | None = None) -> str:
        """Write the prepared rows to `path` (any fsspec path), atomically; after `split`, `path` gets the train
        rows and validation/test files go beside it, with manifest.json. Returns `path`."""
        target = os.fspath(path)
        fmt = format or ("parquet" if target.endswith(".parquet") else "jsonl")
        report = self._run(format=fmt)
        base = target.rsplit("/", 1)[0] if "/" in target else "."
        for name, src in report.files.items():
            _copy(src, target if name == "train" else join(base, os.path.basename(src)))
        _copy(report.manifest_path, join(base, "manifest.json"))
        _copy(report.rejects_path, join(base, "rejects.jsonl"))
        return target

    # ---- plumbing ---------------------------------------------------------------------------------------------
    def _need_input(self) -> str:
        if self._input is None:
            raise DataError("no data loaded", hint="call loader.load(PATH) first")
        return self._input

    def _sanitizer(self):
        if self._sanitize is None:
            return None
        reserved: list[str] = []
        if self._model is not None:
            from mixforge.models.registry import model_info

            reserved = model_info(self._model, with_lora_targets=False).reserved_strings
        return build_sanitizer(reserved=reserved, **self._sanitize)

    def _run(self, *, max_seq_len: int | None = None, strict: bool = False, format: str = "jsonl") -> PrepareReport:
        source = self._need_input()
        settings = {
            "mapping": self.mapping, "method": self._method, "model": self._model, "max_seq_len": max_seq_len,
            "sanitize_text": self._sanitize is not None, **(self._sanitize and {
                "sanitize_actions": self._sanitize["actions"], "reserved_action": self._sanitize["reserved_action"],
                "marker_action": self._sanitize["marker_action"]} or {}),
            **self._filters, **(self._split or {}), "format": format, "strict": strict,
        }
        key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
        if key not in self._runs:
            if self._workdir is None:
                self._workdir = tempfile.mkdtemp(prefix="mixforge-loader-")
            out = os.path.join(self._workdir, f"run{len(self._runs)}")
            self._runs[key] = prepare(source, out_dir=out, input_format=self.format, json_key=self.json_key,
                                      min_rows=1, **settings)
        return self._runs[key]

    def __del__(self) -> None:
        if getattr(self, "_workdir", None):
            shutil.rmtree(self._workdir, ignore_errors=True)


class JSONLDatasetLoader(DatasetLoader):
    """JSON lines: one object per line."""

    format = "jsonl"


class JSONDatasetLoader(DatasetLoader):
    """One JSON document: a list of records, or an object holding one (name it with json_key=)."""

    format = "json"


class CSVDatasetLoader(DatasetLoader):
    """CSV or TSV with a header row (the delimiter is detected)."""

    format = "csv"


class ParquetDatasetLoader(DatasetLoader):
    """Parquet files."""

    format = "parquet"


# ---- output ------------------------------------------------------------------------------------------------------
def _console():
    from rich.console import Console

    return Console()


def _print_records(records: list[dict], *, title: str, width: int = 80) -> None:
    from rich.table import Table

    columns: list[str] = []
    for r in records:
        columns.extend(k for k in r if k not in columns)
    table = Table(*columns, title=title, show_lines=True)
    for r in records:
        table.add_row(*(_cell(r.get(c), width) for c in columns))
    _console().print(table)


def _cell(value: Any, width: int):
    from rich.text import Text

    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        text = "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in value)
    else:
        text = "" if value is None else str(value)
    return Text(text if len(text) <= width * 3 else text[: width * 3] + "…")  # Text: no markup parsing


def _copy(src: str, dst: str) -> None:
    import fsspec

    out = AtomicFile(dst)
    try:
        with fsspec.open(src, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                out.write(block)
    except BaseException:
        out.abort()
        raise
    out.commit()
