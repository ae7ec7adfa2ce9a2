"""The catalogue of general ("replay") data: categories and the sources that fill them.

Three kinds of source fill a category:
- embedded: a JSONL file the package ships, `mixforge/assets/general/<category>/train.jsonl` (canonical records;
  works offline; the quickstart's data);
- hub: an open dataset on the Hugging Face hub, with its config, split, column mapping and licence recorded
  here (needs a network the first time; `datasets` caches it);
- path: the user's own file (JSONL of canonical records, or any columns mapped with `columns`);
- self: records the model being tuned writes itself before training (`mixforge.replay`); the source has no
  location until then, and `with_generated_files` points it at the generated file of its category.

`general_data` picks what fills each category: "auto" (embedded data where the package ships it, the hub
otherwise), "embedded", "hub", "self" (the model's own generations), or "none" (only the user's own sources).
The category names are the seed's (`nova_<category>_percent`); `describe()` says what each one is for.

Licences and columns were copied from each dataset's card when this catalogue was written and were not
re-checked offline: read the card before you train on a source.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from mixforge.errors import DataError
from mixforge.io.jsonl import read_jsonl

GeneralData = Literal["auto", "embedded", "hub", "self", "none"]
SourceKind = Literal["embedded", "hub", "path", "self"]
RecordFormat = Literal["messages", "sharegpt", "qa", "text"]

# The seed's categories, in the seed's order (its `nova_<category>_percent` keys), with what each is for.
CATEGORIES: dict[str, str] = {
    "agents": "tool and function calling, multi-step agent turns",
    "baseline": "core factual knowledge and general instructions",
    "chat": "open-ended multi-turn conversation",
    "factuality": "short factual question answering",
    "identity": "who the assistant is and what it can do",
    "long-context": "answers that need long inputs",
    "math": "grade-school to competition arithmetic and algebra",
    "rai": "responsible AI: refusals and safe completions",
    "instruction-following": "following format and constraint instructions",
    "stem": "science, technology and engineering questions",
    "planning": "plans, schedules and analytical reasoning",
    "reasoning-chat": "conversation with a visible reasoning trace",
    "reasoning-code": "programming with a reasoning trace",
    "reasoning-factuality": "factual questions answered with a reasoning trace",
    "reasoning-instruction-following": "constrained instructions with a reasoning trace",
    "reasoning-math": "mathematics with a reasoning trace",
    "reasoning-planning": "puzzles and planning with a reasoning trace",
    "reasoning-rag": "answers grounded in given documents, with a reasoning trace",
    "reasoning-rai": "safety behaviour with a reasoning trace",
    "reasoning-stem": "science with a reasoning trace",
    "rag": "answers grounded in given documents",
    "translation": "translation between languages",
}


@dataclass(frozen=True)
class Source:
    """One source of general data. `weight` is relative to the other sources of the same category."""

    name: str  # unique in a mix: "<category>/<short name>", e.g. "math/embedded", "math/gsm8k"
    category: str
    kind: SourceKind
    location: str  # file path (embedded, path) or hub dataset id
    format: RecordFormat = "messages"
    columns: dict[str, str] = field(default_factory=dict)  # canonical field -> the dataset's column
    split: str = "train"
    config: str | None = None  # hub dataset configuration ("main" for gsm8k)
    where: dict[str, Any] = field(default_factory=dict)  # keep only rows whose column equals the value
    license: str = "unknown"
    weight: float = 1.0
    note: str = ""


def _hub(category: str, short: str, hub_id: str, *, fmt: RecordFormat, columns: dict[str, str], license: str,
         split: str = "train", config: str | None = None, where: dict[str, Any] | None = None,
         note: str = "") -> Source:
    return Source(name=f"{category}/{short}", category=category, kind="hub", location=hub_id, format=fmt,
                  columns=columns, split=split, config=config, where=where or {}, license=license, note=note)


_MSG = {"messages": "messages"}
_NEMOTRON = "nvidia/Llama-Nemotron-Post-Training-Dataset"
_AGENTINSTRUCT = "microsoft/orca-agentinstruct-1M-v1"
_OPENTHOUGHTS = {"prompt": "problem", "reasoning": "deepseek_reasoning", "response": "deepseek_solution"}

# One or more open datasets per category. Formats: messages (a list of {role, content}), sharegpt (a list of
# {from, value}), qa (a prompt column and a response column; an optional reasoning column becomes a
# <think>...</think> block before the answer), text (one text column, for continued pre-training).
HUB_SOURCES: tuple[Source, ...] = (
    _hub("agents", "hermes-fc", "NousResearch/hermes-function-calling-v1", fmt="sharegpt",
         columns={"messages": "conversations"}, license="apache-2.0", config="func_calling_singleturn"),
    _hub("baseline", "smoltalk", "HuggingFaceTB/smoltalk", fmt="messages", columns=_MSG, license="apache-2.0",
         config="all"),
    _hub("chat", "ultrachat", "HuggingFaceH4/ultrachat_200k", fmt="messages", columns=_MSG, license="mit",
         split="train_sft"),
    _hub("factuality", "trivia-qa", "mandarjoshi/trivia_qa", fmt="qa",
         columns={"prompt": "question", "response": "answer.value"}, license="apache-2.0", config="rc.nocontext"),
    _hub("identity", "tulu3-hardcoded", "allenai/tulu-3-sft-mixture", fmt="messages", columns=_MSG,
         license="odc-by", where={"source": "ai2-adapt-dev/tulu_hard_coded_repeated_10"},
         note="names the Tulu model: rewrite the identity before use"),
    _hub("long-context", "longalign", "THUDM/LongAlign-10k", fmt="messages", columns=_MSG, license="apache-2.0"),
    _hub("math", "gsm8k", "openai/gsm8k", fmt="qa", columns={"prompt": "question", "response": "answer"},
         license="mit", config="main"),
    _hub("math", "metamathqa", "meta-math/MetaMathQA", fmt="qa", columns={"prompt": "query", "response": "response"},
         license="mit"),
    _hub("rai", "coconot", "allenai/coconot", fmt="qa", columns={"prompt": "prompt", "response": "response"},
         license="odc-by", config="original"),
    _hub("instruction-following", "tulu3-if", "allenai/tulu-3-sft-personas-instruction-following",
         fmt="messages", columns=_MSG, license="odc-by"),
    _hub("stem", "webinstruct", "TIGER-Lab/WebInstructSub", fmt="qa",
         columns={"prompt": "question", "response": "answer"}, license="apache-2.0"),
    _hub("planning", "agentinstruct-analytical", _AGENTINSTRUCT, fmt="messages", columns=_MSG,
         license="cdla-permissive-2.0", split="analytical_reasoning", note="messages is a JSON string"),
    _hub("reasoning-chat", "nemotron-chat", _NEMOTRON, fmt="qa", columns={"prompt": "input", "response": "output"},
         license="cc-by-4.0", config="SFT", split="chat", where={"reasoning": "on"}),
    _hub("reasoning-code", "nemotron-code", _NEMOTRON, fmt="qa", columns={"prompt": "input", "response": "output"},
         license="cc-by-4.0", config="SFT", split="code", where={"reasoning": "on"}),
    _hub("reasoning-factuality", "openthoughts-science", "open-thoughts/OpenThoughts-114k", fmt="qa",
         columns=_OPENTHOUGHTS, license="apache-2.0", config="metadata", where={"domain": "biology"},
         note="closest open match: science questions with reasoning traces"),
    _hub("reasoning-instruction-following", "nemotron-chat-if", _NEMOTRON, fmt="qa",
         columns={"prompt": "input", "response": "output"}, license="cc-by-4.0", config="SFT", split="chat",
         where={"reasoning": "on", "category": "chat"},
         note="closest open match: Nemotron's reasoning chat split, which holds constrained instructions"),
    _hub("reasoning-math", "nemotron-math", _NEMOTRON, fmt="qa", columns={"prompt": "input", "response": "output"},
         license="cc-by-4.0", config="SFT", split="math", where={"reasoning": "on"}),
    _hub("reasoning-planning", "openthoughts-puzzle", "open-thoughts/OpenThoughts-114k", fmt="qa",
         columns=_OPENTHOUGHTS, license="apache-2.0", config="metadata", where={"domain": "puzzle"}),
    _hub("reasoning-rag", "agentinstruct-rag", _AGENTINSTRUCT, fmt="messages", columns=_MSG,
         license="cdla-permissive-2.0", split="rag", note="closest open match: grounded answers with explanations"),
    _hub("reasoning-rai", "nemotron-safety", _NEMOTRON, fmt="qa", columns={"prompt": "input", "response": "output"},
         license="cc-by-4.0", config="SFT", split="safety"),
    _hub("reasoning-stem", "nemotron-science", _NEMOTRON, fmt="qa", columns={"prompt": "input", "response": "output"},
         license="cc-by-4.0", config="SFT", split="science", where={"reasoning": "on"}),
    _hub("rag", "rag-12000", "neural-bridge/rag-dataset-12000", fmt="qa",
         columns={"prompt": "question", "context": "context", "response": "answer"}, license="apache-2.0"),
    _hub("translation", "opus-100-en-fr", "Helsinki-NLP/opus-100", fmt="qa",
         columns={"prompt": "translation.en", "response": "translation.fr"}, license="unknown (OPUS corpora terms)",
         config="en-fr", note="prompt is the English sentence; prefix an instruction when preparing"),
)


def embedded_root() -> Path:
    """The folder of the package's general data: `<category>/train.jsonl` files."""
    return Path(str(resources.files("mixforge"))) / "assets" / "general"


