"""The loss curve: shape, series colours, pass boundaries, and values a log scale cannot show."""

from __future__ import annotations

import numpy as np
import pytest

from jnst import plot

STEPS = 40


def pixels(image: np.ndarray) -> np.ndarray:
    """The plot as uint8, exactly as Pillow drew it."""
    return np.rint(image * 255).astype(np.uint8)


def is_color(image: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    return (pixels(image) == np.array(color, np.uint8)).all(axis=-1)


def frame(image: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the plot area: the long runs of the axis colour."""
    axis = is_color(image, plot.AXIS_COLOR)
    columns = np.flatnonzero(axis.sum(axis=0) > image.shape[0] / 4)
    rows = np.flatnonzero(axis.sum(axis=1) > image.shape[1] / 4)
    return columns.min(), rows.min(), columns.max(), rows.max()


def inside(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask`` restricted to the plot area (the legend and labels outside it left out)."""
    left, top, right, bottom = frame(image)
    return mask[top + 1 : bottom, left + 1 : right]


def losses(steps: int = STEPS) -> dict[str, np.ndarray]:
    decay = np.geomspace(1e6, 1e3, steps)
    return {"total": 1.5 * decay, "content": np.geomspace(1e2, 1e4, steps), "style": decay, "tv": 0.01 * decay}


def test_shape_dtype_and_range():
    image = plot.loss_curve(losses(), size=(500, 300))
    assert image.shape == (300, 500, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert plot.loss_curve(losses()).shape == (360, 640, 3)


@pytest.mark.parametrize("name", ["total", "content", "style", "tv"])
def test_each_series_is_drawn_in_its_colour(name):
    image = plot.loss_curve(losses())
    drawn = inside(image, is_color(image, plot.SERIES_COLORS[name]))
    assert drawn.sum() > 100  # a line across the plot, not a legend swatch
    assert drawn.any(axis=0).mean() > 0.9  # along (nearly) every column


def test_log_scale_puts_a_decade_per_equal_height():
    # content rises from 1e2 to 1e4 geometrically: a straight line on a log scale, so its height
    # halfway along the steps is halfway between its ends.
    image = plot.loss_curve({"content": np.geomspace(1e2, 1e4, 41)})
    drawn = inside(image, is_color(image, plot.SERIES_COLORS["content"]))
    height = {c: np.flatnonzero(drawn[:, c]).mean() for c in (2, drawn.shape[1] // 2, drawn.shape[1] - 3)}
    first, middle, last = height.values()
    assert first > last  # larger values higher up
    assert middle == pytest.approx((first + last) / 2, abs=2)


def boundary_columns(image: np.ndarray) -> list[int]:
    left, top, right, bottom = frame(image)
    lines = is_color(image, plot.PASS_COLOR)[top:bottom].sum(axis=0)
    return [int(c) for c in np.flatnonzero(lines > 0.5 * (bottom - top))]


@pytest.mark.parametrize("pass_steps", [(10, 10, 20), (5, 35), (13, 9, 9, 9)])
def test_pass_boundaries_between_passes(pass_steps):
    image = plot.loss_curve(losses(), pass_steps)
    left, _, right, _ = frame(image)
    boundaries = np.cumsum(pass_steps)[:-1]
    # Between the last step of a pass and the first of the next, on an axis from step 0 to STEPS - 1.
    expected = [left + (right - left) * (b - 0.5) / (STEPS - 1) for b in boundaries]
    found = boundary_columns(image)
    assert len(found) == len(expected)
    for column, x in zip(found, expected, strict=True):
        assert abs(column - x) <= 1


def test_no_boundary_for_a_single_pass():
    assert boundary_columns(plot.loss_curve(losses(), (STEPS,))) == []
    assert boundary_columns(plot.loss_curve(losses())) == []


def test_zero_tv_series_is_skipped_the_others_drawn():
    series = losses()
    series["tv"] = np.zeros(STEPS, np.float32)
    image = plot.loss_curve(series, (20, 20))
    assert not inside(image, is_color(image, plot.SERIES_COLORS["tv"])).any()
    assert inside(image, is_color(image, plot.SERIES_COLORS["style"])).sum() > 100
    assert np.isfinite(image).all()


def test_nan_and_inf_leave_gaps():
    style = np.geomspace(1e6, 1e3, STEPS)
    style[15:25] = np.nan
    style[30] = np.inf
    image = plot.loss_curve({"style": style, "total": np.geomspace(2e6, 2e3, STEPS)})
    drawn = inside(image, is_color(image, plot.SERIES_COLORS["style"])).any(axis=0)
    left, _, right, _ = frame(image)
    gap = slice(round((right - left) * 16.5 / (STEPS - 1)), round((right - left) * 22.5 / (STEPS - 1)))
    assert drawn[: gap.start].any() and not drawn[gap].any() and drawn[gap.stop :].any()


@pytest.mark.parametrize(
    "series",
    [
        {"total": np.array([3.5])},
        {"total": np.array([0.0])},
        {"total": np.full(5, np.nan)},
        {"total": np.full(5, 7.0)},
        {"total": np.array([1e-30, 1e30])},
        {},
    ],
    ids=["one step", "one zero", "all nan", "constant", "huge range", "no series"],
)
def test_degenerate_inputs_still_give_a_plot(series):
    image = plot.loss_curve(series, (1,) if series else ())
    assert image.shape == (360, 640, 3) and np.isfinite(image).all()


def test_single_step_is_a_visible_dot():
    image = plot.loss_curve({"total": np.array([3.5])})
    assert inside(image, is_color(image, plot.SERIES_COLORS["total"])).sum() >= 9


def test_too_small_is_refused():
    with pytest.raises(ValueError, match="too small"):
        plot.loss_curve(losses(), size=(40, 30))
