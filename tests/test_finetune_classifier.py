"""FewShotClassifier.finetune: the adapted encoder in the classifier, undo, cancellation, save/load, CLI.

Most tests run on a tiny randomly initialised BERT sentence-transformer saved as a model folder (offline, a few
seconds); the real-MiniLM round trip (also the upload path, ``allow_model_paths=False``) is marked slow.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot import FewShotClassifier
from fewshot.adapt import FinetuneConfig
from fewshot.cli import main
from fewshot.errors import FewShotError
from helpers import QUERIES, SUPPORT
from test_adapt import synthetic, tiny_model

FAST = FinetuneConfig(layers=2, steps=40, folds=3, eval_every=10, patience=4, lr=3e-3, time_budget=None)
"""Settings under which the tiny model gains on the synthetic task (the default lr is for MiniLM)."""
QUICK = FinetuneConfig(layers=2, steps=3, folds=0, lr=3e-3, time_budget=None)
"""No estimate, 3 steps: always kept, for tests of what happens around a kept adaptation."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny sentence-transformer model folder (usable as ``model=``)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny_st")
    tiny_model(tmp_path_factory.mktemp("tiny_bert")).save(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def task() -> dict[str, list[str]]:
    support, query = synthetic(6, seed=2), synthetic(25, seed=3)
    return {"texts": support[0], "labels": support[1], "query": query[0], "gold": query[1]}


def accuracy(clf: FewShotClassifier, task: dict[str, list[str]]) -> float:
    return float(np.mean(clf.predict(task["query"]) == np.asarray(task["gold"], dtype=object)))


def base_state(clf: FewShotClassifier) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in clf.encoder._model.state_dict().items()}


def test_finetune_improves_a_synthetic_task_and_leaves_the_shared_model_alone(tiny: str, task: dict) -> None:
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    other = FewShotClassifier(tiny).fit(task["texts"], task["labels"])  # shares the loaded model
    shared, before_state = clf.encoder, base_state(clf)
    before_vectors, before = clf.support.vectors.copy(), accuracy(clf, task)
    hint = clf.overlap_hint()
    assert hint.confusable and "fine-tuning may help" in hint.message
    steps: list[tuple[int, int]] = []
    report = clf.finetune(FAST, progress=lambda done, total: steps.append((done, total)))
    assert report.kept and report.steps > 0 and not report.cancelled
    assert report.estimate_after > report.estimate_before
    assert clf.finetuned_ is report and steps[-1][0] == steps[-1][1]
    assert clf.encoder is not shared and clf.encoder.describe()["finetune"]
    assert not np.allclose(clf.support.vectors, before_vectors)
    assert accuracy(clf, task) >= before + 0.1, (before, accuracy(clf, task))
    after = {k: v for k, v in shared._model.state_dict().items()}
    assert all(torch.equal(after[k], v) for k, v in before_state.items())  # the shared model is unchanged
    assert other.encoder._model is shared._model and np.array_equal(other.support.vectors, before_vectors)
    # only the trained layers are new tensors; the rest is shared with the instant model
    trained = {id(p) for p in clf.encoder._model.parameters()} - {id(p) for p in shared._model.parameters()}
    assert 0 < len(trained) < len(list(shared._model.parameters()))


def test_cancel_leaves_the_instant_classifier_intact(tiny: str, task: dict) -> None:
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    encoder, probs = clf.encoder, clf.predict_proba(task["query"])
    event = threading.Event()
    event.set()
    report = clf.finetune(FAST, cancel=event)
    assert report.cancelled and not report.kept and "unchanged" in report.message
    calls = iter(range(10**6))
    report = clf.finetune(FAST, cancel=lambda: next(calls) >= 5)  # stops during training
    assert report.cancelled and not report.kept
    assert clf.finetuned_ is None and clf.encoder is encoder
    assert np.array_equal(clf.predict_proba(task["query"]), probs)
    with pytest.raises(FewShotError, match="cancel must be"):
        clf.finetune(FAST, cancel="stop")  # type: ignore[arg-type]


def test_no_gain_keeps_the_instant_classifier(tiny: str, task: dict) -> None:
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    probs = clf.predict_proba(task["query"])
    report = clf.finetune(FinetuneConfig(steps=10, folds=3, eval_every=10, min_gain=1.0, time_budget=None))
    assert not report.kept and not report.cancelled and "kept" in report.message
    assert report.message == f"{report.reason}: the instant classifier is kept"
    assert clf.finetuned_ is None and np.array_equal(clf.predict_proba(task["query"]), probs)


