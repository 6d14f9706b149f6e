"""Out-of-scope detection on synthetic clusters where the right answer is known, and the unknown options."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot import FewShotClassifier, FewShotError
from fewshot.unknown import threshold_for_drop
from fewshot.encoders.registry import ModelSpec
from fewshot.rules import l2_normalize
from fewshot.metrics import evaluate_oos, fpr_at_95, recall_at_cost


class TableEncoder:
    """Stands in for the sentence encoder: each text maps to a vector given up front."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.dim = next(iter(table.values())).shape[0]
        self.name = "table"
        self.spec = ModelSpec("table", "table")

    def describe(self) -> dict:
        return {"model": self.name, "dim": self.dim}

    def encode(self, texts, *, progress=None) -> np.ndarray:
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def clusters(seed: int = 0, n_labels: int = 6, shots: int = 8, queries: int = 30, dim: int = 32):
    """Tight clusters around random centres (in scope) and points far from every centre (out of scope)."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(n_labels, dim)))
    table, support, in_scope, oos = {}, [], [], []
    for c in range(n_labels):
        for i in range(shots + queries):
            vec = l2_normalize(centres[c] + 0.25 * rng.normal(size=dim) / np.sqrt(dim) * 4)
            text = f"label{c} text{i}"
            table[text] = vec
            (support if i < shots else in_scope).append((text, f"label{c}"))
    for i in range(queries * 2):
        text = f"oos {i}"
        table[text] = l2_normalize(rng.normal(size=dim))  # random directions: far from all centres
        oos.append(text)
    return TableEncoder(table), support, in_scope, oos


@pytest.mark.parametrize("rule", ["head", "prototype", "matching"])
def test_auto_threshold_separates_far_points(rule: str) -> None:
    encoder, support, in_scope, oos = clusters()
    clf = FewShotClassifier(encoder=encoder, rule=rule, label_names=False, auto_unknown=True)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    result = evaluate_oos(clf, [t for t, _ in in_scope], [lab for _, lab in in_scope], oos)
    assert result["oos_auroc"] > 0.99
    assert result["oos_recall"] >= 0.9
    assert result["in_scope_accuracy"] >= 0.9
    assert result["threshold_kind"].startswith("auto")
    preds = clf.predict(oos[:5] + [in_scope[0][0]])
    assert list(preds[:5]).count("unknown") >= 4 and preds[-1] == in_scope[0][1]


def test_evaluate_oos_says_when_the_automatic_threshold_stands_in() -> None:
    """With no unknown option set the classifier answers every text with a label, so the out-of-scope measures
    use the automatic threshold and say so (``threshold_default``); with one set they use it and say nothing."""
    encoder, support, in_scope, oos = clusters(seed=2)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    args = ([t for t, _ in in_scope], [lab for _, lab in in_scope], oos)
    plain = FewShotClassifier(encoder=encoder, label_names=False).fit(texts, labels)
    ruled = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True).fit(texts, labels)
    stand_in, own = evaluate_oos(plain, *args), evaluate_oos(ruled, *args)
    assert stand_in["threshold_default"] and not own["threshold_default"]
    assert stand_in["threshold"] == own["threshold"] == ruled.auto_threshold_
    assert stand_in["oos_recall"] == own["oos_recall"] > 0.9


def test_scores_and_custom_unknown_label() -> None:
    encoder, support, in_scope, oos = clusters(seed=1)
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True, unknown_label="none")
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    s_in, s_out = clf.in_scope_score([t for t, _ in in_scope]), clf.in_scope_score(oos)
    assert s_in.mean() > s_out.mean()
    assert s_in.min() > np.median(s_out)
    far = int(np.argmin(s_out))  # the out-of-scope text farthest from every label
    (det,) = clf.predict_details([oos[far]])
    assert det.label == "none" and det.score == pytest.approx(s_out[far], rel=1e-5)
    assert (s_out < clf.auto_threshold_).mean() >= 0.5
    probs = clf.predict_proba(oos[:3])  # still a distribution over the real labels
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert probs.shape == (3, 6)


def test_threshold_recomputed_when_labels_change() -> None:
    encoder, support, _, _ = clusters(seed=2)
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    first = clf.auto_threshold_
    clf.remove_label("label0")
    assert clf._auto_threshold is None and isinstance(clf.auto_threshold_, float)
    assert clf.auto_threshold_ != first or len(clf.classes_) == 5


def test_bad_thresholds() -> None:
    encoder, _, _, _ = clusters()
    for bad in (1.5, -0.1, "sometimes"):
        with pytest.raises(FewShotError, match="min_confidence must be"):
            FewShotClassifier(encoder=encoder, min_confidence=bad)
        with pytest.raises(FewShotError, match="(unknown_threshold|min_confidence) must be"), \
                pytest.warns(FutureWarning, match="unknown_threshold is deprecated"):
            FewShotClassifier(encoder=encoder, unknown_threshold=bad)
    for bad in (float("nan"), float("inf"), "high"):
        with pytest.raises(FewShotError, match="score_threshold must be"):
            FewShotClassifier(encoder=encoder, score_threshold=bad)
    with pytest.raises(FewShotError, match="auto_unknown must be"):
        FewShotClassifier(encoder=encoder, auto_unknown="auto")


def off_topic_cluster(encoder: TableEncoder, seed: int = 3, n: int = 40) -> list[str]:
    """A tight cluster of off-topic texts in its own direction, added to ``encoder``'s table."""
    rng = np.random.default_rng(seed)
    centre = l2_normalize(rng.normal(size=encoder.dim))
    texts = [f"off topic {i}" for i in range(n)]
    for t in texts:
        encoder.table[t] = l2_normalize(centre + 0.25 * rng.normal(size=encoder.dim) / np.sqrt(encoder.dim) * 4)
    return texts


