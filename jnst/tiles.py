"""A picture too big for memory, one tile at a time, with the whole picture's exact gradient.

The objective depends on the picture only through sums over positions: each style layer's
Gram sum ``sum_p F_p F_p^T`` and each content layer's sums of ``d^2`` and ``|d|``, ``d`` the
difference to the content's activations (total variation is local and cheap, and is computed
on the whole picture). So one step makes two sweeps over the tiles:

1. statistics: each tile's sums over its interior, added up, are the picture's sums, hence its
   loss and the loss's gradient ``g`` with respect to the sums;
2. gradient: with ``g`` fixed, each tile's ``<g, sums_tile(x)>`` is differentiated with
   respect to the pixels the tile reads, and the tiles' gradients are added where they
   overlap: by the chain rule, the picture's gradient. No seams, by construction.

The second sweep runs only blocks 1 and 2 forward again: the first kept what the deeper layers'
gradient needs (:mod:`jnst.segment`: two thirds of the forward's arithmetic, for about 140 bytes
a pixel), so a tiled step costs about 1.2 whole steps' arithmetic instead of 1.5.

A tile reads its interior plus a halo (:func:`halo`) at least as wide as the span the deepest
layer reads beyond a position (:func:`jnst.vgg.margin`: 38 px at ``block4_conv2``, the
default's deepest layer; 70 at ``block5_conv1``), so its interior's activations are the whole
picture's. Windows start on multiples of the deepest layer's stride (:func:`grid`: 8 px for
``block4_conv2``), so every pooling before it sees the picture's grid.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnst import losses, segment
from jnst.config import StyleConfig
from jnst.loop import LoopState, apply_gradient
from jnst.objective import Weights, weigh
from jnst.targets import Targets, style_blend
from jnst.vgg import features, margin, stride

Array = jax.Array
_STATIC = ("graphdef", "config")


@dataclass(frozen=True)
class Tile:
    """Pixels ``[y0, y1) x [x0, x1)`` (the interior, whose positions the tile sums over) and the
    window it reads, ``[wy0, wy1) x [wx0, wx1)``: the interior with up to a halo around."""

    y0: int
    y1: int
    x0: int
    x1: int
    wy0: int
    wy1: int
    wx0: int
    wx1: int


def grid(layers: Iterable[str]) -> int:
    """The step of windows' starts and of tile sizes for ``layers``: the deepest one's stride, so
    its poolings see the picture's grid."""
    return max(stride(name) for name in layers)


