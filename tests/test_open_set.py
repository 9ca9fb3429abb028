"""Open set: unknown scores on hand-made cases, the .npz round trip, calibration, stale weights,
AUROC / FPR95 / OSCR against hand-computed cases, and the cross-test and predict front ends."""
import csv
import json
import re
import math
import os

import numpy as np
import pytest
import torch

from analysis.open_set_report import auroc, fpr_at_tpr, oscr
from conftest import load_script, make_class_images, random_model
from data.annotations import write_annotations
from analysis import open_set
from engine.inference import load_eval_setup, run_items
from models import SimpleCNN

TINY = ["num_workers=0", "class_num=3", "crop_size=32", "resize_size=32", "val_batch_size=8", "amp=off"]
cross_test = load_script("eval", "cross_test")
predict = load_script("eval", "predict")
fit_script = load_script("eval", "fit_open_set")


def test_msp_and_energy_on_hand_made_logits():
    logits = np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    scores = open_set.logit_scores(logits)
    assert scores["msp"] == pytest.approx([1 - 1 / (1 + 2 * math.exp(-10)), 2 / 3,
                                           1 - math.exp(2) / (math.exp(2) + math.exp(1) + 1)])
    assert scores["energy"] == pytest.approx([-(10 + math.log(1 + 2 * math.exp(-10))), -math.log(3),
                                              -math.log(math.exp(2) + math.exp(1) + 1)])
    assert scores["msp"][0] < 1e-3 < scores["msp"][2] < scores["msp"][1]    # confident -> low
    assert scores["energy"][0] < scores["energy"][2] < scores["energy"][1]


def clusters(rng, n=40, dim=6):
    """Two classes around means (+3, 0, ...) and (-3, 0, ...), unit noise: features [2n, dim], labels."""
    means = np.zeros((2, dim))
    means[0, 0], means[1, 0] = 3.0, -3.0
    labels = np.repeat([0, 1], n)
    return means[labels] + rng.normal(size=(2 * n, dim)), labels


def test_feature_scores_far_from_every_class_mean_score_high():
    rng = np.random.default_rng(0)
    features, labels = clusters(rng)
    stats = open_set.fit_feature_statistics(features, labels, 2)
    assert stats["means"][:, 0] == pytest.approx([3, -3], abs=0.5)
    inside = np.array([[3.0, 0, 0, 0, 0, 0], [-3.0, 0, 0, 0, 0, 0]])
    far = np.array([[0.0, 12, 0, 0, 0, 0], [3.0, 0, 0, 0, 0, -15]])
    scores = open_set.feature_scores(np.r_[inside, far], stats)
    training = open_set.feature_scores(features, stats)
    for name in ("mahalanobis", "cosine"):
        assert scores[name][2:].min() > training[name].max() > scores[name][:2].max(), name
    # mahalanobis is the smallest (f - mu_k)^T P (f - mu_k) with P the inverse shared covariance
    from sklearn.covariance import ledoit_wolf
    covariance, _ = ledoit_wolf(features - stats["means"][labels], assume_centered=True)
    precision = np.linalg.inv(covariance)
    direct = [min((f - m) @ precision @ (f - m) for m in stats["means"]) for f in far]
    assert scores["mahalanobis"][2:] == pytest.approx(direct, rel=1e-6)
    # relative: minus the distance to one Gaussian of all training features (Ren et al. 2021)
    background, _ = ledoit_wolf(features - features.mean(0), assume_centered=True)
    centred = far - features.mean(0)
    relative = np.array(direct) - np.einsum("nd,de,ne->n", centred, np.linalg.inv(background), centred)
    assert scores["relative_mahalanobis"][2:] == pytest.approx(relative, rel=1e-5, abs=1e-4)
    # cosine: 1 - cos to the nearest prototype; a point along a prototype scores ~0
    assert scores["cosine"][:2] == pytest.approx([0, 0], abs=0.05)
    assert scores["cosine"][2] == pytest.approx(1.0, abs=0.1)        # orthogonal to both prototypes


def test_missing_class_and_large_dimension():
    rng = np.random.default_rng(1)
    features, labels = clusters(rng, n=5)
    with pytest.raises(ValueError, match=r"classes \[2\] have no readable training image"):
        open_set.fit_feature_statistics(features, labels, 3)
    wide = rng.normal(size=(10, open_set.MAX_DENSE_DIM + 1))
    head = (rng.normal(size=(2, wide.shape[1])), np.zeros(2))
    stats = open_set.fit_feature_statistics(wide, np.repeat([0, 1], 5), 2, head=head, logits=rng.normal(size=(10, 2)))
    assert stats["precision"] is None and stats["background_precision"] is None
    assert stats["knn_bank"] is None and stats["vim_basis"] is None      # no N x D bank, no D x D eigenproblem
    assert set(open_set.feature_scores(wide, stats)) == {"cosine"}


