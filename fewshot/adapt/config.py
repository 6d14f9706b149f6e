"""Settings and results of a per-task adaptation of the encoder (plain dataclasses, JSON-able)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import FewShotError

LOSSES = ("supcon", "contrastive")


@dataclass
class FinetuneConfig:
    """How the encoder is adapted to the user's labels; every number that decides the result lives here.

    Train the top ``layers`` transformer layers with the supervised contrastive loss on episodes of
    ``episode_labels`` labels x ``episode_shots`` examples, pick the number of steps by ``folds``-fold
    cross-validation on the examples (checked every ``eval_every`` steps, at most ``steps``), and keep the instant
    encoder unless that estimate rises above the instant classifier's by more than ``min_gain``. Chosen on the
    development sets and a synthetic flight-booking set (``bench/finetune.py``, see docs/research/finetune.md). 4 layers
    were needed where labels share their wording and differ by a word or two (2 layers stayed well below SetFit
    there); on topic-like narrow label sets they did about as well as 2. 2-example episodes cost half of what
    4-example ones cost per step and did about as well. A few large steps (lr 3e-4, checked every 5) did as well
    as three times as many small ones. With ``margin_ties`` a level estimate (at most ``tie_texts`` held-out texts
    below the best) with a larger held-out margin extends a gain: the held-out accuracy of a few dozen texts is
    coarse, and where it stays level the test accuracy can still rise. An estimate ``commit_gain`` (5 points)
    and ``commit_texts`` (4) held-out texts above the instant one ends the checks, and the final run trains all
    ``steps``: the held-out texts then sit near the ceiling and cannot show the further gain that longer
    training brought where labels share their wording, and the three fold runs stop costing time. The time
    budget keeps the whole adaptation at most near a quarter of SetFit's time.
    """

    layers: int | None = None  # top transformer layers trained (lower ones run once, cached); None: by label count
    deep_max_labels: int = 32  # layers/episode_shots None: 4 layers, 2 examples up to this many labels, else 2 and 4
    steps: int = 30  # most optimisation steps (per fold during the estimate, then of the final run)
    time_budget: float | None = 30.0  # seconds for the whole adaptation (cache, estimate, final run); None: no
    # limit. The estimate leaves room for the final run, which then trains its chosen steps in full
    lr: float = 3e-4  # AdamW learning rate of the trained layers
    weight_decay: float = 0.01
    loss: str = "supcon"  # "supcon" (Khosla et al. 2020) | "contrastive" (Hadsell et al. 2006, sampled pairs)
    temperature: float = 0.1  # supcon temperature
    margin: float = 1.0  # contrastive margin on the Euclidean distance of unit vectors (0..2)
    episode_labels: int = 16  # labels per episode (all when fewer)
    episode_shots: int | None = None  # examples per label per episode (all when fewer); None: by label count
    folds: int = 3  # cross-validation folds for the estimate and early stopping (0: no estimate, train `steps`)
    eval_every: int = 5  # steps between two estimates
    patience: int = 1  # estimates without improvement before stopping
    margin_ties: bool = True  # after a rise, a level estimate with a larger held-out prototype margin counts as one
    tie_texts: int = 1  # "level": at most this many held-out texts below the best (0: exactly equal)
    commit_gain: float | None = 0.05  # an estimate this far above "before" ends the checks: the final run trains
    # `steps` (the labels are confusable and adaptation clearly helps; None: always the checked number of steps)
    commit_texts: int = 4  # ...and at least this many held-out texts above it (small sets: a few texts are noise)
    min_gain: float = 0.0  # estimate gain (beyond "higher") needed to keep the adapted weights, else instant stays
    dropout: bool = True  # the layers' own dropout while training
    half_weights: bool = True  # round the returned weights to float16 values (a float16 file then loses nothing)
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`FewShotError` naming the first bad value."""
        if self.loss not in LOSSES:
            raise FewShotError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        settled_later = ("layers", "episode_shots")  # None: chosen by label count (:meth:`for_labels`)
        for name in ("layers", "steps", "episode_labels", "episode_shots", "eval_every", "patience", "deep_max_labels"):
            value = getattr(self, name)
            if value is None and name in settled_later:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                also = " or None" if name in settled_later else ""
                raise FewShotError(f"{name} must be an integer >= 1{also}, got {value!r}")
        for name in ("tie_texts", "commit_texts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise FewShotError(f"{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.folds, int) or self.folds < 0 or self.folds == 1:
            raise FewShotError(f"folds must be 0 (no estimate) or an integer >= 2, got {self.folds!r}")
        for name in ("lr", "temperature", "margin"):
            if not getattr(self, name) > 0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.commit_gain is not None and not 0 < self.commit_gain <= 1:
            raise FewShotError(f"commit_gain must be None or in (0, 1], got {self.commit_gain!r}")
        if self.weight_decay < 0:
            raise FewShotError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise FewShotError(f"time_budget must be None or > 0 seconds, got {self.time_budget!r}")

    def for_labels(self, n_labels: int) -> FinetuneConfig:
        """A copy with ``layers`` and ``episode_shots`` settled for a label set of ``n_labels`` labels (their ``None``
        means: 4 layers and 2-example episodes up to ``deep_max_labels`` labels, else 2 layers and 4 examples)."""
        deep = n_labels <= self.deep_max_labels
        return replace(self, layers=self.layers if self.layers is not None else (4 if deep else 2),
                       episode_shots=self.episode_shots if self.episode_shots is not None else (2 if deep else 4))


@dataclass
class FinetuneReport:
    """What an adaptation did: shown to the user, saved beside the weights."""

    steps: int = 0  # steps of the final run (0: the instant encoder was kept)
    seconds: float = 0.0  # wall time of the whole adaptation
    estimate_before: float | None = None  # cross-validated accuracy of the instant encoder (None: folds=0)
    estimate_after: float | None = None  # same folds, the best checked (optimistic: steps chosen on it; with
    # margin_ties the kept step's own estimate may be up to tie_texts held-out texts lower)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (steps, estimate) checked during cross-validation
    stopped_early: bool = False  # the estimate stopped improving before ``steps``
    committed: bool = False  # a clear gain (``commit_gain``, ``commit_texts``) ended the checks: ``steps`` trained
    out_of_time: bool = False  # the time budget ended the estimate early, shortened a clear gain's final run or
    # left no room to train (the final run itself is never cut below the steps the estimate chose)
    over_budget: bool = False  # the run ended past time_budget (the machine ran slower than measured)
    cancelled: bool = False  # ``cancel`` said stop: nothing is returned (the instant encoder stays)
    kept: bool = False  # adapted weights are returned (else the estimate saw no gain, or it was cancelled)
    layers: list[int] = field(default_factory=list)  # transformer layers trained (0-based)
    message: str = ""  # one line for the user
    reason: str = ""  # why no adapted weights were returned, without the consequence ("" when kept or cancelled)


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
    # (the estimate's folds at the kept step, or at the check that ended them after a clear gain: held-out scores
    # for the automatic unknown threshold; None: folds=0)

    @property
    def nbytes(self) -> int:
        """Bytes of the weights saved in float16 (what a saved classifier carries)."""
        return sum(t.numel() * 2 for t in self.state_dict.values())
