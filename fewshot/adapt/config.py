"""Settings and results of a per-task adaptation of the encoder (plain dataclasses, JSON-able)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import FewShotError

LOSSES = ("supcon", "contrastive")


@dataclass
class FinetuneConfig:
    """How the encoder is adapted to the user's labels; every number that decides the result lives here.

    Defaults were chosen on validation splits of the development sets (``bench/finetune.py --split valid``,
    see docs/finetune.md): train the top ``layers`` transformer layers with the supervised contrastive loss
    on episodes of ``episode_labels`` labels x ``episode_shots`` examples, pick the number of steps by
    ``folds``-fold cross-validation on the examples (checked every ``eval_every`` steps, at most ``steps``), and
    keep the instant encoder unless that estimate rises above the instant classifier's by more than
    ``min_gain``. A few large steps (lr 3e-4, checked every 5) did as well on the validation splits as three times
    as many small ones (1e-4, checked every 10), in a third of the time: speed is part of the goal (a quarter of
    SetFit's time). Most runs stop at the first or second check; the cap of 30 steps only lets a run go on while
    its estimate is still rising (labels far from separable, where adaptation has the most to gain).
    """

    layers: int = 2  # top transformer layers trained (the lower ones run once, their outputs are cached)
    steps: int = 30  # most optimisation steps (per fold during the estimate, then of the final run)
    time_budget: float | None = 60.0  # seconds for the whole adaptation (cache, estimate, final run); None: no limit
    lr: float = 3e-4  # AdamW learning rate of the trained layers
    weight_decay: float = 0.01
    loss: str = "supcon"  # "supcon" (Khosla et al. 2020) | "contrastive" (Hadsell et al. 2006, sampled pairs)
    temperature: float = 0.1  # supcon temperature
    margin: float = 1.0  # contrastive margin on the Euclidean distance of unit vectors (0..2)
    episode_labels: int = 16  # labels per episode (all when fewer)
    episode_shots: int = 4  # examples per label per episode (all when fewer)
    folds: int = 3  # cross-validation folds for the estimate and early stopping (0: no estimate, train `steps`)
    eval_every: int = 5  # steps between two estimates
    patience: int = 1  # estimates without improvement before stopping
    min_gain: float = 0.0  # estimate gain (beyond "higher") needed to keep the adapted weights, else instant stays
    dropout: bool = True  # the layers' own dropout while training
    half_weights: bool = True  # round the returned weights to float16 values (a float16 file then loses nothing)
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`FewShotError` naming the first bad value."""
        if self.loss not in LOSSES:
            raise FewShotError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("layers", "steps", "episode_labels", "episode_shots", "eval_every", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FewShotError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.folds, int) or self.folds < 0 or self.folds == 1:
            raise FewShotError(f"folds must be 0 (no estimate) or an integer >= 2, got {self.folds!r}")
        for name in ("lr", "temperature", "margin"):
            if not getattr(self, name) > 0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.weight_decay < 0:
            raise FewShotError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise FewShotError(f"time_budget must be None or > 0 seconds, got {self.time_budget!r}")


@dataclass
class FinetuneReport:
    """What an adaptation did: shown to the user, saved beside the weights."""

    steps: int = 0  # steps of the final run (0: the instant encoder was kept)
    seconds: float = 0.0  # wall time of the whole adaptation
    estimate_before: float | None = None  # cross-validated accuracy of the instant encoder (None: folds=0)
    estimate_after: float | None = None  # same folds, after adaptation for ``steps`` (optimistic: steps chosen on it)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (steps, estimate) checked during cross-validation
    stopped_early: bool = False  # the estimate stopped improving before ``steps``
    out_of_time: bool = False  # the time budget ended a phase
    cancelled: bool = False  # ``cancel`` said stop: nothing is returned (the instant encoder stays)
    kept: bool = False  # adapted weights are returned (else the estimate saw no gain, or it was cancelled)
    layers: list[int] = field(default_factory=list)  # transformer layers trained (0-based)
    message: str = ""  # one line for the user


@dataclass
class FinetuneResult:
    """The adapted weights (only the trained tensors, sentence-transformer ``state_dict`` names) and the report.

    ``state_dict`` is empty when the instant encoder is kept (no gain, or cancelled).
    """

    state_dict: dict[str, torch.Tensor]
    report: FinetuneReport
    config: FinetuneConfig
    fold_ids: np.ndarray | None = None  # per training row, its held-out fold in the estimate (-1: always trains)
    fold_vectors: list[np.ndarray] | None = None  # per fold (ascending): its model's vectors of all rows, kept step
    # (the estimate's folds at the kept step: held-out scores for the automatic unknown threshold; None: folds=0)

    @property
    def nbytes(self) -> int:
        """Bytes of the weights saved in float16 (what a saved classifier carries)."""
        return sum(t.numel() * 2 for t in self.state_dict.values())
