"""``fewshot classify``: the local engine, which streams a file chunk by chunk into a labelled CSV, and the table
of ``--text``'s answers."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import FewShotError
from ..progress import tqdm_progress
from .columns import _text_column
from .fitting import _check_batch_aware, _classifier
from .groups import _GroupCandidates, _write_groups
from .notes import _note, _note_batch_aware, _note_over_length, _progress_bar, _rows
from .options import STDIO
from .ray_run import _classify_ray


def cmd_classify(args: argparse.Namespace) -> int:
    """``fewshot classify``: the input's rows plus the labelled-output columns (:mod:`fewshot.io.output`)."""
    if args.chunk_size < 1:
        raise FewShotError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if args.text is not None:
        return _classify_texts(args)
    if args.output is None:
        raise FewShotError("--output is required with --input: a CSV path, or - for standard output")
    if args.engine == "ray":
        for flag, given in (("--groups", args.groups), ("--batch-aware", args.batch_aware),
                            (f"--input {STDIO} / --output {STDIO}", STDIO in (args.input, args.output))):
            if given:
                raise FewShotError(f"{flag} works with the local engine; run it without --engine ray")
        return _classify_ray(args)
    if args.input != STDIO and (Path(args.input).is_dir() or (any(c in args.input for c in "*?[")
                                                              and not Path(args.input).exists())):
        raise FewShotError(f"--input {args.input}: the local engine reads one file; a folder or a glob is read by "
                           "--engine ray (or name one file)")
    with _stdin_as_file(args.input) as input_path:
        return _classify_local(args, input_path)


