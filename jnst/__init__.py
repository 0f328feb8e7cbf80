"""jnst: neural style transfer in JAX (Gatys et al.), with VGG19 in Flax and a compiled loop.

Pipeline, one module each: images (Pillow in/out) -> vgg (features) -> losses -> targets ->
objective -> loop (compiled chunks of optimiser steps) under schedule (coarse to fine) ->
images; stylize is the public orchestration (checkpoint saves and resumes it), config holds
the settings and presets, weights the VGG19 file format, convert the importers, cli the command
line.
"""

from jnst.config import PRESETS, StyleConfig, preset
from jnst.stylize import StyleResult, stylize, stylize_batch
from jnst.vgg import Model

__all__ = ["PRESETS", "Model", "StyleConfig", "StyleResult", "preset", "stylize", "stylize_batch"]
__version__ = "0.1.0"
