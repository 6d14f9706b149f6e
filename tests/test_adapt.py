"""Per-task adaptation of the encoder (fewshot.adapt) on a tiny randomly initialised BERT: offline and fast."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot.adapt import (FinetuneConfig, TopLayers, apply_weights, cv_accuracy, finetune, fold_ids, lower_states,
                           overlap_hint)
from fewshot.losses import supcon_loss
from fewshot.losses.pairs import random_positive_and_hardest_negative
from fewshot.errors import FewShotError

KEYS = ["apple", "river", "engine", "violin"]
FILLER = [f"w{i}" for i in range(40)]


def tiny_model(folder: Path, seed: int = 0, arch: str = "bert"):
    """A 4-layer, 32-wide sentence-transformer (BERT, or MPNet with its relative-position bias) with mean
    pooling, random weights, a made-up vocabulary."""
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast, MPNetConfig, MPNetModel

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *KEYS, *FILLER]
    torch.manual_seed(seed)
    shape = dict(vocab_size=5 + len(KEYS) + len(FILLER), hidden_size=32, num_hidden_layers=4,
                 num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    if arch == "mpnet":
        MPNetModel(MPNetConfig(pad_token_id=0, **shape)).save_pretrained(folder)
    else:
        BertModel(BertConfig(**shape)).save_pretrained(folder)
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(folder)
    body = Transformer(str(folder), max_seq_length=32)
    return SentenceTransformer(modules=[body, Pooling(32, "mean"), Normalize()], device="cpu")


def synthetic(n_per_label: int, seed: int) -> tuple[list[str], list[str]]:
    """Label = the one key word in a text of 8 random filler words: known structure, hidden by the filler."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for key in KEYS:
        for _ in range(n_per_label):
            words = list(rng.choice(FILLER, size=8))
            words.insert(int(rng.integers(9)), key)
            texts.append(" ".join(words))
            labels.append(key)
    return texts, labels


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    return tiny_model(tmp_path_factory.mktemp("tiny_bert"))


def snapshot(m) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def held_out_accuracy(m, support: tuple[list[str], list[str]], query: tuple[list[str], list[str]]) -> float:
    """Nearest centred prototype of the support set, scored on fresh texts."""
    from fewshot.adapt import prototype_rule

    xs = m.encode(support[0], convert_to_numpy=True)
    xq = m.encode(query[0], convert_to_numpy=True)
    pred = prototype_rule(xs, np.asarray(support[1], dtype=object), xq)
    return float(np.mean(pred == np.asarray(query[1], dtype=object)))


def test_top_layers_reproduce_the_model(model) -> None:
    texts, _ = synthetic(2, seed=1)
    want = model.encode(texts, convert_to_tensor=True)
    for n in (1, 2, 4):
        top = TopLayers(model, n)
        got = top.embed(lower_states(model, texts, top.start, ()), list(range(len(texts))))
        assert torch.allclose(got, want, atol=1e-5), n


def test_top_layers_reproduce_an_mpnet_model(tmp_path: Path) -> None:
    """MPNet adds a relative-position bias in every layer: layers run on cached states must add it too."""
    mpnet = tiny_model(tmp_path / "tiny_mpnet", arch="mpnet")
    texts, _ = synthetic(2, seed=1)
    want = mpnet.encode(texts, convert_to_tensor=True)
    for n in (1, 3):
        top = TopLayers(mpnet, n)
        got = top.embed(lower_states(mpnet, texts, top.start, ()), list(range(len(texts))))
        assert torch.allclose(got, want, atol=1e-5), n
    assert not any(p.requires_grad for p in top.bias.parameters())  # frozen, not trained


def test_adaptation_improves_a_synthetic_task(model) -> None:
    # 10 examples per label: with 6 the gain on this tiny random model ranged 0 to 0.24 over config seeds
    support, query = synthetic(10, seed=2), synthetic(25, seed=3)
    before = held_out_accuracy(model, support, query)
    config = FinetuneConfig(layers=2, steps=40, folds=3, eval_every=10, patience=4, lr=3e-3, time_budget=None)
    result = finetune(model, *support, config)
    assert result.report.kept and result.report.steps > 0
    assert result.report.estimate_after > result.report.estimate_before
    after = held_out_accuracy(apply_weights(model, result.state_dict), support, query)
    assert after >= before + 0.1, (before, after)


