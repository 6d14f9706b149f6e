"""Gradient-based meta-learning on frozen sentence embeddings: MAML, first-order MAML and Reptile.

What is learned, and what is adapted per task (one *task* = one N-way K-shot episode, or the user's labels):

- a **feature transform** ``h(x) = normalize(x + x Wᵀ + b)`` on the 384-d embedding, starting as the
  identity (``W = 0, b = 0``) and learned by the outer loop only, as in ANIL (Raghu et al. 2020, "Rapid
  Learning or Feature Reuse? Towards Understanding the Effectiveness of MAML");
- a per-task **linear softmax head** that starts at the class prototypes, as in Proto-MAML (Triantafillou et
  al. 2020, "Meta-Dataset"), cosine variant: ``W₀ = normalize(mean of the label's centred features)``,
  ``b₀ = 0``, logits ``= scale · z W̃ᵀ + b``; the inner loop takes a few plain gradient steps on it;
- the logit ``scale`` and one inner learning rate per step (learned per-step rates: Antoniou et al. 2019,
  "How to train your MAML").

Algorithms (``MetaConfig.method``):

- ``"maml"``: Finn, Abbeel & Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
  Networks": ``θ ← θ − β ∇θ Σᵢ Lᵢ^query(Uᵢ(θ))``, differentiating *through* the inner steps ``Uᵢ`` (true
  second-order gradient, computed with :func:`torch.func.grad` nested in itself and :func:`torch.func.vmap`
  over the tasks of a meta-batch);
- ``"fomaml"``: the first-order approximation of the same paper (section 5.2): the inner gradients are
  treated as constants, which drops every Hessian-vector term;
- ``"reptile"``: Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms":
  run SGD on each task starting from θ, giving θ̃ᵢ, then move ``θ ← θ + ε (mean θ̃ᵢ − θ)`` (fed to the
  outer optimiser as the pseudo-gradient ``θ − mean θ̃ᵢ``). Here the inner loop adapts the transform and the
  scale as well as the head (otherwise the shared parameters would never move).

At fit time (``FewShotClassifier(model=FOLDER, adapt="maml")``) the same inner loop runs once on the
support set (label names included): :func:`fit_adapted_head`. Weights live in the model folder as
``maml.safetensors`` (the tensors of :func:`init_params`) and ``maml.json`` (the :class:`MetaConfig`).

A small learn2learn-style :class:`Learner` (``clone()`` / ``adapt(loss)``) is included for writing one's own
loops with ordinary autograd.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .episodes import EpisodeSampler
from .errors import FewShotError

Params = dict[str, torch.Tensor]

ADAPT_METHODS = ("none", "maml", "fomaml", "reptile")
META_METHODS = ("maml", "fomaml", "reptile")
MAML_CONFIG = "maml.json"
MAML_WEIGHTS = "maml.safetensors"
SHARED_KEYS = ("transform.weight", "transform.bias", "log_scale")  # what Reptile's inner loop also adapts
PAPERS = {
    "maml": "Finn, Abbeel & Levine 2017, Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
    "fomaml": "Finn, Abbeel & Levine 2017 (first-order approximation, sec. 5.2)",
    "reptile": "Nichol, Achiam & Schulman 2018, On First-Order Meta-Learning Algorithms",
    "proto_maml": "Triantafillou et al. 2020, Meta-Dataset (Proto-MAML head initialisation)",
    "anil": "Raghu et al. 2020, Rapid Learning or Feature Reuse? (head-only inner loop)",
    "lslr": "Antoniou, Edwards & Storkey 2019, How to train your MAML (per-step inner learning rates)",
}


@dataclass
class MetaConfig:
    """Meta-training settings (saved as ``maml.json`` next to the weights)."""

    method: str = "maml"  # "maml" | "fomaml" | "reptile"
    n_way: int = 20
    k_shots: tuple[int, ...] = (5, 10)  # meta-batches cycle through these shot counts
    q_query: int = 5
    meta_batch: int = 8  # tasks per outer step (vmapped)
    outer_steps: int = 300
    outer_lr: float = 1e-3  # for the transform
    scalar_lr: float = 1e-2  # for the logit scale and the inner learning rates (log-parametrised)
    outer_optimizer: str = "adam"  # "adam" | "sgd" (sgd with Reptile = the paper's plain interpolation)
    transform_weight_decay: float = 1e-4  # L2 on the transform, pulls it to the identity
    inner_steps: int = 5
    inner_lr: float = 0.5  # initial value; learned per step for maml/fomaml, fixed for reptile
    learn_inner_lr: bool = True
    init_scale: float = 10.0  # logit scale = 1 / temperature
    learn_scale: bool = True
    label_names: bool = True  # the label-name embedding is one extra support example (as the classifier does)
    validate_every: int = 50  # keep the parameters with the best validation accuracy (0: keep the last)
    val_episodes: int = 32
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`FewShotError` for settings that cannot work."""
        if self.method not in META_METHODS:
            raise FewShotError(f"method must be one of {META_METHODS}, got {self.method!r}")
        if self.outer_optimizer not in ("adam", "sgd"):
            raise FewShotError(f"outer_optimizer must be 'adam' or 'sgd', got {self.outer_optimizer!r}")
        for name in ("n_way", "q_query", "meta_batch", "inner_steps"):
            if getattr(self, name) < 1 or (name == "n_way" and self.n_way < 2):
                raise FewShotError(f"{name} must be >= {2 if name == 'n_way' else 1}, got {getattr(self, name)!r}")
        if self.outer_steps < 0:
            raise FewShotError(f"outer_steps must be >= 0, got {self.outer_steps!r}")
        if not self.k_shots or min(self.k_shots) < 1:
            raise FewShotError(f"k_shots must be a non-empty list of shot counts >= 1, got {self.k_shots!r}")
        for name in ("outer_lr", "scalar_lr", "inner_lr", "init_scale"):
            if not getattr(self, name) > 0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def first_order(self) -> bool:
        return self.method == "fomaml"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetaConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "k_shots" in kwargs:
            kwargs["k_shots"] = tuple(kwargs["k_shots"])
        return cls(**kwargs)


