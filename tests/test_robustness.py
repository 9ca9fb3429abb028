"""eval/robustness.py: the full sweep's CSV and PNG, determinism, wiring of levels, train_aug."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

import main as train_main
from configs import load_config
from conftest import TINY_OVERRIDES, make_collections, load_script, random_model
from data.annotations import write_annotations
from data.datasets import WholeImageDataset
from data.postprocess import PERTURBATIONS
from engine import builders
from engine.builders import build_augment
from engine.inference import load_eval_setup, run_items
from analysis.robustness import make_perturb, parse_levels, sweep_plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


robustness = load_script("eval", "robustness")


def textured(seed: int, size: int = 32) -> np.ndarray:
    """Smooth gradients + a sinusoid + mild noise: every post-processing visibly changes it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([200 * x + 20, 200 * y + 20, 100 * (x + y) + 30], axis=-1)
    image = base + 30 * np.sin(2 * np.pi * 5 * x)[..., None] + rng.uniform(-20, 20, (size, size, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.fixture
def setup_and_items(tmp_path):
    path = random_model(str(tmp_path / "run" / "model.pth"), 3, seed=0,
                        info={"method": "dnadet", "class_num": 3, "class_names": ["real", "a", "b"],
                              "width": 8, "crop_size": 32, "resize_size": 32})
    items = []
    for i in range(6):
        image_path = str(tmp_path / f"img{i}.png")
        Image.fromarray(textured(i)).save(image_path)
        items.append((image_path, i % 3))
    list_path = str(tmp_path / "toy_test.txt")
    write_annotations(list_path, items)
    return path, items, list_path


def test_full_sweep_writes_every_level_and_a_png(setup_and_items, tmp_path, capsys):
    model, items, list_path = setup_and_items
    out = str(tmp_path / "out")
    code = robustness.main(["--model_path", model, "--config_name", "toy", "--test_data_path", list_path,
                            "--out_dir", out, "--device", "cpu", "--set", "num_workers=0", "class_num=3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with open(os.path.join(out, "robustness.csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = [("none", "")] + [(name, str(level)) for name, entry in PERTURBATIONS.items()
                                 for level in entry.levels]
    assert [(r["perturbation"], r["level"]) for r in rows] == expected
    assert list(rows[0])[:4] == ["perturbation", "level", "acc", "macro_f1"]
    assert all(0.0 <= float(r["acc"]) <= 1.0 and r["n_images"] == "6" for r in rows)
    with Image.open(os.path.join(out, "robustness.png")) as png:
        assert png.format == "PNG" and png.size[0] > 300
    assert "| none " in captured.out and "| gaussian_blur  | 0.5 " in captured.out


def test_sweep_is_deterministic_and_really_perturbs(setup_and_items):
    model, items, _ = setup_and_items
    setup = load_eval_setup(model, "toy", ["num_workers=0", "class_num=3"], "cpu")
    clean = run_items(setup, items, "clean", progress=False)["probs"]
    noisy = [run_items(setup, items, "noise", perturb=make_perturb("gaussian_noise", 20),
                       progress=False)["probs"] for _ in range(2)]
    assert np.array_equal(noisy[0], noisy[1])
    assert not np.allclose(clean, noisy[0], atol=1e-4)


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_dataset_images_move_away_from_clean_with_strength(setup_and_items, name):
    """The level reaches the image: distance to the clean input grows along the levels."""
    _, items, _ = setup_and_items
    clean = WholeImageDataset(items[:2], 32, 32)[0][0]
    distances = []
    for level in PERTURBATIONS[name].levels:
        image = WholeImageDataset(items[:2], 32, 32, perturb=make_perturb(name, level))[0][0]
        distances.append(float((image - clean).abs().mean()))
    assert distances[0] > 0
    assert all(b >= a - 1e-6 for a, b in zip(distances, distances[1:])), distances


def test_plan_and_level_parsing():
    assert len(sweep_plan()) == sum(len(entry.levels) for entry in PERTURBATIONS.values())
    assert parse_levels(["jpeg=90,50", "gamma=0.5"]) == {"jpeg": (90, 50), "gamma": (0.5,)}
    assert sweep_plan(["jpeg"], {"jpeg": (90,)}) == [("jpeg", 90)]
    with pytest.raises(ValueError, match="unknown perturbation"):
        sweep_plan(["sharpen"])
    with pytest.raises(ValueError, match="name=l1,l2"):
        parse_levels(["blur=2"])


def test_train_aug_perturbs_images_and_trains(tmp_path, monkeypatch):
    config = load_config("toy", ["train_aug=true", "train_aug_prob=1.0"])
    augment = build_augment(config)
    image = textured(0)
    first = augment(image, np.random.default_rng(3))
    assert not np.array_equal(first, image)
    assert np.array_equal(first, augment(image, np.random.default_rng(3)))
    assert build_augment(load_config("toy", ["train_aug_prob=1.0"])) is None
    never = build_augment(load_config("toy", ["train_aug=true", "train_aug_prob=0.0"]))
    assert np.array_equal(never(image, np.random.default_rng(3)), image)
    calls = []

    def counting(config):
        inner = build_augment(config)
        return None if inner is None else (lambda image, rng: calls.append(1) or inner(image, rng))
    monkeypatch.setattr(builders, "build_augment", counting)
    root = make_collections(str(tmp_path), class_num=3, per_class=4)
    code = train_main.main(["--data_path", root, "--train_collection", "toy_train", "--val_collection",
                            "toy_val", "--config_name", "toy", "--device", "cpu", "--set", *TINY_OVERRIDES,
                            "class_num=3", "max_epochs=1", "train_aug=true", "train_aug_prob=1.0"])
    assert code == 0 and len(calls) > 0          # stage-2 training applied the post-processings
    assert os.path.isfile(os.path.join(root, "toy_train", "models", "toy_val", "toy", "run_1", "model.pth"))