def test_kept_weights_do_not_depend_on_how_long_the_estimate_ran(model) -> None:
    """The final run is a run of the chosen number of steps on all examples with its own episode and dropout
    streams: the same weights as training that many steps without an estimate, whatever the folds did."""
    support = synthetic(6, seed=2)
    config = FinetuneConfig(layers=2, steps=40, folds=3, eval_every=10, patience=4, lr=3e-3, time_budget=None)
    result = finetune(model, *support, config)
    assert result.report.kept and 0 < result.report.steps
    plain = finetune(model, *support, FinetuneConfig(layers=2, steps=result.report.steps, folds=0, lr=3e-3,
                                                     time_budget=None))
    assert same_weights(result.state_dict, plain.state_dict)


def test_state_dict_holds_only_trained_tensors_and_reloads_identically(model, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    support = synthetic(4, seed=4)
    result = finetune(model, *support, FinetuneConfig(layers=2, steps=3, folds=0, time_budget=None))
    names = set(model.state_dict())
    assert set(result.state_dict) <= names
    trained = {k for k in names if any(f"layer.{i}." in k for i in (2, 3))}
    assert set(result.state_dict) == trained  # the top 2 of 4 layers, nothing else
    assert result.nbytes == sum(v.numel() for v in result.state_dict.values()) * 2
    save_file({f"encoder.{k}": v.half() for k, v in result.state_dict.items()}, str(tmp_path / "w.safetensors"))
    loaded = {k[len("encoder."):]: v for k, v in load_file(str(tmp_path / "w.safetensors")).items()}
    assert all(torch.equal(loaded[k].float(), v) for k, v in result.state_dict.items())  # float16 loses nothing
    a = apply_weights(model, result.state_dict).encode(support[0], convert_to_tensor=True)
    b = apply_weights(model, loaded).encode(support[0], convert_to_tensor=True)
    assert torch.equal(a, b)
    assert not torch.allclose(a, model.encode(support[0], convert_to_tensor=True))


def test_cancellation_returns_nothing_and_leaves_the_model_untouched(model) -> None:
    before = snapshot(model)
    support = synthetic(4, seed=5)
    event = threading.Event()
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if done >= 2:
            event.set()

    result = finetune(model, *support, FinetuneConfig(steps=20, folds=2, time_budget=None), progress=progress,
                      cancel=event)
    assert result.report.cancelled and not result.report.kept and result.state_dict == {}
    assert max(calls) <= 3
    assert same_weights(before, snapshot(model))
    early = finetune(model, *support, FinetuneConfig(steps=5, folds=0), cancel=lambda: True)
    assert early.report.cancelled and early.state_dict == {}


def test_a_full_run_leaves_the_model_untouched(model) -> None:
    before = snapshot(model)
    finetune(model, *synthetic(4, seed=6), FinetuneConfig(layers=3, steps=4, folds=2, eval_every=2,
                                                          time_budget=None))
    assert same_weights(before, snapshot(model))


def test_progress_counts_up_to_its_total(model) -> None:
    seen: list[tuple[int, int]] = []
    finetune(model, *synthetic(4, seed=7), FinetuneConfig(steps=6, folds=2, eval_every=3, time_budget=None),
             progress=lambda d, t: seen.append((d, t)))
    assert seen[0][0] == 0 and all(0 <= d <= t for d, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][0] == seen[-1][1]


def test_train_only_rows_are_never_held_out_and_the_rule_is_the_callers(model) -> None:
    texts, labels = synthetic(4, seed=10)
    texts, labels = texts + list(KEYS), labels + list(KEYS)  # one extra row per label, e.g. its name
    only = [False] * (len(texts) - len(KEYS)) + [True] * len(KEYS)
    held: list[int] = []

    def rule(train: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
        held.append(len(test))
        return y[(test @ train.T).argmax(axis=1)]  # nearest example: any rule of this shape will do

    result = finetune(model, texts, labels, FinetuneConfig(steps=2, folds=2, eval_every=2, time_budget=None),
                      rule=rule, train_only=only)
    assert sum(held[:2]) == len(texts) - len(KEYS)  # step 0, two folds: every row but the train-only ones
    assert result.report.estimate_before is not None
    with pytest.raises(FewShotError, match="train_only"):
        finetune(model, texts, labels, FinetuneConfig(steps=1, folds=2, time_budget=None), train_only=[True])


def test_time_budget_is_respected(model) -> None:
    budget = 1.5
    t0 = time.perf_counter()
    result = finetune(model, *synthetic(8, seed=8), FinetuneConfig(steps=100_000, folds=2, eval_every=5,
                                                                   patience=100_000, time_budget=budget))
    elapsed = time.perf_counter() - t0
    assert result.report.out_of_time
    assert elapsed < budget + 1.0, elapsed  # one step and one estimate at most past the budget


def test_same_seed_same_weights(model) -> None:
    support = synthetic(4, seed=9)
    config = FinetuneConfig(steps=3, folds=0, time_budget=None, seed=3)
    a, b = finetune(model, *support, config), finetune(model, *support, config)
    assert same_weights(a.state_dict, b.state_dict)


@pytest.mark.parametrize("bad", [{"loss": "triplet"}, {"folds": 1}, {"layers": 0}, {"lr": 0.0},
                                 {"time_budget": -1.0}, {"steps": 2.5}, {"tie_texts": -1}, {"commit_gain": 0.0},
                                 {"commit_texts": -1},
                                 {"episode_shots": 0}, {"deep_max_labels": 0}])
def test_bad_config_is_a_clear_error(model, bad: dict) -> None:
    name = next(iter(bad))
    with pytest.raises(FewShotError, match=name):
        finetune(model, *synthetic(3, seed=0), FinetuneConfig(**bad))


def test_bad_input_is_a_clear_error(model) -> None:
    with pytest.raises(FewShotError, match="same length"):
        finetune(model, ["a b"], ["x", "y"])
    with pytest.raises(FewShotError, match="at least 2 labels"):
        finetune(model, ["w1 w2", "w3 w4"], ["x", "x"])
    with pytest.raises(FewShotError, match="layers must be between"):
        finetune(model, *synthetic(3, seed=0), FinetuneConfig(layers=9))
    with pytest.raises(FewShotError, match="cancel"):
        finetune(model, *synthetic(3, seed=0), cancel="stop")


def test_losses() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    z = torch.nn.functional.normalize(torch.randn(7, 8, generator=g), dim=-1)
    i, j, dissimilar = random_positive_and_hardest_negative(z, y, g)
    assert len(i) <= 2 * len(y)  # linear in the examples
    assert bool(((y[i] != y[j]) == dissimilar.bool()).all())
    perfect = torch.nn.functional.one_hot(y, 3).float()
    assert supcon_loss(perfect, y, 0.1) < supcon_loss(z, y, 0.1)


def test_overlap_hint_names_the_confused_labels() -> None:
    rng = np.random.default_rng(0)
    centres = {"a": [1.0, 0, 0], "b": [1.0, 0.05, 0], "c": [0, 0, 1.0]}  # a and b overlap
    vecs, labels = [], []
    for lab, c in centres.items():
        vecs.append(np.asarray(c) + 0.2 * rng.standard_normal((10, 3)))
        labels += [lab] * 10
    hint = overlap_hint(np.vstack(vecs), labels)
    assert hint.confusable and "overlap" in hint.message
    assert {frozenset(p[:2]) for p in hint.pairs} == {frozenset("ab")}
    apart = overlap_hint(np.vstack([np.eye(3)[[i] * 5] + 0.01 * rng.standard_normal((5, 3)) for i in range(3)]),
                         ["a"] * 5 + ["b"] * 5 + ["c"] * 5)
    assert not apart.confusable and apart.estimate == 1.0


def test_fold_ids_are_stratified() -> None:
    labels = np.array([0] * 5 + [1] * 4 + [2])
    folds = fold_ids(labels, 3, seed=0)
    assert folds[-1] == -1  # a single example always trains
    for lab in (0, 1):
        assert len(set(folds[labels == lab].tolist())) == 3
    vecs = np.eye(3)[labels] + 0.01
    assert cv_accuracy(vecs, labels, folds) == 1.0


def test_prototype_margin_measures_how_clearly_held_out_rows_sit_with_their_label() -> None:
    from fewshot.adapt.estimate import prototype_margin

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 6)
    folds = fold_ids(labels, 3, seed=0)
    margins = []
    for spread in (0.05, 0.3, 3.0):
        vecs = np.eye(3)[labels] + spread * rng.standard_normal((len(labels), 3))
        margins.append(sum(prototype_margin(vecs, labels, folds, f) for f in range(3)))
    assert margins[0] > margins[1] > 0 > margins[2] - 1.0  # tighter clusters: larger; noise: about none
    assert prototype_margin(np.eye(3)[labels], labels, folds, fold=7) == 0.0  # an empty fold adds nothing
    lonely = folds.copy()
    lonely[labels == 2] = 0  # label 2 held out whole in fold 0: its rows have no prototype and are left out
    vecs = np.eye(3)[labels]
    assert prototype_margin(vecs, labels, lonely, 0) == prototype_margin(vecs[labels < 2], labels[labels < 2],
                                                                         lonely[labels < 2], 0)


def test_margin_ties_extend_a_gain_but_never_start_one(model) -> None:
    support = synthetic(12, seed=4)
    base = dict(layers=2, episode_shots=4, steps=60, folds=3, eval_every=10, patience=2, lr=3e-3, time_budget=None,
                commit_gain=None)
    constant = lambda train, y, test: np.zeros(len(test), dtype=np.int64)  # noqa: E731 - accuracy never moves
    for ties in (True, False):
        flat = finetune(model, *support, FinetuneConfig(**base, margin_ties=ties), rule=constant).report
        assert not flat.kept and len(flat.curve) == 3  # no gain: stops after `patience` checks either way
    plain = finetune(model, *support, FinetuneConfig(**base, margin_ties=False)).report
    tied = finetune(model, *support, FinetuneConfig(**base, margin_ties=True)).report
    assert plain.curve == tied.curve and plain.curve[-1][1] == plain.curve[-3][1]  # it ends on equal estimates
    assert plain.kept and tied.kept and tied.steps > plain.steps  # ...which grew the margin: train on


def test_layers_and_episode_size_follow_the_label_count() -> None:
    """By default small label sets train 4 layers on 2-example episodes, large ones 2 layers on 4 examples;
    explicit values are kept."""
    auto = FinetuneConfig()
    assert (auto.for_labels(16).layers, auto.for_labels(16).episode_shots) == (4, 2)
    assert (auto.for_labels(32).layers, auto.for_labels(33).layers, auto.for_labels(33).episode_shots) == (4, 2, 4)
    fixed = FinetuneConfig(layers=3, episode_shots=5, deep_max_labels=10)
    assert (fixed.for_labels(100).layers, fixed.for_labels(2).episode_shots) == (3, 5)
    assert auto.layers is None  # for_labels returns a copy


def test_a_clear_gain_ends_the_checks_and_trains_all_steps(model) -> None:
    """An estimate ``commit_gain`` above "before" stops cross-validating: the final run trains ``steps``; a
    smaller rise, or ``commit_gain=None``, keeps checking and trains the checked number of steps."""
    support = synthetic(12, seed=4)
    base = dict(layers=2, episode_shots=4, steps=60, folds=3, eval_every=10, patience=2, lr=1e-2, time_budget=None)
    checked = finetune(model, *support, FinetuneConfig(**base, commit_gain=None)).report
    assert not checked.committed and len(checked.curve) > 3
    small, large = (v - checked.curve[0][1] for _, v in checked.curve[1:3])
    assert 0 < small < 0.1 < large  # the first check rises a little, the second a lot
    committed = finetune(model, *support, FinetuneConfig(**base, commit_gain=0.1)).report
    assert committed.committed and committed.kept and committed.steps == 60
    assert committed.curve == checked.curve[:3] and "clear gain after 20 steps" in committed.message
    too_high = finetune(model, *support, FinetuneConfig(**base, commit_gain=0.5)).report
    assert not too_high.committed and too_high.curve == checked.curve and too_high.steps == checked.steps
    too_few = finetune(model, *support, FinetuneConfig(**base, commit_gain=0.1, commit_texts=len(support[0]))).report
    assert not too_few.committed and too_few.curve == checked.curve  # as many held-out texts as exist: never


# ---- the time budget, on a fake clock: seconds pass only when a step or an estimate runs ----------------------
class FakeClock:
    """A clock that moves only when told (``clock.now += seconds``); ``restart()`` for a second run."""

    def __init__(self) -> None:
        self.now = 0.0
        self.checks: list[int] = []  # the folds estimated so far (the scripted curve's position)

    def restart(self) -> None:
        self.now = 0.0
        self.checks.clear()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch):
    """``(clock, costs, script)``: each fold-run step costs ``costs["fold"]`` fake seconds, each final-run step
    ``costs["final"]``, each fold of an estimate ``costs["estimate"]``; check ``i`` of the estimate gets
    ``script[i]`` held-out texts of each fold wrong (the last entry repeats), so the curve is known."""
    ft = importlib.import_module("fewshot.adapt.finetune")  # the module (the package exports the function)

    clock = FakeClock()
    costs = {"fold": 1.0, "final": 1.0, "estimate": 0.0, "cache": 0.0}
    script: list[int] = [4]
    calls = clock.checks
    step, lower = ft._Run.step, ft.lower_states

    def timed_step(self, cached, labels):
        clock.now += costs["final" if len(self.rows) == len(labels) else "fold"]
        return step(self, cached, labels)

    def predictions(vectors, labels, folds, fold, rule):
        clock.now += costs["estimate"]
        check = len(calls) // len(set(folds.tolist()) - {-1})
        calls.append(fold)
        rows = np.flatnonzero(folds == fold)
        pred = labels[rows].copy()
        wrong = min(script[min(check, len(script) - 1)], len(rows))
        pred[:wrong] = (pred[:wrong] + 1) % (labels.max() + 1)
        return rows, pred

    def timed_lower(*args, **kwargs):
        clock.now += costs["cache"]
        return lower(*args, **kwargs)

    monkeypatch.setattr(ft._Run, "step", timed_step)
    monkeypatch.setattr(ft, "held_out_predictions", predictions)
    monkeypatch.setattr(ft, "lower_states", timed_lower)
    return clock, costs, script


