"""Gradient-based meta-learning on sentence embeddings, written functionally: MAML, first-order MAML, Reptile.

What is learned, and what is adapted per task (one *task* = one N-way K-shot episode, or the user's labels):

- a **feature transform** ``h(x) = normalize(x + x Wᵀ + b)`` on the embedding, starting as the identity
  (``W = 0, b = 0``) and learned by the outer loop only, as in ANIL (Raghu et al. 2020, "Rapid Learning or
  Feature Reuse? Towards Understanding the Effectiveness of MAML");
- a per-task **linear softmax head** that starts at the class prototypes, as in Proto-MAML (Triantafillou et
  al. 2020, "Meta-Dataset"), cosine variant: ``W₀ = normalize(mean of the label's centred features)``,
  ``b₀ = 0``, logits ``= scale · z W̃ᵀ + b``; the inner loop takes a few plain gradient steps on it;
- the logit ``scale`` and one inner learning rate per step (learned per-step rates: Antoniou et al. 2019,
  "How to train your MAML").

Algorithms, one inner loop each:

- ``"maml"``: Finn, Abbeel & Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
  Networks": ``θ ← θ − β ∇θ Σᵢ Lᵢ^query(Uᵢ(θ))``, differentiating *through* the inner steps ``Uᵢ``
  (:func:`adapt_head`; true second-order gradient with :func:`torch.func.grad` nested in itself and
  :func:`torch.func.vmap` over the tasks of a meta-batch: :func:`meta_gradient`);
- ``"fomaml"``: the first-order approximation of the same paper (section 5.2): the same inner loop with the
  inner gradients treated as constants, which drops every Hessian-vector term;
- ``"reptile"``: Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms": run SGD on
  each task starting from θ, giving θ̃ᵢ (:func:`reptile_adapt`), then move ``θ ← θ + ε (mean θ̃ᵢ − θ)``
  (fed to the outer optimiser as the pseudo-gradient ``θ − mean θ̃ᵢ``: :func:`reptile_pseudo_gradient`).
  Here the inner loop adapts the transform and the scale as well as the head (otherwise the shared
  parameters would never move).

:class:`Learner` is learn2learn's ``clone()`` / ``adapt()`` idea written with :mod:`torch.func`, for writing
one's own loops over other models. The outer loop is :func:`fewshot.meta.trainer.outer_loop`; fit time is
:mod:`fewshot.meta.adapted`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ..errors import FewShotError
from .episodes import EpisodeSampler
from .training_args import META_METHODS, MetaConfig

Params = dict[str, torch.Tensor]
FeatureFn = Callable[[Params], torch.Tensor]
"""``features(params) -> (n, d)`` centred unit-length support features under ``params``."""

__all__ = ["META_METHODS", "PAPERS", "SHARED_KEYS", "Learner", "TaskBatch", "adapt_head", "centred_features",
           "evaluate_tasks", "head_logits", "head_loss", "init_params", "maml_task_loss", "meta_gradient",
           "one_hot", "prototype_head", "query_loss_after_adaptation", "reptile_adapt", "reptile_pseudo_gradient",
           "reptile_task_accuracy", "sample_batch", "soft_cross_entropy", "transform"]

SHARED_KEYS = ("transform.weight", "transform.bias", "log_scale")  # what Reptile's inner loop also adapts
PAPERS = {
    "maml": "Finn, Abbeel & Levine 2017, Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
    "fomaml": "Finn, Abbeel & Levine 2017 (first-order approximation, sec. 5.2)",
    "reptile": "Nichol, Achiam & Schulman 2018, On First-Order Meta-Learning Algorithms",
    "proto_maml": "Triantafillou et al. 2020, Meta-Dataset (Proto-MAML head initialisation)",
    "anil": "Raghu et al. 2020, Rapid Learning or Feature Reuse? (head-only inner loop)",
    "lslr": "Antoniou, Edwards & Storkey 2019, How to train your MAML (per-step inner learning rates)",
}


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
    """The linear head's logits ``scale · z Wᵀ + b`` on features ``z``."""
    return scale * (z @ head["weight"].T) + head["bias"]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against one-hot (or soft) targets; shape-generic so it vmaps."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def head_loss(head: Mapping[str, torch.Tensor], z: torch.Tensor, y: torch.Tensor, scale: torch.Tensor
              ) -> torch.Tensor:
    """The head's cross-entropy on features ``z`` against one-hot ``y``: the inner loops' loss."""
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


