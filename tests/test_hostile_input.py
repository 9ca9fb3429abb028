"""Hostile input: decompression bombs, huge and truncated images, impossible settings,
diverged weights and failed writes. Each gives a one-line error or a named, counted skip,
and nothing earlier is lost."""
import errno
import os
import struct
import zlib

import pytest
import torch

import main as train_main
from conftest import TINY_OVERRIDES, load_script, make_collections, random_model
from configs import load_config
from data.annotations import read_annotations, write_annotations
from data.atomic import OutputWriteError, atomic_file
from data.image_io import ImageLoadError, check_readable, load_rgb
from engine.checkpoint import atomic_save, save_released_weights
from models import SimpleCNN

predict = load_script("eval", "predict")
cross_test = load_script("eval", "cross_test")
STAGE2 = TINY_OVERRIDES + ["class_num=3", "max_epochs=1"]


def png_header(path, width, height) -> str:
    """A PNG of a few bytes whose header claims ``width`` x ``height`` RGB pixels (no pixel data)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return str(path)


def truncated_png(source, path) -> str:
    data = open(source, "rb").read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) * 2 // 3])
    return str(path)


# ---------------------------------------------------------------- the image policy
def test_bomb_huge_and_truncated_images_are_named_reasons(tmp_path, monkeypatch):
    bomb = png_header(tmp_path / "bomb.png", 50000, 50000)
    huge = png_header(tmp_path / "huge.png", 12000, 12000)          # 144 Mpx, under Pillow's own limit
    root = make_collections(str(tmp_path / "c"), 1, 1)
    good = read_annotations(os.path.join(root, "toy_train", "annotations", "toy_train.txt"), class_num=1)[0][0]
    cut = truncated_png(good, tmp_path / "cut.png")
    assert "DecompressionBombError" in check_readable(bomb)
    assert "144,000,000 pixels is above the cap of 64,000,000" in check_readable(huge)
    assert check_readable(huge, decode=False) == check_readable(huge)    # refused from the header
    assert check_readable(cut) and check_readable(cut, decode=False) == ""   # only decoding finds it
    assert check_readable(good) == ""
    for path in (bomb, huge, cut):
        with pytest.raises(ImageLoadError, match="cannot read image"):
            load_rgb(path)
    monkeypatch.setenv("DNADET_MAX_IMAGE_PIXELS", "100")              # the cap is configurable
    assert "above the cap of 100" in check_readable(good)
    monkeypatch.setenv("DNADET_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="DNADET_MAX_IMAGE_PIXELS must be a positive integer"):
        load_rgb(good)


@pytest.fixture
def model_path(tmp_path):
    return random_model(str(tmp_path / "run" / "model.pth"), 3, seed=0,
                        info={"method": "dnadet", "class_num": 3, "class_names": ["a", "b", "c"], "width": 8,
                              "config_name": "toy", "crop_size": 32, "resize_size": 32, "second_resize_size": 0})


def test_predict_skips_a_bomb_and_writes_every_output(model_path, tmp_path, capsys):
    import json
    root = make_collections(str(tmp_path / "c"), 3, 2)
    folder = os.path.join(root, "images")
    bomb = png_header(os.path.join(folder, "bomb.png"), 50000, 50000)
    csv_path, json_path = str(tmp_path / "p.csv"), str(tmp_path / "p.json")
    code = predict.main(["--model_path", model_path, "--device", "cpu", "--csv", csv_path, "--json", json_path, folder,
                         "--set", "class_num=3"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: cannot read image {bomb}: DecompressionBombError" in captured.err
    assert "6 image(s) predicted, 1 unreadable" in captured.err
    records = json.load(open(json_path))["predictions"]
    assert len(records) == 7 and sum(1 for r in records if r["error"]) == 1
    assert len(open(csv_path).read().splitlines()) == 1 + 7


def test_cross_test_counts_a_bomb_as_skipped(model_path, tmp_path, capsys):
    root = make_collections(str(tmp_path / "c"), 3, 2)
    items = read_annotations(os.path.join(root, "toy_train", "annotations", "toy_train.txt"))
    bomb = png_header(tmp_path / "bomb.png", 50000, 50000)
    listing = str(tmp_path / "lists" / "toy_test.txt")
    write_annotations(listing, items + [(bomb, 1)])
    code = cross_test.main(["--model_path", model_path, "--config_name", "toy", "--device", "cpu",
                            "--test_data_paths", listing, "--out_dir", str(tmp_path / "out"),
                            "--set", *TINY_OVERRIDES, "class_num=3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"skipped 1 unreadable image(s): {bomb} (DecompressionBombError" in captured.err


def test_training_skips_bad_images_named_and_counted_in_the_run(tmp_path):
    root = make_collections(str(tmp_path), 3, 4)
    train_list = os.path.join(root, "toy_train", "annotations", "toy_train.txt")
    items = read_annotations(train_list)
    bomb = png_header(tmp_path / "bomb.png", 50000, 50000)
    cut = truncated_png(items[0][0], tmp_path / "cut.png")
    write_annotations(train_list, items + [(bomb, 0), (cut, 1)])
    assert train_main.main(["--data_path", root, "--train_collection", "toy_train", "--val_collection", "toy_val",
                            "--config_name", "toy", "--device", "cpu", "--set", *STAGE2]) == 0
    run = os.path.join(root, "toy_train", "models", "toy_val", "toy", "run_1")
    log = open(os.path.join(run, "train.log")).read()
    assert f"skipping unreadable train image {bomb}: DecompressionBombError" in log
    assert f"skipping unreadable train image {cut}: " in log
    assert f"{len(items)} images, 2 skipped as unreadable" in log
    skipped = open(os.path.join(run, "skipped_images.txt")).read().splitlines()
    assert [line.split("\t")[1] for line in skipped] == [bomb, cut]


# ---------------------------------------------------------------- settings and diverged weights
@pytest.mark.parametrize("setting, message", [
    ("learning_rate=nan", "learning_rate = nan is not a finite number"),
    ("temperature=inf", "temperature = inf is not a finite number"),
    ("crop_size=0", "crop_size = 0 is out of range: it must be >= 1"),
    ("num_workers=-1", "num_workers = -1 is out of range"),
    ("dropout=1.0", "dropout = 1.0 is out of range"),
    ("lr_gamma=2", "lr_gamma = 2.0 is out of range: it must be between 0 and 1"),
    ("learning_rate=0", "learning_rate = 0.0 is out of range: it must be > 0"),
])
def test_impossible_settings_are_refused_naming_key_and_range(setting, message, tmp_path, capsys):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_config("toy", [setting])
    root = make_collections(str(tmp_path), 3, 2)
    assert train_main.main(["--data_path", root, "--train_collection", "toy_train", "--val_collection",
                            "toy_val", "--config_name", "toy", "--device", "cpu", "--set", setting]) == 1
    assert message in capsys.readouterr().err
    assert not os.path.exists(os.path.join(root, "toy_train", "models"))


def test_non_finite_weights_are_never_saved(tmp_path):
    path = str(tmp_path / "model.pth")
    model = SimpleCNN(3, width=4)
    save_released_weights(model, path, {"class_num": 3})
    before = open(path, "rb").read()
    with torch.no_grad():
        model.classification_head[1].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite values .*classification_head.1.weight"):
        save_released_weights(model, path, {"class_num": 3})
    assert open(path, "rb").read() == before


# ---------------------------------------------------------------- failed writes
def test_a_failed_write_names_the_file_and_reason_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old content\n")

    class FullDisk:
        def write(self, _text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(OutputWriteError) as caught:
        with atomic_file(str(target)) as handle:
            handle.write("new, partial")
            FullDisk().write("more")
    assert str(caught.value).startswith(f"could not write {target}: No space left on device")
    assert target.read_text() == "old content\n"
    assert os.listdir(tmp_path) == ["table.csv"]                       # no temporary file left


def test_a_failed_checkpoint_save_is_one_clear_error(tmp_path, monkeypatch):
    path = str(tmp_path / "model.pth")
    atomic_save({"w": torch.zeros(1)}, path)

    def full_disk(obj, target):
        with open(target, "wb") as handle:
            handle.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed "
                           "writing file data/0: file write failed")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OutputWriteError, match=f"could not write {path}: .*file write failed"):
        atomic_save({"w": torch.ones(1)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(1))
    assert os.listdir(tmp_path) == ["model.pth"]


def test_predict_keeps_an_earlier_csv_when_it_fails(model_path, tmp_path, capsys):
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("earlier results\n")
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    assert predict.main(["--model_path", model_path, "--device", "cpu", "--csv", str(csv_path), str(empty),
                         "--set", "class_num=3"]) == 1
    assert "no image files found" in capsys.readouterr().err
    assert csv_path.read_text() == "earlier results\n"               # not cut to its header


@pytest.mark.parametrize("script", ["robustness", "gradcam", "tsne"])
def test_analysis_entry_points_skip_a_bomb(script, model_path, tmp_path, capsys):
    import warnings
    root = make_collections(str(tmp_path / "c"), 3, 2)
    items = read_annotations(os.path.join(root, "toy_train", "annotations", "toy_train.txt"))
    bomb = png_header(tmp_path / "bomb.png", 50000, 50000)
    listing = str(tmp_path / "toy_test.txt")
    write_annotations(listing, items + [(bomb, 1)])
    common = ["--model_path", model_path, "--config_name", "toy", "--device", "cpu",
              "--out_dir", str(tmp_path / "out"), "--set", "num_workers=0", "class_num=3"]
    if script == "robustness":
        entry, argv = load_script("eval", "robustness"), ["--test_data_path", listing, "--perturbations", "jpeg",
                                                          "--levels", "jpeg=90"]
    elif script == "gradcam":
        entry, argv = load_script("visualize", "gradcam"), ["--draw_data_path", listing, "--num", "0"]
    else:
        entry, argv = load_script("visualize", "tsne"), ["--draw_data_path", listing]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = entry.main(argv + common)
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "Traceback" not in captured.err
    printed = captured.out + captured.err
    expected = {"robustness": f"1 unreadable image(s) left out of every level: {bomb} (DecompressionBombError",
                "gradcam": "1 unreadable skipped", "tsne": "(of 7 listed; 1 unreadable skipped)"}[script]
    assert expected in printed, printed
