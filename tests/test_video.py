"""Video pieces: optical flow, warping, the forward-backward check, the temporal loss."""

import jax.numpy as jnp
import numpy as np
import pytest

from jnst.targets import Targets
from jnst.temporal import Temporal, temporal_loss

pytest.importorskip("cv2")

from jnst import flow  # noqa: E402


def _scene(hw=(64, 64), seed=0):
    """A smooth random RGB texture in [0, 1] (big enough to cut windows from)."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((hw[0] // 4, hw[1] // 4, 3)).astype(np.float32)
    return cv2.resize(noise, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def test_flow_recovers_a_known_shift():
    big = _scene((96, 96))
    a, b = big[16:80, 16:80], big[16:80, 19:83]  # b is a moved 3 px left: a[y, x] = b[y, x - 3]
    f = flow.flow(a, b)
    inner = f[8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(-3.0, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.3)


def test_warp_lines_up_along_a_known_flow():
    big = _scene((96, 96))
    a, b = big[16:80, 16:80], big[16:80, 19:83]
    f = np.zeros((64, 64, 2), np.float32)
    f[..., 0] = -3.0
    warped = flow.warp(b, f)
    np.testing.assert_allclose(warped[:, 3:], a[:, 3:], atol=1e-5)


def test_reliable_is_zero_outside_and_at_occlusions():
    h, w = 32, 32
    backward = np.zeros((h, w, 2), np.float32)
    backward[..., 0] = -3.0  # every pixel comes from 3 px to its left
    forward = -backward.copy()
    mask = flow.reliable(backward, forward)
    assert mask[:, :3].max() == 0.0  # sources outside the frame
    assert mask[:, 4:].min() == 1.0
    forward[:, 10:14] = 0.0  # the reverse flow disagrees there: occluded
    mask = flow.reliable(backward, forward)
    assert mask[:, 14:16].max() == 0.0


def test_long_term_masks_are_exclusive():
    m = flow.long_term_masks([np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])])
    np.testing.assert_array_equal(m, [[[1.0, 0.0]], [[0.0, 1.0]]])


def test_temporal_loss_zero_on_the_warped_image_and_a_golden_value():
    img = jnp.asarray(_scene((8, 8)))[None]
    t = Temporal.of(np.asarray(img), np.ones((1, 8, 8)), 2.0)
    assert float(temporal_loss(img, t)) == 0.0
    masks = np.zeros((1, 8, 8))
    masks[0, :4] = 1.0
    t = Temporal.of(np.asarray(img) + 0.5, masks, 2.0)
    # 2 * (32 pixels * 3 channels * 0.25) / (8 * 8 * 3) = 0.25
    assert float(temporal_loss(img, t)) == pytest.approx(0.25, rel=1e-6)


def test_temporal_at_resizes_and_keeps_itself_at_its_size():
    t = Temporal.of(np.zeros((1, 8, 8, 3)), np.ones((1, 8, 8)), 1.0)
    assert t.at((8, 8)) is t
    small = t.at((4, 4))
    assert small.images.shape == (1, 4, 4, 3) and small.masks.shape == (1, 4, 4, 1)


def test_a_still_has_no_temporal_term():
    assert Targets({}, {}, {}, {}).temporal == ()


def test_stylize_with_a_temporal_term_reports_it_and_pulls_towards_the_warped_image(model, small_pair):
    from jnst import StyleConfig, stylize

    content, style = small_pair
    cfg = StyleConfig(steps=6, chunk_size=3)
    h, w = content.shape[:2]
    t = Temporal.of(np.asarray(content, np.float32)[None], np.ones((1, h, w)), 1e4)
    pulled = stylize(content, style, cfg, model=model, temporal=t)
    free = stylize(content, style, cfg, model=model)
    assert np.abs(pulled.image - content).mean() <= np.abs(free.image - content).mean() + 1e-6
