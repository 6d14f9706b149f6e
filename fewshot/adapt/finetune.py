"""Adapt the top layers of the encoder to the user's labels, in seconds, with an honest estimate of the gain.

What runs (:func:`finetune`):

1. the frozen lower layers encode every example once; their token states are cached (:mod:`.layers`);
2. ``folds``-fold cross-validation: one private copy of the top layers per fold trains on the other folds in
   episodes (``episode_labels`` labels x ``episode_shots`` examples) with the supervised contrastive loss
   (Khosla et al. 2020) or the sampled-pair contrastive loss (Hadsell et al. 2006); every ``eval_every``
   steps the held-out folds are classified by ``rule`` (the caller's: a classifier passes its own head, so
   "before" is its own cross-validated accuracy; by default the nearest centred prototype, :mod:`.estimate`;
   ``train_only`` rows, such as label names, always train). The held-out accuracy is the estimate; training
   stops when it has not risen for ``patience`` checks, at ``steps``, when the time budget would be
   exceeded, or when the estimate is ``commit_gain`` and ``commit_texts`` held-out texts above the instant one
   (a clear gain: then all ``steps``);
3. when the best estimate beats the instant encoder's (step 0, same folds) by more than ``min_gain``, a last
   copy trains on all examples for the best number of steps (``steps`` after a clear gain) and its weights are
   returned; otherwise nothing is (the instant classifier is kept).

SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts") also fine-tunes the encoder
contrastively, but on ``2 x iterations x n`` pairs through all layers, with no estimate of its own gain.
The original model is never modified: only deep copies of the trained layers change.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import FewShotError
from ..losses import episode_contrastive_loss, supcon_loss
from ..progress import ProgressFn
from .config import FinetuneConfig, FinetuneReport, FinetuneResult
from .episodes import sample_episode
from .estimate import Rule, fold_ids, held_out_predictions, prototype_margin, prototype_rule
from .layers import Cached, TopLayers, layer_prefix, lower_states, transformer_of

Clock = Callable[[], float]
Cancel = Callable[[], bool] | threading.Event
KEPT = "the instant classifier is kept"  # what follows when no adapted weights are returned


class _Run:
    """One trainable copy of the top layers with its optimiser, episode stream and dropout stream.

    The layers' dropout draws from torch's global generator; each run swaps in a state of its own around its
    steps, so a run's training does not depend on the other runs or on how long the estimate ran (the final
    run with the chosen number of steps is the same whatever ``steps`` allowed the folds).
    """

    def __init__(self, template: TopLayers, rows: np.ndarray, config: FinetuneConfig, seed: int) -> None:
        self.net = copy.deepcopy(template)
        self.net.train(config.dropout)
        params = [p for p in self.net.layers.parameters()]
        self.opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.rows = rows
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.dropout_state = torch.Generator().manual_seed(seed).get_state()
        self.config = config
        self.steps = 0

    def step(self, cached: Cached, labels: np.ndarray) -> float:
        """One optimisation step on a fresh episode; dropout draws from this run's own stream."""
        torch.set_rng_state(self.dropout_state)
        cfg = self.config
        episode = sample_episode(labels, self.rows, cfg.episode_labels, cfg.episode_shots, self.rng)
        z = self.net(cached, episode.tolist())
        y = torch.as_tensor(labels[episode])
        if cfg.loss == "supcon":
            loss = supcon_loss(z, y, cfg.temperature)
        else:
            loss = episode_contrastive_loss(z, y, cfg.margin, self.gen)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        self.dropout_state = torch.get_rng_state()
        return float(loss.detach())


def _stop_fn(cancel: Cancel | None) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    if not callable(cancel):
        raise FewShotError(f"cancel must be a threading.Event or a callable returning True to stop, got {cancel!r}")
    return lambda: bool(cancel())