@pytest.mark.parametrize("rule", ["head", "prototype", "matching"])
def test_none_of_these_examples(rule: str, tmp_path) -> None:
    encoder, support, in_scope, _ = clusters(seed=4)
    off = off_topic_cluster(encoder)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    plain = FewShotClassifier(encoder=encoder, rule=rule, label_names=False).fit(texts, labels)
    assert "unknown" not in set(plain.predict(off[8:]))  # no threshold: always a real label

    clf = FewShotClassifier(encoder=encoder, rule=rule, label_names=False)
    clf.fit(texts + off[:8], labels + ["unknown"] * 8)  # 8 "none of these" examples
    assert "unknown" not in clf.classes_ and len(clf.classes_) == 6
    assert clf.counts()["unknown"] == 8
    preds = clf.predict(off[8:])  # unseen off-topic texts, still no threshold
    assert list(preds).count("unknown") >= 0.9 * len(preds)
    in_texts, gold = [t for t, _ in in_scope], [lab for _, lab in in_scope]
    assert np.mean(clf.predict(in_texts) == np.array(gold, dtype=object)) >= 0.95
    probs = clf.predict_proba(off[8:12])
    assert probs.shape == (4, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    scores = clf.in_scope_score(off[8:])
    assert np.isneginf(scores).mean() >= 0.9 and np.isfinite(clf.in_scope_score(in_texts)).all()
    (det,) = clf.predict_details([off[20]])
    assert det.label == "unknown" and det.matches[0].label == "unknown"

    clf.set_params(auto_unknown=True)  # the threshold comes from the real labels' examples only
    assert np.isfinite(clf.auto_threshold_)
    result = evaluate_oos(clf, in_texts, gold, off[8:])
    assert result["oos_recall"] >= 0.9 and 0.99 <= result["oos_auroc"] <= 1.0

    clf.save(tmp_path / "saved")
    again = FewShotClassifier.load(tmp_path / "saved", encoder=encoder)
    assert list(again.classes_) == list(clf.classes_)
    assert list(again.predict(off[8:] + in_texts[:5])) == list(clf.predict(off[8:] + in_texts[:5]))
    clf.remove_label("unknown")
    clf.set_params(auto_unknown=False)
    assert "unknown" not in set(clf.predict(off[8:]))


def test_none_of_these_is_not_a_label() -> None:
    encoder, support, _, _ = clusters(seed=5)
    off = off_topic_cluster(encoder)
    with pytest.raises(FewShotError, match="none of these"):
        FewShotClassifier(encoder=encoder).fit([support[0][0]] + off[:3], [support[0][1]] + ["unknown"] * 3)


def test_threshold_for_drop_is_a_quantile_of_the_right_rows() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    right = np.array([False, True, False, True, True, True, True, True, True, True])
    # budget 10 % of 10 rows = 1 row of the 8 right ones: their 1/8 quantile, between 0.4 and 0.5
    assert threshold_for_drop(scores, right, 0.10) == pytest.approx(np.quantile(scores[right], 0.125))
    assert threshold_for_drop(scores, right, 0.0) == 0.2  # the lowest right row: only wrong ones go
    assert threshold_for_drop(scores, np.zeros(10, bool), 0.02) == 0.1  # all wrong: no estimate, reject little
    assert threshold_for_drop(scores, right, 0.9) == 1.0
    assert threshold_for_drop(scores[::-1], right[::-1], 0.10) == threshold_for_drop(scores, right, 0.10)
    steps = [threshold_for_drop(scores, right, d) for d in np.linspace(0, 0.5, 26)]
    assert steps == sorted(steps)  # a larger budget never gives a lower threshold


@pytest.mark.parametrize("max_drop", [0.0, 0.02, 0.1])
def test_auto_threshold_keeps_held_out_accuracy_loss_within_budget(max_drop: float) -> None:
    """Overlapping clusters (some held-out examples misclassified): the threshold costs at most the budget of the
    cross-validated examples that were right, and a larger budget never gives a lower threshold."""
    encoder, support, _, _ = clusters(seed=3, shots=10)
    rng = np.random.default_rng(0)
    noisy = {t: l2_normalize(v + 0.2 * rng.normal(size=v.shape)) for t, v in encoder.table.items()}
    clf = FewShotClassifier(encoder=TableEncoder(noisy), label_names=False, auto_unknown=True,
                            auto_max_drop=max_drop)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    scores, right = clf._cross_validated_scores()
    assert 0 < right.mean() < 1  # the case the rule is for
    t = clf.auto_threshold_
    assert (right & (scores < t)).mean() <= max_drop + 1 / len(scores)  # within one example (interpolation)
    assert (right & (scores <= t)).mean() >= max_drop - 1 / len(scores)  # and uses the budget
    quantile = FewShotClassifier(encoder=TableEncoder(noisy), label_names=False, auto_unknown=True,
                                 auto_quantile=0.05).fit([t for t, _ in support], [lab for _, lab in support])
    assert quantile.auto_threshold_ == pytest.approx(np.quantile(scores, 0.05))


def test_bad_auto_settings() -> None:
    encoder, *_ = clusters()
    for kwargs in ({"auto_max_drop": -0.1}, {"auto_max_drop": 0.5}, {"auto_quantile": 0.0}, {"auto_quantile": 0.7}):
        with pytest.raises(FewShotError, match=next(iter(kwargs))):
            FewShotClassifier(encoder=encoder, **kwargs)


def test_score_threshold_replaces_the_automatic_one() -> None:
    encoder, support, in_scope, oos = clusters(seed=6)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True).fit(texts, labels)
    queries = [t for t, _ in in_scope] + oos
    auto = clf.predict(queries)
    assert clf.score_threshold_ == clf.auto_threshold_
    scores = clf.in_scope_score(queries)
    clf.set_params(score_threshold=float(np.median(scores)))  # an operating point: half the texts unknown
    assert clf.score_threshold_ == float(np.median(scores))
    explicit = clf.predict(queries)
    np.testing.assert_array_equal(explicit == "unknown", scores < np.median(scores))
    assert list(explicit) != list(auto)
    clf.set_params(score_threshold=None, auto_unknown=False)
    assert clf.score_threshold_ is None and "unknown" not in set(clf.predict(queries))
    # a per-call override leaves the configuration as it was
    np.testing.assert_array_equal(clf.predict(queries, auto_unknown=True), auto)
    assert clf.config.auto_unknown is False
    probs = clf.predict_proba(queries[:3])
    assert set(clf.labels_from_proba(probs, min_confidence=1.0)) == {"unknown"}