def embedded_sources() -> dict[str, Source]:
    """Category -> the embedded source the package ships for it (categories without a file are absent)."""
    root = embedded_root()
    found: dict[str, Source] = {}
    if root.is_dir():
        for path in sorted(root.glob("*/train.jsonl")):
            category = path.parent.name
            found[category] = Source(name=f"{category}/embedded", category=category, kind="embedded",
                                     location=str(path), license="apache-2.0 (mixforge)")
    return found


def hub_sources() -> dict[str, list[Source]]:
    by_category: dict[str, list[Source]] = {}
    for src in HUB_SOURCES:
        by_category.setdefault(src.category, []).append(src)
    return by_category


def category_sources(general_data: GeneralData = "auto", user_sources: Sequence[Source] = ()) -> dict[str, list[Source]]:
    """Category -> its sources under `general_data`, plus the user's own sources (added to their category)."""
    embedded, hub = embedded_sources(), hub_sources()
    out: dict[str, list[Source]] = {}
    for category in [*CATEGORIES, *sorted(set(embedded) - set(CATEGORIES))]:
        if general_data == "embedded" or (general_data == "auto" and category in embedded):
            chosen = [embedded[category]] if category in embedded else []
        elif general_data in ("hub", "auto"):
            chosen = list(hub.get(category, []))
        elif general_data == "self":
            chosen = [self_source(category)]
        else:
            chosen = []
        out[category] = chosen
    for src in user_sources:
        out.setdefault(src.category, []).append(src)
    return out


