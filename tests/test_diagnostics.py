"""Label-set warnings (fewshot.diagnostics): fast, on hand-made vectors; one check with the real encoder."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot.diagnostics import (
    closer_to_other_label,
    diagnose,
    diagnose_classifier,
    diagnose_multilabel,
    duplicates,
    same_name_labels,
    single_example_labels,
)


def test_single_example_label() -> None:
    found = single_example_labels(["a", "a", "b"])
    assert [(f.kind, f.label) for f in found] == [("single_example", "b")]
    assert "single example" in found[0].message


def test_labels_written_two_ways() -> None:
    found = same_name_labels(["Refund", "refund", "lost_card", "Lost card", "lost-card", "billing", "refund"])
    assert [(f.kind, f.label, f.other_label) for f in found] == [("same_name", "Refund", "refund"),
                                                                 ("same_name", "Lost card", "lost-card")]
    assert "'Lost card' and 'lost-card' and 'lost_card' differ only in case" in found[1].message
    assert same_name_labels(["refund", "refunds", "billing"]) == []
    assert "same_name" in {f.kind for f in diagnose(["a", "b", "c", "d"], ["Refund", "refund", "x", "x"])}


def test_multilabel_examples_are_examples_of_each_label() -> None:
    x, y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    texts = ["a1", "a2", "b1", "b2", "a and b"]
    sets = [["A"], ["A"], ["B"], ["B"], ["A", "B"]]
    vectors = np.stack([x, x, y, y, x + y])
    assert diagnose_multilabel(texts, sets, vectors) == []  # no conflict, and "a and b" sits between on purpose
    found = diagnose_multilabel(texts + ["c"], sets + [["C", "c"]], np.vstack([vectors, x]))
    assert [f.kind for f in found] == ["same_name", "single_example", "single_example"]


def test_duplicates_and_conflicts() -> None:
    texts = ["hi", "hi ", "bye", "bye", "ok"]
    labels = ["greet", "greet", "greet", "farewell", "ok"]
    kinds = {(f.kind, f.text) for f in duplicates(texts, labels)}
    assert kinds == {("duplicate", "hi"), ("conflict", "bye")}


def test_closer_to_other_label_flags_the_mislabelled_one() -> None:
    x, y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    noise = np.array([0.0, 0.0, 0.1])
    texts = ["a1", "a2", "a3", "b1", "b2", "b3 (really an a)"]
    labels = ["A", "A", "A", "B", "B", "B"]
    vectors = np.stack([x, x + noise, x - noise, y, y + noise, x + 2 * noise])
    found = closer_to_other_label(texts, labels, vectors)
    assert [(f.text, f.label, f.other_label) for f in found] == [("b3 (really an a)", "B", "A")]
    assert found[0].score > 0.1


def test_clean_label_set_has_no_findings() -> None:
    vectors = np.eye(4)[[0, 0, 1, 1]] + 0.01
    assert diagnose(["a", "b", "c", "d"], ["x", "x", "y", "y"], vectors) == []


def test_degenerate_inputs_do_not_crash() -> None:
    assert diagnose([], []) == []
    assert diagnose(["only"], ["one"], np.ones((1, 3))) [0].kind == "single_example"
    assert closer_to_other_label(["a", "b"], ["x", "x"], np.ones((2, 3))) == []  # one label
    assert closer_to_other_label(["a", "b"], ["x", "y"], np.zeros((2, 3))) == []  # zero vectors, singletons


@pytest.mark.slow
def test_diagnose_classifier_uses_its_encoder() -> None:
    from fewshot import FewShotClassifier

    texts = ["I lost my card", "my card was stolen", "where is my refund", "refund my order please",
             "I want my money back"]
    labels = ["lost_card", "lost_card", "refund", "refund", "lost_card"]  # the last one is mislabelled
    found = diagnose_classifier(FewShotClassifier("minilm").fit(texts, labels))
    assert ("closer_to_other", "I want my money back") in {(f.kind, f.text) for f in found}


def test_fit_warns_about_label_names_written_two_ways() -> None:
    from fewshot import FewShotClassifier, FewShotWarning

    texts = ["I lost my card", "my card was stolen", "where is my refund", "refund my order please"]
    with pytest.warns(FewShotWarning, match="'Refund' and 'refund' differ only in case"):
        FewShotClassifier("minilm").fit(texts, ["lost_card", "lost_card", "Refund", "refund"])
    with pytest.warns(FewShotWarning, match="'Lost card' and 'lost_card' differ only in case"):
        FewShotClassifier("minilm", multi_label=True).fit(texts, ["lost_card", "Lost card", "refund", "refund"])
