"""Scoring a classifier, or its answers, on labelled texts: accuracy, macro-F1, per-label precision / recall / F1,
what the unknown rule did (one implementation for the CLI, the app's Evaluate tab and Python)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sklearn.metrics import accuracy_score

from .errors import FewShotError
from .text import clean_labels, clean_texts

if TYPE_CHECKING:
    import pandas as pd


NO_UNKNOWN = {"min_confidence": None, "auto_unknown": False, "score_threshold": None}
"""Unknown-option overrides that leave only the "none of these" examples answering unknown."""

OOS_COST = 0.02
"""In-scope accuracy a threshold may cost in :func:`recall_at_cost` (2 points, the target the in-domain protocol
reports: docs/research/unknown-in-domain.md)."""


def evaluate(clf: Any, texts: list[str], gold: list[str], *, progress: Any = None, unknown: bool = True,
             batch_aware: bool = False, reading: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label F1 and the predictions of ``clf`` on labelled texts, with timing.

    ``unknown=True`` (default): the classifier's unknown options apply, as when it labels a file; a text whose
    gold label is the unknown label (``clf.config.unknown_label``) counts right when answered unknown. The
    result then also holds ``in_scope_accuracy`` (over texts with a real gold label, unknown answers wrong),
    ``n_unknown`` (texts labelled unknown), ``unknown_recall`` (their share answered unknown; None without
    any) and ``answered`` (share of all texts answered with a label). ``unknown=False``: the unknown
    options are not applied (accuracy over the real labels; texts the "none of these" examples win are
    still answered unknown); macro-F1, per-label F1 and ``n_labels`` then cover the real labels only, since
    rows labelled unknown are not meant to be answered so in that reading (they still count against the label
    they get). ``batch_aware``: the texts' in-scope scores are read together, as
    ``predict(..., batch_aware=True)`` reads a file. ``reading``: ``(probabilities, in-scope scores)`` of
    ``texts`` already computed (``predict_with_scores``, read together or not, e.g. in one batch with the
    out-of-scope texts that :func:`evaluate_oos` reads, so that both report one reading): nothing is encoded,
    ``batch_aware`` is not used.
    """
    _single_label(clf, "metrics.evaluate")
    texts = clean_texts(texts, "texts")
    gold = _gold_labels(texts, gold)  # "refund " is refund, as fit reads labels
    overrides = {} if unknown else NO_UNKNOWN
    start = time.perf_counter()
    if reading is not None:
        pred = [str(p) for p in clf.labels_from_proba(*_reading_rows(reading, len(texts)), **overrides)]
    else:
        pred = [str(p) for p in clf.predict(texts, progress=progress, batch_aware=batch_aware, **overrides)]
    seconds = time.perf_counter() - start
    unknown_label = clf.config.unknown_label
    return label_scores(gold, pred, unknown_label=unknown_label, unknown=unknown) | {
        "predict_seconds": seconds,
        "predictions": pred,
    } | (unknown_summary(gold, pred, unknown_label) if unknown else {})


def _single_label(clf: Any, what: str) -> None:
    """Refuse a multi-label classifier, whose answers are label lists: these measures would compare them with
    the gold cells as strings and report nonsense."""
    if getattr(clf.config, "multi_label", False):
        raise FewShotError(f"{what} is for single-label classifiers; for multi_label=True score the label sets "
                           "with fewshot.multilabel.multilabel_scores(true_sets, clf.predict(texts)) (micro-F1, "
                           "macro-F1, subset accuracy; `fewshot evaluate --multi-label` on the command line)")


def _gold_labels(texts: Any, gold: Any) -> list[str]:
    """``gold`` as labels (spaces trimmed as fit reads them), one per text: a missing label (NaN), a number or a
    length that differs from ``texts`` is refused, not scored as a label called "nan"."""
    gold = clean_labels(gold, "gold")
    if not len(texts):
        raise FewShotError("no texts to score: pass at least one labelled text")
    if len(gold) != len(texts):
        raise FewShotError(f"texts and gold must have the same length, got {len(texts)} and {len(gold)}")
    return gold


