"""The meta-trainer (fewshot.meta) end to end on tiny synthetic data: a model folder that Encoder/FewShotClassifier load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from fewshot import FewShotClassifier
from fewshot.errors import FewShotError
from fewshot.cli import main
from fewshot.cli.options import build_parser
from fewshot.encoders.heads import load_head as _load_head
from fewshot.meta.data import CachedEncoder, head_transform
from fewshot.meta.model_card import save_model
from fewshot.meta.train_command import run_train
from fewshot.meta.trainer import METHODS, train_head
from fewshot.meta.training_args import TrainConfig


def load_head(folder: Path) -> torch.nn.Module | None:
    """The trained head alone (what evaluation through CachedEncoder uses)."""
    return _load_head(folder, head_only=True)

DIM = 384  # the head must fit the bundled MiniLM


def _clusters(n_classes: int = 10, per_class: int = 12, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, DIM))
    x = np.repeat(centres, per_class, axis=0) + 1.5 * rng.normal(size=(n_classes * per_class, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), [f"label_{i}" for i in range(n_classes) for _ in range(per_class)]


TINY = dict(ensemble=2, steps=12, n_way=6, k_shot=3, q_query=3, val_every=6, val_episodes=2, val_queries=5, lr=1e-2)


@pytest.mark.parametrize("method", ["prototypical", "matching", "contrastive"])
def test_train_head_runs_and_is_seeded(method: str) -> None:
    x, y = _clusters()
    cfg = TrainConfig(method=method, n_pairs=32, **TINY)
    a, b = train_head(x, y, cfg), train_head(x, y, cfg)
    assert 0.0 <= a.frozen_val <= a.best_val <= 1.0
    assert all(s in {h["step"] for h in a.history} for s in a.best_steps)
    assert not set(a.train_classes) & set(a.val_classes) and len(a.val_classes) == 2
    for ta, tb in zip(a.head.state_dict().values(), b.head.state_dict().values()):
        assert torch.equal(ta, tb)



def test_training_leaves_the_callers_torch_generator_as_it_was() -> None:
    """train_head and meta_train seed torch on a fork of its global generator: a caller's own draws go on as if
    no training had run in between (and the training's results do not depend on them)."""
    from fewshot.meta.trainer import meta_train
    from fewshot.meta.training_args import MetaConfig

    x, y = _clusters()
    cfg = TrainConfig(method="matching", **{**TINY, "steps": 2, "ensemble": 1})
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    head = train_head(x, y, cfg).head.state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    meta_train(x, y, MetaConfig(method="fomaml", outer_steps=2, n_way=4, k_shots=(2,), q_query=2, meta_batch=2,
                                label_names=False, validate_every=0))
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)
    assert all(torch.equal(a, b) for a, b in zip(head.values(), train_head(x, y, cfg).head.state_dict().values()))

def test_registered_method_contract() -> None:
    """A method may write gradients itself and return a detached loss (the Reptile/FOMAML shape)."""
    calls = []

    def grads_only(head, data, config):  # type: ignore[no-untyped-def]
        calls.append(data.episodes.sample().support.shape)
        for p in head.parameters():
            p.grad = torch.full_like(p, 1e-3)
        return torch.tensor(0.0)

    METHODS["test_grads_only"] = grads_only
    try:
        x, y = _clusters()
        result = train_head(x, y, TrainConfig(method="test_grads_only", **TINY))
        assert len(calls) == TINY["steps"] * TINY["ensemble"]
        assert result.history[-1]["step"] == TINY["steps"]
    finally:
        del METHODS["test_grads_only"]
    with pytest.raises(FewShotError, match="unknown method"):
        train_head(x, y, TrainConfig(method="no_such_method", **TINY))


