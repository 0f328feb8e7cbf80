"""Tune the default: run a grid of jnst configs over the quality benchmark's tuning pairs, then score them.

  python benchmarks/sweep.py run GRID.json [--sizes 256,512] [--pairs ...] [--out out/sweep]
  python benchmarks/sweep.py score [--out out/sweep] --peer-python .peer/bin/python [--base NAME] [--json scores.json]

``GRID.json`` is a list of ``{"name": ..., "changes": {StyleConfig field: value}}``; each entry is
the default preset with its changes (lists become tuples), chunks of 5 steps whatever the device,
so that its passes split the steps exactly as a CPU run does. ``run`` calls the Python API in
one process on any device (a GPU runs a grid in minutes; XLA's ``highest`` matmul precision
keeps TF32 out of the pictures) and writes ``OUT/{size}/{content}__{style}__{name}.png``, the
names :mod:`quality` writes, beside a JSON line per run with its passes (sides and steps).

``score`` rates every PNG in ``OUT/{size}`` with the ruler (``peer_ruler.py``) and HF energy as
``quality.py`` does and prints one row per config: its content and style error over the
reference's on each pair (the worst and the mean of those ratios), the worst HF against the
busier input's, and an estimate of a first CPU run's time from the steps at each pass's pixel
count (:func:`cpu_seconds`). The reference is ``pastiche`` (outputs copied there from a quality
run) or, with ``--base NAME``, the grid's own config ``NAME``: a change measured against the
default it would replace. The winner still has to pass ``quality.py`` on the CPU: the
estimate only ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pairs
import quality  # this script's folder is first on sys.path

# 2-core AVX2 EPYC, default objective: 0.76 s/step at 256x192 (49,152 pixels), time about
# linear in pixels; about 5 s of compilation per pass shape and 4 s of start-up (first run).
CPU_S_PER_PIXEL_STEP = 0.76 / 49152
CPU_COMPILE_S_PER_PASS, CPU_START_S = 5.0, 4.0
CHUNK = 5


def cpu_seconds(passes: list[tuple[list[int], int]]) -> float:
    """Estimated first-run seconds on the 2-core CPU for passes of ((h, w), steps)."""
    work = sum(h * w * steps for (h, w), steps in passes) * CPU_S_PER_PIXEL_STEP
    return CPU_START_S + work + CPU_COMPILE_S_PER_PASS * len(passes)


def run(args: argparse.Namespace) -> None:
    """Every grid entry at every size and pair; skips outputs that exist (a rerun resumes)."""
    import jax

    from jnst import images
    from jnst.config import StyleConfig
    from jnst.stylize import stylize
    from jnst.vgg import Model

    jax.config.update("jax_default_matmul_precision", "highest")
    grid = json.loads(Path(args.grid).read_text())
    model = Model.create()
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "runs.jsonl").open("a")
    for size in args.sizes:
        for content_stem, style_stem in args.pairs:
            content = images.load_image(quality.find_image(content_stem, args.images), size)
            style = images.load_style(quality.find_image(style_stem, args.images), content.shape[:2])
            for entry in grid:
                out = quality.output_path(args.out, size, content_stem, style_stem, entry["name"])
                if out.exists():
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                changes = {k: tuple(map(tuple, v)) if k.endswith("layers") else v for k, v in entry["changes"].items()}
                config = StyleConfig(chunk_size=CHUNK).replace(**changes)
                start = time.perf_counter()
                result = stylize(content, style, config, model=model)
                seconds = time.perf_counter() - start
                images.save_image(result.image, out)
                sides = config.pyramid(max(content.shape[:2]))[-len(result.pass_steps) :]
                hws = [images.fit_long_side(content.shape[:2], s) for s in sides]
                passes = [[list(hw), n] for hw, n in zip(hws, result.pass_steps, strict=True)]
                record = {"output": str(out), "name": entry["name"], "size": size, "content": content_stem,
                          "style": style_stem, "passes": passes, "device_s": seconds}  # fmt: skip
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(f"{size} {content_stem}:{style_stem} {entry['name']}: {seconds:.1f} s", file=sys.stderr)


def compare(runs: list[dict], size: int, reference: str) -> list[dict]:
    """One row per config at ``size``: its errors over ``reference``'s on the pairs both have."""
    mine = [r for r in runs if r["size"] == size and "content_error" in r]
    ref = {(r["content"], r["style"]): r for r in mine if r["system"] == reference}
    rows = []
    for name in sorted({r["system"] for r in mine} - {reference, quality.PASTICHE}):
        these = [r for r in mine if r["system"] == name and (r["content"], r["style"]) in ref]
        ratios = [quality.ratios(ref[(r["content"], r["style"])], r) for r in these]
        row = {"size": size, "name": name, "pairs": len(these)}
        for k in ("content", "style"):
            row[f"worst {k}"] = max((x[k] for x in ratios), default=None)
            row[f"mean {k}"] = sum(x[k] for x in ratios) / len(ratios) if ratios else None
        row["worst hf"] = max((x["hf"] for x in ratios), default=None)
        row["style per pair"] = " ".join(f"{x['style']:.2f}" for x in ratios)
        row["content per pair"] = " ".join(f"{x['content']:.2f}" for x in ratios)
        rows.append(row)
    return rows


