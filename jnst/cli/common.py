"""What the command line's modules share: exit codes, :class:`UsageError`, and for the
``stylize`` runs the progress bar, which process writes, refusing to overwrite an input,
joining a cluster, and checkpoints."""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jnst import devices

if TYPE_CHECKING:
    import numpy as np

    from jnst.checkpoint import Checkpoints
    from jnst.schedule import Pass

EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
CHECKPOINT_SECONDS = 300.0  # a long run is checkpointed at least this often


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class Progress:
    """Progress bar over steps: the pass (and, at print size, the tile), loss, steps/s and time
    left; keeps the latest image for Ctrl-C."""

    def __init__(self, passes: Sequence[Pass], quiet: bool, on_step: Callable[[int, np.ndarray], None]):
        from tqdm import tqdm

        self.passes, self.ends = list(passes), list(itertools.accumulate(p.steps for p in passes))
        self.bar = tqdm(
            total=self.ends[-1],
            disable=quiet,
            unit="step",
            dynamic_ncols=True,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{rate_fmt}, {remaining} left]",
        )
        self.on_step = on_step
        self.step, self.image, self.loss = 0, None, None
        self.describe()

    def describe(self, tile: str = "") -> None:
        """``pass 2/3 181x136 · tile 3/6 (gradient) · loss 1.2e+05`` (the parts known so far)."""
        k = min(bisect.bisect_right(self.ends, self.step), len(self.passes) - 1)
        (height, width), loss = self.passes[k].hw, self.loss
        parts = [f"pass {k + 1}/{len(self.passes)} {width}x{height}", tile, "" if loss is None else f"loss {loss:.4g}"]
        self.bar.set_description_str(" · ".join(part for part in parts if part), refresh=bool(tile))

    def __call__(self, step: int, chunk_losses: dict, image: np.ndarray) -> None:
        self.loss = float(chunk_losses["total"][-1])
        self.bar.update(step - self.step)
        self.step, self.image = step, image
        self.describe()
        self.on_step(step, image)

    def tile(self, sweep: str, done: int, count: int) -> None:
        """A tile of a step finished (:func:`jnst.stylize`'s ``on_tile``)."""
        self.describe(f"tile {done}/{count} ({sweep})")


def refuse_overwriting_inputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Writing an output that is also an input (by whatever path: relative, a symlink, a hard
    link) would destroy that input: refuse it before the long computation."""
    for out in outputs:
        for path in inputs:
            if out.is_file() and os.path.samefile(out, path):
                raise UsageError(f"{out}: is also an input image ({path}); give another output path")


def join_cluster(args: argparse.Namespace) -> None:
    """With ``--distributed`` or one of its flags, join the multi-host run (before anything else
    uses JAX); every process then runs the same steps, and only process 0 writes and reports."""
    if args.distributed or args.coordinator or args.num_processes or args.process_id is not None:
        devices.join_cluster(args.coordinator, args.num_processes, args.process_id)
        args.quiet |= not writes()


def writes() -> bool:
    """Whether this process writes the outputs: always, except on the hosts after the first of
    a multi-host run (all of them hold the same result)."""
    import jax

    return jax.process_index() == 0


def checkpoints_for(args: argparse.Namespace) -> Checkpoints | None:
    """The run's :class:`jnst.checkpoint.Checkpoints` in ``OUTPUT.ckpt/``; None in a multi-host run
    (where they are not supported)."""
    import jax

    from jnst.checkpoint import Checkpoints

    folder = args.output.with_name(args.output.name + ".ckpt")
    if jax.process_count() > 1:
        if args.resume or args.checkpoint_every or args.keep_checkpoint:
            raise UsageError("checkpoints (--resume, --checkpoint-every, --keep-checkpoint) work on one host only")
        return None
    if args.resume and not folder.is_dir():
        raise UsageError(f"no checkpoint at {folder} to resume")
    if not args.resume and folder.exists():
        raise UsageError(f"{folder} holds a checkpoint: add --resume to continue that run, or delete it to start over")
    every = args.checkpoint_every or 0
    return Checkpoints(folder, every_steps=every, every_seconds=CHECKPOINT_SECONDS, resume=args.resume)