def reptile_adapt(theta: Params, features: FeatureFn, ys: torch.Tensor, *, steps: int, lrs: torch.Tensor,
                  scale: torch.Tensor | None = None) -> Params:
    """Reptile's inner loop on one task (Nichol et al. 2018): SGD on ``theta`` and a prototype-initialised head.

    THE Reptile inner loop, for every caller: meta-training over a learned transform
    (:func:`reptile_pseudo_gradient`), ``fewshot train --method reptile`` over a trained encoder head, and
    fit time (:func:`fewshot.meta.adapted.fit_adapted_head`). ``features(p)`` gives the support's centred
    unit-length features under weights ``p`` (only ``theta``'s keys are read); ``ys`` is one-hot. The head
    starts at the class prototypes (Proto-MAML). ``scale``: a fixed logit scale, or ``None`` to use (and
    adapt) ``theta["log_scale"]``. Returns the adapted fast weights: ``theta``'s keys plus ``head.weight`` /
    ``head.bias``.
    """
    zs = features(theta)
    head = prototype_head(zs, ys)
    fast: Params = dict(theta) | {"head.weight": head["weight"], "head.bias": head["bias"]}

    def loss(f: Params) -> torch.Tensor:
        s = f["log_scale"].exp() if scale is None else scale
        return head_loss({"weight": f["head.weight"], "bias": f["head.bias"]}, features(f), ys, s)

    for i in range(steps):
        g = grad(loss)(fast)
        fast = {k: fast[k] - lrs[i] * g[k] for k in fast}
    return fast


def transform_features(xs: torch.Tensor) -> FeatureFn:
    """``p -> centred unit features of xs under the transform in p`` (the :func:`reptile_adapt` features of
    the learned-transform model)."""
    return lambda p: centred_features(p, xs)[0]


def shared_weights(params: Mapping[str, torch.Tensor]) -> Params:
    """The weights Reptile's inner loop adapts besides the head: :data:`SHARED_KEYS`."""
    return {k: params[k] for k in SHARED_KEYS}


def reptile_pseudo_gradient(params: Params, xs: torch.Tensor, ys: torch.Tensor, *, steps: int
                            ) -> tuple[Params, Params]:
    """``θ − mean_i θ̃ᵢ`` over a meta-batch (vmapped); an SGD step of size ε on it is Reptile's update.

    Returns ``(pseudo-gradient for the shared keys, adapted weights per task)``.
    """
    lrs = params["log_lr"].exp().detach()
    detached = {k: v.detach() for k, v in params.items()}
    adapted = vmap(lambda a, b: reptile_adapt(shared_weights(detached), transform_features(a), b, steps=steps,
                                              lrs=lrs))(xs, ys)
    pseudo = {k: detached[k] - adapted[k].mean(dim=0) for k in SHARED_KEYS}
    return pseudo, adapted


