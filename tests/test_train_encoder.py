"""`fewshot train --encoder` (fewshot.meta.distill) on a handful of synthetic texts with fake teacher vectors:
the loss falls, a checkpoint resumes to the same state, the folder loads as an encoder."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot.errors import FewShotError
from fewshot.meta import distill
from fewshot.meta.distill import CHECKPOINT, student_model, train_encoder
from fewshot.meta.model_card import save_encoder_model
from fewshot.meta.training_args import TrainConfig

TOPICS = ["weather", "music", "alarm", "email", "cooking", "travel"]
TEMPLATES = ["what about the {} today", "tell me something on {}", "i need help with {} now", "set up my {} please"]


def _data() -> tuple[list[str], list[str], np.ndarray]:
    """6 labels x 4 texts and fake 16-d teacher vectors clustered by label."""
    texts = [t.format(topic) for topic in TOPICS for t in TEMPLATES]
    labels = [topic for topic in TOPICS for _ in TEMPLATES]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(TOPICS), 16))
    teacher = np.repeat(centres, len(TEMPLATES), axis=0) + 0.3 * rng.normal(size=(len(texts), 16))
    return texts, labels, (teacher / np.linalg.norm(teacher, axis=1, keepdims=True)).astype(np.float32)


def _eval_set() -> list:
    support = ([f"my {t} question" for t in TOPICS], TOPICS)
    test = ([f"a {t} request" for t in TOPICS], TOPICS)
    return [(support, test)]


# every batch is the whole training set (6 labels x 4), so the loss is comparable from step to step
TINY = dict(encoder=True, steps=12, val_every=4, batch_labels=6, batch_per_label=4, encoder_lr=5e-4,
            projection_lr=1e-2, checkpoint_every=6, seed=0)


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    return student_model("minilm")


def test_loss_decreases_and_is_seeded(model) -> None:  # type: ignore[no-untyped-def]
    texts, labels, teacher = _data()
    config = TrainConfig(**TINY)
    a = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set())
    losses = [h["loss"] for h in a.history if "loss" in h]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    assert a.history[0] == {"step": 0, "val_accuracy": a.frozen_score} and a.best_score >= a.frozen_score
    assert all(k.startswith(("0.auto_model.encoder.layer.", "0.model.encoder.layer.")) for k in a.state)
    assert {k.split("encoder.layer.")[1].split(".")[0] for k in a.state} == {"4", "5"}  # top 2 of 6
    b = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set())
    assert a.history == b.history and all(torch.equal(a.state[k], b.state[k]) for k in a.state)



def test_training_leaves_the_callers_torch_generator_as_it_was(model) -> None:  # type: ignore[no-untyped-def]
    """Dropout and the seed draw from a fork of torch's global generator: the caller's state is as it was."""
    texts, labels, teacher = _data()
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    train_encoder(model, texts, labels, teacher, TrainConfig(**{**TINY, "steps": 2, "val_every": 2}),
                  eval_sets=_eval_set())
    assert torch.equal(torch.get_rng_state(), before)

def test_checkpoint_resumes_to_the_same_state(model, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    texts, labels, teacher = _data()
    config = TrainConfig(**{**TINY, "val_every": 5})  # best step kept before the checkpoint, validated after
    ckpt = tmp_path / CHECKPOINT
    full = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set(), checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=False)["loop"]["step"] == 6  # the run's last checkpoint (of 12 steps)
    steps = []
    real = distill.batch_loss
    monkeypatch.setattr(distill, "batch_loss", lambda *a, **k: steps.append(1) or real(*a, **k))
    resumed = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set(), checkpoint=ckpt,
                            resume=True)
    assert len(steps) == 6  # steps 7..12 only
    assert resumed.history == full.history and resumed.best_step == full.best_step
    assert all(torch.equal(full.state[k], resumed.state[k]) for k in full.state)
    cut = train_encoder(model, texts, labels, teacher, TrainConfig(**{**TINY, "val_every": 5, "steps": 6}),
                        eval_sets=_eval_set(), checkpoint=ckpt, resume=True)  # a run ended at its checkpoint
    assert cut.history == [h for h in full.history if h["step"] <= 6] and cut.best_step <= 5
    with pytest.raises(FewShotError, match="other settings"):
        train_encoder(model, texts, labels, teacher, TrainConfig(**{**TINY, "encoder_lr": 1e-4}),
                      eval_sets=_eval_set(), checkpoint=ckpt, resume=True)


def test_saved_folder_loads_as_an_encoder(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    from fewshot import FewShotClassifier
    from fewshot.encoders.encoder import Encoder

    texts, labels, teacher = _data()
    config = TrainConfig(**{**TINY, "steps": 4})
    result = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set())
    result.best_step, result.state = 4, {k: v + 0.01 for k, v in result.state.items()}  # surely not the base
    out = save_encoder_model(tmp_path / "student", distill.student_with(model, result.state), result, config,
                             data_files=["data/clinc150/train.csv", "data/hwu64/train.csv"], command="fewshot train")
    meta = json.loads((out / "fewshot_model.json").read_text())
    assert meta["kind"] == "encoder" and meta["base"] == "minilm" and meta["head"] is None
    card = (out / "README.md").read_text()
    assert "all-MiniLM-L6-v2" in card and "all-mpnet-base-v2" in card and card.count("Apache-2.0") == 2
    assert "CC BY 3.0" in card and "CC BY 4.0" in card
    for address in ("https://creativecommons.org/licenses/by/3.0/", "https://creativecommons.org/licenses/by/4.0/",
                    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
                    "https://huggingface.co/sentence-transformers/all-mpnet-base-v2"):
        assert f"<{address}>" in card
    assert card.count("<https://www.apache.org/licenses/LICENSE-2.0>") == 2
    student = Encoder(str(out))
    assert student.extra_layers == (4,) and student.dim == 768  # the product's default, as for `minilm`
    frozen = Encoder("minilm")
    a, b = student.encode(texts[:3]), frozen.encode(texts[:3])
    assert a.shape == b.shape and not np.allclose(a, b)
    np.testing.assert_allclose(a[:, 384:], b[:, 384:], atol=1e-6)  # layer 4 is below the trained layers
    plain = SentenceTransformer(str(out), device="cpu").encode(texts[:3], normalize_embeddings=True)
    np.testing.assert_allclose(plain, Encoder(str(out), extra_layers=()).encode(texts[:3]), atol=1e-5)
    clf = FewShotClassifier(model=str(out)).fit(texts, labels)
    assert clf.predict(texts[:2]).shape == (2,)


@pytest.mark.parametrize("compact", [False, True])
def test_cli_trains_an_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compact: bool) -> None:
    from fewshot.cli import main

    texts, labels, teacher = _data()
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    support, test = _eval_set()[0]
    pd.DataFrame({"text": support[0], "label": support[1]}).to_csv(tmp_path / "support.csv", index=False)
    pd.DataFrame({"text": test[0], "label": test[1]}).to_csv(tmp_path / "test.csv", index=False)
    calls = []

    def fake_teacher(texts, teacher_name, *, cache_dir, progress=False):  # type: ignore[no-untyped-def]
        calls.append(teacher_name)
        return teacher[: len(texts)]

    monkeypatch.setattr(distill, "teacher_vectors", fake_teacher)
    out = tmp_path / "student"
    args = ["train", "--encoder", "--data", str(tmp_path / "train.csv"), "--out", str(out), "--steps", "4",
            "--val-every", "2", "--checkpoint-every", "2", "--batch-labels", "6", "--no-progress",
            "--val-support", str(tmp_path / "support.csv"), "--val-test", str(tmp_path / "test.csv"),
            "--eval-support", str(tmp_path / "support.csv"), "--eval-test", str(tmp_path / "test.csv")]
    assert main(args + ["--compact"] * compact) == 0
    assert calls == ["mpnet"] and not (out / CHECKPOINT).exists()
    meta = json.loads((out / "fewshot_model.json").read_text())
    assert meta["train_config"]["encoder"] and "--encoder" in meta["command"] and "--val-support" in meta["command"]
    assert len(meta["results"]["evaluations"]) == 1
    assert (out / "config.json").is_file() is not compact  # else a sentence-transformers folder too
    mode = (out / "fewshot_model.json").stat().st_mode & 0o777  # the weights are as readable as the other files
    assert {p.name: p.stat().st_mode & 0o777 for p in out.glob("*.safetensors")} == {
        p.name: mode for p in out.glob("*.safetensors")}
    assert sorted(meta["weights_files"]) == sorted(p.name for p in out.glob("weights*.safetensors"))
    assert ("--compact" in meta["command"]) is compact and meta["layers_only"] is compact
    from safetensors.torch import load_file

    from fewshot.encoders.encoder import Encoder

    weights = load_file(str(out / "weights.safetensors"))
    assert {w.dtype for w in weights.values()} == {torch.float16 if compact else torch.float32}
    if compact:  # the card's evaluation scored the stored float16 layers: the same vectors as a fresh load
        assert "float16" in (out / "README.md").read_text()
        student = distill.student_with(distill.student_model("minilm"), {k[len("encoder."):]: v.float()
                                                                         for k, v in weights.items()})
        plain = student.encode(texts[:3], normalize_embeddings=True, convert_to_numpy=True)
        np.testing.assert_allclose(plain, Encoder(str(out), extra_layers=()).encode(texts[:3]), atol=1e-5)
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "h"), "--resume"]) == 2


@pytest.mark.parametrize("bad", [{"train_layers": 0}, {"append_layers": "four"}, {"batch_per_label": 1},
                                 {"preserve_weight": -1.0}, {"unknown_labels": 15, "unknown_weight": 1.0},
                                 {"unknown_weight": -1.0}])
def test_encoder_settings_are_checked(bad: dict) -> None:
    with pytest.raises(FewShotError, match=next(iter(bad)).split("_")[0]):
        TrainConfig(encoder=True, **bad).validate()


def test_appended_layers_may_be_trained(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Layer 4 inside the trained layers (top 3 of 6): training and the saved student compute the same vector."""
    from fewshot.adapt.layers import TopLayers, lower_states
    from fewshot.encoders.encoder import Encoder

    texts, labels, teacher = _data()
    config = TrainConfig(**{**TINY, "steps": 4, "train_layers": 3})
    result = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set())
    result.best_step, result.state = 4, {k: v + 0.01 for k, v in result.state.items()}  # surely not the base
    student = distill.student_with(model, result.state)
    out = save_encoder_model(tmp_path / "student", student, result, config, data_files=["train.csv"],
                             command="fewshot train")
    top = TopLayers(student, 3, extra_layers=(4,))
    trained = top.embed(lower_states(student, texts[:3], top.start, (4,)), [0, 1, 2]).numpy()
    saved = Encoder(str(out)).encode(texts[:3])
    np.testing.assert_allclose(saved, trained, atol=1e-4)
    frozen = Encoder("minilm").encode(texts[:3])
    assert not np.allclose(saved[:, 384:], frozen[:, 384:], atol=1e-3)  # layer 4 itself was trained


