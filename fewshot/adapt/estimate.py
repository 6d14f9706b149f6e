"""Cross-validated accuracy on the support set alone, and a hint when labels overlap.

The estimate splits each label's examples into folds, fits a rule on the other folds and classifies the
held-out one, as the classifier will classify texts it has not seen. The default rule is the nearest
centred prototype (Snell et al. 2017, "Prototypical Networks for Few-shot Learning"): the initialisation of
the product's head, milliseconds to fit, so the estimate can run every few training steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..rules import l2_normalize

Rule = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``rule(train_vectors, train_label_indices, test_vectors) -> predicted label indices``."""


def fold_ids(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold of each example (``-1``: always trains, its label has fewer than 2 examples)."""
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), -1, dtype=np.int64)
    for lab in np.unique(labels):
        rows = np.flatnonzero(labels == lab)
        if len(rows) >= 2:
            out[rows] = (rng.permutation(len(rows)) + rng.integers(folds)) % folds
    return out


def prototype_similarities(train: np.ndarray, y: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, cosines)``: each test vector's cosine to each label's centred, unit-length mean (labels sorted)."""
    center = train.mean(axis=0)
    labels = np.unique(y)
    protos = np.stack([l2_normalize(train[y == c] - center).mean(axis=0) for c in labels])
    return labels, l2_normalize(test - center) @ l2_normalize(protos).T


def prototype_rule(train: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Nearest centred, unit-length label mean (cosine): the product head's starting point."""
    labels, sims = prototype_similarities(train, y, test)
    return labels[sims.argmax(axis=1)]


def fold_split(labels: np.ndarray, folds: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(held-out rows, training rows)`` of one fold; None when it holds no row or its training rows have
    fewer than 2 labels (nothing to tell apart)."""
    test, train = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
    if len(test) == 0 or len(np.unique(labels[train])) < 2:
        return None
    return test, train


def prototype_margin(vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray, fold: int) -> float:
    """Sum over ``fold``'s held-out rows of the cosine to their own label's centred prototype (fitted on the other
    folds) minus the largest cosine to another label's: how clearly held-out texts sit with their label, a
    continuous companion to the held-out accuracy, which a few dozen texts make coarse."""
    split = fold_split(labels, folds, fold)
    if split is None:
        return 0.0
    test, train = split
    classes, sims = prototype_similarities(vectors[train], labels[train], vectors[test])
    rows = np.flatnonzero(np.isin(labels[test], classes))  # a label with no training row has no prototype
    own = np.searchsorted(classes, labels[test][rows])
    mine = sims[rows, own]
    sims[rows, own] = -np.inf
    return float(np.sum(mine - sims[rows].max(axis=1)))


def held_out_predictions(vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray, fold: int,
                         rule: Rule = prototype_rule) -> tuple[np.ndarray, np.ndarray]:
    """``(held-out rows, their predicted labels)`` for one fold."""
    split = fold_split(labels, folds, fold)
    if split is None:
        return np.flatnonzero(folds == fold)[:0], labels[:0]
    test, train = split
    return test, rule(vectors[train], labels[train], vectors[test])


def cv_accuracy(vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray, rule: Rule = prototype_rule) -> float:
    """Held-out accuracy over all folds of ``folds`` (see :func:`fold_ids`)."""
    right = total = 0
    for f in sorted(set(folds.tolist()) - {-1}):
        rows, pred = held_out_predictions(vectors, labels, folds, f, rule)
        right += int((pred == labels[rows]).sum())
        total += len(rows)
    return right / total if total else float("nan")


@dataclass
class OverlapHint:
    """Which labels the instant classifier confuses on held-out examples (cross-validated)."""

    estimate: float  # cross-validated accuracy of the prototype rule
    pairs: list[tuple[str, str, float]] = field(default_factory=list)  # (true, predicted, share of true's examples)
    confusable: bool = False  # worth offering fine-tuning
    message: str = ""


def overlap_hint(vectors: np.ndarray, labels: Sequence[str], *, folds: int = 5, seed: int = 0,
                 min_share: float = 0.2, max_accuracy: float = 0.9, top: int = 5) -> OverlapHint:
    """Say when labels overlap (held-out examples of one label go to another): "fine-tuning may help".

    Cheap (no encoding: ``vectors`` are the classifier's). ``confusable`` when the estimate is below
    ``max_accuracy`` and some label sends at least ``min_share`` of its held-out examples to one other label.
    """
    names = np.asarray([str(x) for x in labels], dtype=object)
    classes, y = np.unique(names, return_inverse=True)
    fid = fold_ids(y, folds, seed)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for f in range(folds):
        rows, pred = held_out_predictions(np.asarray(vectors, dtype=np.float64), y, fid, f)
        np.add.at(confusion, (y[rows], pred), 1)
    held = confusion.sum(axis=1)
    total = int(held.sum())
    estimate = float(np.trace(confusion) / total) if total else float("nan")
    share = confusion / np.maximum(held[:, None], 1)
    np.fill_diagonal(share, 0.0)
    found = [(str(classes[a]), str(classes[b]), float(share[a, b])) for a, b in zip(*np.nonzero(share >= min_share))]
    found.sort(key=lambda p: -p[2])
    confusable = bool(found) and estimate < max_accuracy
    if confusable:
        shown = "; ".join(f"{a} -> {b} ({s:.0%})" for a, b, s in found[:top])
        message = (f"these labels overlap: fine-tuning may help (estimated accuracy {estimate:.0%}; "
                   f"held-out examples went to another label: {shown})")
    else:
        message = f"labels are well separated (estimated accuracy {estimate:.0%}): fine-tuning is unlikely to help"
    return OverlapHint(estimate, found[:top], confusable, message)
