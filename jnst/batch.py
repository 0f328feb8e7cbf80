"""A batch's items: their inputs checked against each other and seen at each pass's size, their
starting pixels, the images the user sees, and their trees stacked into one for the compiled
program (``vmap``; a batch of one runs the plain program)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnst import color, images
from jnst import masks as masks_lib
from jnst.config import StyleConfig
from jnst.loop import LoopState
from jnst.schedule import Pass, resize, scaled

Array = jax.Array
# What the items of a batch may differ in: their weights (arguments of the compiled step) and seed.
PER_ITEM_FIELDS = (
    "content_weight",
    "style_weight",
    "style_balance",
    "tv_weight",
    "content_layers",
    "style_layers",
    "seed",
)


def stack(trees: list) -> Any:
    """One tree from a batch's per-item trees: the item itself for a batch of one (no batch axis,
    so a single image runs the plain, unmapped program), else leaves stacked on a new axis 0."""
    return trees[0] if len(trees) == 1 else jax.tree.map(lambda *x: jnp.stack(x), *trees)


def unstack(tree: Any, n: int) -> list:
    """The per-item trees of a batch of ``n`` stacked by :func:`stack`."""
    return [tree] if n == 1 else [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(n)]


def first_state(images: list[Array], config: StyleConfig) -> LoopState:
    """A batch's first loop state, from ``images``, one an item, stacked (:func:`stack`)."""
    return stack([LoopState.start(image, config) for image in images])


def initial_image(content: Array, config: StyleConfig, key: Array) -> Array:
    """The starting pixels: the content image, uniform noise, or content plus noise (clipped)."""
    if config.init == "content":
        return content
    noise = jax.random.uniform(key, content.shape, content.dtype)
    if config.init == "noise":
        return noise
    return jnp.clip(content + config.init_noise * (2.0 * noise - 1.0), 0.0, 1.0)