def real_labels(gold: Any, unknown_label: str) -> list[str]:
    """The gold labels but the unknown one, sorted: what macro-F1 averages over when every row is answered with a
    label (a row labelled unknown cannot be right there); all of them when every row is labelled unknown."""
    labels = sorted(set(gold))
    return [lab for lab in labels if lab != unknown_label] or labels


def _reading_rows(reading: tuple[Any, Any], n: int) -> tuple[Any, Any]:
    """``(probabilities, scores)`` checked to hold one row per text."""
    probs, scores = reading
    if len(probs) != n or len(scores) != n:
        raise FewShotError(f"reading holds {len(probs)} probability rows and {len(scores)} scores for {n} texts")
    return probs, scores


def unknown_summary(gold: Sequence[str], pred: Sequence[str], unknown_label: str = "unknown") -> dict[str, Any]:
    """What the unknown rule did, from answers ``pred`` made with it against ``gold`` (rows labelled
    ``unknown_label`` are the out-of-scope rows, right when answered unknown): ``in_scope_accuracy`` (over the
    other rows, an unknown answer wrong; None without any), ``n_unknown`` (rows labelled unknown),
    ``unknown_recall`` (their share answered unknown; None without any) and ``answered`` (share of all rows
    answered with a label)."""
    gold, pred = _label_pairs(gold, pred)
    in_scope = [(g, p) for g, p in zip(gold, pred) if g != unknown_label]
    n_unknown = len(gold) - len(in_scope)
    caught = sum(p == unknown_label for g, p in zip(gold, pred) if g == unknown_label)
    return {
        "in_scope_accuracy": sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else None,
        "n_unknown": n_unknown,
        "unknown_recall": caught / n_unknown if n_unknown else None,
        "answered": sum(p != unknown_label for p in pred) / max(len(pred), 1),
    }


def _label_pairs(gold: Sequence[str], pred: Sequence[str]) -> tuple[list[str], list[str]]:
    """``gold`` and ``pred`` as labels (:func:`fewshot.text.clean_labels`), checked to pair one to one."""
    gold, pred = clean_labels(gold, "gold"), clean_labels(pred, "pred")
    if not gold:
        raise FewShotError("no rows to score: pass at least one gold label")
    if len(gold) != len(pred):
        raise FewShotError(f"gold and pred must have the same length, got {len(gold)} and {len(pred)}")
    return gold, pred