def score(args: argparse.Namespace) -> None:
    """Ruler and HF for every output; one row per (size, config) against the reference."""
    passes = {}
    log = args.out / "runs.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            passes[(r["size"], r["content"], r["style"], r["name"])] = r["passes"]
    runs = []
    for size in args.sizes:
        paths = sorted((args.out / str(size)).glob("*.png"))
        runs += [quality.output_record(path, size, args.images) for path in paths]
    if not any(r["system"] == args.base for r in runs):
        sys.exit(f"error: no {args.base!r} outputs in {args.out} to compare with")
    quality.score(args.peer_python, runs)
    rows = []
    for size in args.sizes:
        for row in compare(runs, size, args.base):
            keys = [k for k in passes if k[0] == size and k[3] == row["name"]]
            row["cpu s (est, max)"] = max((cpu_seconds(passes[k]) for k in keys), default=None)
            rows.append(row)
    rows.sort(key=lambda r: (r["size"], max(r["worst content"] or 9, r["worst style"] or 9)))
    if args.json:
        Path(args.json).write_text(json.dumps({"base": args.base, "runs": runs, "rows": rows}, indent=1))
    head = list(rows[0]) if rows else []
    print(f"errors ÷ {args.base}'s on the same pair")
    print(
        quality.table(head, [[quality.fmt(r[k]) if isinstance(r[k], float) else str(r[k]) for k in head] for r in rows])
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "score"):
        p = sub.add_parser(name)
        p.add_argument("--sizes", type=quality.parse_sizes, default=quality.parse_sizes(quality.DEFAULT_SIZES))
        # A sweep tunes: by default on the tuning half only (benchmarks/pairs.py), never the held-out one.
        p.add_argument("--pairs", type=quality.parse_pairs, default=quality.parse_pairs(pairs.TUNING))
        p.add_argument("--images", type=Path, default=quality.IMAGES)
        p.add_argument("--out", type=Path, default=Path("out/sweep"))
    sub.choices["run"].add_argument("grid", help="JSON list of {name, changes}")
    sub.choices["score"].add_argument("--peer-python", default=os.environ.get("JNST_PEER_PYTHON"), required=False)
    sub.choices["score"].add_argument("--json", help="write runs and rows here")
    sub.choices["score"].add_argument(
        "--base", default=quality.PASTICHE, help="compare with this config of the grid (default: pastiche's outputs)"
    )
    args = parser.parse_args(argv)
    (run if args.command == "run" else score)(args)


if __name__ == "__main__":
    main()
