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
from ..losses import episode_contrastive_loss as contrastive_loss
from ..losses import supcon_loss
from .config import FinetuneConfig, FinetuneReport, FinetuneResult
from .episodes import sample_episode
from .estimate import Rule, fold_ids, held_out_predictions, prototype_margin, prototype_rule
from .layers import Cached, TopLayers, layer_prefix, lower_states, transformer_of

ProgressFn = Callable[[int, int], None]
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
            loss = contrastive_loss(z, y, cfg.margin, self.gen)
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

    ``head`` (a frozen module on the sentence embedding) and ``extra_layers`` (layers whose mean-pooled states are
    appended) make the trained vector the one the classifier uses. ``progress(done, total)`` counts training
    steps against the largest plan, ``total = steps x (folds + 1)`` (each fold run's steps, then the final
    run's), which never changes: ``done`` only grows, jumps to the end of the estimate when the estimate stops
    early, and the last call is ``(total, total)`` (none after a cancel). ``cancel`` (an Event or a callable)
    stops the work at the next step, and then nothing is returned. ``rule(train_vectors, train_label_indices,
    test_vectors)`` classifies the held-out folds for the estimate (the classifier passes its own rule, so that
    "before" is the instant classifier's own cross-validated accuracy). ``train_only`` marks rows that train but
    are never held out (the classifier's label names: they are not texts to classify). ``clock`` (seconds, as
    :func:`time.perf_counter`) times the budget; tests pass a fake one. ``model`` is never modified.

    The time budget is kept by planning, not by cutting: a fold step runs only when it, one more estimate and a
    final run of as many steps fit in what is left, so the final run always trains the number of steps the
    estimate chose, in full (a run that still ends past the budget, because the machine slowed down, says so:
    ``over_budget``). With the same inputs and a budget that is not reached, the result does not depend on the
    machine's speed or load.
    Returns the trained tensors under ``model.state_dict()`` names (empty when the instant encoder is kept)
    and a :class:`FinetuneReport`.
    """
    config = config or FinetuneConfig()
    config.validate()
    t0 = clock()
    stop = _stop_fn(cancel)
    texts = list(texts)
    names = [str(x) for x in labels]
    if len(texts) != len(names):
        raise FewShotError(f"texts and labels must have the same length, got {len(texts)} and {len(names)}")
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise FewShotError("every text to fine-tune on must be a non-empty string")
    classes, y = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    if len(classes) < 2 or np.bincount(y).max() < 2:
        raise FewShotError(f"fine-tuning needs at least 2 labels and 2 examples of some label; got "
                           f"{len(classes)} label(s), at most {np.bincount(y).max() if len(y) else 0} example(s) each")
    y = y.astype(np.int64)
    config = config.for_labels(len(classes))  # layers and episode size settled for this label set
    depth = len(transformer_of(model).encoder.layer)
    report = FinetuneReport(layers=list(range(depth - min(config.layers, depth), depth)))
    budget = config.time_budget

    def elapsed() -> float:
        return clock() - t0

    def fits(seconds: float) -> bool:
        """Whether ``seconds`` more work ends within the time budget."""
        return budget is None or elapsed() + seconds <= budget

    fid: np.ndarray | None = None
    folds: list[int] = []
    if config.folds:
        fid = fold_ids(y, config.folds, config.seed)
        if train_only is not None:
            only = np.asarray(train_only, dtype=bool)
            if only.shape != (len(texts),):
                raise FewShotError(f"train_only must have one flag per text ({len(texts)}), got shape {only.shape}")
            fid[only] = -1
        folds = sorted(set(fid.tolist()) - {-1})
        if not folds:
            raise FewShotError("the estimate needs examples to hold out, but every row is train_only "
                               "(or folds=0 skips the estimate)")
    total = config.steps * (len(folds) + 1)  # the largest plan: every fold run's steps, then the final run's
    done = 0

    def advance(to: int) -> None:
        """Move the progress to ``to`` steps of ``total`` (never backwards)."""
        nonlocal done
        done = max(done, min(to, total))
        if progress:
            progress(done, total)

    advance(0)

    def finish(message: str, state: dict[str, torch.Tensor] | None = None, folds_used: np.ndarray | None = None,
               vectors: list[np.ndarray] | None = None) -> FinetuneResult:
        report.seconds = elapsed()
        report.kept = bool(state)
        report.message = message
        report.reason = ""
        advance(total)  # finished: nothing left to do
        kept_folds = bool(state) and folds_used is not None and bool(vectors)
        return FinetuneResult(state or {}, report, config, folds_used if kept_folds else None,
                              vectors if kept_folds else None)

    def keep_instant(reason: str) -> FinetuneResult:
        """Return no weights, saying why (``report.reason``) and what follows (``report.message``)."""
        result = finish(f"{reason}: {KEPT}")
        report.reason = reason
        return result

    def cancelled() -> FinetuneResult:
        report.cancelled, report.steps = True, 0
        report.seconds = elapsed()
        report.message = "cancelled: the instant classifier is unchanged"
        return FinetuneResult({}, report, config)

    def no_time(what: str) -> FinetuneResult:
        report.out_of_time = True
        return keep_instant(f"out of time before training: {what} took {elapsed():.1f} s of the {budget:g} s time "
                            "budget (a larger time budget lets it train)")

    with torch.random.fork_rng(devices=[]):  # dropout draws from torch's global generator: keep the caller's
        torch.manual_seed(config.seed)
        template = TopLayers(model, config.layers, head, extra_layers)
        cached = lower_states(model, texts, template.start, extra_layers, cancel=stop)
        if cached is None:
            return cancelled()
        all_rows = np.arange(len(texts))
        step_seconds: list[float] = []  # seconds of one training step (one fold run's, or the final run's)
        best_steps = config.steps
        reserved = 0  # final-run steps the budget was measured to leave room for
        fold_vectors: list[np.ndarray] | None = None
        chosen_note = ""
        if folds:
            runs = [_Run(template, np.flatnonzero(fid != f), config, config.seed + 1 + f) for f in folds]
            fold_vectors = []  # each fold model's vectors of all rows at the best check
            seen: list[np.ndarray] = []

            def estimate(nets: list[TopLayers]) -> tuple[float, float]:
                """Held-out accuracy by ``rule`` and mean held-out prototype margin (the tie-break)."""
                right = count = 0
                margin = 0.0
                seen.clear()
                for f, net in zip(folds, nets):
                    same = next((i for i, other in enumerate(nets[:len(seen)]) if other is net), None)
                    vecs = seen[same] if same is not None else net.embed(cached, all_rows.tolist()).numpy()
                    seen.append(vecs)
                    rows, pred = held_out_predictions(vecs, y, fid, f, rule)
                    right += int((pred == y[rows]).sum())
                    count += len(rows)
                    if config.margin_ties:
                        margin += prototype_margin(vecs, y, fid, f)
                return right / max(count, 1), margin / max(count, 1)

            text = 1 / max(int((fid >= 0).sum()), 1)  # one held-out text, as a share of the estimate
            level = config.tie_texts * text  # accuracy within this of the best: level
            clear = None if config.commit_gain is None else max(config.commit_gain, config.commit_texts * text)

            def rises(value: float, margin: float) -> bool:
                """Higher held-out accuracy, or (``margin_ties``, once the accuracy has risen above "before") a
                level one (at most ``tie_texts`` held-out texts below the best) with a larger margin: a tie
                extends a gain, it never starts one."""
                return value > best + 1e-12 or (config.margin_ties and best > before + 1e-12
                                                 and value > best - level - 1e-12 and margin > best_margin + 1e-9)

            tic = clock()
            before, best_margin = estimate([template] * len(folds))
            estimate_seconds = (clock() - tic) * len(folds)  # later checks embed once per fold model
            report.estimate_before = before
            report.curve.append((0, before))
            if not fits(0):
                return no_time("encoding the examples and the first estimate")
            best, best_steps, waited, s = before, 0, 0, 0

            def room_for(next_steps: int) -> bool:
                """Whether one more step of every fold, one more estimate (a check, or the one at the end of the
                budget) and a final run of ``next_steps`` fit the budget; nothing measured yet: whether any time
                is left."""
                if not step_seconds:
                    return fits(0)
                per = float(np.mean(step_seconds))
                return fits(per * len(runs) + estimate_seconds + per * next_steps)

            while s < config.steps:
                if not room_for(s + 1):
                    report.out_of_time = True
                    break
                if step_seconds:
                    reserved = s + 1
                tic = clock()
                for run in runs:
                    if stop():
                        return cancelled()
                    run.step(cached, y)
                step_seconds.append((clock() - tic) / len(runs))
                s += 1
                advance(s * len(runs))
                if s % config.eval_every and s < config.steps:
                    continue
                tic = clock()
                value, margin = estimate([run.net for run in runs])
                estimate_seconds = clock() - tic
                report.curve.append((s, value))
                if rises(value, margin):
                    best, best_margin, best_steps, waited = max(best, value), margin, s, 0
                    fold_vectors = list(seen)
                    if clear is not None and best - before >= clear - 1e-12:
                        report.committed = True  # clearly worth it: no more checks, the final run trains more
                        break
                else:
                    waited += 1
                    if waited >= config.patience:
                        report.stopped_early = s < config.steps
                        break
            if report.out_of_time and s > report.curve[-1][0]:  # the steps since the last estimate count too
                value, margin = estimate([run.net for run in runs])
                report.curve.append((s, value))
                if rises(value, margin):
                    best, best_margin, best_steps = max(best, value), margin, s
                    fold_vectors = list(seen)
            advance(config.steps * len(runs))  # the estimate is over
            report.estimate_after = best
            if best_steps == 0 or best - before <= config.min_gain:
                report.estimate_after = before
                ended = f"; the time budget ended the estimate after {s} steps" if report.out_of_time else ""
                return keep_instant(f"no gain expected (estimated accuracy {before:.1%} before, best {best:.1%} "
                                    f"after){ended}")
            if report.committed:
                best_steps = config.steps
                if budget is not None:  # as many of `steps` as the time left holds; never fewer than checked
                    per = float(np.mean(step_seconds))
                    affordable = int(max(budget - elapsed(), 0.0) / per)
                    if affordable < config.steps:
                        best_steps = max(s, affordable)
                        report.out_of_time = True
                        chosen_note = f" ({config.steps} did not fit the time budget)"
                    if affordable >= best_steps:
                        reserved = max(reserved, best_steps)
            elif report.out_of_time:
                chosen_note = f"; the time budget ended the estimate after {s} steps"
            if best_steps > reserved:  # never measured to fit (the first steps' time was unknown): it must fit now
                needed = float(np.mean(step_seconds)) * best_steps
                if not fits(needed):
                    report.out_of_time = True
                    report.estimate_after = best
                    return keep_instant(f"out of time: the final run of {best_steps} steps (about {needed:.1f} s) "
                                        f"does not fit the {max(budget - elapsed(), 0.0):.1f} s left of the "
                                        f"{budget:g} s time budget (estimated accuracy {before:.1%} -> {best:.1%}; a "
                                        "larger time budget lets it finish)")
        elif not fits(0):
            return no_time("encoding the examples")
        final = _Run(template, all_rows, config, config.seed)
        final_seconds: list[float] = []
        start = done
        for _ in range(best_steps):
            if stop():
                return cancelled()
            if not folds and final_seconds and not fits(float(np.mean(final_seconds))):
                report.out_of_time = True  # no estimate chose the steps: `steps` is a limit, the budget ends it
                break
            tic = clock()
            final.step(cached, y)
            final_seconds.append(clock() - tic)
            advance(start + final.steps)
        report.steps = final.steps
        if final.steps == 0:
            report.out_of_time = True
            return no_time("encoding the examples")
        state = final.net.trained_state(config.half_weights)
    if report.estimate_before is None:
        message = f"adapted {len(report.layers)} layer(s) in {final.steps} steps (no estimate: folds=0)"
        if report.out_of_time:
            message += f"; the time budget ended the run before {config.steps} steps"
    else:
        message = (f"estimated accuracy {report.estimate_before:.1%} -> {report.estimate_after:.1%} "
                   f"({final.steps} steps, {len(report.layers)} layer(s))")
        if report.committed:
            message += (f"; a clear gain after {report.curve[-1][0]} steps, so the final run trained {final.steps}"
                        f"{chosen_note}")
        elif report.out_of_time:
            message += chosen_note
        elif best_steps == config.steps:  # still rising at the last check
            message += f"; still rising at the step limit: more steps (steps > {config.steps}) may help"
    if budget is not None and elapsed() > budget:
        report.over_budget = True
        message += (f"; took {elapsed():.1f} s, over the {budget:g} s time budget (the machine ran slower than "
                    f"measured; the final run's {final.steps} steps were run in full)")
    return finish(message, state, fid, fold_vectors)


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
