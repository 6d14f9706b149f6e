"""Entry point of the web app (and of the Hugging Face Space: ``app_file: app.py``): ``python app.py``
(``--host``, ``--port``; ``--help``).

The page is served within seconds; the encoder is prepared in the background meanwhile (the console
and a status line on the page say so). Other settings come from the environment: see :mod:`fewshot.app.server`.
"""

from __future__ import annotations

from fewshot.app import create_app, launch, parse_args

if __name__ == "__main__":
    options = parse_args()  # first: --help and a bad option answer before the page is built
    launch(create_app(), host=options.host, port=options.port)
else:
    demo = create_app()  # `gradio app.py` (reload mode) imports this module and looks for a Blocks named demo
