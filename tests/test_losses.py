import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnst import losses


def test_gram_by_hand():
    # Two positions (H=1, W=2), two channels: F = [[1, 2], [3, 4]] (rows are positions).
    f = jnp.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    # F^T F = [[1+9, 2+12], [2+12, 4+16]] = [[10, 14], [14, 20]], over H*W = 2.
    np.testing.assert_allclose(losses.gram(f)[0], [[5.0, 7.0], [7.0, 10.0]])


def test_gram_is_symmetric_positive_semidefinite(rng):
    g = np.asarray(losses.gram(jnp.asarray(rng.standard_normal((2, 5, 7, 6), np.float32))))
    np.testing.assert_allclose(g, np.swapaxes(g, 1, 2), rtol=1e-6)
    assert np.linalg.eigvalsh(g).min() > -1e-5


def test_gram_does_not_grow_with_image_size(rng):
    f = jnp.asarray(rng.standard_normal((1, 4, 4, 3), np.float32))
    tiled = jnp.tile(f, (1, 2, 3, 1))  # same statistics, 6x the positions
    np.testing.assert_allclose(losses.gram(tiled), losses.gram(f), rtol=1e-5)


def test_content_loss_by_hand():
    a = jnp.array([[[[1.0, 2.0]]]])
    b = jnp.array([[[[0.0, 4.0]]]])
    assert float(losses.content_loss(a, b)) == pytest.approx((1.0 + 4.0) / 2)


def test_gram_loss_by_hand():
    f = jnp.array([[[[1.0, 2.0], [3.0, 4.0]]]])  # gram = [[5, 7], [7, 10]]
    target = jnp.array([[[4.0, 7.0], [7.0, 12.0]]])
    assert float(losses.gram_loss(f, target)) == pytest.approx((1.0 + 0 + 0 + 4.0) / 4)


def test_style_loss_weights_layers():
    f = {"a": jnp.ones((1, 2, 2, 1)), "b": 2 * jnp.ones((1, 2, 2, 1))}
    targets = {"a": jnp.zeros((1, 1, 1)), "b": jnp.zeros((1, 1, 1))}  # grams are 1 and 4
    assert float(losses.style_loss(f, targets, {"a": 0.5, "b": 0.25})) == pytest.approx(0.5 * 1 + 0.25 * 16)


def test_total_variation_by_hand():
    x = jnp.array([[[[0.0], [1.0]], [[2.0], [4.0]]]])  # 2x2 single channel
    # vertical diffs 2, 3 -> mean 6.5; horizontal diffs 1, 2 -> mean 2.5
    assert float(losses.total_variation_loss(x)) == pytest.approx(6.5 + 2.5)
    assert float(losses.total_variation_loss(jnp.full((1, 3, 3, 3), 0.7))) == 0.0


def test_total_loss_combines_terms():
    assert float(losses.total_loss(2.0, 3.0, 5.0, 1e4, 1e-2, 10.0)) == pytest.approx(2e4 + 3e-2 + 50.0)


def test_losses_zero_for_identical_inputs_with_finite_gradients(rng):
    f = jnp.asarray(rng.standard_normal((1, 4, 5, 3), np.float32))
    g = losses.gram(f)
    for fn in (lambda x: losses.content_loss(x, f), lambda x: losses.gram_loss(x, g)):
        value, grad = jax.value_and_grad(fn)(f)
        assert float(value) == pytest.approx(0.0, abs=1e-10)
        assert np.all(np.isfinite(grad))
    grad = jax.grad(losses.total_variation_loss)(jnp.zeros((1, 4, 4, 3)))
    assert np.all(np.isfinite(grad)) and not np.any(grad)


def test_gram_gradient_matches_autodiff_of_the_einsum(rng):
    f = jnp.asarray(rng.standard_normal((2, 3, 4, 5), np.float32))
    w = jnp.asarray(rng.standard_normal((2, 5, 5), np.float32))

    def reference(x):
        flat = x.reshape(2, 12, 5)
        return jnp.sum(w * jnp.einsum("npc,npd->ncd", flat, flat) / 12)

    np.testing.assert_allclose(
        jax.grad(lambda x: jnp.sum(w * losses.gram(x)))(f), jax.grad(reference)(f), rtol=1e-5, atol=1e-6
    )


