"""What lets the token store start in seconds at scale: token labels from offsets without per-token Python, and a
data file's sha256 remembered while the file is unchanged (and never once it changed)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from mixforge import fingerprint
from mixforge.fingerprint import file_sha256_memo
from mixforge.models.registry import load_tokenizer
from mixforge.train import store
from mixforge.train.store import SHA256_MEMO, mask_spans, token_store
from mixforge.train.tokenize import loss_mask


# ---- labels from offsets -----------------------------------------------------------------------------------------
def test_loss_mask_marks_the_tokens_that_overlap_a_span():
    offsets = np.array([[0, 3], [3, 5], [5, 9], [9, 10], [10, 12], [12, 12], [12, 15]])
    spans = [(4, 9), (11, 13)]
    assert loss_mask(offsets, spans).tolist() == [False, True, True, False, True, True, True]
    assert loss_mask(offsets, []).tolist() == [False] * 7
    assert loss_mask(np.zeros((0, 2), np.int64), spans).tolist() == []
    assert mask_spans(loss_mask(offsets, spans)).tolist() == [1, 3, 4, 7]


def test_loss_mask_agrees_with_the_overlap_definition_on_random_tokenizations():
    rng = np.random.default_rng(0)
    for _ in range(200):
        cuts = np.sort(rng.choice(np.arange(1, 300), size=rng.integers(1, 60), replace=False))
        offsets = np.stack([np.concatenate(([0], cuts[:-1])), cuts], axis=1)
        edges = np.sort(rng.choice(np.arange(0, 310), size=2 * rng.integers(0, 4), replace=False))
        spans = [(int(a), int(b)) for a, b in edges.reshape(-1, 2)]
        want = [any(a < e and b > s for s, e in spans) for a, b in offsets]
        assert loss_mask(offsets, spans).tolist() == want


# ---- the remembered sha256 of a data file -------------------------------------------------------------------------
@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """Files actually read and hashed; changes are not racy in these tests (RACY_S 0)."""
    monkeypatch.setattr(fingerprint, "RACY_S", 0.0)
    calls: list[str] = []
    real = fingerprint.file_sha256

    def counted(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(fingerprint, "file_sha256", counted)
    return calls


def test_an_unchanged_file_is_hashed_once(tmp_path, hashed):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"abc\n")
    memo = tmp_path / "memo"
    want = hashlib.sha256(b"abc\n").hexdigest()
    assert [file_sha256_memo(path, memo) for _ in range(3)] == [want] * 3
    assert len(hashed) == 1
    os.link(path, tmp_path / "alias.jsonl")  # another name of the same file: its own memo, same digest
    assert file_sha256_memo(tmp_path / "alias.jsonl", memo) == want


def test_a_changed_file_is_hashed_again_even_with_its_size_and_mtime_restored(tmp_path, hashed):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"abc\n")
    memo = tmp_path / "memo"
    file_sha256_memo(path, memo)
    st = path.stat()
    path.write_bytes(b"abd\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only ctime tells
    assert file_sha256_memo(path, memo) == hashlib.sha256(b"abd\n").hexdigest()
    path.unlink()
    path.write_bytes(b"abc\n")  # a new file (new inode) with the old bytes
    assert file_sha256_memo(path, memo) == hashlib.sha256(b"abc\n").hexdigest()
    assert len(hashed) == 3


def test_a_file_written_just_now_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "RACY_S", 3600.0)
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"abc\n")
    assert file_sha256_memo(path, tmp_path / "memo") == hashlib.sha256(b"abc\n").hexdigest()
    assert not (tmp_path / "memo").exists()


def test_a_store_is_never_reused_for_a_changed_file_of_the_same_size_and_mtime(tiny_model_dir, toy_data, tmp_path,
                                                                            hashed):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    path = tmp_path / "data.jsonl"
    lines = Path(toy_data["sft"]).read_text().splitlines()
    path.write_text("\n".join(lines) + "\n")
    root = tmp_path / "tok"
    first = token_store(tokenizer, str(path), max_seq_len=64, root=root)
    assert token_store(tokenizer, str(path), max_seq_len=64, root=root).path == first.path
    assert len(hashed) == 1 and len(list((root / SHA256_MEMO).iterdir())) == 1  # the cached start read no data
    st = path.stat()
    swapped = [lines[1], lines[0], *lines[2:]]  # the same bytes in another order: same size
    path.write_text("\n".join(swapped) + "\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = token_store(tokenizer, str(path), max_seq_len=64, root=root)
    assert second.path != first.path
    assert second.fingerprint == store.records_sha256(json.loads(line) for line in swapped)[0]
    assert second[0].input_ids.tolist() == first[1].input_ids.tolist()


# ---- keeping the cache small ---------------------------------------------------------------------------------------
def test_remove_stores_keeps_the_most_recently_used(tiny_model_dir, toy_data, tmp_path):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    root = tmp_path / "tok"
    built = [token_store(tokenizer, toy_data["sft"], max_seq_len=n, root=root) for n in (16, 32, 64)]
    for i, s in enumerate(built):  # last used in the order built, long ago
        os.utime(s.path / store.META, (1e9, 1e9 + 600 * i))
    again = token_store(tokenizer, toy_data["sft"], max_seq_len=16, root=root)  # the oldest, used again now
    assert again.path == built[0].path
    listed = store.list_stores(root)
    assert [s["path"] for s in listed] == [built[0].path, built[2].path, built[1].path]
    assert [s["records"] for s in listed] == [48] * 3 and all(s["mib"] > 0 for s in listed)
    assert store.remove_stores(root, keep=1) == [built[2].path, built[1].path]
    assert [s["path"] for s in store.list_stores(root)] == [built[0].path]
    assert len(again[0].input_ids)  # the kept store still reads


def test_the_cli_lists_stores_and_keeps_the_most_recent(tiny_model_dir, toy_data, tmp_path):
    from typer.testing import CliRunner

    from mixforge.cli.app import app

    tokenizer = load_tokenizer(str(tiny_model_dir))
    root = tmp_path / "tok"
    built = [token_store(tokenizer, toy_data["sft"], max_seq_len=n, root=root) for n in (16, 32)]
    os.utime(built[0].path / store.META, (1e9, 1e9))  # the first one: used long ago
    runner = CliRunner()
    listed = runner.invoke(app, ["data", "stores", "--root", str(root)], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert built[0].path.name in listed.output and built[1].path.name in listed.output
    cleaned = runner.invoke(app, ["data", "stores", "--root", str(root), "--keep", "1"], terminal_width=200)
    assert cleaned.exit_code == 0 and "removed 1 store(s)" in cleaned.output, cleaned.output
    assert [s["path"] for s in store.list_stores(root)] == [built[1].path] and not built[0].path.exists()


def test_two_processes_building_the_same_store_keep_the_first(tiny_model_dir, toy_data, tmp_path, monkeypatch):
    """Two jobs sharing a cache start the same store at once: the later one must neither fail ("Directory not
    empty", seen with three quickstarts started together) nor replace the store the first may be reading."""
    tokenizer = load_tokenizer(str(tiny_model_dir))
    root = tmp_path / "tok"
    real_write = store._write

    def other_process_finishes_first(out, chunks, **kwargs):
        real_write(out, chunks, **kwargs)
        monkeypatch.setattr(store, "_write", real_write)
        first = token_store(tokenizer, toy_data["sft"], max_seq_len=32, root=root)  # the other job, done first
        other_process_finishes_first.inode = (first.path / store.TOKENS).stat().st_ino

    monkeypatch.setattr(store, "_write", other_process_finishes_first)
    late = token_store(tokenizer, toy_data["sft"], max_seq_len=32, root=root)
    assert (late.path / store.TOKENS).stat().st_ino == other_process_finishes_first.inode  # the first one's files
    assert [p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".sha256"] == []  # no leftovers
    assert len(late) == 48 and late[0].input_ids.tolist()
