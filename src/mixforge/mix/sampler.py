"""`MixSampler`: the deterministic, resumable, sharded sequence of (source, record index) per optimizer step.

For the trainer:

    sources = {"customer": SourceIndex.from_records(domain_records, count=count_tokens),
               "math/embedded": SourceIndex.from_jsonl(path, count=count_tokens), ...}
    schedule = mixing_config.source_schedule()     # or {"customer": 50, "math/embedded": 50}, or [(step, {...}), ...]
    sampler = MixSampler(sources, schedule, global_batch_size=micro * accumulation * world_size,
                         world_size=world_size, rank=rank, seed=seed, unit="examples", max_steps=1000)
    sampler.load_state_dict(checkpoint["mixer"])   # when resuming (check the manifest first: manifest.py)
    for batch in sampler:                           # one optimizer step: list[(source_name, record_index)] for THIS rank
        for micro in chunks(batch, micro_batch_size): ...forward/backward...
        optimizer.step(); tracker.log(sampler.metrics(), step=sampler.step)
        checkpoint["mixer"] = sampler.state_dict()   # small, JSON-serializable

What one global batch is, per unit:
- "examples": exactly `global_batch_size` records (micro x accumulation x world size). Rank r gets the r-th
  of W contiguous blocks of the global batch (so global_batch_size must be a multiple of world_size). Slots
  are filled by Tijdeman's earliest-deadline rule (weights.py): after every step, for every source,
  |records taken - ideal| <= 1 - 1/(2n-2) < 1; the slot order interleaves sources, so every block and every
  micro-batch cut from it is itself close to the mix.
- "tokens" / "loss_tokens": `global_batch_size` is a token budget per optimizer step (e.g. micro x max_seq_len x
  accumulation x world size when packing). Each source's cumulative ideal is budget x its cumulative share; it
  takes its next record while (tokens taken + half that record) < ideal, so after every step
  |tokens taken - ideal| <= half the longest record of that source (< one maximum-length record). The number
  of records per step varies; the records of a step are spread over ranks by tokens (each next record to the
  rank with the fewest so far), so ranks get disjoint shares of about budget / W tokens each. Pass token
  counts after truncation to max_seq_len. The shares hold whatever the trainer packs, since it uses every
  record of the step.

Within a source, records come in a seeded shuffled pass; a source that runs out starts a new shuffled pass
(never repeating a record before its pass is used up). A run lasts `max_steps`, or `epochs` passes over the
domain source: it stops at the first step whose ideal domain amount reaches epochs x the domain's size (the
taken amount is within the bound above of it). Same sources, schedule, batch, unit and seed -> the same
global sequence, whatever the world size; `state_dict()` after step k + `load_state_dict()` continues exactly
as an uninterrupted run does.

Memory: the index arrays given, plus one permutation (int32) per source for its current pass, plus for token
units one int64 array of midpoints per source.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mixforge.errors import ConfigError
from mixforge.fingerprint import canonical_record
from mixforge.io.jsonl import read_jsonl
from mixforge.mix.weights import DOMAIN, Schedule, SlotAllocator, as_fraction

Unit = Literal["examples", "tokens", "loss_tokens"]
UNITS: tuple[str, ...] = ("examples", "tokens", "loss_tokens")
STATE_VERSION = 1


@dataclass(frozen=True, eq=False)
class SourceIndex:
    """What the mixer knows of one source: its size and per-record token counts (never the records)."""

    num_records: int
    tokens: np.ndarray | None = None  # (num_records,) tokens per record, after truncation
    loss_tokens: np.ndarray | None = None  # (num_records,) tokens that carry loss (assistant tokens in SFT)
    fingerprint: str = ""  # content hash; the manifest compares it on resume
    location: str = ""  # file or hub id, for tracing
    rows: np.ndarray | None = None  # (num_records,) 1-based row in `location` of each record, when known

    def __post_init__(self) -> None:
        if self.num_records < 0:
            raise ConfigError(f"num_records must be >= 0, got {self.num_records}")
        for field in ("tokens", "loss_tokens", "rows"):
            arr = getattr(self, field)
            if arr is None:
                continue
            arr = np.asarray(arr)
            if arr.shape != (self.num_records,) or not np.issubdtype(arr.dtype, np.integer):
                raise ConfigError(f"{field} must be an integer array of shape ({self.num_records},), got "
                                  f"{arr.dtype} {arr.shape}")
            if arr.size and arr.min() < 0:
                raise ConfigError(f"{field} must be >= 0")
            object.__setattr__(self, field, arr)  # any integer dtype, kept as given (int32 halves memory)

    def units(self, unit: Unit) -> np.ndarray | None:
        return None if unit == "examples" else self.tokens if unit == "tokens" else self.loss_tokens

    def content_fingerprint(self) -> str:
        """The given fingerprint, or a hash of the size and token arrays when none was given."""
        if self.fingerprint:
            return self.fingerprint
        h = hashlib.sha256(str(self.num_records).encode())
        for arr in (self.tokens, self.loss_tokens):
            h.update(b"-" if arr is None else np.ascontiguousarray(arr).tobytes())
        return "sizes:" + h.hexdigest()[:16]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], *,
                     count: Callable[[Mapping[str, Any]], tuple[int, int]] | None = None,
                     location: str = "", rows: Sequence[int] | None = None) -> SourceIndex:
        """Stream records once: hash their content (sha256 of canonical JSON) and, with `count`, record each
        one's (tokens, loss_tokens). The records are not kept."""
        h = hashlib.sha256()
        tokens: list[int] = []
        loss: list[int] = []
        n = 0
        for rec in records:
            h.update(canonical_record(rec))
            if count is not None:
                t, lt = count(rec)
                tokens.append(int(t))
                loss.append(int(lt))
            n += 1
        return cls(num_records=n, tokens=np.asarray(tokens, np.int64) if count else None,
                   loss_tokens=np.asarray(loss, np.int64) if count else None,
                   fingerprint="sha256:" + h.hexdigest()[:32], location=location,
                   rows=np.asarray(rows, np.int64) if rows is not None else None)

    @classmethod
    def from_jsonl(cls, path: str | Path, *, count: Callable[[Mapping[str, Any]], tuple[int, int]] | None = None
                   ) -> SourceIndex:
        """Index a JSONL file of canonical records (blank lines skipped; rows remembered for tracing)."""
        path = Path(path)
        rows: list[int] = []

        def records() -> Iterator[dict]:
            for row, rec in read_jsonl(path):
                rows.append(row)
                yield rec

        index = cls.from_records(records(), count=count, location=str(path))
        return cls(index.num_records, index.tokens, index.loss_tokens, index.fingerprint, str(path),
                   np.asarray(rows, np.int64))


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


