from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

# the tests' `oneinch` processes run in-process even when the user has a zygote running
# (oneinch.zygote; tests/test_zygote.py starts its own)
os.environ.setdefault("ONEINCH_ZYGOTE", "0")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.is_dir():  # a clone elsewhere: ../shared beside the repo
    SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KODAK = SHARED / "benchmarks" / "kodak24"
MCMASTER = SHARED / "benchmarks" / "mcmaster18"
DECODABLE = SHARED / "dng" / "decodable"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_rgb8(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the real-file corpus is missing: {SHARED}")
    return SHARED


@pytest.fixture(autouse=True)
def _tiles_buffer_mode():
    """Tests that run the command in-process (cli.main develop) switch the process to heap
    working images (tiles.reuse_buffers); every test starts from, and leaves, the library's
    default (memory maps) so that the tests of the maps' own behaviour do not depend on
    which test ran before them in the same worker."""
    from oneinch.isp import tiles

    tiles.reuse_buffers(False)
    yield
    tiles.reuse_buffers(False)
