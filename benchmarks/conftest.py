"""Options and fixtures of the benchmark suites.

``python -m pytest benchmarks/ --benchmark-only [--sizes 128,256] [--steps 10] [--rounds 3]
[--peer-python PATH]`` runs on JAX's default backend. The normal test run never collects this
folder (pyproject's ``testpaths = ["tests"]``).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest

from benchmarks._common import IMAGES, env_info, load_pair, whole_chunks
from benchmarks._system import cpu_count, cpu_model
from jnst.config import DTYPES, OPTIMIZERS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("jnst benchmarks")
    group.addoption("--sizes", default="128,256,512,1024", help="long sides of the content image, comma-separated")
    group.addoption(
        "--steps", type=int, default=10, help="timed optimiser steps per round (rounded up to whole chunks)"
    )
    group.addoption("--rounds", type=int, default=3, help="timed rounds per benchmark")
    group.addoption("--batches", default="1,4,8", help="batch sizes for the batch suite, comma-separated")
    group.addoption(
        "--peer-python",
        default=os.environ.get("JNST_PEER_PYTHON"),
        help="Python with torch and pastiche for the side-by-side (default: $JNST_PEER_PYTHON; else skipped)",
    )
    group.addoption(
        "--peer-threads", type=int, default=0, help="torch.set_num_threads for the peer (0: torch's default)"
    )


def _sizes(config: pytest.Config) -> list[int]:
    text = config.getoption("--sizes")
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise pytest.UsageError(f"--sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 32:
        raise pytest.UsageError("--sizes needs at least one size, each >= 32 (VGG19 pools five times)")
    return sizes


def _dtypes() -> list[str]:
    """Compute dtypes to compare: bfloat16 beside float32 on GPU/TPU (XLA:CPU has no fast bf16 convolutions)."""
    return ["float32"] if jax.default_backend() == "cpu" else list(DTYPES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``size``, ``optimizer`` (config.OPTIMIZERS) and ``dtype`` wherever a test asks."""
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", _sizes(metafunc.config), ids=lambda s: f"{s}px", scope="session")
    if "optimizer" in metafunc.fixturenames:
        metafunc.parametrize("optimizer", OPTIMIZERS, scope="session")
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", _dtypes(), scope="session")
    if "batch" in metafunc.fixturenames:
        batches = [int(b) for b in metafunc.config.getoption("--batches").split(",") if b.strip()]
        metafunc.parametrize("batch", batches, ids=lambda b: f"batch{b}", scope="session")


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Record what the report's header needs: CPU model and cores, JAX version, backend, device."""
    machine_info.update(cpu_model=cpu_model(), cpu_count=cpu_count(), **env_info())


@pytest.fixture(scope="session")
def model():
    """VGG19 with the shipped weights, built once."""
    from jnst import Model

    return Model.create()


@pytest.fixture(scope="session")
def pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(content, style) float32 images at long side ``size``."""
    if not IMAGES.is_dir():
        pytest.skip(f"test images not found at {IMAGES}")
    return load_pair(size)


def _positive(request: pytest.FixtureRequest, option: str) -> int:
    value = request.config.getoption(option)
    if value < 1:
        raise pytest.UsageError(f"{option} must be >= 1")
    return value


@pytest.fixture(scope="session")
def steps(request: pytest.FixtureRequest) -> int:
    """Timed steps per round: ``--steps`` rounded up to whole chunks of the backend's chunk size."""
    return whole_chunks(_positive(request, "--steps"))


@pytest.fixture(scope="session")
def rounds(request: pytest.FixtureRequest) -> int:
    return _positive(request, "--rounds")


@pytest.fixture(scope="session")
def peer_python(request: pytest.FixtureRequest) -> str:
    """The peer interpreter (torch + pastiche); skips when none is given."""
    python = request.config.getoption("--peer-python")
    if not python:
        pytest.skip("no peer Python: pass --peer-python PATH or set JNST_PEER_PYTHON (see benchmarks/README.md)")
    if not (Path(python).is_file() and os.access(python, os.X_OK)):
        pytest.fail(f"--peer-python {python} is not an executable file")
    return python


@pytest.fixture(scope="session")
def peer_threads(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--peer-threads")
