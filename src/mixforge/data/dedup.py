"""Duplicate detection: exact (hash of the normalized text) and near-duplicate (MinHash LSH, datasketch).

    seen = ExactDedup();        seen.check(text) -> None or the id of the first copy
    near = NearDuplicates(0.8); near.check(key, text) -> keys of the earlier near-duplicates

Both keep state across batches, so they work on a stream. Memory: about 100 bytes a row for exact dedup
(a 128-bit digest in a dict), about 1 KB a row for MinHash LSH at 128 permutations.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Hashable

import numpy as np

_PUNCT = re.compile(r"[^\w\s]+")
_ASCII_PUNCT = str.maketrans({c: " " for c in string.punctuation if c != "_"})  # as [^\w\s] on ASCII
_MULT = np.uint64(1_000_003)
_MASK32 = np.uint64(0xFFFFFFFF)
_CHUNK_SHINGLES = 32_768  # shingles permuted at once: (32k, 128) uint32 = 16 MB


def normalize(text: str) -> str:
    """Lower case, NFKC, punctuation removed, runs of whitespace collapsed: what 'the same text' means here.
    ASCII text (most of it) takes a translate() fast path, about 5x quicker than the regexes."""
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_PUNCT).split())
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_PUNCT.sub(" ", text).split())


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (an avalanching bijection), as datasketch's affine32 scheme applies it."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


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
    """MinHash signatures over word n-gram shingles, indexed with datasketch's MinHashLSH.

    Signatures follow datasketch's affine32 scheme (its permutations, the MurmurHash3 finalizer, then
    a*h+b mod 2^32; a test checks they equal `datasketch.MinHash.update_batch`'s) but are computed for a whole
    batch of texts in a few numpy operations rather than one MinHash object per text.
    `threshold` is the estimated Jaccard similarity above which two texts count as near-duplicates;
    `ngram` words make one shingle (5 is the usual choice for documents, fewer for short texts)."""

    def __init__(self, threshold: float = 0.8, *, num_perm: int = 128, ngram: int = 5, seed: int = 1) -> None:
        from datasketch import MinHash, MinHashLSH

        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold, self.num_perm, self.ngram, self.seed = threshold, num_perm, ngram, seed
        self.permutations = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._signatures: dict[Hashable, np.ndarray] = {}  # for the estimate against each LSH candidate

    def shingles(self, text: str) -> np.ndarray:
        """The distinct 32-bit hashes of the text's word n-grams (the words themselves when fewer)."""
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
        return np.unique(shingles.astype(np.uint32))

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(len(texts), num_perm) uint32 MinHash signatures; a text without words gets all 0xFFFFFFFF."""
        a, b = self.permutations
        out = np.full((len(texts), self.num_perm), 0xFFFFFFFF, dtype=np.uint32)
        parts = [self.shingles(t) for t in texts]
        i = 0
        while i < len(parts):
            j, total = i, 0
            while j < len(parts) and (total == 0 or total + len(parts[j]) <= _CHUNK_SHINGLES):
                total += len(parts[j])
                j += 1
            docs = [k for k in range(i, j) if len(parts[k])]
            if docs:
                hv = fmix32(np.concatenate([parts[k] for k in docs]))
                permuted = hv[:, None] * a[None, :] + b[None, :]  # uint32 arithmetic wraps: mod 2^32
                starts = np.cumsum([0] + [len(parts[k]) for k in docs[:-1]])
                out[docs] = np.minimum.reduceat(permuted, starts, axis=0)
            i = j
        return out

    def check_many(self, keys: list[Hashable], texts: list[str], *, index_duplicates: bool = True) -> list[
            list[Hashable]]:
        """For each text in order: the keys of earlier texts (including earlier ones in this call) whose
        estimated similarity is at least the threshold. Each text is then indexed, unless it has
        near-duplicates and index_duplicates is False (dedup keeps the first copy)."""
        return [self.check_signature(key, signature, index_duplicates=index_duplicates)
                for key, signature in zip(keys, self.signatures(texts), strict=True)]

    def check_signature(self, key: Hashable, signature: np.ndarray, *, index_duplicates: bool = True) -> list[
            Hashable]:
        """`check_many` for one precomputed signature (a row of `signatures`)."""
        from datasketch import LeanMinHash

        m = LeanMinHash(seed=self.seed, hashvalues=signature, scheme="affine32")
        found = [other for other in self._lsh.query(m)
                 if float(np.mean(self._signatures[other] == signature)) >= self.threshold]
        if index_duplicates or not found:
            self._lsh.insert(key, m, check_duplication=False)
            self._signatures[key] = signature
        return found

    def check(self, key: Hashable, text: str, *, index_duplicates: bool = True) -> list[Hashable]:
        """`check_many` for one text."""
        return self.check_many([key], [text], index_duplicates=index_duplicates)[0]

    def __len__(self) -> int:
        return len(self._signatures)
