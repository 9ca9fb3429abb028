"""The paper's full geometry on CPU: width 64, 512-px inputs, 16 crops of 64 px.

The other tests use tiny geometries; a CUDA user trains at this one. For the ``celeba``,
``in_the_wild`` and ``pretrain`` configs, with one item a step: one training step (shapes,
finite losses, every trained parameter moves) and one validation batch, then the weights
saved in the released format (the authors' key names and shapes, ``RELEASED_SHAPES``).
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from configs import load_config
from data.preprocess import final_size
from data.transforms import pretrain_transforms
from engine import builders
from engine.checkpoint import save_released_weights
from engine.device import amp_dtype
from engine.evaluate import eval_loader, evaluate
from engine.train import step_losses
from models import SupConLoss
from test_model import RELEASED_SHAPES

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")
ONE_ITEM = ["batch_size=1", "val_batch_size=1", "num_workers=0", "iters_per_epoch=1",
            "pretrain_val_per_class=1"]


def _images(folder, sizes, class_num):
    """One image per (class, size): ``sizes`` are (width, height) pairs; returns [(path, label)]."""
    rng = np.random.default_rng(0)
    items = []
    os.makedirs(folder, exist_ok=True)
    for label in range(class_num):
        for k, (width, height) in enumerate(sizes):
            path = os.path.join(folder, f"{label}_{k}.png")
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
            items.append((path, label))
    return items


@pytest.mark.parametrize("name, sizes, stage", [
    ("celeba", [(128, 128)], "main"),
    ("in_the_wild", [(256, 256), (300, 200)], "main"),   # mixed sides, one non-square
    ("pretrain", [(160, 160)], "pretrain"),
])
def test_one_step_and_one_validation_batch_at_the_paper_geometry(tmp_path, name, sizes, stage):
    config = load_config(name, ONE_ITEM)
    assert (config.width, config.multi_size, config.crop_num) == (64, 64, 16)
    assert final_size(config.resize_size, config.second_resize_size) == 512
    transforms = pretrain_transforms() if stage == "pretrain" else None
    items = _images(str(tmp_path / "images"), sizes, 1 if stage == "pretrain" else config.class_num)
    torch.manual_seed(0)
    model = builders.build_train_model(config)
    builders.prepare_model_for_device(model, config, CPU)
    optimizer, _ = builders.build_optimizer(model, config)
    train_set = builders.build_train_dataset(config, items, stage, transforms)
    builders.preload_images(train_set, config)
    batch = next(iter(builders.train_loader(train_set, config, epoch=1, device=CPU)))
    per_item = config.pretrain_images_per_label if stage == "pretrain" else config.class_num
    # CPU training: the loader's CropCollate makes the views [B, images per item, crops, 3, 64, 64]
    assert tuple(batch[0].shape) == (1, per_item, 16, 3, 64, 64)

    before = {key: value.clone() for key, value in model.state_dict().items()}
    losses = step_losses(model.train(), batch, config, CPU, amp_dtype(config.amp, CPU),
                           SupConLoss(config.temperature, config.temperature))
    assert set(losses) == {"ce", "supcon", "loss"}
    assert all(torch.isfinite(value) for value in losses.values()), losses
    optimizer.zero_grad()
    losses["loss"].backward()
    optimizer.step()
    moved = [key for key, value in model.state_dict().items()
             if value.is_floating_point() and not torch.equal(value, before[key])]
    assert any(key.startswith("net.backbone.main.0.") for key in moved)
    assert any(key.startswith("net.backbone.classification_head.") for key in moved)

    # stage 1 validates 170 transformations per image: 5 of them are enough to run the path
    val_set = builders.build_val_dataset(config, items, stage, transforms and transforms[:5])
    metrics = evaluate(model.backbone, eval_loader(val_set, 1, 0, CPU), CPU, config.class_num, 512,
                       amp=amp_dtype(config.amp, CPU), keep_outputs=True)
    outputs = metrics["outputs"]
    assert outputs["probs"].shape == (len(val_set), config.class_num) and np.isfinite(outputs["probs"]).all()
    assert metrics["n_skipped"] == 0

    path = str(tmp_path / "model.pth")
    save_released_weights(model.backbone, path, {"class_num": config.class_num})
    state = torch.load(path, weights_only=True)
    for i, shape in RELEASED_SHAPES.items():
        assert tuple(state[f"main.{i}.main.0.weight"].shape) == shape
    assert tuple(state["classification_head.1.weight"].shape) == (config.class_num, 512)
    assert len(state) == 8 * 7 + 2
