"""``python -m tests.shared.launch '<sections as JSON>'``: the real service (``server.serve``)
in a process of its own, on a config built from the given sections.

Only the config loading is skipped, because the CLI still refuses ``[conversations] store =
"redis"`` until the Redis live store is built (issue 12); from the listening socket on it is
the service as ``alice-py serve`` runs it (signals, drain, the ``cleanup_ctx`` resources).
"""

from __future__ import annotations

import json
import logging
import sys

from alice_py.config import Config
from alice_py.server import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(serve(Config().replace(**json.loads(sys.argv[1]))))