def finetune(model: Any, texts: Sequence[str], labels: Sequence[str], config: FinetuneConfig | None = None, *,
             head: nn.Module | None = None, extra_layers: Sequence[int] = (), progress: ProgressFn | None = None,
             cancel: Cancel | None = None, rule: Rule = prototype_rule,
             train_only: Sequence[bool] | None = None, clock: Clock = time.perf_counter) -> FinetuneResult:
    """Adapt the top ``config.layers`` layers of the sentence-transformer ``model`` to ``texts`` / ``labels``.

    Returns the trained tensors under ``model.state_dict()`` names (empty when the instant encoder is kept) and a
    :class:`FinetuneReport` saying what happened and why; ``model`` itself is never modified. ``head`` (a frozen
    module on the sentence embedding) and ``extra_layers`` (layers whose mean-pooled states are appended) make the
    trained vector the classifier's. ``rule(train_vectors, train_label_indices, test_vectors)`` classifies the
    held-out folds (a classifier passes its own, so "before" is its own cross-validated accuracy); ``train_only``
    rows (label names) train but are never held out. ``progress(done, total)`` counts training steps of
    ``steps x (folds + 1)``; ``cancel`` (an Event or a callable) stops at the next step and returns nothing;
    ``clock`` (seconds, as :func:`time.perf_counter`; tests pass a fake one) times ``config.time_budget``.
    docs/finetune.md describes the progress and how the budget is kept by planning.
    """
    config = config or FinetuneConfig()
    config.validate()
    t0 = clock()
    stop = _stop_fn(cancel)
    texts = list(texts)
    y, n_labels = _label_indices(texts, labels)
    config = config.for_labels(n_labels)  # layers and episode size settled for this label set
    job = _Adaptation(model, config, y, train_only, rule, progress, stop, clock, t0)
    with torch.random.fork_rng(devices=[]):  # dropout draws from torch's global generator: keep the caller's
        torch.default_generator.manual_seed(config.seed)  # the CPU one only: torch.manual_seed would reseed CUDA's
        ended = job.encode(model, texts, head, extra_layers)  # 1. the frozen lower layers, once, cached
        if ended is None:
            ended = job.choose_steps()  # 2. the cross-validated estimate chooses the steps, or keeps instant
        if ended is None:
            ended = job.train_final()  # 3. a last copy trains on all examples for the chosen steps
        if ended is not None:
            return ended
    return job.kept()


def _label_indices(texts: list[str], labels: Sequence[str]) -> tuple[np.ndarray, int]:
    """Each text's label index (sorted label order) and the number of labels, once the examples are checked."""
    names = [str(x) for x in labels]
    if len(texts) != len(names):
        raise FewShotError(f"texts and labels must have the same length, got {len(texts)} and {len(names)}")
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise FewShotError("every text to fine-tune on must be a non-empty string")
    classes, y = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    if len(classes) < 2 or np.bincount(y).max() < 2:
        raise FewShotError(f"fine-tuning needs at least 2 labels and 2 examples of some label; got "
                           f"{len(classes)} label(s), at most {np.bincount(y).max() if len(y) else 0} example(s) each")
    return y.astype(np.int64), len(classes)


def _held_out_folds(y: np.ndarray, config: FinetuneConfig, train_only: Sequence[bool] | None) -> np.ndarray:
    """Each row's fold in the estimate; -1 for the rows that always train (a single example, ``train_only``)."""
    fid = fold_ids(y, config.folds, config.seed)
    if train_only is not None:
        only = np.asarray(train_only, dtype=bool)
        if only.shape != (len(y),):
            raise FewShotError(f"train_only must have one flag per text ({len(y)}), got shape {only.shape}")
        fid[only] = -1
    if not set(fid.tolist()) - {-1}:
        raise FewShotError("the estimate needs examples to hold out, but every row is train_only "
                           "(or folds=0 skips the estimate)")
    return fid


