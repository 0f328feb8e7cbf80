"""Big pictures: the memory plan against the measured peak, and the time a step, whole or tiled.

  python benchmarks/print_size.py --runs 1024,1024:512,2048,2048:1024,full:1536 [--steps 3] [--max-memory 12G]

Each run (``SIZE`` or ``SIZE:TILE``; ``full`` is the photo's own size) is a fresh process: it
plans the finest pass with :func:`jnst.memory.plan_memory` (as ``--dry-run`` does), runs
``--steps`` steps at that size alone (no coarser passes) and reports the plan's peak estimate,
the process's peak resident memory (``VmHWM``), the first chunk's time (targets and
compilation included) and the time a step after it, also per pixel (the cost a pixel of a tiled
step against a whole one). ``--max-memory`` is the plan's budget (default: the memory free).
One JSON line per run; a table at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import quality  # this script's folder is first on sys.path
from _system import cpu_model, peak_rss_mib
from report import fmt, table


def worker(size: str, tile: int, steps: int, content: str, style: str, budget: int, chunk: int = 0) -> dict:
    """One run in this process (see the module docstring)."""
    from _common import device_peak_mib

    from jnst import images, memory
    from jnst.config import StyleConfig
    from jnst.schedule import pass_plan
    from jnst.stylize import stylize
    from jnst.vgg import Model

    start = time.perf_counter()
    model = Model.create()
    photo = images.load_image(quality.find_image(content))
    picture = images.load_image(quality.find_image(content), None if size == "full" else int(size))
    painting = images.load_style(quality.find_image(style), picture.shape[:2])
    hw = picture.shape[:2]
    config = StyleConfig(steps=steps, scale_start=0, chunk_size=chunk)
    passes = pass_plan(hw, [painting.shape[:2]], config)
    plan = memory.plan_memory(model, config, passes, unroll=True, budget=budget or memory.available_bytes(), tile=tile)
    marks = [(0, time.perf_counter())]
    record = lambda step, *_: marks.append((step, time.perf_counter()))  # noqa: E731
    stylize(picture, painting, config, model=model, tile=plan.tile, callback=record)
    (_, t0), (s1, t1), (s2, t2) = marks[0], marks[1], marks[-1]
    device_peak = device_peak_mib()  # None on a CPU
    return {
        "size": f"{hw[1]}x{hw[0]}", "photo": f"{photo.shape[1]}x{photo.shape[0]}", "tile": plan.tile,
        "tiles": plan.tiles, "estimate_gb": plan.peak / 2**30,
        "peak_rss_gb": peak_rss_mib() / 2**10, "device_peak_gb": device_peak and device_peak / 2**10,
        "first_chunk_s": t1 - t0, "s_per_step": (t2 - t1) / (s2 - s1) if s2 > s1 else None,
        "us_per_pixel_step": 1e6 * (t2 - t1) / (s2 - s1) / (hw[0] * hw[1]) if s2 > s1 else None,
        "total_s": time.perf_counter() - start, "megapixels": hw[0] * hw[1] / 1e6,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="1024,1024:512,2048,2048:1024,full:1536")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=0, help="steps a compiled chunk (default: the backend's)")
    parser.add_argument("--content", default="tubingen")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--max-memory", default="", help="the plan's budget, e.g. 12G (default: the memory free)")
    parser.add_argument("--json", type=Path, help="append the runs here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        size, _, tile = args.worker.partition(":")
        from jnst.memory import parse_size

        budget = parse_size(args.max_memory) if args.max_memory else 0
        print(json.dumps(worker(size, int(tile or 0), args.steps, args.content, args.style, budget, args.chunk)))
        return
    rows = []
    for run in args.runs.split(","):
        cmd = [sys.executable, __file__, "--worker", run, "--steps", str(args.steps), "--chunk", str(args.chunk),
               "--content", args.content, "--style", args.style, "--max-memory", args.max_memory]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"{run}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        row = {"run": run, **json.loads(proc.stdout.splitlines()[-1]), "cpu": cpu_model()}
        print(json.dumps(row), flush=True)
        if args.json:
            with args.json.open("a") as out:
                out.write(json.dumps(row) + "\n")
        rows.append(row)
    head = ["size", "tile", "tiles", "estimate_gb", "peak_rss_gb", "first_chunk_s", "s_per_step", "us_per_pixel_step"]
    print(table(head, [[fmt(r[k]) if isinstance(r[k], float) else str(r[k]) for k in head] for r in rows]))


if __name__ == "__main__":
    main()
