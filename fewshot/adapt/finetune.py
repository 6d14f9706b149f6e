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
from .config import FinetuneConfig, FinetuneReport, FinetuneResult
from .estimate import Rule, fold_ids, held_out_predictions, prototype_margin, prototype_rule
from .layers import Cached, TopLayers, layer_prefix, lower_states, transformer_of
from .losses import contrastive_loss, sample_episode, supcon_loss

ProgressFn = Callable[[int, int], None]
Cancel = Callable[[], bool] | threading.Event


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
             train_only: Sequence[bool] | None = None) -> FinetuneResult:
    """Adapt the top ``config.layers`` layers of the sentence-transformer ``model`` to ``texts`` / ``labels``.

    ``head`` (a frozen module on the sentence embedding) and ``extra_layers`` (layers whose mean-pooled states are
    appended) make the trained vector the one the classifier uses. ``progress(done, total)`` counts training
    steps (``total`` shrinks when the estimate stops early); ``cancel`` (an Event or a callable) stops the work
    at the next step, and then nothing is returned. ``rule(train_vectors, train_label_indices, test_vectors)``
    classifies the held-out folds for the estimate (the classifier passes its own rule, so that "before" is the
    instant classifier's own cross-validated accuracy). ``train_only`` marks rows that train but are never
    held out (the classifier's label names: they are not texts to classify). ``model`` is never modified.
    Returns the trained tensors under ``model.state_dict()`` names (empty when the instant encoder is kept)
    and a :class:`FinetuneReport`.
    """
    config = config or FinetuneConfig()
    config.validate()
    t0 = time.perf_counter()
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
    over = (lambda extra=0.0: False) if config.time_budget is None else (
        lambda extra=0.0: time.perf_counter() - t0 + extra > config.time_budget)

    def finish(message: str, state: dict[str, torch.Tensor] | None = None, folds_used: np.ndarray | None = None,
               vectors: list[np.ndarray] | None = None) -> FinetuneResult:
        report.seconds = time.perf_counter() - t0
        report.kept = bool(state)
        report.message = message
        kept_folds = bool(state) and folds_used is not None and bool(vectors)
        return FinetuneResult(state or {}, report, config, folds_used if kept_folds else None,
                              vectors if kept_folds else None)

    def cancelled() -> FinetuneResult:
        report.cancelled, report.steps = True, 0
        return finish("cancelled: the instant classifier is unchanged")

    with torch.random.fork_rng(devices=[]):  # dropout draws from torch's global generator: keep the caller's
        torch.manual_seed(config.seed)
        template = TopLayers(model, config.layers, head, extra_layers)
        cached = lower_states(model, texts, template.start, extra_layers, cancel=stop)
        if cached is None:
            return cancelled()
        all_rows = np.arange(len(texts))
        total = config.steps * (config.folds + 1)
        done = 0
        if progress:
            progress(0, total)
        step_seconds: list[float] = []
        best_steps = config.steps
        fid, fold_vectors = None, None
        if config.folds:
            fid = fold_ids(y, config.folds, config.seed)
            if train_only is not None:
                only = np.asarray(train_only, dtype=bool)
                if only.shape != (len(texts),):
                    raise FewShotError(f"train_only must have one flag per text ({len(texts)}), got shape "
                                       f"{only.shape}")
                fid[only] = -1
            folds = sorted(set(fid.tolist()) - {-1})
            runs = [_Run(template, np.flatnonzero(fid != f), config, config.seed + 1 + f) for f in folds]

            fold_vectors: list[np.ndarray] = []  # each fold model's vectors of all rows at the best check

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

            seen: list[np.ndarray] = []

            tic = time.perf_counter()
            before, best_margin = estimate([template] * len(folds))
            estimate_seconds = (time.perf_counter() - tic) * len(folds)  # later checks embed once per fold model
            report.estimate_before = before
            report.curve.append((0, before))
            best, best_steps, waited, s = before, 0, 0, 0

            def room_for(next_steps: int) -> bool:
                """Whether one more step of every fold, an estimate and a final run of ``next_steps`` fit the budget."""
                if not step_seconds:
                    return True
                per = float(np.mean(step_seconds))
                return not over(per * len(runs) + estimate_seconds + per * next_steps)

            while s < config.steps:
                if not room_for(s + 1):
                    report.out_of_time = True
                    break
                tic = time.perf_counter()
                for run in runs:
                    if stop():
                        return cancelled()
                    run.step(cached, y)
                step_seconds.append((time.perf_counter() - tic) / len(runs))
                done += len(runs)
                s += 1
                if progress:
                    progress(done, total)
                if s % config.eval_every and s < config.steps:
                    continue
                tic = time.perf_counter()
                value, margin = estimate([run.net for run in runs])
                estimate_seconds = time.perf_counter() - tic
                report.curve.append((s, value))
                if rises(value, margin):
                    best, best_margin, best_steps, waited = max(best, value), margin, s, 0
                    fold_vectors = list(seen)
                    if clear is not None and best - before >= clear - 1e-12:
                        best_steps, report.committed = config.steps, True  # clearly worth it: no more checks
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
            report.estimate_after = best
            if best_steps == 0 or best - before <= config.min_gain:
                report.estimate_after = before
                if progress:
                    progress(done, done)  # finished: nothing left to do
                return finish(f"no gain expected (estimated accuracy {before:.1%} before, best {best:.1%} "
                              "after): the instant classifier is kept")
        total = done + best_steps
        final = _Run(template, all_rows, config, config.seed)
        for _ in range(best_steps):
            if stop():
                return cancelled()
            if over():
                report.out_of_time = True
                break
            final.step(cached, y)
            done += 1
            if progress:
                progress(done, total)
        report.steps = final.steps
        if progress and done != total:
            progress(done, done)  # the time budget ended the final run
        if final.steps == 0:
            return finish("out of time before the first step: the instant classifier is kept")
        state = final.net.trained_state(config.half_weights)
    if report.estimate_before is None:
        message = f"adapted {len(report.layers)} layer(s) in {final.steps} steps (no estimate: folds=0)"
    else:
        message = (f"estimated accuracy {report.estimate_before:.1%} -> {report.estimate_after:.1%} "
                   f"({final.steps} steps, {len(report.layers)} layer(s))")
        if report.committed:
            message += f"; a clear gain after {report.curve[-1][0]} steps, so the final run trained {config.steps}"
        elif best_steps == config.steps and not report.out_of_time:  # still rising at the last check
            message += f"; still rising at the step limit: more steps (steps > {config.steps}) may help"
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
