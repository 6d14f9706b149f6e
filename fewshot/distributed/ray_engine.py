"""Batch classification on a Ray cluster: ``fewshot classify --engine ray`` and :func:`classify_with_ray`.

Ray Data reads the input CSV(s), ``map_batches`` runs a pool of actors that each load the classifier once,
and the driver writes one CSV whose rows, columns and values are those of the local engine
(``fewshot classify`` without ``--engine``): the one labelled-output format of :mod:`fewshot.io.output`.
It calls the library only (the ``fewshot`` command calls it, never the other way round).

Design choices (see docs/ray.md):

* **Shipping the classifier.** The driver reads the saved classifier folder (``examples.csv``,
  ``config.json``, ``index.faiss``: kilobytes to a few MB) into bytes and puts them in the Ray object
  store once; every actor fetches that object, writes it to a private temp folder and calls
  :meth:`FewShotClassifier.load`. One code path works for a local cluster and a remote one (no shared
  filesystem is needed for the classifier). The encoder weights are not shipped: ``minilm`` /
  ``default`` come with the installed packages on each worker, like ``fewshot`` itself; a fine-tuned
  classifier's adapted layers are (``finetune.safetensors`` is in the folder, about 7 MB for MiniLM), so
  the actors encode with the adapted encoder.
* **All columns as strings.** Ray's CSV reader is pyarrow's; its type inference would turn ``007``
  into ``7`` and ``NA`` into null. The header is read first (with the local engine's reader, which
  also sniffs the delimiter and encoding) and every column is declared ``string``, with
  ``strings_can_be_null=False``, so the cells reach the output exactly as the local engine writes them.
* **Same bytes.** Each actor switches MKL to strict mode (:mod:`fewshot.encoders.determinism`) before it
  loads the classifier, as the ``fewshot`` command does, so a row's numbers do not depend on its batch
  or on the actor's threads.
* **One output file.** The dataset runs with ``preserve_order`` and the driver streams the labelled
  blocks, in input order, into ``OUT.part`` with the same ``DataFrame.to_csv`` call as the local
  engine, then renames it to ``OUT``. The driver holds one block at a time, and a single file has to be
  written by a single writer anyway; the heavy part (encoding) is what runs on the cluster.
"""

from __future__ import annotations

import contextlib
import glob as globmod
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FewShotError, install_hint

if TYPE_CHECKING:
    from collections import Counter

    import pandas as pd

    from ..classifier import FewShotClassifier

INSTALL_HINT = install_hint("ray")
GLOB_CHARS = "*?["
CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def import_ray() -> Any:
    """``ray`` with Ray Data, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise FewShotError(f"the Ray engine needs Ray Data, which is not installed: {INSTALL_HINT} "
                           f"(or pip install 'ray[data]'); missing: {exc.name or exc}") from None
    return ray


def resolve_inputs(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """The CSV files behind ``source``: a file, a folder (its ``*.csv``/``*.tsv``/``*.txt``), a glob, or a list.

    Files come sorted by name within a folder or glob; a list keeps its order. Output rows follow that order.
    """
    if isinstance(source, (list, tuple)):
        files = [f for item in source for f in resolve_inputs(item)]
    else:
        text = str(source)
        if "://" in text:
            raise FewShotError(f"{text}: only local or mounted paths are read (the same path on every node); "
                               "copy the files to a shared folder, or use the Ray Data API directly for URIs")
        path = Path(text).expanduser()
        if any(ch in text for ch in GLOB_CHARS) and not path.exists():
            files = sorted(Path(p) for p in globmod.glob(os.path.expanduser(text), recursive=True)
                           if Path(p).is_file())
            if not files:
                raise FewShotError(f"no file matches {text}")
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CSV_SUFFIXES
                           and not p.name.startswith("."))
            if not files:
                raise FewShotError(f"{path} holds no .csv, .tsv or .txt file")
        elif not path.exists():
            raise FewShotError(f"file not found: {path}")
        else:
            files = [path]
    if not files:
        raise FewShotError("no input file given")
    return files


def check_inputs(files: list[Path], text_column: str, encoding: str | None) -> tuple[list[str], Any]:
    """Same checks as the local engine, on every file; all files must share columns, delimiter, encoding."""
    from ..io.tables import check_header, sniff

    columns = check_header(files[0], [text_column], encoding)
    fmts = [sniff(f, encoding) for f in files]
    excel = [f for f, f_fmt in zip(files, fmts) if f_fmt.excel]
    if excel:
        raise FewShotError(f"{excel[0]} is an Excel workbook: the local engine reads those; save it as CSV for "
                           "--engine ray")
    fmt = fmts[0]
    for f, f_fmt in zip(files[1:], fmts[1:]):
        other = check_header(f, [text_column], encoding)
        if other != columns:
            raise FewShotError(f"{f} has the columns {other}, but {files[0]} has {columns}; "
                               "classify files with different columns separately")
        if f_fmt != fmt:
            raise FewShotError(f"{f} is written differently from {files[0]} (delimiter or encoding); "
                               "classify them separately")
    return columns, fmt


def _folder_bytes(directory: Path) -> dict[str, bytes]:
    """The files of a saved classifier folder, or of a zip of one, as name -> bytes (what the actors unpack)."""
    from ..persist import CONFIG_FILE, read_zip

    if directory.is_file() and zipfile.is_zipfile(directory):
        return read_zip(directory)
    if not (directory / CONFIG_FILE).is_file():
        raise FewShotError(f"{directory} is not a saved classifier: {CONFIG_FILE} is missing")
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _is_multi_label(folder: dict[str, bytes]) -> bool:
    """Whether the saved classifier in ``folder`` is multi-label (its output has a ``labels`` column)."""
    import json

    from ..persist import CONFIG_FILE

    return bool(json.loads(folder[CONFIG_FILE]).get("config", {}).get("multi_label", False))


def _check_overrides(directory: Path, folder: dict[str, bytes], overrides: dict[str, Any]) -> None:
    """Fail on the driver, not in every actor, for a damaged config or bad options (no model is loaded)."""
    import json

    from ..config import ClassifierConfig, migrate_options, option_names
    from ..persist import CONFIG_FILE

    try:
        saved = migrate_options(dict(json.loads(folder[CONFIG_FILE])["config"]), warn=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise FewShotError(f"{directory} is a damaged saved classifier ({type(exc).__name__}: {exc}); "
                           "save it again or rebuild it from its examples CSV") from None
    known = option_names()
    ClassifierConfig.from_options({k: v for k, v in saved.items() if k in known} | overrides)


OVER_LENGTH_COLUMN = "__fewshot_over_length"
"""A column the actors add and the driver drops before writing: for each text longer than the encoder reads,
the encoder's limit in word pieces; 0 otherwise."""