def test_without_teacher_only_episode_terms() -> None:
    with pytest.raises(FewShotError, match="distill-weight 0"):
        train_encoder(None, ["a"], ["x"], None, TrainConfig(encoder=True))



def test_without_validation_csvs_held_out_labels_select(model) -> None:  # type: ignore[no-untyped-def]
    texts, labels, teacher = _data()
    config = TrainConfig(**{**TINY, "steps": 2, "val_every": 1, "batch_labels": 4, "val_fraction": 0.34,
                            "k_shot": 2, "val_queries": 2})
    result = train_encoder(model, texts, labels, teacher, config)
    assert result.score_on.startswith("held-out training labels (2)") and 0.0 <= result.frozen_score <= 1.0
    assert [h["step"] for h in result.history if "val_accuracy" in h] == [0, 1, 2]


def test_weights_are_written_in_files_under_the_size_limit(tmp_path: Path) -> None:
    """A Space takes files under 10 MB by plain git push: save_weights splits, load_weights joins, the digest
    covers every file, and weights_files may only name files of the folder."""
    from fewshot.encoders.encoder import trained_digest
    from fewshot.encoders.heads import MODEL_CONFIG, load_weights, save_weights
    from fewshot.encoders.registry import ModelSpec

    tensors = {f"encoder.layer.{i}.weight": torch.full((100, 10), float(i), dtype=torch.float16) for i in range(5)}
    names = save_weights(tmp_path, tensors, max_bytes=4500)  # 2,000 bytes each: two per file
    assert names == ["weights.safetensors", "weights-2.safetensors", "weights-3.safetensors"]
    assert all((tmp_path / n).stat().st_size < 4500 + 1000 for n in names)
    (tmp_path / MODEL_CONFIG).write_text(json.dumps({"base": "minilm", "head": None, "weights_files": names}))
    loaded = load_weights(tmp_path)
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    spec = ModelSpec("x", "/base", str(tmp_path))
    before = trained_digest(spec)
    trained_digest.cache_clear()
    (tmp_path / names[-1]).write_bytes((tmp_path / names[0]).read_bytes())  # the last file changes
    assert trained_digest(spec) != before
    trained_digest.cache_clear()
    for bad in (["../weights.safetensors"], ["model.safetensors"], ["/etc/weights.safetensors"]):
        (tmp_path / MODEL_CONFIG).write_text(json.dumps({"base": "minilm", "head": None, "weights_files": bad}))
        with pytest.raises(FewShotError, match="weights_files"):
            load_weights(tmp_path)


