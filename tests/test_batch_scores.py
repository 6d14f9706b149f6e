"""Reading a batch's in-scope scores together (fewshot.batch_reading.batch_scores,
predict_with_scores(batch_aware=True)), on synthetic clusters where the unknown intent is known."""

from __future__ import annotations

import numpy as np
import pytest

from fewshot import FewShotClassifier, FewShotError
from fewshot.batch_reading import (BATCH_MIN_TEXTS, BATCH_NEAR, BATCH_RISE, batch_neighbours, batch_scores,
                                   calibrated_floor, example_reach, reference_texts, reordered, similarity_floor)
from fewshot.rules import l2_normalize
from test_oos import TableEncoder, clusters


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Share of (in-scope, unknown) pairs the score orders right (ties count half)."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def sibling_intent(encoder: TableEncoder, near: list[str], name: str, n: int, seed: int = 3) -> list[str]:
    """``n`` texts of an intent no label covers that sits close to the label whose examples are ``near`` (an
    in-domain unknown: one at a time it reads like that label), added to ``encoder``."""
    rng = np.random.default_rng(seed)
    known = l2_normalize(np.mean([encoder.table[t] for t in near], axis=0))
    centre = l2_normalize(known + 0.9 * l2_normalize(rng.normal(size=encoder.dim)))
    texts = [f"{name} {i}" for i in range(n)]
    for t in texts:
        encoder.table[t] = l2_normalize(centre + 0.6 * rng.normal(size=encoder.dim) / np.sqrt(encoder.dim))
    return texts


@pytest.fixture(scope="module")
def batch() -> tuple[FewShotClassifier, list[str], list[str], list[str], list[str]]:
    """A classifier, and a batch: in-scope texts, an in-domain unknown intent asked 20 times, scattered texts."""
    encoder, support, in_scope, scattered = clusters(seed=4)
    near = [t for t, lab in support if lab == "label0"]
    new = sibling_intent(encoder, near, "mortgage", 20)
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    inside = [t for t, _ in in_scope[:120]]
    texts = inside + new + scattered[:30]
    order = np.random.default_rng(1).permutation(len(texts))
    return clf, [texts[i] for i in order], inside, new, scattered[:30]


def test_reading_the_batch_together_separates_a_repeated_unknown_intent(batch) -> None:
    clf, texts, inside, new, scattered = batch
    position = {t: i for i, t in enumerate(texts)}
    plain_labels, plain_probs, plain = clf.predict_with_scores(texts)
    labels, probs, together = clf.predict_with_scores(texts, batch_aware=True)
    np.testing.assert_array_equal(probs, plain_probs)  # the labels' probabilities are untouched
    rows = {name: np.array([position[t] for t in group]) for name, group in
            (("in", inside), ("new", new), ("scattered", scattered))}
    assert auroc(together[rows["in"]], together[rows["new"]]) > auroc(plain[rows["in"]], plain[rows["new"]]) + 0.05
    vectors = clf.encoder.encode(texts)
    nearest = clf.support.nearest(vectors, 1)[0][:, 0]
    pure = batch_scores(plain, vectors, nearest, rise=1.0)
    first = np.minimum(plain, pure) + BATCH_RISE * np.maximum(pure - plain, 0)  # the reading before the reach
    np.testing.assert_allclose(batch_scores(plain, vectors, nearest), first, rtol=1e-6)
    np.testing.assert_allclose(together, batch_scores(plain, vectors, nearest, examples=clf.support.vectors), rtol=1e-6)
    assert (np.sort(together) <= np.sort(first) + 1e-9).all()  # the examples' reach lowers the values as a whole
    assert (together > plain + 1e-9).any() and (together < plain - 1e-9).any()  # lowered in full, raised in part
    caught = lambda answers, group: int(np.sum(answers[rows[group]] == "unknown"))  # noqa: E731
    assert caught(labels, "new") > caught(plain_labels, "new")
    assert caught(labels, "scattered") >= caught(plain_labels, "scattered")
    assert caught(labels, "in") <= caught(plain_labels, "in") + len(inside) // 20  # at most 5 % more of them
    kept = labels != "unknown"
    np.testing.assert_array_equal(labels[kept & (plain_labels != "unknown")],
                                  plain_labels[kept & (plain_labels != "unknown")])  # a label is never swapped


