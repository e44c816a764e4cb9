"""One module per resource; each exposes ``router`` and is included by ``app/api/main.py``."""
