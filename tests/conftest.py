"""Shared fixtures: tiny synthetic image collections in the layout main.py reads."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from data.annotations import write_annotations

torch.set_num_threads(1)  # tiny models: threads only add overhead on a busy 2-core machine

TINY_OVERRIDES = ["num_workers=0", "width=8", "batch_size=2", "val_batch_size=8", "crop_size=32",
                  "resize_size=32", "multi_size=16", "crop_num=2", "max_epochs=2",
                  "iters_per_epoch=2", "log_interval=1", "pretrain_crop=32"]


def make_class_images(folder: str, label: int, count: int, size: int = 32, seed: int = 0) -> list:
    """Write ``count`` PNGs whose texture depends on ``label`` (learnable, not trivial)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng((seed, label))
    paths = []
    for i in range(count):
        base = rng.integers(0, 256, size=(size, size, 3)).astype(np.float32)
        period = 2 + label
        base[::period] = 255 - base[::period] * 0.5
        path = os.path.join(folder, f"{label}_{i:03d}.png")
        Image.fromarray(base.clip(0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def make_collections(root: str, class_num: int = 3, per_class: int = 6) -> str:
    """Write train/val collections and a pretrain collection under ``root``."""
    items = []
    for label in range(class_num):
        items += [(p, label) for p in make_class_images(os.path.join(root, "images", str(label)), label, per_class)]
    write_annotations(os.path.join(root, "toy_train", "annotations", "toy_train.txt"), items)
    write_annotations(os.path.join(root, "toy_val", "annotations", "toy_val.txt"), items[::2])
    write_annotations(os.path.join(root, "pre_train", "annotations", "pre_train.txt"), items, with_labels=False)
    write_annotations(os.path.join(root, "pre_val", "annotations", "pre_val.txt"), items[::3], with_labels=False)
    return root


@pytest.fixture
def collections(tmp_path):
    return make_collections(str(tmp_path))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(folder: str, name: str):
    """Import an entry script (``eval/cross_test.py`` ...) as a module, to call its main()."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", os.path.join(ROOT, folder, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def textured_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients + a sinusoidal pattern + uniform pixel noise (uint8 [size, size, 3])."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([200 * x + 20, 200 * y + 20, 100 * (x + y) + 30], axis=-1)
    pattern = 30 * (np.sin(2 * np.pi * 6 * x) * np.cos(2 * np.pi * 5 * y))[..., None]
    image = base + pattern + rng.uniform(-25, 25, (size, size, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(np.float64) - b) ** 2).mean())


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """One tiny toy zoo (DataPrepare/make_toy_zoo.py --scale tiny, seed 0, one process) per
    session: (root Path, manifest, build seconds). Tests that damage it must restore it."""
    import time
    from DataPrepare.toy_zoo import build_zoo
    out = tmp_path_factory.mktemp("tiny_toy_zoo")
    start = time.perf_counter()
    manifest = build_zoo(str(out), scale="tiny", seed=0, show_progress=False)
    return out, manifest, time.perf_counter() - start


def random_model(path: str, class_num: int, info=None, seed=None) -> str:
    """A random SimpleCNN(width 8) with a sharpened head, saved in the released format.

    The sidecar model.json is written only when ``info`` is given; ``seed`` defaults to class_num.
    """
    from engine.checkpoint import save_released_weights
    from models import SimpleCNN
    torch.manual_seed(class_num if seed is None else seed)
    model = SimpleCNN(class_num, width=8)
    with torch.no_grad():
        model.classification_head[1].weight.mul_(30.0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if info is None:
        torch.save(model.state_dict(), path)
    else:
        save_released_weights(model, path, info)
    return path