def test_the_reading_follows_the_texts_not_their_order(batch) -> None:
    clf, texts, *_ = batch
    scores = clf.predict_with_scores(texts, batch_aware=True)[2]
    order = np.random.default_rng(5).permutation(len(texts))
    again = clf.predict_with_scores([texts[i] for i in order], batch_aware=True)[2]
    np.testing.assert_allclose(again, scores[order], rtol=1e-6)


def test_batch_scores_stay_in_the_scores_units() -> None:
    rng = np.random.default_rng(0)
    vectors = np.zeros((60, 9), dtype=np.float32)
    vectors[:59, :8] = l2_normalize(rng.normal(size=(59, 8)) + 1.5)  # similar to each other
    vectors[59, 8] = 1.0  # like no other text
    scores = rng.normal(size=60) * 3 + 5
    nearest = rng.uniform(0.2, 0.9, size=60)
    read = batch_scores(scores, vectors, nearest, rise=1.0)
    assert read[59] == pytest.approx(scores[59])  # no neighbour: its own score
    assert abs(read.mean() - scores.mean()) < 0.5 * scores.std()  # in the scores' own units
    assert not np.allclose(read, scores)
    np.testing.assert_allclose(batch_scores(scores, vectors, nearest, rise=0.0), np.minimum(scores, read))
    np.testing.assert_allclose(batch_scores(scores, vectors, nearest, rise=0.4),
                               np.minimum(scores, read) + 0.4 * np.maximum(read - scores, 0))
    np.testing.assert_allclose(batch_scores(scores, vectors, nearest, smooth=0.0, novelty=0.0), scores)
    few = BATCH_MIN_TEXTS - 1  # too few texts to read together: unchanged
    np.testing.assert_array_equal(batch_scores(scores[:few], vectors[:few], nearest[:few]), scores[:few])


def test_none_of_these_answers_stay_and_count_as_the_lowest() -> None:
    rng = np.random.default_rng(1)
    vectors = l2_normalize(rng.normal(size=(60, 8))).astype(np.float32)
    scores = rng.normal(size=60)
    scores[[3, 7]] = -np.inf
    read = batch_scores(scores, vectors, rng.uniform(0.2, 0.9, size=60))
    assert np.isneginf(read[[3, 7]]).all() and np.isfinite(np.delete(read, [3, 7])).all()


def test_the_examples_reach_a_group_of_texts_only_through_its_links() -> None:
    rng = np.random.default_rng(8)
    centres = l2_normalize(rng.normal(size=(3, 16)))
    around = lambda c, n: l2_normalize(c + 0.35 * rng.normal(size=(n, 16)) / 4)  # noqa: E731
    examples = np.vstack([around(centres[0], 5), around(centres[1], 5)]).astype(np.float32)
    known = around(centres[0], 25)  # texts of a label with examples
    bridge = l2_normalize(centres[1] + 0.9 * centres[2])  # a new intent's text near label 1's examples
    new = around(centres[2], 25)  # the new intent: texts with no example among them
    alone = l2_normalize(rng.normal(size=16) - 3 * centres.sum(axis=0))  # like nothing else
    vectors = np.vstack([known, [bridge], new, [alone]]).astype(np.float32)
    reach = example_reach(vectors, examples)
    assert reach[:25].min() > reach[26:51].max()  # the group reached through one link gets less of the examples'
    assert reach[51] == reach.min() and reach[51] < -15  # linked to nothing: none of it
    assert reach[25] > np.median(reach[26:51])  # the text that links them sits in between


