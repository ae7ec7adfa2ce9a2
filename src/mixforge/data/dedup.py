"""Duplicate detection: exact (hash of the normalized text) and near-duplicate (MinHash LSH, datasketch).

    seen = ExactDedup();        seen.check(text) -> None or the id of the first copy
    near = NearDuplicates(0.8); near.check(key, text) -> keys of the earlier near-duplicates

Both keep state across batches, so they work on a stream. Memory: about 100 bytes a row for exact dedup
(a 128-bit digest in a dict), about 1 KB a row for MinHash LSH at 128 permutations.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable

import numpy as np

_PUNCT = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")
_MULT = np.uint64(1_000_003)
_MASK32 = np.uint64(0xFFFFFFFF)


def normalize(text: str) -> str:
    """Lower case, NFKC, punctuation removed, runs of whitespace collapsed: what 'the same text' means here."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


class ExactDedup:
    """First copy wins; later rows with the same normalized text are duplicates of it."""

    def __init__(self) -> None:
        import xxhash

        self._hash = xxhash.xxh3_128_intdigest
        self._seen: dict[int, Hashable] = {}

    def check(self, key: Hashable, text: str) -> Hashable | None:
        """None for a new text (and remember it under `key`), else the key of its first copy."""
        digest = self._hash(normalize(text).encode("utf-8"))
        first = self._seen.get(digest)
        if first is None:
            self._seen[digest] = key
        return first

    def __len__(self) -> int:
        return len(self._seen)


class NearDuplicates:
    """MinHash (datasketch, affine32 scheme) over word n-gram shingles, indexed with MinHashLSH.

    `threshold` is the estimated Jaccard similarity above which two texts count as near-duplicates;
    `ngram` words make one shingle (5 is the usual choice for documents, fewer for short texts)."""

    def __init__(self, threshold: float = 0.8, *, num_perm: int = 128, ngram: int = 5, seed: int = 1) -> None:
        from datasketch import MinHash, MinHashLSH

        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold, self.num_perm, self.ngram = threshold, num_perm, ngram
        self._template = MinHash(num_perm=num_perm, seed=seed, scheme="affine32")
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._signatures: dict[Hashable, np.ndarray] = {}  # for the exact estimate against each candidate
        self._MinHash = MinHash

    def minhash(self, text: str):
        import xxhash

        words = normalize(text).encode("utf-8").split()
        hashed = np.fromiter(map(xxhash.xxh32_intdigest, words), dtype=np.uint64, count=len(words))
        n = self.ngram
        if len(hashed) >= n:
            shingles = np.zeros(len(hashed) - n + 1, dtype=np.uint64)
            for j in range(n):  # polynomial hash of each window of n word hashes, kept to 32 bits
                shingles = (shingles * _MULT + hashed[j:len(hashed) - n + 1 + j]) & _MASK32
        else:
            shingles = hashed
        m = self._MinHash(num_perm=self.num_perm, hashfunc=int, permutations=self._template.permutations,
                          scheme="affine32")
        if len(shingles):
            m.update_batch(np.unique(shingles).tolist())
        return m

    def check(self, key: Hashable, text: str, *, index_duplicates: bool = True) -> list[Hashable]:
        """Keys of earlier texts whose estimated similarity is at least the threshold. The text is then
        indexed, unless it has near-duplicates and index_duplicates is False (dedup keeps the first copy)."""
        m = self.minhash(text)
        found = []
        for other in self._lsh.query(m):
            if float(np.mean(self._signatures[other] == m.hashvalues)) >= self.threshold:
                found.append(other)
        if index_duplicates or not found:
            self._lsh.insert(key, m, check_duplication=False)
            self._signatures[key] = m.hashvalues
        return found

    def __len__(self) -> int:
        return len(self._signatures)