def test_saved_folder_loads_in_encoder_and_classifier(tmp_path: Path) -> None:
    from fewshot.encoders.encoder import Encoder

    x, y = _clusters()
    cfg = TrainConfig(**TINY)
    result = train_head(x, y, cfg)
    torch.nn.init.normal_(result.head.linear.weight, std=0.01)  # make sure it is not the identity
    out = save_model(tmp_path / "m", result, cfg, dim=DIM, data_files=["x/clinc150/train.csv"], command="fewshot train")
    weights = load_file(str(out / "weights.safetensors"))
    assert set(weights) == {"head.linear.weight", "head.linear.bias"}
    assert all(v.dtype == torch.float16 for v in weights.values())
    meta = json.loads((out / "fewshot_model.json").read_text())
    assert meta["base"] == "minilm" and meta["head"]["type"] == "residual_linear"
    card = (out / "README.md").read_text()
    assert "CC BY 3.0" in card and "Apache-2.0" in card and "fewshot train" in card
    assert "<https://creativecommons.org/licenses/by/3.0/>" in card and "<https://github.com/clinc/oos-eval>" in card
    assert "<https://www.apache.org/licenses/LICENSE-2.0>" in card
    assert "`x/clinc150/train.csv`: CLINC150 `train` split (the `train` set of `data_full.json`)" in card

    texts = ["where is my refund", "my card was stolen", "will it rain tomorrow"]
    trained = Encoder(str(out), extra_layers=())
    frozen = Encoder("minilm", extra_layers=())
    expected = head_transform(load_head(out))(frozen.encode(texts))
    assert np.allclose(trained.encode(texts), expected, atol=1e-5)
    assert np.allclose(CachedEncoder(frozen, head=load_head(out)).encode(texts), expected, atol=1e-5)
    layered = Encoder(str(out)).encode(texts)  # the head acts on the sentence embedding; layer 4 is appended
    assert layered.shape == (3, 2 * DIM)
    assert np.allclose(layered[:, :DIM] * np.sqrt(2), expected, atol=1e-5)
    assert np.allclose(layered[:, DIM:], Encoder("minilm").encode(texts)[:, DIM:], atol=1e-6)
    clf = FewShotClassifier(model=str(out)).fit(texts + ["refund please", "lost card"],
                                                ["refund", "lost_card", "weather", "refund", "lost_card"])
    assert list(clf.predict(["I want my money back"])) in (["refund"], ["lost_card"], ["weather"])


def _tiny_csv(path: Path) -> Path:
    rows = []
    for topic in ["weather", "music", "alarm", "email", "news", "recipe", "traffic", "joke"]:
        for i in range(6):
            rows.append((f"{topic} request number {i} about {topic}", f"{topic}_query"))
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_run_train_cli_writes_model(tmp_path: Path) -> None:
    data = _tiny_csv(tmp_path / "train.csv")
    out = tmp_path / "model"
    args = build_parser().parse_args([
        "train", "--data", str(data), "--out", str(out), "--steps", "6", "--n-way", "4", "--k-shot", "2",
        "--q-query", "2", "--val-fraction", "0.25", "--val-every", "3", "--val-queries", "3",
        "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--no-label-names",
        "--eval-support", str(data), "--eval-test", str(data)])
    assert run_train(args) == 0
    meta = json.loads((out / "fewshot_model.json").read_text())
    assert meta["train_config"]["steps"] == 6 and meta["train_config"]["label_names"] is False
    assert "--steps 6" in meta["command"] and "--no-label-names" in meta["command"]
    assert len(meta["results"]["evaluations"]) == 1
    assert any((tmp_path / "cache").iterdir())  # embeddings cached for the next run


