"""Regions on both sides (jnst.masks), found by clustering (jnst.semantic), through stylize and the CLI."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jnst import StyleConfig, cli, losses, masks, semantic, stylize
from jnst.batch import Batch
from jnst.checkpoint import fingerprint
from jnst.targets import compute_targets
from jnst.vgg import features

FEW = StyleConfig(steps=4, chunk_size=2, scales=(32,))


def halves(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """An image whose left half is ``left``'s and right half ``right``'s (same shapes)."""
    w = left.shape[1] // 2
    return np.concatenate([left[:, :w], right[:, w:]], axis=1)


@pytest.fixture(scope="module")
def textures() -> tuple[np.ndarray, np.ndarray]:
    """Two 64x96 textures unlike each other: red vertical stripes, and smooth blue noise."""
    rng = np.random.default_rng(0)
    stripes = np.zeros((64, 96, 3), np.float32)
    stripes[..., 0] = 0.6 + 0.4 * (np.arange(96) % 6 < 3)
    blue = np.clip(np.array([0.2, 0.3, 0.8]) + 0.05 * rng.standard_normal((64, 96, 3)), 0, 1).astype(np.float32)
    return stripes, blue


def test_kmeans_finds_two_blobs_and_inertia_falls_with_more_centres():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.1, (50, 3)), rng.normal(5, 0.1, (70, 3))]).astype(np.float32)
    centres, inertia = semantic.kmeans(jnp.asarray(x), jnp.asarray([1, 2, 3]), jax.random.key(0), 3)
    two = np.sort(np.asarray(centres[1, :2, 0]))
    np.testing.assert_allclose(two, [0.0, 5.0], atol=0.1)
    assert inertia[0] > 50 * inertia[1] > 50 * inertia[2] * 0.99  # one centre explains nothing of two blobs
    again = semantic.kmeans(jnp.asarray(x), jnp.asarray([2]), jax.random.key(0), 2)[0]
    np.testing.assert_array_equal(np.asarray(again[0]), np.asarray(centres[1, :2]))  # same key, same answer


def test_choose_regions_stops_where_one_more_explains_little():
    assert semantic.choose_regions([100.0, 60.0, 55.0, 54.0], gain=0.1) == 2
    assert semantic.choose_regions([100.0, 99.0], gain=0.1) == 1
    assert semantic.choose_regions([100.0, 50.0, 20.0], gain=0.1) == 3


def test_regions_split_halves_and_match_them_across_a_swap(model, textures):
    """Photo stripes|blue, painting blue|stripes: two regions each, the halves, and each photo
    half takes the painting half of its own texture (not the one at the same place)."""
    stripes, blue = textures
    found = semantic.regions(halves(stripes, blue), halves(blue, stripes), 2, model=model)
    w = stripes.shape[1] // 2
    photo_left = int(np.argmax(found.content[:, :, : w // 2].mean((1, 2))))
    painting_right = int(np.argmax(found.style[0][:, :, -w // 2 :].mean((1, 2))))
    assert found.content[photo_left, :, : w // 2].mean() > 0.8
    assert found.style[0][painting_right, :, -w // 2 :].mean() > 0.8
    assert found.matching[photo_left] == (0, painting_right)
    assert found.matching[1 - photo_left] == (0, 1 - painting_right)
    np.testing.assert_allclose(found.content.sum(0), 1.0, atol=1e-4)  # soft masks share every pixel
    guided = found.masks
    assert guided.content.shape == (2, 64, 96) and guided.style[0].shape == (2, 64, 96)
    np.testing.assert_array_equal(guided.style[0][photo_left], found.style[0][painting_right])


def test_a_region_may_come_from_several_paintings(model, textures):
    """A region over the whole of two style images takes their pixel-weighted mean Gram."""
    stripes, blue = textures
    small = blue[:32, :48]
    content = jnp.asarray(stripes)[None]
    styles = [jnp.asarray(stripes)[None], jnp.asarray(small)[None]]
    guided = masks.GuidedMasks(np.ones((1, 64, 96), np.float32), (np.ones((1, 64, 96)), np.ones((1, 32, 48))))
    cfg = StyleConfig(style_layers=(("block2_conv1", 1.0),))
    targets = compute_targets(model, content, styles, cfg, guided.content, guided.style)
    f = [features(model.graphdef, model.params, s, ("block2_conv1",), cfg.padding)["block2_conv1"] for s in styles]
    sums = [np.asarray(losses.gram_sum(x)[0]) for x in f]
    expected = (sums[0] + sums[1]) / (32 * 48 + 16 * 24)
    np.testing.assert_allclose(np.asarray(targets.grams["block2_conv1"][0]), expected, rtol=1e-4)


def test_style_masks_of_one_region_a_style_are_the_old_masks(model, small_pair, textures):
    """Content masks one per style (the old kind) and the same as GuidedMasks with each style whole
    as its region give the same targets, and the same picture through coarse to fine."""
    content, style = small_pair
    other = np.asarray(Image.fromarray((textures[0] * 255).astype(np.uint8)).resize(style.shape[1::-1])) / 255.0
    styles = [style, other.astype(np.float32)]
    left = np.zeros(content.shape[:2], np.float32)
    left[:, : content.shape[1] // 2] = 1
    old = np.stack([left, 1 - left])
    ones = [np.ones(s.shape[:2], np.float32) for s in styles]
    new = masks.GuidedMasks(old, (np.stack([ones[0], 0 * ones[0]]), np.stack([0 * ones[1], ones[1]])))
    a = stylize(content, styles, FEW, masks=old, model=model).image
    b = stylize(content, styles, FEW, masks=new, model=model).image
    np.testing.assert_allclose(a, b, atol=2e-5)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (lambda hw, s: masks.GuidedMasks(np.ones((2, *hw)), (np.ones((3, *s)),)), "style 1's masks must be"),
        (lambda hw, s: masks.GuidedMasks(np.ones((2, 5, 5)), (np.ones((2, *s)),)), "content masks must be"),
        (lambda hw, s: masks.GuidedMasks(np.ones((1, *hw)), ()), "0 style mask sets for 1 style images"),
        (lambda hw, s: masks.GuidedMasks(np.ones((1, *hw)), (np.zeros((1, *s)),)), "region 1 has no pixels"),
        (lambda hw, s: masks.GuidedMasks(np.full((1, *hw), 2.0), (np.ones((1, *s)),)), "values in [0, 1]"),
        (lambda hw, s: np.ones((2, *hw)), "masks must be (styles, H, W)"),
    ],
)
def test_bad_masks_are_one_line(bad, fragment, small_pair):
    content, style = small_pair
    with pytest.raises(ValueError, match=None) as err:
        Batch.of([content], style, [FEW], bad(content.shape[:2], style.shape[:2]))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_style_masks_are_part_of_the_fingerprint(small_pair):
    content, style = small_pair
    hw, shw = content.shape[:2], style.shape[:2]
    one = np.ones((1, *hw), np.float32)
    left = np.zeros((1, *shw), np.float32)
    left[..., : shw[1] // 2] = 1
    a = Batch.of([content], style, [FEW], masks.GuidedMasks(one, (left,)))
    b = Batch.of([content], style, [FEW], masks.GuidedMasks(one, (1 - left,)))
    fa, fb = fingerprint(a.configs, a.inputs), fingerprint(b.configs, b.inputs)
    assert [k for k in fa if fa[k] != fb[k]] == ["style masks"]


def test_style_of_files():
    assert masks.style_of_files(3, 3, 1) == [0, 0, 0]
    assert masks.style_of_files(4, 2, 2) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="give one a region for each of the 2 style images"):
        masks.style_of_files(2, 2, 2)


def test_from_labels_joins_colours_across_maps():
    photo = np.zeros((4, 6, 3), np.uint8)
    photo[:, 3:] = 255
    first, second = np.zeros((4, 4, 3), np.uint8), np.full((5, 5, 3), 255, np.uint8)
    second[0, 0] = 0
    m = masks.from_labels(photo, [first, second])
    assert m.content.shape == (2, 4, 6) and m.style[0][0].all() and not m.style[0][1].any()
    assert m.style[1][1].sum() == 24 and m.style[1][0].sum() == 1
    with pytest.raises(ValueError, match="#ffffff of the mask map is in no style mask map"):
        masks.from_labels(photo, [first])


def test_cli_semantic_writes_the_picture_and_its_regions(capsys, shared_images, tmp_path):
    out = tmp_path / "out.png"
    code = cli.main(["stylize", str(shared_images / "golden_gate.jpg"), str(shared_images / "shipwreck.jpg"),
                     "--semantic", "2", "--size", "48", "--steps", "4", "-o", str(out), "--quiet"])  # fmt: skip
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "regions in" in stdout
    with Image.open(tmp_path / "out_regions.png") as shown:
        assert shown.height == 36 and shown.width > 2 * 48  # the photo (48x36) and the painting beside it


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--semantic", "0"], "needs at least 1 region"),
        (["--semantic", "two"], "expected a number of regions or 'auto'"),
        (["--semantic", "200"], "more regions than the photo's"),
        (["--semantic", "2", "--style-loss", "wasserstein"], "need the Gram style loss"),
        (["--semantic", "2", "--masks", "{c}"], "--semantic finds the regions itself"),
        (["--style-masks", "{c}"], "--style-masks go with --masks"),
        (["--masks", "{c}", "{c}", "--style-masks", "{c}"], "1 style masks for 2 regions"),
        (["--style-mask-map", "{c}"], "--style-mask-map goes with --mask-map"),
    ],
)
def test_cli_bad_regions_are_one_line_exit_2(extra, fragment, capsys, shared_images, tmp_path, monkeypatch):
    monkeypatch.setattr(
        importlib.import_module("jnst.stylize"), "stylize", lambda *a, **k: pytest.fail("the run started")
    )
    photo = shared_images / "golden_gate.jpg"
    argv = ["stylize", str(photo), str(shared_images / "shipwreck.jpg"), "--size", "48", "-o", str(tmp_path / "o.png")]
    code = cli.main(argv + [x.format(c=photo) for x in extra])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and len(err.splitlines()) == 1 and fragment in err, err


def test_cli_semantic_in_a_folder_batch_and_a_sweep(capsys, shared_images, tmp_path):
    """Two photos into a folder, swept over two style weights, with --semantic 2: each photo its
    own regions (DIR/photo_regions.png) beside its swept images and contact sheet."""
    out = tmp_path / "out"
    code = cli.main(["stylize", str(shared_images / "golden_gate.jpg"), str(shared_images / "tubingen.jpg"),
                     "--style", str(shared_images / "shipwreck.jpg"), "-o", f"{out}/", "--semantic", "2",
                     "--sweep", "style-weight=1,10", "--size", "48", "--steps", "2", "--quiet"])  # fmt: skip
    stderr = capsys.readouterr().err
    assert code == 0, stderr
    names = sorted(p.name for p in out.iterdir())
    for stem in ("golden_gate", "tubingen"):
        assert {f"{stem}_style-weight=1.png", f"{stem}_style-weight=10.png", f"{stem}_sweep.png"} <= set(names)
        with Image.open(out / f"{stem}_regions.png") as shown, Image.open(out / f"{stem}_style-weight=1.png") as im:
            assert shown.height == im.height and shown.width > 2 * im.width
    assert len(names) == 8


def test_cli_semantic_refuses_masks_in_a_batch(capsys, shared_images, tmp_path):
    photo = shared_images / "golden_gate.jpg"
    code = cli.main(["stylize", str(photo), "--style", str(shared_images / "shipwreck.jpg"), "-o", f"{tmp_path}/",
                     "--semantic", "2", "--style-loss", "wasserstein"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and len(err.splitlines()) == 1 and "need the Gram style loss" in err, err


def test_semantic_run_resumes_bitwise_and_other_regions_are_refused(model, small_pair, tmp_path):
    """A run guided by found regions, stopped and resumed from its checkpoint, gives the
    uninterrupted run's image; a resume with other regions is refused, naming the masks."""
    from jnst.checkpoint import CheckpointError, Checkpoints

    content, style = small_pair
    cfg = StyleConfig(steps=6, chunk_size=1, scales=(32,))
    found = semantic.regions(content, style, 2, model=model).masks
    reference = stylize(content, style, cfg, masks=found, model=model).image

    def stop(done: int, *_) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    folder = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        stylize(content, style, cfg, masks=found, model=model, callback=stop,
                checkpoints=Checkpoints(folder, every_steps=1))  # fmt: skip
    resumed = stylize(content, style, cfg, masks=found, model=model, checkpoints=Checkpoints(folder, resume=True))
    np.testing.assert_array_equal(resumed.image, reference)
    swapped = masks.GuidedMasks(found.content, (found.style[0][::-1].copy(),))
    with pytest.raises(CheckpointError, match="style masks"):
        stylize(content, style, cfg, masks=swapped, model=model, checkpoints=Checkpoints(folder, resume=True))


def test_cli_semantic_in_tiles_paints_the_whole_pictures_run(capsys, shared_images, tmp_path):
    """Regions at print size: a run in tiles of 64 px (``--tile``) with ``--semantic`` is the
    whole picture's run (the tiled guided Grams are sums over positions, tests/test_tiles.py)."""
    argv = ["stylize", str(shared_images / "golden_gate.jpg"), str(shared_images / "shipwreck.jpg"),
            "--semantic", "2", "--size", "128", "--steps", "4", "--pooling", "avg", "--quiet"]  # fmt: skip
    assert cli.main([*argv, "-o", str(tmp_path / "whole.png")]) == 0
    assert cli.main([*argv, "-o", str(tmp_path / "tiled.png"), "--tile", "64"]) == 0
    whole, tiled = (np.asarray(Image.open(tmp_path / f"{n}.png"), np.int32) for n in ("whole", "tiled"))
    # Average pooling: a max pooling's gradient jumps where two values tie to rounding (issue 23).
    assert np.abs(whole - tiled).max() <= 1
