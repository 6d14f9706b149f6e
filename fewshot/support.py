"""The support set: the user's examples (texts, labels, ids, vectors) and their FAISS search index.

:class:`SupportSet` keeps the examples in insertion order with stable ids; :class:`SupportIndex` is the
FAISS inner-product search over their unit vectors, with ids so examples come and go one by one.

Exact (``IndexIDMap2(IndexFlatIP)``) up to :data:`APPROX_ABOVE` vectors; above it, with ``kind="auto"``,
an inverted-file index (``IndexIVFFlat``, Jégou et al. 2011) that still supports removal by id. The switch
size and ``nprobe`` come from ``bench/speed.py``: below it exact search is already fast enough.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from .errors import FewShotError, FewShotWarning, user_stacklevel

APPROX_ABOVE = 50_000
"""Vectors above which ``kind="auto"`` switches from exact to IVF search (see ``bench/speed.py``)."""
KINDS = ("auto", "exact", "ivf")
IVF_TRAIN_PER_LIST = 64
"""Vectors sampled per IVF list to train its k-means: above faiss's minimum of 39 per centroid (which the list
count keeps the index within), a quarter of the 256 it would sample itself, so the rebuild stays quick."""
IVF_SAMPLE_SEED = 0
"""Seed of that sample: a fixed one, so the same stored vectors always give the same index and search results."""


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
        order = np.random.default_rng(IVF_SAMPLE_SEED).permutation(len(vectors))
        sample = vectors[order[: nlist * IVF_TRAIN_PER_LIST]]
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


class SupportSet:
    """The examples in insertion order: ``texts``, ``labels``, int64 ``ids`` (stable while they stay),
    ``vectors`` (n, dim) and the :class:`SupportIndex` over them."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.texts: list[str] = []
        self.labels: list[str] = []
        self.ids: list[int] = []
        self.next_id = 0
        self.index = SupportIndex(dim)
        self.vectors = np.empty((0, dim), dtype=np.float32)
        self.id_to_row: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, texts: list[str], labels: list[str], vectors: np.ndarray) -> None:
        """Append examples (warns when a text is already under another label)."""
        seen: dict[str, str] = dict(zip(self.texts, self.labels))
        for text, label in zip(texts, labels):
            if seen.setdefault(text, label) != label:
                warnings.warn(f"the example {text[:60]!r} is under two labels, {seen[text]!r} and {label!r}; "
                              "it cannot help tell them apart", FewShotWarning, stacklevel=user_stacklevel())
        ids = list(range(self.next_id, self.next_id + len(texts)))
        self.next_id += len(texts)
        self.index.add(np.array(ids), vectors)
        self.texts += texts
        self.labels += labels
        self.ids += ids
        self.vectors = np.vstack([self.vectors, vectors])
        self._reindex()

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only the examples at ``rows`` (in order); the others leave the index too."""
        keep_set = set(rows)
        gone = [self.ids[i] for i in range(len(self.ids)) if i not in keep_set]
        self.index.remove(np.array(gone, dtype=np.int64))
        self.texts = [self.texts[i] for i in rows]
        self.labels = [self.labels[i] for i in rows]
        self.ids = [self.ids[i] for i in rows]
        self.vectors = self.vectors[list(rows)]
        self._reindex()

    @classmethod
    def restore(cls, texts: list[str], labels: list[str], ids: list[int], index: SupportIndex) -> SupportSet:
        """A support set from a saved index and the examples it was built from (no re-encoding)."""
        out = cls(index.dim)
        out.index = index
        out.texts, out.labels, out.ids = texts, labels, [int(i) for i in ids]
        out.next_id = max(out.ids) + 1 if out.ids else 0
        out.vectors = index.vectors(np.array(out.ids))
        out._reindex()
        return out

    def _reindex(self) -> None:
        self.id_to_row = {id_: row for row, id_ in enumerate(self.ids)}

    def frame(self) -> pd.DataFrame:
        """The examples as a ``text,label`` DataFrame."""
        return pd.DataFrame({"text": self.texts, "label": self.labels})

    def nearest(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest examples per query: ``(similarities (n, k) float32, rows (n, k), -1 pad)``.

        FAISS's float32 similarities change in the last digit with the number of queries per search; one
        dot product per (text, neighbour) makes them a function of the text alone (batch-independent).
        """
        sims, ids = self.index.search(vectors, k)
        rows = np.vectorize(lambda i: self.id_to_row.get(int(i), -1), otypes=[np.int64])(ids)
        exact = np.einsum("nd,nkd->nk", vectors, self.vectors[np.maximum(rows, 0)])
        return np.where(rows >= 0, exact, sims).astype(np.float32), rows
