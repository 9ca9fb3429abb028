"""The fingerprint study: grid, patch cropping (exact pixels), summary and the map files."""
import csv
import importlib.util
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from data.annotations import write_annotations
from analysis.fingerprint import balance_items, crop_patches, grid_offsets, load_images, summarise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_entry():
    spec = importlib.util.spec_from_file_location("eval_fingerprint_study",
                                                  os.path.join(ROOT, "eval", "fingerprint_study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def coordinate_images(count: int, size: int) -> torch.Tensor:
    """uint8 [count, 3, size, size]: channel 0 = row, 1 = column, 2 = image index."""
    rows, cols = np.indices((size, size))
    arrays = [np.stack([rows, cols, np.full_like(rows, n)]) for n in range(count)]
    return torch.from_numpy(np.stack(arrays).astype(np.uint8))


def test_grid_offsets():
    assert grid_offsets(64, 16, 16) == [0, 16, 32, 48]
    assert grid_offsets(64, 32, 8) == [0, 8, 16, 24, 32]
    assert grid_offsets(20, 16, 8) == [0]
    with pytest.raises(ValueError, match="must fit"):
        grid_offsets(16, 32, 8)


def test_crop_picks_exactly_the_right_pixels():
    images = coordinate_images(3, 40)
    patches = crop_patches(images, y=8, x=24, patch=16)
    assert patches.shape == (3, 3, 16, 16)
    back = ((patches + 1.0) * 127.5).round().to(torch.uint8)   # undo the [-1, 1] scaling
    rows = torch.arange(8, 24)[:, None].expand(16, 16)
    cols = torch.arange(24, 40)[None, :].expand(16, 16)
    for n in range(3):
        assert torch.equal(back[n, 0], rows.to(torch.uint8))
        assert torch.equal(back[n, 1], cols.to(torch.uint8))
        assert (back[n, 2] == n).all()
    assert patches.min() >= -1.0 and patches.max() <= 1.0
    with pytest.raises(ValueError, match="leaves"):
        crop_patches(images, y=30, x=0, patch=16)


def test_load_images_keeps_orientation_and_rejects_mixed_sizes(tmp_path):
    array = np.zeros((24, 32, 3), np.uint8)
    array[5, 7] = (10, 20, 30)                                  # row 5, column 7
    Image.fromarray(array).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "b.png")
    images, labels, skipped = load_images([(str(tmp_path / "a.png"), 1)])
    assert images.shape == (1, 3, 24, 32) and labels.tolist() == [1] and skipped == []
    assert images[0, :, 5, 7].tolist() == [10, 20, 30]
    with pytest.raises(ValueError, match="one size"):
        load_images([(str(tmp_path / "a.png"), 0), (str(tmp_path / "b.png"), 0)])


def test_balance_items_cuts_every_class_to_the_smallest():
    items = ([(f"a{i}", 0) for i in range(10)] + [(f"b{i}", 1) for i in range(3)]
             + [(f"c{i}", 2) for i in range(3)])
    kept = balance_items(items, seed=0)
    assert [label for _, label in kept].count(0) == 3 and len(kept) == 9
    assert kept == [item for item in items if item in kept]          # list order kept
    assert kept == balance_items(items, seed=0) and set(kept) != set(balance_items(items, seed=1))


def test_summarise_by_hand():
    acc_map = np.array([[1.0, 0.8, 0.2], [0.6, 0.4, 0.2], [0.2, 0.2, 0.0]])
    summary = summarise(acc_map, (0, 0))
    assert summary["train_position_acc"] == 1.0
    assert summary["elsewhere_mean_acc"] == pytest.approx(2.6 / 8)
    assert summary["elsewhere_min_acc"] == 0.0
    assert summary["acc_by_distance"] == pytest.approx({0: 1.0, 1: 0.6, 2: 0.16})


def write_study_lists(root: str, size: int = 32, per_class: int = 12) -> str:
    """Two classes of flat grey images; class 1 has a bright 16-px square at the top-left."""
    items = []
    for label in range(2):
        for i in range(per_class):
            array = np.full((size, size, 3), 60, np.uint8)
            if label == 1:
                array[:16, :16] = 250
            path = os.path.join(root, "images", f"{label}_{i}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(array).save(path)
            items.append((path, label))
    for split in ("train", "test"):
        name = f"fingerprint_arch_{split}"
        write_annotations(os.path.join(root, name, "annotations", f"{name}.txt"), items)
    return root


def test_study_writes_map_files(tmp_path, capsys):
    root = write_study_lists(str(tmp_path))
    out_dir = str(tmp_path / "out")
    argv = ["--task", "arch", "--data_path", root, "--class_names", "plain", "square",
            "--out_dir", out_dir, "--patch_size", "16", "--stride", "8", "--epochs", "8",
            "--width", "4", "--batch_size", "8", "--device", "cpu"]
    assert load_entry().main(argv) == 0
    printed = capsys.readouterr().out
    assert "accuracy at the training position" in printed
    with open(os.path.join(out_dir, "arch_acc_map.csv"), encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["y\\x", "0", "8", "16"] and [r[0] for r in rows[1:]] == ["0", "8", "16"]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert values.shape == (3, 3) and ((values >= 0) & (values <= 1)).all()
    with open(os.path.join(out_dir, "arch_summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    assert summary["train_cell"] == [0, 0] and summary["settings"]["train_position"] == [0, 0]
    assert summary["summary"]["train_position_acc"] == pytest.approx(values[0, 0])
    assert summary["summary"]["train_position_acc"] == 1.0     # the square is right there
    assert values[2, 2] == pytest.approx(0.5)                  # identical patches: one class for all
    with Image.open(os.path.join(out_dir, "arch_acc_map.png")) as image:
        assert image.size[0] > 100 and image.size[1] > 100


def test_study_rejects_off_grid_position(tmp_path, capsys):
    root = write_study_lists(str(tmp_path), per_class=2)
    argv = ["--task", "arch", "--data_path", root, "--class_names", "a", "b", "--out_dir",
            str(tmp_path / "out"), "--stride", "8", "--train_position", "4,0", "--epochs", "1",
            "--device", "cpu"]
    assert load_entry().main(argv) == 1
    assert "not on the grid" in capsys.readouterr().err


def test_study_over_seeds_writes_one_table_row_per_seed_and_merges_labels(tmp_path, capsys):
    root = write_study_lists(str(tmp_path))
    out_dir, table = str(tmp_path / "out"), str(tmp_path / "fingerprint_seeds")
    argv = ["--task", "arch", "--data_path", root, "--class_names", "plain", "square", "--out_dir", out_dir,
            "--patch_size", "16", "--stride", "8", "--epochs", "2", "--width", "4", "--batch_size", "8",
            "--device", "cpu", "--seeds", "0", "1", "--table", table]
    assert load_entry().main(argv + ["--label", "zoo0 arch"]) == 0
    assert load_entry().main(argv[:-5] + ["--seeds", "3", "--table", table, "--label", "zoo1 arch"]) == 0
    assert "arch seed 1: accuracy at the training position" in capsys.readouterr().out
    assert all(os.path.exists(os.path.join(out_dir, f"arch_s{s}_summary.json")) for s in (0, 1, 3))
    data = json.loads(open(table + ".json").read())
    assert [(r["label"], r["seed"]) for r in data["rows"]] == [("zoo0 arch", 0), ("zoo0 arch", 1), ("zoo1 arch", 3)]
    runs = [r for r in data["rows"] if r["label"] == "zoo0 arch"]
    for row in runs:
        summary = json.load(open(os.path.join(out_dir, f"arch_s{row['seed']}_summary.json")))["summary"]
        assert row["train_position_acc"] == pytest.approx(100 * summary["train_position_acc"])
        assert row["drop"] == pytest.approx(row["train_position_acc"] - row["elsewhere_mean_acc"])
    mean = np.mean([r["elsewhere_mean_acc"] for r in runs])
    text = open(table + ".md").read()
    assert f"| zoo0 arch | 2 | " in text and f"{mean:.1f} ±" in text and "| zoo1 arch | 1 |" in text
    assert load_entry().main(argv + ["--label", "zoo0 arch"]) == 0              # a rerun replaces its rows
    assert len(json.loads(open(table + ".json").read())["rows"]) == 3
