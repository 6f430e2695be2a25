"""``python -m wsserver`` is the ``wsserver`` command."""

import sys

from .cli import main

sys.exit(main())
