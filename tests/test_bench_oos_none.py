"""The in-domain unknown benchmarks (``bench/oos_none.py``, ``bench/oos_discover.py``, ``bench/oos_batch_score.py``,
``bench/oos_indomain.py``, ``bench/heldout_split.py``): the same-cost threshold keeps the accuracy it is given; the simulated user marks the groups
that are mostly out of scope; the batch readings are the product's; another corpus's intents are read as known
unknowns; a held-out split keeps its known labels apart from the held-out ones."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench(name: str):
    sys.path.insert(0, str(BENCH))  # the script imports its siblings ``common`` and ``oos_indomain``
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_same_cost_threshold_keeps_the_given_accuracy() -> None:
    none = _bench("oos_none")
    # 10 in-scope queries, 8 right (scores 1..8), 2 wrong; accuracy 60 % keeps the 6 highest right ones
    raw = {"in_scope": np.array([1, 2, 3, 4, 5, 6, 7, 8, 0.5, 9.0]),
           "right": np.array([True] * 8 + [False, False]),
           "unseen": np.array([0.0, 2.5, 3.5, 10.0])}
    out = none.same_cost(raw, 60.0, ("unseen",))
    # threshold 3: rejects right scores 1 and 2 (80 % -> 60 %); unseen below 3: 0.0 and 2.5
    assert out == {"unseen@same_cost": 0.5}
    assert none.same_cost(raw, 80.0, ("unseen",)) == {"unseen@same_cost": 0.0}  # nothing to give up
    assert none.same_cost(raw, 0.0, ("unseen",)) == {"unseen@same_cost": 1.0}  # reject every right answer


def test_discovery_marks_the_groups_mostly_out_of_scope_and_splits_in_halves() -> None:
    import pandas as pd

    discover = _bench("oos_discover")
    batch = pd.DataFrame({"text": list("abcdefgh"), "kind": ["in", "in_domain", "in_domain", "in", "in", "other",
                                                               "other", "in"]})
    groups = [[1, 2, 0], [3, 4, 5], [6, 7, 3, 1]]  # 2 of 3 out of scope; 1 of 3; 2 of 4 (a tie is not most)
    none, n = discover.marked(batch, groups, None)
    assert n == 1 and none.text.tolist() == ["b", "c", "a"]  # its in-scope text is carried along
    none, n = discover.marked(batch, groups, 2)
    assert n == 1 and none.text.tolist() == ["b", "c"]  # the 2 most typical
    frames = {"query": pd.DataFrame({"text": [f"q{i}" for i in range(8)], "label": list("aabbccdd")}),
              "other": pd.DataFrame({"text": [f"o{i}" for i in range(50)], "label": ["oos"] * 50})}
    first, second = discover.halves(frames, ["a", "b"], ["c"], 10, np.random.default_rng(0))
    both = pd.concat([first, second])
    assert len(both) == 16 and abs(len(first) - len(second)) <= 1 and not set(first.text) & set(second.text)
    assert both.groupby("kind").size().to_dict() == {"in": 4, "in_domain": 2, "other": 10}  # d: not in the episode


def test_batch_score_readings_are_the_product_s_with_one_term_off() -> None:
    from fewshot.rules import l2_normalize
    from fewshot.batch_reading import BATCH_RISE, batch_scores

    bench = _bench("oos_batch_score")
    rng = np.random.default_rng(3)
    vectors = l2_normalize(rng.normal(size=(80, 6)) + 1.0).astype(np.float32)
    score, nearest = rng.normal(size=80), rng.uniform(0.3, 0.9, size=80)
    read = bench.batch_readings(score, vectors, nearest, [10], 0.7)
    tags = ("", " lower-only", f" rise {BATCH_RISE:g}")
    assert set(read) == {"logit"} | {f"{n} k10{t}" for n in ("smooth", "novelty", "both") for t in tags}
    np.testing.assert_array_equal(read["logit"], score)
    np.testing.assert_allclose(read[f"both k10 rise {BATCH_RISE:g}"],  # the product's reading
                               batch_scores(score, vectors, nearest, k=10, smooth=0.7, novelty=0.7))
    np.testing.assert_allclose(read["smooth k10"], batch_scores(score, vectors, nearest, k=10, smooth=0.7, novelty=0.0,
                                                                rise=1.0))
    assert all(np.all(read[f"{n} k10 lower-only"] <= score) for n in ("smooth", "novelty", "both"))


def test_background_intents_drop_a_known_label_under_another_name_and_lower_what_is_nearer_them() -> None:
    from fewshot.rules import l2_normalize

    bench = _bench("oos_indomain")
    bench.LIB.update(bench._library())
    rng = np.random.default_rng(5)
    centres = l2_normalize(rng.normal(size=(4, 24)))  # 0, 1: known labels; 2: a known label's twin; 3: a new intent
    centres[2] = l2_normalize(centres[0] + 0.05 * rng.normal(size=24))
    draw = lambda c, n: l2_normalize(centres[c] + 0.2 * rng.normal(size=(n, 24)))  # noqa: E731
    x, y = np.vstack([draw(0, 5), draw(1, 5)]), np.repeat([0, 1], 5)
    names = np.vstack([centres[0], centres[1]])
    background = (np.vstack([draw(2, 20), draw(3, 20)]), np.repeat([0, 1], 20))
    fitted = bench.Fitted(x, y, names, background=background)
    assert len(fitted.background) == 1  # the twin of label 0 is dropped, the new intent kept
    f = fitted.features(np.vstack([draw(0, 3), draw(3, 3)]))
    assert np.allclose(f["logit-0.5bg"][:3], f["logit"][:3])  # known texts: nearer their label than the new intent
    assert np.all(f["logit-1bg"][3:] < f["logit-0.5bg"][3:]) and np.all(f["logit-0.5bg"][3:] < f["logit"][3:])


def test_heldout_split_keeps_the_known_labels_apart() -> None:
    import pandas as pd

    heldout = _bench("heldout_split")
    labels = [f"intent{i}" for i in range(8)]
    train = pd.DataFrame({"text": [f"{lab} train {j}" for lab in labels for j in range(6)],
                          "label": [lab for lab in labels for _ in range(6)]})
    test = pd.DataFrame({"text": [f"{lab} test {j}" for lab in labels + ["only_in_test"] for j in range(3)],
                         "label": [lab for lab in labels + ["only_in_test"] for _ in range(3)]})
    support, inside, oos = heldout.split(train, test, known=5, shots=4, seed=1)
    known = set(support.label)
    assert len(known) == 5 and (support.groupby("label").size() == 4).all()
    assert set(inside.label) == known and len(inside) == 15
    assert set(oos.label) == set(labels) - known and len(oos) == 9  # a label missing from train is no one's
    assert heldout.split(train, test, known=5, shots=4, seed=1)[0].equals(support)  # the seed fixes the draw
    every, inside_all, oos_all = heldout.split(train, test, known=5, shots=None, seed=1)  # --shots all
    assert set(every.label) == known and len(every) == 30  # the same labels, every train row of each
    assert inside_all.equals(inside) and oos_all.equals(oos)
    assert heldout._shots("all") is None and heldout._shots("7") == 7
    for bad in ("0", "-3", "five"):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            heldout._shots(bad)
