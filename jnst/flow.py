"""Optical flow between video frames, warping along it, and where it can be trusted.

Pure functions of numpy arrays on the host (OpenCV, from the ``video`` extra, imported when a
flow is first computed). A flow ``f`` of frame ``a`` towards frame ``b`` is (H, W, 2) float32,
``(dx, dy)`` per pixel of ``a``: ``a[y, x]`` shows what ``b[y + dy, x + dx]`` shows (OpenCV's
convention), so :func:`warp` of ``b`` along ``f`` lines ``b`` up with ``a``.

:func:`reliable` is the forward-backward check of Sundaram et al. (2010) as Ruder et al. (2016)
use it: a pixel is trusted where the flow there and the reverse flow at its destination cancel,
away from motion boundaries and from destinations outside the frame. :func:`long_term_masks`
splits those masks over several earlier frames so that each pixel is pulled towards the most
recent one that sees it (Ruder et al.'s long-term consistency).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METHODS = ("dis", "farneback")


def _cv2():
    """OpenCV, or one line saying how to install it."""
    try:
        import cv2
    except ImportError as err:
        raise ImportError(f'optical flow needs OpenCV: pip install "jnst[video]" ({err})') from None
    return cv2


def gray(frame: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luma of an RGB frame (uint8, or float in [0, 1])."""
    rgb = np.asarray(frame)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return _cv2().cvtColor(np.ascontiguousarray(rgb), _cv2().COLOR_RGB2GRAY)


def flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """The flow of RGB frame ``a`` towards frame ``b`` (see the module's convention), by OpenCV's
    DIS (dense inverse search, medium preset) or Farneback's polynomial expansion."""
    cv2 = _cv2()
    ga, gb = gray(a), gray(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        out = dis.calc(ga, gb, None)
    elif method == "farneback":
        out = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 3, 5, 1.2, 0)
    else:
        raise ValueError(f"flow method must be one of {', '.join(METHODS)}, got {method!r}")
    return np.asarray(out, np.float32)


def _grid(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0 : hw[0], 0 : hw[1]].astype(np.float32)
    return xs, ys


def warp(image: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) sampled at each pixel plus the flow ``f``, bilinearly (borders
    replicated: :func:`reliable` marks pixels whose source is outside the frame)."""
    cv2 = _cv2()
    xs, ys = _grid(f.shape[:2])
    src = np.ascontiguousarray(image, np.float32)
    out = cv2.remap(src, xs + f[..., 0], ys + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def reliable(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) float32 1 where ``backward`` (this frame towards the earlier one) can be trusted,
    0 where not: where ``forward`` (the earlier frame towards this one) at the destination does
    not undo it (disocclusions), at motion boundaries, and where the destination is outside.

    The thresholds are Sundaram et al.'s (2010), in pixels.
    """
    h, w = backward.shape[:2]
    xs, ys = _grid((h, w))
    undone = warp(forward, backward)
    mismatch = np.sum((backward + undone) ** 2, axis=-1)
    scale = np.sum(backward**2, axis=-1) + np.sum(undone**2, axis=-1)
    occluded = mismatch > 0.01 * scale + 0.5
    du = np.gradient(backward[..., 0])
    dv = np.gradient(backward[..., 1])
    edge = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2 > 0.01 * np.sum(backward**2, axis=-1) + 0.002
    tx, ty = xs + backward[..., 0], ys + backward[..., 1]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    return (~(occluded | edge | outside)).astype(np.float32)


def long_term_masks(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Masks of earlier frames, the most recent first, made exclusive: each pixel keeps its
    weight only for the most recent frame that sees it, ``max(c_j - sum_{k<j} c_k, 0)``
    (Ruder et al. 2016, eq. 6). Returns (K, H, W) float32."""
    out, seen = [], None
    for m in masks:
        m = np.asarray(m, np.float32)
        out.append(m if seen is None else np.maximum(m - seen, 0.0))
        seen = m if seen is None else seen + m
    return np.stack(out)


def endpoint_error(f: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between flow ``f`` and the true flow, over ``mask`` when given."""
    err = np.sqrt(np.sum((f - truth) ** 2, axis=-1))
    return float(err.mean() if mask is None else err[mask > 0].mean())
