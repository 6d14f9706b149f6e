"""Out of scope: the in-scope score, the thresholds on it and the "none of these" examples (their one home); a
batch's scores read together are :mod:`fewshot.batch_reading`'s.

A text is answered ``unknown_label`` when

- the "none of these" examples win it (the rule's extra class, fitted as label-sized groups of them:
  :func:`none_groups`; its in-scope score is then ``-inf``), or
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
"""Seed of the fold assignment: the automatic threshold is a function of the examples and their order (folds are
drawn by position within each label, so the same examples listed in another order may move it)."""


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


NONE_SEED = 0
"""Seed of the k-means that groups the "none of these" examples (the groups are a function of the examples)."""
NONE_KMEANS_RUNS = 4
"""k-means restarts (``n_init``) of that grouping; the run with the tightest groups is kept."""


def none_group_count(label_idx: np.ndarray, n_classes: int) -> int:
    """How many classes the rule fits for the "none of these" examples (label index ``n_classes``): one per
    label-sized group of them (their count over the median examples per real label), at least 1; 0 without."""
    none = label_idx == n_classes
    if not none.any():
        return 0
    counts = np.bincount(label_idx[~none], minlength=n_classes)
    size = max(1.0, float(np.median(counts[counts > 0]))) if (counts > 0).any() else 1.0
    return int(min(none.sum(), max(1, round(none.sum() / size))))


def none_groups(vectors: np.ndarray, k: int) -> np.ndarray:
    """The group (0, 1, ...) of each "none of these" example, from its vector: k-means into ``k`` groups (fewer
    when the examples have fewer distinct vectors; all 0 when ``k`` <= 1).

    Why: "none of these" examples are usually texts of several unrelated kinds. Fitted as one class, their
    mean is a generic point between them that draws in-scope texts (on HWU64 with held-out sibling intents,
    40 such examples cost 8 points of in-scope accuracy); as label-sized groups each stays where its texts
    are (docs/research/unknown-in-domain.md). Read back as one class by :class:`FoldedNoneHead`.
    """
    k = min(k, len(np.unique(vectors, axis=0)))  # k-means cannot make more groups than distinct rows
    if k <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=k, n_init=NONE_KMEANS_RUNS, random_state=NONE_SEED)
    groups = kmeans.fit_predict(vectors.astype(np.float64))
    return np.unique(groups, return_inverse=True)[1].astype(np.int64)


class FoldedNoneHead:
    """A head fitted with the "none of these" examples as several classes (:func:`none_groups`), read as one:
    its last column is their summed probability (log-sum-exp of their logits)."""

    def __init__(self, head: Any, n_classes: int) -> None:
        self.head, self.n_classes = head, n_classes

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = self.head.logits(x)
        return np.column_stack([z[:, :self.n_classes], np.logaddexp.reduce(z[:, self.n_classes:], axis=1)])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.head.predict_proba(x)
        return np.column_stack([p[:, :self.n_classes], p[:, self.n_classes:].sum(axis=1)])


def threshold_for_drop(scores: np.ndarray, right: np.ndarray, max_drop: float) -> float:
    """The threshold that rejects ``max_drop`` of all rows among those ``right`` (the accuracy it costs).

    That is the ``q = max_drop * n / n_right`` quantile of the right rows' scores, interpolated linearly like
    ``np.quantile``, so that it moves smoothly as examples are added (with 30 examples one example is already
    3.3 %). On new texts it costs more than the budget with small label sets (about twice with 10 labels x 5
    examples); the Weibull plotting position would remove that bias but sits at the lowest right score there,
    which let plainly off-topic texts through on the bundled label sets (docs/research/unknown-in-domain.md). When no
    row is right the cost cannot be estimated: the lowest score (reject only what scores below every row),
    not the highest (reject everything, "free" by that estimate).
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
        found = fold_scores(vectors, label_idx, n_classes, fit_head, fold != f, fold == f)
        if found is not None:
            scores.append(found[0])
            right.append(found[1])
    if not scores:
        raise FewShotError("the automatic unknown threshold (auto_unknown=True) needs at least 2 examples "
                           "for some label; add examples")
    return np.concatenate(scores), np.concatenate(right)