@pytest.mark.parametrize("method", ["maml", "reptile"])
def test_gradient_method_folder_supports_adapt(tmp_path: Path, method: str) -> None:
    """`fewshot train --method maml|reptile` writes the inner loop too, so `adapt=method` classifies."""
    data = _tiny_csv(tmp_path / "train.csv")
    out = tmp_path / "model"
    args = build_parser().parse_args([
        "train", "--data", str(data), "--out", str(out), "--method", method, "--steps", "2", "--n-way", "3",
        "--k-shot", "2", "--q-query", "2", "--val-fraction", "0.25", "--val-every", "1", "--ensemble", "1",
        "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert run_train(args) == 0
    assert (out / "maml.json").is_file()
    df = pd.read_csv(data)
    clf = FewShotClassifier(str(out), adapt=method).fit(df.text.tolist(), df.label.tolist())
    assert (clf.predict(df.text.tolist()) == df.label.to_numpy()).mean() > 0.8


def test_cli_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _tiny_csv(tmp_path / "train.csv")
    assert main(["train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m")]) == 2
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--steps", "0"]) == 2
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--method", "nope"]) == 2
    err = capsys.readouterr().err
    assert "file not found" in err and "steps must be > 0" in err and "unknown method" in err


def test_split_needs_enough_classes() -> None:
    x, y = _clusters(n_classes=3)
    with pytest.raises(FewShotError, match="held-out"):
        train_head(x, y, TrainConfig(**TINY))


def test_matching_preset_and_flag_overrides(tmp_path: Path) -> None:
    """--preset matching gives the shipped recipe; explicit flags override it and are recorded."""
    cfg = TrainConfig.preset("matching")
    assert (cfg.method, cfg.n_way, cfg.label_names, cfg.center, cfg.lr, cfg.steps, cfg.val_every) == \
        ("matching", 64, False, False, 1e-3, 200, 20)
    with pytest.raises(FewShotError, match="unknown preset"):
        TrainConfig.preset("nope")
    from fewshot.meta.train_command import command_line, config_from_args

    args = build_parser().parse_args(["train", "--data", "a.csv", "--out", "m", "--preset", "matching",
                                      "--steps", "7", "--label-names"])
    cfg = config_from_args(args)
    assert cfg.method == "matching" and cfg.steps == 7 and cfg.label_names is True and cfg.lr == 1e-3
    cmd = command_line(args)
    assert "--preset matching" in cmd and "--steps 7" in cmd and "--label-names" in cmd and "--lr" not in cmd
    plain = build_parser().parse_args(["train", "--data", "a.csv", "--out", "m"])
    assert config_from_args(plain) == TrainConfig() and "--method prototypical" in command_line(plain)


def test_shipped_default_is_the_meta_trained_encoder() -> None:
    """models/default (loaded by FewShotClassifier()) holds MiniLM-L6's top 4 layers, trained with --encoder on
    both datasets and stored alone in float16 (--compact) over the bundled weights."""
    import re

    from fewshot.encoders.registry import resolve_model

    folder = Path(__file__).resolve().parents[1] / "models" / "default"
    if not (folder / "fewshot_model.json").is_file():
        pytest.skip("no models/default shipped")
    meta = json.loads((folder / "fewshot_model.json").read_text())
    assert meta["kind"] == "encoder" and meta["layers_only"] and meta["base"] == "minilm"
    assert meta["train_config"]["train_layers"] == 4 and "--encoder" in meta["command"] and "--compact" in meta["command"]
    assert {Path(p).parent.name for p in meta["data"]} == {"clinc150", "hwu64"}
    from fewshot.encoders.heads import MAX_WEIGHT_FILE_BYTES, load_weights, weight_files

    assert all(path.stat().st_size < 10_000_000 and path.stat().st_size <= MAX_WEIGHT_FILE_BYTES + 100_000
               for path in weight_files(folder))  # a Space takes them by plain git push
    weights = load_weights(folder)
    assert {v.dtype for v in weights.values()} == {torch.float16}
    assert {re.search(r"layer\.(\d+)\.", k).group(1) for k in weights} == {"2", "3", "4", "5"}
    assert not (folder / "model.safetensors").exists()  # the base weights are the bundled package's
    if "FEWSHOT_MODEL" not in os.environ:
        assert resolve_model(None).trained_dir == str(folder.resolve())
    card = (folder / "README.md").read_text()
    assert "CC BY 3.0" in card and "CC BY 4.0" in card and "all-mpnet-base-v2" in card and card.count("Apache-2.0") >= 2


def test_train_help_lists_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    """`fewshot train --help` names every built-in method (not a pointer to a module)."""
    from fewshot.meta.training_args import TRAIN_METHODS

    assert set(TRAIN_METHODS) == set(METHODS)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in TRAIN_METHODS) and "fewshot.train.METHODS" not in text


