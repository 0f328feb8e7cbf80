"""Where a tiled picture's tiles lie: their interiors, the halos their windows read, and the grid
their windows start on. Integer geometry, no arrays: the sweeps over the tiles are
:mod:`jnst.tiled_objective`'s, the targets' :mod:`jnst.tiled_targets`'.

A tiled step (:mod:`jnst.tiled_objective`) runs VGG19 in two parts (:class:`Tiling`), split at
:data:`jnst.segment.CUT` (``block2_pool``). Blocks 1 and 2 hold the memory (64 and 128 channels
at full and half resolution) but reach only 6 px: they run in tiles of the picture with an 8 px
halo, and their interiors assemble the cut's map (32 bytes a pixel). The deeper layers do two
thirds of the arithmetic on 1/16 of the pixels and reach far (38 px for ``block4_conv2``): they
run in tiles of the cut's map, twice the side in picture pixels, each with its own halo. So the
halos add a few percent to a step's arithmetic, not the 15 % that tiles reading the deep layers'
halo at full resolution do. Windows start on multiples of the deepest layer's stride within each
part (:func:`grid`), so every pooling sees the picture's grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jnst import segment
from jnst.vgg import LAYERS, margin, stride

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


def shallow_layers(layers: Iterable[str]) -> tuple[str, ...]:
    """The layers the picture tiles compute: ``layers`` up to the cut, and the cut when any lies deeper."""
    layers = tuple(layers)
    near = tuple(name for name in layers if LAYERS.index(name) <= LAYERS.index(segment.CUT))
    return (*near, segment.CUT) if segment.deep_layers(layers) and segment.CUT not in near else near


def smallest_tile(layers: Iterable[str]) -> int:
    """The smallest tile side ``layers`` allow: the picture tiles' halos and the map tiles' (half
    the side, in the map's pixels) leave an interior."""
    layers = tuple(layers)
    near = shallow_layers(layers)
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


def check_run(tile: int, layers: Iterable[str], items: int, shard: str, style_loss: str = "gram") -> None:
    """Refuse, with one line, tiles of ``tile`` px for ``layers`` (:func:`check_tile`), or for a run
    that they do not tile: a batch of several ``items``, one split by ``shard`` (tiles spread
    over the devices themselves), or a style loss other than Gram's (the tiles add up Gram sums,
    masked ones for regions; a Wasserstein loss would silently become a Gram loss)."""
    check_tile(tile, layers)
    if items > 1 or shard != "none":
        raise ValueError("tiles work on one image, without --shard (they spread over the devices)")
    if style_loss != "gram":
        raise ValueError(f"tiles compute the Gram style loss only, not {style_loss!r}: give the run the memory "
                         "to go whole (--max-memory) or use --style-loss gram")  # fmt: skip


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
    picture = _cover(hw, tile, halo(shallow_layers(layers)))
    if not segment.deep_layers(layers):
        return Tiling(picture, ())
    return Tiling(picture, _cover((hw[0] // UNIT, hw[1] // UNIT), tile // 2, cut_halo(layers)))


def positions(hw: tuple[int, int], layer: str) -> int:
    """Positions of ``layer``'s map for a picture of ``hw`` (a Gram sum's divisor)."""
    return (hw[0] // stride(layer)) * (hw[1] // stride(layer))
