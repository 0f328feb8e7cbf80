"""``python -m jnst``: the command line."""

import sys

from jnst.cli import main

sys.exit(main())
