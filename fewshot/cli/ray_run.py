"""``classify --engine ray``: the command's checks, notes and counts around
:func:`fewshot.distributed.ray_engine.classify_with_ray`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import FewShotError
from .columns import _text_column
from .fitting import _classifier
from .notes import _note, _note_over_length, _progress_bar, _rows
from .options import _load_options


def _unknown_label(clf: Any, saved: Any) -> str:
    """The unknown answer's name of a classifier, or of the ``--classifier`` folder ``saved`` (read, not loaded)."""
    if saved is None:
        return str(clf.config.unknown_label)
    from ..config import ClassifierConfig

    return str(saved.options.get("unknown_label", ClassifierConfig().unknown_label))


def _ray_input_note(args: argparse.Namespace, clf: Any, saved: Any, first_file: str | Path,
                    text_col: str) -> str | None:
    """The local engine's note on the rows' language, from the first rows of the first input file; for a
    ``--classifier`` folder, from ``saved`` (its examples and encoder name, read without loading it)."""
    from ..io.tables import iter_chunks
    from ..language import SAMPLE_TEXTS, classifier_input_note, english_model_name, input_note

    sample = next(iter_chunks(first_file, text_col, SAMPLE_TEXTS, args.encoding), None)
    if sample is None:
        return None
    what, texts = f"the rows of {Path(first_file).name}", sample[text_col]
    if saved is None:
        return classifier_input_note(clf, texts, what)
    from ..encoders.registry import resolve_model

    return input_note(english_model_name(resolve_model(args.model or saved.model)), saved.texts, texts, what)


def _classify_ray(args: argparse.Namespace) -> int:
    """``fewshot classify --engine ray``: the local engine's options, run on Ray (``--address`` to join a cluster)."""
    from collections import Counter

    from ..distributed.ray_engine import check_inputs, classify_with_ray, import_ray, resolve_inputs
    from ..io.output import answers_line
    from ..io.tables import count_rows

    import_ray()  # before any model is loaded
    files = resolve_inputs(args.input)
    text_col = _text_column(args, str(files[0]))
    check_inputs(files, text_col, args.encoding)
    workers = os.environ.get("FEWSHOT_RAY_WORKERS")
    if workers is not None and not workers.strip().isdigit():
        raise FewShotError(f"FEWSHOT_RAY_WORKERS must be a whole number, got {workers!r}")
    if args.classifier and not args.finetune:
        clf: Any = args.classifier
        overrides = _load_options(args)
    else:  # fitted (or fine-tuned) here, shipped to the workers as a saved folder with its adapted weights
        clf, overrides = _classifier(args), {}
    saved = None
    if isinstance(clf, str | Path):  # read once, for the notes only: the actors load it
        from ..persist import opened, read_folder

        with opened(clf) as folder:
            saved = read_folder(folder, {}, name=clf)
    _note(_ray_input_note(args, clf, saved, files[0], text_col))
    counts = [count_rows(f, args.encoding) for f in files]
    total = None if None in counts else sum(c for c in counts if c is not None)
    over = {"texts": 0, "limit": 0}
    answers: Counter[str] = Counter()

    def count_over(texts: int, limit: int) -> None:
        over["texts"], over["limit"] = over["texts"] + texts, limit

    with _progress_bar("classifying (ray)", total=total, unit="row") as bar:
        written = classify_with_ray(files, args.output, classifier=clf, address=args.address,
                                    num_workers=int(workers) if workers else None, batch_size=args.chunk_size,
                                    text_column=text_col, encoding=args.encoding, overrides=overrides,
                                    progress=bar.update, over_length=count_over, answered=answers.update)
    print(f"wrote {_rows(written)} to {args.output} ({len(files)} input file(s), Ray)", file=sys.stderr)
    if answers:
        print(answers_line(answers, _unknown_label(clf, saved)), file=sys.stderr)
    _note_over_length(over["texts"], over["limit"])
    return 0
