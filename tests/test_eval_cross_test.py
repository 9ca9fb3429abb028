"""eval/cross_test.py: exact preprocessing, prediction files, the table, metrics, reuse,
several methods, released-format weights and 11-class in-the-wild lists."""
import csv
import json
import os
import shutil

import numpy as np
from sklearn.metrics import f1_score
import pytest
import torch
from PIL import Image

import main as train_main
from conftest import TINY_OVERRIDES, make_class_images, make_collections, load_script, random_model
from engine.checkpoint import checkpoint_backbone, load_model
from data.annotations import read_annotations, write_annotations
from analysis.cross_test import pred_dir, row_names, row_name
from engine.inference import build_loader, load_eval_setup, score
from analysis.reports import detail_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["num_workers=0", "class_num=3", "crop_size=32", "resize_size=32", "val_batch_size=4"]


cross_test = load_script("eval", "cross_test")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch tiny run of main.py (3 classes) and test lists with an unreadable entry."""
    root = str(tmp_path_factory.mktemp("cross"))
    make_collections(root, class_num=3, per_class=6)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    code = train_main.main(["--data_path", root, "--train_collection", "toy_train", "--val_collection",
                            "toy_val", "--config_name", "toy", "--device", "cpu", "--set", *TINY_OVERRIDES,
                            "class_num=3", "max_epochs=1"])
    torch.set_num_threads(threads)
    assert code == 0
    items = read_annotations(os.path.join(root, "toy_val", "annotations", "toy_val.txt"))
    empty = os.path.join(root, "empty.png")
    open(empty, "wb").close()
    closed = os.path.join(root, "toy_test", "annotations", "toy_test.txt")
    seed = os.path.join(root, "toy_test", "annotations", "toy_test_cross_seed.txt")
    write_annotations(closed, items[:4] + [(empty, 1)] + items[4:])
    write_annotations(seed, [item for item in items if item[1] == 1])
    run = os.path.join(root, "toy_train", "models", "toy_val", "toy", "run_1")
    return {"root": root, "run": run, "closed": closed, "seed": seed, "items": items, "empty": empty}


def reference_input(path: str, crop: int, resize: int, second: int = 0) -> torch.Tensor:
    """SPEC section 4 computed directly with Pillow: [3, R, R] in [-1, 1]."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    if width != height:
        side = min(crop, width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    image = image.resize((resize, resize), Image.BICUBIC)
    if second:
        image = image.resize((second, second), Image.BICUBIC)
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float()
    return array / 127.5 - 1.0




def test_whole_image_preprocessing_equals_direct_pillow(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name, (width, height), mode in (("wide.png", (45, 30), "RGB"), ("square.png", (28, 28), "RGB"),
                                        ("tall.png", (26, 50), "P")):
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(array)
        (image.quantize(64) if mode == "P" else image).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    model = random_model(str(tmp_path / "m" / "model.pth"), 3)
    for second in (0, 40):
        setup = load_eval_setup(model, "toy", TINY[:2] + ["crop_size=24", "resize_size=36",
                                                          f"second_resize_size={second}"], "cpu")
        images = next(iter(build_loader(setup, [(p, 0) for p in paths])))[0]
        for image, path in zip(images, paths):
            assert torch.equal(image, reference_input(path, 24, 36, second)), (path, second)


def test_row_names_from_file_names():
    assert row_name("a/celeba_test.txt") == "closed"
    for kind in ("seed", "loss", "finetune", "dataset"):
        assert row_name(f"d/lsun_test/annotations/lsun_test_cross_{kind}.txt") == f"cross-{kind}"
    assert row_name("x/my_list.txt") == "my_list"
    assert row_names(["a/celeba_test.txt", "b/lsun_test.txt"]) == ["celeba_test", "lsun_test"]
    assert pred_dir("d/toy_test.txt") == os.path.join("d", "toy_test", "pred")
    assert pred_dir("d/toy_test.txt", "ce") == os.path.join("d", "toy_test", "pred", "ce")


def test_metrics_on_hand_made_confusion():
    outputs = {"labels": np.array([0, 0, 0, 1, 1, 2]), "preds": np.array([0, 0, 1, 1, 2, 2]),
               "skipped": [6]}
    metrics = score(outputs, 3)
    assert metrics["acc"] == pytest.approx(4 / 6)
    assert metrics["per_class_recall"] == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert metrics["recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # precision 1, 1/2, 1/2 -> F1 0.8, 0.5, 2/3
    assert metrics["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert metrics["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert (metrics["n_images"], metrics["n_skipped"]) == (6, 1)
    # a cross list holding class 1 only: macro averages over the true and predicted classes
    # (scikit-learn's definition): the stray predictions 3 and 0 make classes 0 and 3 count
    # with F1 0 and recall 0, so macro-F1 (2/3 / 3) stays below accuracy
    single = score({"labels": np.array([1, 1, 1, 1]), "preds": np.array([1, 1, 3, 0]), "skipped": []}, 5)
    assert (single["acc"], single["recall"], single["f1"]) == pytest.approx((0.5, 0.5 / 3, 2 / 9))
    assert single["f1"] == pytest.approx(f1_score([1, 1, 1, 1], [1, 1, 3, 0], average="macro", zero_division=0))
    assert single["per_class_recall"] == [None, 0.5, None, None, None]
    table = detail_table([{"test": "cross-seed", **single}], ["real", "a", "b", "c", "d"])
    assert "| cross-seed | 4      | 0       | 50.00 | 22.22    | 16.67        | -" in table
    perfect = score({"labels": np.array([2, 2]), "preds": np.array([2, 2]), "skipped": []}, 5)
    assert (perfect["acc"], perfect["recall"], perfect["f1"]) == (1.0, 1.0, 1.0)


def read_scores(folder):
    with open(os.path.join(folder, "scores.csv"), newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_cross_test_files_table_and_warning(trained, tmp_path, capsys):
    out = str(tmp_path / "out")
    code = cross_test.main(["--model_path", os.path.join(trained["run"], "model.pth"), "--config_name", "toy",
                            "--test_data_paths", trained["closed"], trained["seed"], "--out_dir", out,
                            "--device", "cpu", "--set", *TINY, "amp=off"])   # fp32: compared to 2e-6
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].split("|")[1].strip() == "test set" and "recall class_2" in lines[0]
    closed_row = [cell.strip() for cell in lines[2].split("|")[1:-1]]
    assert closed_row[:3] == ["closed", "9", "1"]
    assert [cell.strip() for cell in lines[3].split("|")[1:-1]][:3] == ["cross-seed", "3", "0"]
    assert f"warning: closed: skipped 1 unreadable image(s): {trained['empty']} (file is empty" in captured.err
    # prediction files next to the list, checked against a direct Pillow + model computation
    folder = pred_dir(trained["closed"])
    rows = read_scores(folder)
    assert rows[0] == ["path", "label", "pred", "prob_0", "prob_1", "prob_2"]
    items = trained["items"]
    assert [(r[0], int(r[1])) for r in rows[1:]] == items
    model = load_model(os.path.join(trained["run"], "model.pth"))
    with torch.no_grad():
        probs = torch.softmax(model(torch.stack([reference_input(p, 32, 32) for p, _ in items]))[0], 1)
    assert np.allclose([[float(p) for p in r[3:]] for r in rows[1:]], probs.numpy(), atol=2e-6)
    with open(os.path.join(folder, "result.txt"), encoding="utf-8") as handle:
        assert handle.read() == "".join(f"{p}\t{k}\n" for (p, _), k in zip(items, probs.argmax(1).tolist()))
    with open(os.path.join(folder, "skipped.txt"), encoding="utf-8") as handle:
        assert handle.read().startswith(f"{trained['empty']}\tfile is empty")
    # the saved table agrees with the files
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        results = json.load(handle)["results"]
    expected_acc = float((probs.argmax(1).numpy() == np.array([label for _, label in items])).mean())
    assert results[0]["acc"] == pytest.approx(expected_acc) and results[0]["n_skipped"] == 1
    assert sorted(os.listdir(out)) == ["confusion_closed.png", "confusion_cross-seed.png",
                                       "results.csv", "results.json", "results.md"]
    with open(os.path.join(out, "results.csv"), encoding="utf-8") as handle:
        assert handle.readline().startswith("test,method,list,n_images,n_skipped,acc,macro_f1,macro_recall,recall_0")


def test_reuse_reads_files_of_the_same_model_only(trained, tmp_path, capsys):
    copy = tmp_path / "weights"                         # a copy: its bytes change below
    copy.mkdir()
    for name in ("model.pth", "model.json", "model.openset.npz"):
        shutil.copy(os.path.join(trained["run"], name), copy / name)
    model = str(copy / "model.pth")
    args = ["--model_path", model, "--test_data_paths", trained["seed"], "--out_dir", str(tmp_path),
            "--config_name", "toy", "--set", *TINY]
    assert cross_test.main(args) == 0
    folder = pred_dir(trained["seed"])
    rows = read_scores(folder)
    rows[1][2] = str((int(rows[1][2]) + 1) % 3)        # tamper: reuse must read this back
    with open(os.path.join(folder, "scores.csv"), "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    capsys.readouterr()
    assert cross_test.main(args + ["--reuse"]) == 0
    assert "(1 of 1 reused)" in capsys.readouterr().out
    assert read_scores(folder)[1][2] == rows[1][2]
    assert cross_test.main(args) == 0                   # without --reuse: recomputed
    assert read_scores(folder)[1][2] != rows[1][2]
    os.utime(model, None)                              # touched, same bytes: the same weights
    capsys.readouterr()
    assert cross_test.main(args + ["--reuse"]) == 0
    assert "(1 of 1 reused)" in capsys.readouterr().out
    state = torch.load(model, weights_only=True)       # weights changed: never reuse
    state["classification_head.1.bias"] += 1.0
    torch.save(state, model)
    assert cross_test.main(args + ["--reuse", "--open_set", "off"]) == 0
    assert "(0 of 1 reused)" in capsys.readouterr().out


def test_reuse_never_scores_a_relabelled_list(trained, tmp_path, capsys):
    """Same model, same paths, other labels: the stored scores.csv holds stale labels."""
    model = os.path.join(trained["run"], "model.pth")
    with open(trained["seed"], encoding="utf-8") as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    listing = tmp_path / "relabel_cross_seed.txt"
    listing.write_text("".join(f"{path}\t1\n" for path, _ in lines), encoding="utf-8")
    args = ["--model_path", model, "--test_data_paths", str(listing), "--out_dir", str(tmp_path / "out"),
            "--config_name", "toy", "--set", *TINY]
    assert cross_test.main(args) == 0
    listing.write_text("".join(f"{path}\t2\n" for path, _ in lines), encoding="utf-8")
    capsys.readouterr()
    assert cross_test.main(args + ["--reuse"]) == 0
    assert "(0 of 1 reused)" in capsys.readouterr().out
    assert {row[1] for row in read_scores(pred_dir(str(listing)))[1:]} == {"2"}


def test_released_state_dict_equals_own_checkpoint(trained, tmp_path, capsys):
    checkpoint = torch.load(os.path.join(trained["run"], "checkpoint.pth"), weights_only=True)
    plain = {k: v.clone() for k, v in checkpoint_backbone(checkpoint).items()}
    expected = {f"main.{i}.main.0.{p}" for i in range(8) for p in ("weight", "bias")} | \
               {f"main.{i}.main.1.{p}" for i in range(8)
                for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")} | \
               {"classification_head.1.weight", "classification_head.1.bias"}
    assert set(plain) == expected
    released = str(tmp_path / "released" / "model.pth")
    os.makedirs(os.path.dirname(released))
    torch.save(plain, released)
    assert not os.path.exists(str(tmp_path / "released" / "model.json"))
    scores = {}
    for name, path in (("checkpoint", os.path.join(trained["run"], "checkpoint.pth")), ("released", released)):
        assert cross_test.main(["--model_path", path, "--config_name", "toy", "--test_data_paths",
                                trained["closed"], "--out_dir", str(tmp_path / name), "--set", *TINY]) == 0
        scores[name] = read_scores(pred_dir(trained["closed"]))
    assert scores["checkpoint"] == scores["released"]
    assert len(scores["released"]) == len(trained["items"]) + 1


def test_methods_side_by_side_and_class_num_mismatch(trained, tmp_path, capsys):
    other = random_model(str(tmp_path / "other" / "model.pth"), 3)
    code = cross_test.main(["--methods", f"dnadet={os.path.join(trained['run'], 'model.pth')}",
                            f"random={other}", "--config_name", "toy", "--test_data_paths", trained["closed"],
                            trained["seed"], "--out_dir", str(tmp_path / "out"), "--set", *TINY])
    out = capsys.readouterr().out
    assert code == 0
    header = [cell.strip() for cell in out.splitlines()[0].split("|")[1:-1]]
    assert header == ["test set", "dnadet acc", "dnadet F1", "random acc", "random F1"]
    assert "### dnadet" in out and "### random" in out
    for method in ("dnadet", "random"):
        assert os.path.isfile(os.path.join(pred_dir(trained["seed"], method), "result.txt"))
    assert os.path.isfile(str(tmp_path / "out" / "confusion_cross-seed_random.png"))
    code = cross_test.main(["--model_path", other, "--config_name", "toy", "--test_data_paths",
                            trained["seed"], "--set", "num_workers=0"])
    err = capsys.readouterr().err
    assert code == 1 and "error: config 'toy' has class_num=5 but the weights" in err


def test_in_the_wild_eleven_classes_names_from_config(tmp_path, capsys):
    model = random_model(str(tmp_path / "wild" / "model.pth"), 11)
    items = []
    for label in range(11):
        items += [(p, label) for p in make_class_images(str(tmp_path / "img" / str(label)), label, 1, size=40)]
    closed = str(tmp_path / "in_the_wild_test" / "annotations" / "in_the_wild_test.txt")
    cross = str(tmp_path / "in_the_wild_test" / "annotations" / "in_the_wild_test_cross_dataset.txt")
    write_annotations(closed, items)
    write_annotations(cross, items[::2])
    code = cross_test.main(["--model_path", model, "--config_name", "in_the_wild", "--test_data_paths", closed,
                            cross, "--set", "num_workers=0", "crop_size=32", "resize_size=24",
                            "second_resize_size=64"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert "recall StyleGAN2-1024" in out.splitlines()[0]
    assert [line.split("|")[1].strip() for line in out.splitlines()[2:4]] == ["closed", "cross-dataset"]
    assert len(read_scores(pred_dir(closed))[0]) == 3 + 11
    assert os.path.isfile(str(tmp_path / "wild" / "cross_test" / "results.md"))   # default --out_dir


def test_training_fits_open_set_statistics(trained):
    """main.py ends stage 2 by fitting model.openset.npz on its training and validation lists."""
    from data.content_hash import file_identity
    from analysis.open_set import read_statistics
    model = os.path.join(trained["run"], "model.pth")
    stats = read_statistics(os.path.join(trained["run"], "model.openset.npz"))
    assert stats.meta["model"]["sha1"] == file_identity(model)["sha1"]
    assert (stats.meta["n_train"], stats.meta["n_val"]) == (18, 9) and stats.means.shape == (3, 64)
    assert stats.meta["train_list"].endswith("toy_train.txt") and stats.meta["val_list"].endswith("toy_val.txt")
    assert stats.score_names == ["msp", "energy", "mahalanobis", "relative_mahalanobis", "cosine", "knn", "vim"]
    assert all(kept >= 0.95 for kept in stats.meta["val_kept"].values())
