"""Self-generated replay data: the base model writes the general data that is mixed into its own fine-tune.

    result = generate_replay("Qwen/Qwen2.5-0.5B-Instruct", out_dir="replay/", n=2000, mode="magpie")
    result.files      # category -> JSONL of canonical records; result.manifest: manifest.json

Modes:
- magpie (chat models, arXiv 2406.08464): render the chat template up to where the user's text begins (the
  pre-query template), let the model write the instruction until its end-of-turn, then answer it with the
  normal generation prompt -> {"id", "messages": [user, assistant], "category"};
- prompts: the model answers given prompts (a file or hub dataset read by mixforge's data loaders, or the
  bundled general categories' user turns without their answers) -> the same messages records;
- free (base models, continued pre-training): samples from BOS -> {"id", "text", "category"}.

Every attempt is judged by `replay.filters` (kept, or dropped with one reason); kept + sum(dropped) ==
attempted. Work goes in shards of `shard_size` attempts: each shard's kept records and counts are written
atomically (records, then a `.done.json` marker), so a killed generation resumes after its last complete
shard and ends with the same records as an uninterrupted one. When every category has its count (or the
prompts or `max_attempts` run out) the shards are joined into `<category>.jsonl` files and `manifest.json`
is written last. A folder whose manifest has the same cache key (`replay.cache`) is reused as it is.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mixforge.errors import ConfigError, DataError
from mixforge.io.jsonl import read_jsonl
from mixforge.replay.backends import Backend, BackendName, Completion, choose_backend, load_backend
from mixforge.replay.cache import cache_key, default_dir, prompts_hash
from mixforge.replay.filters import REASONS, Generation, ReplayFilters, ReplayJudge

Mode = Literal["magpie", "prompts", "free"]
MODES: tuple[str, ...] = ("magpie", "prompts", "free")
MANIFEST_FILE = "manifest.json"
PLAN_FILE = "plan.json"
SHARD_DIR = "shards"
DEFAULT_CATEGORY = "general"  # the category of magpie and free records when none is named
_SENTINEL = "\x01MIXFORGE\x01"  # rendered through the chat template to find the text around a turn

Prompt = list[dict[str, str]]  # the turns a model answers: [system?], user, ...


@dataclass(frozen=True)
class ReplayResult:
    """A finished generation: where its records are and what happened to every attempt."""

    out_dir: Path
    files: dict[str, Path]  # category -> JSONL of kept records
    kept: int
    dropped: dict[str, int]  # reason -> attempts dropped for it
    attempted: int
    manifest: Path
    cache_key: str
    fingerprint: str  # the generator's (model + adapter) content hash
    record_format: Literal["messages", "text"]
    tokens_per_s: float
    reused: bool = False  # found finished in out_dir: nothing was generated
    per_category: dict[str, dict[str, int]] = field(default_factory=dict)  # quota, kept, attempted


# ---------------------------------------------------------------------------------------------------------
# prompts: files and hub datasets through the data loaders, or the bundled categories' user turns
# ---------------------------------------------------------------------------------------------------------
_TEXT_KEYS = ("prompt", "question", "instruction", "query", "text")


def row_prompt(row: dict[str, Any], mapping: Mapping[str, str] | None, *, where: str, row_no: int) -> tuple[Prompt, str | None]:
    """(prompt turns, category or None) of one input row. `mapping` names columns (dotted paths) for any of
    prompt/question/instruction/query/text, input, system, messages, conversations and category; without
    one the usual column names are looked for. A final assistant turn (an answer) is dropped."""
    from mixforge.data.mapping import MISSING, ColumnMapping, get_path
    from mixforge.data.messages import RowProblem, conversation

    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - {*_TEXT_KEYS, "input", "system", "messages", "conversations", "category"})
    if unknown:
        raise ConfigError(f"mapping: unknown field(s) {', '.join(unknown)}; use prompt=, question=, instruction=, "
                          "input=, system=, messages=, conversations= or category=")

    def value(key: str) -> Any:
        got = get_path(row, mapping.get(key, key))
        return None if got is MISSING else got

    category = value("category")
    category = str(category) if category is not None else None
    turns_key = next((k for k in ("messages", "conversations") if k in mapping), None)
    if turns_key is None and not mapping.keys() & set(_TEXT_KEYS):
        turns_key = next((k for k in ("messages", "conversations") if isinstance(value(k), list)), None)
    if turns_key is not None:
        try:
            turns = conversation(row, ColumnMapping(**{turns_key: mapping.get(turns_key, turns_key)}))
        except RowProblem as exc:
            raise DataError(exc.reason, path=where, row=row_no, field=exc.field) from None
        while turns and turns[-1]["role"] == "assistant":  # the answer is the model's to write
            turns = turns[:-1]
        if not turns or turns[-1]["role"] != "user":
            raise DataError("the conversation must end with a user turn (after any answer is dropped)",
                            path=where, row=row_no)
        return turns, category
    key = next((k for k in _TEXT_KEYS if k in mapping), None) or next(
        (k for k in _TEXT_KEYS if isinstance(value(k), str)), None)
    text = value(key) if key else None
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"no prompt text (looked for {'column ' + repr(mapping[key]) if key in mapping else ', '.join(_TEXT_KEYS)})",
                        path=where, row=row_no, hint="name the column: mapping={'prompt': 'COLUMN'} (CLI: --map prompt=COLUMN)")
    extra = value("input")
    user = f"{text}\n\n{extra}" if isinstance(extra, str) and extra.strip() else text
    system = value("system")
    turns = ([{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else [])
    return [*turns, {"role": "user", "content": user}], category


def load_prompt_pools(prompts: str | None, *, mapping: Mapping[str, str] | None = None,
                      categories: Sequence[str] | None = None, split: str = "train") -> dict[str, list[Prompt]]:
    """Category -> distinct prompts (first copy wins). From `prompts` (any source the data loaders read: JSONL,
    JSON, CSV, Parquet, a saved or hub dataset) or, without it, from the bundled general categories' records
    with their answers left out. Rows without a category serve every category asked for (or 'general')."""
    from mixforge.data.dedup import normalize

    pools: dict[str, list[Prompt]] = {}
    if prompts is None:
        from mixforge.mix.catalog import embedded_sources, read_source

        shipped = embedded_sources()
        if not categories:
            raise ConfigError("prompts mode needs prompts (a file or hub dataset) or categories",
                              hint=f"the package ships prompt pools for: {', '.join(sorted(shipped))}")
        missing = [c for c in categories if c not in shipped]
        if missing:
            raise ConfigError(f"categories: no bundled prompt pool for {', '.join(missing)}",
                              hint=f"bundled: {', '.join(sorted(shipped))}; or give prompts=FILE")
        for c in categories:
            src = shipped[c]
            pools[c] = [row_prompt(r, None, where=src.location, row_no=i)[0]
                        for i, r in enumerate(read_source(src), 1)]
    else:
        from mixforge.data.load import iter_batches

        shared: list[Prompt] = []
        for rows, _rejects in iter_batches(prompts, split=split):  # malformed rows are the loader's rejects
            for row in rows:
                turns, category = row_prompt(row.record, mapping, where=row.file, row_no=row.row)
                if category is None:
                    shared.append(turns)
                elif not categories or category in categories:
                    pools.setdefault(category, []).append(turns)
        if shared:
            for c in (categories or ([DEFAULT_CATEGORY] if not pools else list(pools))):
                pools.setdefault(c, []).extend(shared)
        if categories:
            missing = [c for c in categories if not pools.get(c)]
            if missing:
                raise DataError(f"no prompts for categories {', '.join(missing)}", path=prompts)
    out: dict[str, list[Prompt]] = {}
    for c, pool in pools.items():
        seen: set[str] = set()
        out[c] = []
        for turns in pool:
            key = normalize("\n".join(f"{m['role']}: {m['content']}" for m in turns))
            if key not in seen:
                seen.add(key)
                out[c].append(turns)
        if not out[c]:
            raise DataError(f"category {c!r} has no prompts", path=prompts)
    return out


def split_counts(n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """n split over the keys in proportion to `weights` by largest remainder (ties: the earlier key)."""
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError("categories: the weights must sum to more than 0")
    exact = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    order = sorted(weights, key=lambda k: (-(exact[k] - counts[k]), list(weights).index(k)))
    for k in order[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


# ---------------------------------------------------------------------------------------------------------
# the chat template: where turns begin and end
# ---------------------------------------------------------------------------------------------------------
def pre_query_ids(tokenizer) -> list[int]:
    """The token ids of the template up to where the user's text begins (Magpie's pre-query template),
    including any default system prompt the template adds."""
    from mixforge.eval.generate import tok_encode

    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("magpie mode needs a chat model: the tokenizer has no chat template",
                          hint="use mode prompts or free for base models")
    text = tokenizer.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False)
    return tok_encode(tokenizer, text.split(_SENTINEL, 1)[0])


def turn_end(tokenizer, role: str) -> tuple[list[int], list[str]]:
    """How the template closes a `role` turn: (stop token ids, stop strings). A special token right after
    the content (<|im_end|>, <|eot_id|>, <end_of_turn>, <|end|>, [/INST] ...) is a stop id; plain text is a
    stop string."""
    if not getattr(tokenizer, "chat_template", None):
        return [], []
    turns = [{"role": "user", "content": _SENTINEL}] if role == "user" else [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": _SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(turns, tokenize=False)
    except Exception:  # noqa: BLE001 - templates raise arbitrary errors for shapes they refuse
        return [], []
    closing = text.rsplit(_SENTINEL, 1)[1]
    if not closing.strip():
        return [], []
    special = {t: i for t, i in zip(tokenizer.all_special_tokens, tokenizer.all_special_ids, strict=True)}
    added = {t.content: i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    stripped = closing.strip()
    for token, tid in sorted({**added, **special}.items(), key=lambda kv: -len(kv[0])):
        if token and stripped.startswith(token):
            return [tid], []
    first_line = stripped.splitlines()[0]
    return [], [first_line]


def eos_ids(backend: Backend) -> list[int]:
    """The tokenizer's EOS and every EOS id the model's generation config names."""
    ids = {backend.tokenizer.eos_token_id} - {None}
    configured = getattr(getattr(getattr(backend, "model", None), "generation_config", None), "eos_token_id", None)
    ids |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return sorted(ids)


def decode(tokenizer, completion: Completion, stop_strings: Sequence[str]) -> str:
    """The completion as text, special tokens kept (a leaked marker must stay visible to the filters),
    cut at the first stop string."""
    text = tokenizer.decode(completion.ids, skip_special_tokens=False)
    for s in stop_strings:
        if s in text:
            text = text.split(s, 1)[0]
    return text.strip()


# ---------------------------------------------------------------------------------------------------------
# shards: planning, generating, writing, reading back
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _State:
    """What the finished shards add up to: enough to plan the next one and to rebuild the dedup state."""

    quota: dict[str, int]
    kept: Counter = field(default_factory=Counter)
    attempted: Counter = field(default_factory=Counter)  # per category: also how far its prompt stream is read
    dropped: Counter = field(default_factory=Counter)  # per reason
    tokens: int = 0
    seconds: float = 0.0
    shards: int = 0


def plan_shard(state: _State, *, slots: int, pool_sizes: Mapping[str, int] | None, wrap: bool,
               attempts_left: int) -> dict[str, int]:
    """Attempts per category in the next shard: each category's shortfall, scaled down to fit `slots`.
    A category whose prompts are used up (and may not repeat: greedy decoding) gets none."""
    need = {}
    for c, q in state.quota.items():
        short = q - state.kept[c]
        if pool_sizes is not None and not wrap:
            short = min(short, pool_sizes[c] - state.attempted[c])
        if short > 0:
            need[c] = short
    room = min(slots, attempts_left)
    if room <= 0 or not need:
        return {}
    if sum(need.values()) <= room:
        return need
    return {c: k for c, k in split_counts(room, need).items() if k}


def _prompt_at(pool: list[Prompt], category: str, i: int, seed: int) -> Prompt:
    """The i-th prompt of a category's stream: seeded permutations of its pool, one after another."""
    epoch, j = divmod(i, len(pool))
    order = list(range(len(pool)))
    random.Random(f"{seed}/{category}/{epoch}").shuffle(order)
    return pool[order[j]]


