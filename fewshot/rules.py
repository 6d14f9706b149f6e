"""Classification rules over unit-vector embeddings: matching attention, prototypes, a prototype-initialised head.

Fitting runs on one torch thread (:func:`one_torch_thread`) so a fitted head does not depend on the thread count.
torch is imported only when a head is fitted, so modules that need just :func:`softmax` or :func:`l2_normalize`
(the diagnostics, the multi-label core) stay free of it.

- ``matching``: Matching Networks (Vinyals et al. 2016, "Matching Networks for One Shot Learning"):
  a softmax with temperature over a query's similarities to its nearest support examples, summed per label.
- ``prototype``: Prototypical Networks (Snell et al. 2017): softmax over cosine similarity to each
  label's mean embedding.
- ``head``: a linear softmax head whose initialisation is the prototype rule (as in Proto-MAML,
  Triantafillou et al. 2020), fitted on the support set in a fraction of a second with L-BFGS and pulled
  towards that initialisation. Measured best on held-out validation splits (``bench/accuracy.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import RULES, ClassifierConfig
from .encoders.determinism import rowwise_matmul

if TYPE_CHECKING:
    import torch

__all__ = ["RULES", "LinearHead", "attention_probs", "fit_prototype_head", "fit_rule_head", "l2_normalize",
           "one_torch_thread", "prototypes", "softmax"]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits ``z`` (n, k), shifted by each row's maximum so that large logits do not overflow."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit length along its last axis; an all-zero row stays zero (norms floored at 1e-12)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def attention_probs(sims: np.ndarray, neighbour_labels: np.ndarray, n_classes: int,
                    temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Matching-Network attention over the k nearest support examples.

    ``sims`` (n, k) cosine similarities and ``neighbour_labels`` (n, k) label indices (-1: padding).
    Returns ``(probs (n, n_classes), attention (n, k))``.
    """
    logits = np.where(neighbour_labels >= 0, sims / temperature, -np.inf)
    attention = softmax(logits)
    probs = np.zeros((sims.shape[0], n_classes), dtype=np.float64)
    rows = np.repeat(np.arange(sims.shape[0]), sims.shape[1])
    valid = neighbour_labels.ravel() >= 0
    np.add.at(probs, (rows[valid], neighbour_labels.ravel()[valid]), attention.ravel()[valid])
    return probs, attention


def prototypes(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Unit-length mean embedding per label (n_classes, d)."""
    sums = np.zeros((n_classes, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, embeddings)
    return l2_normalize(sums).astype(np.float32)


@dataclass
class LinearHead:
    """A fitted softmax head ``softmax(x W^T + b)`` over centred unit vectors."""

    weight: np.ndarray  # (n_classes, d)
    bias: np.ndarray  # (n_classes,)
    center: np.ndarray  # (d,)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return l2_normalize(x - self.center)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``transform(x) W^T + b``, one row at a time, so that a row's logits do not depend on the batch
        (:func:`fewshot.encoders.determinism.rowwise_matmul`)."""
        return rowwise_matmul(self.transform(x), self.weight.T) + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))


def fit_prototype_head(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, *,
                       temperature: float = 0.1, weight_decay: float = 1e-4, steps: int = 200,
                       center: bool = True) -> LinearHead:
    """Fit a prototype-initialised linear head on the support set (deterministic, well under a second).

    ``steps=0`` returns the prototype rule itself (weights = prototypes / temperature).
    """
    mean = embeddings.mean(axis=0) if center else np.zeros(embeddings.shape[1], dtype=np.float32)
    x = l2_normalize(embeddings - mean).astype(np.float32)
    init = prototypes(x, labels, n_classes) / temperature
    if steps <= 0:
        return LinearHead(init, np.zeros(n_classes, dtype=np.float32), mean.astype(np.float32))
    import torch

    xt, yt, w0 = torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(init)
    weight = w0.clone().requires_grad_(True)
    bias = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ weight.T + bias, yt)
        loss = loss + weight_decay * (weight - w0).pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return LinearHead(weight.detach().numpy().copy(), bias.detach().numpy().copy(), mean.astype(np.float32))


def fit_rule_head(x: np.ndarray, y: np.ndarray, n_classes: int, config: ClassifierConfig) -> LinearHead:
    """The configured rule's head on examples ``x`` with label indices ``y``: the fitted head for ``"head"``,
    the prototype rule itself (no steps) for ``"prototype"``."""
    steps = config.head_steps if config.rule == "head" else 0
    return fit_prototype_head(x, y, n_classes, temperature=config.temperature,
                              weight_decay=config.head_weight_decay, steps=steps, center=config.center)


_threads_lock = threading.Lock()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the enclosed torch work on one thread, then restore the setting.

    Why: torch splits a large sum across its threads, so a head fitted on 2 threads differs in the last
    bits from one fitted on 1, and so do the confidences it gives. Ray actors run on 1 thread and refit
    the classifier they are sent; measured with HWU64 5-shot examples (320) and 600 test texts, without
    this 7 output rows (2 with int8) differed from the local engine's. Fitting a head is small work: one
    thread costs little. The lock keeps two fits in two threads from restoring each other's setting.
    """
    import torch

    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
