"""What every benchmark script shares: the argument preamble, data loading, sampling, timing, writing results.

Scripts run as ``python bench/NAME.py`` from the repository root; each puts ``bench/`` on ``sys.path`` and
imports this module. Data: ``--data`` (default ``../shared/data`` next to the repository) holding
``clinc150/`` and ``hwu64/`` CSVs (``text,label``); a script skips cleanly (exit 0) when it is missing.
Results: ``--out`` (default ``bench/results/<name>.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DATASETS = ("hwu64", "clinc150")


# CLINC150's 10 domains (Larson et al. 2019), as published in clinc/oos-eval data/domains.json.
CLINC150_DOMAINS: dict[str, tuple[str, ...]] = {
    "banking": ("freeze_account", "routing", "pin_change", "bill_due", "pay_bill", "account_blocked",
                "interest_rate", "min_payment", "bill_balance", "transfer", "order_checks", "balance",
                "spending_history", "transactions", "report_fraud"),
    "credit_cards": ("replacement_card_duration", "expiration_date", "damaged_card", "improve_credit_score",
                     "report_lost_card", "card_declined", "credit_limit_change", "apr", "redeem_rewards",
                     "credit_limit", "rewards_balance", "application_status", "credit_score", "new_card",
                     "international_fees"),
    "kitchen_and_dining": ("food_last", "confirm_reservation", "how_busy", "ingredients_list", "calories",
                           "nutrition_info", "recipe", "restaurant_reviews", "restaurant_reservation",
                           "meal_suggestion", "restaurant_suggestion", "cancel_reservation",
                           "ingredient_substitution", "cook_time", "accept_reservations"),
    "home": ("what_song", "play_music", "todo_list_update", "reminder", "reminder_update", "calendar_update",
             "order_status", "update_playlist", "shopping_list", "calendar", "next_song", "order", "todo_list",
             "shopping_list_update", "smart_home"),
    "auto_and_commute": ("current_location", "oil_change_when", "oil_change_how", "uber", "traffic",
                         "tire_pressure", "schedule_maintenance", "gas", "mpg", "distance", "directions",
                         "last_maintenance", "gas_type", "tire_change", "jump_start"),
    "travel": ("plug_type", "travel_notification", "translate", "flight_status", "international_visa", "timezone",
               "exchange_rate", "travel_suggestion", "travel_alert", "vaccines", "lost_luggage", "book_flight",
               "book_hotel", "carry_on", "car_rental"),
    "utility": ("weather", "alarm", "date", "find_phone", "share_location", "timer", "make_call", "calculator",
                "definition", "measurement_conversion", "flip_coin", "spelling", "time", "roll_dice", "text"),
    "work": ("pto_request_status", "next_holiday", "insurance_change", "insurance", "meeting_schedule", "payday",
             "taxes", "income", "rollover_401k", "pto_balance", "pto_request", "w2", "schedule_meeting",
             "direct_deposit", "pto_used"),
    "small_talk": ("who_made_you", "meaning_of_life", "who_do_you_work_for", "do_you_have_pets",
                   "what_are_your_hobbies", "fun_fact", "what_is_your_name", "where_are_you_from", "goodbye",
                   "thank_you", "greeting", "tell_joke", "are_you_a_bot", "how_old_are_you", "what_can_i_ask_you"),
    "meta": ("change_speed", "user_name", "whisper_mode", "yes", "change_volume", "no", "change_language", "repeat",
             "change_accent", "cancel", "sync_device", "change_user_name", "change_ai_name", "reset_settings",
             "maybe"),
}


def weights_tag(model: str) -> str:
    """``model``, plus the digest of its trained weights when it names a trained folder: a key for vectors
    cached across runs that changes when the weights behind a name (``default``) change."""
    from fewshot.encoders.encoder import trained_digest
    from fewshot.encoders.registry import BASE_MODEL, MPNET_MODEL, resolve_model

    frozen = model in (BASE_MODEL, MPNET_MODEL)  # never a trained folder (and mpnet's parts need no assembling)
    digest = None if frozen else trained_digest(resolve_model(model))
    return f"{model}@{digest}" if digest else model


def parser(description: str, *, out: str | None, data: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the shared preamble: ``--data`` (when the script reads datasets) and ``--out``
    (default ``bench/results/<out>``; ``out=None``: the script chooses its default itself)."""
    p = argparse.ArgumentParser(description=description)
    if data:
        p.add_argument("--data", "--data-dir", dest="data", type=Path, default=DEFAULT_DATA,
                       help="folder with clinc150/ and hwu64/ (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=None if out is None else RESULTS / out,
                   help="JSON to write" + ("" if out is None else f" (default: bench/results/{out})"))
    return p


def has_data(data: Path, datasets: tuple[str, ...] = DATASETS, split: str = "test") -> bool:
    """Whether ``data`` holds ``<dataset>/<split>.csv`` for every dataset; prints why not (the script then
    exits 0)."""
    missing = [ds for ds in datasets if not (Path(data) / ds / f"{split}.csv").is_file()]
    if missing:
        print(f"skipping: {data} does not hold {'/ and '.join(missing)}/ (pass --data)")
    return not missing


def read_split(data: Path, dataset: str, split: str) -> Any:
    """One CSV of a dataset as a DataFrame of strings (no NA conversion: a text "null" stays a text)."""
    import pandas as pd

    return pd.read_csv(Path(data) / dataset / f"{split}.csv", dtype=str, keep_default_na=False)


