"""Balanced multi-crop batches, both pipelines, image modes and bad images."""
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_class_images
from data.batched import resize_crop_normalise
from data.datasets import BalancedMultiCropDataset, TransformDataset, WholeImageDataset
from data.image_io import ImageLoadError, check_readable, load_rgb
from data.transforms import pretrain_transforms


def groups(tmp_path, counts=(4, 2, 3)):
    return [make_class_images(str(tmp_path / str(k)), k, n) for k, n in enumerate(counts)]


def dataset(tmp_path, pipeline="pil", **kwargs):
    return BalancedMultiCropDataset(groups(tmp_path), crop_size=32, resize_size=64, second_resize_size=0,
                                    multi_size=16, crop_num=4, pipeline=pipeline, **kwargs)


def test_balanced_item_holds_one_image_of_every_class(tmp_path):
    data = dataset(tmp_path)
    assert len(data) == 4  # the largest class; smaller classes cycle
    images, offsets, labels = data[3]
    assert images.shape == (3, 4, 3, 16, 16) and images.dtype == torch.float32
    assert offsets.shape == (3, 4, 2) and labels.tolist() == [0, 1, 2]
    assert images.min() >= -1 and images.max() <= 1


def test_batches_stack_to_b_times_k(tmp_path):
    loader = torch.utils.data.DataLoader(dataset(tmp_path), batch_size=2)
    images, offsets, labels = next(iter(loader))
    assert images.shape == (2, 3, 4, 3, 16, 16) and labels.shape == (2, 3)


def test_items_are_deterministic_per_seed_epoch_and_index(tmp_path):
    data = dataset(tmp_path)
    first = data[1][0]
    assert torch.equal(first, data[1][0])
    data.set_epoch(1)
    assert not torch.equal(first, data[1][0])


def test_batched_pipeline_crops_the_same_places_as_pil(tmp_path):
    pil, fast = dataset(tmp_path, "pil"), dataset(tmp_path, "batched")
    crops, offsets, _ = pil[2]
    squares, fast_offsets, _ = fast[2]
    assert squares.dtype == torch.uint8 and squares.shape == (3, 3, 32, 32)
    assert torch.equal(offsets, fast_offsets)
    batched = resize_crop_normalise(squares, fast_offsets, 64, 16)
    difference = (batched - crops).abs() * 127.5  # in grey levels
    assert difference.max() <= 1.0 + 1e-4 and (difference > 0.5).float().mean() < 0.02


def test_unreadable_training_image_is_skipped_with_warning(tmp_path):
    image_groups = groups(tmp_path)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    image_groups[1].insert(0, str(bad))
    data = BalancedMultiCropDataset(image_groups, 32, 64, 0, 16, 4)
    with pytest.warns(UserWarning, match="broken.png"):
        items = [data[i] for i in range(len(data))]          # one epoch draws every image
    assert all(images.shape[0] == 3 for images, _, _ in items) and str(bad) in data.failed


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16", "CMYK"])
def test_any_image_mode_loads_as_rgb(tmp_path, mode):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (20, 24)).astype(np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, (20, 24, 3)).astype(np.uint8)).convert(mode)
    path = str(tmp_path / f"x.{'tif' if mode == 'CMYK' else 'png'}")
    image.save(path)
    loaded = load_rgb(path)
    assert loaded.mode == "RGB" and loaded.size == (24, 20)
    assert np.asarray(loaded).std() > 0