def test_held_out_labels_term_hides_the_batch_last_labels() -> None:
    """--unknown-weight: the batch's last unknown_labels labels leave the support set and become unknown texts."""
    from fewshot.meta.distill import batch_loss
    from fewshot.losses import HeldOutLabelRankingLoss

    config = TrainConfig(encoder=True, batch_labels=6, batch_per_label=4, distill_weight=0, structure_weight=0,
                         episode_weight=0, preserve_weight=0, unknown_weight=1.0, unknown_labels=2)
    config.validate()
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat_interleave(4)
    z = torch.nn.functional.normalize(torch.randn(24, 8, generator=g), dim=-1)
    loss, parts = batch_loss(z, labels, torch.zeros(24, 8), z, torch.nn.Identity(), config)
    sup = (torch.arange(24) % 4 < 2) & (labels < 4)
    qry = (torch.arange(24) % 4 >= 2) & (labels < 4)
    expected = HeldOutLabelRankingLoss(config.temperature)(z[sup], labels[sup], z[qry], z[labels >= 4], 4)
    assert set(parts) == {"loss", "unknown"} and loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_eda_copies_are_seeded_and_change_every_multiword_text() -> None:
    from fewshot.meta.augment import augment_texts

    texts, _, _ = _data()
    a = augment_texts(texts + ["hello"], seed=3)
    assert a == augment_texts(texts + ["hello"], seed=3) and a != augment_texts(texts + ["hello"], seed=4)
    assert all(c != t and set(c.split()) <= set(t.split()) for c, t in zip(a, texts)) and a[-1] == "hello"
    with pytest.raises(FewShotError, match="deletion"):
        augment_texts(texts, seed=0, delete=1.0)


