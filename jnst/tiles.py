"""A picture too big for memory, one tile at a time, with the whole picture's exact gradient.

The objective depends on the picture only through sums over positions: each style layer's
Gram sum ``sum_p F_p F_p^T`` and each content layer's sums of ``d^2`` and ``|d|``, ``d`` the
difference to the content's activations (total variation is local and cheap, and is computed
on the whole picture). So a step runs forward over tiles, adds up their sums into the
picture's, hence its loss and the loss's gradient ``g`` with respect to the sums; then, with
``g`` fixed, each tile's ``<g, sums_tile(x)>`` is differentiated with respect to the pixels the
tile reads, and the tiles' gradients are added where they overlap: by the chain rule, the
picture's gradient. No seams, by construction.

VGG19 is tiled in two parts (:class:`Tiling`), split at :data:`jnst.segment.CUT`
(``block2_pool``). Blocks 1 and 2 hold the memory (64 and 128 channels at full and half
resolution) but reach only 6 px: they run in tiles of the picture with an 8 px halo, and their
interiors assemble the cut's map (32 bytes a pixel). The deeper layers do two thirds of the
arithmetic on 1/16 of the pixels and reach far (38 px for ``block4_conv2``): they run in tiles
of the cut's map, twice the side in picture pixels, each with its own halo. So a step makes four
sweeps:

1. picture tiles forward: the shallow layers' sums, and the cut's map;
2. map tiles forward: the deep layers' sums, keeping what their backward needs
   (:mod:`jnst.segment`: about 140 bytes a picture pixel);
3. map tiles backward from those, into the gradient of the cut's map;
4. picture tiles forward again and backward, from the shallow sums' and the map's gradients.

That is about 1.2 whole steps of arithmetic (the shallow forward twice), with halos that add a
few percent, not the 15 % that tiles reading the deep layers' halo at full resolution do.
Windows start on multiples of the deepest layer's stride within each part (:func:`grid`), so
every pooling sees the picture's grid.
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
from jnst.vgg import LAYERS, features, margin, stride

Array = jax.Array
_STATIC = ("graphdef", "config")
UNIT = stride(segment.CUT)  # picture pixels a pixel of the cut's map


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


@dataclass(frozen=True)
class Tiling:
    """A tiled step's tiles: ``picture`` tiles for the layers up to the cut, and ``cut`` tiles of
    the cut's map (in its pixels, ``UNIT`` picture pixels each) for the deeper layers; none
    when no layer lies past the cut."""

    picture: tuple[Tile, ...]
    cut: tuple[Tile, ...]


def grid(layers: Iterable[str]) -> int:
    """The step of windows' starts and of tile sizes for ``layers``: the deepest one's stride, so
    its poolings see the picture's grid."""
    return max(stride(name) for name in layers)