def test_min_confidence_and_score_threshold_together_reject_either() -> None:
    encoder, support, in_scope, oos = clusters(seed=7)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    clf = FewShotClassifier(encoder=encoder, label_names=False).fit(texts, labels)
    queries = [t for t, _ in in_scope[:20]] + oos[:20]
    _, probs, scores = clf.predict_with_scores(queries)
    conf, cut = float(np.median(probs.max(axis=1))), float(np.median(scores))
    both = clf.labels_from_proba(probs, scores, min_confidence=conf, score_threshold=cut)
    np.testing.assert_array_equal(both == "unknown", (probs.max(axis=1) < conf) | (scores < cut))


def test_set_params_refits_the_rule_and_keeps_encoder_options_fixed() -> None:
    encoder, support, in_scope, _ = clusters(seed=8)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    clf = FewShotClassifier(encoder=encoder, label_names=False).fit(texts, labels)
    queries = [t for t, _ in in_scope[:10]]
    matching = FewShotClassifier(encoder=encoder, label_names=False, rule="matching").fit(texts, labels)
    assert clf.set_params(rule="matching") is clf and clf.get_params()["rule"] == "matching"
    np.testing.assert_allclose(clf.predict_proba(queries), matching.predict_proba(queries))
    with pytest.raises(FewShotError, match="int8 is fixed"):
        clf.set_params(int8=True)
    with pytest.raises(FewShotError, match="unknown option"):
        clf.set_params(thresh=0.5)
    with pytest.raises(FewShotError, match="min_confidence must be"):
        clf.set_params(min_confidence=2.0)
    assert clf.config.min_confidence is None  # a refused change leaves the configuration as it was
    auto = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True).fit(texts, labels)
    first, head = auto.auto_threshold_, auto._fitted_head
    auto.set_params(auto_max_drop=0.3)  # the threshold is recomputed, the rule is not refitted
    assert auto._fitted_head is head and auto.auto_threshold_ >= first
    auto.set_params(min_confidence=0.5)
    assert auto._fitted_head is head
    auto.set_params(unknown_label="label0")  # label0's examples become "none of these" examples: refit
    assert "label0" not in auto.classes_ and auto._fitted_head is not head