def test_the_reach_reorders_the_readings_values_and_lowers_them_as_a_whole() -> None:
    rng = np.random.default_rng(9)
    vectors = l2_normalize(rng.normal(size=(80, 8)) + 1.0).astype(np.float32)
    examples = l2_normalize(rng.normal(size=(12, 8)) + 1.0).astype(np.float32)
    scores, nearest = rng.normal(size=80), rng.uniform(0.3, 0.9, size=80)
    scores[5] = -np.inf
    read = batch_scores(scores, vectors, nearest)
    reached = batch_scores(scores, vectors, nearest, examples=examples)
    assert np.isneginf(reached[5]) and not np.allclose(reached, read)
    assert set(reached[np.isfinite(reached)]) <= set(read[np.isfinite(read)])  # the same values: the same units
    again = reordered(read, vectors, examples, lowered=False)
    np.testing.assert_array_equal(np.sort(again), np.sort(read))  # a permutation of the reading's values
    # as many texts below any threshold as where each keeps the lower of the two, in the reordered order
    np.testing.assert_array_equal(np.sort(reached), np.sort(np.minimum(read, again)))
    assert (np.sort(reached) <= np.sort(read)).all()
    finite = np.isfinite(read)
    assert (np.diff(reached[finite][np.argsort(again[finite], kind="stable")]) >= 0).all()  # in the reordered order
    np.testing.assert_array_equal(reordered(read, vectors, examples), reached)
    np.testing.assert_array_equal(batch_scores(scores, vectors, nearest, examples=examples[:0]), read)
    with pytest.raises(FewShotError, match="examples must be vectors as wide"):
        batch_scores(scores, vectors, nearest, examples=examples[:, :4])


