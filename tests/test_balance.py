"""The style weight that adapts to the pair (jnst.balance)."""

import numpy as np
import pytest

from jnst import balance
from jnst.config import StyleConfig
from jnst.stylize import stylize

STEPS = 4  # one pass at 64 px: the default's coarsest side is 128


def test_no_balance_is_the_fixed_weight(model, small_pair):
    content, style = small_pair
    assert balance.style_scale(model, content[None], [style[None]], StyleConfig()) == 1.0


def test_a_balanced_run_is_the_fixed_run_with_the_scaled_style_weight(model, small_pair):
    # The factor reaches the compiled step as beta and nothing else: the same picture as a fixed
    # run given beta * (reference / tension) ** p by hand.
    content, style = small_pair
    config = StyleConfig(steps=STEPS, style_balance=0.5)
    tension = balance.tension(model, content[None], [style[None]], config)
    scale = (balance.REFERENCE_TENSION / tension) ** 0.5
    by_hand = StyleConfig(steps=STEPS, style_weight=config.beta * scale)
    a = stylize(content, style, config, model=model).image
    b = stylize(content, style, by_hand, model=model).image
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(scale, 1.0)  # the pair is not the reference: the test can tell


def test_a_harder_pull_gets_less_style_weight(model, small_pair):
    # tubingen against starry_night pulls harder than against its own picture shifted in colour.
    content, style = small_pair
    config = StyleConfig(style_balance=1.0)
    mild = np.clip(content * 0.9 + 0.05, 0, 1)
    hard = balance.style_scale(model, content[None], [style[None]], config)
    soft = balance.style_scale(model, content[None], [mild[None]], config)
    assert hard < soft


def test_the_photo_as_its_own_painting_gets_a_finite_scale(model, small_pair):
    content, _ = small_pair
    scale = balance.style_scale(model, content[None], [content[None]], StyleConfig(style_balance=1.0))
    assert np.isfinite(scale) and scale <= balance.REFERENCE_TENSION / balance.TENSION_FLOOR


@pytest.mark.parametrize("changes", [{"style_loss": "wasserstein"}, {"content_layers": ()}])
def test_balance_needs_a_content_layer_and_grams(changes):
    with pytest.raises(ValueError, match="style_balance needs a content layer and the Gram style loss"):
        StyleConfig(style_balance=1.0, **changes)