def self_source(category: str) -> Source:
    """A category's self-generated source, before generation (no location yet)."""
    return Source(name=f"{category}/self", category=category, kind="self", location="",
                  license="generated by the tuned model (its own licence applies)")


def with_generated_files(sources: dict[str, Source], files: dict[str, str], *,
                         fmt: RecordFormat = "messages") -> dict[str, Source]:
    """The sources with every self source pointed at the generated file of its category (canonical records)."""
    from dataclasses import replace

    missing = sorted({s.category for s in sources.values() if s.kind == "self"} - set(files))
    if missing:
        raise DataError(f"no generated records for categories {', '.join(missing)}")
    return {name: replace(src, location=str(files[src.category]), format=fmt) if src.kind == "self" else src
            for name, src in sources.items()}


# ---------------------------------------------------------------- reading a source as canonical records


def _column(row: dict[str, Any], dotted: str) -> Any:
    """`answer.value` reads row["answer"]["value"]."""
    value: Any = row
    for part in dotted.split("."):
        value = value[part]
    return value


def to_record(row: dict[str, Any], *, fmt: RecordFormat, columns: dict[str, str], rid: str) -> dict[str, Any]:
    """One dataset row -> a canonical record ({"id", "messages"} or {"id", "text"}). Raises KeyError on a
    missing column (the caller locates it)."""
    if fmt == "text":
        return {"id": rid, "text": str(_column(row, columns.get("text", "text")))}
    if fmt in ("messages", "sharegpt"):
        msgs = _column(row, columns.get("messages", "messages"))
        if isinstance(msgs, str):
            msgs = json.loads(msgs)
        if fmt == "sharegpt":
            roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                     "system": "system", "tool": "user", "function_call": "assistant"}
            msgs = [{"role": roles.get(m["from"], "user"), "content": m["value"]} for m in msgs]
        return {"id": rid, "messages": [{"role": m["role"], "content": m["content"]} for m in msgs]}
    prompt = _column(row, columns.get("prompt", "prompt"))
    if isinstance(prompt, list):  # a list of messages (Nemotron's input)
        prompt = "\n\n".join(m["content"] for m in prompt)
    if "context" in columns:
        prompt = f"{_column(row, columns['context'])}\n\n{prompt}"
    answer = str(_column(row, columns.get("response", "response")))
    if "reasoning" in columns:
        answer = f"<think>\n{_column(row, columns['reasoning'])}\n</think>\n{answer}"
    return {"id": rid, "messages": [{"role": "user", "content": str(prompt)},
                                    {"role": "assistant", "content": answer}]}