BUDGETED = dict(layers=1, steps=30, folds=2, eval_every=1, patience=1, margin_ties=False, commit_gain=None)


def test_the_estimate_leaves_room_for_the_final_run_which_trains_the_chosen_steps_in_full(model, timed) -> None:
    clock, costs, script = timed
    costs["estimate"] = 0.25
    script[:] = [4, 3, 2, 1, 0]  # 8 held-out texts per fold: the estimate rises at every check
    result = finetune(model, *synthetic(4, seed=1), FinetuneConfig(**BUDGETED, time_budget=10.5), clock=clock)
    report = result.report
    best_step = max(report.curve, key=lambda p: (p[1], -p[0]))[0]
    assert report.kept and report.out_of_time and not report.over_budget
    # rounds of 2 fold steps (2 s) and a check (0.5 s): at 5.5 s a third round and its final run (2.5 + 3 s) no
    # longer fit, so the estimate ends at 2 steps and the final run trains those 2 in full
    assert report.steps == best_step == report.curve[-1][0] == 2
    assert clock.now == pytest.approx(7.5) and report.seconds == clock.now
    assert "the time budget ended the estimate after 2 steps" in report.message


def test_a_slower_final_run_is_finished_and_said_to_overrun(model, timed) -> None:
    clock, costs, script = timed
    script[:] = [4, 3, 2, 1, 0]
    costs["final"] = 3.0  # the machine slows down after the estimate
    report = finetune(model, *synthetic(4, seed=1), FinetuneConfig(**BUDGETED, time_budget=10.5), clock=clock).report
    assert report.kept and report.steps == report.curve[-1][0] == 3  # never cut below the chosen steps
    assert report.over_budget and clock.now == pytest.approx(15.0)
    assert "over the 10.5 s time budget" in report.message and "3 steps were run in full" in report.message


