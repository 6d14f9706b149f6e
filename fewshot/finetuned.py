"""A classifier with its encoder fine-tuned on its own examples: the adapted encoder, the classifier's
fine-tune / undo steps, and the adapted weights in a saved folder.

:meth:`FewShotClassifier.finetune` calls :func:`finetune_classifier`: :func:`fewshot.adapt.finetune` trains
the top layers of the classifier's (shared, read-only) model on its examples; when it keeps weights, the
classifier gets a private :class:`AdaptedEncoder` (a copy of the model sharing every untrained tensor with the
original), its examples are re-encoded with it and its head refitted. Nothing changes when the adaptation is
cancelled or finds no gain. Imported only when fine-tuning is asked for or a fine-tuned folder is loaded.

Saved folder: ``finetune.safetensors`` holds the trained tensors only (float16 when the values are float16
values, as :class:`~fewshot.adapt.FinetuneConfig` ``half_weights`` makes them; else float32), named as in the
Hugging Face transformer (``encoder.layer.4.attention.self.query.weight``), so they fit whatever prefix the
installed sentence-transformers version gives that module; ``config.json`` gets a ``finetune`` section (the
report, the settings, the file's SHA-256). safetensors holds tensors only (no pickle): safe to upload.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .adapt import FinetuneConfig, FinetuneReport, OverlapHint, apply_weights, finetune, overlap_hint
from .adapt.finetune import Cancel, _stop_fn
from .adapt.layers import transformer_prefix
from .encoders.encoder import Encoder
from .errors import FewShotError, FewShotWarning
from .persist import same_weights
from .support import SupportIndex, SupportSet
from .progress import ProgressFn
from .text import label_text

if TYPE_CHECKING:
    from .classifier import FewShotClassifier
    from .persist import SavedFolder

FINETUNE_FILE = "finetune.safetensors"
"""The adapted tensors of a fine-tuned classifier's saved folder."""
FOLDS_FILE = "finetune_folds.safetensors"
"""The fine-tuning estimate's fold vectors (float16) and fold ids, for the automatic threshold after loading."""

@dataclass
class FoldVectors:
    """The estimate's folds at the kept step: which examples each fold model trained without, and its vectors of
    all the examples it was fine-tuned on (the support texts, then the label names when ``names``). They give the
    automatic threshold held-out scores from encoders that never saw the held-out examples."""

    texts: list[str]
    labels: list[str]
    names: bool  # the label names were appended (one row per class, in ``classes_`` order)
    fold_ids: np.ndarray  # per row, its held-out fold (-1: always trains)
    vectors: list[np.ndarray]  # per fold (ascending fold numbers), that fold model's vectors of every row (float16)

    @staticmethod
    def examples_digest(texts: list[str], labels: list[str]) -> str:
        """SHA-256 of the examples the folds belong to (a saved folder's folds apply only to the same examples)."""
        return hashlib.sha256(json.dumps([list(texts), list(labels)]).encode()).hexdigest()

    def file(self) -> bytes:
        """The safetensors bytes of :data:`FOLDS_FILE` (fold ids and each fold's float16 vectors)."""
        from safetensors.numpy import save

        tensors = {"fold_ids": np.ascontiguousarray(self.fold_ids, dtype=np.int64)}
        tensors |= {f"vectors.{i}": np.ascontiguousarray(v, dtype=np.float16) for i, v in enumerate(self.vectors)}
        return save(tensors, metadata={"format": "fewshot-finetune-folds"})


@dataclass
class Finetuned:
    """What a fine-tuned classifier holds beside its adapted encoder: the instant encoder to go back to, the
    trained tensors (the model's ``state_dict`` names) and how they were made."""

    base: Encoder
    state_dict: dict[str, torch.Tensor]
    report: FinetuneReport
    config: FinetuneConfig
    file_bytes: bytes  # the saved file's content (``FINETUNE_FILE``)
    folds: FoldVectors | None = None  # the estimate's fold vectors (None: folds=0, or a folder saved without them)

    @property
    def digest(self) -> str:
        """SHA-256 of the saved weights: names the adapted encoder in ``describe()`` and ``config.json``."""
        return hashlib.sha256(self.file_bytes).hexdigest()


