"""A picture too big for memory, one tile at a time, with the whole picture's exact gradient.

The objective depends on the picture only through sums over positions: each style layer's
Gram sum ``sum_p F_p F_p^T`` (with masks, each region's ``sum_p m_r(p)^2 F_p F_p^T``, the mask
windowed to the tile like the features; the masses ``sum_p m_r(p)^2`` are the whole picture's,
from the targets) and each content layer's sums of ``d^2`` and ``|d|``, ``d`` the
difference to the content's activations (total variation is local and cheap, and is computed
on the whole picture). So a step runs forward over tiles, adds up their sums into the
picture's, hence its loss and the loss's gradient ``g`` with respect to the sums; then, with
``g`` fixed, each tile's ``<g, sums_tile(x)>`` is differentiated with respect to the pixels the
tile reads, and the tiles' gradients are added where they overlap: by the chain rule, the
picture's gradient. No seams, by construction.

The tiles are :func:`jnst.tiles.step_plan`'s: tiles of the picture for the layers up to
:data:`jnst.segment.CUT`, and tiles of the cut's map for the deeper ones. So a step makes four
sweeps:

1. picture tiles forward: the shallow layers' sums, and the cut's map;
2. map tiles forward: the deep layers' sums, keeping what their backward needs
   (:mod:`jnst.segment`: about 140 bytes a picture pixel);
3. map tiles backward from those, into the gradient of the cut's map;
4. picture tiles forward again and backward, from the shallow sums' and the map's gradients.

That is about 1.2 whole steps of arithmetic (the shallow forward twice), and the halos' few
percent. The optimiser's steps on these gradients are :mod:`jnst.tiled_loop`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jnst import losses, segment
from jnst.config import StyleConfig
from jnst.objective import Weights, weigh
from jnst.targets import Targets
from jnst.tiles import UNIT, Tile, Tiling, positions, shallow_layers
from jnst.vgg import features, stride

Array = jax.Array
_STATIC = ("graphdef", "config")


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
            s = stride(name) // unit
            f = f * _interior_mask(tile, f.shape[1:3], s)
            if name in targets.masks:  # each region's masked sum (R, C, C), the mask windowed like ``f``
                m = targets.masks[name]
                m = jax.lax.dynamic_slice(m, (0, tile[4] // s, tile[5] // s), (m.shape[0], *f.shape[1:3]))
                sums["gram/" + name] = losses.guided_gram_sums(f, m)
            else:
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


@functools.partial(jax.jit, static_argnames=_STATIC)
def tile_sums(
    window: Array, tile: Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig
) -> dict[str, Array]:
    """The sums over one tile's interior that the objective needs (see the module docstring)."""
    acts = features(graphdef, params, window.astype(config.compute_dtype), config.layers, config.padding)
    return _sums(acts, tile, targets, config)


def _shallow(
    window: Array, tile: Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig
) -> tuple[dict[str, Array], Array | None]:
    """A picture tile's sums of the layers up to the cut, and the cut's activations on its
    interior (zero elsewhere; None when no layer lies deeper)."""
    near = shallow_layers(config.layers)
    acts = features(graphdef, params, window.astype(config.compute_dtype), near, config.padding)
    if not segment.deep_layers(config.layers):
        return _sums(acts, tile, targets, config), None
    cut = acts[segment.CUT]  # summed too where the loss reads it
    return _sums(acts, tile, targets, config), cut * _interior_mask(tile, cut.shape[1:3], UNIT).astype(cut.dtype)


@functools.partial(jax.jit, static_argnames=_STATIC)
def picture_statistics(
    window: Array, tile: Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig
) -> tuple[dict[str, Array], Array | None]:
    """Sweep 1 for one picture tile: :func:`_shallow`."""
    return _shallow(window, tile, graphdef, params, targets, config)


@functools.partial(jax.jit, static_argnames=_STATIC)
def cut_statistics(
    window: Array, tile: Array, graphdef: nnx.GraphDef, params: nnx.State, targets: Targets, config: StyleConfig
) -> tuple[dict[str, Array], segment.Residuals]:
    """Sweep 2 for one tile of the cut's map: the deep layers' sums over its interior, and the
    residuals their backward needs."""
    res = segment.forward(graphdef, params, window, config.layers)
    return _sums(res.acts, tile, targets, config, UNIT), res