def test_a_clear_gain_trains_as_many_steps_as_the_budget_holds_and_says_so(model, timed) -> None:
    clock, costs, script = timed
    script[:] = [4, 0]  # 50 % -> 100 % at the first check
    config = dict(BUDGETED, commit_gain=0.1, commit_texts=0)
    report = finetune(model, *synthetic(4, seed=1), FinetuneConfig(**config, time_budget=10.5), clock=clock).report
    assert report.committed and report.kept and report.steps == 8 and not report.over_budget  # 2 s + 8 x 1 s
    assert clock.now <= 10.5 and "so the final run trained 8 (30 did not fit the time budget)" in report.message
    clock.restart()
    free = finetune(model, *synthetic(4, seed=1), FinetuneConfig(**config, time_budget=None), clock=clock).report
    assert free.steps == 30 and "trained 30" in free.message and "did not fit" not in free.message


def test_no_time_left_keeps_the_instant_classifier_and_says_why(model, timed) -> None:
    clock, costs, script = timed
    costs["cache"] = 20.0
    seen: list[tuple[int, int]] = []
    result = finetune(model, *synthetic(4, seed=1), FinetuneConfig(**BUDGETED, time_budget=10.0), clock=clock,
                      progress=lambda d, t: seen.append((d, t)))
    assert not result.report.kept and result.report.out_of_time and result.state_dict == {}
    assert result.report.message.startswith("out of time before training: encoding the examples and the first "
                                            "estimate took 20.0 s of the 10 s time budget")
    assert result.report.reason.startswith("out of time before training") and result.report.message.endswith(
        "(a larger time budget lets it train): the instant classifier is kept")  # the reason, then what follows
    assert seen[-1] == (90, 90)
    # a first step that alone eats the budget: the final run was never measured to fit, so it is not started
    costs["cache"], costs["fold"] = 0.0, 6.0
    clock.restart()
    script[:] = [4, 0, 0]
    slow = finetune(model, *synthetic(4, seed=1), FinetuneConfig(**BUDGETED, time_budget=10.0), clock=clock).report
    assert not slow.kept and slow.out_of_time and slow.steps == 0
    assert "out of time: the final run of 1 steps (about 6.0 s) does not fit" in slow.message
    assert slow.reason and slow.message == f"{slow.reason}: the instant classifier is kept"