def test_old_option_names_map_with_a_warning_and_old_saves_load_silently(tmp_path) -> None:
    import json
    import warnings

    encoder, support, in_scope, _ = clusters(seed=9)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    with pytest.warns(FutureWarning, match="unknown_threshold is deprecated"):
        old = FewShotClassifier(encoder=encoder, label_names=False, unknown_threshold="auto")
    assert old.config.auto_unknown is True and old.config.min_confidence is None
    with pytest.warns(FutureWarning, match="quantize is deprecated"):
        assert FewShotClassifier(encoder=encoder, quantize=False).config.int8 is False
    with pytest.warns(FutureWarning, match="unknown_threshold is deprecated"):
        assert FewShotClassifier(encoder=encoder, unknown_threshold=0.4).config.min_confidence == 0.4
    with pytest.warns(FutureWarning, match="unknown_threshold is deprecated"):
        assert old.config.unknown_threshold == "auto"
    with pytest.warns(FutureWarning):
        old.config.unknown_threshold = 0.3
    assert old.config.min_confidence == 0.3 and old.config.auto_unknown is False
    with pytest.raises(FewShotError, match="contradicts"), pytest.warns(FutureWarning):
        FewShotClassifier(encoder=encoder, unknown_threshold="auto", auto_unknown=False)

    clf = FewShotClassifier(encoder=encoder, label_names=False).fit(texts, labels)
    clf.save(tmp_path / "saved")
    meta = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "unknown_threshold" not in meta["config"] and meta["config"]["int8"] is False
    for old_value, expected in (("auto", {"auto_unknown": True, "min_confidence": None}),
                                (0.7, {"auto_unknown": False, "min_confidence": 0.7}),
                                (None, {"auto_unknown": False, "min_confidence": None})):
        config = {k: v for k, v in meta["config"].items()
                  if k not in ("min_confidence", "auto_unknown", "score_threshold", "int8")}
        config |= {"unknown_threshold": old_value, "quantize": False}  # a config saved by an earlier version
        (tmp_path / "saved" / "config.json").write_text(json.dumps(meta | {"config": config}))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # silently
            loaded = FewShotClassifier.load(tmp_path / "saved", encoder=encoder)
        assert {k: getattr(loaded.config, k) for k in expected} == expected
        assert loaded.config.int8 is False
        queries = [t for t, _ in in_scope[:10]]
        np.testing.assert_allclose(loaded.predict_proba(queries), clf.predict_proba(queries))