def reptile_task_accuracy(params: Mapping[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor,
                          xq: torch.Tensor, yq: torch.Tensor, *, steps: int) -> torch.Tensor:
    """Query accuracy after Reptile's inner loop on the support (what fit time does)."""
    fast = reptile_adapt(shared_weights(params), transform_features(xs), ys, steps=steps,
                         lrs=params["log_lr"].exp())
    _, zq, _ = centred_features(fast, xs, xq)
    logits = head_logits({"weight": fast["head.weight"], "bias": fast["head.bias"]}, zq, fast["log_scale"].exp())
    return (logits.argmax(dim=-1) == yq.argmax(dim=-1)).float().mean()


# ---- a learn2learn-style clone()/adapt() wrapper ----------------------------------------------------
class Learner:
    """Fast weights over any ``nn.Module``, for writing one's own MAML-style meta-learner.

    learn2learn's ``clone()`` / ``adapt()`` idea (Arnold et al. 2020, "learn2learn: A Library for
    Meta-Learning Research") written with :mod:`torch.func`, for MAML (Finn, Abbeel & Levine 2017,
    "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks"). The product's own loops do not use
    it (:func:`adapt_head`, :func:`reptile_adapt`); it is the public API for loops over other models.

    >>> net = nn.Linear(3, 2)
    >>> x, y = torch.randn(4, 3), torch.randn(4, 2)
    >>> task = Learner(net, lr=0.1).clone()                  # fast weights, still connected to θ
    >>> for _ in range(2):                                   # inner loop on the support
    ...     task.adapt(lambda m: (m(x) - y).pow(2).mean())
    >>> (task(x) - y).pow(2).mean().backward()               # outer loss: MAML meta-gradient in net.weight.grad
    >>> sorted(task.params)
    ['bias', 'weight']

    The fast weights are the module's trainable parameters (or ``params``, e.g. only a head as in ANIL);
    the others are read from the module unchanged. Buffers (BatchNorm's running statistics) are passed to the
    forward pass as inputs, so that a layer may update them during the inner loop as it does in training.
    """

    def __init__(self, module: nn.Module, *, lr: float, first_order: bool = False,
                 params: Mapping[str, torch.Tensor] | None = None) -> None:
        self.module = module
        self.lr = lr
        self.first_order = first_order
        self.params: Params = (dict(params) if params is not None
                               else {n: p for n, p in module.named_parameters() if p.requires_grad})

    def clone(self) -> Learner:
        """A learner whose fast weights start at the current ones (gradients flow back to them)."""
        return Learner(self.module, lr=self.lr, first_order=self.first_order, params=self.params)

    def adapt(self, loss: Callable[[Learner], torch.Tensor]) -> None:
        """One inner SGD step on the scalar ``loss(learner)``, computed by calling the learner it is given.

        The step is ``torch.func.grad`` of that function over the fast weights. Second order (default) keeps
        the gradient's graph, so an outer loss differentiates through the step back to θ; ``first_order``
        detaches it (FOMAML, Finn et al. 2017, sec. 5.2). Weights the loss does not read keep their value.
        """
        if not callable(loss):
            raise FewShotError(f"Learner.adapt takes a function of the learner, e.g. lambda m: loss_fn(m(x), y), "
                               f"not a {type(loss).__name__}")

        def loss_at(params: Params, buffers: Params) -> torch.Tensor:  # buffers: inputs, never closed over
            return loss(_AtWeights(self.module, params, buffers))

        grads = grad(loss_at)(self.params, dict(self.module.named_buffers()))
        if self.first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        self.params = {n: w - self.lr * grads[n] for n, w in self.params.items()}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The module's forward pass at the fast weights (``torch.func.functional_call``)."""
        return functional_call(self.module, self.params, args, kwargs)


class _AtWeights:
    """The module at given weights and buffers: what :meth:`Learner.adapt` hands its loss function. torch.func may
    not change a tensor a transformed function closes over, so the buffers a layer updates in place (BatchNorm's
    running statistics) come in as arguments."""

    def __init__(self, module: nn.Module, params: Params, buffers: Params) -> None:
        self.module, self.params, self.buffers = module, params, buffers

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self.module, (self.params, self.buffers), args, kwargs)


# ---- episodes as tensors ----------------------------------------------------------------------------
def one_hot(y: np.ndarray, n: int) -> torch.Tensor:
    """Float one-hot rows of integer labels ``y`` over ``n`` classes."""
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
        ys.append(one_hot(sy, n))
        xq.append(torch.from_numpy(np.ascontiguousarray(x[ep.query], dtype=np.float32)))
        yq.append(one_hot(ep.query_y, n))
    return TaskBatch(torch.stack(xs), torch.stack(ys), torch.stack(xq), torch.stack(yq))


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
