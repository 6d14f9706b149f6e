"""The one outer training loop, and the two trainers that drive it.

:func:`outer_loop` is the loop every meta-training method runs through: zero the gradients, let the
method's step produce them (a loss to back-propagate, or gradients it wrote itself, such as Reptile's
``θ − θ̃``), add the L2 pull towards the initial weights (L2-SP, Li et al. 2018, "Explicit Inductive Bias
for Transfer Learning with Convolutional Networks"), take one optimiser step; every ``validate_every``
steps (and at the last) score held-out episodes and keep the best weights (step 0 competes).

Three trainers call it:

- :func:`train_head` (``fewshot train``): a residual head ``x + W x + b`` on frozen embeddings, any method
  of :data:`METHODS` (prototypical, matching, contrastive, maml, fomaml, reptile), held-out *classes*
  scored with the classifier's own default rule, an ensemble of seeds averaged. Transfer needs restraint:
  a low learning rate, the L2 pull to the identity, many-way episodes, label names as support examples,
  the classifier's centring inside the loss and early stopping on held-out classes. The shipped
  ``models/default`` and ``models/xfer-*`` use ``--preset matching`` (:attr:`TrainConfig.PRESETS`).
- :func:`meta_train`: the MAML family over a learned transform, scale and inner learning rates
  (:mod:`fewshot.meta.maml`), meta-batches of tasks vmapped, validation on query accuracy; the result is
  the inner loop that ``FewShotClassifier(model=FOLDER, adapt=METHOD)`` runs at fit time;
- :func:`fewshot.meta.distill.train_encoder` (``fewshot train --encoder``): the encoder's top transformer
  layers, distilled from a teacher plus episodic terms, checkpointed every few steps so that an
  interrupted run resumes exactly (:class:`LoopState`).
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..encoders.heads import build_head
from ..errors import FewShotError
from ..losses import ContrastiveLoss, MatchingLoss, PrototypicalLoss, center_episode
from .adapted import MetaModel
from .data import head_transform
from .episodes import EpisodeSampler, sample_balanced_pairs
from .maml import (
    SHARED_KEYS,
    Params,
    TaskBatch,
    evaluate_tasks,
    head_loss,
    init_params,
    meta_gradient,
    one_hot,
    prototype_head,
    query_loss_after_adaptation,
    reptile_adapt,
    reptile_pseudo_gradient,
    sample_batch,
)
from .training_args import META_METHODS, MetaConfig, TrainConfig, head_config


# ---- the one outer loop ----------------------------------------------------------------------------
_P = ParamSpec("_P")
_R = TypeVar("_R")


def keeps_torch_rng(train: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``train`` on a fork of torch's global CPU generator (``torch.random.fork_rng``), so that what it
    seeds and draws (initialisation, dropout) leaves the caller's generator as it was; results are unchanged.

    A decorated trainer seeds with ``torch.default_generator.manual_seed``: ``torch.manual_seed`` would also
    reseed the caller's CUDA generators, which the fork does not give back (training runs on the CPU).
    """

    @functools.wraps(train)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with torch.random.fork_rng(devices=[]):
            return train(*args, **kwargs)

    return run


StepFn = Callable[[int], tuple[Tensor | None, dict[str, float]]]
"""``step(i) -> (loss or None, metrics)``: one outer step's work. The loop back-propagates ``loss`` when it
requires grad; otherwise the step has written the gradients of the optimised parameters itself."""


@dataclass
class LoopState:
    """Where :func:`outer_loop` stands after ``step`` steps: what a checkpoint must hold besides the weights,
    the optimiser and the random generators (which the trainer saves), so that a resumed run continues
    exactly where the interrupted one was."""

    step: int
    best: Any
    best_step: int
    best_score: float | None
    history: list[dict[str, float]]


@dataclass
class LoopResult:
    """What :func:`outer_loop` kept: the snapshot of the best validated step (the last step when nothing is
    validated), its step and score, the logged history and the seconds the steps took."""

    best: Any
    best_step: int
    best_score: float | None
    history: list[dict[str, float]]
    seconds: float


