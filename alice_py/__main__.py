"""``python -m alice_py`` is the ``alice-py`` command."""

import sys

from alice_py.cli import main

sys.exit(main())
