"""The public API: paint a content image in the style of one or more style images.

A short orchestration of the pipeline's modules: the passes and their steps (:mod:`jnst.schedule`),
the targets of each pass (:mod:`jnst.targets`), compiled chunks of optimiser steps
(:mod:`jnst.loop`) over the objective (:mod:`jnst.objective`), and the images the user sees.
Each chunk length compiles once per image shape and :meth:`StyleConfig.compiled_part`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jnst import color
from jnst.config import StyleConfig
from jnst.images import fit_long_side
from jnst.loop import LoopState, default_chunk_size, run_chunk, segments
from jnst.objective import Weights
from jnst.schedule import next_pass, resize, steps_per_pass
from jnst.targets import compute_targets
from jnst.vgg import Model, min_side

Array = jax.Array


@dataclass(frozen=True)
class StyleResult:
    """Output of :func:`stylize`.

    Attributes:
      image: the stylized image, float32 (H, W, 3) RGB in [0, 1].
      losses: per-step ``total``, ``content``, ``style`` and ``tv`` terms (weighted), each
        float32 (steps,), evaluated at the image each step started from.
      snapshots: ``(step, image)`` pairs every ``config.snapshot_every`` steps (step 0 is the
        initial image), ending with the final image.
      pass_steps: the steps run in each pass, coarse to fine (they sum to ``config.total_steps``).
    """

    image: np.ndarray
    losses: dict[str, np.ndarray]
    snapshots: tuple[tuple[int, np.ndarray], ...] = ()
    pass_steps: tuple[int, ...] = ()


def initial_image(content: Array, config: StyleConfig, key: Array) -> Array:
    """The starting pixels: the content image, uniform noise, or content plus noise (clipped)."""
    if config.init == "content":
        return content
    noise = jax.random.uniform(key, content.shape, content.dtype)
    if config.init == "noise":
        return noise
    return jnp.clip(content + config.init_noise * (2.0 * noise - 1.0), 0.0, 1.0)


def _as_batch(image: np.ndarray | Array, what: str) -> Array:
    image = jnp.asarray(image, jnp.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{what} image must be (H, W, 3) RGB, got shape {image.shape}")
    return image[None]


def _scaled(hw: tuple[int, int], factor: float) -> tuple[int, int]:
    return fit_long_side(hw, max(1, round(factor * max(hw))))


def _prepare_colors(content: Array, styles: list[Array], mode: str) -> tuple[Array, list[Array]]:
    """Inputs as the optimisation sees them under the colour-preservation ``mode``."""
    if mode == "luminance":
        c = np.asarray(content[0])
        return jnp.asarray(color.luminance_image(c))[None], [
            jnp.asarray(color.match_luminance(np.asarray(s[0]), c))[None] for s in styles
        ]
    if mode == "match":
        c = np.asarray(content[0])
        return content, [jnp.asarray(color.match_colors(np.asarray(s[0]), c))[None] for s in styles]
    return content, styles


def pass_plan(
    content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]], config: StyleConfig, chunk: int = 1
) -> tuple[list[int], list[int]]:
    """The long side and the steps of every pass, coarse to fine, for these image sizes.

    Passes too small for the layers (content or any style below ``vgg.min_side``) are dropped;
    steps are shared in whole ``chunk``s where they allow (see :func:`steps_per_pass`).
    """
    smallest = min_side(config.layers)

    def big_enough(side: int) -> bool:
        factor = side / max(content_hw)
        return all(min(_scaled(hw, factor)) >= smallest for hw in [content_hw, *style_hws])

    sides = [side for side in config.pyramid(max(content_hw)) if big_enough(side)]
    sides = sides[-config.steps :] if config.steps else sides  # no pass without a step
    return sides, steps_per_pass(config.total_steps(len(sides)), len(sides), config.ratio(len(sides)), chunk)


def stylize(
    content: np.ndarray | Array,
    style: np.ndarray | Array | Sequence[np.ndarray | Array],
    config: StyleConfig | None = None,
    *,
    masks: np.ndarray | None = None,
    init_image: np.ndarray | Array | None = None,
    model: Model | None = None,
    callback: Callable[[int, dict[str, np.ndarray], Array], None] | None = None,
) -> StyleResult:
    """Paint ``content`` in the style of ``style`` (float (H, W, 3) RGB in [0, 1]).

    ``style`` may be a list of style images, blended by ``config.style_blend``; with ``masks``
    (S, H, W) in [0, 1], one per style and the content's size, style s goes where its mask is
    (guided Gram matrices) with the mask value as strength. ``init_image`` (H, W, 3), the
    content's size, is the starting image instead of ``config.init``. ``model`` defaults to
    VGG19 with the shipped ImageNet weights and ``config.pooling``; pass one to reuse it across
    calls. ``callback(step, chunk_losses, image)`` runs on the host after each compiled chunk
    (for progress bars and snapshots) with the steps done so far, that chunk's per-step loss
    terms and the current image as the result would show it: (H, W, 3) numpy, full size,
    colours restored.
    """
    config = StyleConfig() if config is None else config
    content_b = _as_batch(content, "content")
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    styles_b = [_as_batch(s, "style") for s in styles]
    full_hw = tuple(content_b.shape[1:3])
    if masks is not None:
        masks = np.asarray(masks, np.float32)
        if masks.shape != (len(styles), *full_hw):
            raise ValueError(f"masks must be (styles, H, W) = {(len(styles), *full_hw)}, got {masks.shape}")
    if init_image is not None:
        init_image = _as_batch(init_image, "init")
        if init_image.shape[1:3] != full_hw:
            raise ValueError(f"init image must be the content's size {full_hw}, got {init_image.shape[1:3]}")
    smallest = min_side(config.layers)
    for what, image in [("content", content_b), *(("style", s) for s in styles_b)]:
        if min(image.shape[1:3]) < smallest:
            raise ValueError(
                f"{what} image is {image.shape[2]}x{image.shape[1]}; its layers need at least {smallest} px a side"
            )
    model = Model.create(pooling=config.pooling) if model is None else model
    compiled = config.compiled_part()
    weights = Weights.of(config, max(full_hw))
    backend = jax.default_backend()
    chunk = config.chunk_size or default_chunk_size(backend, full_hw[0] * full_hw[1])
    work_content, work_styles = _prepare_colors(content_b, styles_b, config.color)

    def finish(image: Array) -> np.ndarray:
        """A pass's image as the user sees it: full size, colours restored."""
        out = np.asarray(resize(image, full_hw)[0])
        return color.restore_chroma(out, np.asarray(content_b[0])) if config.color == "luminance" else out

    sides, pass_steps = pass_plan(full_hw, [s.shape[1:3] for s in styles_b], config, chunk)
    history: list[dict[str, Array]] = []
    snapshots: list[tuple[int, np.ndarray]] = []
    step, state = 0, None
    for side, steps in zip(sides, pass_steps, strict=True):
        factor = side / max(full_hw)
        hw = fit_long_side(full_hw, side)
        pass_content = resize(work_content, hw)
        pass_styles = [resize(s, _scaled(s.shape[1:3], factor)) for s in work_styles]
        pass_masks = None if masks is None else np.asarray(resize(jnp.asarray(masks)[..., None], hw)[..., 0])
        targets = compute_targets(model, pass_content, pass_styles, config, pass_masks)
        if state is None:
            if init_image is None:
                image = initial_image(pass_content, config, jax.random.key(config.seed))
            else:
                image = resize(init_image, hw)
            state = LoopState.start(image, compiled)
            if config.snapshot_every:
                snapshots.append((0, finish(image)))
        else:
            state = next_pass(state, hw, compiled)
        for length in segments(step, steps, config.snapshot_every, chunk):
            if length == 0:
                snapshots.append((step, finish(state.average)))
                continue
            state, terms = run_chunk(
                model.graphdef, model.params, targets, weights, state, config=compiled, length=length, unroll=backend == "cpu"
            )
            history.append(terms)
            step += length
            if callback is not None:
                callback(step, {k: np.asarray(v) for k, v in terms.items()}, finish(state.average))
    losses_out = {k: np.concatenate([np.asarray(h[k]) for h in history]) for k in history[0]}
    final = finish(state.average)
    if config.snapshot_every and snapshots[-1][0] != step:
        snapshots.append((step, final))
    return StyleResult(final, losses_out, tuple(snapshots), tuple(pass_steps))
