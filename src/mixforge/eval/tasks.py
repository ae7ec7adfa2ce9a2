"""What to evaluate (`EvalTask`), how its data are read, and what comes out (`TaskResult`, `EvalResult`).

Data formats (JSONL, one object a line; `.json` holding a list also works; a name that is not a file is read
as a Hugging Face hub dataset, e.g. `cais/mmlu` with `subset="all"`, `split="test"`):

- multiple choice (MMLU's format): {"question": str, "choices": [str, ...], "answer": 1 | "B",
  "subject": str (optional), "id": str (optional)}
- classification: {"messages": [..., {"role": "user", ...}], "label": str} (a final assistant turn is the
  label when "label" is absent, and is never shown to the model) or {"text": str, "label": str}; with
  `text_field="feedback"` the prompt is that field's text as one user turn
- generative QA: {"question": str | "messages": [...], "answer": str | "answers": [str, ...]}
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mixforge.errors import ConfigError, DataError
from mixforge.io.jsonl import read_jsonl

Kind = Literal["multiple_choice", "classification", "generative"]
LETTERS = string.ascii_uppercase

# The headline metric of each kind, used by tables and the forgetting report.
MAIN_METRIC: dict[str, str] = {"multiple_choice": "acc", "classification": "macro_f1", "generative": "f1"}


class EvalTask(BaseModel):
    """One evaluation task: a name (the key in results), a kind, a data file and its settings.

    Build one with `EvalTask.multiple_choice(...)`, `EvalTask.classification(...)` or `EvalTask.generative(...)`.
    Every field takes part in the result cache's key, so changing any of them re-evaluates.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Key of this task in the results (e.g. 'general', 'domain').")
    kind: Kind = Field(description="multiple_choice | classification | generative")
    path: str = Field(min_length=1, description="A local JSONL/JSON file, or a hub dataset id.")
    subset: str | None = Field(None, description="Hub dataset configuration (e.g. 'all' for cais/mmlu).")
    split: str = Field("test", description="Hub dataset split.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N records.")
    chat: bool | None = Field(
        None, description="Render prompts with the model's chat template; None: when the tokenizer has one."
    )
    system_prompt: str | None = Field(None, description="An optional system turn before every prompt.")
    # ---- multiple choice -------------------------------------------------------------------------------------
    shots: int = Field(0, ge=0, description="Solved examples shown before each question (k-shot).")
    shots_path: str | None = Field(
        None, description="Where shots come from; default: the task's own file, never the question itself."
    )
    shots_split: str = Field("dev", description="Hub dataset split the shots come from (MMLU: dev).")
    seed: int = Field(0, description="Seed of the shot selection (the same seed gives the same prompts).")
    answer_format: Literal["letter", "text"] = Field(
        "letter", description="Score the choice letters ('A', 'B', ...) or the choices' own text."
    )
    prompt_style: Literal["mmlu", "question"] = Field(
        "mmlu", description="mmlu: header, question and lettered options, then 'Answer:'; question: the question "
        "alone, each choice's text scored as the answer (cloze style, as lm-eval's *_continuation tasks; needs "
        "answer_format='text')."
    )
    header: Literal["mixforge", "harness"] = Field(
        "mixforge", description="The line above the first question (prompt_style 'mmlu'). mixforge: 'The following "
        "is a multiple choice question about {subject}.'; harness: lm-evaluation-harness's MMLU prompt, 'The "
        "following are multiple choice questions (with answers) about {subject}.' and the question stripped, so "
        "scores compare with published MMLU numbers."
    )
    # ---- classification --------------------------------------------------------------------------------------
    labels: str | tuple[str, ...] | None = Field(
        None, description="The label set (a file, one label a line, or a list); generation is constrained to it."
    )
    text_field: str | None = Field(
        None, description="Read the prompt from this string field (e.g. 'feedback') instead of messages/text."
    )
    normalize: Literal["none", "strip", "casefold"] = Field(
        "casefold",
        description="Label normalization before comparing: none; strip (trim, collapse inner whitespace); "
        "casefold (strip, then case-insensitive).",
    )
    # ---- classification and generative -----------------------------------------------------------------------
    max_new_tokens: int = Field(32, ge=1, description="Generation budget when generation is unconstrained.")

    @model_validator(mode="after")
    def _check_kind_fields(self) -> EvalTask:
        problems = []
        if self.prompt_style == "question" and self.answer_format != "text":
            problems.append("prompt_style 'question' shows no options, so it needs answer_format='text'")
        if self.prompt_style == "question" and self.header != "mixforge":
            problems.append("header: prompt_style 'question' has no header line")
        if self.kind != "multiple_choice" and (self.shots or self.shots_path):
            problems.append(f"shots: only multiple-choice tasks take shots (task {self.name!r} is {self.kind})")
        if self.kind == "multiple_choice" and self.text_field:
            problems.append(f"text_field: multiple-choice tasks read 'question' (task {self.name!r})")
        if self.kind != "classification" and self.labels is not None:
            problems.append(f"labels: only classification tasks take a label set (task {self.name!r})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def multiple_choice(cls, name: str, *, path: str, shots: int = 0, **settings: Any) -> EvalTask:
        """MMLU-format questions scored by the log-likelihood of each choice."""
        return cls._build(name=name, kind="multiple_choice", path=str(path), shots=shots, **settings)

    @classmethod
    def classification(
        cls, name: str, *, path: str, labels: str | list[str] | None = None, **settings: Any
    ) -> EvalTask:
        """Labelled chat records; the model generates the label, constrained to `labels` when given."""
        labels_value = tuple(labels) if isinstance(labels, list | tuple) else (str(labels) if labels else None)
        return cls._build(name=name, kind="classification", path=str(path), labels=labels_value, **settings)

    @classmethod
    def generative(cls, name: str, *, path: str, **settings: Any) -> EvalTask:
        """Questions with reference answers, scored by exact match and token F1."""
        return cls._build(name=name, kind="generative", path=str(path), **settings)

    @classmethod
    def _build(cls, **values: Any) -> EvalTask:
        from pydantic import ValidationError

        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(
                [f"{'.'.join(map(str, e['loc'])) or 'task'}: {e['msg']}" for e in exc.errors()]
            ) from None

    def settings(self) -> dict[str, Any]:
        """The task as a plain dict (what the cache key and the results file record)."""
        return self.model_dump(mode="json")


# ---- records -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MCQuestion:
    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    subject: str | None = None


@dataclass(frozen=True)
class ClsExample:
    id: str
    messages: tuple[dict[str, str], ...]  # the prompt turns (system/user/...), never the answer
    label: str


@dataclass(frozen=True)
class QAExample:
    id: str
    messages: tuple[dict[str, str], ...]
    answers: tuple[str, ...]


def read_records(path: str, *, subset: str | None = None, split: str = "test") -> list[dict[str, Any]]:
    """Rows of a local .jsonl/.json file, or of a hub dataset when `path` is not a file."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise DataError("a .json task file must hold a list of objects", path=str(p))
            return data
        return [row for _, row in read_jsonl(p)]
    if p.suffix in {".jsonl", ".json"} or path.startswith((".", "/", "~")):
        raise DataError("file not found", path=str(p))
    try:  # a hub dataset id (needs network access or the local HF cache)
        from datasets import load_dataset

        return [dict(r) for r in load_dataset(path, subset, split=split)]
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot read it"
        raise DataError(
            f"cannot load hub dataset ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})", path=path
        ) from None


def parse_mc(rows: list[dict[str, Any]], *, path: str, prefix: str = "q") -> list[MCQuestion]:
    out = []
    for n, row in enumerate(rows, 1):
        question = row.get("question", row.get("prompt"))
        if not isinstance(question, str) or not question.strip():
            raise DataError("missing or empty question", path=path, row=n, field="question")
        choices = row.get("choices", row.get("options"))
        if isinstance(choices, dict) and "text" in choices:  # {"label": [...], "text": [...]} (ARC style)
            choices = choices["text"]
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError("choices must be a list of at least two strings", path=path, row=n, field="choices")
        if len(choices) > len(LETTERS):
            raise DataError(f"at most {len(LETTERS)} choices", path=path, row=n, field="choices")
        answer = row.get("answer", row.get("label"))
        if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in LETTERS:
            answer = LETTERS.index(answer.strip().upper())
        elif isinstance(answer, str) and answer.strip().isdigit():
            answer = int(answer.strip())
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise DataError(
                f"answer must be an index below {len(choices)} or a letter, got {answer!r}",
                path=path, row=n, field="answer",
            )
        subject = row.get("subject")
        out.append(MCQuestion(
            id=str(row.get("id", f"{prefix}{n}")),
            question=question,
            choices=tuple(choices),
            answer=answer,
            subject=str(subject) if subject not in (None, "") else None,
        ))
    _check_unique_ids([q.id for q in out], path)
    return out


def _prompt_messages(
    row: dict[str, Any], *, path: str, n: int, answer_field: str, text_field: str | None = None
) -> tuple[list[dict], str | None]:
    """The prompt turns of a record and the answer its final assistant turn carries (if any)."""
    if text_field is not None:
        if not isinstance(row.get(text_field), str):
            raise DataError(f"missing string field {text_field!r}", path=path, row=n, field=text_field)
        return [{"role": "user", "content": row[text_field]}], None
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError("messages must be a non-empty list", path=path, row=n, field="messages")
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str) or "role" not in m:
                raise DataError("each message needs a role and a string content", path=path, row=n,
                                field="messages")
        tail = None
        if messages[-1]["role"] == "assistant":
            tail, messages = messages[-1]["content"], messages[:-1]
        if not messages or messages[-1]["role"] != "user":
            raise DataError("the prompt must end with a user turn", path=path, row=n, field="messages")
        return [{"role": m["role"], "content": m["content"]} for m in messages], tail
    for key in ("text", "question", "prompt"):
        if isinstance(row.get(key), str):
            return [{"role": "user", "content": row[key]}], None
    raise DataError(f"a record needs 'messages' or 'text' (and '{answer_field}')", path=path, row=n,
                    hint="or name the field that holds the prompt: text_field='feedback' "
                    "(CLI: --text-field NAME=feedback)")


def parse_classification(
    rows: list[dict[str, Any]], *, path: str, text_field: str | None = None
) -> list[ClsExample]:
    out = []
    for n, row in enumerate(rows, 1):
        messages, tail = _prompt_messages(row, path=path, n=n, answer_field="label", text_field=text_field)
        label = row.get("label", tail)
        if not isinstance(label, str) or not label.strip():
            raise DataError("missing label (a 'label' field or a final assistant turn)", path=path, row=n,
                            field="label")
        out.append(ClsExample(id=str(row.get("id", f"ex{n}")), messages=tuple(messages), label=label))
    _check_unique_ids([e.id for e in out], path)
    return out


def parse_qa(rows: list[dict[str, Any]], *, path: str, text_field: str | None = None) -> list[QAExample]:
    out = []
    for n, row in enumerate(rows, 1):
        messages, tail = _prompt_messages(row, path=path, n=n, answer_field="answer", text_field=text_field)
        answers = row.get("answers", row.get("answer", tail))
        answers = [answers] if isinstance(answers, str) else answers
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            raise DataError("answer must be a string or a list of strings", path=path, row=n, field="answer")
        out.append(QAExample(id=str(row.get("id", f"ex{n}")), messages=tuple(messages), answers=tuple(answers)))
    _check_unique_ids([e.id for e in out], path)
    return out


def read_labels(labels: str | tuple[str, ...] | list[str]) -> list[str]:
    """A label set from a list, a text file (one label a line) or a JSON file holding a list."""
    if isinstance(labels, list | tuple):
        values = list(labels)
    else:
        p = Path(labels).expanduser()
        if not p.is_file():
            raise DataError("labels file not found", path=str(p))
        if p.suffix == ".json":
            values = json.loads(p.read_text(encoding="utf-8"))
        else:
            values = [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise DataError("the label set must be a non-empty list of non-empty strings", path=str(labels)[:200])
    return values


def _check_unique_ids(ids: list[str], path: str) -> None:
    seen: set[str] = set()
    for n, i in enumerate(ids, 1):
        if i in seen:
            raise DataError(f"duplicate id {i!r}", path=path, row=n, field="id")
        seen.add(i)


# ---- results -------------------------------------------------------------------------------------------------


@dataclass
class TaskResult:
    """What one task produced: headline metrics, per-example records and breakdowns.

    `examples` keeps one dict per question/record, with at least "id" and "correct" (1.0/0.0) for multiple
    choice ("pred", "gold", "logliks" too) and "id", "gold", "pred", "correct" for classification, so paired
    statistics (the report's bootstrap) can line up two checkpoints question by question.
    """

    task: str
    kind: str
    metrics: dict[str, float]
    examples: list[dict[str, Any]]
    details: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    @property
    def main_metric(self) -> str:
        return MAIN_METRIC[self.kind]

    @property
    def score(self) -> float:
        return self.metrics[self.main_metric]

    def per_example(self, key: str = "correct") -> dict[str, Any]:
        """{example id: value}, e.g. per-question correctness or per-example predictions (`key="pred"`)."""
        return {e["id"]: e[key] for e in self.examples}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("cached")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskResult:
        return cls(**{k: v for k, v in d.items() if k != "cached"})


@dataclass
class EvalResult:
    """Results of several tasks on one checkpoint; `result["general"]` is a TaskResult."""

    model: str
    fingerprint: str
    tasks: dict[str, TaskResult]

    def __getitem__(self, name: str) -> TaskResult:
        if name not in self.tasks:
            raise KeyError(f"no task {name!r} in these results (tasks: {', '.join(self.tasks)})")
        return self.tasks[name]

    def metrics(self) -> dict[str, dict[str, float]]:
        return {name: dict(r.metrics) for name, r in self.tasks.items()}

    def table(self) -> str:
        """A plain-text table: one line per task and metric."""
        rows = [("task", "kind", "n", "metric", "value", "cached")]
        for name, r in self.tasks.items():
            for metric, value in r.metrics.items():
                rows.append((name, r.kind, str(len(r.examples)), metric, f"{value:.4f}", "yes" if r.cached else ""))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return f"model: {self.model}\n" + "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "fingerprint": self.fingerprint,
                "tasks": {k: v.to_dict() for k, v in self.tasks.items()}}

    def save(self, path: str | Path) -> Path:
        """Write the results as one JSON file (atomically)."""
        from mixforge.io.atomic import write_json_atomic

        return write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> EvalResult:
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            return cls(model=d["model"], fingerprint=d["fingerprint"],
                       tasks={k: TaskResult.from_dict(v) for k, v in d["tasks"].items()})
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"not a mixforge results file ({type(exc).__name__}: {exc})", path=str(p)) from None
