"""In-domain out-of-scope detection: unknown intents from the same domain as the known ones, next to other-domain ones.

    python bench/oos_indomain.py [--data ../shared/data] [--split valid|test] [--shots 5 10] [--draws 3]
                                 [--scores logit ...] [--extra-layers auto] [--out bench/results/oos_indomain.json]
                                 [--model minilm|mpnet] [--domains banking ...] [--hwu-draws N]
                                 [--finetune] [--finetune-forced-steps N] [--finetune-seconds S]
    python bench/oos_indomain.py --compare BASE.json OTHER.json   # paired differences of two result files

Episodes (each fits the product's classifier on the vectors alone: the prototype-initialised head over
MiniLM-L6 with layer 4 appended, label names as extra examples, the automatic threshold from 5-fold
cross-validation of the support set, rejecting 2 % of held-out examples among those classified right):

- ``clinc150``: single-domain. Per CLINC150 domain (the 10 domains of Larson et al. 2019, intent grouping
  from clinc/oos-eval ``data/domains.json``, hard-coded below) and draw, 10 of its 15 intents are in scope
  and 5 are held out: their texts are the in-domain out-of-scope queries. Other-domain out-of-scope:
  ``oos_valid`` / ``oos_test``.
- ``hwu64``: per draw, a third of the intents of every HWU64 scenario (the ``scenario_intent`` prefix; at
  least one, never all; one-intent scenarios stay in scope) is held out as in-domain out-of-scope (about
  43 in scope, 21 held out). Other-domain: CLINC150 ``oos_*``.

Support sets: ``shots`` random examples per in-scope intent from ``train`` (seeded per episode). Queries:
``--split`` (``valid`` for development choices, ``test`` for the final table). Per score, separately for
in-domain and other-domain out-of-scope: AUROC (in-scope queries vs out-of-scope), ``recall@2pt``: the best
out-of-scope recall of any threshold that costs at most 2 points of in-scope accuracy (chosen with the query
labels: a property of the score), ``FPR@95``: share of out-of-scope queries accepted at the threshold keeping
95 % of in-scope queries, and the automatic threshold's recall and cost (points of in-scope accuracy), with
the product's quantile rule and with the Weibull plotting position (:func:`threshold_for_drop_unbiased`).
Means ± standard errors over the episodes; ``diff`` columns: paired difference against ``logit`` (the
product's score) over the same episodes. Also the "ambiguous: A or B?" analysis (see :func:`ambiguity`).
``--finetune``: per episode the classifier is also fine-tuned on its support set through the public API
(:class:`Tuning`, ``clf.finetune()``) and every text re-read by the adapted encoder (``ft:<score>`` rows);
``--finetune-forced-steps N`` adds adaptation without the estimate, always kept (``ftN:<score>``).
``--model mpnet`` encodes only the train and query rows the episodes use (:class:`LazyRows`). The ``bg`` scores
(not in the default list) read the other dataset's training intents as known unknowns (:func:`background_intents`).
Vectors are cached under ``--cache`` (``.npy``, rebuilt when the texts change). Writes ``--out`` (summary of
every score; per episode only ``EPISODE_SCORES``) and the same tables as markdown next to it (``.md``).
See docs/research/unknown-in-domain.md.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd

import common  # bench/ is on the path as a script
from fewshot.metrics import fpr_at_95, recall_at_cost  # the product's definitions (`fewshot evaluate --oos`)

IN_SCOPE_PER_DOMAIN = 10  # of 15; the other 5 are the domain's unknown intents
HWU64_HELD_OUT_SHARE = 1 / 3
MAX_DROP = 0.02  # the product's automatic threshold: 2 % of held-out support examples among those right
FOLDS = 5
TEMPERATURE = 0.1  # the product's head temperature (logits are cosine / 0.1 at initialisation)


def _library() -> dict[str, Callable]:
    """The product's head fitting, threshold rule, label-name text and encoder (module names before and
    after the package layout change)."""
    try:
        from fewshot.rules import fit_prototype_head, l2_normalize
    except ImportError:
        from fewshot.matching import fit_prototype_head, l2_normalize
    try:
        from fewshot.unknown import threshold_for_drop
    except ImportError:
        from fewshot.classifier import threshold_for_drop
    try:
        from fewshot.text import label_text
    except ImportError:
        from fewshot.classifier import _label_text as label_text
    try:
        from fewshot.encoders.encoder import Encoder
    except ImportError:
        from fewshot.encoder import Encoder
    return {"fit": fit_prototype_head, "norm": l2_normalize, "threshold_for_drop": threshold_for_drop,
            "label_text": label_text, "Encoder": Encoder}


LIB: dict[str, Callable] = {}


# ---- vectors --------------------------------------------------------------------------------------
class Vectors:
    """Encodes texts once per (dataset, split) and keeps them as ``.npy`` under ``cache``."""

    def __init__(self, data: Path, cache: Path, model: str, extra_layers: str | list[int] = "auto",
                 lazy_train: bool = False) -> None:
        self.data, self.cache, self.model, self.extra_layers = data, cache, model, extra_layers
        self.tag = common.weights_tag(model)  # the model's name, and its trained weights' digest if any
        self.lazy_train = lazy_train
        self._encoder = None
        cache.mkdir(parents=True, exist_ok=True)

    def digest(self, texts: list[str]) -> str:
        """Cache key of ``texts`` under this encoder (model and appended layers): a new key when either changes."""
        tag = self.tag if self.extra_layers == "auto" else f"{self.tag}|{self.extra_layers}"
        return hashlib.sha256(("\n".join([tag, *texts])).encode()).hexdigest()[:16]

    def encode(self, key: str, texts: list[str], save: bool = True) -> np.ndarray:
        path = self.cache / f"{key}-{self.digest(texts)}.npy"
        if save and path.is_file():
            return np.load(path)
        if self._encoder is None:
            self._encoder = LIB["Encoder"](self.model, extra_layers=self.extra_layers)
        t0 = time.time()
        vectors = np.asarray(self._encoder.encode(texts), dtype=np.float32)
        if save:
            np.save(path, vectors)
        print(f"encoded {key}: {len(texts)} texts in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        return vectors

    def split(self, dataset: str, split: str) -> tuple[pd.DataFrame, np.ndarray | LazyRows]:
        """A split's rows and their vectors; lazily (only the rows an episode uses are encoded) when the encoder
        is slow (``lazy_train``: mpnet would spend most of its time on train rows no episode draws), except the
        other-domain splits, which every episode uses whole."""
        frame = common.read_split(self.data, dataset, split)
        if self.lazy_train and not split.startswith("oos"):
            return frame, LazyRows(self, f"{dataset}_{split}", frame.text.tolist())
        return frame, self.encode(f"{dataset}_{split}", frame.text.tolist())

    def names(self, dataset: str, labels: list[str]) -> np.ndarray:
        """Label-name vectors (the product's extra example per label), encoded once per dataset."""
        every = sorted(common.read_split(self.data, dataset, "train").label.unique())
        vectors = self.encode(f"{dataset}_labelnames", [LIB["label_text"](lab) for lab in every])
        return vectors[[every.index(lab) for lab in labels]]


class LazyRows:
    """A split's vectors encoded on first access by row index (cached as ``.npz`` of rows and vectors)."""

    def __init__(self, vec: Vectors, key: str, texts: list[str]) -> None:
        self.vec, self.key, self.texts = vec, key, texts
        self.path = vec.cache / f"{key}-{vec.digest(texts)}-rows.npz"
        self.rows: dict[int, np.ndarray] = {}
        if self.path.is_file():
            saved = np.load(self.path)
            self.rows = dict(zip(saved["rows"].tolist(), saved["vectors"]))

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        missing = sorted(set(rows.tolist()) - set(self.rows))
        if missing:
            found = self.vec.encode(f"{self.key}_rows", [self.texts[i] for i in missing], save=False)
            self.rows.update(zip(missing, found))
            keys = sorted(self.rows)
            np.savez(self.path, rows=np.array(keys), vectors=np.stack([self.rows[k] for k in keys]))
        return np.stack([self.rows[i] for i in rows.tolist()])


# ---- the product's classifier on vectors, and candidate scores --------------------------------------
class Fitted:
    """The product's head fitted on support vectors (plus label-name vectors), with what scores need."""

    def __init__(self, x: np.ndarray, y: np.ndarray, names: np.ndarray, texts: list[str] | None = None,
                 mixup: bool = False, background: tuple[np.ndarray, np.ndarray] | None = None,
                 bags: int = 0) -> None:
        n_classes = len(names)
        xx, yy = np.vstack([x, names]), np.concatenate([y, np.arange(n_classes)])
        self.mixup_head = mixup_head(x, y, names) if mixup else None
        self.tfidf = None
        if texts is not None:  # character n-grams of the support texts (label names excluded)
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
            self.tx, self.ty = self.tfidf.fit_transform(texts), y
        self.head = LIB["fit"](xx, yy, n_classes, temperature=TEMPERATURE, weight_decay=1e-4, steps=200, center=True)
        self.n_classes = n_classes
        # heads fitted on subsets of the examples (a third of each label's left out, the label name kept): how
        # much a text's answer rests on particular examples (bagging; Breiman 1996, "Bagging Predictors")
        self.bag_heads = []
        rng = np.random.default_rng(BAG_SEED)
        for _ in range(bags):
            keep = np.ones(len(y), dtype=bool)
            for c in range(n_classes):
                rows = np.flatnonzero(y == c)
                drop = rng.choice(rows, size=min(len(rows) - 1, max(1, round(len(rows) * BAG_DROP))), replace=False)
                keep[drop] = False
            bx, by = np.vstack([x[keep], names]), np.concatenate([y[keep], np.arange(n_classes)])
            self.bag_heads.append(LIB["fit"](bx, by, n_classes, temperature=TEMPERATURE, weight_decay=1e-4,
                                             steps=200, center=True))
        self.sx, self.sy = self.head.transform(xx), yy  # support in the head's (centred, unit) space
        # Mahalanobis with one shared covariance (Lee et al. 2018), Ledoit-Wolf shrinkage (few examples)
        from sklearn.covariance import LedoitWolf
        means = np.stack([self.sx[yy == c].mean(axis=0) for c in range(n_classes)])
        lw = LedoitWolf().fit(self.sx - means[yy])
        self.means, self.precision = means, lw.precision_
        # relative Mahalanobis (Ren et al. 2021): minus the distance to the whole support's mean, whose own
        # covariance is the background; its combination with the logit is put on the logit's scale by their
        # spreads over the support examples
        self.centre = self.sx.mean(axis=0)
        self.background_precision = LedoitWolf().fit(self.sx - self.centre).precision_
        s_logits = self.head.logits(xx).astype(np.float64)
        s_top = s_logits.argmax(axis=1)
        s_rmd = self._relative_maha(self.sx)[np.arange(len(xx)), s_top]
        self.rmd_scale = float(s_logits.max(axis=1).std() / max(s_rmd.std(), 1e-12))
        # the part of a text off the support's principal subspace (ViM: Wang et al. 2022, "ViM:
        # Out-Of-Distribution with Virtual-logit Matching"), or off the span of the label means; each on the
        # logit's scale by their means over the support examples, as ViM's virtual logit is
        d = self.sx - self.centre
        _, _, vt = np.linalg.svd(d, full_matrices=False)
        self.pca_basis = vt[:min(n_classes, len(vt))]
        _, _, mt = np.linalg.svd(means - self.centre, full_matrices=False)
        self.means_basis = mt[:n_classes - 1]
        s_top_logit = float(s_logits.max(axis=1).mean())
        self.resid_scale = {name: s_top_logit / max(float(self._residual(self.sx, name).mean()), 1e-12)
                            for name in ("pca", "means")}
        # each support example's nearest same-label neighbour: the label's density (for maxcos_rel)
        sims = self.sx @ self.sx.T
        np.fill_diagonal(sims, -np.inf)
        same = np.where(yy[:, None] == yy[None, :], sims, -np.inf).max(axis=1)
        self.label_density = np.array([np.median(same[(yy == c) & np.isfinite(same)])
                                       if np.isfinite(same[yy == c]).any() else 1.0 for c in range(n_classes)])
        self.label_means = LIB["norm"](means)
        self.background = None if background is None else background_intents(self.head, background, self.label_means)

    def _maha(self, tq: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row (head space) to each label mean, shared covariance."""
        xp = tq @ self.precision
        mp = self.means @ self.precision
        return (xp * tq).sum(axis=1)[:, None] - 2 * xp @ self.means.T + (mp * self.means).sum(axis=1)[None, :]

    def _residual(self, tq: np.ndarray, basis: str) -> np.ndarray:
        """Norm of each row's part (head space, centred on the support) off a subspace: ``pca`` (the support's
        first principal directions, as many as labels) or ``means`` (the span of the label means)."""
        v = self.pca_basis if basis == "pca" else self.means_basis
        d = tq - self.centre
        return np.linalg.norm(d - (d @ v.T) @ v, axis=1)

    def _relative_maha(self, tq: np.ndarray) -> np.ndarray:
        """:meth:`_maha` minus the distance to the support's mean under its own covariance (Ren et al. 2021,
        "A Simple Fix to Mahalanobis Distance for Improving Near-OOD Detection")."""
        d = tq - self.centre
        return self._maha(tq) - ((d @ self.background_precision) * d).sum(axis=1)[:, None]

    def features(self, q: np.ndarray, texts: list[str] | None = None) -> dict[str, np.ndarray]:
        """Every candidate in-scope score (higher: in scope) for query vectors ``q``, plus ``pred`` and the
        top-2 labels."""
        logits = self.head.logits(q).astype(np.float64)
        order = np.argsort(-logits, axis=1)
        top, second = order[:, 0], order[:, 1]
        rows = np.arange(len(q))
        l1, l2 = logits[rows, top], logits[rows, second]
        z = logits - l1[:, None]
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        tq = self.head.transform(q)
        cos = tq @ self.sx.T  # (n, support)
        per_label = np.full((len(q), self.n_classes), -np.inf)
        for c in range(self.n_classes):
            per_label[:, c] = cos[:, self.sy == c].max(axis=1)
        cos_top, cos_second = per_label[rows, top], per_label[rows, second]
        knn = -np.sort(-cos, axis=1)[:, :3].mean(axis=1)
        maha = self._maha(tq)
        rmd = self._relative_maha(tq)
        f = {
            "logit": l1,
            "msp": probs[rows, top],
            "margin": l1 - l2,
            "pmargin": probs[rows, top] - probs[rows, second],
            "energy": l1 + np.log(np.exp(z).sum(axis=1)),
            "maxcos": cos.max(axis=1),
            "maxcos_top": cos_top,
            "nn_margin": cos_top - cos_second,
            "knn3": knn,
            "maxcos_rel": cos_top - self.label_density[top],
            "maha": -maha.min(axis=1),
            "maha_top": -maha[rows, top],
            "rmd": -rmd.min(axis=1),
            "rmd_top": -rmd[rows, top],
        }
        for w in (0.5, 1.0):
            f[f"logit+{w:g}rmd"] = l1 - w * self.rmd_scale * rmd[rows, top]
        for basis, name in (("pca", "vim"), ("means", "meansres")):
            r = self._residual(tq, basis)
            f[name] = -r
            for w in (0.5, 1.0):
                f[f"logit-{w:g}{name}"] = l1 - w * self.resid_scale[basis] * r
        for w in (0.5, 1.0, 2.0):
            f[f"logit+{w:g}cos"] = l1 + w * cos_top / TEMPERATURE
        for w in (0.5, 1.0):
            f[f"logit+{w:g}margin"] = l1 + w * (l1 - l2)
            f[f"logit+{w:g}cos+{w:g}margin"] = l1 + w * cos_top / TEMPERATURE + w * (l1 - l2)
        if self.tfidf is not None and texts is not None:
            tcos = (self.tfidf.transform(texts) @ self.tx.T).toarray()
            t_top = np.full(len(q), 0.0)
            for c in range(self.n_classes):
                hit = top == c
                if hit.any() and (self.ty == c).any():
                    t_top[hit] = tcos[np.ix_(hit, self.ty == c)].max(axis=1)
            f["tfidf_top"] = t_top
            for w in (0.5, 1.0):
                f[f"logit+{w:g}tfidf"] = l1 + w * t_top / TEMPERATURE
                f[f"logit+0.5cos+{w:g}tfidf"] = l1 + 0.5 * cos_top / TEMPERATURE + w * t_top / TEMPERATURE
        if self.background is not None:  # nearer another corpus's intent than the predicted label's mean
            near_label = (tq @ self.label_means.T)[rows, top]
            near_other = (tq @ self.background.T).max(axis=1) if len(self.background) else np.full(len(q), -1.0)
            gap = np.maximum(0.0, near_other - near_label)
            for w in (0.5, 1.0):
                f[f"logit-{w:g}bg"] = l1 - w * gap / TEMPERATURE
        if self.mixup_head is not None:
            z = self.mixup_head.logits(q).astype(np.float64)
            z_in, z_out = z[:, :self.n_classes], np.logaddexp.reduce(z[:, self.n_classes:], axis=1)
            f["mixup_logit"] = z_in.max(axis=1)
            f["mixup"] = -np.logaddexp(0.0, z_out - np.logaddexp.reduce(z_in, axis=1))  # log P(in scope)
        if self.bag_heads:
            bag = np.stack([h.logits(q).astype(np.float64) for h in self.bag_heads])  # (bags, n, labels)
            agree = (bag.argmax(axis=2) == top[None, :]).mean(axis=0)
            at_top = bag[:, rows, top]
            f["bag_agree"], f["bag_min"], f["bag_mean"] = agree, at_top.min(axis=0), at_top.mean(axis=0)
            f["logit-bagstd"] = l1 - at_top.std(axis=0)
            for w in (1.0, 3.0):
                f[f"logit+{w:g}bagagree"] = l1 + w * agree
        f["pred"], f["second"] = top, second
        return f


BACKGROUND_ALIAS = 0.8
"""A background intent whose mean lies this close (cosine, head space) to a known label's is that label under
another name, and is dropped."""


def background_intents(head: Any, background: tuple[np.ndarray, np.ndarray], label_means: np.ndarray) -> np.ndarray:
    """Known-unknown intents: the unit mean, in the head's space, of every intent of another labelled corpus
    (``background``: vectors and intent indices) that is not a known label under another name
    (:data:`BACKGROUND_ALIAS`). A text nearer one of them than its predicted label's mean is more likely an
    intent the labels do not cover (outlier exposure with real intents: Hendrycks et al. 2019, "Deep Anomaly
    Detection with Outlier Exposure")."""
    vectors, intents = background
    tb = head.transform(vectors)
    means = LIB["norm"](np.stack([tb[intents == b].mean(axis=0) for b in np.unique(intents)]))
    return means[(means @ label_means.T).max(axis=1) < BACKGROUND_ALIAS]


BAGS, BAG_DROP, BAG_SEED = 8, 1 / 3, 0  # heads on subsets of the examples, for the bag_* scores
MIXUP_SHARE = 1.0  # pseudo-outliers per support example
MIXUP_ALPHA = (0.3, 0.7)  # mixing weights drawn uniformly from this range


def mixup_head(x: np.ndarray, y: np.ndarray, names: np.ndarray, seed: int = 0) -> Any:
    """The product's head with pseudo-outliers as extra classes (Zhan et al. 2021, "Out-of-Scope Intent
    Detection with Self-Supervision and Discriminative Training"): convex combinations of two support examples
    of different labels, grouped by k-means into label-sized classes as the product groups "none of these"
    examples (:func:`fewshot.unknown.none_groups`)."""
    from fewshot.unknown import none_groups

    rng = np.random.default_rng(seed)
    n_classes = len(names)
    m = int(MIXUP_SHARE * len(x))
    i = rng.integers(0, len(x), m)
    other = (y[i] + rng.integers(1, n_classes, m)) % n_classes  # another label, uniformly
    j = np.array([rng.choice(np.flatnonzero(y == c)) for c in other])
    a = rng.uniform(*MIXUP_ALPHA, size=(m, 1))
    fake = (a * x[i] + (1 - a) * x[j]).astype(np.float32)
    groups = none_groups(fake, max(1, round(m / max(1, len(x) // n_classes))))
    xx = np.vstack([x, names, fake])
    yy = np.concatenate([y, np.arange(n_classes), n_classes + groups])
    return LIB["fit"](xx, yy, n_classes + int(groups.max()) + 1, temperature=TEMPERATURE, weight_decay=1e-4,
                      steps=200, center=True)


SCORES = ("logit", "msp", "margin", "energy", "maxcos", "maxcos_top", "nn_margin", "knn3", "maxcos_rel", "maha",
          "maha_top", "logit+0.5cos", "logit+1cos", "logit+2cos", "logit+0.5margin", "logit+1margin",
          "logit+0.5cos+0.5margin", "logit+1cos+1margin", "perlabel", "tfidf_top", "logit+0.5tfidf", "logit+1tfidf",
          "logit+0.5cos+0.5tfidf", "logit+0.5cos+1tfidf", "learned", "learned_small", "mixup", "mixup_logit",
          "logit-0.5bg", "logit-1bg", "rmd", "rmd_top", "logit+0.5rmd", "logit+1rmd", "vim", "logit-0.5vim",
          "logit-1vim", "meansres", "logit-0.5meansres", "logit-1meansres", "bag_agree", "bag_min", "bag_mean",
          "logit-bagstd", "logit+1bagagree", "logit+3bagagree")
DEFAULT_SCORES = tuple(s for s in SCORES if not s.startswith(("learned", "mixup")) and not s.endswith("bg")
                       and "rmd" not in s and "vim" not in s and "meansres" not in s and "bag" not in s)
"""Every score but those that refit heads (slower), read another corpus (``bg``) or came after the tables of
docs/research/unknown-in-domain.md (``rmd``, ``vim``, ``meansres``, ``bag``: their own result files)."""
LEARNED_FEATURES = {"learned": ("logit", "margin", "maxcos_top", "nn_margin", "knn3", "maha", "energy", "msp",
                                "maxcos_rel"),
                    "learned_small": ("logit", "maxcos_top", "margin")}
EPISODE_SCORES = ("logit", "logit+0.5cos")  # kept per episode in the JSON (the product's and the recommended)
MAX_LEFT_OUT_LABELS = 20
PROB_MARGINS = (0.1, 0.2, 0.3)


def cross_validated(x: np.ndarray, y: np.ndarray, names: np.ndarray, texts: list[str], seed: int = 0,
                    mixup: bool = False, background: tuple[np.ndarray, np.ndarray] | None = None, bags: int = 0
                    ) -> dict[str, np.ndarray]:
    """Features of held-out support examples (5 folds per label, as the product's automatic threshold),
    with ``right`` and ``label`` (the true label)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        fold[rows] = rng.permutation(len(rows)) % FOLDS
    parts: list[dict[str, np.ndarray]] = []
    for k in range(FOLDS):
        test = fold == k
        t = np.array(texts, dtype=object)
        f = Fitted(x[~test], y[~test], names, list(t[~test]), mixup, background, bags).features(x[test],
                                                                                               list(t[test]))
        f["right"], f["label"] = f["pred"] == y[test], y[test]
        parts.append(f)
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def add_perlabel(f: dict[str, np.ndarray], cv: dict[str, np.ndarray], prior: float = 5.0) -> None:
    """Per-label thresholds as a score: the logit minus the predicted label's typical held-out logit (mean of
    its right cross-validated examples, shrunk towards the overall mean with ``prior`` pseudo-examples)."""
    good = cv["right"]
    overall = cv["logit"][good].mean() if good.any() else cv["logit"].mean()
    n_classes = int(max(cv["label"].max(), f["pred"].max())) + 1
    offset = np.full(n_classes, overall)
    for c in range(n_classes):
        s = cv["logit"][good & (cv["label"] == c)]
        offset[c] = (s.sum() + prior * overall) / (len(s) + prior)
    f["perlabel"] = f["logit"] - offset[f["pred"]] + overall


def left_out_label_features(x: np.ndarray, y: np.ndarray, names: np.ndarray, texts: list[str], seed: int = 0
                            ) -> dict[str, np.ndarray]:
    """Features of support examples whose label is left out of the fit (up to ``MAX_LEFT_OUT_LABELS`` labels):
    in-domain unknowns simulated from the support set itself, each landing among its neighbour labels."""
    n_classes = len(names)
    labels = np.random.default_rng(seed).permutation(n_classes)[:MAX_LEFT_OUT_LABELS]
    parts = []
    for c in labels:
        keep = y != c
        remap = np.cumsum(np.arange(n_classes) != c) - 1  # label index without c
        t = np.array(texts, dtype=object)
        fitted = Fitted(x[keep], remap[y[keep]], np.delete(names, c, axis=0), list(t[keep]))
        parts.append(fitted.features(x[~keep], list(t[~keep])))
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def add_learned(fs: list[dict[str, np.ndarray]], cv: dict[str, np.ndarray], lolo: dict[str, np.ndarray]) -> None:
    """A logistic regression, fitted per classifier, that tells cross-validated held-out support examples
    (in scope) from left-out-label examples (simulated in-domain unknowns); its decision value is the score."""
    from sklearn.linear_model import LogisticRegression

    for name, feats in LEARNED_FEATURES.items():
        train = np.vstack([np.column_stack([cv[k] for k in feats]), np.column_stack([lolo[k] for k in feats])])
        mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-9
        target = np.concatenate([np.ones(len(cv["logit"])), np.zeros(len(lolo["logit"]))])
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit((train - mu) / sd, target)
        for f in fs:
            f[name] = model.decision_function((np.column_stack([f[k] for k in feats]) - mu) / sd)


# ---- metrics ----------------------------------------------------------------------------------------
def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(in-scope score > out-of-scope score), ties half (Mann-Whitney)."""
    both = np.concatenate([pos, neg])
    ranks = pd.Series(both).rank().to_numpy()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def threshold_for_drop_unbiased(scores: np.ndarray, right: np.ndarray, max_drop: float) -> float:
    """As the product's ``threshold_for_drop``, with the Weibull plotting position (``np.quantile(...,
    method="weibull")``: the k-th lowest of n scores is the k/(n+1) quantile). The product's linear rule places
    the threshold at the (1 + q (n-1))-th lowest right score, which a new right text falls below with probability
    (1 + q (n-1)) / (n+1): about 4 % instead of 2 % with 50 held-out examples."""
    good = np.asarray(scores)[np.asarray(right, dtype=bool)]
    if not len(good):
        return float(np.min(scores))
    return float(np.quantile(good, min(1.0, max_drop * len(scores) / len(good)), method="weibull"))


def episode_metrics(f_in: dict, correct: np.ndarray, f_oos: dict[str, dict], thresholds: dict[str, float],
                    unbiased: dict[str, float], scores: tuple[str, ...]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    acc = float(correct.mean())
    for s in scores:
        t, tu = thresholds[s], unbiased[s]  # NaN: no automatic threshold for this score (its columns NaN)
        kept = correct & (f_in[s] >= t)
        row = {"accuracy": 100 * acc, "auto_cost": 100 * (kept.mean() - acc) if np.isfinite(t) else np.nan,
               "unbiased_cost": 100 * ((correct & (f_in[s] >= tu)).mean() - acc) if np.isfinite(tu) else np.nan}
        for kind, fo in f_oos.items():
            row[f"{kind}_auroc"] = auroc(f_in[s], fo[s])
            row[f"{kind}_recall@2pt"] = recall_at_cost(correct, f_in[s], fo[s])
            row[f"{kind}_fpr@95"] = fpr_at_95(f_in[s], fo[s])
            row[f"{kind}_auto_recall"] = float((fo[s] < t).mean()) if np.isfinite(t) else np.nan
            row[f"{kind}_unbiased_recall"] = float((fo[s] < tu).mean()) if np.isfinite(tu) else np.nan
        out[s] = row
    return out


def ambiguity(f_in: dict, y_in: np.ndarray, f_oos: dict[str, dict], shares: tuple[float, ...] = (0.05, 0.1, 0.2)
              ) -> dict[str, float]:
    """"Ambiguous: A or B?" where the top two labels nearly tie: for the in-scope queries with the smallest
    top-2 probability margin (``share`` of them), how often the top label is right, how often one of the two is
    right, and the share of out-of-scope queries (accepted by the margin rule alone) that it flags."""
    out: dict[str, float] = {}
    m_in = f_in["margin"]
    top1 = f_in["pred"] == y_in
    top2 = top1 | (f_in["second"] == y_in)
    out["top1_accuracy_all"] = float(top1.mean())
    out["top2_accuracy_all"] = float(top2.mean())
    for t in PROB_MARGINS:  # a fixed top-2 probability margin, as Rasa's FallbackClassifier ambiguity_threshold
        amb = f_in["pmargin"] < t
        out[f"p{t:g}_share"] = float(amb.mean())
        out[f"p{t:g}_top1"] = float(top1[amb].mean()) if amb.any() else float("nan")
        out[f"p{t:g}_top2"] = float(top2[amb].mean()) if amb.any() else float("nan")
        out[f"p{t:g}_clear_top1"] = float(top1[~amb].mean())
        for kind, fo in f_oos.items():
            out[f"p{t:g}_{kind}_flagged"] = float((fo["pmargin"] < t).mean())
    for share in shares:
        t = np.quantile(m_in, share)
        amb = m_in <= t
        out[f"amb{share:g}_top1"] = float(top1[amb].mean())
        out[f"amb{share:g}_top2"] = float(top2[amb].mean())
        out[f"amb{share:g}_clear_top1"] = float(top1[~amb].mean())
        for kind, fo in f_oos.items():
            out[f"amb{share:g}_{kind}_flagged"] = float((fo["margin"] <= t).mean())
    return out


# ---- episodes ---------------------------------------------------------------------------------------
def queries(query: pd.DataFrame, v_query: np.ndarray, known: list[str], unknown: list[str]
            ) -> tuple[tuple[np.ndarray, np.ndarray, list[str]], tuple[np.ndarray, list[str]]]:
    """In-scope queries (vectors, label indices, texts) and in-domain out-of-scope ones (vectors, texts)."""
    inside = query.label.isin(known).to_numpy()
    held = query.label.isin(unknown).to_numpy()
    y_in = np.array([known.index(lab) for lab in query.label[inside]])
    return ((v_query[inside], y_in, query.text[inside].tolist()), (v_query[held], query.text[held].tolist()))


def run_episode(support: tuple[np.ndarray, np.ndarray, list[str]], names: np.ndarray,
                in_scope: tuple[np.ndarray, np.ndarray, list[str]], in_domain: tuple[np.ndarray, list[str]],
                other: pd.DataFrame, v_other: np.ndarray, scores: tuple[str, ...],
                tuning: Tuning | None = None, label_names: list[str] | None = None,
                background: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """One classifier: fit on ``support`` (vectors, label indices, texts), score the in-scope queries, the
    in-domain out-of-scope ones and the other-domain ones; with ``tuning``, also per fine-tuning arm (the
    classifier fine-tuned on the support texts, every text re-encoded by its adapted encoder)."""
    x, y, texts = support
    q_in, y_in, q_texts = in_scope
    oos = {"in_domain": in_domain, "other_domain": (v_other, other.text.tolist())}
    mixup = any(s.startswith("mixup") for s in scores)
    bags = BAGS if any("bag" in s for s in scores) else 0
    fitted = Fitted(x, y, names, texts, mixup, background, bags)
    cv = cross_validated(x, y, names, texts, mixup=mixup, background=background, bags=bags)
    f_in = fitted.features(q_in, q_texts)
    f_oos = {k: fitted.features(v, t) for k, (v, t) in oos.items()}
    for f in (f_in, cv, *f_oos.values()):
        add_perlabel(f, cv)
    if any(s.startswith("learned") for s in scores):
        add_learned([f_in, cv, *f_oos.values()], cv, left_out_label_features(x, y, names, texts))
    thresholds = {s: LIB["threshold_for_drop"](cv[s], cv["right"], MAX_DROP) for s in scores}
    unbiased = {s: threshold_for_drop_unbiased(cv[s], cv["right"], MAX_DROP) for s in scores}
    correct = f_in["pred"] == y_in
    metrics = episode_metrics(f_in, correct, f_oos, thresholds, unbiased, scores)
    extra: dict[str, dict] = {}
    if tuning is not None and label_names is not None:
        texts_oos = {k: t for k, (_, t) in oos.items()}
        for arm, found in tuning.arms(texts, y, label_names, q_texts, y_in, texts_oos).items():
            metrics.update(found["metrics"])
            extra[arm] = found["report"]
    return {"metrics": metrics, "ambiguity": ambiguity(f_in, y_in, f_oos), **({"finetune": extra} if extra else {})}


FT_SCORES = ("logit", "logit+0.5cos", "logit+1cos", "msp", "energy", "maxcos_top", "knn3", "maha", "logit+0.5margin")
"""Scores kept per fine-tuning arm (under ``<arm>:<score>``); the automatic threshold only for ``logit``."""


class Tuning:
    """Fine-tuning arms of an episode, through the library's public API: ``FewShotClassifier(model)`` fitted on
    the support texts (label names as examples, as the product), then ``clf.finetune(config)``; every text is
    re-encoded by the adapted encoder and read by the same :class:`Fitted` scores as the frozen vectors.

    - ``ft`` (the product's fine-tuning: 3-fold estimate, weights kept only when it rises): when not kept the
      arm's vectors are the frozen ones. The automatic threshold of ``ft:logit`` is the classifier's own
      ``auto_threshold_`` (after fine-tuning: from the estimate's fold copies, which never saw their held-out
      examples).
    - ``ft<N>`` (``folds=0``: no estimate, ``N`` steps, always kept): whether adaptation itself separates unknown
      intents. Its automatic threshold is left out (cross-validating on an encoder that saw every example is
      biased, docs/finetune.md).
    """

    def __init__(self, model: str, forced_steps: int, seconds: float | None, product: bool = True) -> None:
        self.model, self.forced_steps, self.seconds, self.product = model, forced_steps, seconds, product

    def _classifier(self, texts: list[str], labels: list[str]) -> Any:
        from fewshot import FewShotClassifier

        return FewShotClassifier(self.model, label_names=True, auto_unknown=True).fit(texts, labels)

    def arms(self, texts: list[str], y: np.ndarray, label_names: list[str], q_texts: list[str], y_in: np.ndarray,
             texts_oos: dict[str, list[str]]) -> dict[str, dict]:
        from fewshot.adapt import FinetuneConfig

        labels = [label_names[i] for i in y]
        configs = {}
        if self.product:
            configs["ft"] = FinetuneConfig(time_budget=self.seconds)
        if self.forced_steps:
            configs[f"ft{self.forced_steps}"] = FinetuneConfig(time_budget=self.seconds, folds=0,
                                                               steps=self.forced_steps)
        out = {}
        for arm, config in configs.items():
            clf = self._classifier(texts, labels)
            t0 = time.time()
            report = clf.finetune(config)
            seconds = time.time() - t0
            enc = clf.encoder
            name_texts = [LIB["label_text"](lab) for lab in label_names]
            fitted = Fitted(enc.encode(texts), y, enc.encode(name_texts), texts)
            f_in = fitted.features(enc.encode(q_texts), q_texts)
            f_oos = {k: fitted.features(enc.encode(t), t) for k, t in texts_oos.items()}
            thr = {s: (float(clf.auto_threshold_) if (s == "logit" and config.folds) else np.nan) for s in FT_SCORES}
            correct = f_in["pred"] == y_in
            m = episode_metrics(f_in, correct, f_oos, thr, thr, FT_SCORES)
            print(f"  {arm}: kept={report.kept} steps={report.steps} {seconds:.0f} s, in-domain AUROC "
                  f"{m['logit']['in_domain_auroc']:.3f}", file=sys.stderr, flush=True)
            out[arm] = {"metrics": {f"{arm}:{s}": v for s, v in m.items()},
                        "report": {"kept": bool(report.kept), "steps": int(report.steps), "seconds": round(seconds, 1),
                                   "estimate_before": report.estimate_before, "estimate_after": report.estimate_after}}
        return out


def sample_support(train: pd.DataFrame, vectors: np.ndarray, labels: list[str], shots: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rows, ys = [], []
    for c, lab in enumerate(labels):
        pool = np.flatnonzero(train.label.to_numpy() == lab)
        rows.extend(rng.choice(pool, size=shots, replace=False))
        ys.extend([c] * shots)
    rows_a = np.array(rows)
    return vectors[rows_a], np.array(ys), train.text.to_numpy()[rows_a].tolist()


def clinc_draws(vec: Vectors, shots: int, draws: int, domains: list[str] | None = None
                ) -> Iterator[tuple[dict, list[str], list[str], tuple[np.ndarray, np.ndarray, list[str]]]]:
    """CLINC150 single-domain episodes: ``(description, known intents, held-out intents, support)``, seeded per
    domain and draw (every script that draws them gets the same episodes)."""
    train, v_train = vec.split("clinc150", "train")
    for d_i, (domain, intents) in enumerate(common.CLINC150_DOMAINS.items()):
        if domains and domain not in domains:
            continue
        for draw in range(draws):
            rng = np.random.default_rng([1, shots, d_i, draw])
            order = rng.permutation(len(intents))
            known = sorted(intents[i] for i in order[:IN_SCOPE_PER_DOMAIN])
            unknown = sorted(intents[i] for i in order[IN_SCOPE_PER_DOMAIN:])
            support = sample_support(train, v_train, known, shots, rng)
            yield {"dataset": "clinc150", "domain": domain, "draw": draw, "shots": shots}, known, unknown, support


def hwu_draws(vec: Vectors, shots: int, draws: int
              ) -> Iterator[tuple[dict, list[str], list[str], tuple[np.ndarray, np.ndarray, list[str]]]]:
    """HWU64 held-out-intent episodes, as :func:`clinc_draws`: a third of every scenario's intents held out."""
    train, v_train = vec.split("hwu64", "train")
    labels = sorted(train.label.unique())
    scenarios: dict[str, list[str]] = {}
    for lab in labels:
        scenarios.setdefault(lab.split("_")[0], []).append(lab)
    for draw in range(draws):
        rng = np.random.default_rng([2, shots, draw])
        unknown = []
        for intents in scenarios.values():
            if len(intents) > 1:
                n = min(len(intents) - 1, max(1, round(len(intents) * HWU64_HELD_OUT_SHARE)))
                unknown += list(rng.choice(intents, size=n, replace=False))
        known = sorted(set(labels) - set(unknown))
        support = sample_support(train, v_train, known, shots, rng)
        yield {"dataset": "hwu64", "draw": draw, "shots": shots}, known, sorted(unknown), support


def episode_draws(vec: Vectors, dataset: str, shots: int, draws: int, domains: list[str] | None = None
                  ) -> Iterator[tuple[dict, list[str], list[str], tuple[np.ndarray, np.ndarray, list[str]]]]:
    """The episodes of ``dataset`` (``clinc150``: ``draws`` per domain; ``hwu64``: ``draws`` in all)."""
    return clinc_draws(vec, shots, draws, domains) if dataset == "clinc150" else hwu_draws(vec, shots, draws)


def run_episodes(vec: Vectors, dataset: str, split: str, shots: int, draws: int, scores: tuple[str, ...],
                 tuning: Tuning | None = None, domains: list[str] | None = None) -> list[dict]:
    """Every episode of ``dataset``: queries from ``split``, other-domain texts from CLINC150 ``oos_<split>``."""
    query, v_query = vec.split(dataset, split)
    other, v_other = vec.split("clinc150", f"oos_{split}")
    background = None
    if any(s.endswith("bg") for s in scores):  # the other dataset's training intents (cross-dataset, as the students)
        frame, v_bg = vec.split("hwu64" if dataset == "clinc150" else "clinc150", "train")
        if isinstance(v_bg, LazyRows):
            raise SystemExit("the bg scores read every train vector of the other dataset: run without --lazy-train")
        background = (np.asarray(v_bg), pd.factorize(frame.label)[0])
    out = []
    for meta, known, unknown, support in episode_draws(vec, dataset, shots, draws, domains):
        res = run_episode(support, vec.names(dataset, known), *queries(query, v_query, known, unknown),
                          other, v_other, scores, tuning, known, background)
        out.append({**meta, "unknown": unknown, **res})
    return out


# ---- summary ----------------------------------------------------------------------------------------
COLUMNS = ("in_domain_auroc", "in_domain_recall@2pt", "in_domain_fpr@95", "in_domain_auto_recall",
           "other_domain_auroc", "other_domain_recall@2pt", "other_domain_fpr@95", "other_domain_auto_recall",
           "auto_cost", "in_domain_unbiased_recall", "other_domain_unbiased_recall", "unbiased_cost")


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error over episodes (episodes where the value is undefined are left out)."""
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def summarise(episodes: list[dict], scores: tuple[str, ...]) -> list[dict]:
    rows = []
    keys = sorted({(e["dataset"], e["shots"]) for e in episodes})
    for dataset, shots in keys:
        eps = [e for e in episodes if e["dataset"] == dataset and e["shots"] == shots]
        base = {c: np.array([e["metrics"]["logit"][c] for e in eps]) for c in COLUMNS}
        for s in scores:
            row = {"dataset": dataset, "shots": shots, "score": s, "episodes": len(eps),
                   "accuracy": mean_se(np.array([e["metrics"][s]["accuracy"] for e in eps]))}
            for c in COLUMNS:
                v = np.array([e["metrics"][s][c] for e in eps])
                row[c] = mean_se(v)
                row[f"{c}_diff"] = mean_se(v - base[c])
            rows.append(row)
        arms = sorted({arm for e in eps for arm in e.get("finetune", {})})
        for arm in arms:
            reps = [e["finetune"][arm] for e in eps if arm in e.get("finetune", {})]
            rows.append({"dataset": dataset, "shots": shots, "score": f"_finetune:{arm}", "episodes": len(reps),
                         "kept": mean_se(np.array([float(r["kept"]) for r in reps])),
                         "steps": mean_se(np.array([float(r["steps"]) for r in reps])),
                         "seconds": mean_se(np.array([float(r["seconds"]) for r in reps]))})
        amb_keys = eps[0]["ambiguity"].keys()
        rows.append({"dataset": dataset, "shots": shots, "score": "_ambiguity", "episodes": len(eps),
                     **{k: mean_se(np.array([e["ambiguity"][k] for e in eps])) for k in amb_keys}})
    return rows


def markdown(rows: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "Means ± standard errors over episodes; `Δ` = paired difference against `logit` (the product's score). "
             "recall@2pt: best recall of a threshold costing at most 2 points (chosen with the labels); "
             "auto: the automatic threshold (cross-validated on the support set) - its recall and cost in points; "
             "Weibull auto: the same with the Weibull plotting position (threshold_for_drop_unbiased).", ""]
    for dataset, shots in sorted({(r["dataset"], r["shots"]) for r in rows}):
        sub = [r for r in rows if r["dataset"] == dataset and r["shots"] == shots]
        eps = sub[0]["episodes"]
        lines += [f"### {dataset}, {shots} shots ({eps} episodes, accuracy {sub[0]['accuracy'][0]:.1f} %)", "",
                  "| score | accuracy % | in-domain AUROC | Δ | recall@2pt | Δ | FPR@95 | auto recall | "
                  "other-domain AUROC | Δ | "
                  "recall@2pt | FPR@95 | auto recall | auto cost (points) | Weibull auto: in-domain recall | "
                  "other-domain recall | cost |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sub:
            if r["score"].startswith("_"):
                continue

            def c(k: str, d: int = 3) -> str:
                return f"{r[k][0]:.{d}f} ± {r[k][1]:.{d}f}"

            def dd(k: str) -> str:
                return f"{r[k + '_diff'][0]:+.3f} ± {r[k + '_diff'][1]:.3f}"

            lines.append(f"| {r['score']} | {c('accuracy', 1)} | {c('in_domain_auroc')} | {dd('in_domain_auroc')} | "
                         f"{c('in_domain_recall@2pt')} | {dd('in_domain_recall@2pt')} | {c('in_domain_fpr@95')} | "
                         f"{c('in_domain_auto_recall')} | {c('other_domain_auroc')} | {dd('other_domain_auroc')} | "
                         f"{c('other_domain_recall@2pt')} | {c('other_domain_fpr@95')} | "
                         f"{c('other_domain_auto_recall')} | {c('auto_cost', 2)} | {c('in_domain_unbiased_recall')} | "
                         f"{c('other_domain_unbiased_recall')} | {c('unbiased_cost', 2)} |")
        for r in sub:
            if r["score"].startswith("_finetune:"):
                lines.append(f"\nFine-tuning `{r['score'][10:]}` ({r['episodes']} episodes): weights kept in "
                             f"{r['kept'][0]:.0%}, final steps {r['steps'][0]:.1f}, {r['seconds'][0]:.0f} s per run")
        amb = next((r for r in sub if r["score"] == "_ambiguity"), None)
        if amb:
            lines += ["", "Ambiguity (smallest top-2 margins): share of in-scope queries flagged | top-1 right | "
                      "one of the two right | top-1 right among the rest | in-domain OOS flagged | other-domain "
                      "OOS flagged", ""]
            lines.append(f"all queries: top-1 {amb['top1_accuracy_all'][0]:.3f}, top-2 "
                         f"{amb['top2_accuracy_all'][0]:.3f}")
            for t in PROB_MARGINS:
                k = f"p{t:g}"
                if k + "_share" in amb:
                    lines.append(f"- top-2 probability margin < {t:g}: {amb[k + '_share'][0]:.3f} | "
                                 f"{amb[k + '_top1'][0]:.3f} | {amb[k + '_top2'][0]:.3f} | "
                                 f"{amb[k + '_clear_top1'][0]:.3f} | {amb[k + '_in_domain_flagged'][0]:.3f} | "
                                 f"{amb[k + '_other_domain_flagged'][0]:.3f}")
            for share in ("0.05", "0.1", "0.2"):
                lines.append(f"- lowest {share} of logit margins: {amb[f'amb{share}_top1'][0]:.3f} | {amb[f'amb{share}_top2'][0]:.3f} | "
                             f"{amb[f'amb{share}_clear_top1'][0]:.3f} | {amb[f'amb{share}_in_domain_flagged'][0]:.3f} | "
                             f"{amb[f'amb{share}_other_domain_flagged'][0]:.3f}")
        lines.append("")
    return "\n".join(lines)


def slim(episodes: list[dict]) -> list[dict]:
    """Episodes with the per-score metrics of ``EPISODE_SCORES`` only (the summary has every score)."""
    keep = (*EPISODE_SCORES, *(f"{arm}:{s}" for arm in ("ft",) for s in EPISODE_SCORES))
    return [{**e, "metrics": {k: v for k, v in e["metrics"].items() if k in keep or k.endswith(":logit")}}
            for e in episodes]


def compact_json(obj: object) -> str:
    """JSON with floats rounded to 4 decimals, one summary row or episode per line (the file stays small)."""
    def rounded(x: object) -> object:
        if isinstance(x, float):
            return round(x, 4)
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [rounded(v) for v in x]
        if isinstance(x, np.integer):
            return int(x)
        return x

    data = rounded(obj)
    if not isinstance(data, dict):
        return json.dumps(data) + "\n"
    parts = [f'"{k}": ' + ("[\n" + ",\n".join(json.dumps(v) for v in val) + "\n]" if isinstance(val, list)
                          else json.dumps(val)) for k, val in data.items()]
    return "{\n" + ",\n".join(parts) + "\n}\n"


def write_results(out: Path, result: dict, text: str) -> None:
    """``result`` as compact JSON at ``out``, the markdown ``text`` next to it (``.md``) and on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(compact_json(result))
    out.with_suffix(".md").write_text(text)
    print(text)


COMPARED = ("accuracy", "in_domain_auroc", "in_domain_recall@2pt", "other_domain_auroc", "auto_cost")
"""Per-episode metrics ``--compare`` pairs."""


def compare(base: Path, other: Path, score: str = "logit") -> str:
    """Markdown: ``other`` minus ``base`` (two result files of this script, e.g. two encoders), paired over the
    episodes both hold (same dataset, domain, draw and shots: the same seeds), mean ± standard error."""
    def by_episode(path: Path) -> dict[tuple, dict[str, float]]:
        return {(e["dataset"], e.get("domain", ""), e["draw"], e["shots"]): e["metrics"][score]
                for e in json.loads(path.read_text())["episodes"] if score in e["metrics"]}

    a, b = by_episode(base), by_episode(other)
    lines = [f"`{other}` minus `{base}`, score `{score}`, paired over episodes (mean ± standard error):", "",
             "| dataset | shots | episodes | " + " | ".join(COMPARED) + " |", "|---|---|---|" + "---|" * len(COMPARED)]
    for dataset, shots in sorted({(k[0], k[3]) for k in a.keys() & b.keys()}):
        keys = [k for k in a.keys() & b.keys() if k[0] == dataset and k[3] == shots]
        cells = []
        for metric in COMPARED:
            diff = np.array([b[k][metric] - a[k][metric] for k in keys])
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            cells.append(f"{diff.mean():+.4f} ± {se:.4f}")
        lines.append(f"| {dataset} | {shots} | {len(keys)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = common.parser(__doc__.splitlines()[0], out="oos_indomain.json")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BASE", "OTHER"), default=None,
                        help="print OTHER minus BASE (two result files), paired over their common episodes, and exit")
    parser.add_argument("--split", choices=("valid", "test"), default="valid",
                        help="query split: valid for development choices, test for the final table")
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--draws", type=int, default=3,
                        help="draws per CLINC150 domain (10 domains) and HWU64 draws (x3) per shot count")
    parser.add_argument("--datasets", nargs="+", default=["clinc150", "hwu64"])
    parser.add_argument("--scores", nargs="+", default=list(DEFAULT_SCORES), choices=SCORES,
                        help="scores to compare (learned and learned_small refit the head once per label: slow; "
                             "mixup and mixup_logit fit a second head)")
    parser.add_argument("--model", default="minilm", help="encoder (frozen MiniLM-L6: no meta-training on these sets)")
    parser.add_argument("--extra-layers", default="auto",
                        help="encoder layers appended to the embedding: 'auto' (the product's), 'none' or numbers like 2,4")
    parser.add_argument("--cache", default="/tmp/fewshot-oosid-cache", help="folder for cached vectors (.npy)")
    parser.add_argument("--domains", nargs="+", choices=tuple(common.CLINC150_DOMAINS), default=None,
                        help="CLINC150 domains (default: all 10)")
    parser.add_argument("--hwu-draws", type=int, default=None, help="HWU64 draws per shot count (default: 3 x --draws)")
    parser.add_argument("--finetune", action="store_true",
                        help="also the product's per-task fine-tuning (clf.finetune()), scores under ft:<score>")
    parser.add_argument("--finetune-forced-steps", type=int, default=0,
                        help="also fine-tuning without the estimate (folds=0) for N steps, always kept: ftN:<score>")
    parser.add_argument("--finetune-seconds", type=float, default=None,
                        help="fine-tuning time budget (default: none, so that the machine's load does not cut runs)")
    parser.add_argument("--lazy-train", action="store_true",
                        help="encode only the train and query rows episodes use (for slow encoders such as mpnet); "
                             "default with mpnet")
    args = parser.parse_args()
    if args.compare:
        print(compare(*args.compare))
        return 0
    data = Path(args.data)
    if not common.has_data(data, ("clinc150",), args.split):
        return 0
    common.reproducible()
    common.set_threads(1)
    LIB.update(_library())
    scores = tuple(dict.fromkeys(["logit", *args.scores]))
    layers = args.extra_layers if args.extra_layers == "auto" else (
        [] if args.extra_layers == "none" else [int(k) for k in args.extra_layers.split(",")])
    vec = Vectors(data, Path(args.cache), args.model, layers, lazy_train=args.lazy_train or args.model == "mpnet")
    tuning = None
    arm_names: list[str] = []
    if args.finetune or args.finetune_forced_steps:
        tuning = Tuning(args.model, args.finetune_forced_steps, args.finetune_seconds, product=args.finetune)
        arm_names = (["ft"] if args.finetune else []) + (
            [f"ft{args.finetune_forced_steps}"] if args.finetune_forced_steps else [])
    hwu_draws = 3 * args.draws if args.hwu_draws is None else args.hwu_draws
    episodes: list[dict] = []
    for shots in args.shots:
        if "clinc150" in args.datasets:
            episodes += run_episodes(vec, "clinc150", args.split, shots, args.draws, scores, tuning, args.domains)
        if "hwu64" in args.datasets and (data / "hwu64").is_dir() and hwu_draws:
            episodes += run_episodes(vec, "hwu64", args.split, shots, hwu_draws, scores, tuning)
        print(f"done: {shots} shots", file=sys.stderr, flush=True)
    scores = (*scores, *(f"{arm}:{s}" for arm in arm_names for s in FT_SCORES))
    rows = summarise(episodes, scores)
    command = "python bench/oos_indomain.py " + " ".join(sys.argv[1:])
    write_results(Path(args.out), {"command": command, "summary": rows, "episodes": slim(episodes)},
                  markdown(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
