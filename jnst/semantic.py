"""Semantic style transfer without a segmentation network: regions of the photo and of the
painting found by clustering VGG19's own features, matched by feature similarity, then run as
guided Gram matrices (:mod:`jnst.masks`).

Each image is seen at ``SemanticConfig.side`` px; every position of the ``block3`` grid gets a
descriptor (the chosen layers' activations, centred and scaled so that each layer weighs the
same, plus colour and position), k-means (k-means++ starts, a few restarts, all in JAX) splits
the descriptors into regions, and each position is soft-assigned to the centres, smoothed by a
Gaussian and upsampled, so that a border is a ramp, not a staircase. Photo region r then takes
the style of the painting region whose mean deep features are the most similar (cosine); a
painting region may serve several photo regions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jnst import images
from jnst.masks import GuidedMasks
from jnst.schedule import resize
from jnst.vgg import Model, features

Array = jax.Array
AUTO = 0  # n=AUTO: choose the number of regions by measurement (:func:`choose_regions`)


@dataclass(frozen=True)
class SemanticConfig:
    """How regions are found. ``color`` (0), ``gain`` (0.25), ``position`` (1.2) and ``blur`` (6)
    were chosen by ``benchmarks/regions.py`` (composites of ``../shared/images`` with known
    regions, scored by mean IoU and matching over a small one-knob-at-a-time grid) and
    ``benchmarks/semantic.py`` (the style separation they buy), see docs/semantic.md; the other
    defaults were set by eye and the grid found nothing better (layers) or could not tell
    (sharpness, smooth, match_layers).

    Attributes:
      layers: VGG19 layers whose activations describe a position (resampled to the first's grid).
      match_layers: the layers whose region means decide which painting region a photo region takes.
      color, position: weights of a position's colour and place against a layer's (each part is
        scaled to a mean squared norm of 1 first, so 1 weighs as much as one layer).
      side: the long side, in pixels, at which the images are clustered.
      iterations, restarts: Lloyd iterations of each k-means run and how many runs (the least
        inertia wins).
      sharpness: soft assignment ``softmax(-sharpness d^2 / mean nearest d^2)``: higher is harder.
      smooth: sigma, in grid positions, of the Gaussian that smooths the soft masks.
      blur: sigma, in grid positions, of a Gaussian over the descriptors before clustering (a
        position then speaks for its neighbourhood: fewer specks, regions of larger things).
      max_regions, gain: ``n=AUTO`` takes the fewest regions past which one more explains less
        than ``gain`` of the descriptors' variance, at most ``max_regions``.
      seed: the PRNG seed of the k-means starts (a fixed default: the same regions every run).
    """

    layers: tuple[str, ...] = ("block3_conv1", "block4_conv1")
    match_layers: tuple[str, ...] = ("block4_conv1", "block5_conv1")
    color: float = 0.0
    position: float = 1.2
    side: int = 256
    iterations: int = 25
    restarts: int = 4
    sharpness: float = 3.0
    smooth: float = 1.5
    blur: float = 6.0
    max_regions: int = 4
    gain: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.layers or self.side < 32 or self.iterations < 1 or self.restarts < 1 or self.max_regions < 1:
            raise ValueError("SemanticConfig needs layers, side >= 32, iterations, restarts and max_regions >= 1")


@dataclass(frozen=True)
class Regions:
    """What :func:`regions` found: ``content`` (R, H, W) soft masks of the photo, ``style`` one
    (K_s, Hs, Ws) per painting, and ``matching``: photo region r takes painting
    ``matching[r][0]``'s region ``matching[r][1]``; ``similarity`` (R, sum K_s) the cosines."""

    content: np.ndarray
    style: tuple[np.ndarray, ...]
    matching: tuple[tuple[int, int], ...]
    similarity: np.ndarray

    @property
    def masks(self) -> GuidedMasks:
        """The guided masks :func:`jnst.stylize` takes: photo region r, and on each painting the
        region it was matched to (zero on the paintings it was not)."""
        style = []
        for s, m in enumerate(self.style):
            style.append(np.stack([m[k] if s == owner else np.zeros_like(m[0]) for owner, k in self.matching]))
        return GuidedMasks(self.content, tuple(style))


def _scaled(f: Array) -> Array:
    """(P, D) centred over positions and scaled to a mean squared norm of 1."""
    f = f - f.mean(axis=0)
    return f / jnp.sqrt(jnp.mean(jnp.sum(f * f, axis=1)) + 1e-12)


def _blur(x: Array, sigma: float) -> Array:
    """(h, w, D) maps each blurred by a Gaussian of ``sigma`` positions (edges replicated)."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma))
    t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    g = jnp.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    pad = jnp.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    rows = sum(g[i] * pad[i : i + x.shape[0]] for i in range(2 * radius + 1))
    return sum(g[i] * rows[:, i : i + x.shape[1]] for i in range(2 * radius + 1))


@functools.partial(jax.jit, static_argnames=("graphdef", "layers", "match_layers", "color", "position", "blur"))
def descriptors(
    graphdef,
    params,
    image: Array,
    layers: tuple,
    match_layers: tuple,
    color: float,
    position: float,
    blur: float = 0.0,
) -> tuple[Array, Array]:
    """Per position of ``layers[0]``'s grid: the clustering descriptor (layers, colour, position)
    and the matching descriptor (``match_layers``, each unit-scaled but not centred), (h, w, D)."""
    acts = features(graphdef, params, image, tuple(sorted({*layers, *match_layers})), "replicate")
    h, w = acts[layers[0]].shape[1:3]

    def grid(x: Array) -> Array:
        return jax.image.resize(x[0], (h, w, x.shape[-1]), "linear").reshape(h * w, -1)

    parts = [_scaled(grid(acts[n])) for n in layers]
    parts.append(color * _scaled(grid(image)))
    ys, xs = jnp.meshgrid(jnp.arange(h) / max(h, w), jnp.arange(w) / max(h, w), indexing="ij")
    parts.append(position * _scaled(jnp.stack([ys, xs], -1).reshape(h * w, 2)))
    deep = [grid(acts[n]) / jnp.sqrt(jnp.mean(jnp.sum(grid(acts[n]) ** 2, axis=1)) + 1e-12) for n in match_layers]
    x = _blur(jnp.concatenate(parts, 1).reshape(h, w, -1), blur)
    return x, jnp.concatenate(deep, 1).reshape(h, w, -1)


def _sq_dist(x: Array, c: Array) -> Array:
    return jnp.maximum(jnp.sum(x * x, 1)[:, None] - 2 * x @ c.T + jnp.sum(c * c, 1)[None], 0.0)


def _kmeans_once(x: Array, key: Array, k: Array, kmax: int, iterations: int) -> tuple[Array, Array]:
    """One k-means run of (P, D) ``x`` into ``k`` (traced, at most ``kmax``) centres from k-means++
    starts: the centres (kmax, D; those past k unused) and the inertia. Every k shares one program."""
    keys, slots = jax.random.split(key, kmax), jnp.arange(kmax)
    centres = jnp.zeros((kmax, x.shape[1]), x.dtype).at[0].set(x[jax.random.randint(keys[0], (), 0, x.shape[0])])
    for i in range(1, kmax):
        d = jnp.min(jnp.where(slots[None] < i, _sq_dist(x, centres), jnp.inf), axis=1)
        pick = jax.random.choice(keys[i], x.shape[0], p=d / jnp.maximum(d.sum(), 1e-12))
        centres = centres.at[i].set(x[pick])

    def dist(c: Array) -> Array:
        return jnp.where(slots[None] < k, _sq_dist(x, c), jnp.inf)

    def lloyd(_, c: Array) -> Array:
        one_hot = jax.nn.one_hot(jnp.argmin(dist(c), axis=1), kmax)
        count = one_hot.sum(0)[:, None]
        return jnp.where(count > 0, one_hot.T @ x / jnp.maximum(count, 1.0), c)

    centres = jax.lax.fori_loop(0, iterations, lloyd, centres)
    return centres, jnp.sum(jnp.min(dist(centres), axis=1))


@functools.partial(jax.jit, static_argnames=("kmax", "iterations", "restarts"))
def kmeans(x: Array, ks: Array, key: Array, kmax: int, iterations: int = 25, restarts: int = 4) -> tuple[Array, Array]:
    """k-means of (P, D) ``x`` for each region count in ``ks`` (at most ``kmax``): the best of
    ``restarts`` runs (least inertia), each from k-means++ starts drawn with ``key``. Returns the
    centres (len(ks), kmax, D; row k's first k used) and the inertias (len(ks),)."""

    def best(k: Array) -> tuple[Array, Array]:
        runs = jax.vmap(lambda kk: _kmeans_once(x, kk, k, kmax, iterations))(jax.random.split(key, restarts))
        i = jnp.argmin(runs[1])
        return runs[0][i], runs[1][i]

    return jax.lax.map(best, ks)


@jax.jit
def soft_masks(x: Array, centres: Array, sharpness: float, smooth: float) -> Array:
    """(k, h, w) soft masks, summing to 1 at each position, of (h, w, D) descriptors ``x`` under
    ``centres``: a softmax of the scaled squared distances, blurred by a Gaussian of ``smooth``
    grid positions and renormalised."""
    h, w, _ = x.shape
    d = _sq_dist(x.reshape(h * w, -1), centres)
    p = jax.nn.softmax(-sharpness * d / (jnp.mean(jnp.min(d, axis=1)) + 1e-12), axis=1).T.reshape(-1, h, w)
    radius = int(3 * 4)  # static upper bound; the weights below shape the blur by ``smooth``
    t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    g = jnp.exp(-0.5 * (t / jnp.maximum(smooth, 1e-3)) ** 2)
    g = g / g.sum()
    pad = jnp.pad(p, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    p = jax.vmap(lambda m: jax.scipy.signal.convolve2d(m, g[:, None] * g[None], mode="valid"))(pad)
    return p / jnp.maximum(p.sum(0, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Segmentation:
    """One image's regions: ``masks`` (k, H, W), their mean matching descriptors ``means`` (k, D),
    and the k-means inertia of each region count tried (``inertias``, for :func:`choose_regions`)."""

    masks: np.ndarray
    means: np.ndarray
    inertias: tuple[float, ...] = ()


def choose_regions(inertias: list[float], gain: float) -> int:
    """The fewest regions past which one more lowers the inertia by less than ``gain`` of the
    inertia with one region (``inertias[i]``: with i + 1 regions)."""
    for n in range(1, len(inertias)):
        if (inertias[n - 1] - inertias[n]) / max(inertias[0], 1e-12) < gain:
            return n
    return len(inertias)


def segment(model: Model, image: np.ndarray, n: int, config: SemanticConfig, key: Array) -> Segmentation:
    """``image`` (H, W, 3) split into ``n`` regions (``AUTO``: chosen, :func:`choose_regions`)."""
    hw = image.shape[:2]
    small = images.resize(np.asarray(image, np.float32), images.fit_long_side(hw, config.side))
    x, deep = descriptors(model.graphdef, model.params, jnp.asarray(small)[None], config.layers,
                          config.match_layers, config.color, config.position, config.blur)  # fmt: skip
    flat = x.reshape(-1, x.shape[-1])
    if n > flat.shape[0]:
        raise ValueError(f"{n} regions for an image of {flat.shape[0]} positions at {config.layers[0]}")
    tried = list(range(1, min(config.max_regions, flat.shape[0]) + 1)) if n == AUTO else [n]
    found, inertia = kmeans(flat, jnp.asarray(tried), key, max(tried), config.iterations, config.restarts)
    inertias = [float(j) for j in inertia]
    chosen = choose_regions(inertias, config.gain) if n == AUTO else n
    centres = found[tried.index(chosen), :chosen]
    grid = soft_masks(x, centres, config.sharpness, config.smooth)
    flat_grid = grid.reshape(chosen, -1)
    means = flat_grid @ deep.reshape(-1, deep.shape[-1]) / jnp.maximum(flat_grid.sum(1, keepdims=True), 1e-12)
    masks = np.asarray(resize(grid[..., None], hw)[..., 0])  # on the host: no compilation a size
    return Segmentation(masks / np.maximum(masks.sum(0), 1e-12), np.asarray(means), tuple(inertias))


def match(
    photo: np.ndarray, paintings: list[np.ndarray], areas: tuple[np.ndarray, list[np.ndarray]] | None = None
) -> tuple[tuple[tuple[int, int], ...], np.ndarray]:
    """Each photo region's painting region (painting, region) by the cosine of their mean
    descriptors (``photo`` (R, D), ``paintings`` one (K_s, D) each), each side centred on the
    mean of its regions (weighted by ``areas``; equal without): what sets a region apart from the
    rest of its side, since a painting as a whole differs from any photo more than its parts
    differ from each other (uncentred when a side has one region). Also returns the cosines."""
    unit = lambda m: m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # noqa: E731
    ref = np.concatenate(paintings)
    area_p, area_s = areas or (np.ones(len(photo)), [np.ones(len(p)) for p in paintings])
    area_s = np.concatenate(area_s)
    if len(photo) > 1 and len(ref) > 1:
        photo = photo - area_p @ photo / area_p.sum()
        ref = ref - area_s @ ref / area_s.sum()
    cos = unit(photo) @ unit(ref).T
    owners = [(s, k) for s, p in enumerate(paintings) for k in range(len(p))]
    return tuple(owners[int(i)] for i in cos.argmax(1)), cos


def regions(
    content: np.ndarray,
    style: np.ndarray | list[np.ndarray],
    n: int = AUTO,
    *,
    model: Model | None = None,
    config: SemanticConfig | None = None,
    key: Array | None = None,
) -> Regions:
    """Regions of ``content`` (H, W, 3) and of each ``style`` image, ``n`` on each (``AUTO``, 0:
    chosen per image), and which painting region each photo region takes (:class:`Regions`;
    its ``masks`` go to :func:`jnst.stylize`). ``key`` defaults to ``config.seed``'s."""
    config = config or SemanticConfig()
    if n < 0:
        raise ValueError(f"the number of regions must be at least 1 (or {AUTO}: auto), got {n}")
    model = Model.create() if model is None else model
    key = jax.random.key(config.seed) if key is None else key
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    keys = jax.random.split(key, 1 + len(styles))
    photo = segment(model, content, n, config, keys[0])
    paintings = [segment(model, s, n, config, k) for s, k in zip(styles, keys[1:], strict=True)]
    areas = (photo.masks.sum((1, 2)), [p.masks.sum((1, 2)) for p in paintings])
    matching, cos = match(photo.means, [p.means for p in paintings], areas)
    return Regions(photo.masks, tuple(p.masks for p in paintings), matching, cos)


PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25], [145, 30, 180], [70, 240, 240],
     [245, 130, 48], [240, 50, 230], [210, 245, 60], [0, 128, 128]], np.float32) / 255  # fmt: skip


def regions_image(content: np.ndarray, styles: list[np.ndarray], found: Regions, height: int = 0) -> np.ndarray:
    """The photo and the paintings side by side (``height`` px high; 0: the photo's), each region
    tinted in one colour, a painting region in the colour of the photo region matched to it
    (gray when none took it): (h, W, 3) in [0, 1]."""
    height = height or content.shape[0]
    colours = [np.full((len(m), 3), 0.5, np.float32) for m in found.style]
    for r, (s, k) in reversed(list(enumerate(found.matching))):
        colours[s][k] = PALETTE[r % len(PALETTE)]
    photo_colours = PALETTE[np.arange(len(found.content)) % len(PALETTE)]
    panels = []
    for image, masks, cols in [
        (content, found.content, photo_colours),
        *zip(styles, found.style, colours, strict=True),
    ]:
        tint = np.einsum("khw,kc->hwc", masks, cols)
        gray = np.asarray(image, np.float32).mean(-1, keepdims=True)
        panel = np.clip(0.45 * gray + 0.55 * tint, 0, 1)
        panels.append(images.resize(panel, (height, max(1, round(panel.shape[1] * height / panel.shape[0])))))
    gap = np.ones((height, max(2, height // 64), 3), np.float32)
    return np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