def _batch_seed(seed: int, shard: int, batch: int, phase: int) -> int:
    return (seed * 1_000_003 + shard * 65_537 + batch * 4 + phase) % (2**31 - 1)


def _shard_paths(out: Path, index: int) -> tuple[Path, Path]:
    base = out / SHARD_DIR / f"shard-{index:05d}"
    return base.with_suffix(".jsonl"), base.with_suffix(".done.json")


def _read_jsonl(path: Path) -> list[dict]:
    return [row for _, row in read_jsonl(path)]


def _as_generation(record: dict) -> Generation:
    if "text" in record:
        return Generation(record["category"], None, record["text"], True)
    return Generation(record["category"], record["messages"][:-1], record["messages"][-1]["content"], True)


# ---------------------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------------------
def generate_replay(  # noqa: C901 - a recipe reads top to bottom
    model: str,
    *,
    out_dir: str | Path | None = None,
    n: int,
    mode: Mode,
    prompts: str | None = None,
    mapping: Mapping[str, str] | None = None,
    categories: Sequence[str] | Mapping[str, float] | None = None,
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    top_p: float = 0.95,
    seed: int = 0,
    batch_size: int = 32,
    device: str | None = None,
    backend: BackendName = "auto",
    adapter: str | None = None,
    filters: ReplayFilters | None = None,
    shard_size: int = 512,
    max_attempts: int | None = None,
    precision: str = "fp32",
    overwrite: bool = False,
    show_progress: bool = True,
    on_shard: Callable[[int, dict[str, Any]], None] | None = None,
) -> ReplayResult:
    """Generate `n` replay records with `model` (see the module docstring).

    `categories`: a list (n split equally) or category -> weight (n split in proportion; weights that sum to
    n are exact counts). In prompts mode each category draws from its own prompt pool; in magpie and free mode
    the categories only label the records. `out_dir` None: the cache folder of this generation's key.
    `max_attempts` (default 4 x n) bounds the attempts when the filters drop much. `on_shard(index, stats)`
    runs after each shard is safely on disk."""
    from mixforge.eval.cache import checkpoint_fingerprint
    from mixforge.io.atomic import write_json_atomic, write_text_atomic

    # ---- settings ------------------------------------------------------------------------------------------
    problems = []
    if mode not in MODES:
        problems.append(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if n < 1:
        problems.append(f"n: must be at least 1, got {n}")
    if batch_size < 1 or shard_size < 1 or max_new_tokens < 1:
        problems.append("batch_size, shard_size and max_new_tokens must be at least 1")
    if temperature < 0 or not 0 < top_p <= 1:
        problems.append(f"temperature must be >= 0 and top_p in (0, 1], got {temperature} and {top_p}")
    if mode != "prompts" and prompts is not None:
        problems.append(f"prompts: only prompts mode answers given prompts (mode is {mode!r})")
    if problems:
        raise ConfigError(problems)
    filters = filters or ReplayFilters()
    weights = ({c: 1.0 for c in categories} if isinstance(categories, Sequence) and not isinstance(categories, str)
               else dict(categories or {}))
    pools: dict[str, list[Prompt]] | None = None
    if mode == "prompts":
        pools = load_prompt_pools(prompts, mapping=mapping, categories=list(weights) or None)
        weights = weights or {c: 1.0 for c in pools}
    weights = weights or {DEFAULT_CATEGORY: 1.0}
    quota = split_counts(n, weights)
    shard_size = -(-shard_size // batch_size) * batch_size  # whole batches only
    max_attempts = max_attempts or 4 * n
    chosen = choose_backend(backend, device)
    record_format: Literal["messages", "text"] = "text" if mode == "free" else "messages"

    # ---- the cache: reuse a finished set, resume an interrupted one ----------------------------------------
    fingerprint = checkpoint_fingerprint(model, adapter=adapter)
    settings = {"n": n, "quota": quota, "max_new_tokens": max_new_tokens, "temperature": temperature,
                "top_p": top_p, "batch_size": batch_size, "shard_size": shard_size, "max_attempts": max_attempts,
                "backend": chosen, "precision": precision, "filters": filters.settings()}
    key = cache_key(fingerprint=fingerprint, mode=mode, prompts_hash=prompts_hash(pools), settings=settings, seed=seed)
    out = Path(out_dir) if out_dir is not None else default_dir(key)
    for name in (MANIFEST_FILE, PLAN_FILE):
        found = _read_json(out / name)
        if found is not None and found.get("cache_key") != key:
            if not overwrite:
                raise ConfigError(f"{out} holds a replay generation with other settings (cache key "
                                  f"{found.get('cache_key')}, this one {key})",
                                  hint="choose another --out, or pass --overwrite to replace it")
            shutil.rmtree(out)
            break
    if (found := _read_json(out / MANIFEST_FILE)) is not None:
        return _result(out, found, reused=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / PLAN_FILE, {"cache_key": key, "model": model, "adapter": adapter, "mode": mode,
                                        "seed": seed, "settings": settings})

    # ---- resume: the finished shards, in order -------------------------------------------------------------
    state = _State(quota=quota)
    finished_records: list[list[dict]] = []
    while True:
        records_path, done_path = _shard_paths(out, state.shards)
        done = _read_json(done_path)
        if done is None:
            break
        finished_records.append(_read_jsonl(records_path))
        state.kept.update(done["kept"])
        state.attempted.update(done["attempted"])
        state.dropped.update(done["dropped"])
        state.tokens += done["tokens"]
        state.seconds += done["seconds"]
        state.shards += 1

    # ---- the generator, its template's turn boundaries and the filters -------------------------------------
    from mixforge.models.registry import model_info

    engine = load_backend(model, backend=chosen, adapter=adapter, device=device, precision=precision)
    tokenizer = engine.tokenizer
    info = model_info(model, with_lora_targets=False)
    judge = ReplayJudge(filters, markers=info.reserved_strings, mode=mode)
    for records in finished_records:
        for record in records:
            judge.remember(_as_generation(record))
    eos = eos_ids(engine)
    user_ids, user_strings = turn_end(tokenizer, "user")
    answer_ids, answer_strings = turn_end(tokenizer, "assistant")
    answer_stops = sorted(set(eos) | set(answer_ids))
    from mixforge.eval.generate import render_prompt, tok_encode

    if mode == "magpie":
        pre_query = pre_query_ids(tokenizer)
        instruction_stops = sorted(set(eos) | set(user_ids))
    elif mode == "free":
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise ConfigError("free mode needs a BOS or EOS token to start documents from")
    wrap = temperature > 0  # greedy answers to a repeated prompt would only be duplicates

    def complete(prompt_ids: list[list[int]], stops: list[int], strings: list[str], s: int) -> list[Completion]:
        return engine.complete(prompt_ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                               seed=s, stop_ids=stops, stop_strings=strings)

    # ---- generate shard after shard ------------------------------------------------------------------------
    from mixforge.progress import progress_bar

    with progress_bar(show_progress) as bar:
        task = bar.add_task(_describe(mode, state), total=n, completed=sum(state.kept.values()))
        while True:
            plan = plan_shard(state, slots=shard_size, pool_sizes={c: len(p) for c, p in pools.items()} if pools else None,
                              wrap=wrap, attempts_left=max_attempts - sum(state.attempted.values()))
            if not plan:
                break
            t0 = time.perf_counter()
            jobs: list[tuple[str, Prompt | None]] = []
            for c, k in plan.items():
                for i in range(state.attempted[c], state.attempted[c] + k):
                    jobs.append((c, _prompt_at(pools[c], c, i, seed) if pools else None))
            if mode == "prompts":
                encoded = [tok_encode(tokenizer, render_prompt(tokenizer, p, chat=None)) for _, p in jobs]
            order = sorted(range(len(jobs)), key=lambda j: len(encoded[j])) if mode == "prompts" else list(range(len(jobs)))
            results: dict[int, tuple[Generation, bool]] = {}
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                if mode == "prompts":
                    outs = complete([encoded[j] for j in idx], answer_stops, answer_strings,
                                    _batch_seed(seed, state.shards, b // batch_size, 0))
                    for j, o in zip(idx, outs, strict=True):
                        results[j] = (Generation(jobs[j][0], jobs[j][1], decode(tokenizer, o, answer_strings),
                                                 o.finished, len(o.ids) + o.finished), True)
                elif mode == "free":
                    outs = complete([[start]] * len(idx), eos, [], _batch_seed(seed, state.shards, b // batch_size, 0))
                    for j, o in zip(idx, outs, strict=True):
                        results[j] = (Generation(jobs[j][0], None, decode(tokenizer, o, []), o.finished,
                                                 len(o.ids) + o.finished), True)
                else:  # magpie: the instruction from the pre-query template, then its answer
                    asks = complete([pre_query] * len(idx), instruction_stops, user_strings,
                                    _batch_seed(seed, state.shards, b // batch_size, 0))
                    texts = [decode(tokenizer, o, user_strings) for o in asks]
                    answerable = [k for k, (o, t) in enumerate(zip(asks, texts, strict=True)) if o.finished and t]
                    prompts_ids = [tok_encode(tokenizer, render_prompt(tokenizer, [{"role": "user", "content": texts[k]}],
                                                                       chat=True)) for k in answerable]
                    answers = dict(zip(answerable, complete(prompts_ids, answer_stops, answer_strings,
                                                            _batch_seed(seed, state.shards, b // batch_size, 1))
                                       if answerable else [], strict=True))
                    for k, j in enumerate(idx):
                        o = answers.get(k)
                        gen = Generation(jobs[j][0], [{"role": "user", "content": texts[k]}],
                                         decode(tokenizer, o, answer_strings) if o else "", bool(o and o.finished),
                                         len(asks[k].ids) + asks[k].finished + (len(o.ids) + o.finished if o else 0))
                        results[j] = (gen, asks[k].finished)
            # judge in job order (deterministic whatever the batching), then write the shard
            kept_records, shard_kept, shard_attempted, shard_dropped, shard_tokens = [], Counter(), Counter(), Counter(), 0
            for j in range(len(jobs)):
                gen, instruction_finished = results[j]
                shard_attempted[gen.category] += 1
                shard_tokens += gen.tokens
                reason = judge.check(gen, instruction_finished=instruction_finished)
                if reason is None:
                    shard_kept[gen.category] += 1
                    kept_records.append(gen.record(f"self-{state.shards:05d}-{j:05d}"))
                else:
                    shard_dropped[reason] += 1
            seconds = time.perf_counter() - t0
            records_path, done_path = _shard_paths(out, state.shards)
            write_text_atomic(records_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_records))
            stats = {"kept": dict(shard_kept), "attempted": dict(shard_attempted), "dropped": dict(shard_dropped),
                     "tokens": shard_tokens, "seconds": seconds}
            write_json_atomic(done_path, stats)  # the marker last: a shard without it is generated again
            finished_records.append(kept_records)
            state.kept.update(shard_kept)
            state.attempted.update(shard_attempted)
            state.dropped.update(shard_dropped)
            state.tokens += shard_tokens
            state.seconds += seconds
            state.shards += 1
            bar.update(task, completed=sum(state.kept.values()), description=_describe(mode, state))
            if on_shard is not None:
                on_shard(state.shards - 1, stats)

    # ---- join the shards into one file per category; the manifest last -----------------------------------
    by_category: dict[str, list[str]] = {c: [] for c in quota}
    for records in finished_records:
        for r in records:
            by_category[r["category"]].append(json.dumps(r, ensure_ascii=False) + "\n")
    files = {}
    for c, lines in by_category.items():
        files[c] = f"{_file_stem(c)}.jsonl"
        write_text_atomic(out / files[c], "".join(lines))
    kept = sum(state.kept.values())
    manifest = {
        "cache_key": key, "mode": mode, "seed": seed, "record_format": record_format,
        "generator": {"model": model, "adapter": adapter, "fingerprint": fingerprint, "backend": chosen,
                      "model_type": info.model_type},
        "settings": settings, "prompts_hash": prompts_hash(pools),
        "prompt_pool_sizes": {c: len(p) for c, p in pools.items()} if pools else None,
        "attempted": sum(state.attempted.values()), "kept": kept,
        "dropped": {r: state.dropped[r] for r in REASONS if state.dropped[r]},
        "per_category": {c: {"quota": quota[c], "kept": state.kept[c], "attempted": state.attempted[c]} for c in quota},
        "tokens_generated": state.tokens, "seconds": round(state.seconds, 3),
        "tokens_per_s": round(state.tokens / state.seconds, 1) if state.seconds else 0.0,
        "files": files, "shards": state.shards,
    }
    write_json_atomic(out / MANIFEST_FILE, manifest)
    shutil.rmtree(out / SHARD_DIR, ignore_errors=True)  # joined into the category files
    (out / PLAN_FILE).unlink(missing_ok=True)
    return _result(out, manifest, reused=False)


def _describe(mode: str, state: _State) -> str:
    rate = f", {state.tokens / state.seconds:,.0f} tok/s" if state.seconds else ""
    return f"replay {mode}: {sum(state.attempted.values())} tried, {sum(state.dropped.values())} dropped{rate}"


def _file_stem(category: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in category) or "category"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return None  # a marker cut short by a crash: that shard is generated again


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of a finished generation (DataError when the folder holds none)."""
    found = _read_json(Path(out_dir) / MANIFEST_FILE)
    if found is None:
        raise DataError("no finished replay generation here (manifest.json is missing)", path=str(out_dir),
                        hint="run `mixforge replay generate` (an interrupted one resumes where it stopped)")
    return found


def _result(out: Path, manifest: dict, *, reused: bool) -> ReplayResult:
    return ReplayResult(
        out_dir=out, files={c: out / f for c, f in manifest["files"].items()}, kept=manifest["kept"],
        dropped=dict(manifest["dropped"]), attempted=manifest["attempted"], manifest=out / MANIFEST_FILE,
        cache_key=manifest["cache_key"], fingerprint=manifest["generator"]["fingerprint"],
        record_format=manifest["record_format"], tokens_per_s=manifest["tokens_per_s"], reused=reused,
        per_category=manifest["per_category"])
