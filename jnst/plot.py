"""A loss curve drawn with Pillow alone: per-step loss terms on a log scale.

:func:`loss_curve` is pure (arrays in, an image array out); the CLI saves it beside the
snapshots. Values that a log scale cannot show (zeros, negatives, NaN, infinities) leave gaps
in their series; a series with none left is listed in the legend as not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]

# Fixed colours for the terms stylize reports; other series take PALETTE's in turn.
SERIES_COLORS: dict[str, Color] = {
    "total": (20, 20, 20),
    "content": (31, 119, 180),
    "style": (214, 39, 40),
    "tv": (44, 160, 44),
}
PALETTE: tuple[Color, ...] = ((255, 127, 14), (148, 103, 189), (140, 86, 75), (227, 119, 194))
AXIS_COLOR: Color = (0, 0, 0)
GRID_COLOR: Color = (228, 228, 228)
PASS_COLOR: Color = (150, 150, 230)  # not a grey, so antialiased text never matches it
BACKGROUND: Color = (255, 255, 255)

# Space around the plot area: left for the y tick labels, top for the legend, bottom for the x ones.
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 14, 34, 36
SERIES_WIDTH = 2


def series_colors(names: Sequence[str]) -> dict[str, Color]:
    """The colour of each series: :data:`SERIES_COLORS` for known terms, else :data:`PALETTE` in turn."""
    extra = iter(PALETTE * (1 + len(names) // len(PALETTE)))
    return {name: SERIES_COLORS.get(name) or next(extra) for name in names}


def _order(names: Sequence[str]) -> list[str]:
    """Known terms first in a fixed order (total last, drawn on top), then the rest as given."""
    known = [n for n in ("content", "style", "tv", "total") if n in names]
    return [n for n in names if n not in SERIES_COLORS] + known


def _nice_step(span: float, most: int) -> int:
    """The first of 1, 2, 5, 10, 20, 50, ... that cuts ``span`` into at most ``most`` parts."""
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            if span / step <= most:
                return step
        power *= 10


def loss_curve(
    losses: dict[str, np.ndarray], pass_steps: Sequence[int] = (), size: tuple[int, int] = (640, 360)
) -> np.ndarray:
    """Plot each loss series against the step, on a log-scale y axis.

    ``losses`` maps a name (``total``, ``content``, ``style``, ``tv``, ...) to per-step values;
    ``pass_steps`` are the steps of each coarse-to-fine pass, marked by vertical lines between
    passes; ``size`` is (width, height) in pixels. Returns float32 (height, width, 3) in [0, 1].
    """
    width, height = size
    if width < MARGIN_LEFT + MARGIN_RIGHT + 20 or height < MARGIN_TOP + MARGIN_BOTTOM + 20:
        raise ValueError(f"size {size} is too small for a plot")
    series = {name: np.asarray(values, np.float64).reshape(-1) for name, values in losses.items()}
    valid = {name: np.isfinite(v) & (v > 0) for name, v in series.items()}
    steps = max((len(v) for v in series.values()), default=0)

    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, top, right, bottom = MARGIN_LEFT, MARGIN_TOP, width - MARGIN_RIGHT, height - MARGIN_BOTTOM

    # Axes' ranges: x over the steps, y over whole decades around every drawable value.
    x_max = max(steps - 1, 1)
    shown = np.concatenate([v[valid[n]] for n, v in series.items()] or [np.zeros(0)])
    if shown.size:
        y_low, y_high = math.floor(math.log10(shown.min())), math.ceil(math.log10(shown.max()))
        if y_low == y_high:
            y_low, y_high = y_low - 1, y_high + 1
    else:
        y_low, y_high = 0, 1

    def px(step: float) -> float:
        return left + (right - left) * step / x_max

    def py(value: float) -> float:
        return bottom - (bottom - top) * (math.log10(value) - y_low) / (y_high - y_low)

    def label(xy: tuple[float, float], text: str, anchor: str) -> None:
        draw.text(xy, text, fill=AXIS_COLOR, font=font, anchor=anchor)

    # Grid and tick labels: every decade (thinned when there are many), "nice" steps along x.
    every = _nice_step(y_high - y_low, 8)
    for decade in range(y_low, y_high + 1):
        y = py(10.0**decade)
        draw.line([(left, y), (right, y)], fill=GRID_COLOR)
        if (decade - y_low) % every == 0:
            label((left - 5, y), f"1e{decade}", "rm")
    x_every = _nice_step(x_max, 8)
    for step in range(0, x_max + 1, x_every):
        x = px(step)
        draw.line([(x, top), (x, bottom)], fill=GRID_COLOR)
        label((x, bottom + 4), str(step), "mt")
    label(((left + right) / 2, height - 4), "step", "ms")
    label((4, 4), "loss (log scale)", "lt")

    # A line between the last step of each pass and the first of the next.
    boundaries = np.cumsum([int(s) for s in pass_steps])[:-1]
    for boundary in boundaries:
        if 0 < boundary < steps:
            x = round(px(boundary - 0.5))
            draw.line([(x, top + 1), (x, bottom - 1)], fill=PASS_COLOR)

    # Series as polylines over their runs of drawable values; a lone value gets a dot.
    colors = series_colors(list(series))
    for name in _order(list(series)):
        values, ok = series[name], valid[name]
        run: list[tuple[float, float]] = []
        for i in range(len(values) + 1):
            if i < len(values) and ok[i]:
                run.append((px(i), py(values[i])))
                continue
            if len(run) > 1:
                draw.line(run, fill=colors[name], width=SERIES_WIDTH, joint="curve")
            elif run:
                (x, y), r = run[0], SERIES_WIDTH + 1
                draw.ellipse([(x - r, y - r), (x + r, y + r)], fill=colors[name])
            run = []

    draw.rectangle([(left, top), (right, bottom)], outline=AXIS_COLOR)

    # Legend above the plot: a swatch and the name; series with nothing to draw say so.
    x, y = left, top - 12
    for name in series:
        text = name if valid[name].any() else f"{name} (not drawn: no positive finite value)"
        draw.line([(x, y), (x + 16, y)], fill=colors[name], width=3)
        label((x + 20, y), text, "lm")
        x += 20 + draw.textlength(text, font=font) + 14
    if pass_steps and len(pass_steps) > 1:
        draw.line([(x, y - 5), (x, y + 5)], fill=PASS_COLOR)
        label((x + 5, y), "pass boundary", "lm")
    return np.asarray(image, dtype=np.float32) / 255.0
