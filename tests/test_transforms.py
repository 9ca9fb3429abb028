"""Stage-1 pre-training transformations (SPEC section 5): order, names, effects, purity."""
import math

import cv2
import numpy as np
import pytest

from conftest import mse, textured_image
from data.transforms import (PRETRAIN_NUM_CLASSES, apply_transform, down_up_resize,
                             pretrain_transforms)

QUALITIES = list(range(30, 100, 3))
SECOND_QUALITIES = [39, 99, 36, 93, 60, 75, 81, 39, 63, 69, 60, 87,
                    90, 48, 81, 75, 72, 78, 54, 33, 81, 30, 36, 99]
KERNELS = list(range(3, 30, 2))
SCALES = ["0.15", "0.20", "0.25", "0.30", "0.35", "0.40", "0.45", "0.50",
          "0.55", "0.60", "0.65", "0.70", "0.75", "0.80", "0.85", "0.90"]
INTERPOLATIONS = ["nearest", "linear", "cubic", "area", "lanczos4"]
TABLE = pretrain_transforms()
FNS = dict(TABLE)


def laplacian_variance(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def test_names_and_order_follow_spec():
    expected = ([f"jpeg_q{q}" for q in QUALITIES]
                + [f"double_jpeg_q{a}_q{b}" for a, b in zip(QUALITIES, SECOND_QUALITIES)]
                + [f"gaussian_blur_k{k}" for k in KERNELS]
                + [f"median_blur_k{k}" for k in KERNELS]
                + [f"resize_s{s}_{i}" for s in SCALES for i in INTERPOLATIONS]
                + [f"gaussian_noise_v{v}" for v in range(10, 50, 3)])
    names = [name for name, _ in TABLE]
    assert len(names) == PRETRAIN_NUM_CLASSES == 170
    assert len(set(names)) == 170
    assert names == expected
    landmarks = {0: "jpeg_q30", 23: "jpeg_q99",
                 24: "double_jpeg_q30_q39", 47: "double_jpeg_q99_q99",
                 48: "gaussian_blur_k3", 61: "gaussian_blur_k29", 62: "median_blur_k3",
                 75: "median_blur_k29", 76: "resize_s0.15_nearest", 80: "resize_s0.15_lanczos4",
                 81: "resize_s0.20_nearest", 155: "resize_s0.90_lanczos4",
                 156: "gaussian_noise_v10", 169: "gaussian_noise_v49"}
    for index, name in landmarks.items():
        assert names[index] == name


@pytest.mark.parametrize("size", [64, 128])
def test_every_transform_is_pure_and_changes_the_image(size):
    image = textured_image(size)
    original = image.copy()
    for index, (name, fn) in enumerate(TABLE):
        out = fn(image, np.random.default_rng(1))
        assert out.dtype == np.uint8 and out.shape == image.shape, name
        assert out.flags["C_CONTIGUOUS"], name
        assert mse(out, image) > 1.0, name
        assert np.array_equal(image, original), f"{name} modified its input"
        assert np.array_equal(apply_transform(index, image, np.random.default_rng(1)), out), name


def test_non_contiguous_input_is_accepted():
    view = textured_image(96)[::, 16:80]  # 96x64 column slice: not C-contiguous
    assert not view.flags["C_CONTIGUOUS"]
    for index in range(PRETRAIN_NUM_CLASSES):
        out = apply_transform(index, view, np.random.default_rng(0))
        assert out.shape == view.shape and out.flags["C_CONTIGUOUS"]


def test_deterministic_given_the_generator():
    image = textured_image()
    for index, (name, fn) in enumerate(TABLE):
        first = fn(image, np.random.default_rng(7))
        assert np.array_equal(first, fn(image, np.random.default_rng(7))), name
        if name.startswith("gaussian_noise"):
            assert not np.array_equal(first, fn(image, np.random.default_rng(8))), name


def test_jpeg_lower_quality_differs_more_and_keeps_colours():
    image = textured_image()
    errors = [mse(FNS[f"jpeg_q{q}"](image, None), image) for q in QUALITIES]
    # single 3-point steps can wiggle (quantisation tables are rounded); 9 points cannot
    assert all(a > b for a, b in zip(errors, errors[3:])), errors
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 200  # RGB red must stay red (catches an RGB/BGR swap)
    out = FNS["jpeg_q90"](red, None).astype(int)
    assert abs(out[..., 0].mean() - 200) < 3 and out[..., 2].mean() < 3


def test_double_jpeg_is_two_single_jpegs():
    image = textured_image()
    for q1, q2 in zip(QUALITIES, SECOND_QUALITIES):
        expected = FNS[f"jpeg_q{q2}"](FNS[f"jpeg_q{q1}"](image, None), None)
        assert np.array_equal(FNS[f"double_jpeg_q{q1}_q{q2}"](image, None), expected)
    assert not np.array_equal(FNS["double_jpeg_q30_q39"](image, None), FNS["jpeg_q30"](image, None))


def test_gaussian_blur_matches_opencv_sigma_zero_and_smooths_more_with_k():
    image = textured_image()
    energies = [laplacian_variance(image)]
    for k in KERNELS:
        out = FNS[f"gaussian_blur_k{k}"](image, None)
        assert np.array_equal(out, cv2.GaussianBlur(image, (k, k), 0))
        energies.append(laplacian_variance(out))
    assert all(a > b for a, b in zip(energies, energies[1:])), energies


def test_median_blur_matches_opencv_and_smooths_more_with_k():
    image = textured_image()
    energies = [laplacian_variance(image)]
    for k in KERNELS:
        out = FNS[f"median_blur_k{k}"](image, None)
        assert np.array_equal(out, cv2.medianBlur(image, k))
        energies.append(laplacian_variance(out))
    assert all(a > b for a, b in zip(energies, energies[1:])), energies


def test_down_up_resize_loses_detail_and_uses_rounded_size():
    image = textured_image()
    for interpolation in INTERPOLATIONS:
        weakest = FNS[f"resize_s0.90_{interpolation}"](image, None)
        strongest = FNS[f"resize_s0.15_{interpolation}"](image, None)
        assert laplacian_variance(weakest) < laplacian_variance(image), interpolation
        assert mse(strongest, image) > mse(weakest, image), interpolation
    half = FNS["resize_s0.50_nearest"](image, None)  # 64 -> 32 -> 64: exact 2x2 blocks
    blocks = half.reshape(32, 2, 32, 2, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()
    tiny = down_up_resize(image[:4, :4], 0.15, cv2.INTER_LINEAR)  # 0.6 px -> at least 1 px
    assert tiny.shape == (4, 4, 3) and (tiny == tiny[0, 0]).all()


def test_noise_std_matches_variance_on_a_flat_image():
    flat = np.full((128, 128, 3), 128, np.uint8)
    for v in range(10, 50, 3):
        out = FNS[f"gaussian_noise_v{v}"](flat, np.random.default_rng(v))
        assert out.astype(np.float64).std() == pytest.approx(math.sqrt(v), rel=0.05)
        assert abs(out.astype(np.float64).mean() - 128) < 0.2


def test_noise_clips_instead_of_wrapping():
    white = np.full((64, 64, 3), 255, np.uint8)
    out = FNS["gaussian_noise_v49"](white, np.random.default_rng(0))
    assert out.min() > 200  # uint8 wrap-around would give values near 0


@pytest.mark.parametrize("index", [-1, 170, 3.0, True])
def test_bad_index_raises(index):
    with pytest.raises(ValueError, match="0..169"):
        apply_transform(index, textured_image(), np.random.default_rng(0))


@pytest.mark.parametrize("image", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8),
                                   np.zeros((8, 8, 4), np.uint8), [[0, 0, 0]]])
def test_bad_image_raises(image):
    with pytest.raises(ValueError, match="uint8"):
        apply_transform(0, image, np.random.default_rng(0))