@pytest.mark.parametrize("term", ["selfsup", "augment", "pairs"])
def test_optional_terms_train_and_are_seeded(model, term: str) -> None:  # type: ignore[no-untyped-def]
    """Each optional term adds its value to the history and trains deterministically; without its input it fails."""
    from fewshot.meta.augment import augment_texts

    texts, labels, teacher = _data()
    config = TrainConfig(**{**TINY, "steps": 4, "val_every": 2, f"{term}_weight": 1.0, "pairs_batch": 3})
    inputs = {"augment": {"augmented": (augment_texts(texts, 0), teacher[::-1].copy())},
              "pairs": {"pairs": (texts[:4], texts[4:8], np.array([1.0, 0.0, 0.5, 0.2], np.float32))}}
    a = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set(), **inputs.get(term, {}))
    assert all(term in h for h in a.history if "loss" in h) and len([h for h in a.history if "loss" in h]) == 2
    b = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set(), **inputs.get(term, {}))
    assert a.history == b.history
    if term != "selfsup":
        with pytest.raises(FewShotError, match=f"{term}_weight"):
            train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set())


def test_general_pairs_file_is_checked(tmp_path: Path) -> None:
    from fewshot.cli import main
    from fewshot.meta.data import read_sentence_pairs

    path = tmp_path / "pairs.csv"
    pd.DataFrame({"text1": ["a cat", "a dog"], "text2": ["a kitten", "a car"], "score": [0.9, 4.0]}).to_csv(path, index=False)
    with pytest.raises(FewShotError, match="row 3 has 4.0"):
        read_sentence_pairs(path)
    texts, labels, _ = _data()
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    base = ["train", "--encoder", "--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "s")]
    assert main(base + ["--general-pairs", str(path)]) == 2  # without --pairs-weight
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "h"),
                 "--general-pairs", str(path)]) == 2  # a head run takes no pairs


def test_grouped_batches_hold_neighbouring_labels_and_hide_one_per_group() -> None:
    """--batch-groups: each group is a label and its nearest labels; the hidden labels (last) come one per group."""
    from fewshot.meta.distill import BatchSampler

    rng = np.random.default_rng(0)
    cluster = np.repeat(np.arange(3), 4)  # 12 labels in 3 tight clusters of 4
    centres = np.eye(8)[:3][cluster] + 0.01 * rng.normal(size=(12, 8))
    centroids = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(12), 4)
    config = TrainConfig(encoder=True, batch_labels=8, batch_per_label=4, batch_groups=2, unknown_weight=1.0,
                         unknown_labels=2)
    config.validate()
    sampler = BatchSampler(labels, config, centroids)
    for _ in range(5):
        classes = sampler.grouped_classes()
        assert len(set(classes.tolist())) == 8
        first, second = [*classes[:3], classes[6]], [*classes[3:6], classes[7]]
        assert len(set(cluster[first])) == 1 and len(set(cluster[second])) == 1
        rows, local = sampler.sample()
        assert len(rows) == 32 and (np.bincount(local) == 4).all()
    with pytest.raises(FewShotError, match="mean vectors"):
        BatchSampler(labels, config)


