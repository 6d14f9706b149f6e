"""Entry point of the web app (and of the Hugging Face Space: ``app_file: app.py``): ``python app.py``.

The page is served within seconds; the encoder is prepared in the background meanwhile (the console
and a status line on the page say so). Settings come from the environment: see :mod:`fewshot.app.server`.
"""

from __future__ import annotations

from fewshot.app import create_app, launch

demo = create_app()  # Spaces and `gradio app.py` look for a module-level Blocks

if __name__ == "__main__":
    launch(demo)