class _Adaptation:
    """One call of :func:`finetune`: its clock and time budget, progress, report and the estimate's state.

    The phases (:meth:`encode`, :meth:`choose_steps`, :meth:`train_final`) return None to go on, or the result
    of an ending: :meth:`cancelled`, :meth:`keep_instant` (with the reason), :meth:`no_time`; :meth:`kept`
    returns the adapted weights.
    """

    def __init__(self, model: Any, config: FinetuneConfig, y: np.ndarray, train_only: Sequence[bool] | None,
                 rule: Rule, progress: ProgressFn | None, stop: Callable[[], bool], clock: Clock, t0: float) -> None:
        self.config, self.y, self.rule = config, y, rule
        self.progress, self.stop, self.clock, self.t0, self.budget = progress, stop, clock, t0, config.time_budget
        depth = len(transformer_of(model).encoder.layer)
        self.report = FinetuneReport(layers=list(range(depth - min(config.layers, depth), depth)))
        self.fid = _held_out_folds(y, config, train_only) if config.folds else None
        self.folds: list[int] = [] if self.fid is None else sorted(set(self.fid.tolist()) - {-1})
        self.total = config.steps * (len(self.folds) + 1)  # the largest plan: every fold run's steps, the final's
        self.done = 0  # steps of `total` shown so far
        self.template: TopLayers | None = None  # the top layers as the model has them
        self.cached: Cached | None = None  # the lower layers' token states of every example
        self.all_rows = np.arange(len(y))
        self.steps = config.steps  # the final run's steps (chosen by the estimate when there is one)
        self.state: dict[str, torch.Tensor] = {}  # the final run's trained tensors
        # the estimate (folds > 0)
        self.runs: list[_Run] = []  # one copy of the top layers per fold, trained on the other folds
        self.fold_steps = 0  # steps each fold run has trained
        self.step_seconds: list[float] = []  # seconds of one training step (one fold run's)
        self.estimate_seconds = 0.0  # seconds of the last estimate
        self.reserved = 0  # final-run steps the budget was measured to leave room for
        self.seen: list[np.ndarray] = []  # each fold model's vectors of all rows, at the last estimate
        self.fold_vectors: list[np.ndarray] | None = None  # ...at the best check
        self.before = self.best = self.best_margin = 0.0  # estimates: the instant encoder's, the best, its margin
        self.waited = 0  # checks since the estimate last rose
        self.level = 0.0  # accuracy within this of the best is level (``tie_texts`` held-out texts)
        self.clear: float | None = None  # a rise this large ends the checks (``commit_gain``, ``commit_texts``)
        self.chosen_note = ""  # what the message adds on how the final run's steps were chosen
        self.advance(0)

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def fits(self, seconds: float) -> bool:
        """Whether ``seconds`` more work ends within the time budget."""
        return self.budget is None or self.elapsed() + seconds <= self.budget

    def advance(self, to: int) -> None:
        """Move the progress to ``to`` steps of ``total`` (never backwards)."""
        self.done = max(self.done, min(to, self.total))
        if self.progress:
            self.progress(self.done, self.total)

    # ---- the phases ----------------------------------------------------------------------------------------
    def encode(self, model: Any, texts: list[str], head: nn.Module | None,
               extra_layers: Sequence[int]) -> FinetuneResult | None:
        """Run the frozen lower layers once on every example and cache their token states."""
        self.template = TopLayers(model, self.config.layers, head, extra_layers)
        self.cached = lower_states(model, texts, self.template.start, extra_layers, cancel=self.stop)
        return self.cancelled() if self.cached is None else None

    def choose_steps(self) -> FinetuneResult | None:
        """Cross-validate to choose the final run's steps, or keep the instant encoder (no gain, out of time)."""
        if not self.folds:
            return None if self.fits(0) else self.no_time("encoding the examples")
        ended = self._estimate_before()
        if ended is None:
            ended = self._cross_validate()
        if ended is None:
            ended = self._decide()
        return ended

    def train_final(self) -> FinetuneResult | None:
        """Train a last copy on all examples for the chosen steps (with no estimate, ``steps`` is a limit that the
        time budget may end sooner)."""
        final = _Run(self.template, self.all_rows, self.config, self.config.seed)
        final_seconds: list[float] = []
        start = self.done
        for _ in range(self.steps):
            if self.stop():
                return self.cancelled()
            if not self.folds and final_seconds and not self.fits(float(np.mean(final_seconds))):
                self.report.out_of_time = True  # no estimate chose the steps: `steps` is a limit, the budget ends it
                break
            tic = self.clock()
            final.step(self.cached, self.y)
            final_seconds.append(self.clock() - tic)
            self.advance(start + final.steps)
        self.report.steps = final.steps
        self.state = final.net.trained_state(self.config.half_weights)
        return None

    # ---- the estimate --------------------------------------------------------------------------------------
    def _estimate_before(self) -> FinetuneResult | None:
        """Set up the fold runs and estimate the instant encoder ("before"); no time left: keep it."""
        config, fid, report = self.config, self.fid, self.report
        self.runs = [_Run(self.template, np.flatnonzero(fid != f), config, config.seed + 1 + f) for f in self.folds]
        self.fold_vectors = []
        text = 1 / max(int((fid >= 0).sum()), 1)  # one held-out text, as a share of the estimate
        self.level = config.tie_texts * text
        self.clear = None if config.commit_gain is None else max(config.commit_gain, config.commit_texts * text)
        tic = self.clock()
        self.before, self.best_margin = self._score([self.template] * len(self.folds))
        self.estimate_seconds = (self.clock() - tic) * len(self.folds)  # later checks embed once per fold model
        report.estimate_before = self.before
        report.curve.append((0, self.before))
        if not self.fits(0):
            return self.no_time("encoding the examples and the first estimate")
        self.best, self.steps = self.before, 0
        return None

    def _cross_validate(self) -> FinetuneResult | None:
        """Train the fold runs a step at a time, checking every ``eval_every`` steps, until the estimate stops
        rising (``patience``), rises clearly (``commit_gain``), reaches ``steps`` or leaves no room in the budget."""
        config, report = self.config, self.report
        while self.fold_steps < config.steps:
            if not self._room_for(self.fold_steps + 1):
                report.out_of_time = True
                break
            if self.step_seconds:
                self.reserved = self.fold_steps + 1
            tic = self.clock()
            for run in self.runs:
                if self.stop():
                    return self.cancelled()
                run.step(self.cached, self.y)
            self.step_seconds.append((self.clock() - tic) / len(self.runs))
            self.fold_steps += 1
            self.advance(self.fold_steps * len(self.runs))
            if self.fold_steps % config.eval_every and self.fold_steps < config.steps:
                continue
            tic = self.clock()
            rose = self._check()
            self.estimate_seconds = self.clock() - tic
            if rose and self.clear is not None and self.best - self.before >= self.clear - 1e-12:
                report.committed = True  # clearly worth it: no more checks, the final run trains more
                break
            if not rose:
                self.waited += 1
                if self.waited >= config.patience:
                    report.stopped_early = self.fold_steps < config.steps
                    break
        if report.out_of_time and self.fold_steps > report.curve[-1][0]:  # the steps since the last check count too
            self._check()
        return None

    def _decide(self) -> FinetuneResult | None:
        """Keep the instant encoder unless the best estimate beats "before" by more than ``min_gain``; after a
        clear gain train all ``steps`` the budget holds; a final run never measured to fit must fit now."""
        config, report, budget = self.config, self.report, self.budget
        self.advance(config.steps * len(self.runs))  # the estimate is over
        report.estimate_after = self.best
        if self.steps == 0 or self.best - self.before <= config.min_gain:
            report.estimate_after = self.before
            ended = f"; the time budget ended the estimate after {self.fold_steps} steps" if report.out_of_time else ""
            return self.keep_instant(f"no gain expected (estimated accuracy {self.before:.1%} before, best "
                                     f"{self.best:.1%} after){ended}")
        if report.committed:
            self._steps_after_a_clear_gain()
        elif report.out_of_time:
            self.chosen_note = f"; the time budget ended the estimate after {self.fold_steps} steps"
        if self.steps > self.reserved:  # never measured to fit (the first steps' time was unknown): it must fit now
            needed = float(np.mean(self.step_seconds)) * self.steps
            if not self.fits(needed):
                report.out_of_time = True
                report.estimate_after = self.best
                return self.keep_instant(f"out of time: the final run of {self.steps} steps (about {needed:.1f} s) "
                                         f"does not fit the {max(budget - self.elapsed(), 0.0):.1f} s left of the "
                                         f"{budget:g} s time budget (estimated accuracy {self.before:.1%} -> "
                                         f"{self.best:.1%}; a larger time budget lets it finish)")
        return None

    def _steps_after_a_clear_gain(self) -> None:
        """All ``steps``, or as many of them as the time left holds; never fewer than checked."""
        config, budget = self.config, self.budget
        self.steps = config.steps
        if budget is None:
            return
        per = float(np.mean(self.step_seconds))
        affordable = int(max(budget - self.elapsed(), 0.0) / per)
        if affordable < config.steps:
            self.steps = max(self.fold_steps, affordable)
            self.report.out_of_time = True
            self.chosen_note = f" ({config.steps} did not fit the time budget)"
        if affordable >= self.steps:
            self.reserved = max(self.reserved, self.steps)

    def _room_for(self, next_steps: int) -> bool:
        """Whether one more step of every fold, one more estimate (a check, or the one at the end of the budget)
        and a final run of ``next_steps`` fit the budget; nothing measured yet: whether any time is left."""
        if not self.step_seconds:
            return self.fits(0)
        per = float(np.mean(self.step_seconds))
        return self.fits(per * len(self.runs) + self.estimate_seconds + per * next_steps)

    def _check(self) -> bool:
        """Estimate the fold runs now, add it to the curve; whether it rose (then it is the best so far)."""
        value, margin = self._score([run.net for run in self.runs])
        self.report.curve.append((self.fold_steps, value))
        if not self._rises(value, margin):
            return False
        self.best, self.best_margin, self.steps, self.waited = max(self.best, value), margin, self.fold_steps, 0
        self.fold_vectors = list(self.seen)
        return True

    def _rises(self, value: float, margin: float) -> bool:
        """Higher held-out accuracy, or (``margin_ties``, once the accuracy has risen above "before") a level one
        (at most ``tie_texts`` held-out texts below the best) with a larger margin: a tie extends a gain, it never
        starts one."""
        best = self.best
        return value > best + 1e-12 or (self.config.margin_ties and best > self.before + 1e-12
                                        and value > best - self.level - 1e-12 and margin > self.best_margin + 1e-9)

    def _score(self, nets: list[TopLayers]) -> tuple[float, float]:
        """Held-out accuracy by ``rule`` and mean held-out prototype margin (the tie-break)."""
        y, fid, seen = self.y, self.fid, self.seen
        right = count = 0
        margin = 0.0
        seen.clear()
        for f, net in zip(self.folds, nets):
            same = next((i for i, other in enumerate(nets[:len(seen)]) if other is net), None)
            vecs = seen[same] if same is not None else net.embed(self.cached, self.all_rows.tolist()).numpy()
            seen.append(vecs)
            rows, pred = held_out_predictions(vecs, y, fid, f, self.rule)
            right += int((pred == y[rows]).sum())
            count += len(rows)
            if self.config.margin_ties:
                margin += prototype_margin(vecs, y, fid, f)
        return right / max(count, 1), margin / max(count, 1)

    # ---- the endings ---------------------------------------------------------------------------------------
    def kept(self) -> FinetuneResult:
        """The adapted weights, with a message on the estimate, the steps and the time budget."""
        config, report, budget, steps = self.config, self.report, self.budget, self.report.steps
        if report.estimate_before is None:
            message = f"adapted {len(report.layers)} layer(s) in {steps} steps (no estimate: folds=0)"
            if report.out_of_time:
                message += f"; the time budget ended the run before {config.steps} steps"
        else:
            message = (f"estimated accuracy {report.estimate_before:.1%} -> {report.estimate_after:.1%} "
                       f"({steps} steps, {len(report.layers)} layer(s))")
            if report.committed:
                message += (f"; a clear gain after {report.curve[-1][0]} steps, so the final run trained {steps}"
                            f"{self.chosen_note}")
            elif report.out_of_time:
                message += self.chosen_note
            elif self.steps == config.steps:  # still rising at the last check
                message += f"; still rising at the step limit: more steps (steps > {config.steps}) may help"
        if budget is not None and self.elapsed() > budget:
            report.over_budget = True
            message += (f"; took {self.elapsed():.1f} s, over the {budget:g} s time budget (the machine ran slower "
                        f"than measured; the final run's {steps} steps were run in full)")
        return self.finish(message, state=self.state)

    def keep_instant(self, reason: str) -> FinetuneResult:
        """Return no weights, saying why (``report.reason``) and what follows (``report.message``)."""
        return self.finish(f"{reason}: {KEPT}", reason=reason)

    def no_time(self, what: str) -> FinetuneResult:
        self.report.out_of_time = True
        return self.keep_instant(f"out of time before training: {what} took {self.elapsed():.1f} s of the "
                                 f"{self.budget:g} s time budget (a larger time budget lets it train)")

    def cancelled(self) -> FinetuneResult:
        report = self.report
        report.cancelled, report.steps = True, 0
        report.seconds = self.elapsed()
        report.message = "cancelled: the instant classifier is unchanged"
        return FinetuneResult({}, report, self.config)

    def finish(self, message: str, reason: str = "", state: dict[str, torch.Tensor] | None = None) -> FinetuneResult:
        """The result (``state``: the adapted tensors, or none); the progress reaches its end."""
        report = self.report
        report.seconds = self.elapsed()
        report.kept = bool(state)
        report.message = message
        report.reason = reason
        self.advance(self.total)  # finished: nothing left to do
        kept_folds = bool(state) and self.fid is not None and bool(self.fold_vectors)
        return FinetuneResult(state or {}, report, self.config, self.fid if kept_folds else None,
                              self.fold_vectors if kept_folds else None)


