"""Write the README's figure of every control, from jnst's own generated sample images.

    python scripts/readme_figure.py docs/controls.jpg [--size 192] [--steps 150]

Each tile is one `jnst.stylize` call on the same content (jnst.samples.sample_content) with
L-BFGS; the second style is the first one's colours rotated, so blends and masks are visible.
"""

from __future__ import annotations

import argparse

import numpy as np

from jnst import Model, StyleConfig, stylize
from jnst.images import contact_sheet, save_image
from jnst.samples import sample_content, sample_style


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    hw = (round(args.size * 3 / 4), args.size)
    content, style_a = sample_content(*hw), sample_style(*hw)
    style_b = style_a[..., [2, 0, 1]]  # the same strokes in other colours
    left = np.zeros(hw, np.float32)
    left[:, : hw[1] // 2] = 1.0
    base = StyleConfig(steps=args.steps, optimizer="lbfgs")
    model = Model.create()
    runs = {
        "default (L-BFGS)": (base, [style_a], None),
        "--color luminance": (base.replace(color="luminance"), [style_a], None),
        "--color match": (base.replace(color="match"), [style_a], None),
        "--style-blend .5 .5": (base.replace(style_blend=(0.5, 0.5)), [style_a, style_b], None),
        "--masks (left/right)": (base, [style_a, style_b], np.stack([left, 1 - left])),
        "--style-loss wasserstein": (base.replace(style_loss="wasserstein"), [style_a], None),
        "--scales auto (from 96)": (base.replace(scale_start=96), [style_a], None),
    }
    tiles, labels = [content, style_a, style_b], ["content", "style", "style 2"]
    for label, (config, styles, masks) in runs.items():
        print(label, flush=True)
        tiles.append(stylize(content, styles, config, masks=masks, model=model).image)
        labels.append(label)
    save_image(contact_sheet(tiles, labels, columns=5), args.output)


if __name__ == "__main__":
    main()
