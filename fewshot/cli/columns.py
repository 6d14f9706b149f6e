"""Which columns of the files a command reads hold the texts and the labels: the column options, else a likely
name."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import FewShotError
from .notes import _note


def _columns(args: argparse.Namespace, path: str, support: bool = False) -> tuple[str, str]:
    """The text and label columns of the CSV ``path`` (``support``: the ``--support`` file), as
    :func:`_column_choices` names them, else the file's likely ones (:func:`fewshot.io.tables.find_column`); a note
    says which when the name is another word."""
    from ..io.tables import LABEL_COLUMNS, TEXT_COLUMNS, check_header

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
    from ..io.tables import TEXT_COLUMNS, check_header

    return _find_column(path, check_header(path, [], args.encoding), args.text_column, TEXT_COLUMNS, "text", shown)


def _find_column(path: str, columns: list[str], chosen: str | None, preferred: tuple[str, ...], what: str,
                 shown: str | None = None, flag: str | None = None) -> str:
    """The column of ``path`` (header ``columns``) holding its ``what`` ("text" or "label"): ``chosen``, else one
    of ``preferred``, with a note when that is another word; ``flag``: the option that chooses it (default
    ``--text-column`` / ``--label-column``)."""
    from ..io.tables import find_column

    flag = flag or f"--{what}-column"
    name = find_column(path, columns, chosen, preferred, f"Choose one with {flag}")
    if chosen is None and name.strip().lower() != what:
        _note(f"reading the {what}s of {shown or Path(path).name} from its column {name!r} ({flag} chooses "
              "another)")
    return name