class _Stream:
    """One source's shuffled passes: pass number, cursor in the pass, and what has been taken."""

    def __init__(self, name: str, index: SourceIndex, units: np.ndarray | None, seed: int) -> None:
        self.name, self.index, self.units, self.seed = name, index, units, seed
        self.n = index.num_records
        self.units_per_pass = int(units.sum()) if units is not None else self.n
        self.passes = 0  # completed passes
        self.cursor = 0
        self.records = 0
        self.tokens = 0
        self.loss_tokens = 0
        self.taken_units = 0  # in the mixing unit (records for "examples")
        self._perm: np.ndarray | None = None
        self._mid2: np.ndarray | None = None  # 2 x midpoint (in units) of each record of this pass

    def perm(self) -> np.ndarray:
        if self._perm is None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, _name_key(self.name), self.passes]))
            perm = rng.permutation(self.n)
            self._perm = perm.astype(np.int32) if self.n < 2**31 else perm
            if self.units is not None:
                lengths = self.units[self._perm]
                self._mid2 = 2 * np.cumsum(lengths, dtype=np.int64) - lengths
        return self._perm

    def _next_pass(self) -> None:
        self.passes += 1
        self.cursor = 0
        self._perm = self._mid2 = None

    def take_count(self, count: int) -> np.ndarray:
        parts = []
        while count > 0:
            perm = self.perm()
            k = min(count, self.n - self.cursor)
            parts.append(perm[self.cursor:self.cursor + k])
            self.cursor += k
            count -= k
            if self.cursor == self.n:
                self._next_pass()
        return self._account(parts)

    def take_until(self, ideal: Fraction) -> np.ndarray:
        """Take records while (units taken + half the next record) < ideal."""
        parts = []
        target2 = math.ceil(2 * ideal)  # integer v < 2*ideal  <=>  v < ceil(2*ideal)
        while True:
            perm = self.perm()
            base2 = 2 * self.passes * self.units_per_pass
            k = int(np.searchsorted(self._mid2, target2 - base2, side="left"))
            if k > self.cursor:
                parts.append(perm[self.cursor:k])
                self.cursor = k
            if k < self.n:
                break
            self._next_pass()
        return self._account(parts)

    def _account(self, parts: list[np.ndarray]) -> np.ndarray:
        idx = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        self.records += len(idx)
        if self.index.tokens is not None:
            self.tokens += int(self.index.tokens[idx].sum())
        if self.index.loss_tokens is not None:
            self.loss_tokens += int(self.index.loss_tokens[idx].sum())
        self.taken_units += len(idx) if self.units is None else int(self.units[idx].sum())
        return idx

    def state(self) -> dict[str, int]:
        return {"passes": self.passes, "cursor": self.cursor, "records": self.records, "tokens": self.tokens,
                "loss_tokens": self.loss_tokens, "units": self.taken_units}

    def load(self, state: Mapping[str, Any]) -> None:
        self.passes, self.cursor = int(state["passes"]), int(state["cursor"])
        self.records, self.tokens = int(state["records"]), int(state["tokens"])
        self.loss_tokens, self.taken_units = int(state["loss_tokens"]), int(state["units"])
        self._perm = self._mid2 = None


