"""The memory policy of a one-image ``stylize`` run: whole or in tiles, from XLA's memory
analysis against the memory available, and the plan ``--dry-run`` prints."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from jnst.cli.common import UsageError

if TYPE_CHECKING:
    from jnst.config import StyleConfig
    from jnst.schedule import Pass
    from jnst.vgg import Model


def memory_plan(args: argparse.Namespace, model: Model, cfg: StyleConfig, passes: list[Pass]) -> int | None:
    """The tile size this run needs (0: whole) from XLA's memory analysis against the memory
    allowed (``--max-memory``, else :func:`jnst.memory.default_budget`), or None after
    ``--dry-run`` printed the plan. A picture that cannot fit stops here, with one line."""
    import jax

    from jnst import memory

    budget, rule = (args.max_memory, "given with --max-memory") if args.max_memory else memory.default_budget()
    # Under a third of the budget at 3 KB a pixel (measured: 2.2 KB at 2048 px) fits whole
    # without a compilation to prove it.
    height, width = passes[-1].hw
    if not (args.dry_run or args.tile or args.max_memory) and 3 * 1024 * height * width < budget / 3:
        return 0
    plan = memory.plan_memory(model, cfg, passes, unroll=jax.default_backend() == "cpu", budget=budget,
                              tile=args.tile or 0)  # fmt: skip
    if args.dry_run:
        print(f"{plan.describe()}\nallowed: {rule}")
        return None
    if plan.peak > budget:
        raise UsageError(
            f"tiles of {args.tile} px need {memory.format_size(plan.peak)}, more than the "
            f"{memory.format_size(budget)} allowed ({rule}): give a smaller --tile, or none to choose one"
        )
    return plan.tile
