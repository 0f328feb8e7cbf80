"""A ``jnst serve`` job's settings: the JSON object a client sends, checked into StyleConfigs.

Every problem raises ValueError with one line (the API answers it as a 400); the values
themselves are checked by :class:`jnst.config.StyleConfig`, as on the command line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from jnst.config import SWEEPABLE, StyleConfig, preset

# Bounds a server sets on one job, so that no request can tie the device up for hours.
MIN_SIZE, MAX_SIZE = 32, 1024
MAX_STEPS = 2000
MAX_SWEEP = 6
MAX_REGIONS = 8  # "semantic": N regions a side, or "auto"
DEFAULT_SIZE = 256
# Settings that are a StyleConfig field, and what they hold.
NUMBERS = ("content_weight", "style_weight", "tv_weight")
KEYS = ("preset", "size", "steps", "color", "style_blend", "sweep", "semantic", *NUMBERS)


@dataclass(frozen=True)
class Settings:
    """A job's output size (long side), one config per output image, their labels, and the
    regions ``--semantic`` would find (N, 0 for auto; None: none)."""

    size: int
    configs: list[StyleConfig]
    labels: list[str]
    semantic: int | None = None


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {json.dumps(value)}")
    return float(value)


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {json.dumps(value)}")
    return value


def parse(text: str, styles: int) -> Settings:
    """Settings from the JSON ``text`` (``{}`` for the defaults) for a job with ``styles`` style images.

    Keys: ``preset`` (a name of :data:`jnst.PRESETS`), ``size`` (long side, px), ``steps``,
    ``content_weight``, ``style_weight`` (the style strength), ``tv_weight``, ``color``
    (colour preservation), ``style_blend`` (one weight per style) and ``sweep``
    (``{"name": "style_weight", "values": [0.3, 1, 3]}``: one image per value) and ``semantic``
    (a number of regions or ``"auto"``: regions found and matched, :mod:`jnst.semantic`).
    """
    try:
        given = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"settings are not valid JSON ({err.msg})") from None
    if not isinstance(given, dict):
        raise ValueError("settings must be a JSON object")
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; known: {', '.join(KEYS)}")
    name = given.get("preset", "default")
    if not isinstance(name, str):
        raise ValueError("preset must be a preset's name")
    changes: dict[str, object] = {k: _number(k, given[k]) for k in NUMBERS if k in given}
    if "steps" in given:
        changes["steps"] = _whole("steps", given["steps"], 1, MAX_STEPS)
    if "color" in given:
        changes["color"] = given["color"]
    if "style_blend" in given:
        blend = given["style_blend"]
        if not isinstance(blend, list) or len(blend) != styles:
            raise ValueError(f"style_blend needs one weight per style image ({styles})")
        changes["style_blend"] = tuple(_number("style_blend", w) for w in blend)
    config = preset(name).replace(**changes)
    if config.total_steps(1) > MAX_STEPS:
        raise ValueError(f"the {name} preset runs {config.steps} steps, more than this server's {MAX_STEPS}")
    size = _whole("size", given.get("size", DEFAULT_SIZE), MIN_SIZE, MAX_SIZE)
    semantic = None
    if "semantic" in given:
        if given["semantic"] != "auto":
            try:
                semantic = _whole("semantic", given["semantic"], 1, MAX_REGIONS)
            except ValueError:
                raise ValueError(f'semantic must be a whole number from 1 to {MAX_REGIONS} or "auto", '
                                 f"got {json.dumps(given['semantic'])}") from None  # fmt: skip
        else:
            semantic = 0
        if config.style_loss != "gram":
            raise ValueError(f"semantic regions need the Gram style loss; the {name} preset has {config.style_loss}")
    if "sweep" not in given:
        return Settings(size, [config], [], semantic)
    sweep = given["sweep"]
    fields = sorted(SWEEPABLE)
    if not isinstance(sweep, dict) or sweep.get("name") not in fields or not isinstance(sweep.get("values"), list):
        raise ValueError(f'sweep must be {{"name": one of {", ".join(fields)}, "values": [numbers]}}')
    values = [_number("sweep value", v) for v in sweep["values"]]
    if not 1 <= len(values) <= MAX_SWEEP:
        raise ValueError(f"a sweep takes 1 to {MAX_SWEEP} values, got {len(values)}")
    configs = [config.replace(**{sweep["name"]: v}) for v in values]
    return Settings(size, configs, [f"{sweep['name']} {v:g}" for v in values], semantic)
