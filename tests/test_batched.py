"""The fast data path equals the released-style PIL path: crop positions, pixel values, statistics.

Tolerances (also in data/batched.py) against ``PIL.Image.resize(BICUBIC)``, for the CPU
resize (torch's uint8 antialiased bicubic) and the float path used on CUDA (run here on
CPU): integer upscaling factors, as in the paper (128 -> 512) and the toy config
(64 -> 128), at most 1 grey level on at most 0.1% of values; any other ratio at most 2
levels on at most 2% of values.
"""
import importlib.util
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from configs import load_config
from data.batched import (CachedBalancedMultiCropDataset, CropCollate, _resize_float_like_pil, gather_crops,
                          resize_batch, resize_crop_normalise)
from data.datasets import BalancedMultiCropDataset
from engine import builders
from engine.train import batch_views
from conftest import textured_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(count: int, side: int, seed: int = 0) -> np.ndarray:
    """Half smooth, half pure-noise uint8 [count, side, side, 3] (noise stresses overshoot clipping)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        if i % 2:
            out.append(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
        else:
            coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
            out.append(np.asarray(coarse.resize((side, side), Image.BICUBIC)))
    return np.stack(out)


def _pil_resize(arrays: np.ndarray, size: int) -> torch.Tensor:
    resized = [np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC)) for a in arrays]
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)


@pytest.mark.parametrize("side,size", [(32, 64), (32, 128), (37, 96), (48, 40), (64, 24), (50, 75)])
def test_resize_matches_pil_bicubic(side, size):
    """Integer upscaling (the paper's 128 -> 512, the toy's 64 -> 128): <= 1 level on <= 0.1%;
    any ratio: <= 2 levels on <= 2% of values, mean difference < 0.02 levels."""
    arrays = _images(6, side)
    reference = _pil_resize(arrays, size).int()
    nchw = torch.from_numpy(arrays).permute(0, 3, 1, 2)          # channels_last strides
    integer_scale = size % side == 0
    bound, share = (1, 1e-3) if integer_scale else (2, 2e-2)
    emulated = _resize_float_like_pil(nchw.contiguous(), size)   # the CUDA algorithm, run on CPU
    for resized in (resize_batch(nchw, size), resize_batch(nchw.contiguous(), size), emulated):
        assert resized.dtype == torch.uint8 and resized.shape == (6, 3, size, size)
        diff = (resized.int() - reference).abs()
        assert diff.max() <= bound and (diff > 0).float().mean() <= share
        assert diff.float().mean() < 0.02


def test_resize_rejects_float_and_skips_same_size():
    with pytest.raises(ValueError, match="uint8"):
        resize_batch(torch.zeros(1, 3, 8, 8), 16)
    images = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    assert resize_batch(images, 8) is images


def test_gather_crops_matches_slicing_in_both_layouts():
    images = torch.from_numpy(_images(3, 20)).permute(0, 3, 1, 2)
    offsets = torch.tensor([[[0, 0], [12, 5]], [[3, 12], [7, 7]], [[12, 12], [0, 9]]])
    expected = torch.stack([torch.stack([images[i, :, y:y + 8, x:x + 8] for y, x in offsets[i].tolist()])
                            for i in range(3)])
    for layout in (images, images.contiguous()):
        assert torch.equal(gather_crops(layout, offsets, 8), expected)


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    """3 classes x 4 PNGs of 24 px, one class with a non-square image (centre-cropped)."""
    folder = tmp_path_factory.mktemp("batched")
    rng = np.random.default_rng(1)
    groups = []
    for label in range(3):
        paths = []
        for i in range(4):
            shape = (24, 30, 3) if (label, i) == (2, 1) else (24, 24, 3)
            path = str(folder / f"{label}_{i}.png")
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
            paths.append(path)
        groups.append(paths)
    return groups


GEOMETRY = dict(crop_size=24, resize_size=56, second_resize_size=0, multi_size=16, crop_num=5, length=8)


def _views_of(dataset, indices):
    """Per item views [G, n, 3, m, m] float, through the batched device path for uint8 items."""
    images, offsets, labels = default_collate([dataset[i] for i in indices])
    if images.dtype == torch.uint8:
        flat = resize_crop_normalise(images.flatten(0, 1), offsets.flatten(0, 1), 56, 16)
        images = flat.reshape(*labels.shape, *flat.shape[1:])
    return images, offsets, labels


def test_batched_paths_equal_pil_path(groups):
    """Same crop corners; same pixels (exact on CPU); same per-channel statistics."""
    pil = BalancedMultiCropDataset(groups, pipeline="pil", **GEOMETRY)
    plain = CachedBalancedMultiCropDataset(groups, pipeline="batched", **GEOMETRY)    # nothing cached
    cached = CachedBalancedMultiCropDataset(groups, pipeline="batched", **GEOMETRY)
    stats = cached.preload(1 << 30, threads=2)
    assert stats["complete"] and stats["images"] == 12
    for epoch in (0, 3):
        for dataset in (pil, plain, cached):
            dataset.set_epoch(epoch)
        ref_views, ref_offsets, ref_labels = _views_of(pil, range(8))
        for dataset in (plain, cached):
            views, offsets, labels = _views_of(dataset, range(8))
            assert torch.equal(offsets, ref_offsets) and torch.equal(labels, ref_labels)
            assert (views - ref_views).abs().max() * 127.5 <= 2.0 + 1e-4
            assert torch.allclose(views.mean(dim=(0, 1, 2, 4, 5)), ref_views.mean(dim=(0, 1, 2, 4, 5)), atol=1e-3)
            assert torch.allclose(views.std(dim=(0, 1, 2, 4, 5)), ref_views.std(dim=(0, 1, 2, 4, 5)), atol=1e-3)


def test_cached_items_equal_uncached_items(groups):
    parent = BalancedMultiCropDataset(groups, pipeline="batched", **GEOMETRY)
    cached = CachedBalancedMultiCropDataset(groups, pipeline="batched", **GEOMETRY)
    partial = CachedBalancedMultiCropDataset(groups, pipeline="batched", **GEOMETRY)
    cached.preload(1 << 30)
    stats = partial.preload(5 * 24 * 24 * 3)            # room for 5 of the 12 images
    assert not stats["complete"] and stats["images"] == 5
    for index in range(8):
        expected = parent[index]
        for dataset in (cached, partial):
            assert all(torch.equal(a, b) for a, b in zip(dataset[index], expected))


def test_cache_keeps_squares_after_the_first_resize_when_a_second_follows(groups):
    """in_the_wild-like geometry (24 -> 12 -> 40): the cache holds the 12-px first resize, a
    quarter of the bytes, and the items are bit-identical to the uncached dataset's."""
    geometry = {**GEOMETRY, "resize_size": 12, "second_resize_size": 40}
    parent = BalancedMultiCropDataset(groups, pipeline="batched", **geometry)
    cached = CachedBalancedMultiCropDataset(groups, pipeline="batched", **geometry)
    stats = cached.preload(1 << 30)
    assert stats["complete"] and stats["bytes"] == 12 * 12 * 3 * 12
    for index in range(8):
        assert all(torch.equal(a, b) for a, b in zip(cached[index], parent[index]))
    augmented = CachedBalancedMultiCropDataset(groups, pipeline="batched", augment=lambda a, rng: a, **geometry)
    assert augmented.preload(1 << 30)["bytes"] == 24 * 24 * 3 * 12   # augmentation sees the source