def test_every_trainer_runs_the_one_outer_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """train_head (every method) and meta_train go through fewshot.meta.trainer.outer_loop."""
    from fewshot.meta import trainer
    from fewshot.meta.training_args import MetaConfig

    calls: list[int] = []
    real = trainer.outer_loop

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["steps"])
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "outer_loop", counted)
    x, y = _clusters()
    for method in METHODS:
        train_head(x, y, TrainConfig(method=method, n_pairs=16, **{**TINY, "steps": 2, "ensemble": 1}))
    trainer.meta_train(x, y, MetaConfig(method="reptile", n_way=3, k_shots=(2,), q_query=2, meta_batch=2,
                                        outer_steps=3, label_names=False, validate_every=0))
    assert calls == [2] * len(METHODS) + [3]


def test_shipped_cards_are_what_the_card_writer_writes() -> None:
    """models/xfer-* cards are exactly model_card(fewshot_model.json); models/default adds a section after it."""
    from fewshot.meta.model_card import model_card

    root = Path(__file__).resolve().parents[1] / "models"
    for name in ("xfer-no-hwu64", "xfer-no-clinc150", "default"):
        if not (root / name / "fewshot_model.json").is_file():
            pytest.skip(f"no models/{name} shipped")
        card = model_card(json.loads((root / name / "fewshot_model.json").read_text()))
        shipped = (root / name / "README.md").read_text()
        assert shipped == card if name != "default" else shipped.startswith(card)


def test_card_gives_each_licence_and_source_address() -> None:
    """Attribution: a card names the licence address and source of each dataset and encoder, whether the data were
    changed, and which standard split each known training file is; an unknown file is listed as given."""
    from fewshot.meta.model_card import model_card

    meta = json.loads((Path(__file__).resolve().parents[1] / "models" / "default" / "fewshot_model.json").read_text())
    card = model_card({**meta, "data": [*meta["data"], "mine/intents.csv"]})
    data = card[card.index("## Data and licences"):card.index("## Method")]
    for address in ("https://creativecommons.org/licenses/by/3.0/", "https://creativecommons.org/licenses/by/4.0/",
                    "https://github.com/clinc/oos-eval", "https://github.com/xliuhw/NLU-Evaluation-Data",
                    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
                    "https://huggingface.co/sentence-transformers/all-mpnet-base-v2",
                    "https://www.apache.org/licenses/LICENSE-2.0"):
        assert f"<{address}>" in data
    assert "CLINC150" in data and "used as published, as `text,label` rows" in data
    assert "HWU64" in data and "not as published" in data and "lower-cased" in data
    assert "`../shared/data/clinc150/train.csv`: CLINC150 `train` split (the `train` set of `data_full.json`)" in data
    assert "`../shared/data/hwu64/train.csv`: HWU64 `train` split" in data
    assert "  - `mine/intents.csv`\n" in data
    head = json.loads((Path(__file__).resolve().parents[1] / "models" / "xfer-no-clinc150" / "fewshot_model.json")
                      .read_text())
    head_data = model_card(head)
    head_data = head_data[head_data.index("## Data and licences"):head_data.index("## Method")]
    assert "by/4.0/" in head_data and "by/3.0/" not in head_data and "all-mpnet-base-v2" not in head_data


def test_card_names_the_base_encoder_it_was_trained_on() -> None:
    """A head trained on mpnet embeddings says so (name, width, licence); MiniLM cards are unchanged."""
    from fewshot.meta.model_card import model_card

    meta = json.loads((Path(__file__).resolve().parents[1] / "models" / "xfer-no-hwu64" / "fewshot_model.json")
                      .read_text())
    mpnet = model_card({**meta, "base": "mpnet", "head": {**meta["head"], "dim": 768}})
    assert "on frozen mpnet-base" in mpnet and "768 x 768" in mpnet and "all-mpnet-base-v2" in mpnet
    assert "MiniLM" not in mpnet
    minilm = model_card(meta)
    assert "on frozen MiniLM-L6" in minilm and "384 x 384" in minilm


