"""int8 inference after fine-tuning: the adapted weights quantised, close to the float adapted classifier, and a
text's output independent of what else is in its batch (as on the frozen int8 path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewshot import FewShotClassifier
from fewshot.adapt import FinetuneConfig
from helpers import QUERIES, SUPPORT
from test_finetune_classifier import QUICK, task, tiny  # noqa: F401  (fixtures)


def alone_and_batched(clf: FewShotClassifier, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's vectors of each text on its own, and of all of them at once (the text cache emptied before
    each, so every call runs the model)."""
    clf.encoder._cache.clear()
    alone = np.vstack([clf.encoder.encode([t]) for t in texts])
    clf.encoder._cache.clear()
    return alone, clf.encoder.encode(texts)


def test_int8_load_of_a_finetuned_classifier(tiny: str, task: dict, tmp_path: Path) -> None:  # noqa: F811
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    assert clf.finetune(QUICK).kept
    float_probs = clf.predict_proba(task["query"])
    quick = FewShotClassifier.load(clf.save(tmp_path / "adapted"), int8=True)
    assert quick.encoder.int8 and quick.encoder._int8 is not None and quick.finetuned_ is not None
    instant8 = FewShotClassifier(tiny, int8=True).fit(task["texts"], task["labels"])
    probs = quick.predict_proba(task["query"])
    assert not np.allclose(probs, instant8.predict_proba(task["query"]))  # the adapted layers are quantised, used
    agree = np.mean(probs.argmax(axis=1) == float_probs.argmax(axis=1))
    assert agree >= 0.9, agree
    np.testing.assert_allclose(probs, float_probs, atol=0.1)
    alone, batched = alone_and_batched(quick, task["query"])
    np.testing.assert_array_equal(alone, batched)  # per-row int8 scales: batch mates change no bit
    float_vectors = clf.encoder.encode(task["query"])
    assert float((alone * float_vectors).sum(axis=1).min()) > 0.95  # the int8 copy of the adapted model is close


@pytest.mark.slow
def test_int8_after_finetuning_minilm_predicts_like_float(tmp_path: Path) -> None:
    texts = [t for values in SUPPORT.values() for t in values]
    labels = [lab for lab, values in SUPPORT.items() for _ in values]
    queries = [q for q, _ in QUERIES]
    clf = FewShotClassifier("minilm").fit(texts, labels)
    assert clf.finetune(FinetuneConfig(steps=3, folds=0, time_budget=None)).kept
    quick = FewShotClassifier.load(clf.save(tmp_path / "adapted"), int8=True)
    assert quick.encoder.int8 and quick.finetuned_ is not None
    np.testing.assert_array_equal(quick.predict(queries), clf.predict(queries))
    np.testing.assert_allclose(quick.predict_proba(queries), clf.predict_proba(queries), atol=0.05)
    alone, batched = alone_and_batched(quick, queries)
    np.testing.assert_array_equal(alone, batched)
    cos = (alone * clf.encoder.encode(queries)).sum(axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.95, cos
