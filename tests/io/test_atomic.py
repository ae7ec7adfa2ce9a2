"""Atomic writes: the previous file (or folder) stays whole until the new one takes its place in one step; a
failure at any point leaves the old version and no temporary file."""

from __future__ import annotations

import os
import shutil

import pytest

from mixforge.io.atomic import AtomicFile, atomic_directory, write_json_atomic, write_text_atomic


def _crash_on_move(monkeypatch, is_new) -> None:
    """Every way a file or folder could be moved into place fails when `is_new(source name)` (a crash between
    'remove the old one' and 'move the new one' would leave neither)."""
    def crash(real):
        def move(src, dst, *args, **kwargs):
            if is_new(os.path.basename(os.fspath(src))):
                raise OSError("power cut")
            return real(src, dst, *args, **kwargs)
        return move

    monkeypatch.setattr(os, "replace", crash(os.replace))
    monkeypatch.setattr(os, "rename", crash(os.rename))
    monkeypatch.setattr(shutil, "move", crash(shutil.move))


def test_a_commit_that_fails_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "train.jsonl"
    target.write_text("old\n")
    f = AtomicFile(target)
    f.write(b"new\n")
    _crash_on_move(monkeypatch, lambda name: ".tmp-" in name)
    with pytest.raises(OSError, match="power cut"):
        f.commit()
    assert target.read_text() == "old\n"


def test_a_commit_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.json"
    target.parent.mkdir()
    target.write_text("old")
    with AtomicFile(target) as f:
        f.write(b"new")
        assert target.read_text() == "old"  # nothing visible before the commit
    assert target.read_text() == "new" and os.listdir(target.parent) == ["a.json"]
    assert f.sha256.hexdigest() == "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"  # sha256(b"new")


def test_an_exception_in_the_block_aborts(tmp_path):
    with pytest.raises(RuntimeError), AtomicFile(tmp_path / "a.txt") as f:
        f.write(b"half")
        raise RuntimeError("disk on fire")
    assert os.listdir(tmp_path) == []


def test_text_and_json(tmp_path):
    assert write_text_atomic(tmp_path / "a.md", "é\n") == tmp_path / "a.md"
    assert (tmp_path / "a.md").read_bytes() == "é\n".encode()
    assert write_json_atomic(str(tmp_path / "b.json"), {"k": "é"}) == str(tmp_path / "b.json")
    assert (tmp_path / "b.json").read_bytes() == '{\n "k": "é"\n}\n'.encode()


def test_a_directory_that_fails_to_move_in_keeps_the_previous_one(tmp_path, monkeypatch):
    out = tmp_path / "final"
    out.mkdir()
    (out / "weights").write_text("old")
    _crash_on_move(monkeypatch, lambda name: name.startswith(".final.") and ".old-" not in name)
    with pytest.raises(OSError, match="power cut"), atomic_directory(out) as tmp:
        (tmp / "weights").write_text("new")
    assert (out / "weights").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["final"]


def test_a_directory_replaces_the_previous_one_whole(tmp_path):
    out = tmp_path / "final"
    out.mkdir()
    (out / "stale").write_text("old")
    with atomic_directory(out) as tmp:
        (tmp / "weights").write_text("new")
    assert os.listdir(out) == ["weights"] and os.listdir(tmp_path) == ["final"]