def label_scores(gold: Sequence[str], pred: Sequence[str], *, unknown_label: str = "unknown",
                 unknown: bool = True) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label F1 (4 places), ``n``, ``n_labels`` (the labels scored) and ``counts`` (rows
    per gold label) of answers ``pred`` against ``gold``: the measures :func:`evaluate` reports.

    ``unknown=True``: answers made with the unknown rule; ``unknown_label`` is a label like the others (a row
    labelled so is right when answered unknown). ``unknown=False``: answers made without the rule; macro-F1,
    per-label F1 and ``n_labels`` cover the real labels only (:func:`real_labels`), a row labelled unknown
    counting against the label it got.
    """
    gold, pred = _label_pairs(gold, pred)
    gold_labels = sorted(set(gold))
    scored = gold_labels if unknown else real_labels(gold, unknown_label)
    f1 = per_label_scores(gold, pred, scored)["f1"]
    tally = Counter(gold)
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1.mean()),  # what f1_score(average="macro") gives over the same labels
        "n": len(gold),
        "n_labels": len(scored),
        "per_label_f1": {lab: round(float(f), 4) for lab, f in zip(scored, f1)},
        "counts": {lab: tally[lab] for lab in gold_labels},
    }


def per_label_scores(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """Precision, recall, F1 (0 where undefined) and ``n`` (rows with that gold label) of answers ``pred``
    against ``gold``, one row per label of ``labels`` (default: the gold labels, sorted), in that order."""
    import pandas as pd
    from sklearn.metrics import precision_recall_fscore_support

    gold, pred = _label_pairs(gold, pred)
    labels = sorted(set(gold)) if labels is None else [str(lab) for lab in labels]
    p, r, f, n = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return pd.DataFrame({"label": labels, "precision": p, "recall": r, "f1": f, "n": n.astype(int)})


def most_confused_with(gold: Sequence[str], pred: Sequence[str]) -> dict[str, str]:
    """For each gold label with wrong answers, the answer it most often got instead (ties: the one first given
    in row order), labels sorted."""
    gold, pred = _label_pairs(gold, pred)
    wrong: dict[str, Counter[str]] = {}
    for g, p in zip(gold, pred):
        if g != p:
            wrong.setdefault(g, Counter())[p] += 1
    return {lab: wrong[lab].most_common(1)[0][0] for lab in sorted(wrong)}


def apply_score_threshold(pred: Sequence[str], scores: Any, threshold: float | None,
                          unknown_label: str = "unknown") -> list[str]:
    """Answers with the unknown rule's score threshold: ``pred`` (made without the rule, as
    ``predict_with_scores(..., **NO_UNKNOWN)`` gives them) answered ``unknown_label`` where
    :func:`fewshot.unknown.rejected` rejects the in-scope score, i.e. below ``threshold`` or ``-inf`` ("none of
    these" won; ``threshold`` None: only those), as ``labels_from_proba(..., score_threshold=threshold)`` answers."""
    import numpy as np

    from .unknown import rejected

    pred = [str(p) for p in pred]
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(pred),):
        raise FewShotError(f"pred and scores must have one value per text, got {len(pred)} and shape {scores.shape}")
    if np.isnan(scores).any():
        raise FewShotError("scores must be numbers (NaN found); -inf is a score below all others")
    # probabilities only matter to min_confidence, which is off here: one column stands in for them
    reject = rejected(np.ones((len(pred), 1)), scores, min_confidence=None, score_threshold=threshold)
    return [unknown_label if r else p for p, r in zip(pred, reject)]


def evaluate_predictions(gold: Sequence[str], pred: Sequence[str], scores: Any, *, threshold: float | None = None,
                         unknown_label: str = "unknown", cost: float = OOS_COST) -> dict[str, Any]:
    """:func:`evaluate` from arrays: answers ``pred`` made without the unknown rule and their in-scope ``scores``
    (``predict_with_scores(texts, **NO_UNKNOWN)``) against ``gold`` (rows labelled ``unknown_label``: out of
    scope). What the app's Evaluate tab reports.

    The top level holds :func:`label_scores` with ``unknown=False`` (the labels alone decide), ``n_unknown`` and
    ``threshold``; ``with_unknown`` the answers at the score ``threshold`` (:func:`apply_score_threshold`):
    :func:`label_scores`, :func:`unknown_summary`, ``answered_unknown`` and ``errors`` (rows answered unknown,
    rows answered wrong) and the ``predictions``. With rows of both kinds, ``separation`` holds what any threshold
    could do (:func:`separation` of the in-scope rows' and the out-of-scope rows' scores, and ``cost``).
    """
    import numpy as np

    gold, pred = _label_pairs(gold, pred)
    answers = apply_score_threshold(pred, scores, threshold, unknown_label)
    scores = np.asarray(scores, dtype=np.float64)
    oos = np.array([g == unknown_label for g in gold], dtype=bool)
    with_unknown = label_scores(gold, answers, unknown_label=unknown_label) | unknown_summary(
        gold, answers, unknown_label) | {
        "answered_unknown": sum(a == unknown_label for a in answers),
        "errors": sum(g != a for g, a in zip(gold, answers)),
        "predictions": answers,
    }
    out = label_scores(gold, pred, unknown_label=unknown_label, unknown=False) | {
        "n_unknown": int(oos.sum()), "threshold": threshold, "with_unknown": with_unknown}
    if oos.any() and (~oos).any():
        right = np.array([g == p for g, p in zip(gold, pred)], dtype=bool)[~oos]
        out["separation"] = separation(right, scores[~oos], scores[oos], cost) | {"cost": cost}
    return out


