"""Each artist's control does what it says (on small images, without asserting exact pixels)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jnst import StyleConfig, color, losses, stylize, vgg
from jnst.images import load_image, load_style
from jnst.targets import layer_masks

STEPS = StyleConfig(steps=20, chunk_size=10)


@pytest.fixture(scope="module")
def scream(shared_images, small_pair):
    return load_style(shared_images / "the_scream.jpg", small_pair[0].shape[:2])


def region_gram(model, image, mask, layer="block2_conv1"):
    """Gram matrix of ``layer`` over the region where ``mask`` (H, W) is 1."""
    acts = vgg.features(model.graphdef, model.params, jnp.asarray(image)[None], (layer,))[layer]
    m = layer_masks(jnp.asarray(mask)[None], (layer,))[layer]
    f = np.asarray(acts[0]).reshape(-1, acts.shape[-1])[np.asarray(m).ravel() > 0.5]
    return f.T @ f / len(f)


def full_gram(model, image, layer="block2_conv1"):
    acts = vgg.features(model.graphdef, model.params, jnp.asarray(image)[None], (layer,))[layer]
    return np.asarray(losses.gram(acts)[0])


def test_luminance_only_keeps_content_chroma(model, small_pair):
    content, style = small_pair
    result = stylize(content, style, STEPS.replace(color="luminance"), model=model)
    iq_out, iq_content = color.rgb_to_yiq(result.image)[..., 1:], color.rgb_to_yiq(content)[..., 1:]
    assert np.abs(iq_out - iq_content).mean() < 0.01  # only clipping to [0, 1] may move chroma
    y_out, y_content = color.rgb_to_yiq(result.image)[..., 0], color.rgb_to_yiq(content)[..., 0]
    assert np.abs(y_out - y_content).mean() > 0.02  # while the luminance was stylized


def test_color_match_gives_style_the_content_statistics(small_pair):
    content, style = small_pair
    matched = color.match_colors(style, content)
    np.testing.assert_allclose(matched.reshape(-1, 3).mean(0), content.reshape(-1, 3).mean(0), atol=0.02)
    np.testing.assert_allclose(
        np.cov(matched.reshape(-1, 3), rowvar=False), np.cov(content.reshape(-1, 3), rowvar=False), atol=0.005
    )


def test_yiq_round_trip(rng):
    rgb = rng.random((4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(color.yiq_to_rgb(color.rgb_to_yiq(rgb)), rgb, atol=1e-5)


def test_masked_region_moves_toward_its_own_style(model, small_pair, scream):
    """Swapping the masks swaps which style each half ends up closer to."""
    content, starry = small_pair
    left = np.zeros(content.shape[:2], np.float32)
    left[:, : content.shape[1] // 2] = 1.0
    targets = {"starry": full_gram(model, starry), "scream": full_gram(model, scream)}
    cfg = STEPS.replace(steps=30)
    starry_left = stylize(content, [starry, scream], cfg, masks=np.stack([left, 1 - left]), model=model).image
    scream_left = stylize(content, [starry, scream], cfg, masks=np.stack([1 - left, left]), model=model).image
    for region, name in ((left, "starry"), (1 - left, "scream")):
        own = region_gram(model, starry_left, region)  # this region was given style `name`
        swapped = region_gram(model, scream_left, region)  # here it had the other style
        assert np.linalg.norm(own - targets[name]) < np.linalg.norm(swapped - targets[name])


def test_layer_masks_match_layer_resolutions(model):
    masks = jnp.ones((2, 37, 51))
    layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
    acts = vgg.features(model.graphdef, model.params, jnp.zeros((1, 37, 51, 3)), layers)
    for name, m in layer_masks(masks, layers).items():
        assert m.shape == (2, *acts[name].shape[1:3])


def test_blend_weights_move_between_single_style_results(model, small_pair, scream):
    content, starry = small_pair
    targets = [full_gram(model, starry), full_gram(model, scream)]
    distance_to_starry = []
    for blend in ((1.0, 0.0), (0.5, 0.5), (0.0, 1.0)):
        result = stylize(content, [starry, scream], STEPS.replace(style_blend=blend), model=model)
        g = full_gram(model, result.image)
        distance_to_starry.append(np.linalg.norm(g - targets[0]) - np.linalg.norm(g - targets[1]))
    assert distance_to_starry[0] < distance_to_starry[1] < distance_to_starry[2]


def test_multiscale_yields_requested_size(model, small_pair):
    content, style = small_pair
    cfg = STEPS.replace(steps=9, scale_start=24, scale_factor=1.5, snapshot_every=3)
    assert cfg.pyramid(64) == (24, 36, 54, 64)
    result = stylize(content, style, cfg, model=model)
    assert result.image.shape == content.shape
    assert all(img.shape == content.shape for _, img in result.snapshots)
    assert [s for s, _ in result.snapshots] == [0, 3, 6, 9]


def test_lbfgs_beats_adam_per_evaluation(model, small_pair):
    """One value-and-gradient evaluation per step for both, so equal steps = equal evaluations."""
    content, style = small_pair
    adam = stylize(content, style, StyleConfig(steps=40, chunk_size=10, optimizer="adam"), model=model)
    lbfgs = stylize(content, style, StyleConfig(steps=40, chunk_size=10, optimizer="lbfgs"), model=model)
    assert lbfgs.losses["total"][-1] < adam.losses["total"][-1]


def test_style_scale_sizes_style_relative_to_content(shared_images):
    painting = load_image(shared_images / "starry_night.jpg")
    style = load_style(shared_images / "starry_night.jpg", (48, 64), scale=0.5)
    height, width = style.shape[:2]
    assert abs(height * width - 0.25 * 48 * 64) <= height + width  # scale² x the content's pixels
    assert abs(width / height - painting.shape[1] / painting.shape[0]) < 2 / height  # the painting's aspect


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"style_blend": (-1.0, 1.0)}, "style_blend weights"),
        ({"color": "sepia"}, "color must be one of"),
        ({"scales": (256, 128)}, "scales must be increasing"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
    ],
)
def test_control_config_validates(changes, message):
    with pytest.raises(ValueError, match=message):
        StyleConfig().replace(**changes)


def test_blend_needs_one_weight_per_style(model, small_pair):
    content, style = small_pair
    with pytest.raises(ValueError, match="style_blend has 3 weights for 2 style images"):
        stylize(content, [style, style], STEPS.replace(style_blend=(1.0, 1.0, 1.0)), model=model)


def test_wasserstein_style_loss_lowers_the_loss(model, small_pair):
    content, style = small_pair
    result = stylize(content, style, STEPS.replace(style_loss="wasserstein"), model=model)
    assert result.losses["style"][-1] < 0.8 * result.losses["style"][0]


def test_ema_output_is_smoother_than_the_last_iterate(model, small_pair):
    content, style = small_pair
    raw = stylize(content, style, STEPS.replace(steps=30, optimizer="adam", learning_rate=0.1), model=model).image
    averaged = stylize(
        content, style, STEPS.replace(steps=30, optimizer="adam", learning_rate=0.1, ema=0.9), model=model
    ).image
    tv = [float(losses.total_variation_loss(jnp.asarray(x)[None])) for x in (raw, averaged)]
    assert tv[1] < tv[0]


def test_masks_need_the_gram_loss(model, small_pair):
    content, style = small_pair
    with pytest.raises(ValueError, match="masks need the Gram style loss"):
        stylize(
            content, style, STEPS.replace(style_loss="wasserstein"), masks=np.ones((1, *content.shape[:2])), model=model
        )


def test_bfloat16_compute_tracks_float32(model, small_pair):
    content, style = small_pair
    f32 = stylize(content, style, STEPS, model=model)
    bf16 = stylize(content, style, STEPS.replace(compute_dtype="bfloat16"), model=model)
    assert bf16.image.dtype == np.float32
    assert bf16.losses["total"][-1] < 0.9 * bf16.losses["total"][0]
    np.testing.assert_allclose(bf16.losses["total"][0], f32.losses["total"][0], rtol=0.05)


def test_passes_too_small_for_the_layers_are_skipped(model, small_pair):
    content, style = small_pair  # 64 px: block5 needs 16 px a side, so a 16 px pass cannot run
    result = stylize(content, style, STEPS.replace(steps=4, scales=(16, 32)), model=model)
    assert np.isfinite(result.losses["total"]).all() and result.image.shape == content.shape


def test_too_small_image_is_refused(model, small_pair):
    _, style = small_pair
    with pytest.raises(ValueError, match="content image is 7x5; its layers need at least 8 px a side"):
        stylize(np.zeros((5, 7, 3), np.float32), style, STEPS, model=model)
