"""Groups no label covers: grouping a batch's unknown answers, on synthetic clusters where the groups are known."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot import FewShotClassifier, FewShotError, uncovered_groups
from fewshot.rules import l2_normalize
from fewshot.uncovered import MIN_GROUP_SIZE, group_vectors, label_worth, pool_rows
from test_oos import TableEncoder, clusters


def new_intent(encoder: TableEncoder, name: str, n: int, seed: int = 7) -> list[str]:
    """``n`` texts of an intent no label covers (a tight cluster in its own direction), added to ``encoder``."""
    rng = np.random.default_rng(seed)
    centre = l2_normalize(rng.normal(size=encoder.dim))
    texts = [f"{name} {i}" for i in range(n)]
    for t in texts:
        encoder.table[t] = l2_normalize(centre + 0.3 * rng.normal(size=encoder.dim) / np.sqrt(encoder.dim))
    return texts


def test_group_vectors_finds_tight_groups_largest_first_most_typical_first() -> None:
    rng = np.random.default_rng(0)
    centres = l2_normalize(rng.normal(size=(3, 16)))
    sizes = (4, 9, 2)  # the third is below min_size
    rows, truth = [], []
    for c, n in enumerate(sizes):
        rows.append(l2_normalize(centres[c] + 0.05 * rng.normal(size=(n, 16))))
        truth += [c] * n
    rows.append(l2_normalize(rng.normal(size=(5, 16))))  # scattered: no group
    truth += [-1] * 5
    vectors, truth = np.vstack(rows), np.array(truth)
    groups = group_vectors(vectors)
    assert [len(g) for g in groups] == [9, 4]
    assert set(truth[groups[0]]) == {1} and set(truth[groups[1]]) == {0}
    for g in groups:  # most typical first: the cosine to the group's mean direction never rises
        centre = l2_normalize(l2_normalize(vectors[g]).mean(axis=0))
        typical = l2_normalize(vectors[g]) @ centre
        assert np.all(np.diff(typical) <= 1e-9)
    assert [len(g) for g in group_vectors(vectors, min_size=2)] == [9, 4, 2]
    assert group_vectors(vectors[:2]) == [] and group_vectors(np.empty((0, 16))) == []
    assert len(group_vectors(vectors, distance=1e-6)) == 0  # nothing that close


@pytest.mark.parametrize("bad", [{"distance": 0}, {"distance": 2.5}, {"distance": "x"}, {"min_size": 1},
                                 {"min_size": 2.5}, {"min_size": True}])
def test_bad_grouping_options_name_the_value(bad: dict) -> None:
    name = next(iter(bad))
    with pytest.raises(FewShotError, match=name):
        group_vectors(np.eye(4), **bad)


def test_uncovered_groups_are_the_unknown_answers_that_repeat() -> None:
    encoder, support, in_scope, scattered = clusters(seed=2)
    off, more = np.split(np.array(new_intent(encoder, "mortgage", 32)), [12])  # asked 12 times in the batch
    off, more = off.tolist(), more.tolist()
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    batch = [t for t, _ in in_scope[:40]] + off + scattered[:20]
    order = np.random.default_rng(0).permutation(len(batch))
    batch = [batch[i] for i in order]
    groups = uncovered_groups(clf, batch, pool=1)  # the unknown answers alone
    assert len(groups) == 1
    assert sorted(batch[i] for i in groups[0]) == sorted(off)  # the repeated intent, and nothing else
    answered = clf.predict(batch)
    assert all(answered[i] == "unknown" for i in groups[0])
    # named "none of these", the group makes the classifier refuse that intent's next texts
    named = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True).fit(
        [t for t, _ in support] + [batch[i] for i in groups[0]], [lab for _, lab in support] + ["unknown"] * 12)
    assert list(named.predict(more)).count("unknown") == len(more)
    few = uncovered_groups(clf, batch, pool=1, max_texts=5)  # only the 5 least in-scope unknown answers
    scores = clf.in_scope_score(batch)
    assert sum(map(len, few)) <= 5 and all(scores[i] <= np.sort(scores)[4] for g in few for i in g)
    assert uncovered_groups(clf, [t for t, _ in in_scope[:10]]) == []  # nothing answered unknown
    with pytest.raises(FewShotError, match="max_texts"):
        uncovered_groups(clf, batch, max_texts=0)
    with pytest.raises(FewShotError, match="min_size"):
        uncovered_groups(clf, batch, min_size=1)


def test_uncovered_groups_of_a_multi_label_classifier_are_its_empty_answers() -> None:
    encoder, support, in_scope, _ = clusters(seed=5, n_labels=4)
    off = new_intent(encoder, "mortgage", 10, seed=8)
    clf = FewShotClassifier(encoder=encoder, label_names=False, multi_label=True, auto_unknown=True)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    batch = off + [t for t, _ in in_scope[:20]]
    groups = uncovered_groups(clf, batch, pool=1)
    assert groups and set(groups[0]) <= set(range(len(off)))
    answers = clf.predict(batch)
    assert all(answers[i] == [] for g in groups for i in g)


def test_uncovered_groups_with_a_table_encoder_use_the_encoder_vectors() -> None:
    table = {f"a{i}": l2_normalize(np.array([1.0, 0.0, 0.01 * i])) for i in range(6)}
    table |= {f"b{i}": l2_normalize(np.array([0.0, 1.0, 0.01 * i])) for i in range(6)}
    table |= {f"q{i}": l2_normalize(np.array([0.0, 0.0, 1.0]) + 0.01 * i) for i in range(4)}
    clf = FewShotClassifier(encoder=TableEncoder(table), label_names=False, min_confidence=0.99)
    clf.fit([f"a{i}" for i in range(3)] + [f"b{i}" for i in range(3)], ["a"] * 3 + ["b"] * 3)
    groups = uncovered_groups(clf, [f"q{i}" for i in range(4)] + ["a4"])
    assert groups == [[0, 1, 2, 3]] or (len(groups) == 1 and sorted(groups[0]) == [0, 1, 2, 3])


def test_a_label_s_worth_is_the_median_label_size_at_least_a_group() -> None:
    assert label_worth([5, 5, 6]) == 5 and label_worth([0, 10, 12]) == 11
    assert label_worth([1, 2]) == MIN_GROUP_SIZE == 3 and label_worth([]) == 3


def test_the_pool_is_the_unknown_answers_then_the_least_in_scope_others() -> None:
    unknown = np.array([False, True, False, True, False, False])
    scores = np.array([5.0, 1.0, 0.5, 2.0, 3.0, np.nan])  # nan: lowest
    assert pool_rows(unknown, scores, pool=1).tolist() == [1, 3]
    assert pool_rows(unknown, scores, pool=1.5).tolist() == [1, 3, 5]
    assert pool_rows(unknown, scores, pool=2).tolist() == [1, 2, 3, 5]
    assert pool_rows(unknown, scores).tolist() == [1, 3, 5]  # the default: 1.5 times the unknown answers
    assert pool_rows(unknown, scores, pool=10).tolist() == list(range(6))
    assert pool_rows(unknown, scores, max_texts=1).tolist() == [1]  # the unknown ones come first
    assert pool_rows(np.zeros(3, bool), np.zeros(3)).tolist() == []
    for bad, message in (({"pool": 0.5}, "pool must be"), ({"pool": "2"}, "pool must be"),
                         ({"max_texts": 0}, "max_texts")):
        with pytest.raises(FewShotError, match=message):
            pool_rows(unknown, scores, **bad)
    with pytest.raises(FewShotError, match="one score per row"):
        pool_rows(unknown, scores[:3])


def test_an_intent_split_by_the_threshold_is_grouped_whole() -> None:
    encoder, support, in_scope, _ = clusters(seed=2)
    texts, labels = [t for t, _ in support], [lab for _, lab in support]
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True).fit(texts, labels)
    # an unknown intent close to label3: its texts land on both sides of the threshold
    near = l2_normalize(encoder.table[texts[labels.index("label3")]] + 1.5 * l2_normalize(
        np.random.default_rng(1).normal(size=encoder.dim)))
    rng = np.random.default_rng(2)
    intent = [f"near {i}" for i in range(10)]
    for t in intent:
        encoder.table[t] = l2_normalize(near + 0.5 * rng.normal(size=encoder.dim) / np.sqrt(encoder.dim))
    batch = [t for t, _ in in_scope[:60]] + intent
    answered = clf.predict(batch)
    refused = [t for t, a in zip(batch, answered) if a == "unknown" and t in intent]
    assert 3 <= len(refused) < len(intent)  # the threshold splits it
    alone = {batch[i] for g in uncovered_groups(clf, batch, pool=1) for i in g}
    pooled = {batch[i] for g in uncovered_groups(clf, batch) for i in g}
    assert len(pooled & set(intent)) > len(alone & set(intent)) >= 3  # texts above the threshold join
    assert pooled <= set(intent)  # and nothing of the known labels