class AdaptedEncoder(Encoder):
    """An :class:`Encoder` on a private copy of another encoder's model with adapted layers loaded.

    Same name, head, ``extra_layers``, ``int8`` and batching as the encoder it comes from; its own text cache.
    The copy shares every tensor that was not trained with the original (read-only at inference), so it costs
    the trained layers' memory (plus, with ``int8``, their int8 copy). The original is never modified.
    """

    @classmethod
    def over(cls, base: Encoder, state_dict: dict[str, torch.Tensor], digest: str) -> AdaptedEncoder:
        """``base`` with ``state_dict`` (the model's names) loaded into a private copy of its model."""
        out = cls.__new__(cls)
        # the base's settings; not its lazily made tokenizer copy (ours comes from our model) nor its cache
        out.__dict__.update({k: v for k, v in vars(base).items() if k != "_counting_tokenizer"})
        out._model = apply_weights(base._model, state_dict)
        out._model.eval()
        if base.int8:
            from .encoders.int8 import Int8Encoder

            out._int8 = Int8Encoder(out._model)
        out._cache = OrderedDict()
        out._lock = threading.Lock()
        out._count_lock = threading.Lock()
        out.finetune_digest = digest
        return out

    def describe(self) -> dict[str, Any]:
        """The base encoder's description plus ``finetune``: the SHA-256 of the adapted weights."""
        return super().describe() | {"finetune": self.finetune_digest}


def weights_file(model: Any, state_dict: dict[str, torch.Tensor]) -> bytes:
    """The safetensors bytes of ``state_dict`` (``model``'s names) under the transformer's own names; float16
    when every value is a float16 value (nothing lost), else float32."""
    from safetensors.torch import save

    prefix = transformer_prefix(model)
    tensors = {k[len(prefix):] if k.startswith(prefix) else k: v.detach().float().contiguous()
               for k, v in sorted(state_dict.items())}
    if all(torch.equal(v.half().float(), v) for v in tensors.values()):
        tensors = {k: v.half() for k, v in tensors.items()}
    return save(tensors, metadata={"format": "fewshot-finetune"})


def read_weights(model: Any, data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a :data:`FINETUNE_FILE` under ``model``'s ``state_dict`` names (float32); FewShotError
    when the file is not safetensors or does not fit the model."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise FewShotError(f"{FINETUNE_FILE} is damaged ({type(exc).__name__}: {exc})") from None
    prefix = transformer_prefix(model)
    state = model.state_dict()
    out = {prefix + k: v.float() for k, v in tensors.items()}
    bad = [k for k, v in out.items() if k not in state or tuple(state[k].shape) != tuple(v.shape)]
    if bad or not out:
        raise FewShotError(f"{FINETUNE_FILE} does not fit this encoder (e.g. {bad[0][len(prefix):]!r})" if bad
                           else f"{FINETUNE_FILE} holds no weights")
    return out


def reencoded(support: SupportSet, encoder: Encoder) -> SupportSet:
    """The same examples (texts, labels, ids) with their vectors from ``encoder``."""
    vectors = encoder.encode(support.texts)
    index = SupportIndex(encoder.dim)
    index.add(np.asarray(support.ids, dtype=np.int64), vectors)
    out = SupportSet.restore(list(support.texts), list(support.labels), list(support.ids), index)
    out.next_id = max(out.next_id, support.next_id)
    return out


def _install(clf: FewShotClassifier, encoder: Encoder, support: SupportSet, state: Finetuned | None) -> None:
    clf.encoder, clf.support, clf._finetune = encoder, support, state
    clf._refit()  # rule, label-name vectors (from the new encoder) and thresholds


def classifier_rule(clf: FewShotClassifier) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The estimate's rule for ``clf``: its own head (configured rule, or the model folder's meta-learned inner
    loop) fitted on the training folds' vectors, on one torch thread. With it, the estimate before training is
    the instant classifier's own cross-validated accuracy, and after it the same rule on the adapted vectors,
    so keeping the adaptation compares like with like (the prototype rule alone misjudged both)."""
    from .rules import fit_rule_head, one_torch_thread

    def rule(train: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
        n_classes = int(y.max()) + 1
        with one_torch_thread():
            if clf.config.adapt != "none":
                from .meta.adapted import fit_adapted_head

                head = fit_adapted_head(train, y, n_classes, clf._load_meta_model())
            else:
                head = fit_rule_head(train, y, n_classes, clf.config)
        return head.predict_proba(test).argmax(axis=1)

    if clf.config.rule == "matching":  # no head: the nearest example decides
        def nearest(train: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
            return y[(test @ train.T).argmax(axis=1)]

        return nearest
    return rule


def finetune_classifier(clf: FewShotClassifier, config: FinetuneConfig | None = None, *,
                        progress: ProgressFn | None = None, cancel: Cancel | None = None) -> FinetuneReport:
    """Adapt ``clf``'s encoder to its examples (see :meth:`FewShotClassifier.finetune`)."""
    config = config or FinetuneConfig()
    if not isinstance(config, FinetuneConfig):
        raise FewShotError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    if getattr(clf, "_multilabel", None) is not None:
        raise FewShotError("fine-tuning supports single-label classifiers; this one has multi_label=True (its "
                           "examples carry label sets, which the contrastive loss does not read)")
    clf._check_ready()
    stop = _stop_fn(cancel)  # a cancel that is neither an Event nor callable is an error here, before any work
    previous = clf._finetune
    base = previous.base if previous is not None else clf.encoder  # always from the instant encoder
    texts, labels = list(clf.support.texts), list(clf.support.labels)
    if clf.config.label_names:  # the label names are examples of their labels for the head: for training too
        texts += [label_text(c) for c in clf.classes_]
        labels += [str(c) for c in clf.classes_]
    train_only = [False] * len(clf.support.texts) + [True] * (len(texts) - len(clf.support.texts))  # names
    result = finetune(base._model, texts, labels, config, head=base._head, extra_layers=base.extra_layers,
                      progress=progress, cancel=cancel, rule=classifier_rule(clf), train_only=train_only)
    report = result.report
    if not report.kept:
        if previous is not None:  # this run's instant encoder is not what the classifier keeps
            why = report.reason or "cancelled"  # a run that keeps nothing says why, unless it was cancelled
            report.message = f"{why}: the classifier keeps its earlier fine-tuning"
        return report
    data = weights_file(base._model, result.state_dict)
    folds = None
    if result.fold_ids is not None and result.fold_vectors:
        folds = FoldVectors(list(clf.support.texts), list(clf.support.labels), bool(clf.config.label_names),
                            result.fold_ids, [v.astype(np.float16) for v in result.fold_vectors])
    state = Finetuned(base, result.state_dict, report, result.config, data, folds)
    tic = time.perf_counter()
    encoder = AdaptedEncoder.over(base, result.state_dict, state.digest)
    support = reencoded(clf.support, encoder)
    _count_reencoding(report, time.perf_counter() - tic, config.time_budget)
    if stop():  # cancelled after training: still nothing changes
        report.cancelled, report.kept, report.steps = True, False, 0
        report.message = "cancelled: the classifier is unchanged"
        return report
    _install(clf, encoder, support, state)
    return report