@functools.partial(jax.jit, static_argnames=(*_STATIC, "shape"))
def cut_grad(
    tile: Array,
    sum_grads: dict[str, Array],
    res: segment.Residuals,
    graphdef: nnx.GraphDef,
    params: nnx.State,
    targets: Targets,
    config: StyleConfig,
    shape: tuple[int, ...],
) -> Array:
    """Sweep 3 for one tile of the cut's map (a window of ``shape``): the gradient over its window
    of ``<sum_grads, the deep sums of the tile>``, from its residuals."""
    deep_sums, pullback = jax.vjp(lambda acts: _sums(acts, tile, targets, config, UNIT), res.acts)
    (cots,) = pullback({k: sum_grads[k] for k in deep_sums})
    return segment.backward(graphdef, params, res, cots, jax.ShapeDtypeStruct(shape, config.compute_dtype))


@functools.partial(jax.jit, static_argnames=_STATIC)
def picture_grad(
    window: Array,
    tile: Array,
    sum_grads: dict[str, Array],
    map_grad: Array | None,
    graphdef: nnx.GraphDef,
    params: nnx.State,
    targets: Targets,
    config: StyleConfig,
) -> Array:
    """Sweep 4 for one picture tile: the gradient over its window's pixels of its shallow sums
    against ``sum_grads`` and of its interior's part of the cut's map against ``map_grad`` (the
    map's gradient over the window; None when no layer lies past the cut)."""
    (sums, cut), pullback = jax.vjp(lambda x: _shallow(x, tile, graphdef, params, targets, config), window)
    return pullback(({k: sum_grads[k] for k in sums}, None if cut is None else map_grad.astype(cut.dtype)))[0]


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
        if n in targets.masks:  # :func:`jnst.losses.guided_gram_loss`, the masses the whole picture's
            mass, grams = losses.region_mass(targets.masks[n]), sums["gram/" + n]
            style += w * losses.guided_error_from_sums(grams, mass, positions(hw, n), targets.grams[n], norm)
        else:
            style += w * losses.squared_error(sums["gram/" + n] / positions(hw, n), targets.grams[n], norm)
    return weigh(content, style, jnp.zeros((), jnp.float32), weights)  # TV: on the whole picture, by the caller


@functools.partial(jax.jit, static_argnames=("hw", "config"))
def _loss_and_sum_grads(
    sums: dict[str, Array], hw: tuple[int, int], targets: Targets, weights: Weights, config: StyleConfig
) -> tuple[tuple[Array, dict[str, Array]], dict[str, Array]]:
    """The loss from the whole picture's sums (:func:`_loss_of_sums`) and its gradient with respect to them."""
    return jax.value_and_grad(_loss_of_sums, has_aux=True)(sums, hw, targets, weights, config)


def tile_window(image: Array, t: Tile) -> Array:
    """The pixels (or map) that tile ``t`` reads from ``image`` (1, H, W, C)."""
    return image[:, t.wy0 : t.wy1, t.wx0 : t.wx1, :]


def tile_box(t: Tile) -> Array:
    """``t``'s interior and window start as the int32 array the jitted sweeps take (one
    compilation for all tiles of a window shape)."""
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
        part, cut = picture_statistics(on(k, tile_window(image, t)), tile_box(t), graphdef, p, tg, config)
        near = add(near, part)
        if cut is not None:
            cut_map = map_sized(cut) if cut_map is None else cut_map
            cut_map = _add_window(cut_map, back(cut), t.wy0 // UNIT, t.wx0 // UNIT)
        done("statistics", k, len(tiling.picture), 0, part)
    channels = 0 if cut_map is None else cut_map.shape[-1]
    kept = []  # each map tile's residuals, on its device, until its backward
    for k, t in enumerate(tiling.cut):  # 2: map tiles forward
        _, p, tg = replicas[k % len(devices)]
        part, res = cut_statistics(on(k, tile_window(cut_map, t)), tile_box(t), graphdef, p, tg, config)
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
        g = picture_grad(on(k, tile_window(image, t)), tile_box(t), sum_grads[k % len(devices)], window_map_grad,
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
