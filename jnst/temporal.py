"""The temporal loss of a video frame (Ruder et al. 2016): keep the pixels where earlier
stylized frames, warped along the optical flow onto this one, can be trusted.

It rides in :class:`jnst.targets.Targets` (``temporal``) as arrays, weight included, so every
frame of a clip runs one compiled program; a still has no temporal term (``()``) and compiles
and computes exactly as before.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class Temporal(NamedTuple):
    """Earlier outputs warped onto this frame and where to keep them.

    ``images``: (K, H, W, 3), the K earlier stylized frames warped along the flow (the previous
    one first). ``masks``: (K, H, W, 1) in [0, 1], each pixel's weight per earlier frame (0
    where the flow is unreliable; exclusive across frames for long-term consistency; all 0 for
    frames before the clip began). ``weight``: the term's weight, a scalar array.
    """

    images: Array
    masks: Array
    weight: Array

    @classmethod
    def of(cls, images: np.ndarray, masks: np.ndarray, weight: float) -> Temporal:
        """From host arrays: ``images`` (K, H, W, 3) and ``masks`` (K, H, W)."""
        return cls(
            jnp.asarray(images, jnp.float32),
            jnp.asarray(np.asarray(masks, np.float32)[..., None]),
            jnp.asarray(weight, jnp.float32),
        )

    def at(self, hw: tuple[int, int]) -> Temporal:
        """This term at a pass of size ``hw`` (resized; unchanged at the frame's own size)."""
        if tuple(self.images.shape[1:3]) == tuple(hw):
            return self
        from jnst.schedule import resize  # not at the top: schedule -> loop -> objective -> here

        return Temporal(resize(self.images, hw), jnp.clip(resize(self.masks, hw), 0.0, 1.0), self.weight)


def temporal_loss(image: Array, temporal: Temporal) -> Array:
    """``weight * sum_k sum_px masks_k (image - images_k)^2 / D`` for ``image`` (1, H, W, 3),
    D its number of values (Ruder et al.'s normalisation), pixels in [0, 1]."""
    squared = temporal.masks * jnp.square(image.astype(jnp.float32) - temporal.images)
    return temporal.weight * jnp.sum(squared) / image.size
