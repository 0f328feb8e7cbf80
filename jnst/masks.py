"""Guided masks on both sides: region r of the photo takes the Gram statistics of region r of
the style images (Gatys et al. 2017, "Controlling perceptual factors").

A region is a soft mask on the photo, ``content[r]`` (H, W) in [0, 1], and a soft mask on each
style image, ``style[s][r]`` (Hs, Ws): its target Gram is the mask-weighted Gram of every style
image together, ``sum_s sum_p m_sr(p)^2 F_p F_p^T / sum_s sum_p m_sr(p)^2``, so a region may
come from any style image, or from several. The content-side masks of old (one per style image,
the whole of style s for region s) are the case ``style[s][r] = (s == r)``: ``style=None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class GuidedMasks(NamedTuple):
    """Masks of R regions: ``content`` (R, H, W) on the photo, ``style`` one (R, Hs, Ws) per style
    image (its own size), or None for one region per style image, the whole of it."""

    content: np.ndarray
    style: tuple[np.ndarray, ...] | None = None


def check(
    masks: GuidedMasks | np.ndarray | None, hw: tuple[int, int], style_hws: Sequence[tuple[int, int]]
) -> GuidedMasks | None:
    """``masks`` as float32 :class:`GuidedMasks` checked against the photo's ``hw`` and the style
    images' sizes, or one line saying what is wrong (a count or size that does not fit, values
    outside [0, 1], a region with no style pixels). A bare array is content-side masks, one per
    style image."""
    if masks is None:
        return None
    if not isinstance(masks, GuidedMasks):
        masks = GuidedMasks(np.asarray(masks))
    content = np.asarray(masks.content, np.float32)
    if masks.style is None:
        if content.shape != (len(style_hws), *hw):
            raise ValueError(f"masks must be (styles, H, W) = {(len(style_hws), *hw)}, got {content.shape}")
        _in_unit(content, "masks")
        return GuidedMasks(content)
    if content.ndim != 3 or content.shape[1:] != tuple(hw) or content.shape[0] < 1:
        raise ValueError(f"content masks must be (regions, H, W) with (H, W) = {tuple(hw)}, got {content.shape}")
    regions = content.shape[0]
    if len(masks.style) != len(style_hws):
        raise ValueError(f"{len(masks.style)} style mask sets for {len(style_hws)} style images: give one per style")
    style = tuple(np.asarray(m, np.float32) for m in masks.style)
    for i, (m, shw) in enumerate(zip(style, style_hws, strict=True), 1):
        if m.shape != (regions, *shw):
            raise ValueError(f"style {i}'s masks must be (regions, H, W) = {(regions, *shw)}, got {m.shape}")
    _in_unit(content, "content masks")
    for m in style:
        _in_unit(m, "style masks")
    empty = [r + 1 for r in range(regions) if not any(m[r].max() > 0 for m in style)]
    if empty:
        raise ValueError(f"region {empty[0]} has no pixels in any style image's mask: its style is undefined")
    return GuidedMasks(content, style)


def _in_unit(masks: np.ndarray, what: str) -> None:
    if not np.isfinite(masks).all() or masks.min() < 0 or masks.max() > 1:
        raise ValueError(f"{what} must hold values in [0, 1]")


def from_labels(content: np.ndarray, styles: Sequence[np.ndarray]) -> GuidedMasks:
    """Masks from label maps (one flat colour a region, :func:`jnst.images.load_mask_map`'s kind):
    ``content`` (H, W, 3) and one (Hs, Ws, 3) per style image. A colour of the photo's map is a
    region; it takes the statistics of wherever that colour is in the style maps (colours only
    the style maps have are left out), or one line naming a colour no style map has."""
    colours = np.unique(content.reshape(-1, 3), axis=0)
    masks = GuidedMasks(
        np.stack([np.all(content == c, axis=-1) for c in colours]).astype(np.float32),
        tuple(np.stack([np.all(s == c, axis=-1) for c in colours]).astype(np.float32) for s in styles),
    )
    for c, r in zip(colours, range(len(colours)), strict=True):
        if not any(m[r].any() for m in masks.style):
            raise ValueError(f"colour #{c[0]:02x}{c[1]:02x}{c[2]:02x} of the mask map is in no style mask map")
    return masks


def style_of_files(files: int, regions: int, styles: int) -> list[int]:
    """Which style image each of ``files`` style-mask files lies on: one file a region for each
    style image, style-major (the regions on style 1, then on style 2, ...; a black file: not from
    that one), or one line saying the count does not fit."""
    if files != regions * styles:
        each = "one a region" if styles == 1 else f"one a region for each of the {styles} style images"
        raise ValueError(f"{files} style masks for {regions} regions: give {each} ({regions * styles})")
    return [i // regions for i in range(files)]
