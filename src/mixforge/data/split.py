"""Train / validation / test assignment: seeded, optionally stratified by label, whole groups on one side.

    assign_splits(n, (0.9, 0.05, 0.05), seed=0, labels=labels, groups=groups) -> array of 0/1/2 per row

Groups are sets of rows that must not be split (near-duplicates found by MinHash LSH, `near_duplicate_groups`),
so no test example has a near-copy in train. Within each label the groups are shuffled with the seed and each
gets its quantile in that label; all groups are then walked in quantile order and cut where the running row
count crosses each ratio. With single-row groups the counts are the ratios' nearest integers (100 rows at
0.9/0.05/0.05 give exactly 90/5/5) and every label keeps its share in each split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from mixforge.errors import ConfigError

SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")


def parse_ratios(ratios: Sequence[float] | str) -> tuple[float, ...]:
    """(train, validation[, test]) fractions summing to 1 ('0.9,0.05,0.05' or percents summing to 100)."""
    if isinstance(ratios, str):
        try:
            ratios = [float(x) for x in ratios.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"split: {ratios!r} is not a list of numbers such as 0.9,0.05,0.05") from None
    values = [float(x) for x in ratios]
    if not 1 <= len(values) <= 3:
        raise ConfigError(f"split: give 1 to 3 ratios (train, validation, test), got {len(values)}")
    if any(v < 0 for v in values):
        raise ConfigError(f"split: ratios must not be negative, got {values}")
    total = sum(values)
    if abs(total - 100) < 1e-6 and total > 1.5:
        values = [v / 100 for v in values]
        total = 1.0
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"split: ratios must sum to 1 (or 100), they sum to {total:g}")
    return tuple(values)


def assign_splits(
    n: int,
    ratios: Sequence[float],
    *,
    seed: int,
    labels: Sequence[str | None] | None = None,
    groups: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """The split index (0 train, 1 validation, 2 test) of each of `n` rows. Deterministic for a seed."""
    ratios = parse_ratios(ratios)
    bounds = np.cumsum(ratios)
    bounds[-1] = 1.0 + 1e-9  # the last split takes whatever rounding leaves
    group_of = np.arange(n) if groups is None else np.asarray(groups)
    if len(group_of) != n or (labels is not None and len(labels) != n):
        raise ValueError("labels and groups must have one entry per row")
    # rows of each group, and each group's label (its first row's): a group never straddles strata
    order = np.argsort(group_of, kind="stable")
    _, first, sizes = np.unique(group_of[order], return_index=True, return_counts=True)
    members = np.split(order, first[1:])
    strata: dict[str, list[int]] = {}
    for g, rows in enumerate(members):
        key = "" if labels is None or labels[rows[0]] is None else str(labels[rows[0]])
        strata.setdefault(key, []).append(g)
    # Each group gets its quantile inside its own (shuffled) stratum; walking all groups in quantile order and
    # cutting at the global ratios keeps every stratum's proportions and makes the overall counts exact.
    rng = np.random.default_rng(seed)
    order_keys: list[tuple[float, int, int]] = []
    for s_index, key in enumerate(sorted(strata)):
        gs = np.array(strata[key])
        gs = gs[rng.permutation(len(gs))]
        total = sizes[gs].sum()
        done = 0
        for g in gs:
            order_keys.append(((done + sizes[g] / 2) / total, s_index, int(g)))
            done += sizes[g]
    order_keys.sort()
    out = np.zeros(n, dtype=np.int8)
    done = 0
    for _, _, g in order_keys:
        middle = (done + sizes[g] / 2) / n
        out[members[g]] = int(np.searchsorted(bounds, middle, side="right"))
        done += sizes[g]
    return out


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent.get(x, x)
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_groups(texts: Iterable[str], *, threshold: float = 0.8, ngram: int = 5) -> np.ndarray:
    """A group id per text: texts linked by near-duplicate pairs (MinHash LSH) share one (the smallest index)."""
    from mixforge.data.dedup import NearDuplicates

    near = NearDuplicates(threshold, ngram=ngram)
    uf = _UnionFind()
    n = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal n
        for i, found in enumerate(near.check_many(list(range(n, n + len(batch))), batch), start=n):
            for other in found:
                uf.union(i, int(other))  # type: ignore[arg-type]
        n += len(batch)
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= 1_024:
            flush()
    flush()
    return np.array([uf.find(i) for i in range(n)], dtype=np.int64)
