"""Groups no label covers: texts of a batch, answered unknown or barely in scope, that resemble each other.

An unknown intent of the labels' own domain ("mortgages", asked to a bot that knows cards and transfers) is
hard to refuse one text at a time: it reads like the known labels (docs/unknown-in-domain.md). In a batch it
repeats, though, and its texts sit together, on both sides of the threshold. Grouping the texts answered
unknown with the least in-scope others (average-linkage agglomerative clustering on cosine distance, the usual
baseline of intent discovery) shows them as a few groups; named once, as a new label or as "none of these"
examples, a group makes the classifier answer the rest of that intent too, including the texts the threshold
let through (measured in ``bench/oos_discover.py``).

>>> groups = uncovered_groups(clf, texts)          # doctest: +SKIP
>>> [texts[i] for i in groups[0][:3]]              # the largest group's most typical texts  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np

from .errors import FewShotError

if TYPE_CHECKING:
    from .classifier import FewShotClassifier

GROUP_DISTANCE = 0.5
"""Largest average cosine distance between the texts of one group (chosen on the valid splits: see
docs/research/unknown-in-domain.md); lower makes fewer, tighter groups."""
MIN_GROUP_SIZE = 3
"""Fewest texts that make a group (one or two similar texts are no pattern)."""
MAX_GROUP_TEXTS = 3000
"""Most texts grouped at once (the clustering holds every pair's distance); beyond it the least in-scope ones."""
POOL = 1.5
"""Texts grouped, as a multiple of those answered unknown: they and half as many again of the least in-scope
others, so that an unknown intent's texts just above the threshold join its group (chosen on the valid splits:
docs/research/unknown-in-domain.md)."""


def label_worth(counts: Sequence[int]) -> int:
    """How many of a group's texts to add as examples: a label's worth (the median examples per label of
    ``counts``), at least :data:`MIN_GROUP_SIZE`. Why: as "none of these" examples, a whole large group costs
    in-scope accuracy for little more recall than its most typical texts (docs/research/unknown-in-domain.md)."""
    counts = [int(c) for c in counts if c > 0]
    return max(MIN_GROUP_SIZE, int(np.median(counts))) if counts else MIN_GROUP_SIZE


def _check(distance: float, min_size: int) -> None:
    if not isinstance(distance, Real) or isinstance(distance, bool) or not 0.0 < float(distance) <= 2.0:
        raise FewShotError(f"distance must be a cosine distance between 0 and 2, got {distance!r}")
    if not isinstance(min_size, (int, np.integer)) or isinstance(min_size, bool) or min_size < 2:
        raise FewShotError(f"min_size must be a whole number of at least 2, got {min_size!r}")


def group_vectors(vectors: np.ndarray, *, distance: float = GROUP_DISTANCE,
                  min_size: int = MIN_GROUP_SIZE) -> list[np.ndarray]:
    """Groups of similar rows of ``vectors``: row indices, most typical first (closest to the group's mean
    direction), largest group first; rows in no group of at least ``min_size`` are left out."""
    _check(distance, min_size)
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise FewShotError(f"vectors must be a 2-d array (one row per text), got shape {vectors.shape}")
    if len(vectors) < min_size:
        return []
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.preprocessing import normalize

    unit = normalize(vectors)
    ids = AgglomerativeClustering(n_clusters=None, distance_threshold=float(distance), metric="cosine",
                                  linkage="average").fit_predict(unit)
    groups = []
    for g in np.unique(ids):
        rows = np.flatnonzero(ids == g)
        if len(rows) < min_size:
            continue
        typical = unit[rows] @ normalize(unit[rows].mean(axis=0, keepdims=True))[0]
        groups.append(rows[np.argsort(-typical, kind="stable")])
    groups.sort(key=lambda rows: (-len(rows), int(rows.min())))
    return groups


def pool_rows(unknown: np.ndarray, scores: np.ndarray, *, pool: float = POOL,
              max_texts: int = MAX_GROUP_TEXTS) -> np.ndarray:
    """The rows to group (sorted positions): those answered unknown (``unknown``, a flag per row) and, up to
    ``pool`` times their number in all, the others with the lowest in-scope ``scores``; at most ``max_texts``,
    the unknown ones and then the least in-scope kept. Empty when no row is answered unknown."""
    if not isinstance(pool, Real) or isinstance(pool, bool) or not pool >= 1:
        raise FewShotError(f"pool must be a number of at least 1 (a multiple of the unknown answers), got {pool!r}")
    if not isinstance(max_texts, (int, np.integer)) or isinstance(max_texts, bool) or max_texts < 1:
        raise FewShotError(f"max_texts must be a positive whole number, got {max_texts!r}")
    unknown = np.asarray(unknown, dtype=bool)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    if len(unknown) != len(scores):
        raise FewShotError(f"one score per row: {len(unknown)} rows, {len(scores)} scores")
    total = min(int(round(pool * unknown.sum())), int(max_texts))
    order = np.lexsort((scores, ~unknown))  # unknown rows first, each part by rising score
    return np.sort(order[:total])


def uncovered_groups(clf: FewShotClassifier, texts: Sequence[str], *, distance: float = GROUP_DISTANCE,
                     min_size: int = MIN_GROUP_SIZE, pool: float = POOL, max_texts: int = MAX_GROUP_TEXTS,
                     batch_aware: bool = False) -> list[list[int]]:
    """Groups of similar ``texts`` among those ``clf`` answers unknown (no label; multi-label: an empty answer)
    and the least in-scope others (:func:`pool_rows`): positions in ``texts``, most typical first, largest
    group first. ``batch_aware``: ``texts`` answered and scored read together, as
    ``clf.predict_with_scores(texts, batch_aware=True)`` does."""
    _check(distance, min_size)
    answers, _, scores = clf.predict_with_scores(texts, batch_aware=batch_aware)
    unknown_label = clf.config.unknown_label
    unknown = np.array([len(a) == 0 if isinstance(a, list) else a == unknown_label for a in answers], dtype=bool)
    rows = pool_rows(unknown, scores, pool=pool, max_texts=max_texts)
    if len(rows) < min_size:
        return []
    vectors = clf.encoder.encode([texts[i] for i in rows])
    return [rows[g].tolist() for g in group_vectors(vectors, distance=distance, min_size=min_size)]
