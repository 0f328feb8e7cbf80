"""A print-size picture from ``../shared/images`` and a crop of it at full resolution for docs/print-size.md.

    python scripts/print_example.py out/print docs/print_crop.jpg [--size 5000] [--max-memory 12G]

Two ``jnst stylize`` runs, each a fresh process, timed (the peak memory of a print-size step is
``benchmarks/print_size.py``'s to measure, from the process itself): the
default at ``--base`` px (coarse to fine from 128 px), then the print, started from that picture
(``--init``) with a few steps at 1024 px, 2048 px and the full ``--size`` (tiled where the
memory plan says so), so that the fine passes add the painting's strokes at print scale
instead of enlarging the small picture. The print stays in OUT (it is large); the crop, a
window of the print at one print pixel a screen pixel beside the same window of the base
picture enlarged (LANCZOS), goes to CROP with a caption. A JSON line per run is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # quality.py owns the image lookup
from quality import find_image  # noqa: E402

CAPTION = 28


def run(args: list[str]) -> dict:
    """Run ``jnst stylize ARGS`` in a fresh process; its wall time."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jnst", "stylize", *args], check=True)
    return {"args": args, "wall_s": round(time.perf_counter() - start, 1)}


def crop_figure(
    print_path: Path, base_path: Path, out: Path, window: tuple[int, int], centre: tuple[float, float]
) -> None:
    """The print's ``window`` (w, h) around ``centre`` (fractions of its size), beside the base
    picture's same window enlarged to the print's size, captioned."""
    full = Image.open(print_path).convert("RGB")
    w, h = window
    left = round(centre[0] * full.width - w / 2)
    top = round(centre[1] * full.height - h / 2)
    box = (left, top, left + w, top + h)
    base = Image.open(base_path).convert("RGB")
    scale = full.width / base.width
    base_box = tuple(v / scale for v in box)
    enlarged = base.resize((w, h), Image.Resampling.LANCZOS, box=base_box)
    sheet = Image.new("RGB", (2 * w + 8, h + CAPTION), "white")
    sheet.paste(enlarged, (0, CAPTION))
    sheet.paste(full.crop(box), (w + 8, CAPTION))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 6), f"{base.width}x{base.height} default, enlarged {scale:.1f}x", fill="black")
    draw.text((w + 12, 6), f"{full.width}x{full.height} print, 1:1", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=90)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the base picture and the print")
    parser.add_argument("crop", type=Path, help="docs/print-size.md's crop (JPEG)")
    parser.add_argument("--content", default="tubingen")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--base", type=int, default=512, help="the default run's long side")
    parser.add_argument("--size", type=int, default=5000, help="the print's long side")
    parser.add_argument("--steps", type=int, default=6, help="steps of the print run (its three passes)")
    parser.add_argument("--max-memory", default="12G")
    parser.add_argument("--window", default="900x600", help="crop size, WxH print pixels")
    parser.add_argument("--centre", default="0.62,0.45", help="crop centre, fractions of width and height")
    args = parser.parse_args(argv)

    content, style = str(find_image(args.content)), str(find_image(args.style))
    args.out.mkdir(parents=True, exist_ok=True)
    base, full = args.out / f"base_{args.base}.png", args.out / f"print_{args.size}.png"
    common = [content, style, "--max-memory", args.max_memory]
    if not base.exists():
        print(json.dumps(run([*common, "-o", str(base), "--size", str(args.base)])), flush=True)
    if not full.exists():
        fine = [str(s) for s in (1024, 2048) if args.base < s < args.size]
        print_args = [*common, "--init", str(base), "-o", str(full), "--size", str(args.size),
                      "--scales", *(fine or ["none"]), "--steps", str(args.steps), "--pass-ratio", "1"]  # fmt: skip
        print(json.dumps(run(print_args)), flush=True)
    window = tuple(int(v) for v in args.window.split("x"))
    centre = tuple(float(v) for v in args.centre.split(","))
    crop_figure(full, base, args.crop, window, centre)
    print(f"wrote {args.crop}")


if __name__ == "__main__":
    main()