@contextlib.contextmanager
def _stdin_as_file(name: str) -> Iterator[str]:
    """``name`` itself, or for ``-`` standard input copied to a temporary file (removed afterwards): the input
    is read more than once (its header, its row count for the progress bar, its rows)."""
    if name != STDIO:
        yield name
        return
    if sys.stdin is None or sys.stdin.isatty():
        raise FewShotError(f"--input {STDIO} reads a CSV from standard input, which is a terminal here; pipe one "
                           f"in: fewshot classify ... --input {STDIO} < tickets.csv")
    with tempfile.TemporaryDirectory(prefix="fewshot-stdin-") as folder:
        path = Path(folder) / "stdin.csv"
        with path.open("wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f)
        try:
            yield str(path)
        except FewShotError as exc:  # name what the user gave, not the temporary copy
            raise FewShotError(str(exc).replace(str(path), "standard input").replace(path.name, "standard input")
                               ) from exc


def _classify_local(args: argparse.Namespace, input_path: str) -> int:
    """``classify`` on this machine, streamed chunk by chunk into ``--output`` (via ``OUT.part``) or stdout."""
    from collections import Counter

    from ..io.output import (answer_counts, answers_line, check_output_file, csv_options, label_frame, output_names,
                            over_length_rows)
    from ..io.tables import count_rows, iter_chunks, sniff
    from ..language import classifier_input_note

    text_col = _text_column(args, input_path, "standard input" if args.input == STDIO else None)
    out_path = None if args.output == STDIO else Path(args.output)
    if out_path is not None:
        if Path(input_path).resolve() == out_path.resolve():
            raise FewShotError("--output is the same file as --input; choose another name so the input is kept")
        if out_path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            raise FewShotError(f"--output {out_path.name}: the output is a CSV file (spreadsheets open it); "
                               "name it .csv")
        check_output_file(out_path)
    groups_path = Path(args.groups) if args.groups else None
    if groups_path is not None and groups_path.resolve() in {Path(p).resolve() for p in (input_path, out_path) if p}:
        raise FewShotError("--groups must name a file other than --input and --output")
    if groups_path is not None:
        check_output_file(groups_path, "--groups", "groups.csv")
    clf = _classifier(args)
    _check_batch_aware(args, clf)
    candidates = _GroupCandidates(clf.config.unknown_label) if groups_path is not None else None
    tmp_path = None if out_path is None else out_path.with_name(out_path.name + ".part")
    input_format = sniff(input_path, args.encoding)  # the output is written as the input was
    written_as = csv_options(input_format, to_file=tmp_path is not None)
    written = labelled = over = 0
    answers: Counter[str] = Counter()
    with _progress_bar("classifying", total=count_rows(input_path, args.encoding), unit="row") as bar:
        chunks = iter_chunks(input_path, text_col, args.chunk_size, args.encoding)
        progress = None
        if args.batch_aware:  # read together: the whole file is one chunk, the bar follows its encoding
            import pandas as pd

            chunks, progress = iter([pd.concat(list(chunks), ignore_index=True)]), tqdm_progress(bar)
        try:
            for i, chunk in enumerate(chunks):
                if i == 0:
                    _note(classifier_input_note(clf, chunk[text_col], _rows_of(args)))
                chunk = label_frame(clf, chunk, text_col, progress=progress, batch_aware=args.batch_aware)
                chunk.to_csv(sys.stdout if tmp_path is None else tmp_path, mode="w" if i == 0 else "a",
                             header=i == 0, index=False, **written_as)
                label_col, _, _, score_col = output_names(chunk.columns[:-4], bool(clf.config.multi_label))
                labelled += int((chunk[label_col] != "").sum())  # blank texts stay unlabelled: not read
                answers.update(answer_counts(chunk[label_col], bool(clf.config.multi_label)))
                over += int(over_length_rows(clf, chunk[text_col]).sum())
                if candidates is not None:
                    candidates.add(written, chunk[text_col], chunk[label_col], chunk[score_col])
                written += len(chunk)
                if progress is None:
                    bar.update(len(chunk))
                else:  # the encoding moved the bar to the texts encoded; the blank rows count too
                    progress(written, written)
        except BaseException:
            if tmp_path is not None:
                tmp_path.unlink(missing_ok=True)
            raise
    if tmp_path is None:
        sys.stdout.flush()
    else:
        tmp_path.replace(out_path)
    print(f"wrote {_rows(written)} to {out_path or 'standard output'}", file=sys.stderr)
    if answers:
        print(answers_line(answers, clf.config.unknown_label), file=sys.stderr)
    _note_over_length(over, clf.encoder.max_tokens)
    _note_batch_aware(args, labelled)
    if candidates is not None:
        _write_groups(clf, candidates, groups_path, csv_options(input_format))
    return 0


def _classify_texts(args: argparse.Namespace) -> int:
    """``classify --text T [--text T2 ...]``: each text's answer and confidence printed as a table on stdout
    (an unknown answer names its nearest label; an ambiguous one its runner-up)."""
    for flag, given in (("--output", args.output), ("--groups", args.groups), ("--batch-aware", args.batch_aware),
                        ("--engine ray", args.engine == "ray")):
        if given:
            raise FewShotError(f"--text prints its answers; {flag} works with --input (put the texts in a CSV with "
                               "a 'text' column)")
    from ..language import classifier_input_note
    from ..text import clean_texts

    for i, text in enumerate(args.text, start=1):  # counted as a reader counts them, not from 0
        if not text.strip():
            raise FewShotError(f"--text number {i} of {len(args.text)} is empty; every text needs some words")
    texts = clean_texts(args.text, "--text")
    clf = _classifier(args)
    _note(classifier_input_note(clf, texts, "the texts given"))
    unknown = str(clf.config.unknown_label)
    rows = []
    for text, said in zip(texts, clf.predict_details(texts, top=2, n_matches=0)):
        answer = ("; ".join(said.labels) or unknown) if clf.config.multi_label else said.label
        if said.ambiguous:
            answer += f" (or {said.alternatives[1]}?)"
        elif answer == unknown and said.top:
            answer += f" (nearest: {said.top[0][0]})"
        rows.append((answer, f"{said.confidence:.2f}", text))
    width = max(len("answer"), *(len(r[0]) for r in rows))
    print(f"{'answer':<{width}}  confidence  text")
    for answer, confidence, text in rows:
        print(f"{answer:<{width}}  {confidence:<10}  {text}")
    return 0


def _rows_of(args: argparse.Namespace) -> str:
    """How notes name the rows to classify: ``the rows of in.csv`` (``standard input``)."""
    return f"the rows of {'standard input' if args.input == STDIO else Path(args.input).name}"