def test_none_of_these_examples_of_several_kinds_are_fitted_as_label_sized_groups(tmp_path) -> None:
    """20 "none of these" examples of 4 kinds beside labels of 5 examples: the rule fits 4 groups (k-means), reads
    them back as one class, and still answers each kind unknown without taking in-scope texts."""
    from fewshot.unknown import FoldedNoneHead

    encoder, support, in_scope, _ = clusters(seed=6, shots=5)
    kinds = []
    for k in range(4):  # off_topic_cluster names its texts "off topic i": rename each kind before the next
        kinds.append([f"kind {k} {i}" for i in range(15)])
        for i, t in enumerate(off_topic_cluster(encoder, seed=20 + k, n=15)):
            encoder.table[kinds[-1][i]] = encoder.table.pop(t)
    none = [t for texts in kinds for t in texts[:5]]
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    clf = FewShotClassifier(encoder=encoder, label_names=False).fit(texts + none, labels + ["unknown"] * len(none))
    assert clf._none_groups == 4 and isinstance(clf._fitted_head, FoldedNoneHead)
    unseen = [t for texts_k in kinds for t in texts_k[5:]]
    assert np.mean(clf.predict(unseen) == "unknown") >= 0.95
    in_texts, gold = [t for t, _ in in_scope], [lab for _, lab in in_scope]
    assert np.mean(clf.predict(in_texts) == np.array(gold, dtype=object)) >= 0.95
    probs = clf.predict_proba(unseen[:6])
    assert probs.shape == (6, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    clf.set_params(auto_unknown=True)
    assert np.isfinite(clf.auto_threshold_)
    clf.save(tmp_path / "saved")
    again = FewShotClassifier.load(tmp_path / "saved", encoder=encoder)
    assert list(again.predict(unseen + in_texts[:5])) == list(clf.predict(unseen + in_texts[:5]))
    two = FewShotClassifier(encoder=encoder, label_names=False).fit(texts + none[:2], labels + ["unknown"] * 2)
    assert two._none_groups == 1 and not isinstance(two._fitted_head, FoldedNoneHead)  # fewer than a label's worth


def test_none_groups_split_by_kind_and_fold_back_to_one_column() -> None:
    from fewshot.rules import fit_prototype_head
    from fewshot.unknown import FoldedNoneHead, none_group_count, none_groups

    rng = np.random.default_rng(0)
    centres = l2_normalize(rng.normal(size=(5, 16)))
    x = l2_normalize(np.repeat(centres, 6, axis=0) + 0.05 * rng.normal(size=(30, 16))).astype(np.float32)
    y = np.repeat([0, 1, 2, 2, 2], 6)  # labels 0 and 1 (6 examples each); 18 "none" rows (index 2) of 3 kinds
    assert none_group_count(y, 2) == 3 and none_group_count(y[:12], 2) == 0
    assert none_group_count(np.array([0, 0, 0, 1, 1, 1, 2]), 2) == 1
    ids = none_groups(x[12:], 3)
    grouped, k = np.concatenate([y[:12], 2 + ids]), int(ids.max()) + 1
    assert k == 3 and (grouped[:12] == y[:12]).all()
    for kind in range(3):  # each kind's rows share one group, and the kinds differ
        assert len(set(grouped[12 + 6 * kind: 18 + 6 * kind])) == 1
    assert len(set(grouped[12:])) == 3
    same = x.copy()
    same[12:] = x[12]  # one distinct "none" vector: one group whatever k asks
    assert (none_groups(same[12:], 3) == 0).all()
    head = FoldedNoneHead(fit_prototype_head(x, grouped, 2 + k), 2)
    z, p = head.logits(x), head.predict_proba(x)
    assert z.shape == p.shape == (30, 3)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), p, rtol=1e-4, atol=1e-6)
    assert (p.argmax(axis=1)[12:] == 2).all() and (p.argmax(axis=1)[:12] == y[:12]).all()


