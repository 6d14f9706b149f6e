"""Shared fixtures: the real web app, launched once per test session on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP_MAX_FILE_SIZE = 200_000  # bytes; small so the size-limit test needs no big file
START_TIMEOUT_S = 120


def pytest_configure(config: pytest.Config) -> None:
    """MKL in strict mode before any test computes, as the ``fewshot`` command and the Ray actors run it: the
    byte-identity tests run the local engine in this process (see :mod:`fewshot.encoders.determinism`)."""
    from fewshot.encoders.determinism import strict_blas

    strict_blas()


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer within {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (with trailing slash) of ``python app.py`` running in a subprocess on 127.0.0.1."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = os.environ | {
        "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False", "FEWSHOT_MAX_FILE_SIZE": str(APP_MAX_FILE_SIZE),
        "FEWSHOT_AUTH": "", "PYTHONUNBUFFERED": "1",
    }
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def batch_csv() -> Path:
    """The shipped labelled sample for the support-tickets set (has a formula-like cell)."""
    return ROOT / "assets" / "samples" / "support_tickets_batch.csv"
