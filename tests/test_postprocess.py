"""Robustness post-processings (SPEC section 11): levels, monotone strength, purity, errors."""
import cv2
import numpy as np
import pytest

from data.postprocess import PERTURBATIONS, apply_perturbation
from data.transforms import jpeg_compress
from conftest import mse, textured_image


SPEC_LEVELS = {"jpeg": (95, 90, 80, 70, 60, 50, 40, 30),
               "gaussian_blur": (0.5, 1, 2, 3, 4),
               "resize": (0.9, 0.75, 0.5, 0.25),
               "gaussian_noise": (2, 5, 10, 20),
               "center_crop": (0.95, 0.9, 0.85, 0.8)}


def test_table_holds_spec_levels_ordered_weakest_first():
    assert set(PERTURBATIONS) == set(SPEC_LEVELS) | {"gamma"}
    for name, levels in SPEC_LEVELS.items():
        assert PERTURBATIONS[name].levels == levels, name
    for name, entry in PERTURBATIONS.items():
        ordered = sorted(entry.levels, reverse=not entry.stronger_when_larger)
        assert list(entry.levels) == ordered, name
        assert entry.label, name
    assert all(0 < g < 1 for g in PERTURBATIONS["gamma"].levels)


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_distance_grows_with_strength(name):
    image = textured_image(64)
    distances = [mse(apply_perturbation(name, image, level, np.random.default_rng(0)), image)
                 for level in PERTURBATIONS[name].levels]
    assert distances[0] > 0, name
    assert all(a <= b for a, b in zip(distances, distances[1:])), (name, distances)
    assert distances[-1] > distances[0], name


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_pure_deterministic_shape_and_dtype(name):
    image = textured_image(96)[:, 8:72]  # 96x64, not C-contiguous
    original = image.copy()
    for level in PERTURBATIONS[name].levels:
        out = apply_perturbation(name, image, level, np.random.default_rng(3))
        assert out.dtype == np.uint8 and out.shape == image.shape, (name, level)
        assert out.flags["C_CONTIGUOUS"], (name, level)
        assert np.array_equal(image, original), f"{name} modified its input"
        again = apply_perturbation(name, image, level, np.random.default_rng(3))
        assert np.array_equal(out, again), (name, level)


def test_noise_depends_on_the_generator_and_has_the_requested_std():
    flat = np.full((128, 128, 3), 128, np.uint8)
    a = apply_perturbation("gaussian_noise", flat, 10, np.random.default_rng(0))
    b = apply_perturbation("gaussian_noise", flat, 10, np.random.default_rng(1))
    assert not np.array_equal(a, b)
    assert a.astype(np.float64).std() == pytest.approx(10, rel=0.05)
    zero = apply_perturbation("gaussian_noise", flat, 0, np.random.default_rng(0))
    assert np.array_equal(zero, flat)


def test_rules_match_their_documented_definitions():
    image = textured_image(64)
    rng = np.random.default_rng(0)
    assert np.array_equal(apply_perturbation("jpeg", image, 70, rng), jpeg_compress(image, 70))
    assert np.array_equal(apply_perturbation("gaussian_blur", image, 2, rng),
                          cv2.GaussianBlur(image, (0, 0), 2))
    small = cv2.resize(image, (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(apply_perturbation("resize", image, 0.5, rng),
                          cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR))
    crop = np.ascontiguousarray(image[6:57, 6:57])  # round(0.8 * 64) = 51, offset (64-51)//2 = 6
    assert np.array_equal(apply_perturbation("center_crop", image, 0.8, rng),
                          cv2.resize(crop, (64, 64), interpolation=cv2.INTER_CUBIC))
    brighter = apply_perturbation("gamma", image, 0.6, rng)
    assert brighter.astype(int).mean() > image.mean() + 10
    assert (brighter >= image).all()


@pytest.mark.parametrize("name, level", [("resize", 1.0), ("center_crop", 1.0), ("gamma", 1.0)])
def test_neutral_level_is_identity(name, level):
    image = textured_image(64)
    assert np.array_equal(apply_perturbation(name, image, level, None), image)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown perturbation 'contrast'.*gaussian_blur"):
        apply_perturbation("contrast", textured_image(16), 1, np.random.default_rng(0))


@pytest.mark.parametrize("name, level", [
    ("jpeg", 0), ("jpeg", 101), ("jpeg", 95.5), ("jpeg", "95"), ("jpeg", True),
    ("gaussian_blur", -1), ("gaussian_blur", 0), ("gaussian_blur", float("nan")),
    ("resize", 0), ("resize", 1.5), ("resize", float("inf")),
    ("gaussian_noise", -2),
    ("center_crop", 0), ("center_crop", 1.2),
    ("gamma", 0), ("gamma", -0.5)])
def test_bad_level_raises(name, level):
    with pytest.raises(ValueError, match="must"):
        apply_perturbation(name, textured_image(16), level, np.random.default_rng(0))


def test_bad_image_raises():
    with pytest.raises(ValueError, match="uint8"):
        apply_perturbation("jpeg", np.zeros((8, 8, 3), np.float32), 90, np.random.default_rng(0))
