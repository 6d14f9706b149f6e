"""Support index: FAISS inner-product search over unit vectors, with ids so examples come and go one by one."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from .errors import FewShotError


class SupportIndex:
    """Exact cosine search (``IndexIDMap2(IndexFlatIP)`` over L2-normalised vectors).

    >>> idx = SupportIndex(3)
    >>> idx.add(np.array([7]), np.eye(3, dtype="float32")[:1])
    >>> idx.search(np.eye(3, dtype="float32")[:1], k=1)[1].tolist()
    [[7]]
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise FewShotError(f"index dimension must be >= 1, got {dim}")
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, dim) under the int64 ``ids`` (n,)."""
        vectors = self._check(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (vectors.shape[0],):
            raise FewShotError(f"got {ids.shape[0]} ids for {vectors.shape[0]} vectors")
        self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given ids; returns how many were removed."""
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar ids per query: ``(similarities, ids)``, both (n, k); ids -1 pad."""
        queries = self._check(queries)
        k = max(1, min(k, len(self)))
        return self._index.search(queries, k)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (n, dim)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.vstack([self._index.reconstruct(int(i)) for i in ids]).astype(np.float32)

    def save(self, path: str | Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: str | Path) -> SupportIndex:
        index = faiss.read_index(str(path))
        out = cls(index.d)
        out._index = index
        return out

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise FewShotError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        return vectors