def apply_weights(model: Any, state_dict: dict[str, torch.Tensor]) -> Any:
    """A copy of ``model`` with the adapted tensors loaded (``model`` itself is unchanged).

    Only the adapted tensors are new: the others (embeddings, frozen layers) are shared with ``model``, read-only
    at inference, so an adapted classifier costs memory for its trained layers alone.
    """
    state = model.state_dict(keep_vars=True)  # the parameters themselves (their ids say what to share)
    unknown = sorted(set(state_dict) - set(state))
    if unknown:
        raise FewShotError(f"adapted weights {unknown[:3]} do not fit this model (its layers are under "
                           f"{layer_prefix(model)!r})")
    bad = sorted(k for k, v in state_dict.items() if tuple(v.shape) != tuple(state[k].shape))
    if bad:
        raise FewShotError(f"adapted weight {bad[0]!r} has shape {tuple(state_dict[bad[0]].shape)}, the model's "
                           f"is {tuple(state[bad[0]].shape)}")
    trained = {id(state[k]) for k in state_dict}
    shared = {id(t): t for t in [*model.parameters(), *model.buffers()] if id(t) not in trained}
    out = copy.deepcopy(model, memo=shared)
    out.load_state_dict({k: v.to(state[k].dtype) for k, v in state_dict.items()}, strict=False)
    return out
