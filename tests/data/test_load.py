"""Readers: every malformed input named in issue 3 becomes a reject (or one clear DataError) and the good rows
around it are kept."""

from __future__ import annotations

import json

import pytest

from mixforge.data import load
from mixforge.data.load import iter_batches, load_records, read_prepared
from mixforge.errors import DataError

GOOD = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(3)]


def read_all(path, **kw):
    rows, rejects = [], []
    for r, bad in iter_batches(path, **kw):
        rows.extend(r)
        rejects.extend(bad)
    return rows, rejects


def write_lines(path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(lines))
    return str(path)


def jl(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_truncated_line_is_rejected_with_its_line_number(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), b'{"question": "cut off', b"\n", jl(GOOD[1])])
    rows, rejects = read_all(p)
    assert [r.record for r in rows] == GOOD[:2]
    assert [r.row for r in rows] == [1, 3]
    (bad,) = rejects
    assert (bad.row, bad.rule, bad.stage) == (2, "json", "load")
    assert "truncated" in bad.reason and bad.file == p


def test_invalid_utf8_costs_one_row(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), b'{"question": "caf\xe9", "answer": "x"}\n', jl(GOOD[1])])
    rows, rejects = read_all(p)
    assert [r.record for r in rows] == GOOD[:2]
    assert rejects[0].rule == "utf8" and rejects[0].row == 2 and "0xe9" in rejects[0].reason


def test_bom_and_crlf_are_accepted(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [b"\xef\xbb\xbf" + jl(GOOD[0])[:-1] + b"\r\n", jl(GOOD[1])[:-1] + b"\r\n"])
    rows, rejects = read_all(p)
    assert [r.record for r in rows] == GOOD[:2] and not rejects


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [b"\n", jl(GOOD[0]), b"   \n", b"\n", jl(GOOD[1])])
    rows, rejects = read_all(p)
    assert [r.row for r in rows] == [2, 5] and not rejects


def test_empty_file_yields_nothing(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [])
    assert read_all(p) == ([], [])


@pytest.mark.parametrize("line,kind", [(b"[1, 2]", "list"), (b"42", "int"), (b'"text"', "str"), (b"null", "NoneType")])
def test_a_line_that_is_not_an_object(tmp_path, line, kind):
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), line + b"\n", jl(GOOD[1])])
    rows, rejects = read_all(p)
    assert len(rows) == 2
    assert rejects[0].rule == "not_object" and kind in rejects[0].reason


def test_raw_nul_byte_is_rejected(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), b'{"question": "a\x00b", "answer": "x"}\n', jl(GOOD[1])])
    rows, rejects = read_all(p)
    assert len(rows) == 2 and rejects[0].rule == "nul" and rejects[0].row == 2


def test_duplicate_keys_are_rejected(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), b'{"question": "a", "question": "b", "answer": "x"}\n'])
    rows, rejects = read_all(p)
    assert len(rows) == 1
    assert rejects[0].rule == "duplicate_key" and rejects[0].field == "question"


def test_deeply_nested_json_is_rejected_not_a_crash(tmp_path):
    deep = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), deep + b"\n", jl(GOOD[1])])
    rows, rejects = read_all(p)
    assert len(rows) == 2 and rejects[0].rule == "nesting"


def test_multi_megabyte_row_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "_CHUNK", 64 * 1024)  # the 3 MB line spans ~50 reads
    big = {"question": "q", "answer": "word " * 600_000}
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), jl(big), jl(GOOD[1])])
    rows, rejects = read_all(p)
    assert [r.record for r in rows] == [GOOD[0], big, GOOD[1]] and not rejects
    # above max_row_bytes the line is skipped unread and the next line is still found
    rows, rejects = read_all(p, max_row_bytes=1_000_000)
    assert [r.record for r in rows] == [GOOD[0], GOOD[1]]
    assert rejects[0].rule == "too_big" and rejects[0].row == 2


def test_last_line_without_newline(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [jl(GOOD[0]), json.dumps(GOOD[1]).encode()])
    assert [r.record for r in read_all(p)[0]] == GOOD[:2]


def test_batches_keep_order_and_size(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [jl({"question": str(i), "answer": "x"}) for i in range(10)])
    sizes = [len(rows) for rows, _ in iter_batches(p, batch_size=3)]
    assert sizes == [3, 3, 3, 1]


