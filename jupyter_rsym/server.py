"""``python -m jupyter_rsym.server``: ``jupyter-rsym serve`` on a Python that has
only rpyc and this package (see ``remote/server.py``; nothing else is imported)."""

import sys

from .remote.server import main

if __name__ == "__main__":
    sys.exit(main())