def test_none_groups_are_computed_once_per_label_set(monkeypatch) -> None:
    """The automatic threshold refits the rule on 5 folds, all training on every "none of these" example: their
    k-means runs once for the fit and the folds together, and again only when the label set changes."""
    from fewshot import unknown

    calls: list[int] = []
    real = unknown.none_groups
    monkeypatch.setattr(unknown, "none_groups", lambda vectors, k: calls.append(len(vectors)) or real(vectors, k))
    encoder, support, _, _ = clusters(seed=6, shots=5)
    off = off_topic_cluster(encoder, seed=21, n=12)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True)
    clf.fit(texts + off[:10], labels + ["unknown"] * 10)
    assert np.isfinite(clf.auto_threshold_) and calls == [10]
    clf.add_examples("unknown", off[10:])
    assert np.isfinite(clf.auto_threshold_) and calls == [10, 12]


def test_recall_at_cost_and_fpr_at_95_by_hand() -> None:
    """The threshold-free measures of ``fewshot evaluate --oos``, on scores small enough to count by hand."""
    right = np.array([False] * 2 + [True] * 98)
    in_scores = np.arange(100, dtype=float)  # the two wrong answers score lowest (0 and 1)
    oos = np.array([-5.0, 1.5, 2.5, 3.5, 50.0])
    # 2 points of 100 texts: two right answers may go, so the threshold is the third-lowest right score (4)
    assert recall_at_cost(right, in_scores, oos) == pytest.approx(4 / 5)
    assert recall_at_cost(right, in_scores, oos, cost=0.0) == pytest.approx(2 / 5)  # below 2, the lowest right
    assert recall_at_cost(np.zeros(100, dtype=bool), in_scores, oos) == 1.0  # nothing right: nothing to lose
    assert fpr_at_95(in_scores, oos) == pytest.approx(1 / 5)  # accepted at the 5 % quantile (4.95): only 50
    assert fpr_at_95(np.append(in_scores, -np.inf), np.append(oos, -np.inf)) == pytest.approx(1 / 6)
    with pytest.raises(FewShotError, match="cost must lie between 0 and 1, got 2"):
        recall_at_cost(right, in_scores, oos, cost=2)
    with pytest.raises(FewShotError, match="at least one out-of-scope score"):
        recall_at_cost(right, in_scores, [])