class MixSampler:
    """The mixer. Iterate it for this rank's (source_name, record_index) list of each optimizer step."""

    def __init__(
        self,
        sources: Mapping[str, SourceIndex],
        schedule: Schedule | Mapping[str, float | Fraction] | Sequence[tuple[int, Mapping[str, float | Fraction]]],
        *,
        global_batch_size: int,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
        unit: Unit = "examples",
        max_steps: int | None = None,
        epochs: float | None = None,
        domain: str = DOMAIN,
    ) -> None:
        self.schedule = schedule if isinstance(schedule, Schedule) else Schedule(schedule)
        problems = []
        if unit not in UNITS:
            problems.append(f"unit: {unit!r} is not one of {', '.join(UNITS)}")
        if global_batch_size < 1:
            problems.append(f"global_batch_size: must be >= 1, got {global_batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            problems.append(f"rank {rank} / world_size {world_size}: need 0 <= rank < world_size")
        elif unit == "examples" and global_batch_size % world_size:
            problems.append(f"global_batch_size {global_batch_size} is not a multiple of world_size {world_size}")
        if seed < 0:
            problems.append(f"seed: must be >= 0, got {seed}")
        missing = [n for n in self.schedule.names if n not in sources]
        if missing:
            problems.append(f"schedule names sources that were not given: {', '.join(missing)}")
        if problems:
            raise ConfigError(problems)
        self.names = self.schedule.names
        self.unit: Unit = unit
        self.global_batch_size, self.world_size, self.rank, self.seed = global_batch_size, world_size, rank, seed
        self.domain = domain
        self.sources = {n: sources[n] for n in self.names}
        active = {n for ws in self.schedule.shares for n, w in zip(self.names, ws, strict=True) if w > 0}
        self._streams: list[_Stream] = []
        for name in self.names:
            index = self.sources[name]
            units = index.units(unit)
            if unit != "examples" and units is None and name in active:
                raise ConfigError(f"source {name!r}: unit {unit!r} needs per-record {unit} counts")
            if name in active and (index.num_records == 0 or (units is not None and units.sum() == 0)):
                raise ConfigError(f"source {name!r} has a share but no records (or no {unit})")
            self._streams.append(_Stream(name, index, units, seed))
        self._alloc = SlotAllocator(self.schedule, global_batch_size) if unit == "examples" else None
        self.step = 0  # optimizer steps done
        self.total_steps = self._total_steps(max_steps, epochs)
        self.last_global: list[tuple[str, int]] = []
        self._last_counts: dict[str, tuple[int, int, int]] = {}

    # ------------------------------------------------------------------ length of the run

    def _total_steps(self, max_steps: int | None, epochs: float | None) -> int | None:
        if max_steps is not None:
            if max_steps < 1:
                raise ConfigError(f"max_steps: must be >= 1, got {max_steps}")
            return int(max_steps)
        if epochs is None:
            return None
        if self.domain not in self.names:
            raise ConfigError(f"epochs counts passes over {self.domain!r}, which is not in the mix")
        i = self.names.index(self.domain)
        size = self._streams[i].units_per_pass  # records, or units for token mixing
        target = as_fraction(epochs) * size / self.global_batch_size
        steps = self.schedule.first_step_reaching(i, target)
        if steps is None:
            raise ConfigError(f"{self.domain!r} never reaches {epochs:g} epochs: its share drops to 0")
        return max(1, steps)

    def __len__(self) -> int:
        if self.total_steps is None:
            raise TypeError("this sampler has no length: give max_steps or epochs")
        return self.total_steps

    # ------------------------------------------------------------------ the sequence

    def __iter__(self) -> Iterator[list[tuple[str, int]]]:
        while self.total_steps is None or self.step < self.total_steps:
            yield self.next_batch()

    def next_batch(self) -> list[tuple[str, int]]:
        """Advance one optimizer step; return this rank's (source, record index) list."""
        before = [(s.records, s.tokens, s.loss_tokens) for s in self._streams]
        batch = self._next_global()
        self._last_counts = {s.name: (s.records - b[0], s.tokens - b[1], s.loss_tokens - b[2])
                             for s, b in zip(self._streams, before, strict=True)}
        self.last_global = batch
        self.step += 1
        return self.shard(batch)

    def _next_global(self) -> list[tuple[str, int]]:
        if self._alloc is not None:
            slots = self._alloc.next_step()
            counts = np.bincount(slots, minlength=len(self.names))
            taken = {i: iter(self._streams[i].take_count(int(c)).tolist()) for i, c in enumerate(counts) if c}
            return [(self.names[i], next(taken[i])) for i in slots]
        ideal = self.schedule.cumulative(self.step + 1)
        names, keys, order, idxs = [], [], [], []
        for i, stream in enumerate(self._streams):
            if ideal[i] == 0:
                continue
            idx = stream.take_until(ideal[i] * self.global_batch_size)
            m = len(idx)
            if m:
                names.append(i)
                idxs.append(idx)
                keys.append((np.arange(m) + 0.5) / m)  # spread each source evenly over the step
                order.append(np.full(m, i))
        if not idxs:
            return []
        key, src, rec = np.concatenate(keys), np.concatenate(order), np.concatenate(idxs)
        perm = np.lexsort((src, key))
        return [(self.names[s], r) for s, r in zip(src[perm].tolist(), rec[perm].tolist(), strict=True)]

    def ranks_of(self, batch: Sequence[tuple[str, int]]) -> list[int]:
        """The rank that trains each record of a global batch: B/W contiguous slots each for "examples"; for token
        units, each record in order goes to the rank with the fewest units so far (lowest rank on ties)."""
        if self.world_size == 1:
            return [0] * len(batch)
        if self.unit == "examples":  # contiguous blocks: the slot order is low-discrepancy, so each block is mixed
            per = len(batch) // self.world_size
            return [pos // per for pos in range(len(batch))]
        load = [0] * self.world_size
        ranks = []
        for name, idx in batch:
            r = min(range(self.world_size), key=load.__getitem__)
            load[r] += int(self.sources[name].units(self.unit)[idx])
            ranks.append(r)
        return ranks

    def shard(self, batch: Sequence[tuple[str, int]], rank: int | None = None) -> list[tuple[str, int]]:
        """This rank's disjoint share of a global batch (the union over ranks is the global batch)."""
        rank = self.rank if rank is None else rank
        if self.world_size == 1:
            return list(batch)
        if self.unit == "examples":
            per = len(batch) // self.world_size
            return list(batch[rank * per:(rank + 1) * per])
        return [item for item, r in zip(batch, self.ranks_of(batch), strict=True) if r == rank]

    # ------------------------------------------------------------------ telemetry

    def ideal(self, steps: int | None = None) -> dict[str, Fraction]:
        """Each source's ideal cumulative amount after `steps` steps (records, or units), exactly."""
        steps = self.step if steps is None else steps
        return {n: c * self.global_batch_size for n, c in zip(self.names, self.schedule.cumulative(steps),
                                                                strict=True)}

    def metrics(self, prefix: str = "mix") -> dict[str, float]:
        """Realized mix of the last step and so far, against the target, as flat metrics (global, all ranks):
        `{prefix}/{source}/{records,tokens,loss_tokens}` this step, `..._total` so far, `share` (realized
        cumulative share in the mixing unit), `target_share`, and `deviation` (taken - ideal, in the unit)."""
        out: dict[str, float] = {}
        ideal = self.schedule.cumulative_float(self.step) * self.global_batch_size
        done = max(sum(s.taken_units for s in self._streams), 1)
        budget = float(ideal.sum()) or 1.0
        for s, want in zip(self._streams, ideal.tolist(), strict=True):
            rec, tok, loss = self._last_counts.get(s.name, (0, 0, 0))
            p = f"{prefix}/{s.name}"
            out[f"{p}/records"] = rec
            out[f"{p}/records_total"] = s.records
            if s.index.tokens is not None:
                out[f"{p}/tokens"] = tok
                out[f"{p}/tokens_total"] = s.tokens
            if s.index.loss_tokens is not None:
                out[f"{p}/loss_tokens"] = loss
                out[f"{p}/loss_tokens_total"] = s.loss_tokens
            out[f"{p}/share"] = s.taken_units / done
            out[f"{p}/target_share"] = want / budget
            out[f"{p}/deviation"] = s.taken_units - want
            out[f"{p}/passes"] = s.passes + s.cursor / max(s.n, 1)
        return out

    def taken(self) -> dict[str, int]:
        """Cumulative amount taken per source, in the mixing unit."""
        return {s.name: s.taken_units for s in self._streams}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Small and JSON-serializable: the step, and per source its pass, cursor and totals."""
        return {"version": STATE_VERSION, "step": self.step, "unit": self.unit, "seed": self.seed,
                "global_batch_size": self.global_batch_size,
                "sources": {s.name: s.state() for s in self._streams}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        problems = []
        for key, mine in (("unit", self.unit), ("seed", self.seed), ("global_batch_size", self.global_batch_size)):
            if state.get(key) != mine:
                problems.append(f"mixer state has {key}={state.get(key)!r}, this run has {mine!r}")
        if set(state.get("sources", {})) != set(self.names):
            problems.append(f"mixer state has sources {sorted(state.get('sources', {}))}, this run has {sorted(self.names)}")
        if state.get("version") != STATE_VERSION:
            problems.append(f"mixer state version {state.get('version')!r} is not {STATE_VERSION}")
        if problems:
            raise ConfigError(problems, hint="resume with the same mix, or start a new run")
        self.step = int(state["step"])
        for s in self._streams:
            s.load(state["sources"][s.name])
        if self._alloc is not None:
            self._alloc.load_state_dict({"step": self.step, "taken": [s.records for s in self._streams]})
        self.last_global, self._last_counts = [], {}

    def skip_to(self, step: int) -> None:
        """Fast-forward (from the current state) to just before optimizer step `step` (0-based)."""
        if step < self.step:
            raise ValueError(f"cannot skip back from step {self.step} to {step}")
        if self._alloc is not None:
            while self._alloc.step < step:
                self._alloc.next_step()
            for s, want in zip(self._streams, self._alloc.taken, strict=True):
                s.take_count(want - s.records)  # the same records, in one jump per source
        else:
            ideal = self.schedule.cumulative(step)
            for s, c in zip(self._streams, ideal, strict=True):
                if c:
                    s.take_until(c * self.global_batch_size)
        self.step = step
        self.last_global, self._last_counts = [], {}
