"""The ``fewshot`` parser: every subcommand's options and their value types, and the classifier options they set."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import ADAPT_METHODS, RULES


ENGINES = ("local", "ray")
MODEL_HELP = "encoder: 'default', 'minilm', 'mpnet', a folder or a hub id (env FEWSHOT_MODEL)"


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
    from .. import __version__

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

    from ..meta.train_command import add_train_arguments  # argparse only; training code loads in run_train

    add_train_arguments(sub.add_parser(
        "train", help="meta-train a head (--encoder: the encoder's top layers) on labelled CSVs; write a model folder"))
    return parser


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The classifier options the command line sets (only those given)."""
    opts: dict[str, Any] = {}
    if args.rule:
        opts["rule"] = args.rule
    if args.threshold is not None:
        from ..config import unknown_options

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


STDIO = "-"
"""``--input -`` reads standard input, ``--output -`` writes standard output (progress and notes go to stderr)."""


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