def test_batch_neighbours_leave_out_the_text_and_its_copies() -> None:
    vectors = l2_normalize(np.array([[1.0, 0.0], [1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])).astype(np.float32)
    sims, rows = batch_neighbours(vectors, 2)
    assert rows[0].tolist() == [2, 3] and rows[1].tolist() == [2, 3]  # rows 0 and 1 are one text twice
    assert sims[0, 0] == pytest.approx(0.8) and np.all(np.diff(sims, axis=1) <= 1e-6)
    assert all(i not in row for i, row in enumerate(rows))
    sims, rows = batch_neighbours(vectors[:2], 2)  # nothing but copies: no neighbour at all
    assert (rows == -1).all() and np.isnan(sims).all()


def test_a_question_asked_many_times_over_is_not_a_new_intent(batch) -> None:
    clf, texts, inside, *_ = batch
    asked = inside[0]  # one in-scope question, sent 30 times: copies, not a group of its own
    labels, _, scores = clf.predict_with_scores(texts + [asked] * 30, batch_aware=True)
    plain = clf.predict_with_scores(texts + [asked] * 30)[2]
    assert labels[-1] != "unknown" and scores[-1] >= plain[-1] - 1e-6  # not lowered as a group of its own


@pytest.mark.parametrize("bad, match", [({"smooth": 1.5}, "smooth"), ({"novelty": -0.1}, "novelty"),
                                        ({"rise": 2}, "rise"), ({"k": 0}, "k must"), ({"k": 2.5}, "k must"),
                                        ({"reach": 1.0}, "reach must"), ({"near": 0.95}, "near must")])
def test_bad_reading_options_name_the_value(bad: dict, match: str) -> None:
    vectors = l2_normalize(np.random.default_rng(2).normal(size=(20, 4))).astype(np.float32)
    with pytest.raises(FewShotError, match=match):
        batch_scores(np.zeros(20), vectors, np.zeros(20), **bad)
    with pytest.raises(FewShotError, match="one vector"):
        batch_scores(np.zeros(20), vectors[:10], np.zeros(20))


def test_batch_aware_is_refused_clearly_for_multi_label() -> None:
    encoder, support, in_scope, _ = clusters(seed=6, n_labels=3)
    clf = FewShotClassifier(encoder=encoder, label_names=False, multi_label=True)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    with pytest.raises(FewShotError, match="batch_aware is not available with multi_label"):
        clf.predict_with_scores([t for t, _ in in_scope[:12]], batch_aware=True)


def test_groups_of_a_batch_read_together_show_the_repeated_unknown_intent(batch) -> None:
    from fewshot import uncovered_groups

    clf, texts, _, new, _ = batch
    alone = [{texts[i] for i in g} for g in uncovered_groups(clf, texts)]
    together = [{texts[i] for i in g} for g in uncovered_groups(clf, texts, batch_aware=True)]
    most = lambda groups: max((len(g & set(new)) for g in groups), default=0)  # noqa: E731
    assert most(alone) < len(new) // 2  # one text at a time, few of the intent's texts are among the least in scope
    assert most(together) == len(new)  # read together, the whole intent is one group


def test_a_large_batch_is_searched_as_a_large_support_set_is(monkeypatch) -> None:
    from fewshot import support

    rng = np.random.default_rng(4)
    centres = rng.normal(size=(20, 16))
    vectors = l2_normalize(centres[rng.integers(0, 20, 600)] + 0.4 * rng.normal(size=(600, 16))).astype(np.float32)
    exact = batch_neighbours(vectors, 5)[1]
    monkeypatch.setattr(support, "APPROX_ABOVE", 100)  # as a batch above 50,000 texts would be
    searched, search = [], support.SupportIndex.search

    def spy(index, queries, k):
        searched.append(index.approximate)
        return search(index, queries, k)

    monkeypatch.setattr(support.SupportIndex, "search", spy)
    approx = batch_neighbours(vectors, 5)[1]
    assert searched == [True] and np.mean(approx == exact) > 0.9


def test_a_text_barely_like_its_neighbours_is_pulled_towards_them_less() -> None:
    rng = np.random.default_rng(7)
    centre = l2_normalize(rng.normal(size=16))
    crowd = l2_normalize(centre + 0.5 * l2_normalize(rng.normal(size=(59, 16))))  # confident in-scope texts
    noise = rng.normal(size=16)
    away = l2_normalize(noise - (noise @ centre) * centre)  # orthogonal to the centre
    loner = l2_normalize(0.55 * centre + 0.835 * away)  # like them only a little (another domain's text)
    vectors = np.vstack([crowd, loner]).astype(np.float32)
    sims, rows = batch_neighbours(vectors, 10)
    closeness = np.nanmean(sims, axis=1)
    assert (rows[59] >= 0).any() and closeness[59] < np.median(closeness[:59]) - 0.1  # the setting
    scores = np.r_[rng.normal(5.0, 0.3, size=59), 0.0]
    nearest = np.r_[np.full(59, 0.8), 0.45]
    scaled = batch_scores(scores, vectors, nearest, rise=1.0)
    flat = batch_scores(scores, vectors, nearest, rise=1.0, scaled=False)
    assert scaled[59] < flat[59] - 0.5  # its confident neighbours lift it much less
    np.testing.assert_allclose(batch_scores(scores, vectors, nearest, rise=1.0, smooth=0.0),
                               batch_scores(scores, vectors, nearest, rise=1.0, smooth=0.0, scaled=False))


def test_evaluate_oos_reads_the_texts_together_when_asked(batch) -> None:
    """``evaluate_oos`` (``fewshot evaluate --oos``): its threshold-free measures agree with the scores, and
    ``batch_aware`` reads the in-scope and out-of-scope texts as one batch, as a file would be read."""
    from fewshot.metrics import NO_UNKNOWN, evaluate_oos, fpr_at_95, recall_at_cost

    clf, _, inside, new, _ = batch
    gold = [str(g) for g in clf.predict(inside, **NO_UNKNOWN)]  # the clusters' texts: their own label's
    alone = evaluate_oos(clf, inside, gold, new)
    together = evaluate_oos(clf, inside, gold, new, batch_aware=True)
    assert not alone["batch_aware"] and together["batch_aware"] and together["cost"] == 0.02
    assert together["oos_auroc"] > alone["oos_auroc"] + 0.05
    assert together["oos_recall_at_cost"] >= alone["oos_recall_at_cost"]
    assert together["oos_fpr_at_95"] <= alone["oos_fpr_at_95"]
    scores = clf.predict_with_scores(inside + new, batch_aware=True)[2]
    n = len(inside)
    right = np.ones(n, dtype=bool)
    assert together["oos_recall_at_cost"] == recall_at_cost(right, scores[:n], scores[n:])
    assert together["oos_fpr_at_95"] == fpr_at_95(scores[:n], scores[n:])
    assert together["oos_auroc"] == pytest.approx(auroc(scores[:n], scores[n:]))
    few = evaluate_oos(clf, inside[:20], gold[:20], new[:10], batch_aware=True)
    assert not few["batch_aware"]  # under BATCH_MIN_TEXTS texts: each read on its own
    assert few["oos_auroc"] == evaluate_oos(clf, inside[:20], gold[:20], new[:10])["oos_auroc"]


def test_evaluate_and_evaluate_oos_take_a_reading_already_made(batch) -> None:
    """A reading computed once (``reading=``) gives what each function's own reading gives, without encoding
    again; a reading of the wrong length is refused by name."""
    from fewshot.metrics import NO_UNKNOWN, evaluate, evaluate_oos

    clf, _, inside, new, _ = batch
    gold = [str(g) for g in clf.predict(inside, **NO_UNKNOWN)]
    _, probs, scores = clf.predict_with_scores(inside + new, batch_aware=True, **NO_UNKNOWN)
    n = len(inside)
    given = evaluate_oos(clf, inside, gold, new, batch_aware=True, reading=(probs, scores))
    assert given == evaluate_oos(clf, inside, gold, new, batch_aware=True)
    ruled = evaluate(clf, inside, gold, reading=(probs[:n], scores[:n]))
    own = [str(p) for p in clf.predict(inside + new, batch_aware=True)][:n]  # the rule on the batch read together
    assert ruled["predictions"] == own
    assert ruled["in_scope_accuracy"] == sum(p == g for p, g in zip(own, gold)) / n
    assert "unknown" in ruled["predictions"]  # the reading together rejected some: the rule was applied
    with pytest.raises(FewShotError, match="reading holds 3 probability rows and 3 scores for"):
        evaluate(clf, inside, gold, reading=(probs[:3], scores[:3]))


def test_the_similarity_floor_follows_the_encoders_scale() -> None:
    """"Alike" is the cosine that a tenth of the pairs of varied sentences exceed: counted by hand here, read from
    the encoder where it says (the classifier passes it to the reading), BATCH_NEAR for one that does not."""
    angles = np.linspace(0.0, np.pi / 2, 11)  # 11 unit vectors in a plane: 55 pairs, cosines cos(k * 9 degrees)
    plane = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    cosines = np.sort([np.cos(abs(a - b)) for i, a in enumerate(angles) for b in angles[i + 1:]])
    assert calibrated_floor(plane) == pytest.approx(np.quantile(cosines, 0.9))
    assert calibrated_floor(plane, share=0.5) == pytest.approx(np.median(cosines))
    with pytest.raises(FewShotError, match="2 vectors or more"):
        calibrated_floor(plane[:1])
    texts = reference_texts()
    assert len(texts) >= 50 and len(set(texts)) > 0.9 * len(texts) and all(t.strip() for t in texts)

    encoder, support, in_scope, scattered = clusters(seed=4)
    assert similarity_floor(encoder) == BATCH_NEAR  # an encoder object without a floor of its own
    encoder.similarity_floor = lambda: 0.2
    assert similarity_floor(encoder) == 0.2
    clf = FewShotClassifier(encoder=encoder, label_names=False, auto_unknown=True)
    clf.fit([t for t, _ in support], [lab for _, lab in support])
    texts = [t for t, _ in in_scope[:100]] + scattered[:30]
    together = clf.predict_with_scores(texts, batch_aware=True)[2]
    vectors, plain = encoder.encode(texts), clf.predict_with_scores(texts)[2]
    nearest = clf.support.nearest(vectors, 1)[0][:, 0]
    np.testing.assert_allclose(together, batch_scores(plain, vectors, nearest, examples=clf.support.vectors,
                                                      near=0.2), rtol=1e-6)
    assert not np.allclose(together, batch_scores(plain, vectors, nearest, examples=clf.support.vectors))
    found_low = (batch_neighbours(vectors, 10, least=0.2)[1] >= 0).sum()
    assert found_low > (batch_neighbours(vectors, 10)[1] >= 0).sum()  # a lower floor: more texts count as alike


def test_the_encoders_floor_is_the_tuned_one_for_minilm_with_layer_4_and_calibrated_otherwise() -> None:
    from fewshot.encoders.encoder import Encoder

    assert Encoder("minilm").similarity_floor() == BATCH_NEAR  # the encoder the reading was tuned on
    bare = Encoder("minilm", extra_layers=[])  # the sentence embedding alone: another scale
    floor = bare.similarity_floor()
    assert floor == pytest.approx(calibrated_floor(bare.encode(reference_texts()))) and 0.0 < floor < BATCH_NEAR - 0.1
