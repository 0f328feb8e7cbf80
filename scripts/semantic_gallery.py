"""Build one picture from ``benchmarks/semantic.py``'s outputs and real pairs, a row each.

    python scripts/semantic_gallery.py out/semantic docs/semantic.jpg [--height 176]

One row per composite folder (``portrait_landscape``, ``landscape_portrait``) holding
``photo.png``, ``painting.png``, ``semantic2_regions.png``, ``plain.png`` and ``semantic2.png``,
then one per real pair folder (``pairs/portrait``, ``pairs/landscape``: the ``jnst stylize`` runs
``plain.png`` and ``semantic2.png`` with ``--semantic 2``, whose photo and painting are read from
``../shared/images``); every cell the same height, a title over each column and the row's name
at the left. Saved as JPEG (quality 82).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PAD = 8
COLUMNS = {
    "photo.png": "photo",
    "painting.png": "painting",
    "semantic2_regions.png": "regions (--semantic 2)",
    "plain.png": "plain (default)",
    "semantic2.png": "--semantic 2",
}
IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
# Row folder -> its label and, for a real pair, the photo and the painting in IMAGES.
ROWS = {
    "portrait_landscape": ("portrait|landscape", None),
    "landscape_portrait": ("landscape|portrait", None),
    "pairs/portrait": ("portrait", ("astronaut.png", "picasso_selfport1907.jpg")),
    "pairs/landscape": ("landscape", ("golden_gate.jpg", "shipwreck.jpg")),
}


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at ``size`` px where Pillow supports sizes, else its bitmap."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def gallery(folder: Path, height: int) -> Image.Image:
    """The picture: a header of column titles, then a row of same-height cells per composite."""
    rows = [r for r in ROWS if (folder / r / "semantic2.png").exists()]
    if not rows:
        raise SystemExit(f"{folder}: no folders {', '.join(ROWS)} with outputs (run benchmarks/semantic.py first)")

    def cell(row: str, name: str) -> Image.Image:
        pair = ROWS[row][1]
        if pair and name in ("photo.png", "painting.png"):
            return Image.open(IMAGES / pair[name == "painting.png"]).convert("RGB")
        return Image.open(folder / row / name).convert("RGB")

    cells = [[cell(r, name) for name in COLUMNS] for r in rows]
    cells = [[c.resize((round(c.width * height / c.height), height), Image.LANCZOS) for c in row] for row in cells]
    widths = [max(row[i].width for row in cells) for i in range(len(COLUMNS))]
    text = font(max(12, height // 10))
    label = max(text.getbbox(ROWS[r][0])[2] for r in rows) + PAD
    header = max(text.getbbox(t)[3] for t in COLUMNS.values()) + PAD
    size = (label + sum(widths) + PAD * (len(widths) + 1), header + PAD + len(rows) * (height + PAD))
    sheet = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(sheet)
    x = label + PAD
    for title, width in zip(COLUMNS.values(), widths, strict=True):
        draw.text((x + width // 2, PAD // 2), title, fill="black", font=text, anchor="ma")
        x += width + PAD
    for i, (row, name) in enumerate(zip(cells, rows, strict=True)):
        y = header + PAD + i * (height + PAD)
        draw.text((PAD // 2, y + height // 2), ROWS[name][0], fill="black", font=text, anchor="lm")
        x = label + PAD
        for cell, width in zip(row, widths, strict=True):
            sheet.paste(cell, (x + (width - cell.width) // 2, y))
            x += width + PAD
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="benchmarks/semantic.py's --out folder, e.g. out/semantic")
    parser.add_argument("output", type=Path, help="the picture (.jpg)")
    parser.add_argument("--height", type=int, default=176, help="cell height in pixels")
    parser.add_argument("--quality", type=int, default=82, help="JPEG quality")
    args = parser.parse_args(argv)
    picture = gallery(args.folder, args.height)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.output, quality=args.quality, optimize=True)
    print(f"wrote {args.output} ({picture.width}x{picture.height})")


if __name__ == "__main__":
    main()
