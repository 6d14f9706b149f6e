"""Multi-label decisions on sentence embeddings: one sigmoid head per label, thresholds cross-validated.

Numpy in, numpy out: :class:`MultiLabelCore` never sees text, so any encoder's unit vectors fit. Each label
gets an independent probability ``sigmoid(x . w_l + b_l)`` (one-vs-rest, binary cross-entropy; an example
with several labels counts positive for each), and its own decision threshold. Methods (``method``):

- ``"pairs"``: heads initialised at the label prototypes (the normalised mean of the label's
  examples, Snell et al. 2017, "Prototypical Networks") and trained with binary cross-entropy on the examples
  plus synthetic two-label points: the normalised mean of two single-label examples of different labels,
  positive for both (mixup, Zhang et al. 2018, applied between classes with the union of the labels as target,
  as in multi-label mixup). A text that asks for two things embeds between the two intents' clusters; the
  synthetic points show each head that such a point is still its label. The L2 penalty pulls the weights
  towards their prototype start (a prior centred on the prototype), not towards zero.
- ``"heads"``: the same heads without synthetic pairs.
- ``"prototype"``: no training; ``sigmoid(scale * (cos(x, prototype_l) - offset_l))``.
- ``"logistic"`` (default): scikit-learn logistic regression per label (one-vs-rest) with weak regularisation
  (``logistic_c``; unit vectors need a large C), the usual baseline made strong by views and thresholds.

Thresholds (``threshold="auto"``): ``cv_folds``-fold cross-validation over the examples. Each fold's model
scores its held-out examples plus synthetic two-intent points made of two held-out single-label examples
(with views: the two parts' views together), and the one threshold maximising micro-F1 over these
out-of-fold probabilities serves every label. A fold's column of a label it has no training example of is left
out (its model cannot predict that label); with one example per label none is left, and the threshold is 0.5.
With ``per_label``, each label then gets the threshold maximising its own F1, shrunk towards the global one by
``n / (n + shrinkage)`` (n = its positives). A float ``threshold`` fixes one threshold;
:meth:`MultiLabelCore.set_thresholds` overrides any label's afterwards.

Views (:mod:`fewshot.multilabel.views`): a text may come with sub-span vectors; a label is then scored by
its best view (``view_vote="top"``: each view speaks only for its most probable label). The default
settings (logistic, C=1000, views voting "top", at least one label) are the best row of
``bench/multilabel.py`` on the ``valid`` splits; see ``docs/research/multilabel.md``.

State is plain arrays plus JSON (:meth:`MultiLabelCore.state`, :meth:`MultiLabelCore.from_state`,
:meth:`MultiLabelCore.save`, :meth:`MultiLabelCore.load`): nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders.determinism import rowwise_matmul
from ..errors import FewShotError
from ..rules import l2_normalize

METHODS = ("logistic", "pairs", "heads", "prototype")
VIEW_VOTES = ("top", "all", "top_windows")
SOLVERS = ("joint", "sklearn")
STATE_FORMAT = 1
STATE_ARRAYS = "multilabel.npz"
STATE_JSON = "multilabel.json"


@dataclass
class MultiLabelConfig:
    """Settings of :class:`MultiLabelCore` (defaults chosen on the development splits of ``bench/multilabel.py``)."""

    method: str = "logistic"
    """``"logistic"``, ``"pairs"``, ``"heads"`` or ``"prototype"`` (see the module docstring)."""
    pairs_per_example: float = 2.0
    """Synthetic two-label points per single-label example (``"pairs"`` only)."""
    pair_weight: float = 1.0
    """Loss weight of a synthetic point relative to a real example."""
    mix_low: float = 0.5
    """The mix weight of a synthetic pair is drawn uniformly from ``[mix_low, 1 - mix_low]`` (0.5 = the mean)."""
    scale: float = 10.0
    """Initial weight norm (inverse temperature) of the prototype-initialised heads."""
    l2: float = 0.01
    """L2 penalty on the distance of the head weights from their prototype start."""
    positive_weight: float = 1.0
    """Loss weight of positive targets relative to negatives (each label has few positives)."""
    max_iter: int = 200
    """L-BFGS iterations when training the heads (``"pairs"``, ``"heads"``; ``"logistic"`` has its own)."""
    logistic_c: float = 1000.0
    """Inverse regularisation strength of ``"logistic"``."""
    logistic_max_iter: int = 1000
    """Iteration limit of each ``"logistic"`` fit (either solver)."""
    logistic_tol: float = 1e-4
    """Stopping tolerance of each ``"logistic"`` fit (the largest gradient entry; scikit-learn's default)."""
    threshold: float | str = "auto"
    """``"auto"`` (cross-validated) or one probability threshold for every label."""
    cv_folds: int = 5
    """Folds of the automatic thresholds."""
    cv_pairs: float = 1.0
    """Synthetic two-label held-out points per held-out example when choosing thresholds (how common
    several-intent texts are expected to be; 0 = only the real examples)."""
    view_vote: str = "top"
    """How views score a label: ``"all"`` (each label's best over the views), ``"top"`` (a view speaks only
    for its own most probable label), ``"top_windows"`` (the whole text for every label, windows for their
    top label)."""
    view_weight: float = 0.0
    """When views are given to ``fit``: loss weight of each example's sub-span views as extra positives of its
    labels (0 = the heads see whole texts only)."""
    per_label: bool = False
    """Cross-validate a threshold per label too (off: one global threshold for all labels; a label's five
    or so held-out examples are too few to place a threshold of its own); per-label overrides work either way."""
    shrinkage: float = 10.0
    """With ``per_label``: a label's threshold moves from the global one by ``n / (n + shrinkage)``."""
    at_least_one: bool = True
    """Return the most probable label when no label passes its threshold: the core never answers unknown;
    out-of-scope texts are the classifier's unknown rule's to catch (its in-scope score)."""
    seed: int = 0
    """Seed of the synthetic pairs and the folds."""
    solver: str = "joint"
    """``"logistic"`` fitting: ``"joint"`` (one L-BFGS over every label's weights at once, the same objective as
    scikit-learn's) or ``"sklearn"`` (one ``LogisticRegression`` per label). Both start every fit from zero: a
    cross-validation fold started from the full fit keeps what the full fit learnt from its held-out examples,
    which makes the held-out probabilities too confident and the threshold too high."""

    def validate(self) -> None:
        """Raise :class:`FewShotError` naming the first bad setting."""
        if self.view_vote not in VIEW_VOTES:
            raise FewShotError(f"view_vote must be one of {', '.join(VIEW_VOTES)}, got {self.view_vote!r}")
        if self.solver not in SOLVERS:
            raise FewShotError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.method not in METHODS:
            raise FewShotError(f"multi-label method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if isinstance(self.threshold, str):
            if self.threshold != "auto":
                raise FewShotError(f"threshold must be 'auto' or a probability in (0, 1), got {self.threshold!r}")
        elif not 0.0 < float(self.threshold) < 1.0:
            raise FewShotError(f"threshold must be 'auto' or a probability in (0, 1), got {self.threshold!r}")
        if not 0.0 <= self.mix_low <= 0.5:
            raise FewShotError(f"mix_low must be in [0, 0.5], got {self.mix_low!r}")
        for name in ("pairs_per_example", "pair_weight", "l2", "shrinkage", "cv_pairs", "view_weight"):
            if not float(getattr(self, name)) >= 0.0:
                raise FewShotError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("scale", "positive_weight", "logistic_c", "logistic_tol"):
            if not float(getattr(self, name)) > 0.0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if int(self.cv_folds) < 2:
            raise FewShotError(f"cv_folds must be at least 2, got {self.cv_folds!r}")
        for name in ("max_iter", "logistic_max_iter"):
            if int(getattr(self, name)) < 1:
                raise FewShotError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultiLabelConfig:
        """A config from saved JSON; unknown keys (from a newer version) are an error naming them."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise FewShotError(f"unknown multi-label settings {extra}; known: {sorted(known)}")
        return cls(**dict(data))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, as ``tanh`` so that large ``|z|`` neither overflows nor warns."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def with_top_label(probs: np.ndarray, on: np.ndarray) -> np.ndarray:
    """``on`` (a boolean per row and label), with each row that has no label on given its most probable one
    (``at_least_one``); changed in place and returned."""
    if len(probs):
        none = ~on.any(1)
        on[none, probs[none].argmax(1)] = True
    return on


def indicator(label_sets: Sequence[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    """``(n, len(classes))`` 0/1 matrix of label sets (labels outside ``classes`` are ignored)."""
    pos = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(label_sets), len(classes)), dtype=np.float64)
    for r, labels in enumerate(label_sets):
        for lab in labels:
            j = pos.get(lab)
            if j is not None:
                out[r, j] = 1.0
    return out


def synthetic_pairs(x: np.ndarray, t: np.ndarray, n: int, mix_low: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` two-label points: normalised mixes of two single-label rows of different labels, target the union.

    Returns ``(points, targets, pairs)``, ``pairs`` the ``(n, 2)`` row indices mixed. Only rows with exactly
    one label are mixed (mixing a multi-label row would make a three-intent point).
    """
    single = np.flatnonzero(t.sum(1) == 1)
    if n <= 0 or len(single) < 2 or len(np.unique(t[single].argmax(1))) < 2:
        return np.zeros((0, x.shape[1])), np.zeros((0, t.shape[1])), np.zeros((0, 2), dtype=np.int64)
    lab = t[single].argmax(1)
    a = rng.choice(single, size=n)
    b = rng.choice(single, size=n)
    same = lab[np.searchsorted(single, a)] == lab[np.searchsorted(single, b)]
    while same.any():  # redraw partners of the same label
        b[same] = rng.choice(single, size=int(same.sum()))
        same = lab[np.searchsorted(single, a)] == lab[np.searchsorted(single, b)]
    w = rng.uniform(mix_low, 1.0 - mix_low, size=(n, 1))
    return l2_normalize(w * x[a] + (1.0 - w) * x[b]), np.maximum(t[a], t[b]), np.stack([a, b], 1)


Views = Sequence[np.ndarray] | None
"""Per text, a ``(v, d)`` array of sub-span vectors ("views") in the space of the whole-text vectors (the
encoder's window pooling); the text scores a label by its best view. ``None``: whole texts only."""


def _check_views(views: Views, x: np.ndarray) -> list[np.ndarray] | None:
    if views is None:
        return None
    if isinstance(views, np.ndarray) and views.ndim == 2:
        raise FewShotError("views must be one (n_views, dimensions) array per text, got one 2-d array")
    if len(views) != len(x):
        raise FewShotError(f"expected one views array per embedding ({len(x)}), got {len(views)}")
    out = []
    for i, v in enumerate(views):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != x.shape[1]:
            raise FewShotError(f"views of text {i}: expected shape (n_views, {x.shape[1]}), got {v.shape}")
        out.append(v)
    return out


def _top_only(z: np.ndarray) -> np.ndarray:
    """Each row keeps its largest logit; the others drop far below any threshold."""
    out = np.full_like(z, -50.0)
    i = np.argmax(z, 1)
    out[np.arange(len(z)), i] = z[np.arange(len(z)), i]
    return out


def _logits(w: np.ndarray, b: np.ndarray, x: np.ndarray, views: list[np.ndarray] | None,
            vote: str = "all") -> np.ndarray:
    """Per-label logits: of the whole text, or the best over the whole text and its views (one row per product:
    a text's logits do not depend on its batch, :func:`fewshot.encoders.determinism.rowwise_matmul`)."""
    z = rowwise_matmul(x, w.T) + b
    if views is None or not len(x):
        return z
    if vote == "top":
        z = _top_only(z)
    sizes = np.array([len(v) for v in views])
    has = np.flatnonzero(sizes > 0)
    if len(has):
        flat = np.concatenate([views[i] for i in has])
        zf = rowwise_matmul(flat, w.T) + b
        if vote != "all":
            zf = _top_only(zf)
        zv = np.maximum.reduceat(zf, np.r_[0, np.cumsum(sizes[has])[:-1]], axis=0)
        z[has] = np.maximum(z[has], zv)
    return z


def _fit_heads(x: np.ndarray, t: np.ndarray, row_w: np.ndarray, cfg: MultiLabelConfig,
               train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Prototype-initialised sigmoid heads, then (``train``) L-BFGS on weighted binary cross-entropy."""
    proto = l2_normalize(t.T @ x)  # (L, D): normalised sum of each label's examples
    w0 = cfg.scale * proto
    cos = x @ proto.T
    pos = t > 0
    # start each bias half-way between the label's mean positive and mean negative similarity
    mean_pos = (cos * pos).sum(0) / np.maximum(pos.sum(0), 1)
    mean_neg = (cos * ~pos).sum(0) / np.maximum((~pos).sum(0), 1)
    b0 = -cfg.scale * 0.5 * (mean_pos + mean_neg)
    if not train:
        return w0, b0
    from scipy.optimize import minimize

    n_l, d = w0.shape
    cell_w = row_w[:, None] * np.where(pos, cfg.positive_weight, 1.0)
    norm = float(row_w.sum())

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: n_l * d].reshape(n_l, d)
        b = theta[n_l * d:]
        z = x @ w.T + b
        # log(1 + e^z) - t z, computed stably
        loss = (cell_w * (np.logaddexp(0.0, z) - t * z)).sum() / norm
        diff = w - w0
        loss += cfg.l2 * float((diff * diff).sum())
        g = cell_w * (sigmoid(z) - t) / norm
        gw = g.T @ x + 2.0 * cfg.l2 * diff
        return float(loss), np.concatenate([gw.ravel(), g.sum(0)])

    res = minimize(loss_grad, np.concatenate([w0.ravel(), b0]), jac=True, method="L-BFGS-B",
                   options={"maxiter": int(cfg.max_iter)})
    theta = res.x
    return theta[: n_l * d].reshape(n_l, d), theta[n_l * d:]


def _fit_logistic_joint(x: np.ndarray, t: np.ndarray, c: float, max_iter: int, tol: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest logistic regression of every label at once: minimise ``sum_l mean_i logloss(x_i . w_l + b_l,
    t_il) + ||w_l||^2 / (2 C n)`` (scikit-learn's L2 objective per label, intercepts unpenalised; the labels'
    terms are independent, so the minimiser is the per-label one) with one L-BFGS over the ``(L, d)`` weights.

    One matrix product per step serves every label, instead of one solver run per label. Starts from zero.
    Labels on every row or none get a constant bias (+-30), as with the per-label fits.
    """
    from scipy.optimize import minimize

    n, d = x.shape
    n_l = t.shape[1]
    const = t.min(0) == t.max(0)
    fit = np.flatnonzero(~const)
    w = np.zeros((n_l, d))
    b = np.where(const, np.where(t[0] > 0, 30.0, -30.0), 0.0) if n else np.zeros(n_l)
    if not len(fit):
        return w, b
    tf = t[:, fit]
    alpha = 1.0 / (c * n)
    k = len(fit)

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        wf = theta[: k * d].reshape(k, d)
        bf = theta[k * d:]
        z = x @ wf.T + bf
        loss = float((np.logaddexp(0.0, z) - tf * z).sum()) / n + 0.5 * alpha * float((wf * wf).sum())
        g = (sigmoid(z) - tf) / n
        gw = g.T @ x + alpha * wf
        return loss, np.concatenate([gw.ravel(), g.sum(0)])

    theta0 = np.zeros(k * d + k)
    res = minimize(loss_grad, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": int(max_iter), "gtol": tol, "ftol": 64 * np.finfo(float).eps,
                            "maxls": 50})
    w[fit] = res.x[: k * d].reshape(k, d)
    b[fit] = res.x[k * d:]
    return w, b


def _best_threshold(p: np.ndarray, t: np.ndarray) -> float:
    """The threshold maximising F1 of ``p >= threshold`` against 0/1 ``t`` (all cells pooled = micro-F1); 0.5
    when no cut helps, or when the best one answers every cell: an uninformative score's F1 peaks there (Lipton
    et al. 2014, "Thresholding Classifiers to Maximize F1 Score"), and a threshold below every score would give
    every text every label, as a handful of examples can make happen."""
    p = p.ravel()
    t = t.ravel()
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    tp = np.cumsum(t[order])
    k = np.arange(1, len(ps) + 1)
    f1 = 2.0 * tp / (k + t.sum())
    # only cut between distinct scores
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(last, f1, -1.0)
    i = int(np.argmax(f1))
    if f1[i] <= 0.0 or i == len(ps) - 1:
        return 0.5
    return float(0.5 * (ps[i] + ps[i + 1]))


class MultiLabelCore:
    """Per-label probabilities and thresholds for embedded texts; ``classes_`` orders every column.

    >>> core = MultiLabelCore().fit(vectors, [["billing"], ["bug"], ["billing", "bug"], ...])
    >>> core.predict(new_vectors)          # [["billing", "bug"], ["bug"], ...]  (at least one label each)
    >>> MultiLabelCore(MultiLabelConfig(at_least_one=False)).fit(...).predict(...)  # [..., [], ...] ([] = none passes)
    """

    def __init__(self, config: MultiLabelConfig | None = None) -> None:
        self.config = config

    # ------------------------------------------------------------------ fitting
    def fit(self, x: np.ndarray, label_sets: Sequence[Sequence[str]], views: Views = None) -> MultiLabelCore:
        """Learn heads and thresholds from unit vectors ``x`` (n, d) and each row's labels (one or more).

        ``views``: optional sub-span vectors per example (see :data:`Views`); then the thresholds are chosen
        for view scoring, and ``predict`` should be given views too.
        """
        cfg = self.config if self.config is not None else MultiLabelConfig()
        cfg.validate()
        x, label_sets = self._check_xy(x, label_sets)
        views = _check_views(views, x)
        classes = sorted({lab for labels in label_sets for lab in labels})
        if len(classes) < 2:
            raise FewShotError(f"multi-label fitting needs at least 2 labels, got {classes}")
        t = indicator(label_sets, classes)
        self.classes_ = np.array(classes, dtype=object)
        self.config_ = cfg
        self.weights_, self.bias_ = self._fit_params(x, t, views, cfg, np.random.default_rng([cfg.seed, 1]))
        self.uses_views_ = views is not None
        self.n_examples_ = t.sum(0).astype(np.int64)
        if cfg.threshold == "auto":
            self.global_threshold_, self.thresholds_ = self._cv_thresholds(x, t, views, cfg)
        else:
            self.global_threshold_ = float(cfg.threshold)
            self.thresholds_ = np.full(len(classes), float(cfg.threshold))
        return self

    @staticmethod
    def _check_xy(x: np.ndarray, label_sets: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[list[str]]]:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise FewShotError(f"expected a 2-d array of embeddings (texts x dimensions), got shape {x.shape}")
        if not np.isfinite(x).all():
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise FewShotError(f"the embeddings contain NaN or infinite values (first in row {row})")
        if isinstance(label_sets, str) or len(label_sets) != len(x):
            raise FewShotError(f"expected one label list per embedding ({len(x)}), got "
                               f"{'a string' if isinstance(label_sets, str) else len(label_sets)}")
        out: list[list[str]] = []
        for i, labels in enumerate(label_sets):
            if isinstance(labels, str):
                raise FewShotError(f"example {i}: labels must be a list of strings, got the string {labels!r}")
            labs = list(dict.fromkeys(str(lab) for lab in labels))
            if not labs or any(not lab.strip() for lab in labs):
                raise FewShotError(f"example {i} has no label (or a blank one): {list(labels)!r}")
            out.append(labs)
        return x, out

    def _fit_params(self, x: np.ndarray, t: np.ndarray, views: list[np.ndarray] | None, cfg: MultiLabelConfig,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if cfg.method == "logistic" and cfg.solver == "joint":
            return _fit_logistic_joint(x, t, cfg.logistic_c, cfg.logistic_max_iter, cfg.logistic_tol)
        if cfg.method == "logistic":
            from sklearn.linear_model import LogisticRegression

            w = np.zeros((t.shape[1], x.shape[1]))
            b = np.zeros(t.shape[1])
            for j in range(t.shape[1]):
                if t[:, j].min() == t[:, j].max():  # a label on every example: always on
                    b[j] = 30.0 if t[0, j] else -30.0
                    continue
                m = LogisticRegression(C=cfg.logistic_c, max_iter=cfg.logistic_max_iter, tol=cfg.logistic_tol)
                m.fit(x, t[:, j])
                w[j], b[j] = m.coef_[0], m.intercept_[0]
            return w, b
        row_w = np.ones(len(x))
        parts_x, parts_t, parts_w = [x], [t], [row_w]
        if cfg.method == "pairs":
            n_single = int((t.sum(1) == 1).sum())
            px, pt, _ = synthetic_pairs(x, t, int(round(cfg.pairs_per_example * n_single)), cfg.mix_low, rng)
            parts_x.append(px)
            parts_t.append(pt)
            parts_w.append(np.full(len(px), cfg.pair_weight))
        if views is not None and cfg.view_weight > 0:
            sub = [v[1:] for v in views]  # a view set starts with the whole text (views.build_views)
            parts_x.append(np.concatenate(sub) if sub else np.zeros((0, x.shape[1])))
            parts_t.append(np.repeat(t, [len(v) for v in sub], axis=0))
            parts_w.append(np.full(len(parts_x[-1]), cfg.view_weight))
        return _fit_heads(np.vstack(parts_x), np.vstack(parts_t), np.concatenate(parts_w), cfg,
                          train=cfg.method != "prototype")

    def _folds(self, t: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """A fold per row, spreading each label's examples (by their rarest label) over the folds."""
        counts = t.sum(0)
        key = np.where(t > 0, counts, np.inf).argmin(1)
        fold = np.empty(len(t), dtype=np.int64)
        offset = 0
        for lab in np.unique(key):
            rows = rng.permutation(np.flatnonzero(key == lab))
            fold[rows] = (offset + np.arange(len(rows))) % k
            offset += len(rows)
        return fold

    def _cv_thresholds(self, x: np.ndarray, t: np.ndarray, views: list[np.ndarray] | None,
                       cfg: MultiLabelConfig) -> tuple[float, np.ndarray]:
        rng = np.random.default_rng([cfg.seed, 2])
        k = int(min(cfg.cv_folds, len(x)))
        fold = self._folds(t, k, rng)
        probs, targets, seen = [], [], []
        for f in range(k):
            tr, te = fold != f, fold == f
            if not te.any() or (t[tr].sum(0) == 0).all():
                continue
            tr_views = None if views is None else [views[i] for i in np.flatnonzero(tr)]
            w, b = self._fit_params(x[tr], t[tr], tr_views, cfg, rng)
            # held-out rows plus two-label mixes of held-out single-label rows; with views, a mix's views are
            # its two parts' views (a two-intent text holds each intent's span)
            te_idx = np.flatnonzero(te)
            hx, ht, hp = synthetic_pairs(x[te], t[te], int(round(cfg.cv_pairs * len(te_idx))), 0.5, rng)
            ex = np.vstack([x[te], hx])
            ev = None
            if views is not None:
                ev = [views[i] for i in te_idx] + [np.vstack([views[te_idx[a]], views[te_idx[c]]]) for a, c in hp]
            probs.append(sigmoid(_logits(w, b, ex, ev, cfg.view_vote)))
            targets.append(np.vstack([t[te], ht]))
            # a label with no example left in this fold's training set cannot be predicted by it: its column
            # says nothing about where the threshold lies (with one example per label, every column is such)
            seen.append(np.broadcast_to(t[tr].sum(0) > 0, targets[-1].shape))
        if not any(s.any() for s in seen):  # no fold could predict any of its held-out labels
            return 0.5, np.full(t.shape[1], 0.5)
        p, y, m = np.vstack(probs), np.vstack(targets), np.vstack(seen)
        g = _best_threshold(p[m], y[m])
        per = np.full(t.shape[1], g)
        if cfg.per_label:
            for j in range(t.shape[1]):
                n = float(y[m[:, j], j].sum())
                if n == 0:
                    continue
                tj = _best_threshold(p[m[:, j], j], y[m[:, j], j])
                per[j] = g + n / (n + cfg.shrinkage) * (tj - g)
        return g, per

    # ------------------------------------------------------------------ predicting
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise FewShotError("this multi-label model is not fitted yet: call fit(vectors, label_sets) first")

    def decision_function(self, x: np.ndarray, views: Views = None) -> np.ndarray:
        """Per-label logits ``(n, len(classes_))``; with ``views``, each label's best over the text's views."""
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.weights_.shape[1]:
            raise FewShotError(f"expected embeddings of shape (n, {self.weights_.shape[1]}), got {x.shape}")
        return _logits(self.weights_, self.bias_, x, _check_views(views, x), self.config_.view_vote)

    def predict_proba(self, x: np.ndarray, views: Views = None) -> np.ndarray:
        """Independent per-label probabilities ``(n, len(classes_))`` (rows need not sum to 1)."""
        return sigmoid(self.decision_function(x, views))

    def predict_indicator(self, x: np.ndarray, views: Views = None) -> np.ndarray:
        """Boolean ``(n, len(classes_))``: which labels pass their thresholds."""
        return self.indicator(self.predict_proba(x, views))

    def indicator(self, p: np.ndarray, at_least_one: bool | None = None) -> np.ndarray:
        """Which labels of probabilities ``p`` pass their thresholds, with the most probable one when none does
        and ``at_least_one`` (default: the config's) is on."""
        on = p >= self.thresholds_
        keep_one = self.config_.at_least_one if at_least_one is None else at_least_one
        return with_top_label(p, on) if keep_one else on

    def label_lists(self, p: np.ndarray, on: np.ndarray) -> list[list[str]]:
        """The labels ``on`` marks in each row, most probable first by ``p`` (an empty list: none)."""
        out = []
        for row_p, row_on in zip(p, on):
            idx = np.flatnonzero(row_on)
            out.append([str(self.classes_[i]) for i in idx[np.argsort(-row_p[idx], kind="stable")]])
        return out

    def predict(self, x: np.ndarray, views: Views = None) -> list[list[str]]:
        """The labels of each row, most probable first; an empty list (only with ``at_least_one=False``) means that
        no label passes its threshold."""
        p = self.predict_proba(x, views)
        return self.label_lists(p, self.indicator(p))

    def set_thresholds(self, thresholds: float | Mapping[str, float]) -> MultiLabelCore:
        """Override the decision threshold of every label (a float) or of the named labels (a mapping)."""
        self._check_fitted()
        if isinstance(thresholds, Mapping):
            pos = {str(c): i for i, c in enumerate(self.classes_)}
            new = self.thresholds_.copy()
            for lab, v in thresholds.items():
                if lab not in pos:
                    raise FewShotError(f"unknown label {lab!r} in thresholds; labels: {sorted(pos)}")
                new[pos[lab]] = self._check_prob(v, f"threshold of {lab!r}")
            self.thresholds_ = new
        else:
            self.thresholds_ = np.full(len(self.classes_), self._check_prob(thresholds, "threshold"))
        return self

    @staticmethod
    def _check_prob(v: Any, what: str) -> float:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise FewShotError(f"{what} must be a probability in (0, 1), got {v!r}") from None
        if not 0.0 < f < 1.0:
            raise FewShotError(f"{what} must be a probability in (0, 1), got {v!r}")
        return f

    def thresholds(self) -> dict[str, float]:
        """The current threshold of each label."""
        self._check_fitted()
        return {str(c): float(v) for c, v in zip(self.classes_, self.thresholds_)}

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``(arrays, meta)``: float arrays and a JSON-able dict that :meth:`from_state` turns back into this model."""
        self._check_fitted()
        arrays = {"weights": self.weights_, "bias": self.bias_, "thresholds": self.thresholds_,
                  "n_examples": self.n_examples_}
        meta = {"format": STATE_FORMAT, "classes": [str(c) for c in self.classes_],
                "config": asdict(self.config_), "global_threshold": self.global_threshold_,
                "uses_views": self.uses_views_}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> MultiLabelCore:
        """The model :meth:`state` described."""
        if meta.get("format") != STATE_FORMAT:
            raise FewShotError(f"unsupported multi-label state format {meta.get('format')!r} "
                               f"(this version reads {STATE_FORMAT})")
        cfg = MultiLabelConfig.from_dict(meta["config"])
        core = cls(cfg)
        core.config_ = cfg
        core.classes_ = np.array(list(meta["classes"]), dtype=object)
        core.global_threshold_ = float(meta["global_threshold"])
        core.uses_views_ = bool(meta.get("uses_views", False))
        core.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
        core.bias_ = np.asarray(arrays["bias"], dtype=np.float64)
        core.thresholds_ = np.asarray(arrays["thresholds"], dtype=np.float64)
        core.n_examples_ = np.asarray(arrays["n_examples"], dtype=np.int64)
        n = len(core.classes_)
        if core.weights_.shape[0] != n or core.bias_.shape != (n,) or core.thresholds_.shape != (n,):
            raise FewShotError(f"multi-label state is inconsistent: {n} labels but weights {core.weights_.shape}, "
                               f"bias {core.bias_.shape}, thresholds {core.thresholds_.shape}")
        return core

    def save(self, folder: str | Path) -> None:
        """Write ``multilabel.npz`` (arrays, no pickle) and ``multilabel.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays, meta = self.state()
        np.savez(folder / STATE_ARRAYS, **arrays)
        (folder / STATE_JSON).write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> MultiLabelCore:
        """The model :meth:`save` wrote into ``folder``."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
            with np.load(folder / STATE_ARRAYS, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError as e:
            raise FewShotError(f"no multi-label model in {folder}: {e.filename} is missing") from None
        return cls.from_state(arrays, meta)


def matched_examples(x: np.ndarray, predicted: Sequence[Sequence[str]], support: np.ndarray,
                     support_labels: Sequence[Sequence[str]], k: int = 3) -> list[dict[str, list[tuple[int, float]]]]:
    """Explanations: per text and per predicted label, the ``k`` most similar examples carrying that label.

    Returns ``[{label: [(example_index, cosine), ...]}, ...]``, one dict per row of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    support = np.asarray(support, dtype=np.float64)
    if len(predicted) != len(x):
        raise FewShotError(f"expected one prediction per embedding ({len(x)}), got {len(predicted)}")
    by_label: dict[str, list[int]] = {}
    for i, labels in enumerate(support_labels):
        for lab in labels:
            by_label.setdefault(str(lab), []).append(i)
    sims = l2_normalize(x) @ l2_normalize(support).T
    out = []
    for r, labels in enumerate(predicted):
        row: dict[str, list[tuple[int, float]]] = {}
        for lab in labels:
            idx = np.asarray(by_label.get(lab, []), dtype=np.int64)
            if len(idx):
                s = sims[r, idx]
                top = np.argsort(-s, kind="stable")[:k]
                row[lab] = [(int(idx[i]), float(s[i])) for i in top]
            else:
                row[lab] = []
        out.append(row)
    return out
