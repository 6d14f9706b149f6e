"""The multi-label core on synthetic clusters with known label sets, its state round trip, the table format."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from fewshot.errors import FewShotError
from fewshot.multilabel import (MultiLabelConfig, MultiLabelCore, group_label_rows, join_labels, matched_examples,
                                multilabel_scores, split_label_cell)
from fewshot.multilabel.views import build_views, text_windows, windows_of

LABELS = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
LABELS_SORTED = sorted(LABELS)  # the order of a fitted core's columns
DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def clusters() -> dict:
    """Six well-separated label clusters: 6 single-label examples each, plus 4 two-label examples."""
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(len(LABELS), DIM)))
    xs, ys = [], []
    for i, lab in enumerate(LABELS):
        for _ in range(6):
            xs.append(unit(centres[i] + 0.25 * rng.normal(size=DIM) / np.sqrt(DIM)))
            ys.append([lab])
    for a, b in [(0, 1), (2, 3), (4, 5), (1, 2)]:
        xs.append(unit(centres[a] + centres[b] + 0.25 * rng.normal(size=DIM) / np.sqrt(DIM)))
        ys.append([LABELS[a], LABELS[b]])
    return {"x": np.stack(xs), "y": ys, "centres": centres}


@pytest.fixture(scope="module")
def fitted(clusters: dict) -> MultiLabelCore:
    return MultiLabelCore().fit(clusters["x"], clusters["y"])


@pytest.mark.parametrize("method", ["logistic", "pairs", "heads", "prototype"])
def test_two_label_point_gets_both_labels(clusters: dict, method: str) -> None:
    core = MultiLabelCore(MultiLabelConfig(method=method)).fit(clusters["x"], clusters["y"])
    c = clusters["centres"]
    between = unit(c[0] + c[3])  # a pair never seen as a two-label example
    assert sorted(core.predict(between[None])[0]) == ["alpha", "delta"]
    assert core.predict(c[4][None])[0] == ["eps"]


def test_views_let_a_text_speak_for_each_span(clusters: dict) -> None:
    """A whole-text vector that leans to one label, with windows near each label: both labels come out."""
    c = clusters["centres"]
    x, y = clusters["x"], clusters["y"]
    views = [v[None] for v in x]  # each example is its own only view
    core = MultiLabelCore().fit(x, y, views)
    whole = unit(3 * c[1] + c[5])
    text_views = [np.stack([whole, unit(c[1] + 0.1 * c[5]), unit(c[5] + 0.1 * c[1])])]
    assert core.predict(whole[None])[0] == ["beta"]
    assert sorted(core.predict(whole[None], text_views)[0]) == ["beta", "zeta"]


def test_probabilities_are_independent_and_ordered_by_classes(fitted: MultiLabelCore, clusters: dict) -> None:
    p = fitted.predict_proba(clusters["x"])
    assert list(fitted.classes_) == sorted(LABELS)
    assert p.shape == (len(clusters["x"]), len(LABELS))
    assert ((p >= 0) & (p <= 1)).all()
    two = [i for i, y in enumerate(clusters["y"]) if len(y) == 2]
    assert (p[two].sum(1) > 1.0).all()  # several labels can be near-certain at once
    pred = fitted.predict(clusters["x"])
    for row, labels in zip(p, pred):  # most probable first
        probs = [row[list(fitted.classes_).index(lab)] for lab in labels]
        assert probs == sorted(probs, reverse=True)


def test_training_examples_are_recovered(fitted: MultiLabelCore, clusters: dict) -> None:
    s = multilabel_scores(clusters["y"], fitted.predict(clusters["x"]))
    assert s["subset_accuracy"] == 1.0 and s["micro_f1"] == 1.0


def test_thresholds_are_cross_validated_and_overridable(clusters: dict) -> None:
    core = MultiLabelCore(MultiLabelConfig(at_least_one=False)).fit(clusters["x"], clusters["y"])
    auto = core.thresholds()
    assert set(auto) == set(LABELS) and all(0.0 < v < 1.0 for v in auto.values())
    far = unit(np.random.default_rng(5).normal(size=(1, DIM)))
    core.set_thresholds(0.999999)
    assert core.predict(clusters["centres"][:1] * 0.0 + far) == [[]]  # nothing passes: unknown
    core.set_thresholds({"gamma": 1e-9})
    assert core.predict(far) == [["gamma"]]
    assert core.thresholds()["gamma"] == 1e-9 and core.thresholds()["alpha"] == 0.999999
    with pytest.raises(FewShotError, match="unknown label 'omega'"):
        core.set_thresholds({"omega": 0.5})
    with pytest.raises(FewShotError, match="probability"):
        core.set_thresholds(1.5)
    fixed = MultiLabelCore(MultiLabelConfig(threshold=0.3)).fit(clusters["x"], clusters["y"])
    assert set(fixed.thresholds().values()) == {0.3}


def test_a_handful_of_examples_does_not_give_every_text_every_label(clusters: dict) -> None:
    """One example per label: no fold's model knows its held-out example's label, so cross-validation has nothing
    to place a threshold with (0.5), where a threshold below every score gave every text every label."""
    x, y = clusters["x"][:36:6], clusters["y"][:36:6]  # the first example of each label
    one = MultiLabelCore(MultiLabelConfig(at_least_one=False)).fit(x, y)
    assert set(one.thresholds().values()) == {0.5}
    assert one.predict(clusters["centres"]) == [[lab] for lab in LABELS]


def test_the_best_cut_answering_every_cell_is_no_threshold() -> None:
    """An uninformative score's F1 peaks where every cell is answered: 0.5 then, not half the lowest score."""
    from fewshot.multilabel.core import _best_threshold

    assert _best_threshold(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 1, 0, 0])) == pytest.approx(0.55)
    assert _best_threshold(np.array([0.9, 0.01, 1e-6]), np.array([0, 1, 1])) == 0.5  # everything: no cut