def evaluate_curve(clf: Any, texts: list[str], gold: list[str], *, progress: Any = None,
                   reading: tuple[Any, Any] | None = None) -> Any:
    """The operating curve of ``clf`` on labelled texts (:func:`fewshot.unknown.operating_curve`): one row per
    in-scope-score threshold, for choosing the ``score_threshold`` to save with the classifier.

    Texts whose gold label is ``clf.config.unknown_label`` are the out-of-scope rows (``oos_recall``). The
    curve holds the automatic threshold's point (column ``automatic`` True on it; absent when the examples
    are too few to derive it) and the configured ``score_threshold``'s (column ``chosen``). ``reading``: the
    texts' ``(probabilities, in-scope scores)`` already computed (e.g. read together), as in :func:`evaluate`.
    """
    import numpy as np

    from .unknown import operating_curve

    _single_label(clf, "metrics.evaluate_curve (the unknown threshold's curve)")
    texts = clean_texts(texts, "texts")
    gold = _gold_labels(texts, gold)  # "refund " is refund, as fit reads labels
    if reading is not None:
        probs, scores = _reading_rows(reading, len(texts))
    else:
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
    try:
        return float(clf.auto_threshold_)
    except FewShotError:  # fewer than 2 examples per label: no held-out fold, no automatic point to mark
        return None


def recall_at_cost(right: Any, in_scores: Any, oos_scores: Any, cost: float = OOS_COST) -> float:
    """Best share of ``oos_scores`` below a threshold that answers at most ``cost`` of the in-scope texts unknown
    among those whose top label is right (``right``; rejecting a wrong answer costs nothing): what the score can
    do at that cost, the threshold chosen with the labels (a property of the score, not of the automatic
    threshold)."""
    import numpy as np

    in_scores, oos_scores = (np.asarray(a, dtype=np.float64) for a in (in_scores, oos_scores))
    right = np.asarray(right, dtype=bool)
    if right.shape != in_scores.shape:
        raise FewShotError(f"right and in_scores must have one value per in-scope text, got {right.shape} and "
                           f"{in_scores.shape}")
    if np.isnan(in_scores).any() or np.isnan(oos_scores).any():
        raise FewShotError("in_scores and oos_scores must be numbers (NaN found); -inf is a score below all others")
    if not 0.0 <= cost <= 1.0:
        raise FewShotError(f"cost must lie between 0 and 1, got {cost!r}")
    if not len(oos_scores):
        raise FewShotError("recall_at_cost needs at least one out-of-scope score")
    good = np.sort(in_scores[right])
    allowed = int(np.floor(cost * len(in_scores) + 1e-9))
    if allowed >= len(good):
        return 1.0
    return float((oos_scores < good[allowed]).mean())  # reject below the (allowed+1)-th lowest right score


def fpr_at_95(in_scores: Any, oos_scores: Any) -> float:
    """Share of ``oos_scores`` accepted (at or above) at the threshold that keeps 95 % of ``in_scores``."""
    import numpy as np

    in_scores, oos_scores = _finite(in_scores, oos_scores)
    return float((oos_scores >= np.quantile(in_scores, 0.05)).mean())


def separation(right: Any, in_scores: Any, oos_scores: Any, cost: float = OOS_COST) -> dict[str, float]:
    """How well in-scope scores separate out-of-scope texts, for any threshold: ``oos_auroc`` (the chance that an
    in-scope text scores above an out-of-scope one), ``oos_recall_at_cost`` (:func:`recall_at_cost`) and
    ``oos_fpr_at_95`` (:func:`fpr_at_95`); ``right``: whether each in-scope text's top label is its gold label.
    ``-inf`` ("none of these" won) ranks below every finite score."""
    from sklearn.metrics import roc_auc_score

    in_scores, oos_scores = _finite(in_scores, oos_scores)
    if not len(in_scores) or not len(oos_scores):
        raise FewShotError(f"separation needs in-scope and out-of-scope scores, got {len(in_scores)} and "
                           f"{len(oos_scores)}")
    return {
        "oos_auroc": float(roc_auc_score([0] * len(in_scores) + [1] * len(oos_scores),
                                         [-s for s in in_scores] + [-s for s in oos_scores])),
        "oos_recall_at_cost": recall_at_cost(right, in_scores, oos_scores, cost),
        "oos_fpr_at_95": fpr_at_95(in_scores, oos_scores),
    }