def comparison_split(data: Path, dataset: str, shots: int, n_labels: int, seed: int) -> tuple[Any, Any, list[str]]:
    """The standard ``shots``-shot support and the test rows, of ``n_labels`` labels drawn with ``seed`` (0: all):
    ``(support, test, labels)``, one draw for every method the comparisons with SetFit and FastFit score."""
    support = read_split(data, dataset, f"train_{shots}")
    test = read_split(data, dataset, "test")
    labels = sorted(support.label.unique())
    if n_labels:
        labels = sorted(np.random.default_rng(seed).choice(labels, size=n_labels, replace=False))
    return support[support.label.isin(labels)], test[test.label.isin(labels)], labels


def draw_support(train: Any, shots: int, seed: int) -> Any:
    """``shots`` random rows of every label of ``train`` (a DataFrame with a ``label`` column), seeded."""
    return train.groupby("label", group_keys=False).sample(n=shots, random_state=seed)


def mean_ci(values: list[float]) -> dict[str, float]:
    """Mean, half-width of the normal 95% interval (1.96 standard errors) and count."""
    a = np.asarray(values, dtype=np.float64)
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "ci95": float(half), "n": int(len(a))}


def reproducible() -> None:
    """Bitwise-reproducible products (MKL's strict CNR mode, what the ``fewshot`` command applies): a text's
    vector does not depend on what else is in its batch, so numbers repeat exactly across runs and
    versions. Call it before any model runs."""
    from fewshot.encoders.determinism import strict_blas

    strict_blas()


def set_threads(n: int) -> None:
    """Use ``n`` torch threads (benchmarks on shared machines run with 1)."""
    import torch

    torch.set_num_threads(n)


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """``with timer() as t: ...`` then ``t["seconds"]``: wall-clock seconds of the block."""
    box = {"seconds": float("nan")}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start


def environment() -> dict[str, str]:
    """The Python version and machine a result was measured on."""
    return {"python": platform.python_version(), "machine": platform.machine()}


def write_json(out: Path, result: Any) -> Path:
    """Write ``result`` as indented JSON (folders created) and say where on stderr."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return out


class _Precomputed:
    """Stands in for an encoder inside :func:`fewshot.meta.data.embed_texts`: same name, layers and width,
    vectors looked up, so the cache files it writes carry the library's own keys."""

    def __init__(self, encoder: Any, vectors: dict[str, np.ndarray]) -> None:
        self.name, self.extra_layers, self.dim = encoder.name, encoder.extra_layers, encoder.dim
        self.weights_digest = getattr(encoder, "weights_digest", None)
        self.vectors = vectors

    def encode(self, texts: list[str], *, progress: Any = None) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


def embed_once(lists: dict[str, list[str]], encoders: list[Any], *, cache_dir: Path, chunk: int = 512,
               desc: str = "encoding") -> None:
    """Fill the embedding cache (:func:`fewshot.meta.data.embed_texts`) for every text list of ``lists`` and
    every encoder of ``encoders`` with ONE forward pass per text: the encoders share one fp32 transformer and
    differ only in ``extra_layers`` or a head on top, so each batch's output gives all their vectors (bitwise what each
    encoder's own ``encode`` gives: one token count per batch, no padding). For mpnet, 5-8x MiniLM's cost per
    text, this halves the encoding of a benchmark that needs the sentence embedding and the layered one.
    Lists are covered in the given order and written to the cache as soon as they are complete."""
    import torch

    from fewshot.encoders.int8 import model_inputs
    from fewshot.meta.data import embed_texts

    first = encoders[0]
    if any(e._model is not first._model or e.int8 for e in encoders):
        raise ValueError("embed_once needs fp32 encoders sharing one transformer (heads and layers may differ)")

    def cached(texts: list[str], enc: Any) -> np.ndarray | None:
        try:  # a stand-in with no vectors: a cache miss raises
            return embed_texts(texts, _Precomputed(enc, {}), cache_dir=cache_dir)
        except KeyError:
            return None

    found: list[dict[str, np.ndarray]] = [{} for _ in encoders]  # text -> vector, per encoder
    todo = {}
    for name, texts in lists.items():
        hits = [cached(texts, e) for e in encoders]
        if any(h is None for h in hits):
            todo[name] = texts
        else:  # texts shared with lists still to do are not encoded again
            for box, vectors in zip(found, hits):
                box.update(zip(texts, vectors))
    order = [t for t in dict.fromkeys(t for texts in todo.values() for t in texts) if t not in found[0]]
    def flush() -> None:
        for name in [n for n, texts in todo.items() if all(t in found[0] for t in texts)]:
            for enc, box in zip(encoders, found):
                embed_texts(todo[name], _Precomputed(enc, box), cache_dir=cache_dir)
            del todo[name]
            print(f"{desc}: cached {name}", file=sys.stderr, flush=True)

    total, done = len(order), 0
    if todo:
        print(f"{desc}: {total} texts to encode for {len(todo)} lists", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with torch.inference_mode():
        for at in range(0, total, chunk):
            part = order[at:at + chunk]
            for idx in first._batches(part):
                out = first._model(model_inputs(first._model, [part[i] for i in idx]))
                for enc, box in zip(encoders, found):
                    box.update(zip((part[i] for i in idx), enc._vectors(out).numpy()))
            done += len(part)
            flush()
            rate = done / (time.perf_counter() - start)
            print(f"{desc}: {done}/{total} texts, {rate:.1f} texts/s", file=sys.stderr, flush=True)
    flush()  # lists made only of texts that were already cached