def test_at_least_one_returns_the_top_label(clusters: dict) -> None:
    core = MultiLabelCore(MultiLabelConfig(at_least_one=True)).fit(clusters["x"], clusters["y"])
    core.set_thresholds(0.999999)
    assert core.predict(clusters["centres"][2:3]) == [["gamma"]]


def test_per_label_thresholds(clusters: dict) -> None:
    core = MultiLabelCore(MultiLabelConfig(per_label=True)).fit(clusters["x"], clusters["y"])
    assert core.thresholds_.shape == (len(LABELS),)
    assert core.predict(clusters["centres"][4][None])[0] == ["eps"]


def test_fit_is_deterministic(clusters: dict) -> None:
    a = MultiLabelCore(MultiLabelConfig(method="pairs")).fit(clusters["x"], clusters["y"])
    b = MultiLabelCore(MultiLabelConfig(method="pairs")).fit(clusters["x"], clusters["y"])
    assert np.array_equal(a.predict_proba(clusters["x"]), b.predict_proba(clusters["x"]))
    assert np.array_equal(a.thresholds_, b.thresholds_)


def test_joint_solver_matches_one_fit_per_label(clusters: dict) -> None:
    """solver="joint" minimises scikit-learn's per-label objective for every label at once: same answers."""
    x, y = clusters["x"], clusters["y"]
    joint = MultiLabelCore(MultiLabelConfig(solver="joint", threshold=0.5)).fit(x, y)
    per_label = MultiLabelCore(MultiLabelConfig(solver="sklearn", threshold=0.5)).fit(x, y)
    np.testing.assert_allclose(joint.predict_proba(x), per_label.predict_proba(x), atol=0.02)
    c = clusters["centres"]
    q = unit(np.vstack([c, c[0] + c[3], c[1] + c[5]]))
    assert [sorted(p) for p in joint.predict(q)] == [sorted(p) for p in per_label.predict(q)]
    with pytest.raises(FewShotError, match="solver"):
        MultiLabelCore(MultiLabelConfig(solver="newton")).fit(x, y)


@pytest.mark.filterwarnings("ignore:lbfgs failed to converge")  # logistic_max_iter=1 stops it on purpose
@pytest.mark.parametrize("solver", ["joint", "sklearn"])
def test_the_logistic_fits_iterations_and_tolerance_are_settings(clusters: dict, solver: str) -> None:
    x, y = clusters["x"], clusters["y"]
    default = MultiLabelCore(MultiLabelConfig(solver=solver, threshold=0.5)).fit(x, y)
    spelled = MultiLabelCore(MultiLabelConfig(solver=solver, threshold=0.5, logistic_max_iter=1000,
                                              logistic_tol=1e-4)).fit(x, y)
    np.testing.assert_array_equal(default.decision_function(x), spelled.decision_function(x))
    short = MultiLabelCore(MultiLabelConfig(solver=solver, threshold=0.5, logistic_max_iter=1)).fit(x, y)
    assert not np.allclose(short.decision_function(x), default.decision_function(x))
    loose = MultiLabelCore(MultiLabelConfig(solver=solver, threshold=0.5, logistic_tol=10.0)).fit(x, y)
    assert not np.allclose(loose.decision_function(x), default.decision_function(x))
    for bad, message in [({"logistic_max_iter": 0}, "logistic_max_iter must be at least 1, got 0"),
                         ({"logistic_tol": 0.0}, "logistic_tol must be > 0, got 0.0")]:
        with pytest.raises(FewShotError, match=message):
            MultiLabelConfig(**bad).validate()