def test_guided_gram_of_hard_masks_is_each_regions_own_gram(rng):
    f = jnp.asarray(rng.standard_normal((1, 4, 6, 3), np.float32))
    left = jnp.zeros((4, 6)).at[:, :2].set(1.0)
    masks = jnp.stack([left, 1.0 - left])
    sums = losses.guided_gram_sums(f, masks)
    np.testing.assert_allclose(sums[0], losses.gram_sum(f[:, :, :2])[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sums[1], losses.gram_sum(f[:, :, 2:])[0], rtol=1e-6, atol=1e-6)
    # Each region at its own Gram (the right region's times 4: its error is the left's, scaled):
    targets = jnp.stack([sums[0] / 8, 4 * sums[1] / 16])
    right_error = losses.squared_error(sums[1] / 16, targets[1])
    assert float(losses.guided_gram_loss(f, targets, masks)) == pytest.approx(16 / 24 * float(right_error), rel=1e-5)


def test_guided_gram_gradient_matches_autodiff_of_the_weighted_einsum(rng):
    f = jnp.asarray(rng.standard_normal((1, 3, 4, 5), np.float32))
    masks = jnp.asarray(rng.uniform(size=(3, 3, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 5, 5), np.float32))

    def reference(x):
        flat, d = x.reshape(12, 5), jnp.square(masks).reshape(3, 12)
        return jnp.sum(w * jnp.einsum("rp,pc,pd->rcd", d, flat, flat))

    np.testing.assert_allclose(
        jax.grad(lambda x: jnp.sum(w * losses.guided_gram_sums(x, masks)))(f),
        jax.grad(reference)(f),
        rtol=1e-5,
        atol=1e-5,
    )


def _w2_reference(mean_a, cov_a, mean_b, cov_b):
    def sqrtm(m):
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.maximum(w, 0))) @ v.T

    cross = sqrtm(sqrtm(cov_b) @ cov_a @ sqrtm(cov_b))
    return np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * cross)


def test_wasserstein_matches_closed_form(rng):
    f = rng.standard_normal((1, 6, 7, 4)).astype(np.float32) * [1.0, 2.0, 0.5, 1.5]
    g = rng.standard_normal((1, 5, 5, 4)).astype(np.float32) + 0.3
    mean_f, cov_f = (np.asarray(x, np.float64) for x in losses.gaussian_fit(jnp.asarray(f)))
    mean_g, cov_g = (np.asarray(x, np.float64) for x in losses.gaussian_fit(jnp.asarray(g)))
    np.testing.assert_allclose(mean_f, f.reshape(-1, 4).mean(0), rtol=1e-5)
    np.testing.assert_allclose(cov_f, np.cov(f.reshape(-1, 4), rowvar=False, bias=True), rtol=1e-4, atol=1e-5)
    ours = losses.wasserstein_loss(
        jnp.asarray(f), jnp.asarray(mean_g), jnp.asarray(cov_g), losses.psd_sqrt(jnp.asarray(cov_g, jnp.float32))
    )
    assert float(ours) == pytest.approx(_w2_reference(mean_f, cov_f, mean_g, cov_g) / 4, rel=1e-3)


def test_wasserstein_zero_for_own_statistics_with_finite_gradient(rng):
    f = jnp.asarray(rng.standard_normal((1, 8, 8, 3)).astype(np.float32))
    mean, cov = losses.gaussian_fit(f)
    value, grad = jax.value_and_grad(losses.wasserstein_loss)(f, mean, cov, losses.psd_sqrt(cov))
    assert float(value) == pytest.approx(0.0, abs=1e-3)
    assert np.all(np.isfinite(grad))


def test_unit_grad_norm_gives_gradients_of_l1_norm_about_one_at_any_scale(rng):
    d = rng.standard_normal((1, 6, 5, 8)).astype(np.float32)
    target = rng.standard_normal((1, 6, 5, 8)).astype(np.float32)

    def l1(scale: float) -> float:
        x, t = jnp.asarray(scale * (target + d)), jnp.asarray(scale * target)
        return float(jnp.sum(jnp.abs(jax.grad(lambda v: losses.squared_error(v, t, "unit_grad"))(x))))

    assert 0.8 < l1(1.0) < 1.3
    assert l1(1e-3) == pytest.approx(l1(1.0), rel=1e-3) and l1(1e3) == pytest.approx(l1(1.0), rel=1e-3)


def test_target_norm_is_a_relative_error(rng):
    x = jnp.asarray(rng.standard_normal((1, 4, 4, 3), np.float32))
    target = jnp.asarray(rng.standard_normal((1, 4, 4, 3), np.float32))
    a = losses.squared_error(x, target, "target")
    b = losses.squared_error(10 * x, 10 * target, "target")
    assert float(a) == pytest.approx(float(b), rel=1e-5)
    assert float(losses.squared_error(x, target, "mean")) == pytest.approx(float(jnp.mean((x - target) ** 2)))


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="unknown norm 'l3'"):
        losses.squared_error(jnp.zeros(2), jnp.ones(2), "l3")
