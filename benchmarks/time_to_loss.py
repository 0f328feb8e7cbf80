"""Wall time each optimiser and schedule needs to reach the loss of 300 plain L-BFGS steps.

    python benchmarks/time_to_loss.py --size 256 [--budget 600] [--methods adam lbfgs-multiscale adam-multiscale]

Problem: tubingen.jpg x starry_night.jpg (from ../shared/images), the seed preset's objective
(layers and weights; docs/performance.md's tables were measured when it was also the default's). The
target is the loss that 300 single-scale L-BFGS steps reach. Each method is
compiled first (a short warm-up run of the same config), then timed from the start of
:func:`jnst.stylize`, targets included; a multi-scale run counts only losses of its final,
full-size pass, since coarse passes' losses are not comparable. The plain L-BFGS row is the
reference run itself; every other method gets ``--budget`` steps. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from jnst import Model, StyleConfig, preset, stylize
from jnst.images import load_image, load_style

METHODS = ["adam", "lbfgs-multiscale", "adam-multiscale"]
IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def timed_run(model: Model, content, style, config: StyleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-step losses of the final pass and the wall time at which each of those steps ended."""
    passes = len(config.pyramid(max(content.shape[:2])))
    stylize(content, style, config.replace(steps=11 * passes), model=model)  # compile every pass
    marks: list[tuple[int, float]] = []
    start = time.perf_counter()
    result = stylize(
        content, style, config, model=model, callback=lambda s, _l, _i: marks.append((s, time.perf_counter()))
    )
    steps = np.array([s for s, _ in marks])
    times = np.array([t - start for _, t in marks])
    final_pass_start = config.steps // passes * (passes - 1)
    losses = result.losses["total"]
    # Loss i is evaluated at the image step i started from, so it is known when step i ends.
    step_end_time = np.interp(np.arange(1, config.steps + 1), steps, times)
    return losses[final_pass_start:], step_end_time[final_pass_start:]


def time_to(target: float, losses: np.ndarray, times: np.ndarray) -> tuple[float | None, int | None]:
    hit = np.nonzero(losses <= target)[0]
    return (float(times[hit[0]]), int(hit[0])) if len(hit) else (None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--budget", type=int, default=600, help="most steps a method may take")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS, help="which to race (default all)")
    args = parser.parse_args()
    model = Model.create()
    content = load_image(IMAGES / "tubingen.jpg", args.size)
    style = load_style(IMAGES / "starry_night.jpg", content.shape[:2])
    base = preset("seed").replace(steps=300, optimizer="lbfgs", init="content", snapshot_every=0)
    ref_losses, ref_times = timed_run(model, content, style, base)
    target = float(ref_losses[-1])
    adam = base.replace(steps=args.budget, optimizer="adam")
    lbfgs = base.replace(steps=args.budget)
    methods = {
        "adam": ("Adam (lr 0.05)", adam),
        "lbfgs-multiscale": ("L-BFGS, multi-scale from 128 (x1.41)", lbfgs.replace(scale_start=128)),
        "adam-multiscale": ("Adam, multi-scale from 128 (x1.41)", adam.replace(scale_start=128)),
    }
    h, w = content.shape[:2]
    print(f"Target: loss {target:.4g} = 300 L-BFGS steps at {w}x{h} ({ref_times[-1]:.1f} s).\n")
    print("| method | time to target (s) | steps of final pass | final-pass s/step | loss after budget |")
    print("|---|---|---|---|---|")
    ref_per_step = (ref_times[-1] - ref_times[0]) / (len(ref_times) - 1)
    print(f"| L-BFGS (the reference run) | {ref_times[-1]:.1f} | 299 | {ref_per_step:.3f} | {target:.4g} (300 steps) |")
    for name, cfg in (methods[m] for m in args.methods):
        losses, times = timed_run(model, content, style, cfg)
        t, k = time_to(target, losses, times)
        per_step = (times[-1] - times[0]) / max(1, len(times) - 1)
        reached = f"{t:.1f}" if t is not None else f"not in {cfg.steps} steps"
        print(f"| {name} | {reached} | {k if k is not None else '-'} | {per_step:.3f} | {losses[-1]:.4g} |", flush=True)


if __name__ == "__main__":
    main()
