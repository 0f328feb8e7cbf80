"""A ``jnst serve`` job's inputs: its uploads, saved under the server's names, decoded at its
settings' size and checked against its layers, with one config per output image.

Every problem raises ValueError with one line naming the upload, not the server's path (the API
answers it as a 400; a job taken back after a restart fails with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jnst import images
from jnst.config import StyleConfig
from jnst.serve import settings as settings_lib
from jnst.vgg import min_side


@dataclass(frozen=True)
class Inputs:
    """What a job paints: decoded inputs and one config per output image (several: a sweep).

    ``labels`` name the outputs (``"style_weight 0.3"``), empty for a single image; ``semantic``
    the regions to find (N, 0 for auto; None: none).
    """

    content: np.ndarray
    styles: list[np.ndarray]
    configs: list[StyleConfig]
    labels: list[str] = field(default_factory=list)
    semantic: int | None = None


def input_paths(folder: Path, styles: int) -> list[Path]:
    """Where a job's uploads are saved, under the server's names: the content, then each style."""
    return [folder / "content", *(folder / f"style-{i}" for i in range(styles))]


def read_inputs(folder: Path, settings: settings_lib.Settings, styles: int) -> Inputs:
    """Decode a job's saved uploads at its settings' size; ValueError (one line naming the file,
    no server path) when one is not an image the layers can use."""
    content_path, *style_paths = input_paths(folder, styles)
    try:
        content = images.load_image(content_path, settings.size)
        style_images = [images.load_style(path, content.shape[:2]) for path in style_paths]
    except images.ImageError as err:
        # "<folder>/style-1: not an image ..." -> "style-1: not an image ...": no server paths.
        raise ValueError(str(err).replace(f"{folder}/", "")) from None
    smallest = min_side(settings.configs[0].layers)
    for what, image in [("content", content), *(("style", s) for s in style_images)]:
        if min(image.shape[:2]) < smallest:
            h, w = image.shape[:2]
            raise ValueError(f"{what} is {w}x{h} at this size; every side needs {smallest} px: choose a larger size")
    return Inputs(content, style_images, settings.configs, settings.labels, settings.semantic)