class _Predictor:
    """Ray Data actor: loads the classifier once, then labels batches exactly as the local engine does."""

    def __init__(self, folder: list[Any], text_column: str, overrides: dict[str, Any]) -> None:
        from ..encoders.determinism import strict_blas

        strict_blas()  # first, before any float product in this process (see the module docstring)
        import ray

        from ..classifier import FewShotClassifier

        files: dict[str, bytes] = ray.get(folder[0])  # wrapped in a list so Ray hands us the ref itself
        self._dir = tempfile.mkdtemp(prefix="fewshot-clf-")
        for name, data in files.items():
            Path(self._dir, name).write_bytes(data)
        self.clf = FewShotClassifier.load(self._dir, **overrides)
        self.text_column = text_column

    def __call__(self, batch: Any) -> Any:
        from ..io.output import label_frame, over_length_rows

        out = label_frame(self.clf, batch, self.text_column)
        limit = self.clf.encoder.max_tokens or 0
        out[OVER_LENGTH_COLUMN] = over_length_rows(self.clf, batch[self.text_column]) * limit
        return out

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


def _default_workers(ray: Any, cpus_per_worker: float) -> int:
    cpus = float(ray.cluster_resources().get("CPU", 1))
    return max(1, int(cpus // cpus_per_worker))


def _unwrap(exc: BaseException) -> BaseException:
    """The user-facing error inside a Ray task failure (a FewShotError raised by an actor, a CSV parse error)."""
    seen = exc
    for _ in range(5):
        cause = getattr(seen, "cause", None) or seen.__cause__
        if cause is None:
            break
        seen = cause
        if isinstance(seen, FewShotError):
            return seen
    return exc


def classify_with_ray(input: str | Path | Sequence[str | Path], output: str | Path, *,  # noqa: A002
                      classifier: FewShotClassifier | str | Path, address: str | None = None,
                      num_workers: int | None = None, cpus_per_worker: float = 1.0, batch_size: int = 2048,
                      text_column: str = "text", encoding: str | None = None,
                      overrides: dict[str, Any] | None = None, runtime_env: dict[str, Any] | None = None,
                      progress: Callable[[int], None] | None = None,
                      over_length: Callable[[int, int], None] | None = None,
                      answered: Callable[[Counter[str]], None] | None = None) -> int:
    """Label every row of ``input`` (a CSV, a folder of CSVs, a glob or a list) on Ray; write one CSV ``output``.

    ``classifier``: a fitted :class:`FewShotClassifier` or a folder written by its ``save``; ``overrides``
    (``rule``, ``min_confidence``, ``auto_unknown``, ``model``...) are applied when the actors load it, as
    ``FewShotClassifier.load(folder, **overrides)``. ``address``: ``None`` uses the Ray instance already
    initialised in this process or starts a local one; ``"auto"`` or ``"ray://host:10001"`` joins a cluster.
    ``num_workers``: actors in the pool (default: the cluster's CPUs / ``cpus_per_worker``).
    ``batch_size``: rows per ``map_batches`` call. ``progress(rows)`` is called after each block written;
    ``over_length(texts, limit)`` after each block that holds texts longer than the encoder reads (``limit`` word
    pieces: only their start counts; single-label classifiers, as ``fewshot classify`` says); ``answered(counts)``
    after each block with how often each answer occurs in it (:func:`fewshot.io.output.answer_counts`).
    Returns the number of rows written. Output is identical to ``fewshot classify`` without ``--engine``.
    """
    ray = import_ray()
    from ..classifier import FewShotClassifier
    from ..io.output import answer_counts, check_output_file, output_names

    if batch_size < 1:
        raise FewShotError(f"batch size must be >= 1, got {batch_size}")
    if num_workers is not None and num_workers < 1:
        raise FewShotError(f"the number of Ray workers must be >= 1, got {num_workers}")
    files = resolve_inputs(input)
    columns, fmt = check_inputs(files, text_column, encoding)
    out_path = Path(output)
    if any(f.resolve() == out_path.resolve() for f in files):
        raise FewShotError(f"the output file {out_path} is one of the input files; choose another name so the input "
                           "is kept")
    check_output_file(out_path)
    staging: str | None = None
    try:
        if isinstance(classifier, FewShotClassifier):
            staging = tempfile.mkdtemp(prefix="fewshot-ray-")
            classifier.save(Path(staging) / "classifier")
            folder = _folder_bytes(Path(staging) / "classifier")
        else:
            folder = _folder_bytes(Path(classifier).expanduser())
            _check_overrides(Path(classifier), folder, overrides or {})
        multi = _is_multi_label(folder)
        added = list(output_names(columns, multi_label=multi))
        count_answers = None if answered is None else (lambda cells: answered(answer_counts(cells, multi)))
        started_here = False
        if not ray.is_initialized():
            ray.init(address=address, runtime_env=runtime_env, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING)
            started_here = True
        try:
            with _run_settings(ray):
                return _run(ray, files, columns, fmt, out_path, folder, text_column, added,
                            overrides or {}, num_workers or _default_workers(ray, cpus_per_worker), cpus_per_worker,
                            batch_size, progress, over_length, count_answers)
        finally:
            if started_here:
                ray.shutdown()
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _run_settings(ray: Any) -> Iterator[None]:
    """Ray Data's settings for one run: output rows in input order, no Ray progress bars (the CLI shows its own)
    and no per-dataset INFO lines on stderr; the caller's settings are put back after it (a Ray session the caller
    started keeps its own)."""
    logger = logging.getLogger("ray.data")
    ctx = ray.data.DataContext.get_current()
    saved = logger.level, ctx.execution_options.preserve_order, ctx.enable_progress_bars
    logger.setLevel(logging.WARNING)
    ctx.execution_options.preserve_order, ctx.enable_progress_bars = True, False
    try:
        yield
    finally:
        logger.setLevel(saved[0])
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved[1], saved[2]


def _run(ray: Any, files: list[Path], columns: list[str], fmt: Any, out_path: Path, folder: dict[str, bytes],
         text_column: str, added: list[str], overrides: dict[str, Any], workers: int,
         cpus_per_worker: float, batch_size: int, progress: Callable[[int], None] | None,
         over_length: Callable[[int, int], None] | None, answered: Callable[[pd.Series], None] | None) -> int:
    """Read, classify and write the rows (see :func:`classify_with_ray`); the number of rows written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from ..io.output import csv_options

    ds = ray.data.read_csv(
        [str(f.resolve()) for f in files], partitioning=None, file_extensions=None,
        num_cpus=0,  # parsing is light; a CPU held by a read task next to a full actor pool would deadlock
        read_options=pacsv.ReadOptions(encoding=fmt.encoding, column_names=columns, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=fmt.read_sep, newlines_in_values=True,
                                         ignore_empty_lines=not fmt.one_column),  # as the local engine reads it
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))
    ds = ds.map_batches(_Predictor, batch_size=batch_size, batch_format="pandas",
                        compute=ray.data.ActorPoolStrategy(size=workers),
                        num_cpus=cpus_per_worker,
                        fn_constructor_kwargs={"folder": [ray.put(folder)], "text_column": text_column,
                                               "overrides": overrides})
    tmp_path = out_path.with_name(out_path.name + ".part")
    written_as = csv_options(fmt)  # as the local engine writes it: the input's delimiter, a BOM after a spreadsheet
    written = 0
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pandas", prefetch_batches=1):
            if not len(batch):
                continue
            if over_length and OVER_LENGTH_COLUMN in batch and (batch[OVER_LENGTH_COLUMN] > 0).any():
                over_length(int((batch[OVER_LENGTH_COLUMN] > 0).sum()), int(batch[OVER_LENGTH_COLUMN].max()))
            batch = batch[[*columns, *added]]
            if answered:
                answered(batch[added[0]])
            batch.to_csv(tmp_path, mode="w" if written == 0 else "a", header=written == 0, index=False,
                         **written_as)
            written += len(batch)
            if progress:
                progress(len(batch))
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        inner = _unwrap(exc)
        if isinstance(inner, FewShotError):
            raise FewShotError(str(inner)) from None
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        text = str(exc)
        if "CSV" in text or "ArrowInvalid" in text or "Expected" in text:
            last = [ln for ln in text.splitlines() if ln.strip()][-1]
            raise FewShotError(f"Ray could not read the input: {last}") from None
        raise
    if written == 0:
        raise FewShotError(f"{files[0]} has a header but no rows")
    tmp_path.replace(out_path)
    return written