def outer_loop(step: StepFn, optimizer: torch.optim.Optimizer, *, steps: int, snapshot: Callable[[], Any],
               validate: Callable[[], float] | None = None, validate_every: int = 0,
               initial_score: float | None = None,
               pull: Iterable[tuple[Tensor, Tensor, float]] = (), score_key: str = "val_accuracy",
               log_every: int = 0, callback: Callable[[int, dict[str, float]], None] | None = None,
               progress: str | None = None, resume: LoopState | None = None,
               checkpoint: Callable[[LoopState], None] | None = None, checkpoint_every: int = 0) -> LoopResult:
    """Run ``steps`` outer steps of any meta-training method; see the module docstring.

    ``snapshot()`` copies the weights worth keeping; ``validate()`` scores them (higher is better), at step 0
    (unless ``initial_score`` is given) and every ``validate_every`` steps and at the last one; the best
    snapshot wins, ties keep the earlier. ``pull``: ``(parameter, anchor, coefficient)`` triples, each adding
    ``coefficient * (parameter − anchor)`` to the parameter's gradient before the optimiser step. History:
    step 0, every validated step and every ``log_every``-th step. ``callback(step, record)`` sees every step;
    ``progress`` (a description) shows a progress bar on stderr.

    Resumable: every ``checkpoint_every`` steps ``checkpoint(state)`` is called with the loop's
    :class:`LoopState` (the caller saves it with its weights, optimiser and random states); passing that
    state back as ``resume`` (after restoring the rest) continues from its step without validating step 0 again.
    """
    pull = [(p, p0, coef) for p, p0, coef in pull if coef]
    history: list[dict[str, float]] = []
    best_score: float | None = None
    first = 1
    if resume is not None:
        history, best, best_step, best_score = list(resume.history), resume.best, resume.best_step, resume.best_score
        first = resume.step + 1
    else:
        if validate is not None:
            best_score = validate() if initial_score is None else initial_score
            history.append({"step": 0, score_key: best_score})
        best, best_step = snapshot(), 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=first - 1, desc=progress, unit="step", file=sys.stderr, mininterval=0.5)
    start = time.perf_counter()
    try:
        for i in range(first, steps + 1):
            optimizer.zero_grad()
            loss, metrics = step(i)
            if loss is not None and loss.requires_grad:
                loss.backward()
            for p, p0, coef in pull:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad.add_(p.detach() - p0, alpha=coef)
            optimizer.step()
            record: dict[str, float] = {"step": i, **metrics}
            if validate is not None and validate_every > 0 and (i % validate_every == 0 or i == steps):
                score = validate()
                record[score_key] = score
                if best_score is None or score > best_score:
                    best, best_step, best_score = snapshot(), i, score
                if bar is not None:
                    shown = {"loss": f"{metrics['loss']:.3f}"} if "loss" in metrics else {}
                    bar.set_postfix(**shown, val=f"{score:.4f}", best=f"{best_score:.4f}@{best_step}")
            if score_key in record or (log_every and i % log_every == 0):
                history.append(record)
            if callback is not None:
                callback(i, record)
            if checkpoint is not None and checkpoint_every > 0 and i % checkpoint_every == 0 and i < steps:
                checkpoint(LoopState(i, best, best_step, best_score, history))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    if validate is None:
        best, best_step = snapshot(), steps
    return LoopResult(best, best_step, best_score, history, seconds)


