"""Bounded load test of the web app on loopback: many gradio_client sessions, each with its own labels.

Every session sets a label set whose label names are unique to it (``s07-weather``...), then classifies a
sentence and a CSV *at the same time*. Checks: no request fails, every answer uses only the session's own
labels (and the right one of them), and reports client-side latency (p50 / p99) per endpoint.
Bounded: a fixed number of requests per session and one overall deadline.

    python bench/load.py                      # launches `python app.py` on a free port, 20 sessions
    python bench/load.py --url http://127.0.0.1:7860/ --sessions 40
Writes ``--out`` (default bench/results/load.json; ``tests/test_load.py`` runs the same check against the
test app).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py, also when loaded by file path
from common import ROOT, parser, write_json  # noqa: E402

TOPICS: dict[str, list[str]] = {
    "weather": ["it will rain all day tomorrow", "sunny and warm this afternoon",
                "a storm with strong wind is coming", "snow is expected tonight"],
    "cooking": ["boil the pasta for ten minutes", "add salt and pepper to the soup",
                "bake the cake at 180 degrees", "chop the onions finely"],
    "football": ["the striker scored a late goal", "the goalkeeper saved a penalty",
                 "the match ended in a draw", "the coach picked a new captain"],
    "banking": ["transfer money to my savings account", "my card payment was declined",
                "what is the interest rate on my loan", "open a new checking account"],
}
QUERIES: dict[str, list[str]] = {
    "weather": ["will it be cloudy and rainy on Saturday", "heavy rain and thunder expected"],
    "cooking": ["how long should I fry the garlic", "stir the sauce and let it simmer"],
    "football": ["the referee showed a red card to the defender", "they won the cup final 2-1"],
    "banking": ["I want to withdraw cash from my account", "my bank transfer has not arrived"],
}


def session_topics(i: int) -> list[str]:
    """Three of the four topics, rotated so sessions differ in their topics too."""
    names = list(TOPICS)
    return [names[(i + k) % len(names)] for k in range(3)]


def label_of(i: int, topic: str) -> str:
    return f"s{i:02d}-{topic}"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _one_session(url: str, i: int, workdir: Path, deadline: float, record: Any) -> None:
    from gradio_client import Client, handle_file

    topics = session_topics(i)
    own = {label_of(i, t) for t in topics}
    rows = [[label_of(i, t), text] for t in topics for text in TOPICS[t]]
    csv_path = workdir / f"session{i:02d}.csv"
    batch = [(t, q) for t in topics for q in QUERIES[t]]
    pd.DataFrame({"text": [q for _, q in batch]}).to_csv(csv_path, index=False)

    def timed(endpoint: str, job: Any, start: float) -> Any:
        result = job.result(timeout=max(1.0, deadline - time.monotonic()))
        record(endpoint, job.done_at - start)
        return result

    def submit(c: Client, endpoint: str, *args: Any) -> tuple[Any, float]:
        start = time.monotonic()
        job = c.submit(*args, api_name=endpoint)
        job.add_done_callback(lambda j: setattr(j, "done_at", time.monotonic()))
        return job, start

    c = Client(url, verbose=False, download_files=True)
    try:
        job, t0 = submit(c, "/set_table", {"headers": ["label", "text"], "data": rows})
        timed("/set_table", job, t0)
        topic, query = topics[i % 3], QUERIES[topics[i % 3]][0]
        jobs = {"/classify": submit(c, "/classify", query, False, 0.0),
                "/classify_csv": submit(c, "/classify_csv", handle_file(str(csv_path)), "text", False, 0.0)}
        bars, verdict, _ = timed("/classify", *jobs["/classify"])
        _, labelled, _ = timed("/classify_csv", *jobs["/classify_csv"])
        seen = {bars["label"]} | {c_["label"] for c_ in bars["confidences"]}
        if not seen <= own:
            raise AssertionError(f"session {i}: /classify answered labels {sorted(seen - own)} not its own")
        if bars["label"] != label_of(i, topic):
            raise AssertionError(f"session {i}: {query!r} -> {bars['label']}, expected {label_of(i, topic)}")
        out = pd.read_csv(labelled, dtype=str, keep_default_na=False)
        if not set(out["label"]) <= own:
            raise AssertionError(f"session {i}: /classify_csv answered {sorted(set(out['label']) - own)}")
        right = (out["label"] == [label_of(i, t) for t, _ in batch]).mean()
        if right < 0.8:
            raise AssertionError(f"session {i}: only {right:.0%} of its batch rows got the right label")
        job, t0 = submit(c, "/label_set")
        table, _ = timed("/label_set", job, t0)
        if {r[0] for r in table["data"] if r and r[0]} != own:
            raise AssertionError(f"session {i}: its label set changed under load")
    finally:
        c.close()


def run_load(url: str, sessions: int = 20, timeout_s: float = 150.0) -> dict[str, Any]:
    """Run ``sessions`` concurrent sessions against ``url``; returns counts, errors and latencies."""
    deadline = time.monotonic() + timeout_s
    latencies: dict[str, list[float]] = {}
    lock = threading.Lock()

    def record(endpoint: str, seconds: float) -> None:
        with lock:
            latencies.setdefault(endpoint, []).append(seconds)

    errors: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(sessions) as pool:
        futures = [pool.submit(_one_session, url, i, Path(tmp), deadline, record) for i in range(sessions)]
        for i, fut in enumerate(futures):
            try:
                fut.result(timeout=max(1.0, deadline - time.monotonic()) + 5)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the others
                errors.append(f"session {i}: {type(exc).__name__}: {str(exc)[:300]}")
    wall = time.monotonic() - started
    every = [s for v in latencies.values() for s in v]
    return {
        "sessions": sessions, "requests": len(every), "errors": errors, "wall_s": round(wall, 2),
        "p50_s": round(percentile(every, 50), 3), "p99_s": round(percentile(every, 99), 3),
        "per_endpoint": {k: {"n": len(v), "p50_s": round(percentile(v, 50), 3),
                             "p99_s": round(percentile(v, 99), 3), "max_s": round(max(v), 3)}
                         for k, v in sorted(latencies.items())},
    }


def report(result: dict[str, Any]) -> str:
    lines = [f"load: {result['sessions']} sessions, {result['requests']} requests, "
             f"{len(result['errors'])} errors, {result['wall_s']} s wall; "
             f"latency p50 {result['p50_s']} s, p99 {result['p99_s']} s"]
    lines += [f"  {k:14s} n={v['n']:3d}  p50 {v['p50_s']:.3f} s  p99 {v['p99_s']:.3f} s  max {v['max_s']:.3f} s"
              for k, v in result["per_endpoint"].items()]
    lines += [f"  ERROR {e}" for e in result["errors"]]
    return "\n".join(lines)


@contextmanager
def launched_app() -> Iterator[str]:
    """``python app.py`` on a free loopback port (as tests/conftest.py does)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import _wait_until_up, free_port

    port = free_port()
    env = os.environ | {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                        "GRADIO_ANALYTICS_ENABLED": "False", "FEWSHOT_AUTH": ""}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "app.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_until_up(url, proc, log)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def main() -> None:
    p = parser(__doc__.splitlines()[0], out="load.json", data=False)
    p.add_argument("--url", help="a running app (default: launch app.py on a free port)")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--timeout", type=float, default=150.0)
    args = p.parse_args()
    if args.url:
        result = run_load(args.url, args.sessions, args.timeout)
    else:
        with launched_app() as url:
            result = run_load(url, args.sessions, args.timeout)
    print(report(result))
    result |= {"command": " ".join(["python", "bench/load.py", *sys.argv[1:]]), "cpus": os.cpu_count(),
               "python": platform.python_version(), "concurrency": os.environ.get("FEWSHOT_CONCURRENCY", "2")}
    write_json(args.out, result)
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
