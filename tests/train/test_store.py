"""The on-disk token store: the same tokens and labels as tokenizing record by record, training from it gives the
same losses bit for bit as the in-memory path, it is built once and reused, a changed input builds a new one, a
crash leaves nothing half-written, and two ranks share one store."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mixforge.config import RunConfig, parse_overrides
from mixforge.models.registry import load_tokenizer
from mixforge.train import recipe, store
from mixforge.train.store import META, prepared_data, token_store
from mixforge.train.tokenize import IGNORE, TokenizedPair, tokenize_preference, tokenize_record


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def count_tokenizing(monkeypatch) -> list[int]:
    """Records tokenized through the store (in this process), chunk by chunk."""
    calls: list[int] = []
    real = store.tokenize_chunk

    def counted(tokenizer, records, rows, **kw):
        calls.append(len(records))
        return real(tokenizer, records, rows, **kw)

    monkeypatch.setattr(store, "tokenize_chunk", counted)
    return calls


# ---- contents --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "pairs"), [("sft", False), ("text", False), ("pref", True)])
@pytest.mark.parametrize("num_proc", [1, 2])
def test_store_holds_what_record_by_record_tokenizing_gives(tokenizer, toy_data, tmp_path, data, pairs, num_proc):
    # a blank line in the file: rows are real line numbers, records are still counted in order
    lines = Path(toy_data[data]).read_text().splitlines()
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([*lines[:5], "", *lines[5:]]) + "\n")
    records = read_jsonl(path)
    max_len = 24  # short enough that some records are truncated
    s = token_store(tokenizer, str(path), max_seq_len=max_len, pairs=pairs, root=tmp_path / "tok",
                    num_proc=num_proc, chunk_rows=7)  # 7 chunks: workers' results must come back in order
    assert len(s) == len(records) == 48
    assert s.rows.tolist() == [*range(1, 6), *range(7, 50)]
    for i, record in enumerate(records):
        if pairs:
            want = tokenize_preference(tokenizer, record, max_seq_len=max_len)
            got = s[i]
            assert isinstance(got, TokenizedPair)
            sides = [(got.chosen, want.chosen), (got.rejected, want.rejected)]
            assert s.truncated[i] == max(want.chosen.truncated, want.rejected.truncated)
        else:
            want = tokenize_record(tokenizer, record, max_seq_len=max_len)
            sides = [(s[i], want)]
            assert s.truncated[i] == want.truncated
        for got_side, want_side in sides:
            assert got_side.input_ids.tolist() == want_side.input_ids
            assert got_side.labels.tolist() == want_side.labels
            assert got_side.loss_tokens == want_side.loss_tokens
        assert s.lengths[i] == sum(len(w.input_ids) for _, w in sides)
        assert s.loss_tokens[i] == sum(w.loss_tokens for _, w in sides)
    assert s.truncated.any()
    # the content fingerprint is the one the mix manifest has always compared: sha256 of canonical JSON
    assert s.fingerprint == store.records_sha256(records)[0]


def test_loss_spans_round_trip_and_refuse_free_labels():
    ids = np.array([5, 6, 7, 8, 9, 10], np.int32)
    labels = np.array([IGNORE, 6, 7, IGNORE, IGNORE, 10], np.int32)
    spans = store.spans_of(ids, labels)
    assert spans.tolist() == [1, 3, 5, 6]
    assert store.labels_from_spans(ids, spans).tolist() == labels.tolist()
    with pytest.raises(ValueError, match="label differs"):
        store.spans_of(ids, np.array([IGNORE, 1, 7, IGNORE, IGNORE, 10], np.int32))


# ---- training from the store -------------------------------------------------------------------------------
class _InMemory(list):
    """The path before the store: Python lists of Tokenized, the mixer's arrays built from them."""

    def __init__(self, items, records) -> None:
        super().__init__(items)
        self.truncated = np.array([bool(t.chosen.truncated or t.rejected.truncated) if isinstance(t, TokenizedPair)
                                   else bool(t.truncated) for t in items])
        self.fingerprint = store.records_sha256(records)[0]

    def source_index(self, location=""):
        from mixforge.mix.sampler import SourceIndex

        def size(t, what):
            if isinstance(t, TokenizedPair):
                return size(t.chosen, what) + size(t.rejected, what)
            return len(t.input_ids) if what == "tokens" else t.loss_tokens

        return SourceIndex(len(self), tokens=np.array([size(t, "tokens") for t in self], np.int64),
                           loss_tokens=np.array([size(t, "loss") for t in self], np.int64),
                           fingerprint=self.fingerprint, location=location, rows=np.arange(1, len(self) + 1))