# ---- methods of `fewshot train`: one outer step each ------------------------------------------------
@dataclass
class TrainData:
    """Frozen embeddings of the training rows (training classes only) and what samples from them.

    ``labels`` are class ids into ``classes``; ``names`` (one row per class) are the embeddings of the
    label names, or ``None``. ``episodes`` draws N-way K-shot episodes (:mod:`fewshot.meta.episodes`);
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
``data.embeddings`` rows and return a scalar loss. When the loss requires grad the loop back-propagates
it; otherwise the method has already written the (meta-)gradient into ``p.grad`` of the head's parameters
(Reptile's ``θ − θ̃``). Either way :func:`outer_loop` then adds the identity decay, takes one Adam step,
validates and keeps the best head.
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
    i, j, y = sample_balanced_pairs(data.labels, config.n_pairs, seed=int(data.rng.integers(2**31)),
                           embeddings=data.embeddings.numpy(), hard_fraction=config.hard_fraction)
    z = F.normalize(head(data.embeddings[torch.from_numpy(np.concatenate([i, j]))]), dim=-1)
    return ContrastiveLoss(config.margin)(z[: len(i)], z[len(i):], torch.from_numpy(y))


def _maml_step(head: nn.Module, data: TrainData, config: TrainConfig, *, first_order: bool) -> Tensor:
    """MAML / FOMAML over the head: the query loss after :func:`fewshot.meta.maml.adapt_head`.

    The head is the feature transform θ; features are ``normalize(head(x))`` centred on the support mean,
    the per-task classifier starts at the prototypes (Proto-MAML) and takes ``config.inner_steps`` steps of
    ``config.inner_lr`` at scale ``1 / config.temperature``. The returned loss keeps the graph through the
    inner loop (second order; torch.func's ``grad`` composes with ``backward``); FOMAML detaches the inner
    gradients.
    """
    scalars = {"log_scale": torch.tensor(math.log(1.0 / config.temperature)),
               "log_lr": torch.full((config.inner_steps,), math.log(config.inner_lr))}
    s, sy, q, qy, n_way = episode_embeddings(head, data, config)
    zs, zq = center_episode(F.normalize(s, dim=-1), F.normalize(q, dim=-1))
    loss, _ = query_loss_after_adaptation(scalars, zs, one_hot(sy.numpy(), n_way), zq, one_hot(qy.numpy(), n_way),
                                          steps=config.inner_steps, first_order=first_order)
    return loss


def maml_step(head: nn.Module, data: TrainData, config: TrainConfig) -> Tensor:
    """``--method maml``: Finn, Abbeel & Levine 2017, second order (see :func:`_maml_step`)."""
    return _maml_step(head, data, config, first_order=False)


def fomaml_step(head: nn.Module, data: TrainData, config: TrainConfig) -> Tensor:
    """``--method fomaml``: first-order MAML, Finn et al. 2017 sec. 5.2 (see :func:`_maml_step`)."""
    return _maml_step(head, data, config, first_order=True)


def reptile_step(head: nn.Module, data: TrainData, config: TrainConfig) -> Tensor:
    """``--method reptile`` (Nichol et al. 2018): :func:`fewshot.meta.maml.reptile_adapt` on the head's
    weights and a prototype-initialised classifier, then ``θ − θ̃`` written into ``p.grad``; returns the
    detached support loss before adaptation."""
    theta = {k: v.detach() for k, v in head.named_parameters()}
    ep = data.episodes.sample()
    rows = data.embeddings[torch.from_numpy(ep.support)]
    ys = torch.from_numpy(ep.support_y)
    if config.label_names and data.names is not None:
        rows = torch.cat([rows, data.names[torch.from_numpy(ep.classes.astype(np.int64))]])
        ys = torch.cat([ys, torch.arange(len(ep.classes))])
    y1h = one_hot(ys.numpy(), len(ep.classes))
    scale = torch.tensor(1.0 / config.temperature)

    def features(p: Params) -> Tensor:
        h = F.normalize(functional_call(head, {k: p[k] for k in theta}, (rows,)), dim=-1)
        return F.normalize(h - h.mean(dim=0), dim=-1)

    z0 = features(theta)
    first = head_loss(prototype_head(z0, y1h), z0, y1h, scale)
    fast = reptile_adapt(theta, features, y1h, steps=config.inner_steps,
                         lrs=torch.full((config.inner_steps,), config.reptile_inner_lr), scale=scale)
    for name, p in head.named_parameters():
        p.grad = (theta[name] - fast[name]).detach().clone()
    return first.detach()


METHODS: dict[str, MethodFn] = {
    "prototypical": prototypical_step,  # Snell et al. 2017
    "matching": matching_step,  # Vinyals et al. 2016 (the shipped models' recipe)
    "contrastive": contrastive_step,  # Hadsell et al. 2006
    "maml": maml_step,  # Finn et al. 2017, second order
    "fomaml": fomaml_step,  # first-order MAML
    "reptile": reptile_step,  # Nichol et al. 2018
}
"""Meta-training methods by name; see :data:`MethodFn` for the contract. Other modules may add entries."""


def get_method(name: str) -> MethodFn:
    """The method called ``name``; :class:`FewShotError` naming the known ones otherwise."""
    if name not in METHODS:
        raise FewShotError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name]


# ---- held-out classes, scored with the classifier's own rule ----------------------------------------
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
        from ..config import ClassifierConfig
        from ..rules import fit_prototype_head

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


# ---- `fewshot train`: a head on frozen embeddings -----------------------------------------------------
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


@keeps_torch_rng
def train_head(embeddings: np.ndarray, labels: Sequence[str], config: TrainConfig, *,
               name_embeddings: dict[str, np.ndarray] | None = None, progress: bool = False) -> TrainResult:
    """Meta-train a head on frozen ``embeddings`` (one row per label in ``labels``); see the module doc.

    ``name_embeddings`` maps a label to the embedding of its name (used when ``config.label_names``).
    Deterministic for a given ``config.seed``; torch's global generator is left as it was.
    """
    config.validate()
    method = get_method(config.method)
    labels = list(labels)
    if len(labels) != len(embeddings):
        raise FewShotError(f"{len(embeddings)} embeddings but {len(labels)} labels; expected one label per row")
    train_classes, val_classes = split_classes(labels, config.val_fraction, config.seed)
    torch.default_generator.manual_seed(config.seed)
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
        torch.default_generator.manual_seed(seed)
        desc = f"training {member + 1}/{config.ensemble} ({config.method})" if progress else None
        members.append(_train_member(data, validation, config, method, frozen, emb.shape[1], desc))
    head = build_head(head_config(config, emb.shape[1]))
    states = [m.best for m in members]
    head.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
    head.eval()
    best_val = validation.accuracy(head_transform(head))
    best_steps = [m.best_step for m in members]
    if best_val <= frozen:  # the average does not help on held-out classes: keep the frozen encoder
        head, best_val, best_steps = build_head(head_config(config, emb.shape[1])).eval(), frozen, [0] * len(members)
    history = [{"member": i, **h} for i, m in enumerate(members) for h in m.history]
    return TrainResult(head, best_steps, frozen, best_val, history, train_classes, val_classes,
                       member_val=[float(m.best_score) for m in members])


def _train_member(data: TrainData, validation: Validation, config: TrainConfig, method: MethodFn, frozen: float,
                  dim: int, progress: str | None) -> LoopResult:
    """Train one head from the identity through :func:`outer_loop`; its best step on the held-out classes
    is kept (step 0, the frozen encoder, competes)."""
    head = build_head(head_config(config, dim))
    init = [p.detach().clone() for p in head.parameters()]

    def step(_: int) -> tuple[Tensor, dict[str, float]]:
        head.train()
        loss = method(head, data, config)
        return loss, {"loss": float(loss.detach())}

    def validate() -> float:
        head.eval()
        return validation.accuracy(head_transform(head))

    return outer_loop(step, torch.optim.Adam(head.parameters(), lr=config.lr), steps=config.steps,
                      snapshot=lambda: copy.deepcopy(head.state_dict()), validate=validate,
                      validate_every=config.val_every, initial_score=frozen,
                      pull=[(p, p0, 2 * config.identity_decay) for p, p0 in zip(head.parameters(), init)],
                      score_key="val_accuracy", progress=progress)


def inner_loop_for_trained_head(config: TrainConfig, dim: int) -> MetaModel:
    """The fixed inner loop that ``fewshot train --method maml|fomaml|reptile`` trained with, as a
    :class:`MetaModel` over the *trained head's* outputs (identity transform: the transform is the head
    saved in ``weights.safetensors``). Written into that folder so that ``adapt=config.method`` works there."""
    if config.method not in META_METHODS:
        raise FewShotError(f"method must be one of {META_METHODS}, got {config.method!r}")
    lr = config.reptile_inner_lr if config.method == "reptile" else config.inner_lr
    meta = MetaConfig(method=config.method, inner_steps=config.inner_steps, inner_lr=lr,
                      init_scale=1.0 / config.temperature, learn_inner_lr=False, learn_scale=False)
    return MetaModel(init_params(dim, meta), meta, {"driver": "fewshot.meta.trainer.train_head"})


# ---- the MAML family over a learned transform -------------------------------------------------------
def _labels_vectors_check(labels: np.ndarray, label_vectors: Mapping[str, np.ndarray] | None) -> None:
    if label_vectors is None:
        return
    missing = sorted(set(map(str, np.unique(labels))) - set(label_vectors))
    if missing:
        raise FewShotError(f"label_vectors lacks {len(missing)} label(s), e.g. {missing[:3]}; pass one vector "
                           "per label (the encoded label name) or set label_names=False")


@keeps_torch_rng
def meta_train(x: np.ndarray, labels: Sequence[str] | np.ndarray, config: MetaConfig, *,
               label_vectors: Mapping[str, np.ndarray] | None = None,
               val_x: np.ndarray | None = None, val_labels: Sequence[str] | np.ndarray | None = None,
               callback: Callable[[int, dict[str, float]], None] | None = None,
               progress: bool = False) -> MetaModel:
    """Meta-train θ on episodes drawn from ``(x, labels)`` (cached unit-vector embeddings).

    ``label_vectors``: encoded label name per label (needed when ``config.label_names``). With ``val_x`` /
    ``val_labels`` (disjoint labels are best), every ``validate_every`` steps the query accuracy on fixed
    validation episodes decides which θ is kept. ``callback(step, metrics)`` sees progress. Seeded by
    ``config.seed``; torch's global generator is left as it was.
    """
    config.validate()
    labels = np.asarray(labels).astype(str)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(labels):
        raise FewShotError(f"x must be (n, dim) with one row per label; got x {x.shape} and {len(labels)} labels")
    names = label_vectors if config.label_names else None
    if config.label_names and label_vectors is None:
        raise FewShotError("config.label_names=True needs label_vectors (label -> encoded name); "
                           "pass them or set label_names=False")
    _labels_vectors_check(labels, names)
    torch.default_generator.manual_seed(config.seed)
    params = {k: v.requires_grad_(False) for k, v in init_params(x.shape[1], config).items()}
    trainable = list(SHARED_KEYS) + (["log_lr"] if config.learn_inner_lr and config.method != "reptile" else [])
    if not config.learn_scale:
        trainable.remove("log_scale")
    leaves = {k: params[k].clone().requires_grad_(True) for k in trainable}
    opt_cls = torch.optim.Adam if config.outer_optimizer == "adam" else torch.optim.SGD
    groups = [{"params": [v for k, v in leaves.items() if k.startswith("transform")], "lr": config.outer_lr},
              {"params": [v for k, v in leaves.items() if not k.startswith("transform")], "lr": config.scalar_lr}]
    opt = opt_cls([g for g in groups if g["params"]])
    samplers = [EpisodeSampler(labels, n_way=config.n_way, k_shot=k, q_query=config.q_query, seed=config.seed + i)
                for i, k in enumerate(config.k_shots)]
    val_batches: list[TaskBatch] = []
    if val_x is not None and val_labels is not None and config.validate_every > 0:
        val_labels = np.asarray(val_labels).astype(str)
        _labels_vectors_check(val_labels, names)
        n_val = min(config.n_way, len(np.unique(val_labels)))
        for i, k in enumerate(config.k_shots):
            vs = EpisodeSampler(val_labels, n_way=n_val, k_shot=k, q_query=config.q_query, seed=config.val_seed + i)
            val_batches.append(sample_batch(vs, np.asarray(val_x, dtype=np.float32),
                                            max(1, config.val_episodes // len(config.k_shots)), names))

    def current() -> Params:
        return {k: (leaves[k].detach().clone() if k in leaves else v.detach().clone()) for k, v in params.items()}

    def validate() -> float:
        p = current()
        return float(np.mean([evaluate_tasks(p, b, config) for b in val_batches]))

    def step(i: int) -> tuple[None, dict[str, float]]:
        batch = sample_batch(samplers[(i - 1) % len(samplers)], x, config.meta_batch, names)
        p = {k: leaves.get(k, v) for k, v in params.items()}
        metrics: dict[str, float] = {}
        if config.method == "reptile":
            g, _ = reptile_pseudo_gradient({k: v.detach() for k, v in p.items()}, batch.xs, batch.ys,
                                           steps=config.inner_steps)
        else:
            g, (loss, acc) = meta_gradient(p, batch.xs, batch.ys, batch.xq, batch.yq, steps=config.inner_steps,
                                           first_order=config.first_order)
            metrics = {"loss": float(loss), "acc": float(acc)}
        for k, leaf in leaves.items():
            leaf.grad = g[k].detach().clone()
        return None, metrics

    zero = {k: torch.zeros_like(v) for k, v in leaves.items()}
    result = outer_loop(step, opt, steps=config.outer_steps, snapshot=current,
                        validate=validate if val_batches else None, validate_every=config.validate_every,
                        pull=[(v, zero[k], config.transform_weight_decay) for k, v in leaves.items()
                              if k.startswith("transform")],
                        score_key="val_acc", log_every=10, callback=callback,
                        progress=f"meta-training ({config.method})" if progress else None)
    info = {"seconds": result.seconds, "best_val_acc": result.best_score, "history": result.history,
            "n_train_rows": int(len(x)), "n_train_labels": int(len(np.unique(labels)))}
    return MetaModel(result.best, config, info)


def train_to_folder(method: str, x: np.ndarray, labels: Sequence[str] | np.ndarray, output: str | Path, *,
                    label_vectors: Mapping[str, np.ndarray] | None = None, val_x: np.ndarray | None = None,
                    val_labels: Sequence[str] | np.ndarray | None = None, base: str = "minilm",
                    callback: Callable[[int, dict[str, float]], None] | None = None,
                    **options: Any) -> MetaModel:
    """Meta-train the MAML family on embeddings (:func:`meta_train`) and write a model folder usable as
    ``FewShotClassifier(model=output, adapt=method)``.

    ``x``: unit-vector embeddings of the training texts (one row per label in ``labels``);
    ``label_vectors``: encoded label names (``label_names=False`` in ``options`` to go without);
    ``options``: any :class:`MetaConfig` field. Returns the trained :class:`MetaModel`.
    """
    from .model_card import write_model_folder

    if method not in META_METHODS:
        raise FewShotError(f"method must be one of {META_METHODS}, got {method!r}")
    known = {f.name for f in fields(MetaConfig)}
    bad = sorted(set(options) - known)
    if bad:
        raise FewShotError(f"unknown meta-training option(s) {bad}; expected some of {sorted(known - {'method'})}")
    config = MetaConfig.from_dict({**options, "method": method})
    model = meta_train(x, labels, config, label_vectors=label_vectors, val_x=val_x, val_labels=val_labels,
                       callback=callback)
    write_model_folder(output, model, base=base)
    return model
