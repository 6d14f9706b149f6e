"""Cheap text augmentation for encoder training: EDA's random deletion and random swap (Wei & Zou 2019, "EDA:
Easy Data Augmentation Techniques for Boosting Performance on Text Classification Tasks", EMNLP), without its
WordNet synonyms, so nothing is downloaded. The teacher embeds each augmented copy, and the student learns to
match it there too: distillation on inputs the training texts do not contain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import FewShotError


def eda_copy(text: str, rng: np.random.Generator, delete: float, swaps: int) -> str:
    """``text`` with each word dropped with probability ``delete`` (one word always kept) and ``swaps`` random
    pairs of words exchanged; a text of two or more words always changes."""
    words = text.split()
    if len(words) < 2:
        return text
    kept = [w for w in words if rng.random() >= delete] or [words[int(rng.integers(len(words)))]]
    for _ in range(swaps if len(kept) > 1 else 0):
        i, j = rng.choice(len(kept), size=2, replace=False)
        kept[i], kept[j] = kept[j], kept[i]
    if kept == words:  # nothing dropped and the swaps undid each other or exchanged equal words
        k = int(rng.integers(len(words)))
        kept = words[:k] + words[k + 1:]
    return " ".join(kept)


def augment_texts(texts: Sequence[str], seed: int, delete: float = 0.1, swaps: int = 1) -> list[str]:
    """One :func:`eda_copy` of each text, the same for the same ``seed``."""
    if not 0.0 <= delete < 1.0:
        raise FewShotError(f"the deletion probability must be in [0, 1), got {delete!r}")
    if swaps < 0:
        raise FewShotError(f"swaps must be >= 0, got {swaps!r}")
    rng = np.random.default_rng(seed)
    return [eda_copy(t, rng, delete, swaps) for t in texts]
