"""Data for meta-training and its evaluation: labelled CSVs in, frozen embeddings cached on disk.

- :func:`read_labelled`: texts and labels of several training CSVs;
- :func:`embed_texts`: frozen embeddings, cached under ``$FEWSHOT_CACHE/embeddings`` by content and model;
- :class:`CachedEncoder`: an encoder over precomputed vectors (optionally through a trained head), so that
  :class:`fewshot.FewShotClassifier` can be evaluated many times without re-encoding (:func:`evaluate_csv`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FewShotError


def default_cache_dir() -> Path:
    """Where frozen embeddings are cached: ``$FEWSHOT_CACHE/embeddings`` (default ``~/.cache/fewshot``)."""
    from ..encoders.registry import cache_root

    return cache_root() / "embeddings"


def embed_texts(texts: Sequence[str], encoder: Any, *, cache_dir: Path | None = None,
                progress: bool = False, desc: str = "encoding") -> np.ndarray:
    """Frozen embeddings of ``texts`` (row order kept), cached on disk by content, model name, appended layers
    and the digest of a trained folder's weights."""
    texts = list(texts)
    path = None
    if cache_dir is not None:
        layers = list(getattr(encoder, "extra_layers", ()))  # other vectors from the same model: another key
        name = str(encoder.name) + (f" extra_layers={layers}" if layers else "")
        digest = getattr(encoder, "weights_digest", None)  # "default" names other trained weights in other releases
        name += f" weights={digest}" if digest else ""
        key = hashlib.sha256(("\x00".join([name, *texts])).encode()).hexdigest()[:32]
        path = Path(cache_dir) / f"{key}.npy"
        if path.is_file():
            vectors = np.load(path)
            if vectors.shape == (len(texts), encoder.dim):
                return vectors
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), desc=desc, unit="text", file=sys.stderr, mininterval=0.5)

    def update(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        vectors = encoder.encode(texts, progress=update)
    finally:
        if bar is not None:
            bar.close()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors.astype(np.float32))
    return vectors


def read_labelled(paths: Sequence[str | Path], text_column: str | None = None, label_column: str | None = None
                  ) -> tuple[list[str], list[str]]:
    """Texts and labels of every CSV in ``paths`` (read by :func:`fewshot.io.tables.read_labelled_table`). A label
    name already used by a file of another folder (another dataset, where it may mean another intent) is kept apart
    by the folder's name as prefix; files of one folder (splits of one dataset, e.g. ``train_10.csv`` and
    ``valid.csv``) share their labels."""
    from ..io.tables import read_labelled_table

    texts: list[str] = []
    labels: list[str] = []
    seen: dict[str, Path] = {}
    for path in paths:
        folder = Path(path).resolve().parent
        file_texts, file_labels = read_labelled_table(path, text_column, label_column)
        clash = {lab for lab in set(file_labels) if seen.get(lab, folder) != folder}
        for lab in set(file_labels):
            seen.setdefault(lab, folder)
        texts += file_texts
        labels += [f"{Path(path).parent.name}/{lab}" if lab in clash else lab for lab in file_labels]
    return texts, labels


def read_sentence_pairs(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """General sentence pairs for ``fewshot train --encoder --general-pairs``: a CSV (or any table
    :func:`fewshot.io.tables.read_table` reads) with columns ``text1``, ``text2`` and ``score``, the gold
    similarity in ``[0, 1]`` (an STS score of 0-5 divided by 5)."""
    from ..io.tables import read_table, row_number

    df = read_table(path, ["text1", "text2", "score"])
    try:
        score = df["score"].astype(float).to_numpy(np.float32)
    except ValueError:
        raise FewShotError(f"{path}: the score column must hold numbers in [0, 1]") from None
    bad = np.flatnonzero(~((score >= 0) & (score <= 1)))
    if len(bad):
        raise FewShotError(f"{path}: score must lie in [0, 1] (divide an STS 0-5 score by 5); row {row_number(bad[0])} "
                           f"has {float(score[bad[0]])}")
    if len(df) < 2:
        raise FewShotError(f"{path}: at least 2 sentence pairs are needed, found {len(df)}")
    return df["text1"].tolist(), df["text2"].tolist(), score


def head_transform(head: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> normalize(head(x))`` on numpy arrays, exactly what the encoder computes for a trained folder."""
    def transform(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return F.normalize(head(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))), dim=-1).numpy()
    return transform


class CachedEncoder:
    """An encoder over precomputed frozen vectors (falls back to ``base`` for unseen texts), optionally
    with a trained head: ``normalize(head(x))``, exactly what the encoder computes for a trained folder.
    Lets :class:`fewshot.FewShotClassifier` be evaluated without re-encoding."""

    def __init__(self, base: Any, vectors: dict[str, np.ndarray] | None = None, head: nn.Module | None = None,
                 name: str = "cached") -> None:
        self.base = base
        self.dim = int(base.dim)
        self.vectors = dict(vectors or {})
        self.transform = head_transform(head) if head is not None else None
        self.name = name

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember ``vectors`` (one row per text) as the frozen embeddings of ``texts``."""
        self.vectors.update(zip(texts, vectors))

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "dim": self.dim, "cached": len(self.vectors)}

    def similarity_floor(self) -> float:
        """The base encoder's (:func:`fewshot.batch_reading.similarity_floor`), or with a head its own calibrated
        one."""
        from ..batch_reading import encoder_floor, similarity_floor

        if self.transform is None:
            return similarity_floor(self.base)
        return encoder_floor(self)

    def encode(self, texts: Sequence[str], *, progress: Any = None) -> np.ndarray:
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.add(missing, self.base.encode(missing))
        out = np.stack([self.vectors[t] for t in texts]).astype(np.float32) if texts else np.empty((0, self.dim), np.float32)
        return self.transform(out) if self.transform is not None else out


def evaluate_csv(encoder: Any, support: tuple[list[str], list[str]], test: tuple[list[str], list[str]],
                 **options: Any) -> float:
    """Accuracy of :class:`fewshot.FewShotClassifier` (``options``: its config) fitted on ``support``.

    The classifier is imported here, not at module level: meta-training code stays importable without it
    and the package has no import cycle.
    """
    from ..classifier import FewShotClassifier

    clf = FewShotClassifier(encoder=encoder, **options).fit(*support)
    return float(np.mean(clf.predict(test[0]) == np.asarray(test[1], dtype=object)))
