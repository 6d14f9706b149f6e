"""Meta-training the encoder itself (``fewshot train --encoder``): the top transformer layers of MiniLM-L6,
distilled from a larger teacher (all-mpnet-base-v2) together with episodic and contrastive terms.

What a step sees: a batch of ``batch_labels`` labels x ``batch_per_label`` texts. The student's vector is
the product's (mean-pooled last layer, unit length, the ``append_layers`` appended, re-normalised: frozen ones
from the cache, trained ones as the saved student computes them); only the top ``train_layers`` layers
change, so the token states entering them are computed once (:func:`fewshot.adapt.layers.lower_states`) and a
step runs just those layers. The loss adds

- **distillation** (Hinton, Vinyals & Dean 2015; for sentence embeddings Reimers & Gurevych 2020, "Making
  Monolingual Sentence Embeddings Multilingual using Knowledge Distillation"): ``1 - cos`` between a linear
  projection of the student's vector and the teacher's sentence embedding. The projection starts at the
  least-squares fit of the frozen student to the teacher, so the first steps do not chase a random map;
- **similarity structure** (relational distillation, Park et al. 2019, "Relational Knowledge
  Distillation"): the KL divergence from the teacher's to the student's softmax over each row's in-batch
  cosine similarities, in the student's own space (what the few-shot classifier compares);
- **episodes**: the prototypical loss (Snell et al. 2017) with each label's texts split into support and
  query; optionally the contrastive loss (Hadsell et al. 2006) on every same-label pair and each row's
  hardest other-label row;
- **preservation**: the squared distance of each vector to the frozen encoder's (Li, Grandvalet & Davoine
  2018 keep the weights near the start; this keeps the output there), against forgetting what the frozen
  encoder did well outside the training data;
- **held-out labels** (optional, ``unknown_weight``): the batch's last ``unknown_labels`` labels are hidden
  from the support set and their texts ranked below the known queries by the in-scope score
  (:class:`fewshot.losses.HeldOutLabelRankingLoss`), for unknown intents inside the domain;
- **self-supervised contrast** (optional, ``selfsup_weight``; SimCSE, Gao et al. 2021, as CPFT's
  pre-training, Zhang et al. 2021): a second pass of the batch under other dropout masks, each text's two
  views matched against the batch (:class:`fewshot.losses.SelfContrastiveLoss`);
- **augmented inputs** (optional, ``augment_weight``): the distillation term again on an EDA copy of each
  batch text (:mod:`fewshot.meta.augment`), against the teacher's vector of that copy;
- **general sentence pairs** (optional, ``pairs_weight``): graded pairs from outside the training domain
  (``--general-pairs``), each pair's cosine pulled to its gold score
  (:class:`fewshot.losses.CosineScoreLoss`), against forgetting.

Each term is a loss of :mod:`fewshot.losses`, one module each; the contrastive pairs come from
:func:`fewshot.losses.pairs.all_positives_and_hardest_negatives`.

The loop is :func:`fewshot.meta.trainer.outer_loop` (progress bar, resumable checkpoints): every
``val_every`` steps the student is scored with the classifier's default rule, on the validation CSVs when
given (the few-shot accuracy on a dataset the training never saw) and otherwise on held-out training labels,
and the best step is kept (step 0, the frozen encoder, competes).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import FewShotError
from ..losses import (
    ContrastiveLoss,
    CosineScoreLoss,
    HeldOutLabelRankingLoss,
    PrototypicalLoss,
    SelfContrastiveLoss,
    all_positives_and_hardest_negatives,
    distill_cosine,
    preservation_loss,
    similarity_kl,
)
from .trainer import LoopState, Validation, keeps_torch_rng, outer_loop, split_classes
from .training_args import TrainConfig

CHECKPOINT = "checkpoint.pt"
"""The resumable state of an unfinished ``--encoder`` run, inside its ``--out`` folder (removed at the end)."""

LOSS_TERMS = ("distill", "structure", "episode", "contrastive", "preserve", "unknown", "selfsup", "augment", "pairs")
"""The loss terms of a step; each has a ``<name>_weight`` field in :class:`TrainConfig`."""

EvalSet = tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]
"""``((support texts, labels), (test texts, labels))``: a few-shot evaluation."""


# ---- the pieces of a step ------------------------------------------------------------------------------
def least_squares_projection(student: np.ndarray, teacher: np.ndarray, ridge: float) -> nn.Linear:
    """The affine map ``student -> teacher`` minimising ``||[S 1] W - T||^2 + ridge ||W||^2`` (bias free of
    the ridge), as an ``nn.Linear``: the start of the distillation projection."""
    x = np.hstack([student.astype(np.float64), np.ones((len(student), 1))])
    reg = ridge * np.eye(x.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(x.T @ x + reg, x.T @ teacher.astype(np.float64))
    proj = nn.Linear(student.shape[1], teacher.shape[1])
    with torch.no_grad():
        proj.weight.copy_(torch.from_numpy(w[:-1].T.astype(np.float32)))
        proj.bias.copy_(torch.from_numpy(w[-1].astype(np.float32)))
    return proj


@dataclass
class ExtraViews:
    """What the optional terms read besides the batch: a second dropout view of its rows (``selfsup``), the
    student's and the teacher's vectors of its augmented copies (``augment``) and general sentence pairs with
    their gold scores (``pairs``)."""

    second: Tensor | None = None
    augmented: Tensor | None = None
    augmented_teacher: Tensor | None = None
    pair1: Tensor | None = None
    pair2: Tensor | None = None
    pair_score: Tensor | None = None


def batch_loss(z: Tensor, labels: Tensor, teacher: Tensor, frozen: Tensor, projection: nn.Module,
               config: TrainConfig, extra: ExtraViews | None = None) -> tuple[Tensor, dict[str, float]]:
    """The weighted loss of one batch (see the module docstring) and each term's value.

    ``z``: the student's unit vectors; ``labels``: batch-local label ids with ``batch_per_label`` rows each in
    order; ``teacher``: the teacher's unit vectors; ``frozen``: the frozen student's vectors of the same rows;
    ``extra``: the inputs of the optional terms whose weight is set.
    """
    extra = extra or ExtraViews()
    needs = {"selfsup_weight": extra.second, "augment_weight": extra.augmented, "pairs_weight": extra.pair1}
    missing = [name for name, value in needs.items() if getattr(config, name) and value is None]
    if missing:
        raise FewShotError(f"{', '.join(missing)} set but the batch carries no input for it")
    terms: dict[str, Tensor] = {}
    k = config.batch_per_label // 2  # each label's first k rows are support, the rest queries
    n_way = int(labels.max()) + 1
    position = torch.arange(len(labels)) % config.batch_per_label
    sup, qry = position < k, position >= k
    if config.distill_weight:
        terms["distill"] = distill_cosine(projection, z, teacher)
    if config.structure_weight:
        terms["structure"] = similarity_kl(z, teacher, config.structure_temperature)
    if config.episode_weight:
        terms["episode"] = PrototypicalLoss(config.temperature, center=config.center)(
            z[sup], labels[sup], z[qry], labels[qry], n_way)
    if config.contrastive_weight:
        i, j, y = all_positives_and_hardest_negatives(z, labels)
        terms["contrastive"] = ContrastiveLoss(config.margin)(z[i], z[j], y)
    if config.preserve_weight:
        terms["preserve"] = preservation_loss(z, frozen)
    if config.unknown_weight:
        n_known = n_way - min(config.unknown_labels, n_way - 2)  # the batch's last labels (random ones) are hidden
        known = labels < n_known
        terms["unknown"] = HeldOutLabelRankingLoss(config.temperature)(
            z[known & sup], labels[known & sup], z[known & qry], z[~known], n_known)
    if config.selfsup_weight:
        terms["selfsup"] = SelfContrastiveLoss(config.selfsup_temperature)(z, extra.second)
    if config.augment_weight:
        terms["augment"] = distill_cosine(projection, extra.augmented, extra.augmented_teacher)
    if config.pairs_weight:
        terms["pairs"] = CosineScoreLoss()(extra.pair1, extra.pair2, extra.pair_score)
    weights = {name: getattr(config, f"{name}_weight") for name in LOSS_TERMS}
    if not terms:
        raise FewShotError("every loss weight is 0; set at least one of "
                           f"{', '.join('--' + name + '-weight' for name in LOSS_TERMS)} above 0")
    loss = sum(weights[k] * v for k, v in terms.items())
    return loss, {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}


class BatchSampler:
    """Seeded batches of ``batch_labels`` labels x ``batch_per_label`` rows (labels with fewer rows are not
    drawn); its generator's state is part of a checkpoint.

    With ``config.batch_groups`` G > 0 and the labels' mean vectors ``centroids``, a batch is G groups of
    neighbouring labels (a random label and its nearest undrawn ones): siblings such as "card lost" and "card
    declined" meet in one episode, and the held-out labels of ``unknown_weight`` (the batch's last labels) are
    taken one per group, so the hidden texts are in-domain unknowns for their group's known labels."""

    def __init__(self, labels: np.ndarray, config: TrainConfig, centroids: np.ndarray | None = None) -> None:
        self.by_class = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
        self.usable = np.array([c for c, rows in enumerate(self.by_class) if len(rows) >= config.batch_per_label])
        if len(self.usable) < 2:
            raise FewShotError(f"encoder training needs >= 2 labels with >= {config.batch_per_label} texts each "
                               f"(--batch-per-label); found {len(self.usable)}")
        self.n_labels = min(config.batch_labels, len(self.usable))
        self.per_label = config.batch_per_label
        self.rng = np.random.default_rng(config.seed)
        self.groups = min(config.batch_groups, self.n_labels // 2)
        self.hidden = config.unknown_labels if config.unknown_weight else 0
        if self.groups and centroids is None:
            raise FewShotError("batch_groups needs the labels' mean vectors")
        self.centroids = centroids

    def grouped_classes(self) -> np.ndarray:
        """``n_labels`` labels as ``groups`` groups of neighbours, hidden ones (one per group, in turn) last."""
        sizes = [self.n_labels // self.groups + (g < self.n_labels % self.groups) for g in range(self.groups)]
        free = np.ones(int(self.usable.max()) + 1, dtype=bool)
        groups = []
        for size in sizes:
            seed = int(self.rng.choice(self.usable[free[self.usable]]))
            free[seed] = False
            others = self.usable[free[self.usable]]
            nearest = others[np.argsort(-(self.centroids[others] @ self.centroids[seed]), kind="stable")[:size - 1]]
            free[nearest] = False
            groups.append([seed, *nearest.tolist()])
        tail = [groups[i % self.groups].pop(int(self.rng.integers(len(groups[i % self.groups]))))
                for i in range(min(self.hidden, self.n_labels - 2))]
        return np.array([c for group in groups for c in group] + tail)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, batch-local labels)``, ``per_label`` consecutive rows per label."""
        if self.groups:
            classes = self.grouped_classes()
        else:
            classes = self.rng.choice(self.usable, size=self.n_labels, replace=False)
        rows = np.concatenate([self.rng.choice(self.by_class[c], size=self.per_label, replace=False) for c in classes])
        return rows, np.repeat(np.arange(self.n_labels), self.per_label)


# ---- scoring the student ---------------------------------------------------------------------------
@dataclass
class StudentScorer:
    """Scores the student with :class:`fewshot.FewShotClassifier`'s default rule: mean accuracy over the
    few-shot evaluations ``sets`` (support -> test), or over fixed episodes of held-out training labels."""

    cached: Any  # fewshot.adapt.layers.Cached of the texts below
    texts: list[str]
    sets: list[EvalSet] = field(default_factory=list)
    validation: Any = None  # fewshot.meta.trainer.Validation over held-out training labels (rows = texts)

    def score(self, vectors: np.ndarray) -> float:
        """Mean accuracy with the student's ``vectors`` (one row per text of :attr:`texts`)."""
        if self.validation is not None:
            self.validation.embeddings = vectors
            return self.validation.accuracy(lambda x: x)
        from .data import CachedEncoder, evaluate_csv

        base = SimpleNamespace(dim=vectors.shape[1], encode=_no_encoding)
        encoder = CachedEncoder(base, dict(zip(self.texts, vectors)), name="student")
        return float(np.mean([evaluate_csv(encoder, support, test) for support, test in self.sets]))


def _no_encoding(texts: Sequence[str]) -> np.ndarray:
    raise FewShotError(f"the student scorer was asked for {len(texts)} text(s) it did not cache")


# ---- training -----------------------------------------------------------------------------------------
@dataclass
class EncoderResult:
    """The kept top layers (``state``: the sentence-transformer's state-dict names, float32), the step and
    score they were kept at, the frozen encoder's score and the logged history."""

    state: dict[str, Tensor]
    best_step: int
    best_score: float
    frozen_score: float
    history: list[dict[str, float]]
    seconds: float
    score_on: str  # what the score measures


@contextmanager
def flag_errors(flag: str) -> Iterator[None]:
    """Errors of loading a model name ``flag``, the option the name came from (the loaders, shared with the
    other commands, speak of ``--model``)."""
    try:
        yield
    except FewShotError as exc:
        message = str(exc).replace("--model / FEWSHOT_MODEL", flag)
        raise FewShotError(message if flag in message else f"{flag}: {message}") from exc


def student_model(base: str) -> Any:
    """A private sentence-transformer of ``base`` (a plain model: a folder with a trained head is refused)."""
    from ..encoders.encoder import open_sentence_transformer
    from ..encoders.registry import resolve_model

    with flag_errors("--base"):
        spec = resolve_model(base)
        if spec.trained_dir is not None:
            raise FewShotError(f"--base {base!r} is a trained folder; encoder training starts from a plain "
                               "sentence-transformer such as 'minilm'")
        return open_sentence_transformer(spec.base)


def check_layers(model: Any, config: TrainConfig) -> None:
    """:class:`FewShotError` naming ``--train-layers`` or ``--append-layers`` when ``model`` (a sentence-transformer)
    has not the layers they ask for; called before anything is written."""
    from ..adapt.layers import transformer_of

    depth = len(transformer_of(model).encoder.layer)
    if not 1 <= config.train_layers <= depth:
        raise FewShotError(f"--train-layers must be between 1 and {depth} (the layers of --base {config.base!r}), "
                           f"got {config.train_layers}")
    bad = [k for k in config.appended_layers() if not 0 <= k <= depth]
    if bad:
        raise FewShotError(f"--append-layers must be layer numbers from 0 to {depth} (the layers of --base "
                           f"{config.base!r}), got {config.append_layers!r}")


@keeps_torch_rng
def train_encoder(model: Any, texts: Sequence[str], labels: Sequence[str], teacher: np.ndarray | None,
                  config: TrainConfig, *, eval_sets: Sequence[EvalSet] = (), checkpoint: Path | None = None,
                  resume: bool = False, progress: bool = False, half: bool = False,
                  augmented: tuple[Sequence[str], np.ndarray] | None = None,
                  pairs: tuple[Sequence[str], Sequence[str], np.ndarray] | None = None) -> EncoderResult:
    """Train the top ``config.train_layers`` layers of ``model`` (a sentence-transformer, left unchanged) on
    ``texts``/``labels`` against the ``teacher``'s unit vectors (one row per text); see the module docstring.

    ``teacher`` may be ``None`` when the distillation and structure weights are 0 (episodes and preservation
    only). ``eval_sets``: few-shot evaluations that select the kept step (else held-out training labels do);
    ``checkpoint``: a file written every ``config.checkpoint_every`` steps; with ``resume`` an existing one is
    continued (same configuration required, except ``steps``: a run may be extended, or ended at its checkpoint
    with ``steps`` equal to the checkpoint's step). ``half``: the returned layers rounded to float16 values (what
    a ``--compact`` folder stores). ``augmented``: an augmented copy of each text and the teacher's unit vectors of
    the copies (for ``augment_weight``); ``pairs``: general sentence pairs and their gold scores in ``[0, 1]``
    (for ``pairs_weight``). Deterministic for a given ``config.seed``; torch's global generator is left as it was.
    """
    from ..adapt.layers import TopLayers, lower_states
    from ..rules import prototypes

    config.validate()
    texts, labels = list(texts), list(labels)
    if teacher is None:
        if config.distill_weight or config.structure_weight:
            raise FewShotError("without teacher vectors set --distill-weight 0 and --structure-weight 0")
        teacher = np.zeros((len(texts), 1), np.float32)
    teacher = np.asarray(teacher, dtype=np.float32)
    if not len(texts) == len(labels) == len(teacher):
        raise FewShotError(f"{len(texts)} texts, {len(labels)} labels and {len(teacher)} teacher vectors; "
                           "expected one of each per training row")
    if config.augment_weight and (augmented is None or len(augmented[0]) != len(texts)
                                  or len(augmented[1]) != len(texts)):
        raise FewShotError("augment_weight needs one augmented copy and one teacher vector per training text")
    if config.pairs_weight and pairs is None:
        raise FewShotError("pairs_weight needs general sentence pairs (--general-pairs)")
    check_layers(model, config)
    torch.default_generator.manual_seed(config.seed)
    layers = config.appended_layers()
    top = TopLayers(model, config.train_layers, extra_layers=layers)  # an appended layer above top.start trains
    if eval_sets:
        train_classes = sorted(set(labels))
        keep = np.arange(len(texts))
        from ..text import label_text

        names = [label_text(c) for s in eval_sets for c in sorted(set(s[0][1]))]  # the classifier encodes them
        eval_texts = list(dict.fromkeys([*(t for s in eval_sets for part in s for t in part[0]), *names]))
        validation = None
        score_on = "few-shot accuracy on the validation CSVs (default rule)"
    else:
        train_classes, val_classes = split_classes(labels, config.val_fraction, config.seed)
        held = set(val_classes)
        keep = np.array([i for i, lab in enumerate(labels) if lab not in held])
        val_rows = [i for i, lab in enumerate(labels) if lab in held]
        eval_texts = [texts[i] for i in val_rows]
        index = {c: i for i, c in enumerate(val_classes)}
        validation = Validation.build(np.zeros((len(val_rows), 1), np.float32),
                                      np.array([index[labels[i]] for i in val_rows]), None, config)
        score_on = f"held-out training labels ({len(val_classes)}), {config.k_shot}-shot episodes (default rule)"
    class_id = {c: i for i, c in enumerate(train_classes)}
    train_texts = [texts[i] for i in keep]
    y = np.array([class_id[labels[i]] for i in keep], dtype=np.int64)
    t = torch.from_numpy(teacher[keep])

    cached = lower_states(model, train_texts, top.start, layers)
    scorer = StudentScorer(lower_states(model, eval_texts, top.start, layers), eval_texts, list(eval_sets),
                           validation)
    if config.augment_weight:
        augmented_cached = lower_states(model, [augmented[0][i] for i in keep], top.start, layers)
        augmented_teacher = torch.from_numpy(np.asarray(augmented[1], dtype=np.float32)[keep])
    if config.pairs_weight:
        pair_texts = list(dict.fromkeys([*pairs[0], *pairs[1]]))
        where = {t: i for i, t in enumerate(pair_texts)}
        pair_rows = np.array([[where[a], where[b]] for a, b in zip(pairs[0], pairs[1])])
        pair_score = torch.from_numpy(np.asarray(pairs[2], dtype=np.float32))
        pairs_cached = lower_states(model, pair_texts, top.start, layers)
    all_rows = list(range(len(train_texts)))
    frozen = top.embed(cached, all_rows)
    projection = least_squares_projection(frozen.numpy(), teacher[keep], config.ridge)
    # the labels' unit mean vectors under the frozen encoder, for batches of neighbouring labels
    centroids = prototypes(frozen.numpy(), y, int(y.max()) + 1) if config.batch_groups else None
    sampler = BatchSampler(y, config, centroids)
    optimizer = torch.optim.Adam([{"params": top.layers.parameters(), "lr": config.encoder_lr},
                                  {"params": projection.parameters(), "lr": config.projection_lr}])

    def step(number: int) -> tuple[Tensor, dict[str, float]]:
        top.train()
        rows, batch_labels = sampler.sample()
        row_list = rows.tolist()
        z = top(cached, row_list)
        index = torch.from_numpy(rows)
        extra = ExtraViews()
        if config.selfsup_weight:
            extra.second = top(cached, row_list)  # other dropout masks
        if config.augment_weight:
            extra.augmented, extra.augmented_teacher = top(augmented_cached, row_list), augmented_teacher[index]
        if config.pairs_weight:  # drawn from the step number: nothing to checkpoint
            chosen = np.random.default_rng([config.seed, number]).choice(
                len(pair_rows), size=min(config.pairs_batch, len(pair_rows)), replace=False)
            extra.pair1 = top(pairs_cached, pair_rows[chosen, 0].tolist())
            extra.pair2 = top(pairs_cached, pair_rows[chosen, 1].tolist())
            extra.pair_score = pair_score[torch.from_numpy(chosen)]
        return batch_loss(z, torch.from_numpy(batch_labels), t[index], frozen[index], projection, config, extra)

    def validate() -> float:
        return scorer.score(top.embed(scorer.cached, list(range(len(eval_texts)))).numpy())

    def snapshot() -> dict[str, Tensor]:
        return copy.deepcopy(top.layers.state_dict())

    def save_checkpoint(state: LoopState, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save({"config": asdict(config), "loop": asdict(state), "layers": top.layers.state_dict(),
                    "projection": projection.state_dict(), "optimizer": optimizer.state_dict(),
                    "numpy_rng": sampler.rng.bit_generator.state, "torch_rng": torch.get_rng_state()}, tmp)
        tmp.replace(path)

    state = None
    if resume and checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        changed = sorted(k for k in saved["config"] if saved["config"][k] != asdict(config).get(k) and k != "steps")
        if changed:
            raise FewShotError(f"{checkpoint} was written with other settings ({', '.join(changed)}); rerun with "
                               "the same flags or without --resume")
        top.layers.load_state_dict(saved["layers"])
        projection.load_state_dict(saved["projection"])
        optimizer.load_state_dict(saved["optimizer"])
        sampler.rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        state = LoopState(**saved["loop"])
        if state.step > config.steps:
            raise FewShotError(f"{checkpoint} is at step {state.step}, past --steps {config.steps}; pass --steps "
                               f">= {state.step}")
    result = outer_loop(step, optimizer, steps=config.steps, snapshot=snapshot, validate=validate,
                        validate_every=config.val_every, score_key="val_accuracy", log_every=10,
                        progress="training the encoder" if progress else None, resume=state,
                        checkpoint=None if checkpoint is None else lambda s: save_checkpoint(s, checkpoint),
                        checkpoint_every=config.checkpoint_every)
    top.layers.load_state_dict(result.best)
    frozen_score = float(result.history[0]["val_accuracy"])
    return EncoderResult(top.trained_state(half=half), result.best_step, float(result.best_score), frozen_score,
                         result.history, result.seconds, score_on)


# ---- the teacher ----------------------------------------------------------------------------------------
def teacher_vectors(texts: Sequence[str], teacher: str, *, cache_dir: Path | None,
                    progress: bool = False) -> np.ndarray:
    """The teacher's unit sentence embeddings of ``texts`` (no appended layers), from the embedding cache of
    :func:`fewshot.meta.data.embed_texts` (computed and cached on a miss)."""
    from ..encoders.encoder import Encoder
    from .data import embed_texts

    with flag_errors("--teacher"):
        encoder = Encoder(teacher, extra_layers=())
        return embed_texts(texts, encoder, cache_dir=cache_dir, progress=progress, desc=f"teacher ({teacher})")


def student_with(model: Any, state: dict[str, Tensor]) -> Any:
    """A copy of ``model`` with the trained tensors ``state`` loaded (``model`` itself unchanged)."""
    from ..adapt.finetune import apply_weights

    return apply_weights(model, state)

