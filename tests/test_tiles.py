"""Tiles: the tiled gradient is the whole picture's, and a tiled picture has no seams; the memory
plan that chooses them."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnst import StyleConfig, stylize, tiled_objective, tiled_targets, tiles
from jnst.cli import main
from jnst.objective import Weights, objective
from jnst.targets import compute_targets
from jnst.vgg import Model

LAYERS = StyleConfig().layers
TILE = 96  # a step on 256x192: 3 x 3 picture tiles (8 px halos), 2 x 1 tiles of the 64x48 map (8 px halos)


@pytest.fixture(scope="module")
def pair(shared_images):
    """tubingen x starry_night at 256x192: larger than a tile, so it splits."""
    from jnst.images import load_image, load_style

    content = load_image(shared_images / "tubingen.jpg", 256)
    return content, load_style(shared_images / "starry_night.jpg", content.shape[:2])


@pytest.mark.parametrize(("hw", "tile"), [((192, 256), 512), ((700, 1000), 512), ((208, 208), 512), ((1000, 209), 40)])
def test_target_tiles_cover_the_picture_once_on_the_pooling_grid(hw, tile):
    """Targets' tiles carry the deepest layer's halo (40 px), in windows of at least four halos
    even where a step's tiles are smaller (40 px: the smallest the step's own halos allow)."""
    plan = tiles.plan(hw, tile, LAYERS)
    halo = tiles.halo(LAYERS)
    covered = np.zeros(hw, int)
    for t in plan:
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert t.wy0 % 8 == 0 and t.wx0 % 8 == 0  # block4_conv2's three poolings see the picture's grid
        assert t.wy1 - t.wy0 <= max(tile, 4 * halo) and t.wx1 - t.wx0 <= max(tile, 4 * halo)
        assert t.wy0 == max(0, t.y0 - halo) and t.wy1 == min(hw[0], t.y1 + halo)
        assert t.wx0 == max(0, t.x0 - halo) and t.wx1 == min(hw[1], t.x1 + halo)
    assert (covered == 1).all()
    assert len({(t.wy1 - t.wy0, t.wx1 - t.wx0) for t in plan}) <= 4  # at most four compilations


@pytest.mark.parametrize("hw", [(192, 256), (700, 1000), (208, 208), (1000, 209)])
def test_a_steps_tiles_cover_the_picture_and_the_cut_map_once_on_their_grids(hw):
    tiling = tiles.step_plan(hw, 512, LAYERS)
    cut_hw = (hw[0] // 4, hw[1] // 4)
    for plan, size, side, halo, step in [(tiling.picture, hw, 512, 8, 4), (tiling.cut, cut_hw, 256, 8, 2)]:
        covered = np.zeros(size, int)
        for t in plan:
            covered[t.y0 : t.y1, t.x0 : t.x1] += 1
            assert t.wy0 % step == 0 and t.wx0 % step == 0  # the poolings see the picture's grid
            assert t.wy1 - t.wy0 <= side and t.wx1 - t.wx0 <= side
            assert t.wy0 == max(0, t.y0 - halo) and t.wy1 == min(size[0], t.y1 + halo)
            assert t.wx0 == max(0, t.x0 - halo) and t.wx1 == min(size[1], t.x1 + halo)
        assert (covered == 1).all()


STYLE = StyleConfig().style_layers
POOLS = {"block2_conv1": "block2_pool", "block3_conv1": "block3_pool"}
POOLED = tuple((POOLS.get(name, name), w) for name, w in STYLE)


@pytest.mark.parametrize(
    ("norm", "content", "style", "cut_tiles"),
    [
        ("unit_grad", "block4_conv2", STYLE, 2),
        ("mean", "block4_conv2", STYLE, 2),
        ("mean", "block4_conv2", POOLED, 2),  # poolings' outputs: the cut's own, and one on a stride 8 grid
        ("mean", "block2_conv2", STYLE[:2], 0),  # no layer past the cut: picture tiles only
    ],
)
def test_tiled_value_and_gradient_equal_the_whole_pictures(model, pair, norm, content, style, cut_tiles):
    content_image, style_image = (jnp.asarray(x)[None] for x in pair)
    config = StyleConfig(loss_norm=norm, content_layers=((content, 1.0),), style_layers=style)
    targets = compute_targets(model, content_image, [style_image], config)
    image = 0.8 * content_image + 0.2 * jax.random.uniform(jax.random.key(0), content_image.shape)
    net = (model.graphdef, model.params)
    grad = jax.jit(jax.value_and_grad(objective, has_aux=True), static_argnums=(1, 5))
    (value, terms), expected = grad(image, *net, targets, Weights.of(config), config.compiled_part())
    tiling = tiles.step_plan(content_image.shape[1:3], TILE, config.layers)
    assert len(tiling.picture) == 9 and len(tiling.cut) == cut_tiles
    replicas = tiled_objective.replicate(model.params, targets)
    (tiled_value, tiled_terms), got = tiled_objective.value_and_grad(
        image, model.graphdef, replicas, Weights.of(config), config.compiled_part(), tiling
    )
    np.testing.assert_allclose(tiled_value, value, rtol=1e-5)
    for name in terms:
        np.testing.assert_allclose(tiled_terms[name], terms[name], rtol=1e-5)
    assert float(jnp.linalg.norm(got - expected) / jnp.linalg.norm(expected)) < 1e-5


@pytest.mark.parametrize(
    ("content_layer", "part", "halo", "short"),
    [("block4_conv2", "halo", 8, 4), ("block4_conv2", "cut_halo", 8, 6), ("block5_conv1", "cut_halo", 16, 12)],
)
def test_each_halo_is_what_its_layers_read(weights, pair, monkeypatch, content_layer, part, halo, short):
    """A step's picture tiles read 8 px around (``block2_pool`` reaches 6 px), its map tiles as
    far as the deepest layer reaches past the cut (8 and 16 of the map's pixels, for 38 and 70 px
    in all): exact with those halos, measurably wrong with a ``short`` one.

    Average pooling, which reads the same pixels as max pooling: a max pooling's gradient jumps
    where a window's two largest values are a rounding apart, so two roundings of one picture
    differ by more than rounding. Eager against jitted, this whole picture's gradient is 9.7e-4
    apart with max pooling (on an AVX-512 EPYC and on an AMX Xeon) and 1.6e-7 with average.
    """
    model = Model.create(weights, pooling="avg")
    content, style = (jnp.asarray(x)[None] for x in pair)
    config = StyleConfig(content_layers=((content_layer, 1.0),), pooling="avg")
    targets = compute_targets(model, content, [style], config)
    image = 0.8 * content + 0.2 * jax.random.uniform(jax.random.key(1), content.shape)
    net, weights, compiled = (model.graphdef, model.params), Weights.of(config), config.compiled_part()
    _, expected = jax.value_and_grad(objective, has_aux=True)(image, *net, targets, weights, compiled)

    def error() -> tuple[int, float]:
        tiling = tiles.step_plan(content.shape[1:3], TILE, config.layers)
        assert len(tiling.picture) > 1 and len(tiling.cut) > 1
        read = max(t.x0 - t.wx0 for t in (tiling.picture if part == "halo" else tiling.cut))
        replicas = tiled_objective.replicate(model.params, targets)
        _, got = tiled_objective.value_and_grad(image, model.graphdef, replicas, weights, compiled, tiling)
        return read, float(jnp.linalg.norm(got - expected) / jnp.linalg.norm(expected))

    read, exact = error()
    assert read == halo
    monkeypatch.setattr(tiles, part, lambda layers: short)
    read, wrong = error()
    assert read == short and exact < 2e-6 and wrong > 10 * exact, (exact, wrong)  # rounding vs missing pixels


def test_tiled_targets_equal_the_whole_pictures(model, pair):
    content, style = (jnp.asarray(x)[None] for x in pair)
    config = StyleConfig()
    whole = compute_targets(model, content, [style], config)
    tiled = tiled_targets.compute_targets(model.graphdef, model.params, content, [style], config, TILE)
    for name in whole.content:
        np.testing.assert_allclose(tiled.content[name], whole.content[name], rtol=1e-5, atol=1e-4)
    for name in whole.grams:
        np.testing.assert_allclose(tiled.grams[name], whole.grams[name], rtol=1e-4, atol=1e-2)


def soft_masks(hw: tuple[int, int], axis: int) -> np.ndarray:
    """Two soft regions (2, H, W) that blend across ``axis``, neither summing to 1 nor 0 anywhere."""
    ramp = np.linspace(-3, 3, hw[axis], dtype=np.float32)
    left = 1 / (1 + np.exp(np.expand_dims(ramp, 1 - axis) * np.ones(hw, np.float32)))
    return np.stack([0.9 * left, 0.2 + 0.7 * (1 - left)])


@pytest.mark.parametrize("style_side", [True, False])
def test_tiled_targets_and_gradient_with_masks_equal_the_whole_pictures(model, pair, style_side):
    """Two regions of soft masks on the photo and (``style_side``) on the style image, or one
    region a style image: the tiled targets, value and gradient are the whole picture's."""
    from jnst.masks import GuidedMasks

    content, style = (jnp.asarray(x)[None] for x in pair)
    hw = content.shape[1:3]
    guided = GuidedMasks(soft_masks(hw, 1), (soft_masks(style.shape[1:3], 0),))
    styles, style_masks = ([style], guided.style) if style_side else ([style, 1 - style], None)
    config = StyleConfig(content_layers=(("block4_conv2", 1.0),))
    whole = compute_targets(model, content, styles, config, guided.content, style_masks)
    tiled = tiled_targets.compute_targets(model.graphdef, model.params, content, styles, config, TILE,
                                          guided.content, style_masks)  # fmt: skip
    for name in whole.grams:
        assert tiled.grams[name].shape == whole.grams[name].shape == (2, *whole.grams[name].shape[1:])
        # Measured: 1.6e-6 apart relative to |G| + 1e-2.
        np.testing.assert_allclose(tiled.grams[name], whole.grams[name], rtol=1e-5, atol=1e-2)
        np.testing.assert_array_equal(tiled.masks[name], whole.masks[name])
    image = 0.8 * content + 0.2 * jax.random.uniform(jax.random.key(2), content.shape)
    net, weights, compiled = (model.graphdef, model.params), Weights.of(config), config.compiled_part()
    grad = jax.jit(jax.value_and_grad(objective, has_aux=True), static_argnums=(1, 5))
    (value, terms), expected = grad(image, *net, whole, weights, compiled)
    tiling = tiles.step_plan(hw, TILE, config.layers)
    assert len(tiling.picture) == 9 and len(tiling.cut) == 2
    replicas = tiled_objective.replicate(model.params, whole)
    (tiled_value, tiled_terms), got = tiled_objective.value_and_grad(
        image, model.graphdef, replicas, weights, compiled, tiling
    )
    np.testing.assert_allclose(tiled_value, value, rtol=1e-5)
    for name in terms:
        np.testing.assert_allclose(tiled_terms[name], terms[name], rtol=1e-5)
    error = float(jnp.linalg.norm(got - expected) / jnp.linalg.norm(expected))
    # Measured: 1.7e-7 (max pooling, an AVX-512 EPYC), as without masks; terms equal to float32.
    assert error < 2e-6, error


