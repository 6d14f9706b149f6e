"""Scoring answers from arrays (fewshot.metrics): the unknown rule's score threshold, label scores with and without
it, per-label precision / recall / F1, the most-confused label, and evaluate_predictions, which the app's Evaluate
tab and metrics.evaluate share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fewshot import FewShotError
from fewshot.metrics import (NO_UNKNOWN, apply_score_threshold, evaluate, evaluate_predictions, label_scores,
                             most_confused_with, per_label_scores, unknown_summary)

# Two real labels and two out-of-scope rows; answers made without the unknown rule, with their in-scope scores.
# The last row's "none of these" examples won (score -inf): it is answered unknown at any threshold.
GOLD = ["a", "a", "b", "b", "unknown", "unknown"]
PRED = ["a", "b", "b", "b", "a", "unknown"]
SCORES = [2.0, 0.5, 1.5, 0.8, 0.3, -math.inf]
AT_1 = ["a", "unknown", "b", "unknown", "unknown", "unknown"]  # answered unknown below 1.0


def test_score_threshold_answers_unknown_below_it() -> None:
    assert apply_score_threshold(PRED, SCORES, 1.0) == AT_1
    assert apply_score_threshold(PRED[:5] + ["b"], SCORES, None) == PRED  # no threshold: only -inf is unknown
    assert apply_score_threshold(PRED, SCORES, 1.0, "none") == ["a", "none", "b", "none", "none", "none"]
    with pytest.raises(FewShotError, match="one value per text"):
        apply_score_threshold(PRED, SCORES[:3], 1.0)
    with pytest.raises(FewShotError, match="NaN"):
        apply_score_threshold(PRED, [*SCORES[:5], float("nan")], 1.0)


def test_label_scores_without_and_with_the_rule() -> None:
    plain = label_scores(GOLD, PRED, unknown=False)
    # a: 1 right of 2, 1 wrong answer a (an unknown row) -> F1 0.5; b: 2 of 2, 1 wrong answer b -> F1 0.8
    assert plain == {"accuracy": 4 / 6, "macro_f1": pytest.approx(0.65), "n": 6, "n_labels": 2,
                     "per_label_f1": {"a": 0.5, "b": 0.8}, "counts": {"a": 2, "b": 2, "unknown": 2}}
    ruled = label_scores(GOLD, AT_1)  # unknown a label like the others: 2 right of 2, 2 wrong answers unknown
    assert ruled["accuracy"] == 4 / 6 and ruled["n_labels"] == 3
    assert ruled["macro_f1"] == pytest.approx(2 / 3)
    assert ruled["per_label_f1"] == {"a": 0.6667, "b": 0.6667, "unknown": 0.6667}
    assert unknown_summary(GOLD, AT_1) == {"in_scope_accuracy": 0.5, "n_unknown": 2, "unknown_recall": 1.0,
                                           "answered": 2 / 6}
    no_oos = unknown_summary(GOLD[:4], AT_1[:4])
    assert no_oos["unknown_recall"] is None and no_oos["n_unknown"] == 0  # None, not NaN, where nothing to count
    assert unknown_summary(GOLD[4:], AT_1[4:])["in_scope_accuracy"] is None
    with pytest.raises(FewShotError, match="same length"):
        label_scores(GOLD, PRED[:5])
    with pytest.raises(FewShotError, match="at least one"):
        label_scores([], [])
    with pytest.raises(FewShotError, match=r"gold\[1\]"):
        label_scores(["a", float("nan")], ["a", "a"])


def test_per_label_scores_and_most_confused() -> None:
    table = per_label_scores(GOLD, AT_1)
    assert list(table.columns) == ["label", "precision", "recall", "f1", "n"]
    assert table["label"].tolist() == ["a", "b", "unknown"] and table["n"].tolist() == [2, 2, 2]
    assert table["precision"].tolist() == [1.0, 1.0, 0.5] and table["recall"].tolist() == [0.5, 0.5, 1.0]
    assert table["f1"].to_numpy() == pytest.approx([2 / 3] * 3)
    assert per_label_scores(GOLD, AT_1, ["b"])["label"].tolist() == ["b"]
    assert most_confused_with(GOLD, AT_1) == {"a": "unknown", "b": "unknown"}
    assert most_confused_with(GOLD, PRED) == {"a": "b", "unknown": "a"}
    assert most_confused_with(["x", "x", "x", "y"], ["c", "b", "b", "y"]) == {"x": "b"}  # most often
    assert most_confused_with(["x", "x"], ["c", "b"]) == {"x": "c"}  # a tie: the first given


def test_evaluate_predictions_by_hand() -> None:
    m = evaluate_predictions(GOLD, PRED, SCORES, threshold=1.0)
    assert {k: m[k] for k in ("accuracy", "n", "n_labels", "n_unknown", "threshold")} == {
        "accuracy": 4 / 6, "n": 6, "n_labels": 2, "n_unknown": 2, "threshold": 1.0}
    w = m["with_unknown"]
    assert w["predictions"] == AT_1 and w["answered_unknown"] == 4 and w["errors"] == 2
    assert w["accuracy"] == 4 / 6 and w["in_scope_accuracy"] == 0.5 and w["unknown_recall"] == 1.0
    # every in-scope score above both out-of-scope ones; the 5 % quantile of in-scope scores is 0.545
    assert m["separation"] == {"oos_auroc": 1.0, "oos_recall_at_cost": 1.0, "oos_fpr_at_95": 0.0, "cost": 0.02}
    assert "separation" not in evaluate_predictions(GOLD[:4], PRED[:4], SCORES[:4], threshold=1.0)
    assert evaluate_predictions(GOLD, PRED, SCORES)["with_unknown"]["predictions"] == PRED


def test_evaluate_predictions_is_what_evaluate_reports() -> None:
    """One implementation: a classifier's answers scored from arrays equal metrics.evaluate's numbers, without the
    rule and at the automatic threshold."""
    from test_curve import _fitted

    clf, texts, gold = _fitted()
    _, probs, scores = clf.predict_with_scores(texts, **NO_UNKNOWN)
    pred = [str(p) for p in clf.labels_from_proba(probs, scores, **NO_UNKNOWN)]
    m = evaluate_predictions(gold, pred, scores, threshold=clf.auto_threshold_)
    plain = evaluate(clf, texts, gold, unknown=False)
    assert {k: m[k] for k in ("accuracy", "macro_f1", "per_label_f1", "counts")} == \
        {k: plain[k] for k in ("accuracy", "macro_f1", "per_label_f1", "counts")}
    clf.set_params(auto_unknown=True)
    ruled = evaluate(clf, texts, gold)
    keys = ("accuracy", "macro_f1", "per_label_f1", "in_scope_accuracy", "unknown_recall", "answered", "predictions")
    assert {k: m["with_unknown"][k] for k in keys} == {k: ruled[k] for k in keys}
    assert np.isfinite(m["separation"]["oos_auroc"])