def test_grouped_batches_train_and_are_seeded(model) -> None:  # type: ignore[no-untyped-def]
    """train_encoder with --batch-groups: the labels' frozen mean vectors group the batches; runs are repeatable."""
    texts, labels, teacher = _data()
    config = TrainConfig(**{**TINY, "steps": 4, "val_every": 2, "batch_labels": 4, "batch_groups": 2,
                            "unknown_weight": 1.0, "unknown_labels": 2})
    a = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set())
    assert all("unknown" in h for h in a.history if "loss" in h)
    b = train_encoder(model, texts, labels, teacher, config, eval_sets=_eval_set())
    assert a.history == b.history


def _cli_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[list[str], Path]:
    """``fewshot train --encoder`` arguments on the tiny data with a fake teacher; returns them and ``--out``."""
    texts, labels, teacher = _data()
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "train.csv", index=False)
    monkeypatch.setattr(distill, "teacher_vectors", lambda texts, name, **kw: teacher[: len(texts)])
    out = tmp_path / "student"
    return ["train", "--encoder", "--data", str(tmp_path / "train.csv"), "--out", str(out), "--steps", "4",
            "--val-every", "2", "--checkpoint-every", "2", "--batch-labels", "6", "--val-fraction", "0.34",
            "--no-progress", "--compact",
            *extra], out


def test_a_checkpoint_is_never_started_over_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from fewshot.cli import main

    args, out = _cli_run(tmp_path, monkeypatch)
    out.mkdir()
    (out / CHECKPOINT).write_bytes(b"an unfinished run")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds the checkpoint of an unfinished run" in err and "pass --resume" in err
    assert (out / CHECKPOINT).read_bytes() == b"an unfinished run"
    (out / CHECKPOINT).unlink()
    assert main(args + ["--resume"]) == 0  # nothing to resume: said, then a fresh run
    assert "--resume: " in capsys.readouterr().err and (out / "fewshot_model.json").is_file()


def test_an_interrupted_run_says_how_to_resume_and_a_bare_one_leaves_no_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from fewshot.cli import main

    args, out = _cli_run(tmp_path, monkeypatch)
    real, calls = distill.batch_loss, []

    def interrupted_at(step: int):  # type: ignore[no-untyped-def]
        def loss(*a, **k):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) == step:
                raise KeyboardInterrupt
            return real(*a, **k)
        return loss

    monkeypatch.setattr(distill, "batch_loss", interrupted_at(1))  # before the first checkpoint
    assert main(args) == 130
    assert "no checkpoint was written yet" in capsys.readouterr().err and not out.exists()
    calls.clear()
    monkeypatch.setattr(distill, "batch_loss", interrupted_at(3))  # after the checkpoint of step 2
    assert main(args) == 130
    err = capsys.readouterr().err
    assert f"{out / CHECKPOINT} holds step 2 of 4; continue with: fewshot train --data" in err
    resume = err.split("continue with: ")[1].split("\n")[0]
    assert resume.endswith("--resume") and "--no-progress" in resume and "--compact" in resume
    monkeypatch.setattr(distill, "batch_loss", real)
    assert main(shlex.split(resume)[1:]) == 0 and not (out / CHECKPOINT).exists()  # the note's command resumes


@pytest.mark.parametrize("flags, words", [(["--train-layers", "9"], "--train-layers must be between 1 and 6"),
                                          (["--append-layers", "7"], "--append-layers must be layer numbers from 0"),
                                          (["--base", "/nonexistent/base"], "--base"),
                                          (["--teacher", "/nonexistent/teacher"], "--teacher")])
def test_bad_encoder_flags_are_named_and_leave_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], flags: list[str],
                                                         words: str) -> None:
    from fewshot.cli import main

    args, out = _cli_run(tmp_path, monkeypatch, *flags)
    if "--teacher" in flags:
        monkeypatch.undo()  # the real teacher loader, which cannot find the folder
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and "--model" not in err and "--extra-layers" not in err and not out.exists()