def test_bad_files_raise_named_errors(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = make_class_images(str(tmp_path), 0, 1, size=64)[0]
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(open(good, "rb").read()[:200])
    for path, reason in ((empty, "0 bytes"), (truncated, "truncated|broken|Error"), (tmp_path / "none.png", "not found")):
        with pytest.raises(ImageLoadError, match=reason) as info:
            load_rgb(str(path))
        assert str(path) in str(info.value)
    assert check_readable(str(empty)) and check_readable(good) == ""


def test_whole_image_dataset_marks_bad_files(tmp_path):
    good = make_class_images(str(tmp_path), 1, 1)[0]
    bad = tmp_path / "bad.png"
    bad.write_text("text")
    data = WholeImageDataset([(good, 1), (str(bad), 0)], crop_size=32, resize_size=64)
    image, label, index, ok = data[0]
    assert image.shape == (3, 64, 64) and ok and label == 1
    with pytest.warns(UserWarning, match="bad.png"):
        assert data[1][3] is False


def test_non_square_images_are_centre_cropped(tmp_path):
    array = np.zeros((40, 60, 3), np.uint8)
    array[:, 10:50] = 255  # the centre 40x40 window is all white
    path = str(tmp_path / "wide.png")
    Image.fromarray(array).save(path)
    image, *_ = WholeImageDataset([(path, 0)], crop_size=40, resize_size=40)[0]
    assert torch.allclose(image, torch.ones_like(image))


def test_transform_dataset_labels_are_transformation_indices(tmp_path):
    paths = make_class_images(str(tmp_path), 0, 3, size=40)
    data = TransformDataset(paths, pretrain_transforms(), pretrain_crop=32, resize_size=64,
                            multi_size=16, crop_num=4)
    images, offsets, labels = data[0]
    assert images.shape == (1, 4, 3, 16, 16) and 0 <= labels.item() < 170
    assert torch.equal(images, data[0][0])


class _Recording(BalancedMultiCropDataset):
    """Records which image of each class every item reads (no decoding)."""

    def __init__(self, counts, length):
        super().__init__([[f"{k}_{i}" for i in range(n)] for k, n in enumerate(counts)], crop_size=8,
                         resize_size=8, second_resize_size=0, multi_size=8, crop_num=1, length=length)
        self.reads = []

    def _load(self, label, index):
        self.reads.append((self.epoch, label, index))
        return np.zeros((8, 8, 3), np.uint8)


def _epoch_reads(data, epoch):
    data.set_epoch(epoch)
    data.reads = []
    for index in range(len(data)):
        data[index]
    return data.reads


def test_short_epochs_draw_fresh_images_and_cover_every_image():
    """iters_per_epoch * batch_size items per epoch (here 4) over classes of 10, 7 and 3 images:
    the epochs 1..4 of a training run read every image of every class."""
    counts = (10, 7, 3)
    data = _Recording(counts, length=4)
    per_epoch = {epoch: _epoch_reads(data, epoch) for epoch in range(1, 5)}
    for label, count in enumerate(counts):
        seen = {index for reads in per_epoch.values() for _, k, index in reads if k == label}
        assert seen == set(range(count)), (label, sorted(seen))
    first = [index for _, k, index in per_epoch[1] if k == 0]
    second = [index for _, k, index in per_epoch[2] if k == 0]
    assert first != second                                     # the next epoch reads other images
    # deterministic per (seed, epoch, index): a resumed run reads the same images
    assert _epoch_reads(_Recording(counts, length=4), 2) == per_epoch[2]


def test_full_epochs_read_every_image_of_the_largest_class_once():
    data = _Recording((6, 4), length=0)
    reads = _epoch_reads(data, 1)
    assert sorted(index for _, label, index in reads if label == 0) == list(range(6))
    assert set(index for _, label, index in reads if label == 1) == set(range(4))


def test_pretraining_epochs_cover_every_source_image(tmp_path):
    paths = make_class_images(str(tmp_path / "src"), 0, 9, size=40)
    data = TransformDataset(paths, pretrain_transforms()[:3], pretrain_crop=32, resize_size=32,
                            multi_size=16, crop_num=2, length=3)
    used = []
    data.source = lambda index, rng: used.append(index) or np.zeros((32, 32, 3), np.uint8)
    for epoch in range(3):
        data.set_epoch(epoch)
        for index in range(len(data)):
            data[index]
    assert sorted(used) == list(range(9))


def test_pretraining_item_pairs_two_photos_under_one_transformation(tmp_path):
    paths = make_class_images(str(tmp_path / "src"), 0, 6, size=40)
    data = TransformDataset(paths, pretrain_transforms(), pretrain_crop=32, resize_size=32,
                            multi_size=16, crop_num=2, length=6, images_per_label=2)
    used = []
    original = data.source
    data.source = lambda index, rng: used.append(index) or original(index, rng)
    images, offsets, labels = data[1]
    assert images.shape == (2, 2, 3, 16, 16) and offsets.shape == (2, 2, 2)
    assert labels[0] == labels[1] and len(set(used)) == 2          # one transformation, two photos
    with pytest.raises(ValueError, match="pretrain_images_per_label"):
        TransformDataset(paths, pretrain_transforms(), 32, 32, 16, 2, images_per_label=0)
