"""Build one picture from a folder of ``benchmarks/quality.py`` outputs: content, style and each tool's result.

    python scripts/gallery.py out/quality/256 docs/gallery.jpg [--height 256] [--max-width 2000]

One row per content:style pair found in the folder (file names ``CONTENT__STYLE__SYSTEM.png``),
columns: the content and style images (read from ../shared/images by those stems), pastiche's
output, jnst's default, then any other jnst run (``jnst-PRESET``). Every cell has the same
height; a column is as wide as its widest image, which is centred in it. If the picture would
be wider than ``--max-width``, the cell height shrinks to fit. Saved as JPEG (quality 88).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from jnst.images import load_image, to_uint8

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # quality.py owns the file naming and the image lookup
from quality import DEFAULT_PAIRS, IMAGES, JNST, PASTICHE, find_image, parse_output_name, parse_pairs  # noqa: E402

PAD = 8
BACKGROUND = "white"


def column_title(system: str) -> str:
    """A column header for a system name from the file names."""
    if system == PASTICHE:
        return "pastiche (default)"
    if system == JNST:
        return "jnst (default)"
    if system.startswith(f"{JNST}-"):
        return f"jnst --preset {system[len(JNST) + 1 :]}"
    return system


def collect(folder: Path, images: Path) -> tuple[list[str], list[dict[str, Path]]]:
    """Column keys and, per pair, the image path of each column (pairs in quality.py's default order)."""
    rows: dict[tuple[str, str], dict[str, Path]] = {}
    for path in sorted(folder.glob("*__*__*.png")):
        content, style, system = parse_output_name(path)
        rows.setdefault((content, style), {})[system] = path
    if not rows:
        raise SystemExit(f"{folder}: no CONTENT__STYLE__SYSTEM.png files (run benchmarks/quality.py first)")
    systems = {system for row in rows.values() for system in row}
    extra = sorted(s for s in systems if s not in (PASTICHE, JNST))
    columns = ["content", "style", *(s for s in (PASTICHE, JNST) if s in systems), *extra]
    order = {pair: i for i, pair in enumerate(parse_pairs(DEFAULT_PAIRS))}
    pairs = sorted(rows, key=lambda pair: (order.get(pair, len(order)), pair))
    for content, style in pairs:
        rows[content, style] |= {"content": find_image(content, images), "style": find_image(style, images)}
    return columns, [rows[pair] for pair in pairs]


def aspect(path: Path) -> float:
    """Width ÷ height of an image file, read from its header."""
    with Image.open(path) as img:
        return img.width / img.height


def layout(columns: list[str], rows: list[dict[str, Path]], height: int, max_width: int) -> tuple[int, list[int]]:
    """The cell height (``height``, or less to keep the picture within ``max_width``) and each column's width."""
    aspects = [[aspect(row[c]) if c in row else 0.0 for c in columns] for row in rows]
    widest = [max(a[i] for a in aspects) for i in range(len(columns))]
    room = max_width - PAD * (len(columns) + 1)
    height = min(height, int(room / sum(widest)))
    return height, [round(height * w) for w in widest]


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at ``size`` px where Pillow supports sizes (10.1+ with FreeType), else its bitmap."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def gallery(columns: list[str], rows: list[dict[str, Path]], height: int, max_width: int) -> Image.Image:
    """The picture: a header row of column titles, then one row of same-height cells per pair."""
    height, widths = layout(columns, rows, height, max_width)
    title_font = font(max(12, height // 12))
    titles = [column_title(c) for c in columns]
    header = max(title_font.getbbox(t)[3] for t in titles) + PAD
    size = (sum(widths) + PAD * (len(columns) + 1), header + PAD + len(rows) * (height + PAD))
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    x = PAD
    for title, width in zip(titles, widths, strict=True):
        draw.text((x + width // 2, PAD // 2), title, fill="black", font=title_font, anchor="ma")
        x += width + PAD
    for r, row in enumerate(rows):
        y, x = header + PAD + r * (height + PAD), PAD
        for column, width in zip(columns, widths, strict=True):
            if column in row:
                cell_width = round(height * aspect(row[column]))
                tile = to_uint8(load_image(row[column], size=(height, cell_width)))
                sheet.paste(Image.fromarray(tile), (x + (width - cell_width) // 2, y))
            x += width + PAD
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="one size folder of quality.py's outputs, e.g. out/quality/256")
    parser.add_argument("output", type=Path, help="the picture (.jpg)")
    parser.add_argument("--height", type=int, default=256, help="cell height in pixels (at most)")
    parser.add_argument("--max-width", type=int, default=2000, help="the picture's width limit in pixels")
    parser.add_argument("--quality", type=int, default=88, help="JPEG quality")
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder of the content and style images")
    args = parser.parse_args(argv)
    columns, rows = collect(args.folder, args.images)
    picture = gallery(columns, rows, args.height, args.max_width)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.output, quality=args.quality, optimize=True)
    print(f"wrote {args.output} ({picture.width}x{picture.height}, {len(rows)} pairs, columns {', '.join(columns)})")


if __name__ == "__main__":
    main()