def _count_reencoding(report: FinetuneReport, seconds: float, budget: float | None) -> None:
    """Add the re-encoding of the examples by the adapted encoder to ``report.seconds`` (what ``finetune`` took is
    the whole call) and say so when it pushed the run past ``budget``."""
    report.seconds += seconds
    if budget is not None and report.seconds > budget and not report.over_budget:
        report.over_budget = True
        report.message += (f"; took {report.seconds:.1f} s with re-encoding the examples by the adapted encoder "
                           f"({seconds:.1f} s), over the {budget:g} s time budget")


def undo_finetune(clf: FewShotClassifier) -> None:
    """Back to the instant encoder; the examples are re-encoded by it (from its cache when it still holds them)."""
    state = clf._finetune
    if state is None:
        return
    _install(clf, state.base, reencoded(clf.support, state.base), None)


def fold_cross_validated_scores(clf: FewShotClassifier) -> tuple[np.ndarray, np.ndarray] | None:
    """Held-out in-scope scores and right flags for the automatic threshold, from the fine-tuning estimate's folds:
    for fold f, the classifier's rule is fitted on fold f's model's vectors of the examples that model trained on
    and scores its vectors of the held-out examples, as :func:`fewshot.unknown.cross_validated_scores` does on
    the classifier's own vectors (where an adapted encoder has seen every held-out example, so the scores are too
    high). None when the examples changed since fine-tuning, or the folds are not held (then the classifier
    falls back to its own vectors)."""
    from . import unknown

    state = clf._finetune
    folds = state.folds if state is not None else None
    if (folds is None or folds.texts != list(clf.support.texts) or folds.labels != list(clf.support.labels)
            or folds.names != bool(clf.config.label_names)):
        return None
    n = len(folds.texts)
    n_classes = len(clf.classes_)
    label_idx = clf._label_idx
    real = label_idx < n_classes
    scores, right = [], []
    for f, vectors in zip(sorted(set(folds.fold_ids.tolist()) - {-1}), folds.vectors):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape[1] != clf.encoder.dim:
            return None
        support, names = vectors[:n], vectors[n:]
        test = (folds.fold_ids[:n] == f) & real  # "none of these" examples always train, as in the fallback
        train = ~test
        if not test.any() or len(np.unique(label_idx[train & real])) < 2:
            continue
        if clf.config.rule == "matching":
            fit = None
        else:
            fit = functools.partial(clf._fit_head, names=names if folds.names else None)
        found = unknown.fold_scores(support, label_idx, n_classes, fit, train, test)
        if found is not None:
            scores.append(found[0])
            right.append(found[1])
    if not scores:
        return None
    return np.concatenate(scores), np.concatenate(right)