def test_cache_is_read_only_and_skips_unreadable_files(groups, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with_broken = [groups[0], [str(broken)] + groups[1][1:], groups[2]]
    parent = BalancedMultiCropDataset(with_broken, pipeline="batched", **GEOMETRY)
    cached = CachedBalancedMultiCropDataset(with_broken, pipeline="batched", **GEOMETRY)
    with pytest.warns(UserWarning, match="unreadable"):
        cached.preload(1 << 30)
    with pytest.warns(UserWarning, match="unreadable"):
        expected = [parent[i] for i in range(len(parent))]     # some item draws the broken file
    for index, items in enumerate(expected):
        assert all(torch.equal(a, b) for a, b in zip(cached[index], items))

    def in_place(image, rng):
        image[0, 0] = 0
        return image
    cached.augment = in_place
    with pytest.raises(ValueError, match="read-only"):
        cached[1]


def test_cpu_loader_collate_equals_device_path(groups):
    """CropCollate (CPU training) gives the same views as trainer.batch_views on uint8 batches (CUDA route)."""
    config = load_config("toy", ["crop_size=24", "resize_size=56", "multi_size=16", "crop_num=5",
                                 "class_num=3", "batch_size=4", "num_workers=0", "iters_per_epoch=2"])
    dataset = builders.build_train_dataset(config, [(p, k) for k, g in enumerate(groups) for p in g], "main")
    builders.preload_images(dataset, config)
    loader = builders.train_loader(dataset, config, epoch=1, device=torch.device("cpu"))
    assert isinstance(loader.collate_fn, CropCollate)
    items = [dataset[i] for i in loader.sampler.indices()[:4]]
    views, labels = batch_views(loader.collate_fn(items), config, torch.device("cpu"))
    device_views, device_labels = batch_views(default_collate(items), config, torch.device("cpu"))
    assert views.shape == (4 * 3 * 5, 3, 16, 16) and views.is_contiguous()
    assert torch.equal(views, device_views) and torch.equal(labels, device_labels)


def test_persistent_workers_follow_the_epoch_like_fresh_loaders(groups):
    """Training keeps one loader with persistent workers across epochs: each epoch's batches
    must equal those of a fresh single-process loader of that epoch (order and random draws)."""
    config = load_config("toy", ["crop_size=24", "resize_size=56", "multi_size=16", "crop_num=2",
                                 "class_num=3", "batch_size=2", "num_workers=2", "iters_per_epoch=2"])
    items = [(p, k) for k, g in enumerate(groups) for p in g]
    persistent = builders.train_loader(builders.build_train_dataset(config, items, "main"), config, epoch=1,
                                       device=torch.device("cpu"), persistent=True)
    assert persistent.persistent_workers
    fresh_config = load_config("toy", ["crop_size=24", "resize_size=56", "multi_size=16", "crop_num=2",
                                       "class_num=3", "batch_size=2", "num_workers=0", "iters_per_epoch=2"])
    epochs = []
    for epoch in (1, 2, 3):
        builders.set_loader_epoch(persistent, epoch)
        got = list(persistent)
        fresh = builders.train_loader(builders.build_train_dataset(fresh_config, items, "main"), fresh_config,
                                      epoch=epoch, device=torch.device("cpu"))
        expected = list(fresh)
        assert len(got) == len(expected) == 2
        for a, b in zip(got, expected):
            assert all(torch.equal(x, y) for x, y in zip(a, b))
        epochs.append(got[0][0])
    assert not torch.equal(epochs[0], epochs[1])        # the epochs do differ


def _benchmark_entry():
    spec = importlib.util.spec_from_file_location("benchmark_entry", os.path.join(ROOT, "eval", "benchmark.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_cli_runs_and_ends_with_speedup(capsys):
    """Tiny end-to-end run of eval/benchmark.py (synthetic images, no workers, one round)."""
    entry = _benchmark_entry()
    argv = ["--config_name", "toy", "--device", "cpu", "--per_class", "2", "--data_batches", "2",
            "--steps", "1", "--warmup", "1", "--repeats", "1", "--set", "num_workers=0", "width=4",
            "batch_size=2", "crop_size=16", "resize_size=32", "multi_size=16", "crop_num=2"]
    assert entry.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("released-style") for line in lines)
    assert any(line.startswith("model only") for line in lines)
    assert lines[-1].startswith("speedup: ") and float(lines[-1].split()[1]) > 0
    peak = [line for line in lines if line.startswith("peak memory: ")]
    assert len(peak) == 1 and 0.05 < float(peak[0].split()[2]) < 24          # GiB, this process
    training = [line for line in lines if line.startswith("training speedup: ")]
    assert len(training) == 1 and float(training[0].split()[2]) > 0
    assert entry.main(["--parts", "gpu"]) == 1
    assert capsys.readouterr().err.startswith("error: --parts")


def _write_rgb(path, height, width, seed):
    """A textured uint8 image of height x width, saved as PNG."""
    side = max(height, width)
    Image.fromarray(textured_image(side, seed)[:height, :width]).save(path)
    return str(path)


# squares of other sides than crop_size (128) and non-squares smaller and larger than it
SHAPES = [(48, 48), (96, 96), (128, 128), (160, 160), (256, 256), (60, 40), (300, 200)]


def _discriminating_model(images: torch.Tensor):
    """A random SimpleCNN (released format, 5 classes) whose head is set to spread ``images``
    over the classes: a random head on random features gives almost the same probabilities
    for every input, which would hide any preprocessing difference."""
    from models import SimpleCNN
    torch.manual_seed(3)
    model = SimpleCNN(5, width=8).eval()
    with torch.no_grad():
        pooled = model(images)[1].mean(dim=(2, 3))                          # [n, 8w]
        weight = torch.randn(5, pooled.shape[1]) / (pooled.std(dim=0) + 1e-6)
        weight *= 3.0 / (weight @ (pooled - pooled.mean(dim=0)).T).std()   # logits spread ~3
        head = model.classification_head[1]
        head.weight.copy_(weight)
        head.bias.copy_(-(weight @ pooled.mean(dim=0)))
    return model


def test_fast_path_equals_pil_path_on_every_image_size(tmp_path):
    """celeba geometry (crop 128 -> 512), the released model format: a whole-image prediction
    must not depend on the pipeline, whatever the image's size (one batch mixes them all)."""
    from data.datasets import WholeImageDataset
    from engine.evaluate import eval_loader, forward_pass
    items = [(_write_rgb(tmp_path / f"{h}x{w}.png", h, w, seed), 0) for seed, (h, w) in enumerate(SHAPES)]
    reference = WholeImageDataset(items, crop_size=128, resize_size=512, pipeline="pil")
    model = _discriminating_model(torch.stack([reference[i][0] for i in range(len(items))]))
    probs = {}
    for pipeline in ("pil", "batched"):
        dataset = WholeImageDataset(items, crop_size=128, resize_size=512, pipeline=pipeline)
        probs[pipeline] = forward_pass(model, eval_loader(dataset, len(items), 0), torch.device("cpu"), 512)["probs"]
    difference = np.abs(probs["pil"] - probs["batched"]).max(axis=1)
    assert probs["pil"].std(axis=0).max() > 0.1, "the model must tell the images apart for this to mean anything"
    assert (difference <= 5e-3).all(), dict(zip(SHAPES, difference.round(4)))


def test_mixed_sides_resize_like_each_side_alone():
    squares = [torch.from_numpy(textured_image(side, side)).permute(2, 0, 1) for side in (24, 40, 24, 56)]
    mixed = resize_batch(squares, 48)
    for square, out in zip(squares, mixed):
        assert torch.equal(out, resize_batch(square[None].contiguous(memory_format=torch.channels_last), 48)[0])


def test_training_items_of_several_sides_make_the_same_views_in_both_pipelines(tmp_path):
    """Classes of different image sizes: the fast path ships each at its own side."""
    sizes = (24, 40, 33)
    image_groups = [[_write_rgb(tmp_path / f"{k}_{i}.png", side, side, 10 * k + i) for i in range(3)]
                    for k, side in enumerate(sizes)]
    geometry = dict(crop_size=24, resize_size=56, second_resize_size=0, multi_size=16, crop_num=3, length=4)
    pil = BalancedMultiCropDataset(image_groups, pipeline="pil", **geometry)
    fast = BalancedMultiCropDataset(image_groups, pipeline="batched", **geometry)
    collate = CropCollate(56, 16)
    expected, _, _ = default_collate([pil[i] for i in range(4)])
    views, _, labels = collate([fast[i] for i in range(4)])
    assert views.shape == expected.shape and labels.shape == (4, 3)
    assert (views - expected).abs().max() * 127.5 <= 2.0 + 1e-4


def test_recalibration_from_the_persistent_loader_equals_a_fresh_loader(groups):
    """The single-process training reuses its persistent loader for precise BatchNorm: the
    statistics must equal those from a new loader of the same epoch."""
    import copy
    from engine.train import TrainJob, recalibrate_on_training_batches
    config = load_config("toy", ["crop_size=24", "resize_size=56", "multi_size=16", "crop_num=2", "width=4",
                                 "class_num=3", "batch_size=2", "num_workers=2", "iters_per_epoch=3",
                                 "bn_recalibrate_batches=2", "amp=off"])
    items = [(p, k) for k, g in enumerate(groups) for p in g]
    dataset = builders.build_train_dataset(config, items, "main")
    job = TrainJob(config=config, config_name="toy", run_dir="", train_list="", val_list="")
    torch.manual_seed(0)
    fresh_model = builders.build_train_model(config).backbone
    reused_model = copy.deepcopy(fresh_model)
    loader = builders.train_loader(dataset, config, epoch=1, device=torch.device("cpu"), persistent=True)
    next(iter(loader))                                          # mid-epoch 1, as after training
    assert recalibrate_on_training_batches(job, reused_model, dataset, 2, loader=loader) == 2
    assert recalibrate_on_training_batches(job, fresh_model, dataset, 2) == 2
    for (name, a), (_, b) in zip(fresh_model.state_dict().items(), reused_model.state_dict().items()):
        assert torch.equal(a, b), name
