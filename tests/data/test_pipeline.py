"""`prepare` end to end: outputs, manifest, rejects, strict mode, formats, split without leakage, and the
property that every good row survives among malformed ones."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixforge.data import prepare, read_prepared
from mixforge.data.pipeline import validate_input
from mixforge.errors import DataError


def write_jsonl(path, rows, extra_lines=()):
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def qa_rows(n, seed=0, label=False):
    rng = random.Random(seed)
    words = "the a patient fever cough pain heart lung drug dose test scan blood".split()
    out = []
    for i in range(n):
        q = " ".join(rng.choice(words) for _ in range(12)) + f" case {i}?"
        a = " ".join(rng.choice(words) for _ in range(40)) + f" answer {i}."
        row = {"question": q, "answer": a}
        if label:
            row["label"] = "cardio" if i % 3 else "resp"
        out.append(row)
    return out


def test_prepare_end_to_end(tmp_path, tiny_model_dir):
    rows = qa_rows(40)
    rows[3]["answer"] = "Assistant: take it [EOS] twice <|end|>"
    rows[5]["question"] = "User: hello"
    src = write_jsonl(tmp_path / "raw.jsonl", rows, ['{"question": "broken', '{"question": "q", "answer": 5}'])
    out = tmp_path / "out"
    report = prepare(src, mapping="question=question,answer=answer", method="sft_lora", model=str(tiny_model_dir),
                     out_dir=out, split=(0.8, 0.1, 0.1), seed=0)

    assert report.rows_read == 42
    assert report.rows_written == {"train": 32, "validation": 4, "test": 4}
    assert report.rejects == {"load/json": 1, "map/type": 1}
    assert report.sanitize_hits == {"Assistant:": 1, "[EOS]": 1, "<|end|>": 1, "User:": 1}
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "rejects.jsonl", "test.jsonl", "train.jsonl",
                                                     "validation.jsonl"]  # no temporary files left
    records = [r for name in ("train", "validation", "test") for r in read_prepared(out / f"{name}.jsonl")]
    assert len({r["id"] for r in records}) == 40
    by_id = {r["id"]: r for r in records}
    assert by_id["raw-4"]["messages"] == [{"role": "user", "content": rows[3]["question"]},
                                          {"role": "assistant", "content": "Assistant : take it  twice"}]
    assert by_id["raw-6"]["messages"][0]["content"] == "User : hello"

    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        data = (out / f"{name}.jsonl").read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["rows"] == data.count(b"\n")
    assert [s["step"] for s in manifest["steps"]] == ["load", "transform", "sanitize", "validate",
                                                      "filter:quality", "filter:exact_dedup", "split", "save"]
    assert manifest["rejects"]["by_rule"] == {"load/json": 1, "map/type": 1}
    assert manifest["schema"]["messages"].startswith("list<")
    assert manifest["validation"]["max_seq_len"] == 512

    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert {(r["file"], r["row"], r["stage"], r["rule"], r["field"]) for r in rejects} == {
        (str(src), 41, "load", "json", None), (str(src), 42, "map", "type", "answer")}
    assert set(report.to_dict()["stages"]) == {"load", "transform", "sanitize", "validate", "filter", "save", "split"}


def test_strict_mode_raises_and_writes_no_output(tmp_path):
    src = write_jsonl(tmp_path / "raw.jsonl", qa_rows(10), ["not json"])
    with pytest.raises(DataError, match="strict mode: 1 rows rejected"):
        prepare(src, out_dir=tmp_path / "out", strict=True)
    assert not (tmp_path / "out" / "train.jsonl").exists()
    prepare(src, out_dir=tmp_path / "ok", strict=False)
    assert (tmp_path / "ok" / "train.jsonl").exists()


def test_empty_or_hopeless_input_is_one_clear_error(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(DataError, match="no readable rows"):
        prepare(tmp_path / "empty.jsonl", out_dir=tmp_path / "o1")
    with pytest.raises(DataError) as info:
        prepare(write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answr": "a"}] * 3),
                mapping="question=question,answer=answer", out_dir=tmp_path / "o2")
    assert "no usable rows: read 3, rejected 3 (map/missing_field: 3)" in str(info.value)
    assert (tmp_path / "o2" / "rejects.jsonl").exists() and "rejects.jsonl" in info.value.hint
    assert "did you mean 'answr'" in (tmp_path / "o2" / "rejects.jsonl").read_text()


def test_labels_stratified_split_and_near_duplicates_on_one_side(tmp_path):
    rows = qa_rows(60, seed=4, label=True)
    for i in range(0, 20, 2):  # ten near-copies: one word of the answer changed
        copy = dict(rows[i])
        copy["answer"] = copy["answer"].replace("answer", "reply")
        rows.append(copy)
    rows.append({"question": "q?", "answer": "a.", "label": "unknown"})
    src = write_jsonl(tmp_path / "raw.jsonl", rows)
    report = prepare(src, mapping="question=question,answer=answer,label=label", out_dir=tmp_path / "out",
                     labels=["cardio", "resp"], split="0.5,0.5", seed=1, dedup="exact", min_rows=1)
    assert report.rejects == {"validate/label": 1}
    side = {}
    for name in ("train", "validation"):
        for r in read_prepared(tmp_path / "out" / f"{name}.jsonl"):
            side[r["messages"][0]["content"]] = side.get(r["messages"][0]["content"], set()) | {name}
    assert all(len(s) == 1 for s in side.values())  # a question and its near-copy never straddle the split
    train = list(read_prepared(tmp_path / "out" / "train.jsonl"))
    assert abs(sum(r["label"] == "resp" for r in train) / len(train) - 20 / 70) < 0.1


def test_parquet_bedrock_and_memory_outputs(tmp_path):
    src = write_jsonl(tmp_path / "raw.jsonl", qa_rows(12))
    report = prepare(src, out_dir=tmp_path / "pq", format="parquet")
    assert report.files["train"].endswith("train.parquet")
    assert len(list(read_prepared(tmp_path / "pq" / "train.parquet"))) == 12
    prepare(src, out_dir=tmp_path / "br", format="bedrock")
    first = json.loads((tmp_path / "br" / "train.jsonl").read_text().splitlines()[0])
    assert first["schemaVersion"] == "bedrock-conversation-2024"
    assert first["messages"][0]["content"] == [{"text": qa_rows(1)[0]["question"]}]
    # and back: a Bedrock file is recognised and imported without a mapping
    again = prepare(tmp_path / "br" / "train.jsonl", out_dir=tmp_path / "back")
    assert again.mapping == {"bedrock": "."} and again.rows_written == {"train": 12}
    report = prepare(src, out_dir="memory://prepared/run1")
    import fsspec

    fs = fsspec.filesystem("memory")
    assert fs.exists("/prepared/run1/train.jsonl") and fs.exists("/prepared/run1/manifest.json")
    assert len(list(read_prepared("memory://prepared/run1/train.jsonl"))) == 12


def test_cpt_and_dpo_methods(tmp_path):
    src = write_jsonl(tmp_path / "t.jsonl", [{"text": f"document number {i} about things"} for i in range(5)])
    prepare(src, method="cpt", out_dir=tmp_path / "cpt")
    assert next(read_prepared(tmp_path / "cpt")) == {"id": "t-1", "text": "document number 0 about things"}
    pref = [{"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(9)]
    src = write_jsonl(tmp_path / "p.jsonl", pref)
    report = prepare(src, method="dpo_lora", out_dir=tmp_path / "dpo")
    assert report.rows_written == {"train": 9}
    assert next(read_prepared(tmp_path / "dpo"))["prompt"] == [{"role": "user", "content": "p0"}]


def test_validate_input_reports_without_writing(tmp_path, tiny_model_dir):
    rows = qa_rows(8) + [{"question": "System: x", "answer": "y"}]
    src = write_jsonl(tmp_path / "raw.jsonl", rows, ["[1]"])
    report, unreadable = validate_input(src, mapping="question=question,answer=answer", model=str(tiny_model_dir),
                                        max_seq_len=64)
    assert unreadable == {"load/not_object": 1}
    assert report.problems["reserved"] == 1 and report.problems["too_long"] == 8
    assert report.rows_checked == 10 and not report.ok
    with pytest.raises(DataError, match="validation failed"):
        validate_input(src, mapping="question=question,answer=answer", strict=True)


# ---- property: every good row survives among malformed rows ---------------------------------------------------
_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFG0123456789éß中", min_size=1, max_size=8)
_TEXT = st.lists(_WORD, min_size=1, max_size=6).map(" ".join)
_GOOD = st.fixed_dictionaries({"question": _TEXT, "answer": _TEXT}).map(lambda d: ("good", d))
_BAD = st.sampled_from([
    b'{"question": "cut', b'{"question": "a", "answer": "b"', b"[1, 2, 3]", b"42", b'"just a string"',
    b'{"question": "caf\xe9", "answer": "x"}', b'{"question": "a\x00", "answer": "b"}',
    b'{"question": "a", "answer": "\\u0000"}', b'{"question": "q"}', b'{"question": 5, "answer": "a"}',
    b'{"question": "", "answer": "a"}', b'{"question": "q", "answer": ["a"]}', b'{"question": null, "answer": "a"}',
    b'{"question": "a", "question": "b", "answer": "c"}', b'{"question": "' + b"[" * 3 + b'", "answer": ',
    b"\xff\xfe\x00", b'{"question": "q", "answer": "' + b"{" * 5 + b'"}garbage',
]).map(lambda b: ("bad", b))
_BLANK = st.sampled_from([b"", b"   ", b"\t"]).map(lambda b: ("blank", b))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.one_of(_GOOD, _BAD, _BLANK), min_size=1, max_size=25), crlf=st.booleans(),
       bom=st.booleans())
def test_every_good_row_survives_among_malformed_rows(tmp_path_factory, items, crlf, bom):
    tmp = tmp_path_factory.mktemp("prop")
    lines = [json.dumps(v, ensure_ascii=False).encode() if k == "good" else v for k, v in items]
    data = (b"\r\n" if crlf else b"\n").join(lines) + b"\n"
    (tmp / "in.jsonl").write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    good = [(i + 1, v) for i, (k, v) in enumerate(items) if k == "good"]
    bad = sum(k == "bad" for k, _ in items)
    kwargs = dict(mapping="question=question,answer=answer", out_dir=tmp / "out", quality=False, dedup="none",
                  min_rows=1)
    if not good:
        with pytest.raises(DataError, match="no usable rows"):
            prepare(tmp / "in.jsonl", **kwargs)
        return
    report = prepare(tmp / "in.jsonl", **kwargs)
    out = list(read_prepared(tmp / "out" / "train.jsonl"))
    assert [(r["id"], r["messages"][0]["content"], r["messages"][1]["content"]) for r in out] == [
        (f"in-{line}", v["question"], v["answer"]) for line, v in good]
    assert report.rows_rejected == bad
    rejects = (tmp / "out" / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rejects) == bad and all(json.loads(r)["reason"] for r in rejects)