def classifier_overlap_hint(clf: FewShotClassifier) -> OverlapHint:
    """:func:`fewshot.adapt.overlap_hint` on the classifier's own vectors ("none of these" examples left out)."""
    clf._check_ready()
    keep = [i for i, lab in enumerate(clf.support.labels) if lab != clf.config.unknown_label]
    return overlap_hint(clf.support.vectors[keep], [clf.support.labels[i] for i in keep])


def saved_section(state: Finetuned) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``config.json``'s ``finetune`` section and the files to write beside it."""
    section = {"file": FINETUNE_FILE, "sha256": state.digest, "report": asdict(state.report),
               "config": asdict(state.config)}
    files = {FINETUNE_FILE: state.file_bytes}
    if state.folds is not None:
        folds = state.folds
        section["folds"] = {"file": FOLDS_FILE, "names": folds.names,
                            "examples_sha256": folds.examples_digest(folds.texts, folds.labels)}
        files[FOLDS_FILE] = folds.file()
    return section, files


def _restore_folds(folder: SavedFolder, section: dict[str, Any]) -> FoldVectors | None:
    """The saved fold vectors when the folder carries them for its own examples (else None: the automatic
    threshold falls back to the classifier's vectors)."""
    record = section.get("folds")
    texts, labels = [str(t) for t in folder.texts], [str(x) for x in folder.labels]
    if not isinstance(record, dict) or record.get("examples_sha256") != FoldVectors.examples_digest(texts, labels):
        return None
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load((folder.directory / FOLDS_FILE).read_bytes())
        fold_ids = tensors["fold_ids"].astype(np.int64)
        vectors = [tensors[f"vectors.{i}"].astype(np.float16) for i in range(len(set(fold_ids.tolist()) - {-1}))]
    except (OSError, KeyError, SafetensorError, ValueError) as exc:
        warnings.warn(f"{FOLDS_FILE} in {folder.name} cannot be read ({type(exc).__name__}: {exc}); the automatic "
                      "unknown threshold is computed from the adapted vectors", FewShotWarning, stacklevel=4)
        return None
    if any(v.ndim != 2 or len(v) != len(fold_ids) for v in vectors) or len(fold_ids) < len(texts):
        return None
    return FoldVectors(texts, labels, bool(record.get("names")), fold_ids, vectors)


def _dataclass_from(cls: type, values: Any) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (values if isinstance(values, dict) else {}).items() if k in known})


def restore(clf: FewShotClassifier, folder: SavedFolder) -> bool:
    """Give a just-loaded ``clf`` the adapted encoder its saved folder carries; True when the folder's vectors
    fit ``clf.encoder`` afterwards (False: the weights could not be applied, so the examples must be
    re-encoded; a :class:`FewShotWarning` says why)."""
    section = folder.meta.get("finetune")
    if not section:  # not fine-tuned; or its section was dropped while the saved vectors are the adapted ones
        encoder_record = folder.meta.get("encoder")
        return not (isinstance(encoder_record, dict) and encoder_record.get("finetune"))
    path = folder.directory / FINETUNE_FILE  # never a name from the file: an upload cannot point elsewhere
    base = clf.encoder
    record = folder.meta.get("encoder")
    if isinstance(record, dict) and record.get("model") and (
            record["model"] != base.name or not same_weights(record, base.describe())):
        # adapted layers of other weights would mix with this encoder's own: the instant encoder instead
        warnings.warn(f"{folder.name} was fine-tuned on other encoder weights ({record['model']!r}) than "
                      f"{base.name!r} has here; loaded with the instant encoder instead", FewShotWarning,
                      stacklevel=3)
        return False
    try:
        data = path.read_bytes()
        state_dict = read_weights(base._model, data)
    except (OSError, FewShotError) as exc:
        warnings.warn(f"{folder.name} was fine-tuned but its adapted weights cannot be used ({exc}); "
                      "loaded with the instant encoder instead", FewShotWarning, stacklevel=3)
        return False
    report = _dataclass_from(FinetuneReport, section.get("report"))
    report.curve = [tuple(p) for p in report.curve]
    state = Finetuned(base, state_dict, report, _dataclass_from(FinetuneConfig, section.get("config")), data,
                      _restore_folds(folder, section))
    clf.encoder = AdaptedEncoder.over(base, state_dict, state.digest)
    clf._finetune = state
    return section.get("sha256") in (None, state.digest)
