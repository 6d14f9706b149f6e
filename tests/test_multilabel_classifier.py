"""FewShotClassifier(multi_label=True) on synthetic clusters with known label sets: fitting from lists and `;`
cells, predicting lists, unknown options, explanations, save/load, and the CLI's --multi-label."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from fewshot import FewShotClassifier, FewShotError
from fewshot.encoders.registry import ModelSpec
from fewshot.multilabel import multilabel_scores

N_LABELS = 5
DIM = 48
WORDS = ("please", "now", "my", "the", "thanks", "today", "again", "quick")


class BagEncoder:
    """Stands in for the sentence encoder: a text is the normalised sum of its words' vectors; word ``topicK``
    points at cluster K, every other word at a small fixed random direction (hashed). A text made of two
    topics' words embeds between them, and its word windows near each, as real two-request texts do."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(size=(N_LABELS, DIM))
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        self.dim = DIM
        self.name = "bag"
        self.spec = ModelSpec("bag", "bag")

    def describe(self) -> dict:
        return {"model": self.name, "dim": self.dim, "extra_layers": []}

    def _word(self, w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little")
        noise = np.random.default_rng(seed).normal(size=DIM) / np.sqrt(DIM)
        if w.startswith("topic"):
            return self.centres[int(w[5:w.index("_")] if "_" in w else w[5:])] + 0.3 * noise
        return 0.4 * noise

    def encode(self, texts, *, progress=None) -> np.ndarray:
        out = np.stack([sum(self._word(w) for w in t.split()) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def text_of(label: int, i: int, rng: np.random.Generator) -> str:
    """Six words: three topic words of ``label`` (variants) and three filler words."""
    words = [f"topic{label}_{rng.integers(20)}" for _ in range(3)] + list(rng.choice(WORDS, 3))
    rng.shuffle(words)
    return " ".join(words) + f" x{i}"


def data(seed: int = 0, shots: int = 6, pairs: int = 6, queries: int = 20):
    """Support (single-label texts plus a few two-label joined ones) and queries with their true sets."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for c in range(N_LABELS):
        for i in range(shots):
            texts.append(text_of(c, i, rng))
            labels.append([f"l{c}"])
    for i in range(pairs):
        a, b = rng.choice(N_LABELS, 2, replace=False)
        texts.append(text_of(a, 100 + i, rng) + " and " + text_of(b, 200 + i, rng))
        labels.append([f"l{a}", f"l{b}"])
    q_texts, q_sets = [], []
    for i in range(queries):
        c = int(rng.integers(N_LABELS))
        q_texts.append(text_of(c, 300 + i, rng))
        q_sets.append([f"l{c}"])
        a, b = rng.choice(N_LABELS, 2, replace=False)
        q_texts.append(text_of(a, 400 + i, rng) + " and also " + text_of(b, 500 + i, rng))
        q_sets.append([f"l{a}", f"l{b}"])
    return texts, labels, q_texts, q_sets


@pytest.fixture(scope="module")
def fitted():
    encoder = BagEncoder()
    texts, labels, q_texts, q_sets = data()
    clf = FewShotClassifier(encoder=encoder, multi_label=True, label_names=False).fit(texts, labels)
    return clf, encoder, q_texts, q_sets


def test_predicts_label_sets(fitted) -> None:
    clf, _, q_texts, q_sets = fitted
    assert list(clf.classes_) == [f"l{c}" for c in range(N_LABELS)]
    pred = clf.predict(q_texts)
    assert isinstance(pred, list) and all(isinstance(p, list) for p in pred)
    scores = multilabel_scores(q_sets, pred)
    assert scores["micro_f1"] >= 0.9 and scores["subset_accuracy"] >= 0.75, scores
    two = [p for p, t in zip(pred, q_sets) if len(t) == 2]
    assert sum(len(p) == 2 for p in two) >= 0.7 * len(two)


def test_probabilities_are_independent(fitted) -> None:
    clf, _, q_texts, _ = fitted
    p = clf.predict_proba(q_texts[:6])
    assert p.shape == (6, N_LABELS) and ((p >= 0) & (p <= 1)).all()
    assert not np.allclose(p.sum(1), 1.0)
    labels, probs, scores = clf.predict_with_scores(q_texts[:6])
    np.testing.assert_allclose(probs, p)
    np.testing.assert_allclose(scores, np.log(p.max(1) / (1 - p.max(1))), rtol=1e-6, atol=1e-6)
    assert clf.labels_from_proba(probs, scores) == labels


def test_return_type_does_not_depend_on_input(fitted) -> None:
    clf, _, q_texts, _ = fitted
    assert clf.predict([]) == [] and isinstance(clf.predict(q_texts[:1]), list)
    assert clf.predict_proba([]).shape == (0, N_LABELS)


def test_unknown_options(fitted) -> None:
    clf, _, q_texts, _ = fitted
    assert all(p == [] for p in clf.predict(q_texts[:4], min_confidence=1.0))
    assert all(p == [] for p in clf.predict(q_texts[:4], score_threshold=1e9))
    assert all(p for p in clf.predict(q_texts[:4], min_confidence=0.0))
    with pytest.raises(FewShotError, match="not accepted"):
        FewShotClassifier(encoder=BagEncoder(), multi_label=True).fit(["a b", "c d", "e f"], ["l0", "l1", "unknown"])


OUT_OF_SCOPE = ["please now my the thanks today", "again quick thanks now please the", "my the today again"]


def test_automatic_unknown_is_no_label_reaching_its_threshold(fitted) -> None:
    clf, encoder, q_texts, _ = fitted
    texts = q_texts[:10] + OUT_OF_SCOPE
    thresholds = clf.label_thresholds_
    assert list(thresholds) == list(clf.classes_) and all(0 < v < 1 for v in thresholds.values())
    probs = clf.predict_proba(texts)
    above = [[str(c) for c, p in sorted(zip(clf.classes_, row), key=lambda x: -x[1]) if p >= thresholds[c]]
             for row in probs]
    assert clf.predict(texts, auto_unknown=True) == above  # per-call override
    forced = clf.predict(texts)  # default: the most probable label even when none reaches its threshold
    assert all(forced) and [f for f, a in zip(forced, above) if a] == [a for a in above if a]
    strict = FewShotClassifier(encoder=encoder, multi_label=True, label_names=False, auto_unknown=True,
                               label_thresholds={f"l{c}": 0.999999 for c in range(N_LABELS)})
    strict.fit(*data()[:2])
    assert strict.label_thresholds_ == {f"l{c}": 0.999999 for c in range(N_LABELS)}
    answers = strict.predict(texts)
    assert [] in answers and answers == [
        [str(c) for c, p in sorted(zip(strict.classes_, row), key=lambda x: -x[1]) if p >= 0.999999]
        for row in strict.predict_proba(texts)]
    assert all(strict.predict(texts, auto_unknown=False))
    assert all(strict.predict(texts, score_threshold=-1e9))  # an explicit score threshold replaces the automatic rule
    assert strict.score_threshold_ is None
    details = strict.predict_details(texts)
    assert [d.labels for d in details] == answers
    assert all(d.label == "unknown" for d in details if not d.labels)


def test_automatic_unknown_is_saved_and_old_saves_load_unchanged(fitted, tmp_path) -> None:
    clf, encoder, q_texts, _ = fitted
    texts = q_texts[:10] + OUT_OF_SCOPE
    clf.set_params(auto_unknown=True, label_thresholds={"l1": 0.9})
    try:
        expected = clf.predict(texts)
        clf.save(tmp_path / "auto")
    finally:
        clf.set_params(auto_unknown=False, label_thresholds=None)
    loaded = FewShotClassifier.load(tmp_path / "auto", encoder=encoder)
    assert loaded.config.auto_unknown and loaded.predict(texts) == expected
    assert loaded.label_thresholds_["l1"] == 0.9
    clf.save(tmp_path / "old")  # a folder written before the automatic unknown existed in multi-label mode
    config = tmp_path / "old" / "config.json"
    meta = json.loads(config.read_text())
    del meta["config"]["auto_unknown"]
    config.write_text(json.dumps(meta))
    old = FewShotClassifier.load(tmp_path / "old", encoder=encoder)
    assert not old.config.auto_unknown and old.predict(texts) == clf.predict(texts) and all(old.predict(texts))


def test_label_thresholds_is_multi_label_only() -> None:
    with pytest.raises(FewShotError, match="multi_label=True"):
        FewShotClassifier(encoder=BagEncoder()).label_thresholds_
    with pytest.raises(FewShotError, match="at least 2 labels"):
        FewShotClassifier(encoder=BagEncoder(), multi_label=True).label_thresholds_


def test_details_explain_each_predicted_label(fitted) -> None:
    clf, _, q_texts, q_sets = fitted
    details = clf.predict_details(q_texts[:4], n_matches=2)
    for d, text in zip(details, q_texts[:4]):
        assert d.labels and d.label == ";".join(d.labels)
        assert set(d.label_matches) == set(d.labels)
        for lab, matches in d.label_matches.items():
            assert 1 <= len(matches) <= 2 and all(lab in m.label.split(";") for m in matches)
        assert d.score == pytest.approx(np.log(d.confidence / (1 - d.confidence)), rel=1e-5, abs=1e-5)


def test_label_thresholds_override(fitted) -> None:
    clf, encoder, q_texts, _ = fitted
    texts, labels, _, _ = data()
    other = FewShotClassifier(encoder=encoder, multi_label=True, label_names=False,
                              label_thresholds={"l0": 0.999999}).fit(texts, labels)
    p = other.predict_proba(q_texts)
    pred = other.predict(q_texts)
    for row, labs in zip(p, pred):
        if "l0" in labs:
            assert row[0] >= 0.999999 or labs == ["l0"]  # at least one label: the top one even below threshold
    other.set_params(label_thresholds={"l1": 0.3})
    assert other.label_thresholds_["l1"] == 0.3 and other.label_thresholds_ == other._multilabel.core.thresholds()
    with pytest.raises(FewShotError, match="unknown label"):
        other.set_params(label_thresholds={"nope": 0.3})
    with pytest.raises(FewShotError, match="multi_label=True"):
        FewShotClassifier(encoder=encoder, label_thresholds={"l0": 0.5})


def test_semicolon_cells_and_repeated_rows_are_one_format(fitted) -> None:
    clf, encoder, q_texts, _ = fitted
    texts, labels, _, _ = data()
    cells, rows_t, rows_l = [], [], []
    for t, labs in zip(texts, labels):
        cells.append(";".join(labs))
        for lab in labs:  # the same examples as one row per label
            rows_t.append(t)
            rows_l.append(lab)
    a = FewShotClassifier(encoder=encoder, multi_label=True, label_names=False).fit(texts, cells)
    b = FewShotClassifier(encoder=encoder, multi_label=True, label_names=False).fit(rows_t, rows_l)
    assert len(b.examples) == len(texts)
    assert b.counts() == {f"l{c}": sum(f"l{c}" in labs for labs in labels) for c in range(N_LABELS)}
    assert a.predict(q_texts) == clf.predict(q_texts) == b.predict(q_texts)


def test_editing_examples(fitted) -> None:
    _, encoder, q_texts, _ = fitted
    texts, labels, _, _ = data()
    clf = FewShotClassifier(encoder=encoder, multi_label=True, label_names=False).fit(texts, labels)
    clf.remove_label("l4")
    assert "l4" not in clf.classes_ and all("l4" not in p for p in clf.predict(q_texts))
    assert all("l4" not in lab.split(";") for lab in clf.examples.label)
    clf.add_examples("l4", [t for t, labs in zip(texts, labels) if labs == ["l4"]])
    assert "l4" in clf.classes_
    clf.set_params(label_thresholds={"l3": 0.8})
    clf.rename_label("l3", "l2")  # merged: an example of both keeps one l2; l3's threshold follows it
    assert "l3" not in clf.classes_ and clf.config.label_thresholds == {"l2": 0.8}
    assert all(lab.split(";").count("l2") <= 1 and "l3" not in lab.split(";") for lab in clf.examples.label)
    with pytest.raises(FewShotError, match="separator"):
        clf.rename_label("l2", "a;b")
    clf.set_params(label_thresholds={"l2": 0.8, "l1": 0.3})
    clf.remove_label("l2")  # its threshold goes with it: the classifier stays whole, saves and loads
    assert "l2" not in clf.classes_ and clf.config.label_thresholds == {"l1": 0.3}
    clf.remove_label("l1")
    assert clf.config.label_thresholds is None


def test_save_load_round_trip(fitted, tmp_path) -> None:
    clf, encoder, q_texts, _ = fitted
    clf.set_params(label_thresholds={"l2": 0.9})
    try:
        clf.save(tmp_path / "ml")
        assert (tmp_path / "ml" / "multilabel.npz").is_file() and (tmp_path / "ml" / "multilabel.json").is_file()
        loaded = FewShotClassifier.load(tmp_path / "ml", encoder=encoder)
        assert loaded.config.multi_label and loaded.config.label_thresholds == {"l2": 0.9}
        assert loaded._multilabel.core is not None  # no refit: the saved model is used
        assert loaded.predict(q_texts) == clf.predict(q_texts)
        np.testing.assert_allclose(loaded.predict_proba(q_texts), clf.predict_proba(q_texts), rtol=1e-6)
        assert loaded._multilabel.core.thresholds() == clf._multilabel.core.thresholds()
    finally:
        clf.set_params(label_thresholds=None)


def test_multi_label_is_fixed_at_construction(fitted, tmp_path) -> None:
    clf, encoder, _, _ = fitted
    with pytest.raises(FewShotError, match="multi_label"):
        clf.set_params(multi_label=False)
    clf.save(tmp_path / "ml")  # nor can a load turn it into a single-label one, whose labels would be 'a;b' cells
    with pytest.raises(FewShotError, match="is a multi-label classifier; multi_label=False would read each label"):
        FewShotClassifier.load(tmp_path / "ml", encoder=encoder, multi_label=False)


def test_single_label_measures_and_options_refuse_a_multi_label_classifier(fitted) -> None:
    """They would compare label lists with gold strings and report nonsense (accuracy 0), or be ignored."""
    from fewshot import metrics

    clf, encoder, q_texts, q_sets = fitted
    gold = [";".join(s) for s in q_sets]
    for measure in (lambda: metrics.evaluate(clf, q_texts, gold), lambda: metrics.evaluate_curve(clf, q_texts, gold),
                    lambda: metrics.evaluate_oos(clf, q_texts, gold, ["x y"])):
        with pytest.raises(FewShotError, match="for single-label classifiers; .*multilabel_scores"):
            measure()
    with pytest.raises(FewShotError, match="rule='matching' is a single-label rule"):
        FewShotClassifier(encoder=encoder, multi_label=True, rule="matching")
    with pytest.raises(FewShotError, match="overlap_hint is about fine-tuning"):
        clf.overlap_hint()
    with pytest.raises(FewShotError, match=r"labels\[1\] must be a string or a list of strings, got int 2 \(numbers"):
        FewShotClassifier(encoder=encoder, multi_label=True).fit(["a b", "c d"], ["l0", 2])
    with pytest.raises(FewShotError, match=r"labels\[0\] must be a string .*got float nan \(a blank cell"):
        FewShotClassifier(encoder=encoder, multi_label=True).fit(["a b", "c d"], [float("nan"), "l1"])


# ---- CLI (the real default encoder: slow) -------------------------------------------------------------
SUPPORT_ROWS = [
    ("I want my money back", "refund"), ("where is my refund", "refund"), ("please refund my order", "refund"),
    ("how long does a refund take", "refund"),
    ("I lost my card", "lost_card"), ("my card was stolen", "lost_card"), ("I can't find my credit card", "lost_card"),
    ("block my card, it is missing", "lost_card"),
    ("will it rain tomorrow", "weather"), ("what's the weather like today", "weather"),
    ("is it going to be sunny", "weather"), ("how cold is it outside", "weather"),
    ("I lost my card and I want my money back", "lost_card;refund"),
    ("will it rain tomorrow, also where is my refund", "weather"),
    ("will it rain tomorrow, also where is my refund", "refund"),
]


@pytest.mark.slow
def test_cli_fit_classify_evaluate_multi_label(tmp_path) -> None:
    from fewshot.cli import main

    support = tmp_path / "support.csv"
    pd.DataFrame(SUPPORT_ROWS, columns=["text", "label"]).to_csv(support, index=False)
    test = tmp_path / "test.csv"
    pd.DataFrame([("someone took my bank card", "lost_card"), ("do I need an umbrella today", "weather"),
                  ("my card is gone and I need a refund", "lost_card;refund")],
                 columns=["text", "label"]).to_csv(test, index=False)
    assert main(["fit", "--support", str(support), "--out", str(tmp_path / "clf"), "--multi-label",
                 "--model", "minilm"]) == 0
    assert (tmp_path / "clf" / "multilabel.npz").is_file()
    out = tmp_path / "out.csv"
    assert main(["classify", "--classifier", str(tmp_path / "clf"), "--input", str(test), "--output",
                 str(out)]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert "labels" in df.columns and "label" in df.columns  # the input's own column is kept
    assert list(df.columns[-4:]) == ["labels", "confidence", "top_3", "in_scope_score"]
    assert all(cell for cell in df["labels"])
    assert main(["fit", "--support", str(support), "--out", str(tmp_path / "auto"), "--multi-label",
                 "--auto-unknown", "--model", "minilm"]) == 0  # saved with the automatic unknown
    assert main(["classify", "--classifier", str(tmp_path / "auto"), "--input", str(test), "--output",
                 str(tmp_path / "auto.csv")]) == 0
    saved = FewShotClassifier.load(tmp_path / "auto")
    assert saved.config.auto_unknown
    test_texts = pd.read_csv(test).text.tolist()
    expected = [";".join(p) if p else "unknown" for p in saved.predict(test_texts)]
    assert pd.read_csv(tmp_path / "auto.csv", keep_default_na=False)["labels"].tolist() == expected
    assert expected == [";".join(p) if p else "unknown" for p in saved.predict(test_texts, auto_unknown=True)]
    ev = tmp_path / "ev.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["evaluate", "--support", str(support), "--test", str(test), "--multi-label", "--json",
                     "--model", "minilm"]) == 0
    result = json.loads(buf.getvalue())
    for key in ("micro_f1", "macro_f1", "subset_accuracy", "per_label", "n", "fit_seconds"):
        assert key in result
    assert result["n"] == 3 and set(result["per_label"]) >= {"refund", "lost_card", "weather"}
    ev.write_text(buf.getvalue())
    saved_ml = ["evaluate", "--classifier", str(tmp_path / "clf"), "--test", str(test)]
    for extra, message in ((["--oos", str(test)], "--oos is not available with --multi-label"),
                           (["--curve", str(tmp_path / "c.csv")], "--curve is not available with --multi-label")):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):  # with --multi-label: refused before the (missing) test file is read
            assert main(["evaluate", "--support", str(support), "--test", str(tmp_path / "nope.csv"),
                         "--multi-label", *extra]) == 2
            assert main([*saved_ml, *extra]) == 2  # a saved multi-label classifier: refused once it is loaded
        assert err.getvalue().count(message) == 2 and "not found" not in err.getvalue()


@pytest.mark.slow
def test_cli_evaluate_multi_label_reads_empty_and_unknown_cells_as_no_label(tmp_path, capsys) -> None:
    """A multi-label test row with an empty label cell, or the cell ``unknown``, expects no label (as the app reads
    it): it is scored, not refused, and ``unknown`` is not a label; single-label evaluation still refuses empty
    cells, naming the row."""
    from fewshot.cli import main

    support, test = tmp_path / "support.csv", tmp_path / "test.csv"
    pd.DataFrame(SUPPORT_ROWS, columns=["text", "label"]).to_csv(support, index=False)
    pd.DataFrame([("someone took my bank card", "lost_card"), ("do I need an umbrella today", "weather"),
                  ("what is the capital of peru", ""), ("recommend a good novel", "unknown")],
                 columns=["text", "label"]).to_csv(test, index=False)
    base = ["evaluate", "--support", str(support), "--test", str(test), "--model", "minilm", "--json"]
    assert main([*base, "--multi-label", "--auto-unknown"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 4 and "unknown" not in result["per_label"] and "" not in result["per_label"]
    assert main(base) == 2
    assert "column 'label' is empty on row 4" in capsys.readouterr().err
