"""Entry point of the web app (and of the Hugging Face Space: ``app_file: app.py``).

Environment:
  GRADIO_SERVER_NAME / GRADIO_SERVER_PORT  where to listen (default 0.0.0.0:7860, as a Space expects;
                                           use 127.0.0.1 for a local-only server)
  FEWSHOT_AUTH             optional login: ``user:password`` (several: ``a:pw1,b:pw2``)
  FEWSHOT_MAX_FILE_SIZE    upload limit (default ``10mb``)
  FEWSHOT_CONCURRENCY      requests run at once (default 2, one per vCPU of a free Space)
  FEWSHOT_MODEL            encoder (see fewshot.encoder); FEWSHOT_MAX_ROWS / FEWSHOT_MAX_EXAMPLES limits
  FEWSHOT_INT8             0 starts each session on the fp32 encoder instead of the int8 one
"""

from __future__ import annotations

import os

import gradio as gr

from fewshot.ui import build_app
from fewshot.ui_core import INT8_DEFAULT, auth_from_env, shared_encoder

_size = os.environ.get("FEWSHOT_MAX_FILE_SIZE", "10mb").strip()
MAX_FILE_SIZE: str | int = int(_size) if _size.isdigit() else _size  # bytes, or e.g. "10mb"
CONCURRENCY = int(os.environ.get("FEWSHOT_CONCURRENCY", "2"))
QUEUE_SIZE = int(os.environ.get("FEWSHOT_QUEUE_SIZE", "64"))


def create_app() -> gr.Blocks:
    """The app with its queue configured (shared by ``main`` and the tests)."""
    demo = build_app()
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch(app: gr.Blocks) -> None:
    """Launch on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT, never with a share link."""
    shared_encoder(INT8_DEFAULT)  # load (and quantise) the encoder before the first visitor
    app.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        share=False,
        auth=auth_from_env(),
        max_file_size=MAX_FILE_SIZE,
    )


demo = create_app()  # Spaces and `gradio app.py` look for a module-level Blocks

if __name__ == "__main__":
    launch(demo)