def fold_scores(vectors: np.ndarray, label_idx: np.ndarray, n_classes: int,
                fit_head: Callable[[np.ndarray, np.ndarray], Any] | None, train: np.ndarray, test: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """One fold of :func:`cross_validated_scores`: the ``test`` rows' in-scope scores and whether the rule fitted
    on the ``train`` rows (boolean masks) classifies them right; None when the fold cannot be scored."""
    if not test.any() or len(np.unique(label_idx[train])) < 2:
        return None
    if fit_head is None:
        real_train = np.flatnonzero(train & (label_idx < n_classes))
        sims = vectors[test] @ vectors[real_train].T
        return sims.max(axis=1), label_idx[real_train][sims.argmax(axis=1)] == label_idx[test]
    head = fit_head(vectors[train], label_idx[train])
    return (head_scores(head, vectors[test], n_classes),
            head.predict_proba(vectors[test]).argmax(axis=1) == label_idx[test])


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


def ambiguous(probs: np.ndarray, margin: float | None, unknown: np.ndarray | None = None) -> np.ndarray:
    """Which rows are "ambiguous: A or B?": the top two probabilities differ by less than ``margin`` (None:
    never), and the row is not answered unknown (unknown takes precedence).

    The top-2 margin is the ambiguity test of Rasa's ``ambiguity_threshold`` (default 0.1 there too); where it
    fires, the pair holds the right label far more often than the top label alone (docs/research/unknown-in-domain.md).
    """
    flagged = np.zeros(len(probs), dtype=bool)
    if margin is None or not len(probs) or probs.shape[1] < 2:
        return flagged
    top2 = -np.partition(-probs, 1, axis=1)[:, :2]
    flagged = (top2[:, 0] - top2[:, 1]) < margin
    return flagged & ~unknown if unknown is not None else flagged


def operating_curve(scores: np.ndarray, right: np.ndarray, is_oos: np.ndarray | None = None, *,
                    thresholds: np.ndarray | list[float] | tuple[float, ...] = ()) -> Any:
    """What each in-scope-score threshold would do on labelled texts, for choosing an operating point.

    ``scores``: in-scope scores of the texts (``-inf``: "none of these" won, always unknown); ``right``:
    whether the top label is the gold label (False for out-of-scope rows); ``is_oos``: whether the gold label
    is the unknown label (None: no such rows). A text is answered unknown when its score is below the
    threshold (as :func:`rejected`). One row per candidate threshold (every distinct finite score, one just
    above the highest, which rejects everything, and any extra ``thresholds``), ascending, with:

    - ``coverage``: share of all texts answered with a label (falls as the threshold rises);
    - ``accuracy_kept``: in-scope accuracy with the rejection applied (an in-scope text answered unknown
      counts wrong), the number the automatic threshold's ``auto_max_drop`` budgets;
    - ``answered_accuracy``: accuracy among the in-scope texts answered with a label (NaN when none);
    - ``oos_recall``: share of the out-of-scope texts answered unknown (NaN without any);
    - ``accuracy``: accuracy over all texts with the unknown rule applied (an out-of-scope text answered
      unknown counts right).

    Returns a pandas DataFrame with the columns ``threshold`` and the five above.
    """
    import pandas as pd

    scores = np.asarray(scores, dtype=np.float64)
    right = np.asarray(right, dtype=bool)
    oos = np.zeros(len(scores), dtype=bool) if is_oos is None else np.asarray(is_oos, dtype=bool)
    if not (len(scores) == len(right) == len(oos)):
        raise FewShotError(f"scores, right and is_oos must have the same length, got {len(scores)}, "
                           f"{len(right)} and {len(oos)}")
    if not len(scores):
        raise FewShotError("operating_curve needs at least one scored text")
    finite = np.unique(scores[np.isfinite(scores)])
    top = np.nextafter(finite[-1], np.inf) if len(finite) else 0.0
    extra = np.asarray([t for t in thresholds if t is not None and np.isfinite(t)], dtype=np.float64)
    cut = np.unique(np.concatenate([finite, [top], extra]))
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    below = np.searchsorted(ranked, cut, side="left")  # rows with score < threshold: answered unknown
    n, n_oos = len(scores), int(oos.sum())
    n_in = n - n_oos
    kept_right = np.concatenate([[0], np.cumsum((right & ~oos)[order])])
    oos_rejected = np.concatenate([[0], np.cumsum(oos[order])])[below]
    in_answered = (n_in - (below - oos_rejected))
    right_kept = kept_right[-1] - kept_right[below]
    with np.errstate(invalid="ignore", divide="ignore"):
        answered_acc = np.where(in_answered > 0, right_kept / np.maximum(in_answered, 1), np.nan)
    return pd.DataFrame({
        "threshold": cut,
        "coverage": (n - below) / n,
        "accuracy_kept": right_kept / n_in if n_in else np.full(len(cut), np.nan),
        "answered_accuracy": answered_acc,
        "oos_recall": oos_rejected / n_oos if n_oos else np.full(len(cut), np.nan),
        "accuracy": (right_kept + oos_rejected) / n,
    })
