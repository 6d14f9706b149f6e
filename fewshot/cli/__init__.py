"""The ``fewshot`` command: :func:`main` runs the subcommand parsed (classify, evaluate, check, fit, info, train).

Bad input prints one line on stderr and exits with status 2; no tracebacks for user errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import FewShotError
from .classify import cmd_classify
from .columns import _check_column_options
from .commands import cmd_check, cmd_fit, cmd_info, cmd_train
from .evaluate import cmd_evaluate
from .notes import _warnings_as_notes
from .options import STDIO, _check_options, build_parser


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
            from ..encoders.determinism import strict_blas

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
