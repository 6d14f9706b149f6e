"""Out of scope: the in-scope score, the thresholds on it, and the "none of these" examples (their one home).

A text is answered ``unknown_label`` when

- the "none of these" examples win it (the rule's extra class; its in-scope score is then ``-inf``), or
- its top probability is below ``min_confidence``, or
- its in-scope score is below the score threshold: ``score_threshold`` when set, else, with
  ``auto_unknown``, the automatic threshold derived from the examples alone (:func:`auto_threshold`).

The in-scope score is the fitted head's top real-label logit (``matching``: the top similarity to a real
label's example): unbounded, higher means closer to the examples. The automatic threshold follows the
cross-validation idea of estimating a rejection threshold from held-out in-scope data (as the out-of-scope
baselines of Larson et al. 2019, "An Evaluation Dataset for Intent Classification and Out-of-Scope
Prediction", tune one on held-out data), here from the user's own examples in 5 folds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .config import ClassifierConfig
from .errors import FewShotError

FOLDS = 5
"""Folds of the cross-validated scores behind the automatic threshold."""
FOLD_SEED = 0
"""Seed of the fold assignment (the automatic threshold is a function of the examples alone)."""


def head_scores(head: Any, vectors: np.ndarray, n_classes: int) -> np.ndarray:
    """A head's in-scope score: its top logit over the first ``n_classes`` (the real labels), or the top
    log-probability when it exposes no logits."""
    if hasattr(head, "logits"):
        return head.logits(vectors)[:, :n_classes].max(axis=1).astype(np.float64)
    return np.log(np.maximum(head.predict_proba(vectors)[:, :n_classes].max(axis=1), 1e-30))


def matching_scores(sims: np.ndarray, neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``matching``'s in-scope score: the top similarity to a neighbour of a real label (-inf: none)."""
    real = (neighbour_labels >= 0) & (neighbour_labels < n_classes)
    return np.where(real, sims, -np.inf).max(axis=1).astype(np.float64)


def split_none(probs: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Rule output with a "none of these" column last -> ``(probabilities over the real labels, none wins)``.

    Where "none of these" wins, the real labels' probabilities are renormalised among themselves (uniform
    when they hold no mass), so ``predict_proba`` always describes the real labels.
    """
    none_wins = probs.argmax(axis=1) == n_classes
    real = probs[:, :-1]
    mass = real.sum(axis=1, keepdims=True)
    real = np.where(mass > 0, real / np.maximum(mass, 1e-300), 1.0 / n_classes)
    return real, none_wins


def threshold_for_drop(scores: np.ndarray, right: np.ndarray, max_drop: float) -> float:
    """The threshold that rejects ``max_drop`` of all rows among those ``right`` (the accuracy it costs).

    That is the ``max_drop * n / n_right`` quantile of the right rows' scores, interpolated linearly like
    ``np.quantile``, so that it moves smoothly as examples are added (with 30 examples one example is
    already 3.3 %). When no row is right the cost cannot be estimated: the lowest score (reject only what
    scores below every row), not the highest (reject everything, "free" by that estimate).
    """
    good = np.asarray(scores)[np.asarray(right, dtype=bool)]
    if not len(good):
        return float(np.min(scores))
    return float(np.quantile(good, min(1.0, max_drop * len(scores) / len(good))))


def cross_validated_scores(vectors: np.ndarray, label_idx: np.ndarray, n_classes: int,
                           fit_head: Callable[[np.ndarray, np.ndarray], Any] | None, *,
                           folds: int = FOLDS, seed: int = FOLD_SEED) -> tuple[np.ndarray, np.ndarray]:
    """In-scope scores of held-out examples, and whether the rule fitted without them classifies them right.

    Each real label's examples are split into ``folds`` folds ("none of these" examples, label index
    ``n_classes``, always train); ``fit_head(x, y)`` refits the head without a fold (``None``: the
    ``matching`` rule, which scores by the nearest remaining example).
    """
    rng = np.random.default_rng(seed)
    fold = np.full(len(label_idx), -1, dtype=np.int64)
    for c in range(n_classes):
        rows = np.flatnonzero(label_idx == c)
        fold[rows] = rng.permutation(len(rows)) % folds
    scores, right = [], []
    for f in range(folds):
        train, test = fold != f, fold == f
        if not test.any() or len(np.unique(label_idx[train])) < 2:
            continue
        if fit_head is None:
            real_train = np.flatnonzero(train & (label_idx < n_classes))
            sims = vectors[test] @ vectors[real_train].T
            scores.append(sims.max(axis=1))
            right.append(label_idx[real_train][sims.argmax(axis=1)] == label_idx[test])
            continue
        head = fit_head(vectors[train], label_idx[train])
        scores.append(head_scores(head, vectors[test], n_classes))
        right.append(head.predict_proba(vectors[test]).argmax(axis=1) == label_idx[test])
    if not scores:
        raise FewShotError("the automatic unknown threshold (auto_unknown=True) needs at least 2 examples "
                           "for some label; add examples")
    return np.concatenate(scores), np.concatenate(right)


def auto_threshold(scores: np.ndarray, right: np.ndarray, config: ClassifierConfig) -> float:
    """The automatic threshold from cross-validated ``scores``: the one expected to cost ``auto_max_drop`` of
    in-scope accuracy (:func:`threshold_for_drop`), or with ``auto_quantile`` set, that quantile of all scores."""
    if config.auto_quantile is not None:
        return float(np.quantile(scores, config.auto_quantile))
    return threshold_for_drop(scores, right, config.auto_max_drop)


def rejected(probs: np.ndarray, scores: np.ndarray | None, *, min_confidence: float | None,
             score_threshold: float | None) -> np.ndarray:
    """Which rows are answered unknown: "none of these" won (score ``-inf``), top probability below
    ``min_confidence``, or in-scope score below ``score_threshold`` (None: that test is off)."""
    none_wins = np.isneginf(scores) if scores is not None else np.zeros(len(probs), dtype=bool)
    reject = none_wins
    if min_confidence is not None:
        reject = reject | (probs.max(axis=1) < min_confidence)
    if score_threshold is not None:
        if scores is None:
            raise FewShotError("a score threshold (auto_unknown / score_threshold) needs in-scope scores; "
                               "use predict_with_scores()")
        reject = reject | (scores < score_threshold)
    return reject