def evaluate_oos(clf: Any, in_texts: list[str], gold: list[str], oos_texts: list[str], *,
                 batch_aware: bool = False, cost: float = OOS_COST,
                 reading: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Out-of-scope detection: in-scope accuracy with "unknown" counted wrong, OOS recall/precision, AUROC,
    the best OOS recall at ``cost`` of in-scope accuracy (:func:`recall_at_cost`) and FPR@95 (:func:`fpr_at_95`).

    AUROC, the recall at ``cost`` and FPR@95 are threshold-free (the in-scope score ranks out-of-scope texts
    lowest); recall, precision and accuracy use the classifier's unknown options (``auto_unknown=True`` when none
    is set: ``threshold_default`` in the result). ``batch_aware``: the in-scope and out-of-scope texts are read
    together as one batch, as ``predict_with_scores(..., batch_aware=True)`` reads a file (``batch_aware`` in the
    result: whether the texts were enough to be read together). ``reading``: ``(probabilities, in-scope scores)``
    of ``in_texts`` then ``oos_texts``, already computed with ``predict_with_scores(..., **NO_UNKNOWN)``: nothing
    is encoded.
    """
    from .batch_reading import reads_together

    _single_label(clf, "metrics.evaluate_oos (out-of-scope detection by the in-scope score)")
    in_texts, oos_texts = clean_texts(in_texts, "in_texts"), clean_texts(oos_texts, "oos_texts")
    gold = _gold_labels(in_texts, gold)
    config = clf.config
    options = {k: getattr(config, k) for k in NO_UNKNOWN}
    stand_in = config.min_confidence is None and not config.uses_score
    if stand_in:
        options["auto_unknown"] = True
    unknown = config.unknown_label
    if reading is not None or batch_aware:
        if reading is None:
            reading = clf.predict_with_scores(list(in_texts) + list(oos_texts), batch_aware=True, **NO_UNKNOWN)[1:]
        probs, scores = _reading_rows(reading, len(in_texts) + len(oos_texts))
        n = len(in_texts)
        in_probs, in_scores, oos_probs, oos_scores = probs[:n], scores[:n], probs[n:], scores[n:]
    else:
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
    right = [str(lab) == str(g) for lab, g in zip(clf.classes_[in_probs.argmax(axis=1)], gold)]
    rejected_oos = sum(p == unknown for p in oos_pred)
    rejected_in = sum(p == unknown for p in in_pred)
    return {
        "in_scope_accuracy": sum(p == g for p, g in zip(in_pred, gold)) / max(len(gold), 1),
        "oos_recall": rejected_oos / max(len(oos_texts), 1),
        "oos_precision": rejected_oos / max(rejected_oos + rejected_in, 1),
        **separation(right, in_scores, oos_scores, cost),
        "cost": cost,
        "threshold": threshold,
        "threshold_kind": kind,
        "threshold_default": stand_in,
        "n_oos": len(oos_texts),
        "batch_aware": bool(batch_aware) and reads_together(len(in_texts) + len(oos_texts)),
    }


def _finite(*arrays: Any) -> list[Any]:
    """The arrays with ``-inf`` replaced by one number below every finite score in any of them."""
    import numpy as np

    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays] + [np.zeros(1)])
    floor = float(finite.min()) - 1.0
    return [np.where(np.isneginf(a), floor, a) for a in arrays]