def halo(layers: Iterable[str]) -> int:
    """The halo a picture tile needs for ``layers``: the deepest one's margin, on the pooling grid."""
    layers = tuple(layers)
    step = grid(layers)
    return -(-max(margin(name) for name in layers) // step) * step


def cut_halo(layers: Iterable[str]) -> int:
    """The halo, in the cut's map's pixels, that a tile of the map needs for the deep ``layers``:
    how far past the cut the deepest one reaches, on its pooling grid."""
    layers = tuple(layers)
    step = grid(layers) // UNIT
    reach = (max(margin(name) for name in layers) - margin(segment.CUT)) // UNIT
    return -(-reach // step) * step


def _near(layers: Iterable[str]) -> tuple[str, ...]:
    """The layers the picture tiles compute: ``layers`` up to the cut, and the cut when any lies deeper."""
    layers = tuple(layers)
    near = tuple(name for name in layers if LAYERS.index(name) <= LAYERS.index(segment.CUT))
    return (*near, segment.CUT) if segment.deep_layers(layers) and segment.CUT not in near else near


def smallest_tile(layers: Iterable[str]) -> int:
    """The smallest tile side ``layers`` allow: the picture tiles' halos and the map tiles' (half
    the side, in the map's pixels) leave an interior."""
    layers = tuple(layers)
    near = _near(layers)
    smallest = 2 * halo(near) + grid(near)
    if segment.deep_layers(layers):
        smallest = max(smallest, 2 * (2 * cut_halo(layers) + grid(layers) // UNIT))
    return -(-smallest // grid(layers)) * grid(layers)


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


def _cover(hw: tuple[int, int], tile: int, pad: int) -> tuple[Tile, ...]:
    """Tiles covering ``hw`` with windows <= ``tile`` px a side reading ``pad`` px around their
    interiors (at most four window shapes, so at most four compilations a sweep)."""
    return tuple(
        Tile(y0, y1, x0, x1, wy0, wy1, wx0, wx1)
        for y0, y1, wy0, wy1 in _spans(hw[0], tile, pad)
        for x0, x1, wx0, wx1 in _spans(hw[1], tile, pad)
    )


def check_tile(tile: int, layers: Iterable[str]) -> None:
    """Refuse, with one line, a tile size that leaves no interior for ``layers``' halos or breaks
    the pooling grid."""
    layers = tuple(layers)
    smallest, step = smallest_tile(layers), grid(layers)
    if tile < smallest:
        raise ValueError(f"tiles of {tile} px are too small for these layers' halos: they need at least {smallest} px")
    if tile % step:
        raise ValueError(f"tiles of {tile} px break VGG19's pooling grid for these layers: use a multiple of {step} px")


def plan(hw: tuple[int, int], tile: int, layers: Iterable[str]) -> list[Tile]:
    """Tiles of a picture of ``hw`` for all of ``layers`` at once, each with the deepest one's
    halo: how targets are computed, once a pass, forward only. Windows are at most ``tile`` px a
    side, but at least four halos (smaller would be mostly halo; forward only, such a window
    needs far less memory than a step's tile)."""
    check_tile(tile, layers)
    pad = halo(layers)
    return list(_cover(hw, max(tile, 4 * pad), pad))


def step_plan(hw: tuple[int, int], tile: int, layers: Iterable[str]) -> Tiling:
    """The tiles of a step on a picture of ``hw`` (see the module docstring): picture tiles of at
    most ``tile`` px, and map tiles of at most ``tile // 2`` of the map's pixels."""
    check_tile(tile, layers)
    layers = tuple(layers)
    picture = _cover(hw, tile, halo(_near(layers)))
    if not segment.deep_layers(layers):
        return Tiling(picture, ())
    return Tiling(picture, _cover((hw[0] // UNIT, hw[1] // UNIT), tile // 2, cut_halo(layers)))


def _interior_mask(tile: Array, size: tuple[int, int], s: int) -> Array:
    """(1, h, w, 1) mask, 1 on the interior, of a window's map of ``size`` whose pixels step over
    ``s`` of the tile's."""
    y0, y1, x0, x1, wy0, wx0 = (tile[i] for i in range(6))
    rows = wy0 // s + jnp.arange(size[0])
    cols = wx0 // s + jnp.arange(size[1])
    inside_r = (rows >= y0 // s) & (rows < y1 // s)
    inside_c = (cols >= x0 // s) & (cols < x1 // s)
    return (inside_r[:, None] & inside_c[None, :]).astype(jnp.float32)[None, :, :, None]


def _sums(
    acts: dict[str, Array], tile: Array, targets: Targets, config: StyleConfig, unit: int = 1
) -> dict[str, Array]:
    """The sums over one tile's interior that the objective needs (see the module docstring), of
    the layers in ``acts``, the window's activations; the tile's pixels are ``unit`` picture
    pixels each."""
    sums = {}
    for name, _ in config.style_layers:
        if name in acts:
            f = acts[name].astype(jnp.float32)
            f = f * _interior_mask(tile, f.shape[1:3], stride(name) // unit)
            sums["gram/" + name] = losses.gram_sum(f)
    for name, _ in config.content_layers:
        if name in acts:
            f = acts[name].astype(jnp.float32)
            s = stride(name) // unit
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


_tile_sums_jit = jax.jit(tile_sums, static_argnames=_STATIC)


def _shallow(window: Array, tile: Array, graphdef: nnx.GraphDef, params: nnx.State, targets, config):
    """A picture tile's sums of the layers up to the cut, and the cut's activations on its
    interior (zero elsewhere; None when no layer lies deeper)."""
    near = _near(config.layers)
    acts = features(graphdef, params, window.astype(config.compute_dtype), near, config.padding)
    if not segment.deep_layers(config.layers):
        return _sums(acts, tile, targets, config), None
    cut = acts[segment.CUT]  # summed too where the loss reads it
    return _sums(acts, tile, targets, config), cut * _interior_mask(tile, cut.shape[1:3], UNIT).astype(cut.dtype)


@functools.partial(jax.jit, static_argnames=_STATIC)
def picture_statistics(window, tile, graphdef, params, targets, config) -> tuple[dict[str, Array], Array | None]:
    """Sweep 1 for one picture tile: :func:`_shallow`."""
    return _shallow(window, tile, graphdef, params, targets, config)


@functools.partial(jax.jit, static_argnames=_STATIC)
def cut_statistics(window, tile, graphdef, params, targets, config) -> tuple[dict[str, Array], segment.Residuals]:
    """Sweep 2 for one tile of the cut's map: the deep layers' sums over its interior, and the
    residuals their backward needs."""
    res = segment.forward(graphdef, params, window, config.layers)
    return _sums(res.acts, tile, targets, config, UNIT), res


@functools.partial(jax.jit, static_argnames=(*_STATIC, "shape"))
def cut_grad(tile, sum_grads, res, graphdef, params, targets, config, shape: tuple[int, ...]) -> Array:
    """Sweep 3 for one tile of the cut's map (a window of ``shape``): the gradient over its window
    of ``<sum_grads, the deep sums of the tile>``, from its residuals."""
    deep_sums, pullback = jax.vjp(lambda acts: _sums(acts, tile, targets, config, UNIT), res.acts)
    (cots,) = pullback({k: sum_grads[k] for k in deep_sums})
    return segment.backward(graphdef, params, res, cots, jax.ShapeDtypeStruct(shape, config.compute_dtype))


@functools.partial(jax.jit, static_argnames=_STATIC)
def picture_grad(window, tile, sum_grads, map_grad, graphdef, params, targets, config) -> Array:
    """Sweep 4 for one picture tile: the gradient over its window's pixels of its shallow sums
    against ``sum_grads`` and of its interior's part of the cut's map against ``map_grad`` (the
    map's gradient over the window; None when no layer lies past the cut)."""
    (sums, cut), pullback = jax.vjp(lambda x: _shallow(x, tile, graphdef, params, targets, config), window)
    return pullback(({k: sum_grads[k] for k in sums}, None if cut is None else map_grad.astype(cut.dtype)))[0]


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
    tiling: Tiling,
    on_tile: Callable[[str, int, int], None] | None = None,
) -> tuple[tuple[Array, dict[str, Array]], Array]:
    """The objective's value, terms and gradient for ``image`` (1, H, W, 3), tile by tile (the
    four sweeps of the module docstring): what ``jax.value_and_grad(objective, has_aux=True)``
    gives, in a tile's memory.

    With several ``replicas`` (:func:`replicate`), the k-th tile of a sweep runs on replica k mod
    D's device (JAX dispatches asynchronously, so a group of D tiles runs at once) and the sums
    and gradients are added on the first; with one, everything stays where the image is.
    ``on_tile(sweep, done, count)`` hears of each finished group of tiles of either half of the
    step (``"statistics"``, ``"gradient"``: the picture's and the map's tiles), for progress at
    print size, where a tile takes minutes."""
    devices = [d for d, _, _ in replicas]
    home, targets = devices[0], replicas[0][2]
    count = len(tiling.picture) + len(tiling.cut)

    def on(k: int, tree):  # the k-th tile's inputs, on its device
        return tree if devices[k % len(devices)] is None else jax.device_put(tree, devices[k % len(devices)])

    def back(tree):  # a result, on the first device
        return tree if home is None else jax.device_put(tree, home)

    def done(sweep: str, k: int, of: int, before: int, result) -> None:
        # One group of D tiles in flight at a time: dispatched further ahead, every tile's window
        # and gradient (12 MB each at 1024 px) would wait in memory at once.
        if (k + 1) % len(devices) == 0 or k + 1 == of:
            jax.block_until_ready(result)
            if on_tile is not None:
                on_tile(sweep, before + k + 1, count)

    def add(total, part):
        return back(part) if total is None else jax.tree.map(jnp.add, total, back(part))

    def map_sized(like: Array) -> Array:  # zeros the size of the picture's map, channels as ``like``
        return jnp.zeros((1, image.shape[1] // UNIT, image.shape[2] // UNIT, like.shape[-1]), like.dtype)

    near, deep, cut_map = None, None, None  # the shallow and the deep layers' sums, the cut's map
    for k, t in enumerate(tiling.picture):  # 1: picture tiles forward
        _, p, tg = replicas[k % len(devices)]
        part, cut = picture_statistics(on(k, _window(image, t)), tile_box(t), graphdef, p, tg, config)
        near = add(near, part)
        if cut is not None:
            cut_map = map_sized(cut) if cut_map is None else cut_map
            cut_map = _add_window(cut_map, back(cut), t.wy0 // UNIT, t.wx0 // UNIT)
        done("statistics", k, len(tiling.picture), 0, part)
    channels = 0 if cut_map is None else cut_map.shape[-1]
    kept = []  # each map tile's residuals, on its device, until its backward
    for k, t in enumerate(tiling.cut):  # 2: map tiles forward
        _, p, tg = replicas[k % len(devices)]
        part, res = cut_statistics(on(k, _window(cut_map, t)), tile_box(t), graphdef, p, tg, config)
        kept.append(res)
        deep = add(deep, part)
        done("statistics", k, len(tiling.cut), len(tiling.picture), part)
    del cut_map
    sums = {**near, **(deep or {})}
    (partial, terms), sum_grads = _loss_and_sum_grads(sums, image.shape[1:3], targets, weights, config)
    sum_grads = [on(k, sum_grads) for k in range(len(devices))]
    map_grad = None
    for k, t in enumerate(tiling.cut):  # 3: map tiles backward
        _, p, tg = replicas[k % len(devices)]
        res, kept[k] = kept[k], None
        shape = (1, t.wy1 - t.wy0, t.wx1 - t.wx0, channels)
        g = cut_grad(tile_box(t), sum_grads[k % len(devices)], res, graphdef, p, tg, config, shape)
        map_grad = _add_window(map_sized(g) if map_grad is None else map_grad, back(g), t.wy0, t.wx0)
        done("gradient", k, len(tiling.cut), 0, g)
    grad = jnp.zeros_like(image)
    for k, t in enumerate(tiling.picture):  # 4: picture tiles forward again, and backward
        _, p, tg = replicas[k % len(devices)]
        window_map_grad = None
        if map_grad is not None:
            window_map_grad = on(k, map_grad[:, t.wy0 // UNIT : t.wy1 // UNIT, t.wx0 // UNIT : t.wx1 // UNIT])
        g = picture_grad(on(k, _window(image, t)), tile_box(t), sum_grads[k % len(devices)], window_map_grad,
                         graphdef, p, tg, config)  # fmt: skip
        grad = _add_window(grad, back(g), t.wy0, t.wx0)
        done("gradient", k, len(tiling.picture), len(tiling.cut), g)
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
    tiling: Tiling, graphdef: nnx.GraphDef, replicas: Sequence[Replica], weights: Weights, state: LoopState,
    *, config: StyleConfig, length: int, on_tile: Callable[[str, int, int], None] | None = None,
) -> tuple[LoopState, dict[str, Array]]:  # fmt: skip
    """``length`` optimiser steps on tiled gradients: :func:`jnst.loop.run_chunk` for a picture
    that does not fit in memory whole (the steps run from Python, tile after tile; ``replicas``
    and ``on_tile`` as in :func:`value_and_grad`)."""
    history = []
    state = _distinct_buffers(state)
    for _ in range(length):
        (total, terms), grad = value_and_grad(state.image, graphdef, replicas, weights, config, tiling, on_tile)
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