@pytest.mark.parametrize("method", ["dnadet", "attnet", "dct"])
def test_one_forward_pass_gives_logits_and_pooled_features_of_every_method(method):
    from engine.evaluate import forward_pass
    from models import build_model
    torch.manual_seed(0)
    model = build_model(method, 3, width=8).eval()
    x = torch.randn(5, 3, 32, 32)
    batches = [(x[:3], torch.tensor([0, 1, 2]), torch.arange(3), torch.ones(3, dtype=torch.bool)),
               (x[3:], torch.tensor([2, 0]), torch.tensor([3, 4]), torch.tensor([True, False]))]
    with_features = forward_pass(model, batches, torch.device("cpu"), 32, features=True)
    plain = forward_pass(model, batches, torch.device("cpu"), 32)
    with torch.no_grad():
        expected = model(x[:4])[0]
    assert np.array_equal(with_features["logits"], plain["logits"])        # the classifier's own logits
    np.testing.assert_allclose(with_features["logits"], expected.numpy(), rtol=1e-6, atol=1e-6)
    assert with_features["features"].shape == (4, model.feature_dim)   # 64 (dnadet, attnet); 4 * 32 * 32 (dct)
    assert "features" not in plain and plain["skipped"] == [4]
    assert np.array_equal(plain["preds"], plain["probs"].argmax(axis=1)) and list(plain["labels"]) == [0, 1, 2, 2]
    empty = forward_pass(model, batches[1:2] * 0, torch.device("cpu"), 32, features=True)
    assert empty["logits"].shape == (0, 0) and empty["features"].shape == (0, 0) and empty["preds"].size == 0


@pytest.mark.parametrize("n", [1, 7, 20, 100, 101])
def test_threshold_keeps_95_percent_and_no_more_than_needed(n):
    values = np.random.default_rng(n).permutation(n).astype(float)
    threshold = open_set.calibrate_threshold(values)
    kept = np.mean(values <= threshold)
    assert kept >= 0.95
    assert n == 1 or np.mean(values < threshold) < 0.95      # the next smaller value keeps too few
    assert open_set.calibrate_threshold(np.arange(100.0)) == 94.0   # the 95th smallest of 100