def _in_memory_store(tokenizer, data, *, max_seq_len, pairs=False, data_key=None, rank=0):  # noqa: ARG001
    records = read_jsonl(data) if isinstance(data, str) else [record for _, record in data()]
    tok = tokenize_preference if pairs else tokenize_record
    return _InMemory([tok(tokenizer, r, max_seq_len=max_seq_len) for r in records], records)


def _config(tiny_model_dir, data, out, *, method, mixing=None, **over):
    overrides = {"max_steps": 5, "global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 1e-2,
                 "lora_rank": 8, "eval_every": 5, **over}
    return RunConfig(model=str(tiny_model_dir), method=method, data_path=data, output_path=str(out),
                     data_mixing_enabled=mixing is not None, mixing=mixing, overrides=parse_overrides(overrides),
                     tracking={"enabled": False})


def _metrics(out) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


MIX = {"customer_data_percent": 50, "general_data": "embedded", "categories": {"math": 50, "baseline": 50}}


@pytest.mark.slow
@pytest.mark.parametrize(("method", "data", "mixing", "over"), [
    ("sft_lora", "sft", MIX, {"mix_unit": "tokens", "packing": True}),
    ("cpt", "text", None, {}),
    ("dpo_lora", "pref", MIX, {}),
])
def test_training_from_the_store_gives_the_same_losses_bit_for_bit(tiny_model_dir, toy_data, tmp_path, monkeypatch,
                                                                    method, data, mixing, over):
    stored = tmp_path / "store"
    recipe.run(_config(tiny_model_dir, toy_data[data], stored, method=method, mixing=mixing, **over),
               show_progress=False)
    monkeypatch.setattr(recipe, "token_store", _in_memory_store)
    memory = tmp_path / "memory"
    recipe.run(_config(tiny_model_dir, toy_data[data], memory, method=method, mixing=mixing, **over),
               show_progress=False)
    a, b = ([{k: v for k, v in r.items() if k != "tokens_per_s"} for r in _metrics(out)] for out in (stored, memory))
    assert len([r for r in a if "loss" in r]) == 5
    assert a == b  # every loss, mix count and validation figure, exactly; only the speed may differ
    manifest = [json.loads((out / "mix_manifest.json").read_text()) for out in (stored, memory)]
    for name, source in manifest[0]["sources"].items():  # same fingerprints: resuming across the change works
        assert source["fingerprint"] == manifest[1]["sources"][name]["fingerprint"], name