def test_a_tiled_picture_has_no_seams(model, pair):
    content, style = pair
    config = StyleConfig(steps=10, scale_start=0)
    result = stylize(content, style, config, model=model, tile=TILE)
    whole = stylize(content, style, config, model=model)
    # Across the columns where the tiles' interiors meet (the picture's tiles' and the cut map's),
    # neighbouring pixels differ no more than across the picture's other columns.
    step = np.abs(np.diff(result.image, axis=1)).mean(axis=(0, 2))  # column c-1 -> c, per c
    tiling = tiles.step_plan(content.shape[:2], TILE, LAYERS)
    seams = sorted(({t.x0 for t in tiling.picture} | {4 * t.x0 for t in tiling.cut}) - {0})
    others = np.delete(step, [c - 1 for c in seams])
    assert step[[c - 1 for c in seams]].max() <= np.percentile(others, 90), (
        step[[c - 1 for c in seams]],
        np.median(others),
    )
    np.testing.assert_allclose(result.losses["total"], whole.losses["total"], rtol=0.02)


def test_tile_errors(model, pair, capsys, shared_images, tmp_path):
    content, style = pair
    with pytest.raises(ValueError, match="tiles of 32 px are too small for these layers' halos: .* at least 40 px"):
        tiles.step_plan((500, 500), 32, LAYERS)
    with pytest.raises(ValueError, match="tiles of 100 px break VGG19's pooling grid .* multiple of 8 px"):
        tiles.plan((500, 500), 100, LAYERS)
    with pytest.raises(ValueError, match="tiles of 112 px are too small for these layers' halos: .* at least 128 px"):
        tiles.step_plan((500, 500), 112, ["block5_conv4"])  # the seed preset's content layer
    with pytest.raises(ValueError, match="tiles work on one image, without --shard"):
        from jnst.stylize import stylize_batch

        stylize_batch([content, content], style, [StyleConfig(steps=1)], model=model, tile=TILE)
    with pytest.raises(ValueError, match="tiles compute the Gram style loss only, not 'wasserstein'"):
        stylize_batch([content], style, [StyleConfig(steps=1, style_loss="wasserstein")], model=model, tile=TILE)
    out = tmp_path / "out.png"
    args = [str(shared_images / "tubingen.jpg"), str(shared_images / "starry_night.jpg"), "-o", str(out)]
    assert main(["stylize", *args, "--size", "64", "--tile", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jnst: error: tiles of 32 px are too small") and "\n" not in err
    assert not out.exists()


def test_memory_plan_runs_whole_when_it_fits_and_in_tiles_when_not(model, monkeypatch):
    from jnst import memory
    from jnst.memory import plan_memory, tiled_bytes
    from jnst.schedule import Pass

    monkeypatch.setattr(memory, "resident_bytes", lambda: 2**29)  # what the process holds: fixed

    kw = {"passes": [Pass(1024, (768, 1024), 5, 1)], "unroll": True}  # compiled, not run
    whole = plan_memory(model, StyleConfig(), budget=2**40, **kw)
    assert (whole.tile, whole.tiles) == (0, 1) and whole.peak > 2**29
    tight = plan_memory(model, StyleConfig(), budget=whole.peak - 1, **kw)
    assert tight.tile and tight.tiles > 1 and tight.peak < whole.peak
    # Room for half the side (a quarter of the pixels) in the smallest tiles: that is what it names.
    floor = memory.floor_tile(LAYERS)
    half = 2**29 + memory.RUNTIME_BYTES + tiled_bytes(model, (384, 512), StyleConfig(), floor)
    with pytest.raises(ValueError, match=r"does not fit in .* the largest that fits is about (\d+) px") as error:
        plan_memory(model, StyleConfig(), budget=half, **kw)
    assert 450 <= int(re.search(r"about (\d+) px", str(error.value))[1]) <= 580


def test_dry_run_prints_the_plan_and_writes_nothing(shared_images, tmp_path, capsys):
    out = tmp_path / "out.png"
    args = ["stylize", str(shared_images / "tubingen.jpg"), str(shared_images / "starry_night.jpg"), "-o", str(out)]
    assert main([*args, "--size", "256", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "128 px x 40, 181 px x 47, 256 px x 54" in printed and "256x192, whole, 1 step a chunk" in printed
    assert "peak memory:" in printed and not out.exists()
    # Without --max-memory a CPU run plans for 3/4 of the memory available, and says so.
    available = float(
        re.search(r"allowed: 3/4 of the ([0-9.]+) GB available, the rest left to the desktop", printed)[1]
    )
    allowed = float(re.search(r"of the ([0-9.]+) GB allowed", printed)[1])
    assert abs(allowed - 0.75 * available) <= 0.1, printed
    assert main([*args[:3], "--size", "256", "--dry-run"]) == 0 and "allowed:" in capsys.readouterr().out  # no -o
    assert main(args[:3]) == 2
    assert capsys.readouterr().err.strip() == (
        "jnst: error: -o/--output is required (only a --dry-run of one picture runs without one)"
    )
    assert main([*args, "--size", "256", "--max-memory", "1M"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jnst: error: a 256x192 picture does not fit in 1 MB") and "no picture fits" in err
    assert "\n" not in err
    assert not out.exists()
    assert main([*args, "--max-memory", "lots"]) == 2
    assert "'lots' is not a memory size" in capsys.readouterr().err


def test_progress_shows_the_pass_and_the_tile(shared_images, tmp_path, capsys):
    out = tmp_path / "out.png"
    args = ["stylize", str(shared_images / "tubingen.jpg"), str(shared_images / "starry_night.jpg"), "-o", str(out)]
    assert main([*args, "--size", "256", "--tile", str(TILE), "--steps", "2", "--scales", "none"]) == 0
    err = capsys.readouterr().err
    assert "pass 1/1 256x192 · tile 2/11 (statistics)" in err and "pass 1/1 256x192 · tile 11/11 (gradient)" in err
    assert out.exists()


# In a fresh process with 4 CPU devices (XLA_FLAGS must be set before JAX starts).
DEVICES_SCRIPT = """
import json, sys
import jax, jax.numpy as jnp
from jnst import StyleConfig, tiles
from jnst.images import load_image, load_style
from jnst.objective import Weights
from jnst.targets import compute_targets
from jnst.tiled_objective import replicate, value_and_grad
from jnst.vgg import Model

content = jnp.asarray(load_image(f"{sys.argv[1]}/tubingen.jpg", 256))[None]
style = jnp.asarray(load_style(f"{sys.argv[1]}/starry_night.jpg", content.shape[1:3]))[None]
config = StyleConfig()
model = Model.create()
targets = compute_targets(model, content, [style], config)
image = 0.8 * content + 0.1
plan = tiles.step_plan(content.shape[1:3], int(sys.argv[2]), config.layers)
rest = (Weights.of(config), config.compiled_part(), plan)
(v1, _), g1 = value_and_grad(image, model.graphdef, replicate(model.params, targets), *rest)
heard = []
replicas = replicate(model.params, targets, jax.devices())
(v4, _), g4 = value_and_grad(image, model.graphdef, replicas, *rest, lambda *a: heard.append(a))
print(json.dumps({"devices": len(jax.devices()), "tiles": [len(plan.picture), len(plan.cut)], "heard": heard,
                  "on_first": g4.devices() == {jax.devices()[0]}, "value": abs(float(v4 - v1)) / abs(float(v1)),
                  "grad": float(jnp.linalg.norm(g4 - g1) / jnp.linalg.norm(g1))}))
"""


def test_tiles_spread_over_devices_give_the_one_device_gradient(shared_images):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT, str(shared_images), str(TILE)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["devices"] == 4 and got["tiles"] == [9, 2]
    # Forward: the 9 picture tiles in groups of four, then the 2 map tiles; backward, the other way.
    statistics, gradient = [4, 8, 9, 11], [2, 6, 10, 11]
    assert got["heard"] == [["statistics", k, 11] for k in statistics] + [["gradient", k, 11] for k in gradient]
    assert got["on_first"]  # the gradient is gathered on the first device
    assert got["value"] < 1e-6 and got["grad"] < 1e-6
