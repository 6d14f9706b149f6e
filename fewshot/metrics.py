"""Scoring a classifier on labelled texts: accuracy, macro-F1, per-label F1 (shared by the CLI and the app)."""

from __future__ import annotations

import time
from typing import Any

from sklearn.metrics import accuracy_score, f1_score


NO_UNKNOWN = {"min_confidence": None, "auto_unknown": False, "score_threshold": None}
"""Unknown-option overrides that leave only the "none of these" examples answering unknown."""


def evaluate(clf: Any, texts: list[str], gold: list[str], *, progress: Any = None, unknown: bool = True
             ) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label F1 and the predictions of ``clf`` on labelled texts, with timing.

    ``unknown=True`` (default): the classifier's unknown options apply, as when it labels a file; a text whose
    gold label is the unknown label (``clf.config.unknown_label``) counts right when answered unknown. The
    result then also holds ``in_scope_accuracy`` (over texts with a real gold label, unknown answers wrong),
    ``n_unknown`` (texts labelled unknown), ``unknown_recall`` (their share answered unknown; None without
    any) and ``answered`` (share of all texts answered with a label). ``unknown=False``: the unknown
    options are not applied (accuracy over the real labels; texts the "none of these" examples win are
    still answered unknown).
    """
    start = time.perf_counter()
    pred = [str(p) for p in clf.predict(texts, progress=progress, **({} if unknown else NO_UNKNOWN))]
    seconds = time.perf_counter() - start
    gold = [str(g) for g in gold]
    labels = sorted(set(gold) | set(pred))
    per_label = f1_score(gold, pred, labels=labels, average=None, zero_division=0)
    gold_labels = sorted(set(gold))
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=gold_labels, average="macro", zero_division=0)),
        "n": len(gold),
        "n_labels": len(gold_labels),
        "per_label_f1": {lab: round(float(f), 4) for lab, f in zip(labels, per_label) if lab in set(gold)},
        "counts": {lab: gold.count(lab) for lab in gold_labels},
        "predict_seconds": seconds,
        "predictions": pred,
    } | (_unknown_summary(gold, pred, clf.config.unknown_label) if unknown else {})


def _unknown_summary(gold: list[str], pred: list[str], unknown_label: str) -> dict[str, Any]:
    """In-scope accuracy, unknown recall and the answered share of predictions made with the unknown rule."""
    in_scope = [(g, p) for g, p in zip(gold, pred) if g != unknown_label]
    n_unknown = len(gold) - len(in_scope)
    caught = sum(p == unknown_label for g, p in zip(gold, pred) if g == unknown_label)
    return {
        "in_scope_accuracy": sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else None,
        "n_unknown": n_unknown,
        "unknown_recall": caught / n_unknown if n_unknown else None,
        "answered": sum(p != unknown_label for p in pred) / max(len(pred), 1),
    }


def evaluate_curve(clf: Any, texts: list[str], gold: list[str], *, progress: Any = None) -> Any:
    """The operating curve of ``clf`` on labelled texts (:func:`fewshot.unknown.operating_curve`): one row per
    in-scope-score threshold, for choosing the ``score_threshold`` to save with the classifier.

    Texts whose gold label is ``clf.config.unknown_label`` are the out-of-scope rows (``oos_recall``). The
    curve holds the automatic threshold's point (column ``automatic`` True on it; absent when the examples
    are too few to derive it) and the configured ``score_threshold``'s (column ``chosen``).
    """
    import numpy as np

    from .unknown import operating_curve

    gold = [str(g) for g in gold]
    _, probs, scores = clf.predict_with_scores(texts, progress=progress, **NO_UNKNOWN)
    top = clf.classes_[probs.argmax(axis=1)] if len(probs) else np.array([], dtype=object)
    is_oos = np.array([g == clf.config.unknown_label for g in gold], dtype=bool)
    right = (top == np.array(gold, dtype=object)) & ~is_oos
    auto = _automatic_threshold(clf)
    chosen = clf.config.score_threshold
    curve = operating_curve(scores, right, is_oos if is_oos.any() else None,
                            thresholds=[t for t in (auto, chosen) if t is not None])
    curve["automatic"] = curve["threshold"] == auto if auto is not None else False
    curve["chosen"] = curve["threshold"] == chosen if chosen is not None else False
    return curve


def _automatic_threshold(clf: Any) -> float | None:
    """``clf.auto_threshold_``, or None where the examples are too few to derive it (a curve is still drawn)."""
    from .errors import FewShotError

    try:
        return float(clf.auto_threshold_)
    except FewShotError:  # fewer than 2 examples per label: no held-out fold, no automatic point to mark
        return None


def evaluate_oos(clf: Any, in_texts: list[str], gold: list[str], oos_texts: list[str]) -> dict[str, Any]:
    """Out-of-scope detection: in-scope accuracy with "unknown" counted wrong, OOS recall/precision, AUROC.

    AUROC is threshold-free (the in-scope score ranks out-of-scope texts lowest); the other numbers use
    the classifier's unknown options (``auto_unknown=True`` when none is set).
    """
    from sklearn.metrics import roc_auc_score

    config = clf.config
    options = {k: getattr(config, k) for k in NO_UNKNOWN}
    if config.min_confidence is None and not config.uses_score:
        options["auto_unknown"] = True
    unknown = config.unknown_label
    _, in_probs, in_scores = clf.predict_with_scores(in_texts, **NO_UNKNOWN)
    _, oos_probs, oos_scores = clf.predict_with_scores(oos_texts, **NO_UNKNOWN)
    in_pred = [str(p) for p in clf.labels_from_proba(in_probs, in_scores, **options)]
    oos_pred = [str(p) for p in clf.labels_from_proba(oos_probs, oos_scores, **options)]
    if options["score_threshold"] is not None:
        threshold, kind = float(options["score_threshold"]), "in-scope score"
    elif options["auto_unknown"]:
        threshold, kind = clf.auto_threshold_, "auto (in-scope score)"
    else:
        threshold, kind = options["min_confidence"], "confidence"
    # "none of these" wins score -inf (always unknown); AUROC needs finite numbers, and any below the rest rank alike
    in_scores, oos_scores = _finite(in_scores, oos_scores)
    rejected_oos = sum(p == unknown for p in oos_pred)
    rejected_in = sum(p == unknown for p in in_pred)
    return {
        "in_scope_accuracy": sum(p == g for p, g in zip(in_pred, gold)) / max(len(gold), 1),
        "oos_recall": rejected_oos / max(len(oos_texts), 1),
        "oos_precision": rejected_oos / max(rejected_oos + rejected_in, 1),
        "oos_auroc": float(roc_auc_score([0] * len(in_scores) + [1] * len(oos_scores),
                                         [-s for s in in_scores] + [-s for s in oos_scores])),
        "threshold": threshold,
        "threshold_kind": kind,
        "n_oos": len(oos_texts),
    }


def _finite(*arrays: Any) -> list[Any]:
    """The arrays with ``-inf`` replaced by one number below every finite score in any of them."""
    import numpy as np

    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays] + [np.zeros(1)])
    floor = float(finite.min()) - 1.0
    return [np.where(np.isneginf(a), floor, a) for a in arrays]
