"""The multi-label benchmark's task builders (``bench/multilabel.py``): narrow label groups stay within their
group, keep half single- and half two-intent evaluation texts, and leave the whole-dataset draws as they were."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench_multilabel():
    sys.path.insert(0, str(BENCH))  # the script imports its sibling ``common``
    try:
        spec = importlib.util.spec_from_file_location("bench_multilabel", BENCH / "multilabel.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def _fake_hwu64(folder: Path) -> list[str]:
    """An hwu64-shaped folder: scenario ``alarm`` with 4 intents, ``news`` with 2; 12 rows per intent."""
    labels = ["alarm_query", "alarm_set", "alarm_remove", "alarm_snooze", "news_query", "news_read"]
    rows = [(f"text {i} about {lab.replace('_', ' ')}", lab) for lab in labels for i in range(12)]
    (folder / "hwu64").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        pd.DataFrame(rows, columns=["text", "label"]).to_csv(folder / "hwu64" / f"{split}.csv", index=False)
    return labels


def test_groups_stay_within_their_labels_and_balance_the_evaluation(tmp_path) -> None:
    ml = _bench_multilabel()
    _fake_hwu64(tmp_path)
    groups = ml.label_groups(tmp_path, "hwu64")
    assert groups == {"alarm": ("alarm_query", "alarm_remove", "alarm_set", "alarm_snooze")}
    intents = groups["alarm"]
    texts, label_sets = ml.support_draw(tmp_path, "hwu64", 0, 5, 10, 0, intents, 0)
    assert len(texts) == 4 * 5 + 10
    assert {lab for labs in label_sets for lab in labs} == set(intents)
    assert sum(len(labs) == 2 for labs in label_sets) == 10
    texts, label_sets = ml.eval_set(tmp_path, "hwu64", "test", 500, 500, 0, intents, 0)
    singles = sum(len(labs) == 1 for labs in label_sets)
    assert singles == 4 * 12 and len(texts) == 2 * singles  # as many two-intent texts as single ones
    assert all(set(labs) <= set(intents) and len(set(labs)) == len(labs) for labs in label_sets)


def test_whole_dataset_draws_keep_their_random_stream(tmp_path) -> None:
    ml = _bench_multilabel()
    _fake_hwu64(tmp_path)
    got = ml.eval_set(tmp_path, "hwu64", "valid", 20, 7, 3)
    texts, labels = ml.read_split(tmp_path, "hwu64", "valid")
    rng = np.random.default_rng([3, ml.DATASETS.index("hwu64"), 2])  # the stream before groups existed
    pick = rng.choice(len(texts), size=20, replace=False)
    pairs = ml.join_two(rng, texts, labels, 7)
    assert got == ([texts[i] for i in pick] + pairs[0], [[labels[i]] for i in pick] + pairs[1])