# ---- the cache: reused, invalidated, never half-written ----------------------------------------------------------
def test_store_is_built_once_and_reused_by_later_runs(tiny_model_dir, toy_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXFORGE_HOME", str(tmp_path / "home"))  # no store from earlier tests
    calls = count_tokenizing(monkeypatch)
    cfg = _config(tiny_model_dir, toy_data["sft"], tmp_path / "a", method="sft_lora", max_steps=1, eval_every=0)
    recipe.run(cfg, show_progress=False)
    first = sum(calls)
    assert first >= 48  # the domain's 48 records, plus the held-out general records the curve watches
    recipe.run(cfg.model_copy(update={"output_path": str(tmp_path / "b")}), show_progress=False)
    assert sum(calls) == first  # the second run tokenized nothing


def test_a_changed_input_builds_a_new_store(tiny_model_dir, tokenizer, toy_data, tmp_path, monkeypatch):
    calls = count_tokenizing(monkeypatch)
    path = tmp_path / "data.jsonl"
    path.write_text(Path(toy_data["sft"]).read_text())
    root = tmp_path / "tok"
    first = token_store(tokenizer, str(path), max_seq_len=64, root=root)
    assert token_store(tokenizer, str(path), max_seq_len=64, root=root).path == first.path
    assert sum(calls) == 48
    changes = [token_store(tokenizer, str(path), max_seq_len=32, root=root)]  # max_seq_len
    with path.open("a") as f:  # the data
        f.write(json.dumps({"id": "new", "messages": [{"role": "user", "content": "hi"},
                                                      {"role": "assistant", "content": "hello"}]}) + "\n")
    changes.append(token_store(tokenizer, str(path), max_seq_len=64, root=root))
    other = load_tokenizer(str(tiny_model_dir))  # the tokenizer
    other.add_tokens(["<new-token>"])
    changes.append(token_store(other, str(path), max_seq_len=64, root=root))
    templated = load_tokenizer(str(tiny_model_dir))  # the chat template
    templated.chat_template = templated.chat_template.replace("\n", "\n\n", 1)
    changes.append(token_store(templated, str(path), max_seq_len=64, root=root))
    assert len({first.path, *(c.path for c in changes)}) == 5
    assert sum(calls) == 48 + 48 + 49 + 49 + 49
    assert len(changes[1]) == 49


def test_a_crash_mid_write_leaves_no_store(tokenizer, toy_data, tmp_path, monkeypatch):
    real = store.tokenize_chunk
    calls = []

    def crash_on_second_chunk(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(store, "tokenize_chunk", crash_on_second_chunk)
    root = tmp_path / "tok"
    with pytest.raises(RuntimeError, match="disk full"):
        token_store(tokenizer, toy_data["sft"], max_seq_len=64, root=root, chunk_rows=16)
    # neither the store nor its temporary folder (the data file's remembered sha256 may be there)
    assert [p.name for p in root.iterdir() if p.name != store.SHA256_MEMO] == []
    monkeypatch.setattr(store, "tokenize_chunk", real)
    s = token_store(tokenizer, toy_data["sft"], max_seq_len=64, root=root, chunk_rows=16)
    assert len(s) == 48 and (s.path / META).is_file()


def test_prepared_folder_and_parquet_go_through_the_store(tokenizer, toy_data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = read_jsonl(toy_data["text"])
    folder = tmp_path / "prepared"
    folder.mkdir()
    (folder / "train.jsonl").write_text(Path(toy_data["text"]).read_text())
    assert prepared_data(str(folder)) == str(folder / "train.jsonl")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "train.parquet")
    s = token_store(tokenizer, prepared_data(str(tmp_path / "train.parquet")), max_seq_len=64, root=tmp_path / "tok")
    assert [s[i].input_ids.tolist() for i in range(3)] == [tokenize_record(tokenizer, r, max_seq_len=64).input_ids
                                                          for r in records[:3]]
    assert s.rows.tolist() == list(range(1, 49))  # a Parquet file's rows are positions


# ---- two ranks ------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.distributed
def test_two_ranks_share_one_store_built_by_rank_0(tiny_model_dir, toy_data, tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(f"""
        import json, os
        import torch.distributed as dist
        from mixforge.models.registry import load_tokenizer
        from mixforge.train import store

        dist.init_process_group("gloo")
        rank = dist.get_rank()
        real = store.tokenize_chunk
        def counted(*args, **kw):
            with open({str(tmp_path)!r} + f"/calls-{{rank}}", "a") as f:
                f.write("1\\n")
            return real(*args, **kw)
        store.tokenize_chunk = counted
        tok = load_tokenizer({str(tiny_model_dir)!r})
        s = store.token_store(tok, {toy_data["sft"]!r}, max_seq_len=64, root={str(tmp_path / "tok")!r}, rank=rank,
                              wait_s=0.05)
        with open({str(tmp_path)!r} + f"/seen-{{rank}}.json", "w") as f:
            json.dump({{"path": str(s.path), "ids": [s[i].input_ids.tolist() for i in range(len(s))]}}, f)
        dist.barrier()
        dist.destroy_process_group()
    """))
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(script)], check=True, timeout=120, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    seen = [json.loads((tmp_path / f"seen-{r}.json").read_text()) for r in (0, 1)]
    assert seen[0] == seen[1] and len(seen[0]["ids"]) == 48
    assert (tmp_path / "calls-0").exists() and not (tmp_path / "calls-1").exists()  # only rank 0 tokenized
    assert len([p for p in (tmp_path / "tok").iterdir() if p.name != store.SHA256_MEMO]) == 1  # one store


def test_store_items_batch_like_tokenized_records(tokenizer, toy_data, tmp_path):
    from mixforge.train.batching import pack_batch, pad_batch

    records = read_jsonl(toy_data["sft"])[:6]
    s = token_store(tokenizer, toy_data["sft"], max_seq_len=64, root=tmp_path / "tok")
    old = [tokenize_record(tokenizer, r, max_seq_len=64) for r in records]
    for a, b in [(pad_batch(old, pad_id=0), pad_batch(s[:6], pad_id=0)),
                 (pack_batch(old, seq_len=64, pad_id=0), pack_batch(s[:6], seq_len=64, pad_id=0))]:
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_int_columns_cross_between_numpy_and_arrow_without_copies_or_pandas(tokenizer, toy_data, tmp_path):
    for dtype in (np.int32, np.int64):
        values = np.arange(10, dtype=dtype) * 3
        array = store._arrow_ints(values)
        assert array.to_pylist() == values.tolist()
        assert store._numpy_ints(array.slice(3, 4)).tolist() == values[3:7].tolist()  # a slice's offset counts
        assert store._numpy_ints(array.slice(10)).dtype == dtype and len(store._numpy_ints(array.slice(10))) == 0
    # opening and reading a store in a fresh process imports no pandas (pyarrow's to_numpy would: 0.4 s)
    built = token_store(tokenizer, toy_data["sft"], max_seq_len=64, root=tmp_path / "tok", chunk_rows=7)
    code = textwrap.dedent(f"""
        import sys
        from mixforge.train.store import TokenStore
        s = TokenStore({str(built.path)!r})
        print(int(s.lengths.sum()), sum(len(item.input_ids) for item in s), "pandas" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(int(built.lengths.sum())), str(int(built.lengths.sum())), "False"]