def test_statistics_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(2)
    features, labels = clusters(rng)
    fitted = open_set.fit_feature_statistics(features, labels, 2)
    stats = open_set.OpenSetStatistics(fitted["means"], fitted["prototypes"], fitted["precision"],
                                       {"msp": 0.25, "energy": -3.5, "mahalanobis": 14.0,
                                        "relative_mahalanobis": -2.0, "cosine": 0.1},
                                       {"format": open_set.FORMAT, "version": open_set.VERSION, "note": "ü"},
                                       fitted["background_mean"], fitted["background_precision"])
    path = str(tmp_path / "model.openset.npz")
    stats.save(path)
    with np.load(path, allow_pickle=False) as blob:          # plain arrays only
        assert sorted(blob.files) == ["background_mean", "background_precision", "means", "meta", "precision",
                                      "prototypes", "score_names", "thresholds"]
        assert all(blob[key].dtype != object for key in blob.files)
    back = open_set.read_statistics(path)
    assert back.thresholds == stats.thresholds and back.meta == stats.meta
    assert back.score_names == ["msp", "energy", "mahalanobis", "relative_mahalanobis", "cosine"]
    assert back.default_score == "relative_mahalanobis"
    logits = rng.normal(size=(5, 2))
    for name, values in stats.scores(logits, features[:5]).items():
        assert back.scores(logits, features[:5])[name] == pytest.approx(values, rel=1e-5), name
    no_precision = open_set.OpenSetStatistics(stats.means, stats.prototypes, None, {"msp": 0.2, "cosine": 0.1},
                                              stats.meta)
    no_precision.save(path)
    back = open_set.read_statistics(path)
    assert back.precision is None and back.score_names == ["msp", "cosine"]
    assert back.default_score == "msp"                     # nothing preferred held: first available
    with pytest.raises(ValueError, match=r"scores \['mahalanobis'\] are not in these statistics"):
        back.require(["mahalanobis"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read open-set statistics"):
        open_set.read_statistics(str(tmp_path / "bad.npz"))


def test_auroc_fpr95_oscr_on_hand_computed_cases():
    known = np.array([0.1, 0.2, 0.3, 0.4])
    correct = np.array([True, True, False, True])
    unknown = np.array([0.35, 0.5, 0.6])
    # 11 of the 12 (unknown, known) pairs are ordered right: 0.35 < 0.4
    assert auroc(known, unknown) == pytest.approx(11 / 12)
    # 95 % of 4 known images -> all 4 kept, t = 0.4; 0.35 is kept too: 1 of 3 unknown
    assert fpr_at_tpr(known, unknown) == pytest.approx(1 / 3)
    # curve (FPR, CCR): (0,0) (0,.25) (0,.5) (0,.5) (1/3,.5) (1/3,.75) (2/3,.75) (1,.75)
    assert oscr(known, correct, unknown) == pytest.approx((0.5 + 0.75 + 0.75) / 3)
    # perfect detector: AUROC 1, FPR95 0, OSCR = closed-set accuracy
    assert (auroc(known, unknown + 1), fpr_at_tpr(known, unknown + 1)) == (1.0, 0.0)
    assert oscr(known, correct, unknown + 1) == pytest.approx(0.75)
    # every known image correct: OSCR is the ROC area, ties included (counted 1/2)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, 30).astype(float), rng.integers(2, 7, 20).astype(float)
    assert oscr(a, np.ones(30, bool), b) == pytest.approx(auroc(a, b))
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    """A random 3-class model (width 8), train/val/closed lists of classes 0-2 and an unseen list."""
    root = tmp_path_factory.mktemp("open")
    items = {label: [(p, label) for p in make_class_images(str(root / "img" / str(label)), label, 6)]
             for label in range(4)}
    known = items[0] + items[1] + items[2]
    paths = {name: str(root / "lists" / f"{name}.txt") for name in ("toy_train", "toy_val", "toy_test",
                                                                    "toy_test_unseen_arch")}
    write_annotations(paths["toy_train"], known)
    write_annotations(paths["toy_val"], known[::2])
    write_annotations(paths["toy_test"], known[1::2])
    write_annotations(paths["toy_test_unseen_arch"], [(p, -1) for p, _ in items[3]])
    return {"root": root, **paths}


def fitted_model(folder, lists) -> str:
    model = random_model(str(folder / "model.pth"), 3)
    assert fit_script.main(["--model_path", model, "--config_name", "toy", "--train_data_path",
                            lists["toy_train"], "--val_data_path", lists["toy_val"], "--device", "cpu",
                            "--set", *TINY]) == 0
    return model


def test_fit_command_calibrates_and_refuses_stale_weights(lists, tmp_path, capsys):
    model = fitted_model(tmp_path, lists)
    out = capsys.readouterr().out
    assert "fitted on 18 training images (64-d pooled features" in out and "model.openset.npz" in out
    setup = load_eval_setup(model, "toy", TINY, "cpu")
    stats = open_set.load_statistics(setup)
    assert stats.meta["n_train"] == 18 and stats.meta["n_val"] == 9
    assert stats.meta["train_list"] == lists["toy_train"]
    val = run_items(setup, read(lists["toy_val"]), "val", progress=False, features=True)
    for name, values in stats.scores(val["logits"], val["features"]).items():
        assert np.mean(values <= stats.thresholds[name]) >= 0.95, name
        assert stats.meta["val_kept"][name] == pytest.approx(np.mean(values <= stats.thresholds[name]))
    assert val["features"].shape == (9, 64)
    # other weights in the same file: refused, never refitted silently
    other = SimpleCNN(3, width=8)
    torch.save(other.state_dict(), model)
    with pytest.raises(ValueError, match=r"are stale: fitted on weights with SHA-1 .* refit them with: "
                                         r"python eval/fit_open_set.py --model_path"):
        open_set.load_statistics(load_eval_setup(model, "toy", TINY, "cpu"))
    os.remove(open_set.statistics_path(model))
    with pytest.raises(ValueError, match="no open-set statistics .* make them once with: python eval/fit_open_set.py"):
        open_set.load_statistics(setup)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return [(line.split("\t")[0], int(line.split("\t")[1])) for line in handle if line.strip()]


def test_cross_test_open_set_rows(lists, tmp_path, capsys):
    model = fitted_model(tmp_path, lists)
    out = str(tmp_path / "out")
    args = ["--model_path", model, "--config_name", "toy", "--out_dir", out, "--device", "cpu", "--set", *TINY]
    code = cross_test.main(args + ["--test_data_paths", lists["toy_test"], lists["toy_test_unseen_arch"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert re.search(r"\| unseen-arch +\| mahalanobis +\|", captured.out)
    assert re.search(r"\| unseen-arch +\| relative_mahalanobis \|", captured.out)
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        closed, unseen = json.load(handle)["results"]
    assert unseen["open_list"] and unseen["acc"] is None and sum(unseen["pred_counts"]) == 6
    assert set(unseen["open_set"]) == set(open_set.SCORES)
    # the numbers agree with the per-image scores written next to the lists
    scores = {name: read_open_csv(name) for name in (lists["toy_test"], lists["toy_test_unseen_arch"])}
    (known, correct), (values, _) = scores[lists["toy_test"]], scores[lists["toy_test_unseen_arch"]]
    stats = open_set.read_statistics(open_set.statistics_path(model))
    for name, row in unseen["open_set"].items():
        assert row["auroc"] == pytest.approx(auroc(known[name], values[name]))
        assert row["oscr"] == pytest.approx(oscr(known[name], correct, values[name]))
        assert row["flagged"] == pytest.approx(np.mean(values[name] > stats.thresholds[name]))
        assert closed["open_set"][name]["flagged"] == pytest.approx(np.mean(known[name] > stats.thresholds[name]))
    assert sorted(os.listdir(out)) == ["confusion_closed.png", "results.csv", "results.json", "results.md"]
    with open(os.path.join(out, "results.csv"), encoding="utf-8") as handle:
        assert "open_list,msp_flagged,msp_acc_kept" in handle.readline()
    # --reuse reads the stored unknown scores back
    assert cross_test.main(args + ["--reuse", "--test_data_paths", lists["toy_test"],
                                   lists["toy_test_unseen_arch"]]) == 0
    assert "(2 of 2 reused)" in capsys.readouterr().out


def read_open_csv(list_path):
    with open(os.path.join(os.path.splitext(list_path)[0], "pred", "open_set.csv"), encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    names = rows[0][3:]
    values = {name: np.array([float(row[3 + k]) for row in rows[1:]]) for k, name in enumerate(names)}
    return values, np.array([row[1] == row[2] for row in rows[1:]])


def test_open_list_needs_closed_list_and_statistics(lists, tmp_path, capsys):
    model = random_model(str(tmp_path / "bare" / "model.pth"), 3)
    args = ["--model_path", model, "--config_name", "toy", "--out_dir", str(tmp_path / "out"), "--set", *TINY]
    assert cross_test.main(args + ["--test_data_paths", lists["toy_test_unseen_arch"]]) == 1
    assert "need the closed test list (*_test.txt) in the same call" in capsys.readouterr().err
    both = ["--test_data_paths", lists["toy_test"], lists["toy_test_unseen_arch"]]
    assert cross_test.main(args + both) == 1
    err = capsys.readouterr().err
    assert "no open-set statistics" in err and "python eval/fit_open_set.py --model_path" in err
    assert cross_test.main(args + both + ["--open_set", "off"]) == 1
    assert "drop --open_set off" in capsys.readouterr().err
    # msp and energy need no statistics: AUROC etc. without a calibrated threshold
    assert cross_test.main(args + both + ["--open_set_scores", "msp", "energy"]) == 0
    detail, *lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| unseen-arch")]
    assert detail.split("|")[2:5] == [" 6      ", " 0       ", " -     "]     # images, skipped, acc
    assert [line.split("|")[2].strip() for line in lines] == ["msp", "energy"]
    assert lines[0].split("|")[4].strip() == "-"                     # no flagged share
    mixed = str(tmp_path / "mixed_test.txt")
    write_annotations(mixed, read(lists["toy_test"])[:2] + [(read(lists["toy_test"])[2][0], -1)])
    assert cross_test.main(args + ["--test_data_paths", mixed]) == 1
    assert "mixes label -1" in capsys.readouterr().err


def test_predict_says_unknown_architecture(lists, tmp_path, capsys):
    model = fitted_model(tmp_path, lists)
    image = read(lists["toy_test_unseen_arch"])[0][0]
    base = [image, "--model_path", model, "--config_name", "toy", "--set", *TINY]
    path = open_set.statistics_path(model)
    stats = open_set.read_statistics(path)
    for cut, unknown in ((-1e9, True), (1e9, False)):      # every image above / below the threshold
        stats.thresholds["relative_mahalanobis"] = cut      # what --open_set_score auto picks
        stats.save(path)
        capsys.readouterr()
        csv_path, json_path = str(tmp_path / "p.csv"), str(tmp_path / "p.json")
        assert predict.main(base + ["--csv", csv_path, "--json", json_path]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith(f"{image}: unknown architecture (top guess: ") == unknown, line
        with open(json_path, encoding="utf-8") as handle:
            payload = json.load(handle)
        record = payload["predictions"][0]
        assert payload["open_set"]["score"] == "relative_mahalanobis" and record["unknown"] is unknown
        with open(csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0][4:6] == ["unknown_score", "unknown"] and rows[1][5] == str(int(unknown))
        assert float(rows[1][4]) == pytest.approx(record["unknown_score"], rel=1e-5)
    assert predict.main(base + ["--open_set", "off"]) == 0
    assert "unknown architecture" not in capsys.readouterr().out
    other = "energy"
    assert predict.main(base + ["--open_set_score", other]) == 0
    assert f"when {other} >" in capsys.readouterr().err
    os.remove(path)
    assert predict.main(base) == 0                                    # auto: closed set, with a note
    assert "no open-set statistics" in capsys.readouterr().err
    assert predict.main(base + ["--open_set", "on"]) == 1
    assert "python eval/fit_open_set.py" in capsys.readouterr().err


def test_knn_distance_is_the_kth_nearest_normalised_neighbour():
    rng = np.random.default_rng(5)
    bank = rng.normal(size=(60, 4))
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    queries = rng.normal(size=(7, 4)) * 3.0                         # scale must not matter
    got = open_set.knn_distance(queries, bank, k=5, chunk=3)
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    brute = np.sort(np.linalg.norm(unit[:, None, :] - bank[None, :, :], axis=2), axis=1)[:, 4]
    assert got == pytest.approx(brute, abs=1e-5)
    assert open_set.knn_distance(queries, bank[:3], k=5) == pytest.approx(
        np.sort(np.linalg.norm(unit[:, None] - bank[None, :3], axis=2), axis=1)[:, 2], abs=1e-5)   # k capped


def test_vim_scores_features_off_the_training_subspace_high():
    """Training features live in a 2-D subspace of 6-D space: a feature with a component
    outside it has a large residual, so a higher ViM score than training features."""
    rng = np.random.default_rng(6)
    features, labels = clusters(rng, dim=6)
    features[:, 2:] *= 0.01                                           # the principal subspace: dims 0-1
    weight = np.zeros((2, 6))
    weight[0, 0], weight[1, 0] = 1.0, -1.0
    bias = np.zeros(2)
    logits = features @ weight.T + bias
    stats = open_set.fit_feature_statistics(features, labels, 2, head=(weight, bias), logits=logits)
    assert stats["vim_basis"].shape == (6, 3) and stats["vim_alpha"] > 0
    assert np.abs(stats["vim_basis"][:2]).max() < 0.05              # residual space avoids dims 0-1
    off = np.array([[3.0, 0, 0, 0, 0, 4.0], [-3.0, 0, 0, 4.0, 0, 0]])
    inside = np.array([[3.0, 0, 0, 0, 0, 0], [-3.0, 0, 0, 0, 0, 0]])
    values = open_set.all_scores(np.r_[inside, off] @ weight.T, np.r_[inside, off], stats)
    training = open_set.all_scores(logits, features, stats)
    assert set(values) >= {"knn", "vim"}
    assert values["vim"][2:].min() > training["vim"].max() >= values["vim"][:2].max() - 1e-6
    assert values["knn"][2:].min() > values["knn"][:2].max()


def test_knn_and_vim_survive_a_save(tmp_path):
    rng = np.random.default_rng(7)
    features, labels = clusters(rng)
    weight, bias = rng.normal(size=(2, 6)), rng.normal(size=2)
    fitted = open_set.fit_feature_statistics(features, labels, 2, head=(weight, bias), logits=features @ weight.T + bias)
    stats = open_set.OpenSetStatistics(fitted["means"], fitted["prototypes"], fitted["precision"],
                                       {"msp": 0.2, "knn": 0.5, "vim": 1.0},
                                       {"format": open_set.FORMAT, "version": open_set.VERSION},
                                       knn_bank=fitted["knn_bank"], vim_origin=fitted["vim_origin"],
                                       vim_basis=fitted["vim_basis"], vim_alpha=fitted["vim_alpha"])
    path = str(tmp_path / "m.openset.npz")
    stats.save(path)
    back = open_set.read_statistics(path)
    assert back.score_names == ["msp", "knn", "vim"] and back.vim_alpha == pytest.approx(stats.vim_alpha)
    logits = features[:4] @ weight.T + bias
    for name, values in stats.scores(logits, features[:4]).items():
        assert back.scores(logits, features[:4])[name] == pytest.approx(values, rel=1e-4, abs=1e-5), name