def halo(layers: Iterable[str]) -> int:
    """The halo a tile needs for ``layers``: the deepest one's margin, on the pooling grid."""
    layers = tuple(layers)
    step = grid(layers)
    return -(-max(margin(name) for name in layers) // step) * step


def _spans(n: int, tile: int, pad: int) -> list[tuple[int, int, int, int]]:
    """(start, end, window start, window end) along an axis of ``n`` px, windows <= ``tile``,
    interiors read with ``pad`` px around."""
    if n <= tile:
        return [(0, n, 0, n)]
    cuts = [0, tile - pad]
    while n - cuts[-1] > tile - pad:
        cuts.append(cuts[-1] + tile - 2 * pad)
    cuts.append(n)
    return [(a, b, max(0, a - pad), min(n, b + pad)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def keeps_residuals(tiles: Sequence[Tile], layers: Iterable[str]) -> bool:
    """Whether a step on ``tiles`` keeps the deep layers' residuals from its statistics sweep to
    its gradient sweep (:mod:`jnst.segment`): when a layer lies past the cut and the largest
    window is at least four halos wide, so that the residuals, halos included, stay small beside
    the picture's state. Smaller tiles run the deep layers forward again."""
    layers = tuple(layers)
    side = max(max(t.wy1 - t.wy0, t.wx1 - t.wx0) for t in tiles)
    return bool(segment.deep_layers(layers)) and side >= 4 * halo(layers)


def check_tile(tile: int, layers: Iterable[str]) -> None:
    """Refuse, with one line, a tile size that leaves no interior for ``layers``' halo or breaks
    the pooling grid."""
    layers = tuple(layers)
    pad, step = halo(layers), grid(layers)
    if tile < 2 * pad + step:
        raise ValueError(
            f"tiles of {tile} px are too small: a tile reads a {pad} px halo on each side, so it needs at "
            f"least {2 * pad + step} px"
        )
    if tile % step:
        raise ValueError(f"tiles of {tile} px break VGG19's pooling grid for these layers: use a multiple of {step} px")


def plan(hw: tuple[int, int], tile: int, layers: Iterable[str]) -> list[Tile]:
    """Tiles covering a picture of ``hw`` whose windows are at most ``tile`` px a side, with the
    halo ``layers`` need (at most four window shapes, so at most four compilations a sweep)."""
    check_tile(tile, layers)
    pad = halo(layers)
    return [
        Tile(y0, y1, x0, x1, wy0, wy1, wx0, wx1)
        for y0, y1, wy0, wy1 in _spans(hw[0], tile, pad)
        for x0, x1, wx0, wx1 in _spans(hw[1], tile, pad)
    ]


def _interior_mask(tile: Array, size: tuple[int, int], s: int) -> Array:
    """(1, h, w, 1) mask, 1 on the interior, of a window's layer of stride ``s`` and ``size``."""
    y0, y1, x0, x1, wy0, wx0 = (tile[i] for i in range(6))
    rows = wy0 // s + jnp.arange(size[0])
    cols = wx0 // s + jnp.arange(size[1])
    inside_r = (rows >= y0 // s) & (rows < y1 // s)
    inside_c = (cols >= x0 // s) & (cols < x1 // s)
    return (inside_r[:, None] & inside_c[None, :]).astype(jnp.float32)[None, :, :, None]


def _sums(acts: dict[str, Array], tile: Array, targets: Targets, config: StyleConfig) -> dict[str, Array]:
    """The sums over one tile's interior that the objective needs (see the module docstring), of
    the layers in ``acts``, the window's activations."""
    sums = {}
    for name, _ in config.style_layers:
        if name in acts:
            f = acts[name].astype(jnp.float32)
            f = f * _interior_mask(tile, f.shape[1:3], stride(name))
            sums["gram/" + name] = losses.gram_sum(f)
    for name, _ in config.content_layers:
        if name in acts:
            f = acts[name].astype(jnp.float32)
            s = stride(name)
            start = (0, tile[4] // s, tile[5] // s, 0)
            target = jax.lax.dynamic_slice(targets.content[name], start, f.shape)
            d = (f - target) * _interior_mask(tile, f.shape[1:3], s)
            sums["sq/" + name], sums["abs/" + name] = jnp.sum(jnp.square(d)), jnp.sum(jnp.abs(d))
    return sums


def tile_sums(
    window: Array, tile: Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig
) -> dict[str, Array]:
    """The sums over one tile's interior that the objective needs (see the module docstring)."""
    acts = features(graphdef, params, window.astype(config.compute_dtype), config.layers, config.padding)
    return _sums(acts, tile, targets, config)


def _shallow(window: Array, graphdef: nnx.GraphDef, params: nnx.State, config: StyleConfig):
    """The window's activations at the layers up to :data:`jnst.segment.CUT`, and the cut's
    activations when a layer lies deeper (None otherwise)."""
    deep = segment.deep_layers(config.layers)
    shallow = tuple(name for name in config.layers if name not in deep)
    layers = (*shallow, segment.CUT) if deep else shallow
    acts = features(graphdef, params, window.astype(config.compute_dtype), layers, config.padding)
    return {name: acts[name] for name in shallow}, acts[segment.CUT] if deep else None


@functools.partial(jax.jit, static_argnames=(*_STATIC, "keep"))
def tile_statistics(
    window: Array, tile: Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig,
    keep: bool,
) -> tuple[dict[str, Array], segment.Residuals | None]:  # fmt: skip
    """The statistics sweep's part for one tile: its sums (:func:`tile_sums`), and with ``keep``
    (:func:`keeps_residuals`) the deep layers' residuals that spare the gradient sweep their
    forward (:mod:`jnst.segment`), else None."""
    if not keep:
        return tile_sums(window, tile, graphdef, params, targets, config), None
    acts, cut = _shallow(window, graphdef, params, config)
    res = segment.forward(graphdef, params, cut, config.layers)
    return _sums({**acts, **res.acts}, tile, targets, config), res


_tile_sums_jit = jax.jit(tile_sums, static_argnames=_STATIC)


def _positions(hw: tuple[int, int], layer: str) -> int:
    """Positions of ``layer``'s map for a picture of ``hw`` (a Gram sum's divisor)."""
    return (hw[0] // stride(layer)) * (hw[1] // stride(layer))


def _loss_of_sums(
    sums: dict[str, Array], hw: tuple[int, int], targets: Targets, weights: Weights, config: StyleConfig
) -> tuple[Array, dict[str, Array]]:
    """:func:`jnst.objective.objective` without its TV term, from the whole picture's sums."""
    norm = config.loss_norm
    content = sum(
        w * losses.error_from_sums(sums["sq/" + n], sums["abs/" + n], targets.content[n], norm)
        for n, w in weights.content_layers.items()
    )
    style = 0.0
    for n, w in weights.style_layers.items():
        style += w * losses.squared_error(sums["gram/" + n] / _positions(hw, n), targets.grams[n], norm)
    return weigh(content, style, jnp.zeros((), jnp.float32), weights)  # TV: on the whole picture, by the caller


@functools.partial(jax.jit, static_argnames=("hw", "config"))
def _loss_and_sum_grads(sums, hw, targets, weights, config):
    return jax.value_and_grad(_loss_of_sums, has_aux=True)(sums, hw, targets, weights, config)


def _window(image: Array, t: Tile) -> Array:
    return image[:, t.wy0 : t.wy1, t.wx0 : t.wx1, :]


def tile_box(t: Tile) -> Array:
    return jnp.asarray([t.y0, t.y1, t.x0, t.x1, t.wy0, t.wx0], jnp.int32)


@functools.partial(jax.jit, static_argnames=_STATIC)
def tile_grad(
    window: Array, tile: Array, sum_grads: dict[str, Array], res: segment.Residuals | None, graphdef, params,
    targets: Targets, config: StyleConfig,
) -> Array:  # fmt: skip
    """The gradient, over the window's pixels, of ``<sum_grads, sums of the tile>``: the shallow
    layers run forward again, the deep ones come back from the statistics sweep's ``res`` (or,
    with None, run forward again too)."""

    def shallow(x: Array):
        acts, cut = _shallow(x, graphdef, params, config)
        return _sums(acts, tile, targets, config), cut

    (sums, cut), pullback = jax.vjp(shallow, window)
    cut_grad = None
    if cut is not None:  # layers past the cut: back through them from their residuals
        if res is None:  # not kept: the deep layers run forward again
            res = segment.forward(graphdef, params, cut, config.layers)
        deep_sums, deep_pullback = jax.vjp(lambda acts: _sums(acts, tile, targets, config), res.acts)
        (cots,) = deep_pullback({k: sum_grads[k] for k in deep_sums})
        cut_grad = segment.backward(graphdef, params, res, cots, jax.ShapeDtypeStruct(cut.shape, cut.dtype))
    return pullback(({k: sum_grads[k] for k in sums}, cut_grad))[0]


Replica = tuple[jax.Device | None, nnx.State, Targets]


def replicate(params: nnx.State, targets: Targets, devices: Sequence[jax.Device] = ()) -> list[Replica]:
    """The weights and targets on each of ``devices``, for :func:`value_and_grad`: copied once a
    pass (80 MB of weights a device), not once a step. With one device or none, as they are."""
    if len(devices) <= 1:
        return [(None, params, targets)]
    return [(d, *jax.device_put((params, targets), d)) for d in devices]


def value_and_grad(
    image: Array,
    graphdef: nnx.GraphDef,
    replicas: Sequence[Replica],
    weights: Weights,
    config: StyleConfig,
    tiles: list[Tile],
    on_tile: Callable[[str, int, int], None] | None = None,
) -> tuple[tuple[Array, dict[str, Array]], Array]:
    """The objective's value, terms and gradient for ``image`` (1, H, W, 3), tile by tile: what
    ``jax.value_and_grad(objective, has_aux=True)`` gives, in a tile's memory.

    With several ``replicas`` (:func:`replicate`), tile k runs on replica k mod D's device (JAX
    dispatches asynchronously, so a group of D tiles runs at once) and the sums and gradients
    are added on the first; with one, everything stays where the image is. ``on_tile(sweep, done, count)``
    hears of each finished group of tiles of either sweep (``"statistics"``, ``"gradient"``),
    for progress at print size, where a tile takes minutes."""
    devices = [d for d, _, _ in replicas]
    home, targets = devices[0], replicas[0][2]

    def on(k: int, tree):  # tile k's inputs, on its device
        return tree if devices[k % len(devices)] is None else jax.device_put(tree, devices[k % len(devices)])

    def back(tree):  # a result, on the first device
        return tree if home is None else jax.device_put(tree, home)

    def done(sweep: str, k: int, result) -> None:
        # One group of D tiles in flight at a time: dispatched further ahead, every tile's window
        # and gradient (12 MB each at 1024 px) would wait in memory at once: 0.6 GB in 24 tiles.
        if (k + 1) % len(devices) == 0 or k + 1 == len(tiles):
            jax.block_until_ready(result)
            if on_tile is not None:
                on_tile(sweep, k + 1, len(tiles))

    hw = image.shape[1:3]
    sums = None
    keep = keeps_residuals(tiles, config.layers)
    kept = []  # each tile's deep residuals, on its device, until its gradient is taken
    for k, t in enumerate(tiles):
        _, p, tg = replicas[k % len(devices)]
        part, res = tile_statistics(on(k, _window(image, t)), tile_box(t), graphdef, p, tg, config, keep)
        kept.append(res)
        sums = back(part) if sums is None else jax.tree.map(jnp.add, sums, back(part))
        done("statistics", k, part)
    (partial, terms), sum_grads = _loss_and_sum_grads(sums, hw, targets, weights, config)
    sum_grads = [on(k, sum_grads) for k in range(len(devices))]
    grad = jnp.zeros_like(image)
    for k, t in enumerate(tiles):
        _, p, tg = replicas[k % len(devices)]
        window, sum_grad, res = on(k, _window(image, t)), sum_grads[k % len(devices)], kept[k]
        kept[k] = None
        g = tile_grad(window, tile_box(t), sum_grad, res, graphdef, p, tg, config)
        grad = _add_window(grad, back(g), t.wy0, t.wx0)
        done("gradient", k, g)
    tv, grad = _add_total_variation(image, grad, weights.tv)
    terms = {**terms, "tv": tv}
    return (partial + tv, terms), grad


@functools.partial(jax.jit, donate_argnames="grad")
def _add_window(grad: Array, window_grad: Array, y0: int, x0: int) -> Array:
    """``grad`` plus a tile's gradient over its window at (``y0``, ``x0``), in place. (Op by op,
    each tile's sum was a new picture, and with the tiles dispatched ahead of their computation
    all of them were alive at once: 12 pictures, 2.6 GB, at 5000 px in 12 tiles.)"""
    start = (0, y0, x0, 0)
    window = jax.lax.dynamic_slice(grad, start, window_grad.shape)
    return jax.lax.dynamic_update_slice(grad, window + window_grad, start)


@functools.partial(jax.jit, donate_argnames="grad")
def _add_total_variation(image: Array, grad: Array, weight: Array) -> tuple[Array, Array]:
    """The weighted TV term and ``grad`` plus its gradient, in one program (op by op, each
    intermediate would be a picture-sized buffer: gigabytes at print size)."""
    tv, tv_grad = jax.value_and_grad(losses.total_variation_loss)(image)
    return weight * tv, grad + weight * tv_grad


apply_gradient_jit = jax.jit(apply_gradient, static_argnames="config", donate_argnames="state")


def _distinct_buffers(state: LoopState) -> LoopState:
    """``state`` with no buffer twice, so that it can be donated: a pass's start shares one
    between the image and its average, and an optimiser's empty state may share its zeros. Only
    those are copied: the caller still holds the state it passed, and a copy of all of it was a
    second state (24 pictures, 5 GB at 5000 px) alive through the first step. A tiled state is
    on one device (tiles refuse ``shard``), so a buffer is its pointer."""
    seen = set()

    def once(leaf: Array) -> Array:
        if leaf.unsafe_buffer_pointer() in seen:
            return jnp.copy(leaf)
        seen.add(leaf.unsafe_buffer_pointer())
        return leaf

    return jax.tree.map(once, state)


def run_steps(
    tiles: list[Tile], graphdef: nnx.GraphDef, replicas: Sequence[Replica], weights: Weights, state: LoopState,
    *, config: StyleConfig, length: int, on_tile: Callable[[str, int, int], None] | None = None,
) -> tuple[LoopState, dict[str, Array]]:  # fmt: skip
    """``length`` optimiser steps on tiled gradients: :func:`jnst.loop.run_chunk` for a picture
    that does not fit in memory whole (the steps run from Python, tile after tile; ``replicas``
    and ``on_tile`` as in :func:`value_and_grad`)."""
    history = []
    state = _distinct_buffers(state)
    for _ in range(length):
        (total, terms), grad = value_and_grad(state.image, graphdef, replicas, weights, config, tiles, on_tile)
        state = apply_gradient_jit(state, grad, config)
        history.append({"total": total, **terms})
    return state, {k: jnp.stack([h[k] for h in history]) for k in history[0]}


@functools.partial(jax.jit, static_argnames=("graphdef", "layers", "padding"))
def _window_features(window: Array, graphdef, params, layers: tuple[str, ...], padding: str) -> dict[str, Array]:
    return features(graphdef, params, window, layers, padding)


def compute_targets(
    graphdef: nnx.GraphDef, params: nnx.State, content: Array, styles: list[Array], config: StyleConfig, tile: int
) -> Targets:
    """:func:`jnst.targets.compute_targets` tile by tile (no masks; Gram style loss): content
    activations assembled from the tiles' interiors, style Grams summed over the tiles."""
    if config.style_loss != "gram":
        raise ValueError("tiles need the Gram style loss (style_loss='gram')")
    content_layers = tuple(name for name, _ in config.content_layers)
    maps = {}
    if content_layers:
        for t in plan(content.shape[1:3], tile, config.layers):
            acts = _window_features(_window(content, t), graphdef, params, content_layers, config.padding)
            for name, f in acts.items():
                s = stride(name)
                if name not in maps:
                    maps[name] = np.zeros((1, content.shape[1] // s, content.shape[2] // s, f.shape[-1]), np.float32)
                y0, y1, x0, x1 = t.y0 // s, t.y1 // s, t.x0 // s, t.x1 // s
                oy, ox = t.wy0 // s, t.wx0 // s
                maps[name][:, y0:y1, x0:x1] = np.asarray(f[:, y0 - oy : y1 - oy, x0 - ox : x1 - ox], np.float32)
    grams_only, no_targets = config.replace(content_layers=()), Targets({}, {}, {}, {})
    grams: dict[str, Array] = {}
    for w, style in zip(style_blend(config, len(styles)), styles, strict=True):
        hw = style.shape[1:3]
        for t in plan(hw, tile, config.layers):
            sums = _tile_sums_jit(_window(style, t), tile_box(t), graphdef, params, no_targets, grams_only)
            for name, _ in config.style_layers:
                grams[name] = grams.get(name, 0.0) + w * sums["gram/" + name] / _positions(hw, name)
    return Targets({k: jnp.asarray(v) for k, v in maps.items()}, grams, {}, {})
