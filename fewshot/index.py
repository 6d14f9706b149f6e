"""Support index: FAISS inner-product search over unit vectors, with ids so examples come and go one by one.

Exact (``IndexIDMap2(IndexFlatIP)``) up to :data:`APPROX_ABOVE` vectors; above it, with ``kind="auto"``,
an inverted-file index (``IndexIVFFlat``, Jégou et al. 2011) that still supports removal by id. The switch
size and ``nprobe`` come from ``bench/speed.py``: below it exact search is already fast enough.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from .errors import FewShotError

APPROX_ABOVE = 50_000
"""Vectors above which ``kind="auto"`` switches from exact to IVF search (see ``bench/speed.py``)."""
KINDS = ("auto", "exact", "ivf")


class SupportIndex:
    """Exact cosine search (``IndexIDMap2(IndexFlatIP)`` over L2-normalised vectors).

    >>> idx = SupportIndex(3)
    >>> idx.add(np.array([7]), np.eye(3, dtype="float32")[:1])
    >>> idx.search(np.eye(3, dtype="float32")[:1], k=1)[1].tolist()
    [[7]]
    """

    def __init__(self, dim: int, kind: str = "auto", nprobe: int = 32) -> None:
        if dim < 1:
            raise FewShotError(f"index dimension must be >= 1, got {dim}")
        if kind not in KINDS:
            raise FewShotError(f"index kind must be one of {KINDS}, got {kind!r}")
        self.dim, self.kind, self.nprobe = dim, kind, nprobe
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def approximate(self) -> bool:
        return isinstance(self._index, faiss.IndexIVF)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, dim) under the int64 ``ids`` (n,)."""
        vectors = self._check(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (vectors.shape[0],):
            raise FewShotError(f"got {ids.shape[0]} ids for {vectors.shape[0]} vectors")
        self._index.add_with_ids(vectors, ids)
        if self.kind == "ivf" or (self.kind == "auto" and len(self) > APPROX_ABOVE):
            if not self.approximate:
                self._to_ivf()

    def _to_ivf(self) -> None:
        """Rebuild the stored vectors into an IVF index (k-means on a sample; removal by id still works)."""
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, len(ids))
        nlist = int(max(1, min(4 * np.sqrt(len(ids)), len(ids) // 39)))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).permutation(len(vectors))[: nlist * 64]]
        ivf.train(sample)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        ivf.nprobe = min(self.nprobe, nlist)
        ivf.add_with_ids(vectors, ids)
        self._index = ivf

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

    def memory_bytes(self) -> int:
        """Bytes of vector storage (what grows with the support set)."""
        return len(self) * self.dim * 4

    def save(self, path: str | Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: str | Path) -> SupportIndex:
        index = faiss.read_index(str(path))
        out = cls(index.d)
        if isinstance(index, faiss.IndexIVF):
            index = faiss.extract_index_ivf(index)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        out._index = index
        return out

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise FewShotError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        return vectors
