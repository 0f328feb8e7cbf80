"""Shared fixtures: the shipped VGG19 model, the classic test images in ../shared/images."""

import io
from pathlib import Path

import numpy as np
import pytest

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.fixture(scope="session")
def weights():
    from jnst.weights import load

    return load()


@pytest.fixture(scope="session")
def model(weights):
    from jnst.vgg import Model

    return Model.create(weights)


@pytest.fixture(scope="session")
def shared_images() -> Path:
    if not SHARED_IMAGES.is_dir():
        pytest.skip("../shared/images is not beside the repository")
    return SHARED_IMAGES


@pytest.fixture(scope="session")
def small_pair(shared_images):
    """tubingen x starry_night at long side 64: a real problem that runs in seconds."""
    from jnst.images import load_image

    return load_image(shared_images / "tubingen.jpg", 64), load_image(shared_images / "starry_night.jpg", 64)


@pytest.fixture(scope="session")
def pair_bytes(shared_images) -> tuple[bytes, bytes]:
    """tubingen and starry_night as PNGs of long side 96, for ``jnst serve``: quick to upload and decode."""
    from PIL import Image

    def small(name: str) -> bytes:
        with Image.open(shared_images / name) as img:
            img.thumbnail((96, 96))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
        return buf.getvalue()

    return small("tubingen.jpg"), small("starry_night.jpg")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
