import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnst.lbfgs import scale_by_guarded_lbfgs


def _quadratic():
    a = jax.random.normal(jax.random.key(0), (12, 12))
    h = a @ a.T + 0.5 * jnp.eye(12)  # positive definite: every pair has s·y > 0
    return lambda x: 0.5 * x @ h @ x - x.sum()


def _run(tx, f, steps=15):
    x = jnp.linspace(-1.0, 1.0, 12)
    state = tx.init(x)
    for _ in range(steps):
        direction, state = tx.update(jax.grad(f)(x), state, x)
        x = x - 0.5 * direction
    return x


def test_matches_optax_when_curvature_is_positive():
    f = _quadratic()
    ours = _run(scale_by_guarded_lbfgs(memory_size=4), f)
    theirs = _run(optax.scale_by_lbfgs(memory_size=4), f)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert f(ours) < f(jnp.linspace(-1.0, 1.0, 12))


def test_negative_curvature_pair_is_skipped_and_the_step_stays_downhill():
    """On f(x) = -|x|^2/2 + ... the step's s·y is negative: the pair is not stored, the direction
    stays along the gradient (no uphill step), where optax's stores it and reverses."""
    f = lambda x: -0.5 * jnp.sum(x**2) + jnp.sum(x**4)  # noqa: E731
    x0, x1 = jnp.full(4, 0.1), jnp.full(4, 0.2)  # between them the function is concave
    g1 = jax.grad(f)(x1)
    for tx, expect_downhill in [(scale_by_guarded_lbfgs(), True), (optax.scale_by_lbfgs(), False)]:
        state = tx.init(x0)
        _, state = tx.update(jax.grad(f)(x0), state, x0)
        direction, state = tx.update(g1, state, x1)
        assert (float(jnp.vdot(direction, g1)) > 0) == expect_downhill
        if expect_downhill:
            assert not np.any(state.rho)  # nothing stored


def test_update_works_in_place_whatever_the_memory():
    """At print size a picture is ~200 MB and the ring holds 2 x memory_size of them: the update's
    temporaries stay a few pictures, however long the memory (they were 2 x memory_size + 2,
    gigabytes at 5000 px)."""
    params = jax.ShapeDtypeStruct((1, 300, 400, 3), jnp.float32)
    picture = 300 * 400 * 3 * 4
    temps = []
    for memory in (2, 10):
        tx = scale_by_guarded_lbfgs(memory)
        state = jax.eval_shape(tx.init, params)
        analysis = jax.jit(tx.update, donate_argnums=1).lower(params, state, params).compile().memory_analysis()
        temps.append(analysis.temp_size_in_bytes / picture)
    assert max(temps) <= 4.1 and temps[1] <= temps[0] + 0.1, temps