def read_source(source: Source) -> Iterator[dict[str, Any]]:
    """Stream a source's records in canonical form (`read_source_rows` without the row numbers)."""
    return (record for _, record in read_source_rows(source))


def read_source_rows(source: Source) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream (row, record) for a source's records in canonical form; `row` is the record's line in its file
    (from 1, blank and filtered-out lines counted) or its position in a hub split, so `mix trace` cites it.
    Embedded and path sources that are already canonical (no `columns`) are passed through as written; hub
    sources go through `datasets` (network or cache)."""
    if source.kind == "self" and not source.location:
        raise DataError(f"source {source.name!r} is generated by the model before training and was not generated",
                        hint="train through mixforge (it generates first), or run `mixforge replay generate`")
    if source.kind in ("embedded", "path", "self"):
        path = Path(source.location)
        if not path.is_file():
            raise DataError("source file not found", path=str(path), hint="`mixforge mix catalog` lists the sources")
        for row_no, row in read_jsonl(path):
            if source.where and any(row.get(k) != v for k, v in source.where.items()):
                continue
            try:
                yield row_no, row if not source.columns else to_record(
                    row, fmt=source.format, columns=source.columns, rid=str(row.get("id", f"{source.name}:{row_no}")))
            except (KeyError, TypeError) as exc:
                raise DataError(f"cannot read record: {exc!r}", path=str(path), row=row_no) from exc
        return
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise ImportError("hub sources need `datasets`: pip install datasets") from exc
    ds = datasets.load_dataset(source.location, source.config, split=source.split, streaming=True)
    for row_no, row in enumerate(ds, 1):
        if source.where and any(row.get(k) != v for k, v in source.where.items()):
            continue
        try:
            yield row_no, to_record(row, fmt=source.format, columns=source.columns, rid=f"{source.location}:{row_no}")
        except (KeyError, TypeError) as exc:
            raise DataError(f"column mapping does not fit: {exc!r}", path=source.location, row=row_no) from exc
