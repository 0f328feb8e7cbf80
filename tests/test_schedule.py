import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnst import StyleConfig
from jnst.loop import LoopState, moving_average, optimizer
from jnst.schedule import next_pass, resize, steps_per_pass


@pytest.mark.parametrize(
    "steps, passes, ratio, quantum", [(140, 3, 2.0, 5), (400, 5, 1.5, 5), (7, 3, 2.0, 5), (3, 3, 2.0, 5)]
)
def test_steps_per_pass_sum_and_never_empty(steps, passes, ratio, quantum):
    shares = steps_per_pass(steps, passes, ratio, quantum)
    assert len(shares) == passes and sum(shares) == steps and min(shares) >= 1


def test_steps_per_pass_favours_coarse_passes_in_whole_chunks():
    assert steps_per_pass(120, 3, 2.0, 5) == [70, 35, 15]
    assert steps_per_pass(90, 3, 1.0, 5) == [30, 30, 30]
    assert all(s % 5 == 0 for s in steps_per_pass(400, 5, 1.5, 5))


@pytest.mark.parametrize("hw", [(85, 128), (120, 181), (340, 512), (100, 300), (170, 256)])
def test_resize_is_jax_image_resize_on_the_host(hw):
    """Each pass's inputs and start image are resized on the host (no compilation per shape),
    with jax.image.resize's antialiased linear weights."""
    x = jax.random.uniform(jax.random.key(0), (2, 170, 256, 3))
    expected = jnp.clip(jax.image.resize(x, (2, *hw, 3), "linear", antialias=True), 0.0, 1.0)
    got = resize(x, hw)
    assert isinstance(got, jax.Array) and got.shape == (2, *hw, 3)
    np.testing.assert_allclose(got, expected, atol=5e-5)


def test_moving_average_is_bias_corrected():
    x0, x1, x2 = (jnp.full((2,), v) for v in (0.0, 1.0, 3.0))
    a1 = moving_average(x0, x1, jnp.asarray(1), 0.9)
    np.testing.assert_allclose(a1, x1, rtol=1e-6)  # the start image x0 has no weight
    a2 = moving_average(a1, x2, jnp.asarray(2), 0.9)
    np.testing.assert_allclose(a2, (0.1 * 0.9 * 1.0 + 0.1 * 3.0) / (1 - 0.81), rtol=1e-6)


def _state_after_a_step(config: StyleConfig) -> LoopState:
    image = jnp.full((1, 8, 12, 3), 0.5)
    tx = optimizer(config)
    state = LoopState.start(image, config)
    grad = jnp.linspace(-1, 1, image.size).reshape(image.shape)
    _, opt_state = tx.update(grad, state.opt_state, image)
    return state._replace(opt_state=opt_state, average=image * 0.9)


def test_next_pass_carries_adams_moments_resized():
    config = StyleConfig(optimizer="adam")
    state = _state_after_a_step(config)
    new = next_pass(state, (16, 24), config)
    adam = next(x for x in jax.tree.leaves(new.opt_state, is_leaf=lambda x: hasattr(x, "mu")) if hasattr(x, "mu"))
    assert new.image.shape == (1, 16, 24, 3) and adam.mu.shape == (1, 16, 24, 3) and adam.nu.shape == (1, 16, 24, 3)
    assert int(adam.count) == 1  # bias correction continues where it was
    assert float(jnp.abs(adam.mu).max()) > 0 and float(adam.nu.min()) >= 0
    np.testing.assert_allclose(new.image, 0.45, rtol=1e-6)  # starts from the averaged iterate
    assert int(new.count) == 0


def test_next_pass_restarts_lbfgs():
    config = StyleConfig(optimizer="lbfgs")
    new = next_pass(_state_after_a_step(config), (16, 24), config)
    fresh = LoopState.start(new.image, config)
    for a, b in zip(jax.tree.leaves(new.opt_state), jax.tree.leaves(fresh.opt_state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_auto_schedule_grows_with_the_size():
    """steps=0 and pass_ratio=0: 47 steps a pass, the coarsest pass 4x the finest, so a larger
    picture gets more steps, most of the extra ones at its fine passes."""
    from jnst.config import StyleConfig
    from jnst.schedule import pass_plan

    def plan(hw, style_hw, config):
        passes = pass_plan(hw, [style_hw], config, "cpu")
        return [p.side for p in passes], [p.steps for p in passes]

    cfg = StyleConfig(pass_ratio=0.0, chunk_size=5)
    assert plan((192, 256), (203, 256), cfg) == ([128, 181, 256], [80, 40, 21])
    # The default: each pass 0.85x the next finer one.
    assert plan((192, 256), (203, 256), StyleConfig()) == ([128, 181, 256], [40, 47, 54])
    assert plan((384, 512), (406, 512), cfg) == ([128, 181, 256, 362, 512], [85, 60, 40, 30, 20])
    assert plan((384, 512), (406, 512), cfg.replace(steps=90, pass_ratio=1.0))[1] == [20, 20, 20, 20, 10]


def test_each_pass_compiles_chunks_for_its_own_size():
    """On a CPU a big picture's small coarse passes run short chunks (a first look sooner), its
    fine ones longer chunks; the sizes are the content's aspect at each long side."""
    from jnst.config import StyleConfig
    from jnst.schedule import pass_plan

    passes = pass_plan((1536, 2048), [(1280, 2048)], StyleConfig(), "cpu")
    assert [p.side for p in passes] == [128, 181, 256, 362, 512, 724, 1024, 1448, 2048]
    assert [p.chunk for p in passes] == [1, 1, 1, 1, 5, 5, 5, 2, 1]
    assert passes[1].hw == (136, 181) and passes[-1].hw == (1536, 2048)
    assert {p.chunk for p in pass_plan((1536, 2048), [(1280, 2048)], StyleConfig(), "gpu")} == {50}
