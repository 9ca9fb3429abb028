"""eval/predict.py: folders with good and bad files, image modes, outputs, streaming."""
import csv
import json
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from engine.inference import load_eval_setup
from analysis.prediction import iter_image_paths, predict_paths
from models import SimpleCNN

from conftest import load_script, random_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["real", "gan_a", "gan_b", "gan_c", "gan_d"]   # differ from configs/toy.py: model.json wins


predict = load_script("eval", "predict")


@pytest.fixture
def model_path(tmp_path):
    """Random SimpleCNN (width 8, sharpened head) with a model.json naming classes and preprocessing."""
    return random_model(str(tmp_path / "run" / "model.pth"), 5, seed=0,
                        info={"method": "dnadet", "class_num": 5, "class_names": NAMES, "width": 8,
                              "config_name": "toy", "crop_size": 32, "resize_size": 32,
                              "second_resize_size": 0})


def write_folder(folder) -> tuple:
    """Good images in many modes (one in a subfolder) and three unreadable files."""
    rng = np.random.default_rng(1)
    os.makedirs(folder / "sub")
    rgb = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    good = {"rgb.png": Image.fromarray(rgb), "grey.png": Image.fromarray(rgb[..., 0], "L"),
            "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA"),
            "palette.png": Image.fromarray(rgb).quantize(32),
            "grey16.png": Image.fromarray(rng.integers(0, 65536, (32, 32), dtype=np.uint16)),  # I;16
            "wide.jpg": Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)),
            os.path.join("sub", "nested.png"): Image.fromarray(rgb[::-1].copy())}
    for name, image in good.items():
        image.save(folder / name)
    cv2.imwrite(str(folder / "rgb16.png"), rng.integers(0, 65536, (32, 32, 3), dtype=np.uint16))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image\n")
    data = (folder / "rgb.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[:len(data) // 2])
    (folder / "readme.txt").write_text("ignored: not an image extension\n")
    good_paths = sorted(str(folder / name) for name in list(good) + ["rgb16.png"])
    bad_paths = [str(folder / name) for name in ("empty.png", "notes.png", "truncated.png")]
    return good_paths, bad_paths


def test_folder_with_good_and_bad_files(model_path, tmp_path, capsys):
    good, bad = write_folder(tmp_path / "images")
    json_path, csv_path = str(tmp_path / "p.json"), str(tmp_path / "p.csv")
    code = predict.main([str(tmp_path / "images"), "--model_path", model_path, "--top_k", "2",
                         "--json", json_path, "--csv", csv_path, "--batch_size", "3", "--device", "cpu",
                         "--set", "num_workers=0"])
    captured = capsys.readouterr()
    assert code == 1
    out = captured.out.splitlines()
    assert sorted(line.split(": ", 1)[0] for line in out) == good
    for line in out:
        ranked = line.split(": ", 1)[1].replace("  [low confidence]", "").split(" | ")
        assert len(ranked) == 2 and all(entry.split()[0] in NAMES for entry in ranked)
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    for path, reason in zip(bad, ("file is empty", "cannot identify image file", "truncated")):
        line = next(e for e in errors if e.startswith(f"error: cannot read image {path}: "))
        assert reason in line
    assert "readme.txt" not in captured.out + captured.err
    with open(json_path, encoding="utf-8") as handle:
        records = json.load(handle)["predictions"]
    assert len(records) == len(good) + len(bad)
    for record in records:
        if record["error"]:
            assert record["path"] in bad and record["pred"] is None
            continue
        probs = record["probs"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert record["pred"] == max(probs, key=probs.get) == record["top"][0]["class"]
        assert record["top"][0]["prob"] >= record["top"][1]["prob"]
        assert record["low_confidence"] == (record["prob"] < 0.5)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "pred", "prob", "low_confidence", "unknown_score", "unknown", "top1", "prob1",
                       "top2", "prob2", "error", "note"]
    assert all(row[4:6] == ["", ""] for row in rows[1:])        # no model.openset.npz: closed set only
    assert all(record["unknown"] is None for record in records)
    assert "note: no open-set statistics" in captured.err
    assert len(rows) == 1 + len(records) and sum(1 for row in rows[1:] if row[-2]) == 3   # error column


def test_probabilities_match_direct_computation(model_path, tmp_path, capsys):
    good, _ = write_folder(tmp_path / "images")
    json_path = str(tmp_path / "p.json")
    files = [p for p in good if p.endswith(("rgb.png", "grey.png", "wide.jpg"))]
    assert predict.main(files + ["--model_path", model_path, "--json", json_path, "--threshold", "0",
                                 "--set", "num_workers=0", "amp=off"]) == 0    # fp32: compared to 1e-5
    assert "[low confidence]" not in capsys.readouterr().out
    with open(json_path, encoding="utf-8") as handle:
        records = json.load(handle)["predictions"]
    model = SimpleCNN(5, width=8).eval()
    model.load_state_dict(torch.load(model_path, weights_only=True))
    for record, path in zip(records, files):
        image = Image.open(path).convert("RGB")
        if image.size != (32, 32):                     # 48x32 -> centre 32x32 square
            image = image.crop((8, 0, 40, 32))
        x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 127.5 - 1.0
        with torch.no_grad():
            expected = torch.softmax(model(x[None])[0], 1)[0].numpy()
        assert record["path"] == path
        assert np.allclose([record["probs"][n] for n in NAMES], expected, atol=1e-5)


def test_streaming_chunks_keep_order_and_results(model_path, tmp_path):
    good, bad = write_folder(tmp_path / "images")
    setup = load_eval_setup(model_path, overrides=["num_workers=0"], device="cpu")
    paths = list(iter_image_paths([str(tmp_path / "images")]))
    assert sorted(paths) == sorted(good + bad)
    whole = list(predict_paths(setup, iter(paths), batch_size=64))
    streamed = list(predict_paths(setup, iter(paths), batch_size=2, chunk_batches=1))
    assert [r["path"] for r in streamed] == paths
    for a, b in zip(whole, streamed):
        assert a["error"] == b["error"] and a["pred"] == b["pred"]
        assert a["prob"] == pytest.approx(b["prob"], abs=1e-6) if a["prob"] is not None else True


def test_missing_file_and_threshold(model_path, tmp_path, capsys):
    good, _ = write_folder(tmp_path / "images")
    missing = str(tmp_path / "nope.png")
    code = predict.main([good[0], missing, "--model_path", model_path, "--threshold", "1.01",
                         "--set", "num_workers=0"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: cannot read image {missing}: file not found" in captured.err
    assert captured.out.rstrip().endswith("[low confidence]")


def test_scale_note_flags_images_the_model_would_see_rescaled():
    from data.preprocess import scale_note
    assert scale_note(128, 128, 128, 512) == ""                       # the training geometry
    assert scale_note(200, 200, 128, 512) == ""                       # within 2x of it
    shrunk = scale_note(1024, 1024, 128, 512)
    assert "resized by 0.5x where training images were resized by 4x" in shrunk and "1024x1024" in shrunk
    assert "resized by 16x" in scale_note(32, 32, 128, 512)           # a thumbnail, blown up
    photo = scale_note(4000, 3000, 128, 512)                          # the 128-px centre crop only
    assert "resized" not in photo and "only the centre 128x128 px (0% of the 4000x3000 image)" in photo


def test_predict_notes_a_large_image(model_path, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "native.png")
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(folder / "large.png")
    csv_path = str(tmp_path / "p.csv")
    assert predict.main(["--model_path", model_path, "--device", "cpu", "--csv", csv_path, str(folder)]) == 0
    lines = {line.split(":")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "[note: resized by 0.25x where training images were resized by 1x" in lines[str(folder / "large.png")]
    assert "[note:" not in lines[str(folder / "native.png")]
    rows = {row["path"]: row for row in csv.DictReader(open(csv_path, encoding="utf-8"))}
    assert rows[str(folder / "large.png")]["note"].startswith("resized by 0.25x")
    assert rows[str(folder / "native.png")]["note"] == ""
