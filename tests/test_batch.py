"""A batch or a sweep optimised together (``stylize_batch``) gives each item's one-image result."""

import numpy as np
import pytest

from jnst import StyleConfig, stylize
from jnst.stylize import stylize_batch

FAST = StyleConfig(steps=6, chunk_size=3, scales=(48,), optimizer="adam")


def assert_same_picture(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to rounding, as the optimisation amplifies it: XLA rounds a batch of 3 a little
    differently from one image (1e-5 after one step at 48x36), and both optimisers magnify that
    where a pixel's gradient is about 0 (Adam's step there is a sign; L-BFGS ~100x a step). Items
    swapped or mixed would differ by ~0.1 on average."""
    assert np.abs(a - b).mean() < 1e-3 and np.percentile(np.abs(a - b), 99) < 1e-2


def test_batch_of_contents_equals_separate_runs(model, small_pair):
    content, style = small_pair
    other = np.ascontiguousarray(content[::-1])  # a second photo of the same size
    batch = stylize_batch([content, other], style, [FAST], model=model)
    for image, result in zip([content, other], batch, strict=True):
        alone = stylize(image, style, FAST, model=model)
        assert_same_picture(result.image, alone.image)
        np.testing.assert_allclose(result.losses["total"], alone.losses["total"], rtol=1e-4)
        assert result.pass_steps == alone.pass_steps


def test_sweep_over_a_weight_equals_separate_runs(model, small_pair):
    content, style = small_pair
    configs = [FAST.replace(style_weight=w) for w in (0.3, 1.0, 3.0)]
    sweep = stylize_batch([content], style, configs, model=model)
    for config, result in zip(configs, sweep, strict=True):
        assert_same_picture(result.image, stylize(content, style, config, model=model).image)
    assert np.abs(sweep[0].image - sweep[2].image).max() > 1e-2  # the weight shows


def test_snapshots_and_callback_per_item(model, small_pair):
    content, style = small_pair
    seen = []
    configs = [FAST.replace(snapshot_every=3, seed=s) for s in (1, 2)]
    results = stylize_batch(
        [content, content],
        style,
        configs,
        model=model,
        callback=lambda step, t, ims: seen.append((step, len(t), len(ims))),
    )
    assert [s for s, _ in results[0].snapshots] == [0, 3, 6]
    assert seen[-1] == (6, 2, 2)


@pytest.mark.parametrize(
    "contents, configs, message",
    [
        (2, [FAST, FAST.replace(steps=9)], "may differ only in"),
        (3, [FAST, FAST], "give one of either, or as many"),
    ],
)
def test_batch_errors(model, small_pair, contents, configs, message):
    content, style = small_pair
    with pytest.raises(ValueError, match=message):
        stylize_batch([content] * contents, style, configs, model=model)


def test_contents_must_share_a_size(model, small_pair):
    content, style = small_pair
    with pytest.raises(ValueError, match="share one size"):
        stylize_batch([content, content[:-8]], style, [FAST], model=model)