@pytest.mark.parametrize("at_least_one", [True, False])
def test_predict_answers_the_labels_predict_indicator_turns_on(clusters: dict, at_least_one: bool) -> None:
    core = MultiLabelCore(MultiLabelConfig(at_least_one=at_least_one)).fit(clusters["x"], clusters["y"])
    core.set_thresholds({"alpha": 0.999999, "beta": 0.999999})
    c = clusters["centres"]
    q = unit(np.vstack([c, c[0] + c[3], np.random.default_rng(5).normal(size=(3, DIM))]))
    on = core.predict_indicator(q)
    assert on.any(1).all() == at_least_one  # alpha's centre passes nothing: its top label, or none
    for labels, row_on, row_p in zip(core.predict(q), on, core.predict_proba(q)):
        assert sorted(labels) == sorted(core.classes_[row_on])  # the same labels, most probable first
        assert labels == sorted(labels, key=lambda lab: -row_p[LABELS_SORTED.index(lab)])


def test_with_top_label_turns_on_the_most_probable_label_of_rows_with_none() -> None:
    from fewshot.multilabel.core import with_top_label

    probs = np.array([[0.2, 0.4, 0.3], [0.9, 0.1, 0.8]])
    on = with_top_label(probs, probs >= 0.5)
    np.testing.assert_array_equal(on, [[False, True, False], [True, False, True]])
    assert with_top_label(np.zeros((0, 3)), np.zeros((0, 3), dtype=bool)).shape == (0, 3)


def test_save_load_round_trip_is_identical(fitted: MultiLabelCore, clusters: dict, tmp_path) -> None:
    fitted.set_thresholds({"beta": 0.42})
    fitted.save(tmp_path)
    meta = json.loads((tmp_path / "multilabel.json").read_text())
    assert meta["classes"] == sorted(LABELS)
    with np.load(tmp_path / "multilabel.npz", allow_pickle=False) as z:  # plain arrays, no pickle
        assert {k: z[k].dtype.kind for k in z.files} == {"weights": "f", "bias": "f", "thresholds": "f",
                                                          "n_examples": "i"}
    back = MultiLabelCore.load(tmp_path)
    assert np.array_equal(back.predict_proba(clusters["x"]), fitted.predict_proba(clusters["x"]))
    assert back.predict(clusters["x"]) == fitted.predict(clusters["x"])
    assert back.thresholds() == fitted.thresholds() and back.thresholds()["beta"] == 0.42
    assert back.config_ == fitted.config_
    arrays, meta = fitted.state()
    again = MultiLabelCore.from_state(arrays, json.loads(json.dumps(meta)))
    assert np.array_equal(again.decision_function(clusters["x"]), fitted.decision_function(clusters["x"]))


def test_load_errors(tmp_path, fitted: MultiLabelCore) -> None:
    with pytest.raises(FewShotError, match="no multi-label model"):
        MultiLabelCore.load(tmp_path / "nowhere")
    arrays, meta = fitted.state()
    with pytest.raises(FewShotError, match="format"):
        MultiLabelCore.from_state(arrays, {**meta, "format": 99})
    with pytest.raises(FewShotError, match="unknown multi-label settings"):
        MultiLabelCore.from_state(arrays, {**meta, "config": {**meta["config"], "colour": 1}})
    with pytest.raises(FewShotError, match="inconsistent"):
        MultiLabelCore.from_state({**arrays, "bias": arrays["bias"][:2]}, meta)


@pytest.mark.parametrize("labels, message", [
    ([["a"], []], "no label"),
    ([["a"], "b"], "string"),
    ([["a"], ["a"]], "at least 2 labels"),
    ([["a"]], "one label list per embedding"),
])
def test_fit_rejects_bad_labels(labels: list, message: str) -> None:
    x = unit(np.random.default_rng(0).normal(size=(2, 4)))
    with pytest.raises(FewShotError, match=message):
        MultiLabelCore().fit(x, labels)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(FewShotError, match="method"):
        MultiLabelCore(MultiLabelConfig(method="magic")).fit(np.eye(2), [["a"], ["b"]])
    with pytest.raises(FewShotError, match=r"NaN or infinite values \(first in row 1\)"):
        MultiLabelCore().fit(np.array([[0.0, 1.0], [np.inf, 0.0]]), [["a"], ["b"]])
    with pytest.raises(FewShotError, match="not fitted"):
        MultiLabelCore().predict(np.eye(2))


