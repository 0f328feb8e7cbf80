"""The ``jnst`` command line: a thin shell over :func:`jnst.stylize` and the converters.

Every problem with the input gets one line on stderr and exit code 2, found before the long
computation starts; Ctrl-C writes the image reached so far. ``stylize`` keeps JAX's compiled
programs in a persistent cache (:mod:`jnst.compile_cache`), so that a rerun skips compilation,
and checkpoints a run beside its output (``OUT.ckpt/``, :mod:`jnst.checkpoint`): Ctrl-C or
SIGTERM writes the image and a checkpoint and says how to ``--resume``.

Exit codes: 0 done; 2 bad input (one line); 3 diverged (a NaN or Inf in the loss or pixels: the
last good image and checkpoint are kept, one line names the step); 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from jnst import images
from jnst.cli.commands import COMMANDS
from jnst.cli.common import EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from jnst.cli.parser import build_parser
from jnst.weights import WeightsError

__all__ = ["EXIT_DIVERGED", "EXIT_INTERRUPTED", "EXIT_USAGE", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for the --resume line after an interrupt
        return COMMANDS[args.command](args)
    except (UsageError, images.ImageError, WeightsError, ValueError) as err:
        message = " ".join(str(err).splitlines())
        print(f"jnst: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("jnst: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