def _as_batch(image: np.ndarray | Array, what: str) -> Array:
    """``image`` (H, W, 3) as float32 (1, H, W, 3), or one line saying what it is instead."""
    image = jnp.asarray(image, jnp.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{what} image must be (H, W, 3) RGB, got shape {image.shape}")
    return image[None]


def _resized(masks: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Masks (R, H, W) at size ``hw``, as the images are resized (:func:`jnst.schedule.resize`)."""
    return np.asarray(resize(jnp.asarray(masks)[..., None], hw)[..., 0])


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


@dataclass(frozen=True)
class Batch:
    """The items of a :func:`jnst.stylize_batch` run, each (1, H, W, 3): item i paints
    ``contents[i]`` under ``configs[i]``, from ``inits[i]`` when given; ``masks`` are shared
    (:class:`jnst.masks.GuidedMasks`: photo-side regions, and style-side ones or one region per
    style); ``work`` holds each item's content and styles as the optimisation sees
    them (:mod:`jnst.color`)."""

    contents: list[Array]
    styles: list[Array]
    configs: list[StyleConfig]
    masks: masks_lib.GuidedMasks | None
    inits: list[Array] | None
    work: list[tuple[Array, list[Array]]]

    @classmethod
    def of(
        cls,
        contents: Sequence[np.ndarray | Array],
        style: np.ndarray | Array | Sequence[np.ndarray | Array],
        configs: Sequence[StyleConfig],
        masks: masks_lib.GuidedMasks | np.ndarray | None = None,
        init_images: Sequence[np.ndarray | Array] | None = None,
    ) -> Batch:
        """The batch of these inputs, a single content or config shared by every item; or one line
        saying why they do not make one (configs that differ in more than ``PER_ITEM_FIELDS``,
        contents of different sizes, masks or init images of another size)."""
        n = max(len(contents), len(configs))
        if len(contents) not in (1, n) or len(configs) not in (1, n):
            raise ValueError(f"{len(contents)} contents and {len(configs)} configs: give one of either, or as many")
        configs = list(configs) * (n // len(configs))
        contents_b = [_as_batch(c, "content") for c in contents] * (n // len(contents))

        def shared(c: StyleConfig) -> tuple[StyleConfig, StyleConfig]:
            """What items must agree on: the compiled program (layer names included) and the host loop."""
            return c.compiled_part(), c.replace(**{f: getattr(StyleConfig(), f) for f in PER_ITEM_FIELDS})

        if any(shared(c) != shared(configs[0]) for c in configs[1:]):
            raise ValueError(f"a batch's configs may differ only in {', '.join(PER_ITEM_FIELDS)} (not layer names)")
        hw, sizes = tuple(contents_b[0].shape[1:3]), {c.shape[1:3] for c in contents_b}
        if any(tuple(c.shape[1:3]) != hw for c in contents_b):
            raise ValueError(f"a batch's contents must share one size; got {sorted(sizes)}")
        styles = [_as_batch(s, "style") for s in (list(style) if isinstance(style, (list, tuple)) else [style])]
        masks = masks_lib.check(masks, hw, [s.shape[1:3] for s in styles])
        inits = None
        if init_images is not None:
            inits = [_as_batch(im, "init") for im in init_images] * (n // len(init_images))
            if any(im.shape[1:3] != hw for im in inits):
                raise ValueError(f"init image must be the content's size {hw}, got {inits[0].shape[1:3]}")
        work = [_prepare_colors(c, styles, configs[0].color) for c in contents_b]
        return cls(contents_b, styles, configs, masks, inits, work)

    @property
    def size(self) -> int:
        """The number of items."""
        return len(self.configs)

    @property
    def hw(self) -> tuple[int, int]:
        """The contents' (height, width)."""
        return tuple(self.contents[0].shape[1:3])

    @property
    def style_hws(self) -> list[tuple[int, int]]:
        """Each style image's (height, width)."""
        return [s.shape[1:3] for s in self.styles]

    @property
    def inputs(self) -> dict[str, list]:
        """The input arrays, by what they are (for :func:`jnst.checkpoint.fingerprint`)."""
        m = self.masks or masks_lib.GuidedMasks(None)
        styled = list(m.style) if m.style is not None else [None]
        return {"content": self.contents, "style": self.styles, "init": self.inits or [], "masks": [m.content],
                "style masks": styled}  # fmt: skip

    def at(self, p: Pass) -> list[tuple[Array, list[Array]]]:
        """Each item's content and styles at pass ``p``'s size (the styles scaled as the content)."""
        factor = p.side / max(self.hw)
        return [(resize(c, p.hw), [resize(s, scaled(s.shape[1:3], factor)) for s in styles]) for c, styles in self.work]

    def masks_at(self, hw: tuple[int, int]) -> np.ndarray | None:
        """The photo-side masks at size ``hw`` (None without masks)."""
        return None if self.masks is None else _resized(self.masks.content, hw)

    def style_masks_at(self, p: Pass) -> tuple[np.ndarray, ...] | None:
        """The style-side masks at pass ``p``'s style sizes (None without them: one region a style)."""
        if self.masks is None or self.masks.style is None:
            return None
        factor = p.side / max(self.hw)
        pairs = zip(self.masks.style, self.styles, strict=True)
        return tuple(_resized(m, scaled(s.shape[1:3], factor)) for m, s in pairs)

    def starts(self, items: list[tuple[Array, list[Array]]], hw: tuple[int, int]) -> list[Array]:
        """Each item's first pixels at size ``hw``: its init image, or its config's ``init`` from its
        content in ``items`` (:meth:`at`) and its seed."""
        return [
            initial_image(c, cfg, jax.random.key(cfg.seed)) if self.inits is None else resize(self.inits[i], hw)
            for i, ((c, _), cfg) in enumerate(zip(items, self.configs, strict=True))
        ]

    def finish(self, average: np.ndarray) -> list[np.ndarray]:
        """Each item's image as the user sees it, from the host copy of ``state.average``: full
        size (resized on the host, so a coarse pass compiles no resize of its own), colours
        restored."""
        outs = []
        for i, image in enumerate(unstack(average, self.size)):
            out = images.resize(image[0], self.hw)
            if self.configs[0].color == "luminance":
                out = color.restore_chroma(out, np.asarray(self.contents[i][0]))
            outs.append(out)
        return outs

    def losses(self, history: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Each item's per-step loss terms, from the host copies of every chunk's stacked terms."""
        per_chunk = [unstack(h, self.size) for h in history]
        return [
            {k: np.concatenate([np.asarray(h[i][k]) for h in per_chunk]) for k in history[0]} for i in range(self.size)
        ]
