"""Meta-training settings as plain dataclasses: every seed and hyperparameter of a run lives here.

- :class:`TrainConfig`: ``fewshot train`` (a head on frozen embeddings, any method of
  :data:`fewshot.meta.trainer.METHODS`); saved as ``train_config`` in ``fewshot_model.json``.
- :class:`MetaConfig`: the MAML family with a learned transform, scale and per-step inner learning rates
  (:func:`fewshot.meta.trainer.meta_train`); saved as ``maml.json`` next to the weights and read back at
  fit time (``FewShotClassifier(model=FOLDER, adapt=METHOD)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..errors import FewShotError

META_METHODS = ("maml", "fomaml", "reptile")
"""Gradient-based meta-learning methods: their folders also carry an inner loop (``maml.json``)."""

TRAIN_METHODS: dict[str, str] = {
    "prototypical": "Prototypical Networks episodes (Snell et al. 2017)",
    "matching": "Matching Networks episodes (Vinyals et al. 2016), the shipped heads' recipe",
    "contrastive": "contrastive pairs with hard negatives (Hadsell et al. 2006)",
    "maml": "MAML, second order (Finn et al. 2017), also writes the inner loop for adapt='maml'",
    "fomaml": "first-order MAML (Finn et al. 2017), also writes the inner loop for adapt='fomaml'",
    "reptile": "Reptile (Nichol et al. 2018), also writes the inner loop for adapt='reptile'",
}
"""The built-in methods of ``fewshot train`` with one line each (what ``--help`` lists); the step functions
are :data:`fewshot.meta.trainer.METHODS`."""


@dataclass
class TrainConfig:
    """Every hyperparameter of a ``fewshot train`` run (and its seed); saved in ``fewshot_model.json``."""

    method: str = "prototypical"  # a key of fewshot.meta.trainer.METHODS
    base: str = "minilm"  # the frozen encoder the head sits on
    head: str = "residual_linear"  # a key of the head types of fewshot.encoders.heads
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
    inner_steps: int = 5  # maml/fomaml/reptile: inner-loop steps per episode (also written to maml.json)
    inner_lr: float = 0.5  # maml/fomaml: inner-loop learning rate
    reptile_inner_lr: float = 0.1  # reptile: inner-loop learning rate
    val_fraction: float = 0.2  # share of the training classes held out for validation
    val_every: int = 50
    val_episodes: int = 4
    val_queries: int = 20  # query rows per held-out class and validation episode
    ensemble: int = 3  # heads trained with seeds seed, seed+1, ...; their best steps are averaged
    seed: int = 0
    # --encoder: fine-tune the base encoder's top transformer layers instead of a head (fewshot.meta.distill);
    # steps, val_every, temperature, center, margin, k_shot, val_* and seed above apply as well
    encoder: bool = False
    teacher: str = "mpnet"  # the model whose sentence embeddings are distilled (encoded once, cached)
    train_layers: int = 2  # top transformer layers trained; the rest of the encoder stays frozen
    append_layers: str = "4"  # base-encoder layers appended to the student's vector, as the product does ("" none)
    encoder_lr: float = 2e-5
    projection_lr: float = 1e-3  # the student -> teacher projection (least-squares initialised; not saved)
    ridge: float = 1e-2  # ridge of the least-squares projection
    batch_labels: int = 16  # labels per training batch
    batch_per_label: int = 4  # texts per label in a batch (half support, half query for the episode term)
    distill_weight: float = 1.0  # 1 - cos(projected student, teacher)
    structure_weight: float = 1.0  # KL of the batch's similarity distributions, teacher -> student
    structure_temperature: float = 0.05
    episode_weight: float = 0.5  # prototypical loss on the batch split into support and query
    contrastive_weight: float = 0.0  # contrastive loss on same-label pairs and the hardest other-label row
    preserve_weight: float = 1.0  # squared distance to the frozen encoder's vector (against forgetting)
    unknown_weight: float = 0.0  # held-out-label episodes: known queries ranked above hidden labels' texts
    unknown_labels: int = 4  # labels of a batch hidden as unknown intents when unknown_weight > 0
    batch_groups: int = 0  # 0: a batch's labels at random; G: G groups of neighbouring labels (hidden ones per group)
    selfsup_weight: float = 0.0  # SimCSE: two dropout views of each text, the batch's other texts as negatives
    selfsup_temperature: float = 0.05
    augment_weight: float = 0.0  # distillation on an EDA copy of each training text (the teacher embeds the copies)
    augment_delete: float = 0.1  # EDA copy: probability of dropping each word
    augment_swaps: int = 1  # EDA copy: random word pairs exchanged
    pairs_weight: float = 0.0  # general sentence pairs (--general-pairs): cosine pulled to the gold score
    pairs_batch: int = 32  # general sentence pairs per step
    checkpoint_every: int = 100  # steps between resumable checkpoints (0: none)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # The recipe of the heads models/xfer-*: Matching-Network episodes on the raw head outputs
        # (no label names, no centring in the loss), 64-way 5-shot 5-query, Adam 1e-3, L2 to the identity
        # 3e-2, 200 steps validated every 20 (held-out classes scored with the default rule, 3 seeds averaged).
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
        """Raise :class:`FewShotError` naming the first setting that cannot work."""
        positive = ("steps", "k_shot", "q_query", "temperature", "lr", "n_pairs", "margin", "val_every",
                    "val_episodes", "val_queries", "head_scale", "ensemble", "inner_steps", "inner_lr",
                    "reptile_inner_lr")
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
        if self.encoder:
            self._validate_encoder()

    def _validate_encoder(self) -> None:
        for name in ("train_layers", "encoder_lr", "projection_lr", "structure_temperature", "selfsup_temperature",
                     "pairs_batch"):
            if not getattr(self, name) > 0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("ridge", "distill_weight", "structure_weight", "episode_weight", "contrastive_weight",
                     "preserve_weight", "unknown_weight", "selfsup_weight", "augment_weight", "pairs_weight",
                     "augment_swaps", "batch_groups", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise FewShotError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.batch_labels < 2 or self.batch_per_label < 2:
            raise FewShotError(f"batch_labels and batch_per_label must be >= 2, got {self.batch_labels!r} and "
                               f"{self.batch_per_label!r}")
        if self.unknown_weight and not 1 <= self.unknown_labels <= self.batch_labels - 2:
            raise FewShotError(f"unknown_labels must be between 1 and batch_labels - 2 ({self.batch_labels - 2}), "
                               f"got {self.unknown_labels!r}")
        if not 0.0 <= self.augment_delete < 1.0:
            raise FewShotError(f"augment_delete must be in [0, 1), got {self.augment_delete!r}")
        self.appended_layers()

    def appended_layers(self) -> tuple[int, ...]:
        """``append_layers`` as layer numbers (``"4"`` -> ``(4,)``, ``""`` -> ``()``)."""
        try:
            return tuple(int(k) for k in self.append_layers.replace(" ", "").split(",") if k)
        except ValueError:
            raise FewShotError(f"append_layers must be comma-separated layer numbers, got {self.append_layers!r}") from None


def head_config(config: TrainConfig, dim: int) -> dict[str, Any]:
    """The ``head`` entry of ``fewshot_model.json`` for a head of ``config`` on ``dim``-d embeddings."""
    return {"type": config.head, "dim": dim, "scale": config.head_scale}


@dataclass
class MetaConfig:
    """Settings of the MAML family with a learned transform (saved as ``maml.json`` next to the weights)."""

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
    val_seed: int = 10_000  # validation episodes of shot count i use seed val_seed + i
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
        """A config from a saved ``maml.json`` ``config`` (unknown keys ignored, lists back to tuples)."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "k_shots" in kwargs:
            kwargs["k_shots"] = tuple(kwargs["k_shots"])
        return cls(**kwargs)