def test_a_second_run_without_gain_keeps_the_earlier_fine_tuning_and_says_so(tiny: str, task: dict) -> None:
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    first = clf.finetune(FAST)
    assert first.kept
    probs = clf.predict_proba(task["query"])
    second = clf.finetune(FinetuneConfig(steps=10, folds=3, eval_every=10, min_gain=1.0, time_budget=None))
    assert not second.kept and second.reason.startswith("no gain expected")
    assert second.message == f"{second.reason}: the classifier keeps its earlier fine-tuning"
    assert clf.finetuned_ is first and np.allclose(clf.predict_proba(task["query"]), probs)
    stop = threading.Event()
    stop.set()
    cancelled = clf.finetune(FAST, cancel=stop)
    assert cancelled.cancelled and cancelled.message == "cancelled: the classifier keeps its earlier fine-tuning"
    assert clf.finetuned_ is first


def test_undo_and_editing_examples_after_finetune(tiny: str, task: dict) -> None:
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    instant, probs = clf.encoder, clf.predict_proba(task["query"])
    assert clf.finetune(QUICK).kept
    adapted = clf.encoder
    clf.add_examples("apple", ["apple w1 w2 w3"])  # keeps the adapted encoder
    assert clf.encoder is adapted and clf.finetuned_ is not None
    assert np.array_equal(clf.support.vectors[-1], adapted.encode(["apple w1 w2 w3"])[0])
    clf.remove_example("apple w1 w2 w3")
    assert clf.undo_finetune() is clf
    assert clf.finetuned_ is None and clf.encoder is instant
    assert np.array_equal(clf.predict_proba(task["query"]), probs)
    assert clf.undo_finetune() is clf  # nothing to undo: no-op


def test_save_load_round_trip_gives_the_same_predictions(tiny: str, task: dict, tmp_path: Path) -> None:
    clf = FewShotClassifier(tiny, label_names=True, auto_unknown=True).fit(task["texts"], task["labels"])
    assert clf.finetune(QUICK).kept
    labels, probs, scores = clf.predict_with_scores(task["query"])
    folder = clf.save(tmp_path / "clf")
    assert (folder / "finetune.safetensors").is_file()
    meta = json.loads((folder / "config.json").read_text())
    assert meta["finetune"]["report"]["kept"] and meta["encoder"]["finetune"] == meta["finetune"]["sha256"]
    from safetensors.torch import load_file

    weights = load_file(str(folder / "finetune.safetensors"))
    assert all(k.startswith("encoder.layer.") and v.dtype == torch.float16 for k, v in weights.items())
    loaded = FewShotClassifier.load(folder)
    assert loaded.finetuned_ is not None and loaded.finetuned_.steps == clf.finetuned_.steps
    got = loaded.predict_with_scores(task["query"])
    assert np.array_equal(got[0], labels) and np.array_equal(got[1], probs) and np.array_equal(got[2], scores)
    assert np.array_equal(loaded.support.vectors, clf.support.vectors)
    loaded.undo_finetune()  # the loaded classifier also goes back to instant
    instant = FewShotClassifier(tiny, label_names=True, auto_unknown=True).fit(task["texts"], task["labels"])
    assert np.array_equal(loaded.predict_proba(task["query"]), instant.predict_proba(task["query"]))


def test_damaged_weights_load_as_instant_with_a_warning(tiny: str, task: dict, tmp_path: Path) -> None:
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    instant = clf.predict_proba(task["query"])
    assert clf.finetune(QUICK).kept
    folder = clf.save(tmp_path / "clf")
    (folder / "finetune.safetensors").write_bytes(b"not a safetensors file")
    with pytest.warns(Warning, match="instant encoder"):
        loaded = FewShotClassifier.load(folder)
    assert loaded.finetuned_ is None
    assert np.array_equal(loaded.predict_proba(task["query"]), instant)  # re-encoded, not the adapted vectors


def test_adapted_layers_of_other_weights_are_not_applied(tiny: str, task: dict, tmp_path: Path) -> None:
    """Fine-tuned over other weights (e.g. an earlier release's "default"): re-encoding on purpose loads the
    instant encoder, never the old adapted layers over the new weights."""
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    instant = clf.predict_proba(task["query"])
    assert clf.finetune(QUICK).kept
    folder = clf.save(tmp_path / "clf")
    path = folder / "config.json"
    meta = json.loads(path.read_text())
    meta["encoder"].update(trained="/an/earlier/models/default", weights="0123456789abcdef")
    path.write_text(json.dumps(meta))
    with pytest.raises(FewShotError, match="saved with the encoder"):
        FewShotClassifier.load(folder)
    with pytest.warns(Warning, match="fine-tuned on other encoder weights"):
        loaded = FewShotClassifier.load(folder, reencode=True)
    assert loaded.finetuned_ is None
    assert np.array_equal(loaded.predict_proba(task["query"]), instant)