def test_encoder_card_names_every_training_term() -> None:
    """The encoder card's method names each loss term in use and how batches were drawn, and nothing unused."""
    from fewshot.meta.model_card import model_card

    meta = json.loads((Path(__file__).resolve().parents[1] / "models" / "default" / "fewshot_model.json").read_text())
    cfg = meta["train_config"]
    every = model_card({**meta, "train_config": {**cfg, "batch_groups": 4, "unknown_weight": 1.0, "selfsup_weight": 1.0,
                                                 "augment_weight": 0.2, "pairs_weight": 1.0}})
    method = every[every.index("## Method"):every.index("## Command")]
    for words in ("drawn as 4 groups of neighbouring labels", "one per group", "unknown 1.0", "selfsup 1.0",
                  "SimCSE", "augment 0.2", "EDA copy", "pairs 1.0", "general sentence pairs"):
        assert words in method
    plain = model_card({**meta, "train_config": {**cfg, "batch_groups": 0, "unknown_weight": 0.0, "selfsup_weight": 0.0,
                                                 "augment_weight": 0.0, "pairs_weight": 0.0}})
    method = plain[plain.index("## Method"):plain.index("## Command")]
    for words in ("groups of neighbouring", "unknown", "selfsup", "augment", "pairs"):
        assert words not in method


def test_card_scores_the_folder_as_the_product_does_and_judges_in_domain_by_labels(tmp_path: Path) -> None:
    """The card's numbers are what `fewshot evaluate --model FOLDER` gets (Encoder(folder), appended layers on);
    an evaluation is in-domain when its labels were trained on, whatever folder its files sit in."""
    from fewshot.encoders.encoder import Encoder
    from fewshot.meta.data import evaluate_csv

    data = _tiny_csv(tmp_path / "train.csv")
    other = tmp_path / "other.csv"  # same folder as the training file, labels never trained on
    pd.DataFrame({"text": [f"{w} thing number {i}" for w in ("red", "green", "blue") for i in range(3)],
                  "label": [w for w in ("red", "green", "blue") for _ in range(3)]}).to_csv(other, index=False)
    out = tmp_path / "model"
    args = build_parser().parse_args([
        "train", "--data", str(data), "--out", str(out), "--steps", "3", "--n-way", "4", "--k-shot", "2",
        "--q-query", "2", "--val-fraction", "0.25", "--val-every", "3", "--val-queries", "3", "--ensemble", "1",
        "--cache-dir", str(tmp_path / "cache"), "--no-progress",
        "--eval-support", str(data), "--eval-test", str(data), "--eval-support", str(other), "--eval-test", str(other)])
    assert run_train(args) == 0
    meta = json.loads((out / "fewshot_model.json").read_text())
    same, cross = meta["results"]["evaluations"]
    assert (same["labels"], same["labels_trained"], cross["labels"], cross["labels_trained"]) == (8, 8, 3, 0)
    card = (out / "README.md").read_text()
    assert "| in-domain (8 of 8 labels trained) |" in card and "| cross-dataset |" in card
    assert "scored as a user gets them" in card
    df = pd.read_csv(other)
    part = (df.text.tolist(), df.label.tolist())
    assert cross["trained"] == evaluate_csv(Encoder(str(out)), part, part)  # what `fewshot evaluate` computes
    assert cross["frozen"] == evaluate_csv(Encoder("minilm"), part, part)


def test_weights_are_as_readable_as_the_other_files(tmp_path: Path) -> None:
    """safetensors writes 0600; the folder's weights get the mode its other files get under the umask."""
    x, y = _clusters()
    result = train_head(x, y, TrainConfig(**TINY))
    old = os.umask(0o022)
    try:
        out = save_model(tmp_path / "m", result, TrainConfig(**TINY), dim=DIM)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes["weights.safetensors"] == modes["fewshot_model.json"] == 0o644, modes


def test_a_bad_base_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _tiny_csv(tmp_path / "train.csv")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--base", str(tmp_path / "nosuch"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--base" in err and "--model" not in err and not (tmp_path / "m").exists()
