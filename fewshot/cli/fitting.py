"""The classifier a command runs: loaded from ``--classifier`` or fitted on ``--support``, fine-tuned with
``--finetune``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..errors import FewShotError
from ..progress import tqdm_progress
from .columns import _columns
from .notes import _progress_bar
from .options import _load_options, options_from_args


def _classifier(args: argparse.Namespace) -> Any:
    """The classifier the command asks for: loaded from --classifier, or fitted on --support."""
    return _classifier_timed(args)[0]


def _classifier_timed(args: argparse.Namespace) -> tuple[Any, float, Any]:
    """The classifier, the seconds spent encoding and fitting its examples (0 when loaded), and the report of
    ``--finetune`` (None without it; kept or not)."""
    from ..classifier import FewShotClassifier
    from ..io.tables import read_labelled_table

    _check_finetune_options(args)
    finetune = getattr(args, "finetune", False)
    if getattr(args, "classifier", None):
        clf = FewShotClassifier.load(args.classifier, **_load_options(args))
        return clf, 0.0, _finetune(clf, args) if finetune else None
    texts, labels = read_labelled_table(args.support, *_columns(args, args.support, support=True), args.encoding)
    clf = FewShotClassifier(args.model, **options_from_args(args))
    clf.encoder  # noqa: B018 - the model loads here (on first use), before the timed part
    fit_started = time.perf_counter()  # what `evaluate` reports: encoding + fitting, not model loading
    with _progress_bar("encoding examples", total=len(texts)) as bar:
        clf.fit(texts, labels, progress=tqdm_progress(bar))
    report = _finetune(clf, args) if finetune else None
    return clf, time.perf_counter() - fit_started, report


def _check_finetune_options(args: argparse.Namespace) -> None:
    """Refuse fine-tuning options that would be ignored or cannot apply, before any file is read."""
    if not getattr(args, "finetune", False):
        given = [flag for flag, value in (("--finetune-seconds", getattr(args, "finetune_seconds", None)),
                                          ("--finetune-steps", getattr(args, "finetune_steps", None)))
                 if value is not None]
        if given:
            raise FewShotError(f"{given[0]} sets how --finetune runs; add --finetune (or leave {given[0]} out)")
    elif getattr(args, "multi_label", False):
        raise FewShotError("--finetune supports single-label classifiers; --multi-label examples carry label sets, "
                           "which its contrastive loss does not read")


def _finetune(clf: Any, args: argparse.Namespace) -> Any:
    """``--finetune``: adapt the encoder on the examples with a progress bar; one line on stderr before (the
    overlap hint) and one after (the estimate before -> after, or why the instant encoder stays)."""
    from ..adapt import FinetuneConfig

    config = FinetuneConfig()
    if args.finetune_seconds is not None:
        config.time_budget = args.finetune_seconds
    if args.finetune_steps is not None:
        config.steps = args.finetune_steps
    config.validate()
    print(f"fewshot: fine-tuning (at most {config.time_budget:g} s): {clf.overlap_hint().message}", file=sys.stderr)
    with _progress_bar("fine-tuning", unit="step") as bar:
        report = clf.finetune(config, progress=tqdm_progress(bar))
    print(f"fewshot: fine-tuning: {report.message} ({report.seconds:.0f} s)", file=sys.stderr)
    return report


def _check_batch_aware(args: argparse.Namespace, clf: Any) -> None:
    """Refuse ``--batch-aware`` for a multi-label classifier, naming why."""
    if args.batch_aware and clf.config.multi_label:
        raise FewShotError("--batch-aware is not available with a multi-label classifier (its unknown answers come "
                           "from per-label thresholds, not an in-scope score)")
