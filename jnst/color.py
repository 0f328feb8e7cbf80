"""Colour preservation (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").

Two known ways to keep the content photo's colours:

* luminance-only transfer: stylize the luminance (Y of YIQ) alone, with the style's luminance
  matched to the content's mean and spread, then put the content's chroma (I, Q) back;
* colour matching: before transfer, map the style image's colours linearly so that their mean
  and covariance equal the content's.

All functions take and return float (H, W, 3) RGB arrays in [0, 1].
"""

from __future__ import annotations

import numpy as np

# NTSC RGB -> YIQ; rows give Y, I, Q.
RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], np.float32
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ).astype(np.float32)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """Y (luminance) and I, Q (chroma) channels of an RGB image."""
    return np.asarray(image, np.float32) @ RGB_TO_YIQ.T


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    """RGB from YIQ; not clipped."""
    return np.asarray(image, np.float32) @ YIQ_TO_RGB.T


def luminance_image(image: np.ndarray) -> np.ndarray:
    """The luminance repeated in three channels: what VGG19 sees in luminance-only transfer."""
    y = rgb_to_yiq(image)[..., :1]
    return np.repeat(np.clip(y, 0.0, 1.0), 3, axis=-1)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's luminance image, shifted and scaled to the content luminance's mean and std."""
    ys, yc = rgb_to_yiq(style)[..., 0], rgb_to_yiq(content)[..., 0]
    y = (ys - ys.mean()) * (yc.std() / max(float(ys.std()), 1e-6)) + yc.mean()
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1)


def restore_chroma(luminance: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Combine a result's luminance (mean of its channels) with the content's I and Q."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = np.asarray(luminance, np.float32).mean(axis=-1)
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0)


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Symmetric (inverse) square root of a covariance matrix, regularised to stay invertible."""
    values, vectors = np.linalg.eigh(cov + 1e-5 * np.eye(len(cov)))
    values = np.maximum(values, 1e-8) ** (-0.5 if inverse else 0.5)
    return (vectors * values) @ vectors.T


def match_colors(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Style pixels mapped by ``x -> A (x - mu_s) + mu_c`` with ``A = C_c^1/2 C_s^-1/2``.

    Afterwards the style's colour mean and covariance equal the content's (up to clipping).
    """
    s = np.asarray(style, np.float64).reshape(-1, 3)
    c = np.asarray(content, np.float64).reshape(-1, 3)
    mu_s, mu_c = s.mean(0), c.mean(0)
    a = _sqrtm(np.cov(c, rowvar=False, bias=True)) @ _sqrtm(np.cov(s, rowvar=False, bias=True), inverse=True)
    out = (s - mu_s) @ a.T + mu_c
    return np.clip(out, 0.0, 1.0).reshape(style.shape).astype(np.float32)
