"""The operating curve (in-scope accuracy / coverage / out-of-scope recall per threshold), the saved operating
point, evaluation with the unknown rule, and the "ambiguous: A or B?" answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot import FewShotClassifier, FewShotError
from fewshot.io.output import label_frame
from fewshot.metrics import evaluate, evaluate_curve
from fewshot.rules import l2_normalize
from fewshot.unknown import ambiguous, operating_curve, rejected
from test_oos import TableEncoder, clusters


def test_curve_by_hand() -> None:
    scores = np.array([0.1, 0.5, 0.3, -np.inf, 0.9, 0.2])
    right = np.array([False, True, True, False, True, False])
    is_oos = np.array([True, False, False, False, False, True])
    curve = operating_curve(scores, right, is_oos, thresholds=[0.25])
    assert list(curve.columns) == ["threshold", "coverage", "accuracy_kept", "answered_accuracy", "oos_recall",
                                   "accuracy"]
    row = curve[curve.threshold == 0.25].iloc[0]
    # below 0.25: 0.1 (oos), 0.2 (oos), -inf (in scope, wrong): 3 of 6 unknown; in scope right and kept: 3 of 4
    assert row.coverage == 0.5 and row.accuracy_kept == 0.75 and row.oos_recall == 1.0
    assert row.answered_accuracy == 1.0 and row.accuracy == pytest.approx(5 / 6)
    first, last = curve.iloc[0], curve.iloc[-1]
    assert first.threshold == 0.1 and first.coverage == pytest.approx(5 / 6)  # -inf ("none of these") always out
    assert last.coverage == 0.0 and np.isnan(last.answered_accuracy) and last.oos_recall == 1.0
    assert np.isnan(operating_curve(scores, right).oos_recall).all()  # no labelled out-of-scope rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curve_is_monotone_and_matches_the_unknown_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=200), 1)  # ties on purpose
    is_oos = rng.random(200) < 0.3
    right = (rng.random(200) < 0.8) & ~is_oos
    curve = operating_curve(scores, right, is_oos)
    assert curve.threshold.is_monotonic_increasing
    assert curve.coverage.is_monotonic_decreasing and curve.coverage.iloc[-1] == 0.0
    assert curve.accuracy_kept.is_monotonic_decreasing and curve.oos_recall.is_monotonic_increasing
    for _, row in curve.sample(10, random_state=seed).iterrows():  # each point is what `rejected` would do
        out = rejected(np.ones((200, 1)), scores, min_confidence=None, score_threshold=row.threshold)
        assert row.coverage == pytest.approx((~out).mean())
        assert row.accuracy_kept == pytest.approx((right & ~out)[~is_oos].mean())
        assert row.oos_recall == pytest.approx(out[is_oos].mean())


def test_curve_rejects_bad_input() -> None:
    with pytest.raises(FewShotError, match="same length"):
        operating_curve(np.zeros(3), np.zeros(2, bool))
    with pytest.raises(FewShotError, match="at least one"):
        operating_curve(np.zeros(0), np.zeros(0, bool))


def _fitted(**options):
    encoder, support, in_scope, oos = clusters(seed=4)
    clf = FewShotClassifier(encoder=encoder, label_names=False, **options)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    texts = [t for t, _ in in_scope] + oos
    gold = [lab for _, lab in in_scope] + ["unknown"] * len(oos)
    return clf, texts, gold


def test_evaluate_curve_marks_the_automatic_and_the_chosen_point() -> None:
    clf, texts, gold = _fitted(score_threshold=0.5)
    curve = evaluate_curve(clf, texts, gold)
    assert curve.automatic.sum() == 1 and curve.chosen.sum() == 1
    auto = curve[curve.automatic].iloc[0]
    assert auto.threshold == clf.auto_threshold_
    # the automatic point is what the classifier answers with auto_unknown=True
    clf.set_params(score_threshold=None, auto_unknown=True)
    result = evaluate(clf, texts, gold)
    assert result["accuracy"] == pytest.approx(auto.accuracy)
    assert result["answered"] == pytest.approx(auto.coverage)
    assert result["unknown_recall"] == pytest.approx(auto.oos_recall)
    assert result["in_scope_accuracy"] == pytest.approx(auto.accuracy_kept)
    assert result["n_unknown"] == gold.count("unknown")


def test_evaluate_with_and_without_the_unknown_rule() -> None:
    clf, texts, gold = _fitted(auto_unknown=True)
    with_rule, without = evaluate(clf, texts, gold), evaluate(clf, texts, gold, unknown=False)
    assert "unknown" in with_rule["predictions"] and "unknown" not in without["predictions"]
    assert with_rule["accuracy"] > without["accuracy"]  # the out-of-scope rows count right when answered unknown
    assert "in_scope_accuracy" not in without


def test_chosen_operating_point_survives_save_and_load(tmp_path) -> None:
    clf, texts, gold = _fitted()
    curve = evaluate_curve(clf, texts, gold)
    point = float(curve.threshold[(curve.accuracy_kept >= curve.accuracy_kept.max() - 0.02)].max())
    clf.set_params(score_threshold=point)
    before = clf.predict(texts)
    clf.save(tmp_path / "clf")
    loaded = FewShotClassifier.load(tmp_path / "clf", encoder=clf.encoder)
    assert loaded.config.score_threshold == point and loaded.score_threshold_ == point
    assert list(loaded.predict(texts)) == list(before)
    assert evaluate_curve(loaded, texts, gold).chosen.sum() == 1


def test_label_frame_passes_unknown_overrides() -> None:
    clf, texts, _ = _fitted()
    frame = pd.DataFrame({"text": texts})
    plain = label_frame(clf, frame, "text")
    strict = label_frame(clf, frame, "text", score_threshold=1e9)
    assert (strict.label == "unknown").all() and (plain.label != "unknown").all()
    assert list(strict.in_scope_score) == list(plain.in_scope_score)
    with pytest.raises(FewShotError, match="score_threshold"):
        label_frame(clf, frame, "text", colour="red")


def test_ambiguous_by_hand() -> None:
    probs = np.array([[0.50, 0.45, 0.05], [0.90, 0.05, 0.05], [0.40, 0.35, 0.25]])
    assert list(ambiguous(probs, 0.1)) == [True, False, True]
    assert list(ambiguous(probs, 0.1, np.array([False, False, True]))) == [True, False, False]  # unknown first
    assert not ambiguous(probs, None).any()


def _tie_classifier(**options):
    """Two labels whose examples are the same vectors, plus one apart: a query at their centre ties."""
    rng = np.random.default_rng(0)
    dim = 16
    a, c = l2_normalize(rng.normal(size=(2, dim)))
    table, texts, labels = {}, [], []
    noise = 0.05 * rng.normal(size=(6, dim))
    for lab, centre in (("alpha", a), ("beta", a), ("gamma", c)):
        for i in range(6):  # alpha's and beta's examples are the same vectors: every rule ties them
            text = f"{lab} {i}"
            table[text] = l2_normalize(centre + noise[i])
            texts.append(text)
            labels.append(lab)
    table["tie"], table["clear"], table["far"] = a, c, l2_normalize(rng.normal(size=dim))
    clf = FewShotClassifier(encoder=TableEncoder(table), label_names=False, **options).fit(texts, labels)
    return clf


def test_prediction_is_ambiguous_between_two_labels() -> None:
    clf = _tie_classifier()
    tie, clear = clf.predict_details(["tie", "clear"])
    assert tie.ambiguous and sorted(tie.alternatives) == ["alpha", "beta"]
    assert tie.label == tie.alternatives[0] == tie.top[0][0]  # the label stays the top one
    assert not clear.ambiguous and clear.alternatives == [] and clear.label == "gamma"
    assert not clf.predict_details(["tie"], ambiguity_margin=None)[0].ambiguous
    clf.set_params(ambiguity_margin=None)
    assert not clf.predict_details(["tie"])[0].ambiguous
    with pytest.raises(FewShotError, match="ambiguity_margin"):
        clf.set_params(ambiguity_margin=1.5)


def test_unknown_takes_precedence_over_ambiguous(tmp_path) -> None:
    clf = _tie_classifier(score_threshold=1e9)
    (tie,) = clf.predict_details(["tie"])
    assert tie.label == "unknown" and not tie.ambiguous and tie.alternatives == []
    clf.set_params(score_threshold=None, ambiguity_margin=0.2)
    clf.save(tmp_path / "c")
    assert FewShotClassifier.load(tmp_path / "c", encoder=clf.encoder).config.ambiguity_margin == 0.2
