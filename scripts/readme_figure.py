"""Write docs/controls.md's figure of every control, on real test images from ../shared/images.

    python scripts/readme_figure.py docs/controls.jpg [--size 192] [--steps 150] [--images DIR]

Each tile is one `jnst.stylize` call with L-BFGS on tubingen.jpg (long side ``--size``), styled
after starry_night.jpg; the_scream.jpg is the second style, for the blend and the masks (left
half Starry Night, right half The Scream). The style tiles are centre-cropped to the content's
shape for display only; stylize gets each style whole, sized as `jnst stylize` sizes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from jnst import Model, StyleConfig, stylize
from jnst.images import contact_sheet, load_image, load_style, save_image, to_uint8

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
CONTENT, STYLE_A, STYLE_B = "tubingen.jpg", "starry_night.jpg", "the_scream.jpg"


def tile(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``image`` centre-cropped to ``hw``'s aspect and resized to it: a same-sized tile for the sheet."""
    fitted = ImageOps.fit(Image.fromarray(to_uint8(image)), hw[::-1], Image.Resampling.LANCZOS)
    return np.asarray(fitted, dtype=np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=192, help="long side of the content (and every tile)")
    parser.add_argument("--steps", type=int, default=150, help="L-BFGS steps per tile")
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder holding the three test images")
    args = parser.parse_args()
    content = load_image(args.images / CONTENT, args.size)
    hw = content.shape[:2]
    style_a, style_b = (load_style(args.images / name, hw) for name in (STYLE_A, STYLE_B))
    left = np.zeros(hw, np.float32)
    left[:, : hw[1] // 2] = 1.0
    start = args.size // 2
    base = StyleConfig(steps=args.steps, optimizer="lbfgs")
    model = Model.create()
    runs = {
        "default (L-BFGS)": (base, [style_a], None),
        "--color luminance": (base.replace(color="luminance"), [style_a], None),
        "--color match": (base.replace(color="match"), [style_a], None),
        "--style-blend .5 .5": (base.replace(style_blend=(0.5, 0.5)), [style_a, style_b], None),
        "--masks (left/right)": (base, [style_a, style_b], np.stack([left, 1 - left])),
        "--style-loss wasserstein": (base.replace(style_loss="wasserstein"), [style_a], None),
        f"--scales auto (from {start})": (base.replace(scale_start=start), [style_a], None),
    }
    tiles = [content, tile(style_a, hw), tile(style_b, hw)]
    labels = ["content: tubingen", "style: starry_night", "style 2: the_scream"]
    for label, (config, styles, masks) in runs.items():
        print(label, flush=True)
        tiles.append(stylize(content, styles, config, masks=masks, model=model).image)
        labels.append(label)
    save_image(contact_sheet(tiles, labels, columns=5), args.output)


if __name__ == "__main__":
    main()