def test_wrong_dimension_and_views(fitted: MultiLabelCore) -> None:
    with pytest.raises(FewShotError, match=r"shape \(n, 32\)"):
        fitted.predict(np.ones((1, 5)))
    with pytest.raises(FewShotError, match="one views array per embedding"):
        fitted.predict(np.ones((2, DIM)), [np.ones((1, DIM))])


def test_matched_examples_explain_each_label(fitted: MultiLabelCore, clusters: dict) -> None:
    c = clusters["centres"]
    x = unit(c[0] + c[3])[None]
    pred = fitted.predict(x)
    expl = matched_examples(x, pred, clusters["x"], clusters["y"], k=2)
    assert set(expl[0]) == {"alpha", "delta"}
    for lab, matches in expl[0].items():
        assert len(matches) == 2 and matches[0][1] >= matches[1][1]
        assert all(lab in clusters["y"][i] for i, _ in matches)


# ---------------------------------------------------------------- the table format
@pytest.mark.parametrize("cell, labels", [
    ("billing", ["billing"]),
    ("billing;bug", ["billing", "bug"]),
    ("  billing ;  bug ", ["billing", "bug"]),
    ("billing;;bug;", ["billing", "bug"]),
    ("bug;billing;bug", ["bug", "billing"]),
    ("", []), ("  ", []), (" ; ", []), (None, []), (float("nan"), []),
])
def test_split_label_cell(cell, labels: list[str]) -> None:
    assert split_label_cell(cell) == labels


def test_repeated_rows_carry_all_their_labels() -> None:
    csv = ('text,label\n'
           '"refund please, the app crashed","billing;bug"\n'
           'where is my parcel,shipping\n'
           '"  refund please, the app crashed ",billing\n'
           '"refund please, the app crashed", urgent ; bug \n'
           'hello,\n'
           'where is my parcel,\n')
    df = pd.read_csv(io.StringIO(csv), dtype=str, keep_default_na=False)
    texts, labels = group_label_rows(df["text"].tolist(), df["label"].tolist())
    assert texts == ["refund please, the app crashed", "where is my parcel", "hello"]
    assert labels == [["billing", "bug", "urgent"], ["shipping"], []]


def test_group_rejects_blank_text_and_length_mismatch() -> None:
    with pytest.raises(FewShotError, match="row 2"):
        group_label_rows(["a", "  "], ["x", "y"])
    with pytest.raises(FewShotError, match="one label cell per text"):
        group_label_rows(["a"], ["x", "y"])


def test_join_labels_round_trips() -> None:
    assert join_labels([]) == ""
    assert split_label_cell(join_labels(["billing", "bug"])) == ["billing", "bug"]
    with pytest.raises(FewShotError, match="'a;b'"):
        join_labels(["a;b"])


# ---------------------------------------------------------------- metrics and views
def test_scores() -> None:
    true = [["a"], ["a", "b"], ["c"], []]
    pred = [["a"], ["a"], ["b"], []]
    s = multilabel_scores(true, pred)
    # tp a=2; fn b=1, c=1; fp b=1 -> micro 2*2 / (2*2 + 1 + 2)
    assert s["micro_f1"] == pytest.approx(4 / 7)
    assert s["subset_accuracy"] == pytest.approx(0.5)
    assert s["per_label"]["a"]["f1"] == 1.0 and s["per_label"]["c"]["f1"] == 0.0
    assert s["macro_f1"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)


def test_text_windows_are_positional() -> None:
    assert text_windows("book a table") == []
    w = text_windows("one two three four five six seven eight")
    assert w == ["one two three four", "three four five six", "five six seven eight"]
    # a conjunction is just a word: the windows are the same with another word there
    a = text_windows("set an alarm for seven and play some jazz music")
    b = text_windows("set an alarm for seven xyz play some jazz music")
    assert [x.replace("and", "xyz") for x in a] == b
    windows, counts = windows_of(["book a table", "one two three four five six seven eight"])
    assert counts == [0, 3] and len(windows) == 3
    views = build_views(np.zeros((2, 4)), np.ones((3, 4)), counts)
    assert [v.shape for v in views] == [(1, 4), (4, 4)]