def test_csv_quoted_newlines_other_delimiters_and_bad_rows(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('question;answer\n"line one\nline two";"a; with semicolon"\nq2;a2\nonly-one-field\nq3;a3\n',
                 encoding="utf-8")
    rows, rejects = read_all(str(p))
    assert [r.record for r in rows] == [
        {"question": "line one\nline two", "answer": "a; with semicolon"},
        {"question": "q2", "answer": "a2"},
        {"question": "q3", "answer": "a3"},
    ]
    assert [r.row for r in rows] == [2, 4, 6]
    assert rejects[0].rule == "csv" and rejects[0].row == 5 and "expected 2 fields" in rejects[0].reason


def test_tsv_bom_crlf_and_invalid_utf8(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_bytes(b"\xef\xbb\xbfquestion\tanswer\r\nq1\ta1\r\nq\xff\ta\r\nq2\ta2\r\n")
    rows, rejects = read_all(str(p))
    assert [r.record["question"] for r in rows] == ["q1", "q2"]
    assert rejects[0].rule == "utf8" and rejects[0].field == "question" and rejects[0].row == 3


def test_csv_duplicate_header_is_one_clear_error(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("question,answer,question\n1,2,3\n")
    with pytest.raises(DataError, match="repeats column"):
        read_all(str(p))


def test_json_document_list_object_and_jsonl_in_disguise(tmp_path):
    a = tmp_path / "list.json"
    a.write_text(json.dumps([GOOD[0], 5, GOOD[1]]))
    rows, rejects = read_all(str(a))
    assert [r.record for r in rows] == GOOD[:2] and rejects[0].rule == "not_object" and rejects[0].row == 2
    b = tmp_path / "obj.json"
    b.write_text(json.dumps({"version": 1, "data": GOOD}))
    assert load_records(str(b)) == GOOD
    c = tmp_path / "lines.json"
    c.write_text("".join(json.dumps(g) + "\n" for g in GOOD))
    assert load_records(str(c)) == GOOD
    d = tmp_path / "broken.json"
    d.write_text('[{"question": "a"},\n {"question": ')
    with pytest.raises(DataError, match="line 2"):
        read_all(str(d))


def test_parquet_arrow_and_saved_dataset(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    table = pa.Table.from_pylist(GOOD)
    pq.write_table(table, tmp_path / "a.parquet")
    with pa.OSFile(str(tmp_path / "a.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    Dataset.from_list(GOOD).save_to_disk(str(tmp_path / "saved"))
    for name in ("a.parquet", "a.arrow", "saved"):
        rows, rejects = read_all(str(tmp_path / name))
        assert [r.record for r in rows] == GOOD, name
        assert [r.row for r in rows] == [1, 2, 3]


def test_fsspec_memory_paths_and_globs(tmp_path):
    import fsspec

    with fsspec.open("memory://data/a.jsonl", "wb") as f:
        f.write(b"".join(jl(g) for g in GOOD))
    assert load_records("memory://data/a.jsonl") == GOOD
    (tmp_path / "x1.jsonl").write_bytes(jl(GOOD[0]))
    (tmp_path / "x2.jsonl").write_bytes(jl(GOOD[1]))
    assert load_records(str(tmp_path / "x*.jsonl")) == GOOD[:2]


def test_missing_files_and_unknown_formats_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_all(str(tmp_path / "nope.jsonl"))
    (tmp_path / "a.xyz").write_text("x")
    with pytest.raises(DataError, match="cannot tell the format"):
        read_all(str(tmp_path / "a.xyz"))
    with pytest.raises(DataError, match="pattern matches no file"):
        read_all(str(tmp_path / "*.parquet"))


def test_hub_id_offline_is_a_data_error_with_a_hint(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        read_all("someone/not-a-cached-dataset")
    assert info.value.hint and "network" in info.value.hint


def test_read_prepared_reads_jsonl_parquet_and_directories(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "train.jsonl").write_bytes(b"".join(jl(g) for g in GOOD))
    assert list(read_prepared(tmp_path / "train.jsonl")) == GOOD
    assert list(read_prepared(tmp_path)) == GOOD
    pq.write_table(pa.Table.from_pylist(GOOD), tmp_path / "b.parquet")
    assert list(read_prepared(tmp_path / "b.parquet")) == GOOD
    (tmp_path / "bad.jsonl").write_bytes(jl(GOOD[0]) + b"{oops\n")
    with pytest.raises(DataError, match="row 2"):
        list(read_prepared(tmp_path / "bad.jsonl"))


def test_saved_dataset_dict_picks_a_split(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list(GOOD), "validation": Dataset.from_list(GOOD[:1])}).save_to_disk(
        str(tmp_path / "dd"))
    assert load_records(str(tmp_path / "dd")) == GOOD
    assert load_records(str(tmp_path / "dd"), split="validation") == GOOD[:1]
    with pytest.raises(DataError, match="no split 'test'") as info:
        load_records(str(tmp_path / "dd"), split="test")
    assert "--input-split" in info.value.hint
