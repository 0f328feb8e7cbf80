"""Does a long run cost what its parts say? Wall time against compilation plus steps x step time.

  python benchmarks/long_run.py --size 2048 --steps 100 [--content tubingen] [--style starry_night]

One fresh process runs the default preset with ``--steps`` steps at ``--size`` (coarse to fine,
as the CLI would) and times every compiled chunk from the callback. For each pass: its first
chunk (compilation, targets and its steps), and its steady step time (the median of its later
chunks, per step). A pass's compilation is its first chunk less its steps at the steady time
(passes with one chunk count as all steps). The run's parts, summed, are compared with the
process's wall time, from start to the image in hand; what is left over is start-up (imports,
model) and the work between chunks (targets, resizing, the host copies). One JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

START = time.perf_counter()

import quality  # noqa: E402  (this script's folder is first on sys.path)
from _system import cpu_model, peak_rss_mib  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--content", default="tubingen")
    parser.add_argument("--style", default="starry_night")
    args = parser.parse_args(argv)

    from jnst import images
    from jnst.config import StyleConfig
    from jnst.schedule import pass_plan
    from jnst.stylize import stylize
    from jnst.vgg import Model

    model = Model.create()
    content = images.load_image(quality.find_image(args.content), args.size)
    style = images.load_style(quality.find_image(args.style), content.shape[:2])
    config = StyleConfig(steps=args.steps)
    passes = pass_plan(content.shape[:2], [style.shape[:2]], config)
    ready = time.perf_counter()
    marks: list[tuple[int, float]] = [(0, ready)]
    stylize(content, style, config, model=model, callback=lambda step, *_: marks.append((step, time.perf_counter())))
    wall = time.perf_counter() - START

    rows, step_index, total_compile, total_steps = [], 1, 0.0, 0.0
    for p in passes:
        chunks = []  # (steps, seconds) of this pass's chunks
        while step_index < len(marks) and sum(n for n, _ in chunks) < p.steps:
            (s0, t0), (s1, t1) = marks[step_index - 1], marks[step_index]
            chunks.append((s1 - s0, t1 - t0))
            step_index += 1
        later = [t / n for n, t in chunks[1:]]
        step_s = statistics.median(later) if later else chunks[0][1] / chunks[0][0]
        compile_s = max(0.0, chunks[0][1] - chunks[0][0] * step_s)
        total_compile, total_steps = total_compile + compile_s, total_steps + p.steps * step_s
        rows.append({"side": p.side, "steps": p.steps, "chunk": p.chunk, "first_chunk_s": round(chunks[0][1], 2),
                     "step_s": round(step_s, 3), "compile_s": round(compile_s, 2)})  # fmt: skip
    parts = (ready - START) + total_compile + total_steps
    print(json.dumps({
        "size": f"{content.shape[1]}x{content.shape[0]}", "steps": args.steps, "wall_s": round(wall, 1),
        "start_s": round(ready - START, 1), "compile_s": round(total_compile, 1), "steps_s": round(total_steps, 1),
        "parts_s": round(parts, 1), "wall_over_parts": round(wall / parts, 3),
        "peak_rss_gb": round(peak_rss_mib() / 2**10, 2), "cpu": cpu_model(), "passes": rows,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