def test_with_enough_budget_the_result_does_not_depend_on_the_machines_speed(model, timed) -> None:
    clock, costs, script = timed
    script[:] = [4, 3, 2, 2, 2]
    config = FinetuneConfig(**BUDGETED, time_budget=1000.0)
    fast = finetune(model, *synthetic(4, seed=1), config, clock=clock)
    costs["fold"], costs["final"], costs["estimate"] = 7.0, 9.0, 3.0  # a loaded machine
    clock.restart()
    slow = finetune(model, *synthetic(4, seed=1), config, clock=clock)
    assert fast.report.curve == slow.report.curve and fast.report.steps == slow.report.steps == 2
    assert same_weights(fast.state_dict, slow.state_dict)


def test_progress_is_one_bar_with_a_stable_total(model, timed) -> None:
    clock, costs, script = timed
    script[:] = [4, 3, 3]  # stops at the second check: the bar jumps to the final run, then to the end
    seen: list[tuple[int, int]] = []
    report = finetune(model, *synthetic(4, seed=1), FinetuneConfig(**BUDGETED, time_budget=None), clock=clock,
                      progress=lambda d, t: seen.append((d, t))).report
    assert report.steps == 1
    assert {t for _, t in seen} == {30 * 3}  # 2 fold runs and the final run, 30 steps each, from the first call
    assert seen[0] == (0, 90) and seen[-1] == (90, 90)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert (60, 90) in seen and (61, 90) in seen  # the estimate's end, then the final run's one step
