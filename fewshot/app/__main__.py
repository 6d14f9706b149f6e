"""``python -m fewshot.app [--host H] [--port P]``: the web app from an installed package (``python app.py`` in a
checkout)."""

from . import create_app, launch, parse_args

options = parse_args(prog="python -m fewshot.app")
launch(create_app(), host=options.host, port=options.port)