# ---- the model, written functionally over a dict of tensors ------------------------------------------
def init_params(dim: int, config: MetaConfig) -> Params:
    """θ at the start of meta-training: identity transform, ``init_scale``, ``inner_lr`` at every step."""
    return {
        "transform.weight": torch.zeros(dim, dim),
        "transform.bias": torch.zeros(dim),
        "log_scale": torch.tensor(math.log(config.init_scale)),
        "log_lr": torch.full((config.inner_steps,), math.log(config.inner_lr)),
    }


def transform(params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Residual linear transform, then unit length: ``normalize(x + x Wᵀ + b)``."""
    h = x + x @ params["transform.weight"].T + params["transform.bias"]
    return torch.nn.functional.normalize(h, dim=-1)


def centred_features(params: Mapping[str, torch.Tensor], xs: torch.Tensor, xq: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Transformed support (and query) features centred on the support mean, unit length; and that mean."""
    hs = transform(params, xs)
    center = hs.mean(dim=0)
    zs = torch.nn.functional.normalize(hs - center, dim=-1)
    zq = None if xq is None else torch.nn.functional.normalize(transform(params, xq) - center, dim=-1)
    return zs, zq, center


def prototype_head(zs: torch.Tensor, ys: torch.Tensor) -> Params:
    """Proto-MAML initialisation (cosine variant): unit-length class means, zero bias. ``ys`` is one-hot."""
    protos = torch.nn.functional.normalize(ys.T @ zs, dim=-1)
    return {"weight": protos, "bias": torch.zeros(ys.shape[1], dtype=zs.dtype)}


def head_logits(head: Mapping[str, torch.Tensor], z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return scale * (z @ head["weight"].T) + head["bias"]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against one-hot (or soft) targets; shape-generic so it vmaps."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def head_loss(head: Mapping[str, torch.Tensor], z: torch.Tensor, y: torch.Tensor, scale: torch.Tensor
              ) -> torch.Tensor:
    return soft_cross_entropy(head_logits(head, z, scale), y)


def adapt_head(params: Mapping[str, torch.Tensor], zs: torch.Tensor, ys: torch.Tensor, *, steps: int,
               first_order: bool = False) -> Params:
    """The MAML/FOMAML inner loop: ``steps`` gradient steps on the head from the prototype initialisation.

    Second order (default): the inner gradients stay differentiable w.r.t. θ (``torch.func.grad`` nests).
    ``first_order``: they are detached, which is FOMAML (Finn et al. 2017, sec. 5.2).
    """
    head = prototype_head(zs, ys)
    scale = params["log_scale"].exp()
    lrs = params["log_lr"].exp()
    for i in range(steps):
        g = grad(head_loss)(head, zs, ys, scale)
        if first_order:
            g = {k: v.detach() for k, v in g.items()}
        head = {k: head[k] - lrs[i] * g[k] for k in head}
    return head


def maml_task_loss(params: Mapping[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor,
                   yq: torch.Tensor, *, steps: int, first_order: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Query loss after adapting on the support, and query accuracy (aux). ``ys``/``yq`` are one-hot."""
    zs, zq, _ = centred_features(params, xs, xq)
    return query_loss_after_adaptation(params, zs, ys, zq, yq, steps=steps, first_order=first_order)


def query_loss_after_adaptation(params: Mapping[str, torch.Tensor], zs: torch.Tensor, ys: torch.Tensor,
                                zq: torch.Tensor, yq: torch.Tensor, *, steps: int, first_order: bool = False
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inner loop on centred support features ``zs``, then the query loss and accuracy (only ``log_scale`` and
    ``log_lr`` are read from ``params``)."""
    head = adapt_head(params, zs, ys, steps=steps, first_order=first_order)
    logits = head_logits(head, zq, params["log_scale"].exp())
    acc = (logits.argmax(dim=-1) == yq.argmax(dim=-1)).float().mean()
    return soft_cross_entropy(logits, yq), acc.detach()


def meta_gradient(params: Params, xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor, yq: torch.Tensor, *,
                  steps: int, first_order: bool = False) -> tuple[Params, tuple[torch.Tensor, torch.Tensor]]:
    """MAML meta-gradient of the mean query loss over a meta-batch (leading dim = tasks), via torch.func.

    Returns ``(gradient dict, (mean query loss, mean query accuracy))``.
    """
    def task(p: Params, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        return maml_task_loss(p, a, b, c, d, steps=steps, first_order=first_order)

    def meta_loss(p: Params) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        losses, accs = vmap(task, in_dims=(None, 0, 0, 0, 0))(p, xs, ys, xq, yq)
        loss = losses.mean()
        return loss, (loss.detach(), accs.mean())

    return grad(meta_loss, has_aux=True)(params)


def reptile_adapt(params: Mapping[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor, *, steps: int,
                  lrs: torch.Tensor) -> Params:
    """Reptile's inner loop on one task: SGD on transform, scale and the prototype-initialised head.

    Returns the adapted fast weights: the :data:`SHARED_KEYS` plus ``head.weight`` / ``head.bias``.
    """
    zs, _, _ = centred_features(params, xs)
    head = prototype_head(zs, ys)
    fast: Params = {k: params[k] for k in SHARED_KEYS} | {"head.weight": head["weight"], "head.bias": head["bias"]}

    def loss(f: Params) -> torch.Tensor:
        z, _, _ = centred_features(f, xs)
        return head_loss({"weight": f["head.weight"], "bias": f["head.bias"]}, z, ys, f["log_scale"].exp())

    for i in range(steps):
        g = grad(loss)(fast)
        fast = {k: fast[k] - lrs[i] * g[k] for k in fast}
    return fast


def reptile_pseudo_gradient(params: Params, xs: torch.Tensor, ys: torch.Tensor, *, steps: int
                            ) -> tuple[Params, Params]:
    """``θ − mean_i θ̃ᵢ`` over a meta-batch (vmapped); an SGD step of size ε on it is Reptile's update.

    Returns ``(pseudo-gradient for the shared keys, adapted weights per task)``.
    """
    lrs = params["log_lr"].exp().detach()
    detached = {k: v.detach() for k, v in params.items()}
    adapted = vmap(lambda a, b: reptile_adapt(detached, a, b, steps=steps, lrs=lrs))(xs, ys)
    pseudo = {k: detached[k] - adapted[k].mean(dim=0) for k in SHARED_KEYS}
    return pseudo, adapted


def reptile_task_accuracy(params: Mapping[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor,
                          xq: torch.Tensor, yq: torch.Tensor, *, steps: int) -> torch.Tensor:
    """Query accuracy after Reptile's inner loop on the support (what fit time does)."""
    fast = reptile_adapt(params, xs, ys, steps=steps, lrs=params["log_lr"].exp())
    _, zq, _ = centred_features(fast, xs, xq)
    logits = head_logits({"weight": fast["head.weight"], "bias": fast["head.bias"]}, zq, fast["log_scale"].exp())
    return (logits.argmax(dim=-1) == yq.argmax(dim=-1)).float().mean()


# ---- a learn2learn-style clone()/adapt() wrapper ----------------------------------------------------
class Learner:
    """Functional view of an ``nn.Module`` with fast weights (the idea of learn2learn's ``MAML`` wrapper).

    >>> net = nn.Linear(3, 2)
    >>> learner = Learner(net, lr=0.1)
    >>> task = learner.clone()                       # fast weights, still connected to θ
    >>> task.adapt(task(torch.ones(4, 3)).pow(2).mean())
    >>> sorted(task.params)
    ['bias', 'weight']

    ``adapt`` takes one SGD step with ``torch.autograd.grad(..., create_graph=not first_order)``, so a
    query loss computed with the adapted learner back-propagates into the module's parameters
    (second-order MAML) or, with ``first_order=True``, treats the inner gradients as constants.
    """

    def __init__(self, module: nn.Module, *, lr: float, first_order: bool = False,
                 params: Mapping[str, torch.Tensor] | None = None) -> None:
        self.module = module
        self.lr = lr
        self.first_order = first_order
        self.params: Params = dict(params) if params is not None else dict(module.named_parameters())

    def clone(self) -> Learner:
        """A learner whose fast weights start at the current ones (gradients flow back to them)."""
        return Learner(self.module, lr=self.lr, first_order=self.first_order, params=self.params)

    def adapt(self, loss: torch.Tensor) -> None:
        """One inner SGD step on ``loss``."""
        names = list(self.params)
        grads = torch.autograd.grad(loss, [self.params[n] for n in names], create_graph=not self.first_order,
                                    allow_unused=True)
        self.params = {n: self.params[n] if g is None else self.params[n] - self.lr * g
                       for n, g in zip(names, grads)}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self.module, self.params, args, kwargs)


# ---- episodes as tensors ----------------------------------------------------------------------------
def _one_hot(y: np.ndarray, n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(y.astype(np.int64)), n).float()


@dataclass
class TaskBatch:
    """A meta-batch of same-shape tasks: ``xs (B, Ns, d)``, ``ys (B, Ns, N)`` one-hot, queries alike."""

    xs: torch.Tensor
    ys: torch.Tensor
    xq: torch.Tensor
    yq: torch.Tensor


def sample_batch(sampler: EpisodeSampler, x: np.ndarray, n_tasks: int,
                 label_vectors: Mapping[str, np.ndarray] | None = None) -> TaskBatch:
    """``n_tasks`` episodes from ``sampler`` over rows of ``x``; label-name vectors join the support."""
    xs, ys, xq, yq = [], [], [], []
    n = sampler.n_way
    for _ in range(n_tasks):
        ep = sampler.sample()
        s, sy = x[ep.support], ep.support_y
        if label_vectors is not None:
            s = np.vstack([s, np.stack([label_vectors[str(c)] for c in ep.classes])])
            sy = np.concatenate([sy, np.arange(n)])
        xs.append(torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32)))
        ys.append(_one_hot(sy, n))
        xq.append(torch.from_numpy(np.ascontiguousarray(x[ep.query], dtype=np.float32)))
        yq.append(_one_hot(ep.query_y, n))
    return TaskBatch(torch.stack(xs), torch.stack(ys), torch.stack(xq), torch.stack(yq))


# ---- meta-training ----------------------------------------------------------------------------------
@dataclass
class MetaModel:
    """Meta-learned θ and the config that produced it; :meth:`save` / :meth:`load` a model folder."""

    params: Params
    config: MetaConfig
    info: dict[str, Any] = field(default_factory=dict)  # training history, seconds, data description

    @property
    def dim(self) -> int:
        return int(self.params["transform.weight"].shape[0])

    def save(self, folder: str | Path) -> Path:
        """Write ``maml.safetensors`` and ``maml.json`` into ``folder`` (created if needed)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().float() for k, v in self.params.items()}, str(folder / MAML_WEIGHTS))
        meta = {"method": self.config.method, "dim": self.dim, "config": asdict(self.config),
                "inner_lr": self.params["log_lr"].exp().tolist(), "scale": float(self.params["log_scale"].exp()),
                "papers": [PAPERS[self.config.method], PAPERS["proto_maml"], PAPERS["anil"], PAPERS["lslr"]],
                "info": self.info}
        (folder / MAML_CONFIG).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MetaModel:
        """Read a folder written by :meth:`save`; :class:`FewShotError` when it holds none."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / MAML_CONFIG).is_file() or not (folder / MAML_WEIGHTS).is_file():
            raise FewShotError(f"{folder} holds no meta-learned inner loop ({MAML_CONFIG} + {MAML_WEIGHTS}); "
                               "train one with `fewshot train --method maml|fomaml|reptile` or use adapt='none'")
        meta = json.loads((folder / MAML_CONFIG).read_text())
        params = {k: v.float() for k, v in load_file(str(folder / MAML_WEIGHTS)).items()}
        missing = sorted(set(init_params(1, MetaConfig()).keys()) - set(params))
        if missing:
            raise FewShotError(f"{folder / MAML_WEIGHTS} lacks {missing}; it was not written by fewshot.maml")
        return cls(params, MetaConfig.from_dict(meta["config"]), meta.get("info", {}))


def _labels_vectors_check(labels: np.ndarray, label_vectors: Mapping[str, np.ndarray] | None) -> None:
    if label_vectors is None:
        return
    missing = sorted(set(map(str, np.unique(labels))) - set(label_vectors))
    if missing:
        raise FewShotError(f"label_vectors lacks {len(missing)} label(s), e.g. {missing[:3]}; pass one vector "
                           "per label (the encoded label name) or set label_names=False")


def evaluate_tasks(params: Params, batch: TaskBatch, config: MetaConfig) -> float:
    """Mean query accuracy after the method's inner loop (no meta-gradient; torch.func.grad ignores no_grad)."""
    with torch.no_grad():
        if config.method == "reptile":
            accs = vmap(lambda a, b, c, d: reptile_task_accuracy(params, a, b, c, d, steps=config.inner_steps)
                        )(batch.xs, batch.ys, batch.xq, batch.yq)
        else:
            _, accs = vmap(lambda a, b, c, d: maml_task_loss(params, a, b, c, d, steps=config.inner_steps)
                           )(batch.xs, batch.ys, batch.xq, batch.yq)
    return float(accs.mean())


def meta_train(x: np.ndarray, labels: Sequence[str] | np.ndarray, config: MetaConfig, *,
               label_vectors: Mapping[str, np.ndarray] | None = None,
               val_x: np.ndarray | None = None, val_labels: Sequence[str] | np.ndarray | None = None,
               callback: Callable[[int, dict[str, float]], None] | None = None) -> MetaModel:
    """Meta-train θ on episodes drawn from ``(x, labels)`` (cached unit-vector embeddings).

    ``label_vectors``: encoded label name per label (needed when ``config.label_names``). With ``val_x`` /
    ``val_labels`` (disjoint labels are best), every ``validate_every`` steps the query accuracy on fixed
    validation episodes decides which θ is kept. ``callback(step, metrics)`` sees progress (no printing here).
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
    torch.manual_seed(config.seed)
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
            vs = EpisodeSampler(val_labels, n_way=n_val, k_shot=k, q_query=config.q_query, seed=10_000 + i)
            val_batches.append(sample_batch(vs, np.asarray(val_x, dtype=np.float32),
                                            max(1, config.val_episodes // len(config.k_shots)), names))
    history: list[dict[str, float]] = []

    def current() -> Params:
        return {k: (leaves[k].detach().clone() if k in leaves else v.detach().clone()) for k, v in params.items()}

    def validate() -> float:
        p = current()
        return float(np.mean([evaluate_tasks(p, b, config) for b in val_batches]))

    best_acc, best = (validate(), current()) if val_batches else (float("-inf"), current())
    if val_batches:
        history.append({"step": 0, "val_acc": best_acc})
    start = time.perf_counter()
    for step in range(1, config.outer_steps + 1):
        batch = sample_batch(samplers[(step - 1) % len(samplers)], x, config.meta_batch, names)
        p = {k: leaves.get(k, v) for k, v in params.items()}
        opt.zero_grad()
        if config.method == "reptile":
            g, _ = reptile_pseudo_gradient({k: v.detach() for k, v in p.items()}, batch.xs, batch.ys,
                                           steps=config.inner_steps)
            metrics = {"step": step}
        else:
            g, (loss, acc) = meta_gradient(p, batch.xs, batch.ys, batch.xq, batch.yq, steps=config.inner_steps,
                                           first_order=config.first_order)
            metrics = {"step": step, "loss": float(loss), "acc": float(acc)}
        for k, leaf in leaves.items():
            leaf.grad = g[k].detach().clone()
            if k.startswith("transform") and config.transform_weight_decay:
                leaf.grad += config.transform_weight_decay * leaf.detach()
        opt.step()
        if val_batches and (step % config.validate_every == 0 or step == config.outer_steps):
            metrics["val_acc"] = validate()
            if metrics["val_acc"] > best_acc:
                best_acc, best = metrics["val_acc"], current()
        if "val_acc" in metrics or step % 10 == 0:
            history.append({k: float(v) for k, v in metrics.items()})
        if callback is not None:
            callback(step, metrics)
    seconds = time.perf_counter() - start
    final = best if val_batches else current()
    info = {"seconds": seconds, "best_val_acc": best_acc if val_batches else None, "history": history,
            "n_train_rows": int(len(x)), "n_train_labels": int(len(np.unique(labels)))}
    return MetaModel(final, config, info)


# ---- fit time: the inner loop on the user's support set ----------------------------------------------
@dataclass
class AdaptedHead:
    """A task-adapted classifier: transform, centre on the support mean, then a linear softmax head."""

    transform_weight: np.ndarray  # (d, d)
    transform_bias: np.ndarray  # (d,)
    center: np.ndarray  # (d,)
    weight: np.ndarray  # (n_classes, d)
    bias: np.ndarray  # (n_classes,)
    scale: float

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Unit-length centred features of raw embeddings ``x`` (n, d)."""
        h = x + x @ self.transform_weight.T + self.transform_bias
        h = h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
        h = h - self.center
        return h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-12)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Per-class logits ``scale · z Wᵀ + b`` (n, n_classes)."""
        return self.scale * (self.transform(np.asarray(x, dtype=np.float32)) @ self.weight.T) + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def fit_adapted_head(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, model: MetaModel
                     ) -> AdaptedHead:
    """Run the meta-learned inner loop once on a support set (deterministic; milliseconds for 77 × 5 rows)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != model.dim:
        raise FewShotError(f"the meta-learned model expects {model.dim}-d embeddings, got shape {x.shape}; "
                           "use the encoder the model was trained on")
    xs = torch.from_numpy(np.ascontiguousarray(x))
    ys = _one_hot(np.asarray(labels), n_classes)
    p = {k: v.detach() for k, v in model.params.items()}
    steps = model.config.inner_steps
    with torch.enable_grad():
        if model.config.method == "reptile":
            fast = reptile_adapt(p, xs, ys, steps=steps, lrs=p["log_lr"].exp())
            shared = {k: fast[k] for k in SHARED_KEYS}
            head = {"weight": fast["head.weight"], "bias": fast["head.bias"]}
        else:
            shared = {k: p[k] for k in SHARED_KEYS}
            zs, _, _ = centred_features(p, xs)
            head = adapt_head(p, zs, ys, steps=steps)
        _, _, center = centred_features(shared, xs)
    return AdaptedHead(shared["transform.weight"].detach().numpy().copy(),
                       shared["transform.bias"].detach().numpy().copy(),
                       center.detach().numpy().copy(), head["weight"].detach().numpy().copy(),
                       head["bias"].detach().numpy().copy(), float(shared["log_scale"].exp()))


def write_model_folder(folder: str | Path, model: MetaModel, *, base: str = "minilm",
                       description: str = "") -> Path:
    """A complete model folder usable as ``FewShotClassifier(model=folder, adapt=method)``.

    Writes ``fewshot_model.json`` (the encoder is the frozen ``base``; no encoder head) and an empty
    ``weights.safetensors`` unless present, ``maml.json`` + ``maml.safetensors``, and a short model card
    ``README.md`` unless present.
    """
    from safetensors.torch import save_file

    from .encoder import MODEL_CONFIG, MODEL_WEIGHTS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / MODEL_CONFIG).is_file():
        card = {"base": base, "head": None, "method": model.config.method, "adapt": model.config.method,
                "description": description or f"{model.config.method} inner loop over frozen {base} embeddings"}
        (folder / MODEL_CONFIG).write_text(json.dumps(card, indent=2))
    if not (folder / MODEL_WEIGHTS).is_file():
        save_file({}, str(folder / MODEL_WEIGHTS))
    model.save(folder)
    if not (folder / "README.md").is_file():
        c = model.config
        val = model.info.get("best_val_acc")
        lines = [f"# {folder.name}: {c.method} on frozen {base} embeddings", "",
                 f"Use: `FewShotClassifier(model=\"{folder}\", adapt=\"{c.method}\")`.", "",
                 f"- method: {PAPERS[c.method]}",
                 f"- head initialisation: {PAPERS['proto_maml']}; inner loop adapts "
                 + ("transform, scale and head" if c.method == "reptile" else "the head only (ANIL)"),
                 f"- episodes: {c.n_way}-way, shots {list(c.k_shots)}, {c.q_query} queries, "
                 f"meta-batch {c.meta_batch}, {c.outer_steps} outer steps, {c.inner_steps} inner steps",
                 f"- meta-training seconds: {model.info.get('seconds', float('nan')):.1f}",
                 f"- best validation query accuracy: {'n/a' if val is None else f'{val:.4f}'}",
                 f"- seed: {c.seed}", ""]
        if description:
            lines += [description, ""]
        (folder / "README.md").write_text("\n".join(lines))
    return folder


def train_to_folder(method: str, x: np.ndarray, labels: Sequence[str] | np.ndarray, output: str | Path, *,
                    label_vectors: Mapping[str, np.ndarray] | None = None, val_x: np.ndarray | None = None,
                    val_labels: Sequence[str] | np.ndarray | None = None, base: str = "minilm",
                    callback: Callable[[int, dict[str, float]], None] | None = None,
                    **options: Any) -> MetaModel:
    """Adapter for ``fewshot train --method maml|fomaml|reptile``: meta-train on embeddings, write the folder.

    ``x``: unit-vector embeddings of the training texts (one row per label in ``labels``);
    ``label_vectors``: encoded label names (``label_names=False`` in ``options`` to go without);
    ``options``: any :class:`MetaConfig` field. Returns the trained :class:`MetaModel`.
    """
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


# ---- adapter for fewshot.train (METHODS[name](head, data, config) -> loss) ---------------------------
TRAIN_INNER_STEPS = 5  # inner loop used when fewshot.train drives the outer loop (its config has no such field)
TRAIN_INNER_LR = 0.5
TRAIN_REPTILE_INNER_LR = 0.1


def inner_loop_for_trained_head(method: str, temperature: float, dim: int) -> MetaModel:
    """The fixed inner loop that :func:`train_step` uses, as a :class:`MetaModel` over the *trained encoder
    head's* outputs (identity transform: the transform is the encoder head saved by ``fewshot.train``).
    Write it into that folder with ``.save(folder)`` so ``adapt=method`` works there."""
    if method not in META_METHODS:
        raise FewShotError(f"method must be one of {META_METHODS}, got {method!r}")
    lr = TRAIN_REPTILE_INNER_LR if method == "reptile" else TRAIN_INNER_LR
    config = MetaConfig(method=method, inner_steps=TRAIN_INNER_STEPS, inner_lr=lr, init_scale=1.0 / temperature,
                        learn_inner_lr=False, learn_scale=False)
    return MetaModel(init_params(dim, config), config, {"driver": "fewshot.train"})


def train_step(head: nn.Module, data: Any, config: Any, *, method: str) -> torch.Tensor:
    """One outer step of ``method`` for :mod:`fewshot.train`'s trainer (its ``MethodFn`` contract).

    The trainer's head is the feature transform θ; features are ``normalize(head(x))`` centred on the
    support mean, the per-task classifier starts at the prototypes (Proto-MAML) and takes
    :data:`TRAIN_INNER_STEPS` steps at scale ``1 / config.temperature``. MAML returns the query loss with
    the graph through the inner loop (second order; torch.func's ``grad`` composes with the trainer's
    ``backward``); FOMAML the same with detached inner gradients; Reptile writes ``θ − θ̃`` into ``p.grad``
    (Nichol et al. 2018) and returns the detached support loss.
    """
    from .train import episode_embeddings

    scalars = {"log_scale": torch.tensor(math.log(1.0 / config.temperature)),
               "log_lr": torch.full((TRAIN_INNER_STEPS,), math.log(TRAIN_INNER_LR))}
    if method in ("maml", "fomaml"):
        s, sy, q, qy, n_way = episode_embeddings(head, data, config)
        hs, hq = torch.nn.functional.normalize(s, dim=-1), torch.nn.functional.normalize(q, dim=-1)
        center = hs.mean(dim=0)
        zs = torch.nn.functional.normalize(hs - center, dim=-1)
        zq = torch.nn.functional.normalize(hq - center, dim=-1)
        loss, _ = query_loss_after_adaptation(scalars, zs, _one_hot(sy.numpy(), n_way), zq,
                                              _one_hot(qy.numpy(), n_way), steps=TRAIN_INNER_STEPS,
                                              first_order=method == "fomaml")
        return loss
    if method != "reptile":
        raise FewShotError(f"method must be one of {META_METHODS}, got {method!r}")
    theta = {k: v.detach() for k, v in head.named_parameters()}
    ep = data.episodes.sample()
    rows = data.embeddings[torch.from_numpy(ep.support)]
    ys = torch.from_numpy(ep.support_y)
    if config.label_names and data.names is not None:
        rows = torch.cat([rows, data.names[torch.from_numpy(ep.classes.astype(np.int64))]])
        ys = torch.cat([ys, torch.arange(len(ep.classes))])
    y1h = _one_hot(ys.numpy(), len(ep.classes))
    scale = 1.0 / config.temperature

    def feats(p: Params) -> torch.Tensor:
        h = torch.nn.functional.normalize(functional_call(head, p, (rows,)), dim=-1)
        return torch.nn.functional.normalize(h - h.mean(dim=0), dim=-1)

    z0 = feats(theta)
    proto = prototype_head(z0, y1h)
    fast: Params = dict(theta) | {"@w": proto["weight"], "@b": proto["bias"]}

    def loss_fn(f: Params) -> torch.Tensor:
        z = feats({k: v for k, v in f.items() if not k.startswith("@")})
        return head_loss({"weight": f["@w"], "bias": f["@b"]}, z, y1h, torch.tensor(scale))

    first = loss_fn(fast)
    for _ in range(TRAIN_INNER_STEPS):
        g = grad(loss_fn)(fast)
        fast = {k: fast[k] - TRAIN_REPTILE_INNER_LR * g[k] for k in fast}
    for name, p in head.named_parameters():
        p.grad = (theta[name] - fast[name]).detach().clone()
    return first.detach()


def maml_train_step(head: nn.Module, data: Any, config: Any) -> torch.Tensor:
    """``fewshot train --method maml`` (Finn et al. 2017, second order); see :func:`train_step`."""
    return train_step(head, data, config, method="maml")


def fomaml_train_step(head: nn.Module, data: Any, config: Any) -> torch.Tensor:
    """``fewshot train --method fomaml`` (first-order MAML); see :func:`train_step`."""
    return train_step(head, data, config, method="fomaml")


def reptile_train_step(head: nn.Module, data: Any, config: Any) -> torch.Tensor:
    """``fewshot train --method reptile`` (Nichol et al. 2018); see :func:`train_step`."""
    return train_step(head, data, config, method="reptile")
