"""Tokenized records -> tensors for one forward pass: padded rows, or packed rows.

Packing puts several records into one row of `seq_len` tokens. Positions restart at 0 for each record and no
attention mask is passed, so transformers derives a block-diagonal causal mask from the position ids
(`masking_utils.find_packed_sequence_indices`): no attention and no position leakage between records.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mixforge.train.tokenize import IGNORE, Tokenized


def pad_batch(records: Sequence[Tokenized], *, pad_id: int) -> dict[str, torch.Tensor]:
    """One row per record, right-padded to the longest; padding carries no loss and no attention."""
    width = max(len(r.input_ids) for r in records)
    ids = torch.full((len(records), width), pad_id, dtype=torch.long)
    labels = torch.full((len(records), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(records), width), dtype=torch.long)
    for row, r in enumerate(records):
        n = len(r.input_ids)
        ids[row, :n] = torch.tensor(r.input_ids)
        labels[row, :n] = torch.tensor(r.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def pack_rows(lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    """First-fit-decreasing bins of record indices whose lengths sum to at most seq_len (a record longer than
    seq_len has been truncated before). Deterministic: ties keep the input order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(seq_len - lengths[i])
    return bins


def pack_batch(records: Sequence[Tokenized], *, seq_len: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Records packed into as few rows of `seq_len` as fit; returns input_ids, labels and position_ids."""
    rows = pack_rows([len(r.input_ids) for r in records], seq_len)
    width = max(sum(len(records[i].input_ids) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            n = len(records[i].input_ids)
            ids[r, at : at + n] = torch.tensor(records[i].input_ids)
            labels[r, at : at + n] = torch.tensor(records[i].labels)
            labels[r, at] = IGNORE  # never predict a record's first token from the previous record
            positions[r, at : at + n] = torch.arange(n)
            at += n
        positions[r, at:] = torch.arange(width - at)  # trailing padding: a separate, loss-free segment
    return {"input_ids": ids, "labels": labels, "position_ids": positions}
