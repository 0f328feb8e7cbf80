"""Procedural sample images, so a fresh install can be tried without any image at hand."""

from __future__ import annotations

import numpy as np


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return y / height, x / width


def sample_content(height: int = 384, width: int = 512) -> np.ndarray:
    """A simple landscape: sky gradient, sun, two hills and a house. Float (H, W, 3) in [0, 1]."""
    y, x = _grid(height, width)
    sky = np.stack([0.35 + 0.4 * y, 0.55 + 0.3 * y, 0.95 - 0.1 * y], axis=-1)
    image = sky
    sun = (x - 0.78) ** 2 + ((y - 0.2) * height / width) ** 2 < 0.006
    image[sun] = (1.0, 0.85, 0.3)
    far_hill = y > 0.62 - 0.12 * np.exp(-(((x - 0.3) / 0.25) ** 2))
    image[far_hill] = (0.3, 0.55, 0.35)
    near_hill = y > 0.78 - 0.1 * np.cos(2.5 * x)
    image[near_hill] = (0.2, 0.45, 0.15)
    wall = (np.abs(x - 0.55) < 0.09) & (y > 0.55) & (y < 0.75)
    image[wall] = (0.85, 0.8, 0.7)
    roof = (y > 0.42) & (y <= 0.55) & (np.abs(x - 0.55) < 0.11 * (y - 0.42) / 0.13)
    image[roof] = (0.6, 0.15, 0.1)
    door = (np.abs(x - 0.55) < 0.02) & (y > 0.66) & (y < 0.75)
    image[door] = (0.3, 0.2, 0.1)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def sample_style(height: int = 384, width: int = 512, seed: int = 0) -> np.ndarray:
    """Swirling brush-stroke bands in blues and yellows, a stand-in for a painting."""
    y, x = _grid(height, width)
    rng = np.random.default_rng(seed)
    phase = np.zeros_like(x)
    for _ in range(6):
        cx, cy, k = rng.random(), rng.random(), rng.uniform(8, 20)
        r = np.hypot(x - cx, (y - cy) * height / width)
        phase += np.sin(k * r + 6 * np.arctan2(y - cy, x - cx) / (1 + 8 * r))
    strokes = 0.5 + 0.5 * np.sin(3 * phase + 40 * x * np.sin(5 * y))
    blue, yellow = np.array([0.1, 0.2, 0.55]), np.array([0.95, 0.8, 0.25])
    image = blue + strokes[..., None] ** 2 * (yellow - blue)
    image += 0.05 * rng.standard_normal((height, width, 1))
    return np.clip(image, 0.0, 1.0).astype(np.float32)
