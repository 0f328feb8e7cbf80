"""``jnst stylize``'s regions: the mask flags (photo side, style side) and ``--semantic``, checked
before anything loads, turned into :class:`jnst.masks.GuidedMasks`, and ``OUT_regions.png``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from jnst import images
from jnst.cli.common import UsageError

if TYPE_CHECKING:
    import numpy as np

    from jnst.config import StyleConfig
    from jnst.vgg import Model


def semantic_count(text: str) -> int:
    """``--semantic N|auto``: N regions (at least 1), or 0 for auto."""
    if text == "auto":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of regions or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs at least 1 region, got {value}")
    return value


def mask_files(args: argparse.Namespace, styles: int, cfg: StyleConfig) -> list[Path]:
    """The mask files the flags name, once their combination is known to make sense (one line,
    exit 2, otherwise): the photo's masks or map, the style side's, or ``--semantic`` alone."""
    style_side = list(args.style_masks or []) + list(args.style_mask_map or [])
    given = args.masks or args.mask_map or style_side
    if args.semantic is not None and given:
        raise UsageError("--semantic finds the regions itself: give it without --masks, --mask-map or style masks")
    if (given or args.semantic is not None) and cfg.style_loss != "gram":
        raise UsageError("regions (masks, --semantic) need the Gram style loss: leave out --style-loss wasserstein")
    if args.masks and args.mask_map:
        raise UsageError("give --masks or --mask-map, not both")
    if args.style_masks and not args.masks:
        raise UsageError("--style-masks go with --masks (one photo mask a region)")
    if args.style_mask_map and not args.mask_map:
        raise UsageError("--style-mask-map goes with --mask-map (the photo's map)")
    if args.style_mask_map and len(args.style_mask_map) != styles:
        raise UsageError(f"--style-mask-map has {len(args.style_mask_map)} maps for {styles} style images")
    if args.masks and not args.style_masks and len(args.masks) != styles:
        raise UsageError(f"--masks has {len(args.masks)} files for {styles} style images")
    if args.style_masks:
        from jnst.masks import style_of_files

        try:
            style_of_files(len(args.style_masks), len(args.masks), styles)
        except ValueError as err:
            raise UsageError(f"--style-masks: {err}") from None
    return [*(args.masks or []), *([args.mask_map] if args.mask_map else []), *style_side]


def masks_for(args: argparse.Namespace, model: Model, content: np.ndarray, styles: list[np.ndarray], cfg: StyleConfig):
    """The run's masks from the flags (None without any) and, with ``--semantic``, the regions
    found (:class:`jnst.semantic.Regions`); one line, exit 2, for masks that do not fit."""
    import numpy as np

    from jnst import masks as masks_lib
    from jnst import semantic

    hw = content.shape[:2]
    try:
        if args.semantic is not None:
            check_count(args.semantic, hw, cfg)
            found = semantic.regions(content, styles, args.semantic, model=model)
            return found.masks, found
        if args.style_masks:
            which = masks_lib.style_of_files(len(args.style_masks), len(args.masks), len(styles))
            files = zip(args.style_masks, which, strict=True)
            loaded = [images.load_masks([p], styles[s].shape[:2])[0] for p, s in files]
            r = len(args.masks)
            per_style = tuple(np.stack(loaded[s * r : (s + 1) * r]) for s in range(len(styles)))
            return masks_lib.check(masks_lib.GuidedMasks(images.load_masks(args.masks, hw), per_style), hw,
                                   [s.shape[:2] for s in styles]), None  # fmt: skip
        if args.style_mask_map:
            photo = images.load_label_map(args.mask_map, hw)
            maps = [images.load_label_map(p, s.shape[:2]) for p, s in zip(args.style_mask_map, styles, strict=True)]
            return masks_lib.from_labels(photo, maps), None
        if args.masks:
            return images.load_masks(args.masks, hw), None
        if args.mask_map:
            return images.load_mask_map(args.mask_map, hw, len(styles)), None
    except ValueError as err:
        raise UsageError(str(err)) from None
    return None, None


def check_count(n: int, hw: tuple[int, int], cfg: StyleConfig) -> None:
    """Refuse more regions than the photo has positions at its deepest style layer."""
    from jnst.vgg import stride

    deepest = max((name for name, _ in cfg.style_layers), key=stride)
    positions = (hw[0] // stride(deepest)) * (hw[1] // stride(deepest))
    if n > positions:
        raise ValueError(f"--semantic {n}: more regions than the photo's {positions} positions at {deepest}")


def regions_path(output: Path) -> Path:
    """``OUT_regions.png`` beside ``OUT.png``."""
    return output.with_name(f"{output.stem}_regions.png")


def write_regions(output: Path, content: np.ndarray, styles: list[np.ndarray], found) -> Path:
    """Write the photo and paintings with their matched regions beside ``output``; its path."""
    from jnst import semantic

    path = regions_path(output)
    images.save_image(semantic.regions_image(content, styles, found), path)
    return path