def test_old_saves_still_load(tiny: str, task: dict, tmp_path: Path) -> None:
    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    folder = clf.save(tmp_path / "old")
    assert not (folder / "finetune.safetensors").exists()
    assert "finetune" not in json.loads((folder / "config.json").read_text())
    loaded = FewShotClassifier.load(folder)
    assert loaded.finetuned_ is None
    assert np.array_equal(loaded.predict_proba(task["query"]), clf.predict_proba(task["query"]))


def test_int8_after_finetune(tiny: str, task: dict, tmp_path: Path) -> None:
    clf = FewShotClassifier(tiny, int8=True).fit(task["texts"], task["labels"])
    instant = clf.predict_proba(task["query"])
    assert clf.finetune(QUICK).kept
    assert clf.encoder.int8 and clf.encoder._int8 is not None
    probs = clf.predict_proba(task["query"])
    assert not np.array_equal(probs, instant)
    loaded = FewShotClassifier.load(clf.save(tmp_path / "int8"))
    assert loaded.encoder.int8 and np.array_equal(loaded.predict_proba(task["query"]), probs)


def test_cli_finetune(tiny: str, task: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    import fewshot.adapt
    import fewshot.finetuned  # noqa: F401  (imported before the patch below: it checks the real class)

    monkeypatch.setenv("FEWSHOT_NO_PROGRESS", "1")
    support = tmp_path / "support.csv"
    pd.DataFrame({"text": task["texts"], "label": task["labels"]}).to_csv(support, index=False)
    test = tmp_path / "test.csv"
    pd.DataFrame({"text": task["query"], "label": task["gold"]}).to_csv(test, index=False)
    # the tiny random model needs a larger learning rate than MiniLM's default to gain in a few steps
    monkeypatch.setattr(fewshot.adapt, "FinetuneConfig", functools.partial(FinetuneConfig, lr=3e-3, patience=4))
    assert main(["fit", "--support", str(support), "--model", tiny, "--out", str(tmp_path / "clf"),
                 "--finetune", "--finetune-steps", "40", "--finetune-seconds", "120"]) == 0
    err = capsys.readouterr().err
    assert "fine-tuning (at most 120 s)" in err and "estimated accuracy" in err and "->" in err
    assert (tmp_path / "clf" / "finetune.safetensors").is_file()
    out = tmp_path / "out.csv"
    assert main(["classify", "--classifier", str(tmp_path / "clf"), "--input", str(test), "--output", str(out)]) == 0
    loaded = FewShotClassifier.load(tmp_path / "clf")
    assert pd.read_csv(out)["predicted_label"].tolist() == loaded.predict(task["query"]).tolist()
    assert main(["evaluate", "--support", str(support), "--model", tiny, "--test", str(test), "--json",
                 "--finetune", "--finetune-steps", "40"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["finetune"]["kept"] and result["accuracy"] > 0.5


def test_cli_rejects_bad_finetune_options(tmp_path: Path) -> None:
    for bad in (["--finetune-steps", "0"], ["--finetune-seconds", "-1"], ["--finetune-seconds", "x"]):
        with pytest.raises(SystemExit):
            main(["fit", "--support", str(tmp_path / "s.csv"), "--out", str(tmp_path / "o"), "--finetune", *bad])


@pytest.mark.slow
def test_minilm_round_trip_and_upload_path(tmp_path: Path) -> None:
    """The real encoder: a short adaptation, the saved size, and ``load(allow_model_paths=False)`` (uploads)."""
    texts = [t for ts in SUPPORT.values() for t in ts]
    labels = [lab for lab, ts in SUPPORT.items() for _ in ts]
    queries = [q for q, _ in QUERIES]
    clf = FewShotClassifier("minilm").fit(texts, labels)
    assert clf.finetune(FinetuneConfig(steps=2, folds=0, time_budget=None)).kept
    probs = clf.predict_proba(queries)
    folder = clf.save(tmp_path / "clf")
    size = (folder / "finetune.safetensors").stat().st_size
    assert 14_100_000 < size < 14_300_000, size  # 4 MiniLM layers (a small label set) in float16
    loaded = FewShotClassifier.load(folder, allow_model_paths=False)
    assert loaded.finetuned_ is not None and np.array_equal(loaded.predict_proba(queries), probs)


def test_multi_label_classifier_is_refused(tiny: str) -> None:
    with pytest.raises(FewShotError, match="single-label"):
        FewShotClassifier(tiny, multi_label=True).finetune(QUICK)


def test_auto_threshold_after_finetune_comes_from_the_fold_encoders(tiny: str, task: dict, tmp_path: Path) -> None:
    from fewshot import unknown
    from fewshot.finetuned import fold_cross_validated_scores

    clf = FewShotClassifier(tiny, label_names=True, auto_unknown=True).fit(task["texts"], task["labels"])
    instant_threshold = clf.auto_threshold_
    assert clf.finetune(FAST).kept
    folds = clf._finetune.folds
    n = len(clf.support.texts)
    assert folds is not None and len(folds.vectors) == FAST.folds and folds.names
    assert all(v.shape == (n + len(clf.classes_), clf.encoder.dim) for v in folds.vectors)
    # the naive threshold: 5-fold cross-validation on the adapted vectors (an encoder that saw every example)
    naive_scores, naive_right = unknown.cross_validated_scores(clf.support.vectors, clf._label_idx,
                                                               len(clf.classes_), clf._fit_head)
    naive = unknown.auto_threshold(naive_scores, naive_right, clf.config)
    # a direct recomputation from the recorded folds: fold f's vectors, its held-out rows scored
    scores, right = [], []
    for f, vectors in enumerate(folds.vectors):
        vectors = vectors.astype(np.float32)  # kept as float16, as saved
        test = folds.fold_ids[:n] == f
        head = clf._fit_head(vectors[:n][~test], clf._label_idx[~test], names=vectors[n:])
        scores.append(unknown.head_scores(head, vectors[:n][test], len(clf.classes_)))
        right.append(head.predict_proba(vectors[:n][test]).argmax(axis=1) == clf._label_idx[test])
    direct = unknown.auto_threshold(np.concatenate(scores), np.concatenate(right), clf.config)
    assert clf.auto_threshold_ == direct
    assert clf.auto_threshold_ <= naive, (clf.auto_threshold_, naive, instant_threshold)
    # examples changed after fine-tuning: back to the classifier's own vectors
    clf.add_examples("apple", ["apple w1 w2 w3"])
    assert fold_cross_validated_scores(clf) is None
    scores2, right2 = unknown.cross_validated_scores(clf.support.vectors, clf._label_idx, len(clf.classes_),
                                                     clf._fit_head)
    assert clf.auto_threshold_ == unknown.auto_threshold(scores2, right2, clf.config)
    clf.remove_example("apple w1 w2 w3")  # the fine-tuned examples again: the folds apply again
    assert clf.auto_threshold_ == direct
    # saved with the folder (float16 fold vectors): the loaded classifier has the same threshold
    folder = clf.save(tmp_path / "clf")
    assert (folder / "finetune_folds.safetensors").is_file()
    assert FewShotClassifier.load(folder).auto_threshold_ == direct
    clf.add_examples("apple", ["apple w1 w2 w3"])  # saved after the examples changed: the fallback after loading
    loaded = FewShotClassifier.load(clf.save(tmp_path / "changed"))
    assert loaded._finetune.folds is None and loaded.auto_threshold_ == clf.auto_threshold_


def test_the_estimate_before_is_the_classifiers_own_cross_validated_accuracy(tiny: str, task: dict) -> None:
    from fewshot.adapt import fold_ids
    from fewshot.rules import fit_rule_head

    clf = FewShotClassifier(tiny).fit(task["texts"], task["labels"])
    report = clf.finetune(FinetuneConfig(steps=1, folds=3, eval_every=1, min_gain=1.0, time_budget=None))
    assert not report.kept
    # by hand: the classifier's head on the other folds, label names always training, never held out
    x = np.vstack([clf.support.vectors, clf._name_vectors])
    classes, y = np.unique(np.asarray(list(clf.support.labels) + list(clf.classes_), dtype=object), return_inverse=True)
    fid = fold_ids(y, 3, 0)
    fid[len(clf.support.texts):] = -1
    right = total = 0
    for f in range(3):
        test = fid == f
        head = fit_rule_head(x[~test], y[~test], len(classes), clf.config)
        right += int((head.predict_proba(x[test]).argmax(axis=1) == y[test]).sum())
        total += int(test.sum())
    assert total == len(clf.support.texts)
    assert abs(report.estimate_before - right / total) <= 1 / total + 1e-9  # float paths may flip one example
