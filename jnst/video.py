"""Video: a clip stylized frame by frame without flicker (Ruder et al. 2016).

Each frame's optimisation lands in a texture of its own, so frames stylized one by one flicker.
Here the first frame is painted as a still is (the config's coarse-to-fine run); every later one
starts from the previous output warped along the optical flow (:mod:`jnst.flow`; the content
where the flow cannot be trusted) and runs ``frame_steps`` steps at full size with a temporal
loss (:mod:`jnst.temporal`) that keeps the warped pixels where the flow is reliable, from the
``long_term`` most recent outputs. Every frame after the first runs the same compiled programs:
the warped images, masks and weight are arrays, never constants.

Outputs are rounded to 8 bits before the next frame reads them, so that a run resumed from the
frames it wrote (``done``) continues exactly as the uninterrupted run would. Masks (a still's
``masks``, or :func:`jnst.semantic.regions`' found on the first frame) follow the motion: each
frame's content masks are the previous frame's warped along the flow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from jnst import flow, images
from jnst.config import StyleConfig
from jnst.masks import GuidedMasks
from jnst.stylize import stylize
from jnst.temporal import Temporal
from jnst.vgg import Model


@dataclass(frozen=True)
class VideoConfig:
    """How the frames after the first are made.

    Attributes:
      frame_steps: optimiser steps for each frame after the first, at full size (it starts
        close: the previous output, warped).
      temporal_weight: the temporal loss's weight relative to the first frame's: a mean squared
        pixel difference (pixels in [0, 1]) from the warped outputs costs this many times the
        first frame's final loss, so one value holds across sizes, styles and weights.
      long_term: how many earlier outputs the temporal loss pulls towards (1: the previous one;
        more: Ruder et al.'s long-term consistency, each pixel towards the most recent that sees it).
      flow: optical flow method, ``"dis"`` or ``"farneback"`` (:func:`jnst.flow.flow`).
    """

    frame_steps: int = 24
    temporal_weight: float = 300.0
    long_term: int = 1
    flow: str = "dis"

    def __post_init__(self) -> None:
        if self.frame_steps < 1 or self.long_term < 1:
            raise ValueError("frame_steps and long_term must be positive")
        if self.temporal_weight < 0:
            raise ValueError(f"temporal_weight must be >= 0, got {self.temporal_weight}")
        if self.flow not in flow.METHODS:
            raise ValueError(f"flow must be one of {', '.join(flow.METHODS)}, got {self.flow!r}")


def frame_config(config: StyleConfig, video: VideoConfig) -> StyleConfig:
    """The still's config for a frame after the first: ``frame_steps`` steps in one pass at full
    size, no snapshots."""
    return config.replace(steps=video.frame_steps, scales=(), scale_start=0, snapshot_every=0)


def _unit(frame: np.ndarray) -> np.ndarray:
    """A frame as float32 in [0, 1] (uint8 frames divided by 255)."""
    frame = np.asarray(frame)
    return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)


def _masks_along(masks: GuidedMasks | np.ndarray | None, backward: np.ndarray):
    """Content-side masks of the previous frame moved onto this one along ``backward``."""
    if masks is None:
        return None
    if isinstance(masks, GuidedMasks):
        return masks._replace(content=_masks_along(masks.content, backward))
    moved = flow.warp(np.moveaxis(np.asarray(masks, np.float32), 0, -1), backward)
    return np.clip(np.moveaxis(moved.reshape(*backward.shape[:2], -1), -1, 0), 0.0, 1.0)


class Frame(NamedTuple):
    """One output of :func:`stylize_video`: frame ``index``'s ``image`` (float32 (H, W, 3),
    rounded to 8 bits), its run's per-step ``losses``, and ``loss_scale``, the first frame's final
    loss that the temporal weight is relative to (give it back to resume a run)."""

    index: int
    image: np.ndarray
    losses: dict[str, np.ndarray]
    loss_scale: float


def temporal_term(contents: Sequence[np.ndarray], outputs: Sequence[np.ndarray], t: int, weight: float,
                  video: VideoConfig):  # fmt: skip
    """Frame ``t``'s temporal term and its starting image (``contents``: the clip's frames, uint8
    or float): the ``long_term`` most recent outputs warped onto it, with exclusive reliability
    masks (frames before the clip: masks of 0), and the previous output warped, the content
    where its flow is unreliable.

    Returns ``(Temporal, init, backward)``, ``backward`` the flow of frame t towards frame t-1.
    """
    here = _unit(contents[t])
    warped, reliable, backward = [], [], None
    for j in range(1, video.long_term + 1):
        if t - j < 0:
            warped.append(np.zeros_like(here))
            reliable.append(np.zeros(here.shape[:2], np.float32))
            continue
        back = flow.flow(here, contents[t - j], video.flow)
        fwd = flow.flow(contents[t - j], here, video.flow)
        backward = back if j == 1 else backward
        warped.append(flow.warp(outputs[t - j], back))
        reliable.append(flow.reliable(back, fwd))
    masks = flow.long_term_masks(reliable)
    init = reliable[0][..., None] * warped[0] + (1.0 - reliable[0][..., None]) * here
    return Temporal.of(np.stack(warped), masks, weight), init, backward


def stylize_video(
    frames: Sequence[np.ndarray],
    style: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    video: VideoConfig | None = None,
    *,
    masks: np.ndarray | GuidedMasks | None = None,
    model: Model | None = None,
    done: Sequence[np.ndarray] = (),
    loss_scale: float | None = None,
    callback: Callable[[int, int, dict[str, np.ndarray]], None] | None = None,
) -> Iterator[Frame]:
    """Stylize ``frames`` ((H, W, 3) RGB, uint8 or float in [0, 1]) one after another, yielding
    each output as a :class:`Frame` as it is made.

    ``done``: outputs already made for the first ``len(done)`` frames, and ``loss_scale`` the
    :class:`Frame`'s of that run (a resumed run; they are not redone). ``masks`` as for
    :func:`jnst.stylize`, for the first frame (they follow the motion).
    ``callback(frame, step, chunk_losses)`` runs after each compiled chunk.
    """
    config, video = config or StyleConfig(), video or VideoConfig()
    model = Model.create(pooling=config.pooling) if model is None else model
    later = frame_config(config, video)
    outputs = [_unit(f) for f in done]
    if outputs and loss_scale is None:
        raise ValueError("a resumed clip (done) needs the loss_scale its first frame gave")
    for t in range(1, len(outputs)):  # resumed: the masks where the last frame done had them
        masks = _masks_along(masks, flow.flow(frames[t], frames[t - 1], video.flow))
    for t in range(len(outputs), len(frames)):  # each frame made float only when its turn comes
        on_chunk = None if callback is None else (lambda step, terms, _image, t=t: callback(t, step, terms))
        if t == 0:
            result = stylize(_unit(frames[0]), style, config, masks=masks, model=model, callback=on_chunk)
            loss_scale = float(result.losses["total"][-1])
        else:
            weight = video.temporal_weight * loss_scale
            temporal, init, backward = temporal_term(frames, outputs, t, weight, video)
            masks = _masks_along(masks, backward)
            result = stylize(_unit(frames[t]), style, later, masks=masks, model=model, init_image=init,
                             temporal=temporal, callback=on_chunk)  # fmt: skip
        # As 8 bits store it, what a written frame reads back as: a resumed clip sees the same.
        outputs.append(images.to_uint8(result.image).astype(np.float32) / 255.0)
        yield Frame(t, outputs[-1], result.losses, loss_scale)
