"""Visualisation: t-SNE features and cache, Grad-CAM maps, both entry scripts (tiny CPU model)."""
import csv
import importlib.util
import os
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import make_collections
from engine.inference import load_eval_setup
from data.annotations import read_annotations, write_annotations
from analysis.features import cached_features, effective_perplexity
from analysis.gradcam import grad_cam, layer_names, normalise_maps
from models import SimpleCNN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = ["class_num=3", "crop_size=32", "resize_size=32", "num_workers=0", "val_batch_size=8"]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"visualize_{name}", os.path.join(ROOT, "visualize", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A randomly initialised width-8 model.pth and a 3-class list of 12 images (+1 broken)."""
    root = str(tmp_path_factory.mktemp("viz"))
    make_collections(root, class_num=3, per_class=4)
    items = read_annotations(os.path.join(root, "toy_train", "annotations", "toy_train.txt"))
    broken = os.path.join(root, "broken.png")
    with open(broken, "wb") as handle:
        handle.write(b"not a png")
    list_path = os.path.join(root, "draw.txt")
    write_annotations(list_path, items + [(broken, 1)])
    torch.manual_seed(0)
    model_path = os.path.join(root, "model.pth")
    torch.save(SimpleCNN(3, width=8).state_dict(), model_path)
    return {"root": root, "list": list_path, "model": model_path, "n_good": len(items)}


def png_std(path: str) -> float:
    return float(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32).std())


def test_perplexity_is_lowered_for_few_images():
    with pytest.warns(UserWarning, match="perplexity"):
        assert effective_perplexity(15, 10) == pytest.approx(3.0)
    assert effective_perplexity(15, 16) == 15
    with pytest.raises(ValueError, match="at least 3"):
        effective_perplexity(15, 2)


def test_feature_cache_reused_then_recomputed_when_list_changes(tiny, tmp_path):
    setup = load_eval_setup(tiny["model"], "toy", SETTINGS, "cpu")
    list_path = str(tmp_path / "list.txt")
    items = read_annotations(tiny["list"])
    write_annotations(list_path, items)
    stem = str(tmp_path / "cache" / "feat")
    run = lambda items_, force=False: cached_features(setup, list_path, items_, 100, stem, force=force)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = run(items)
        assert not first["from_cache"]
        assert first["features"].shape == (tiny["n_good"], 64) and len(first["skipped"]) == 1
        second = run(items)
        assert second["from_cache"]
        np.testing.assert_array_equal(first["features"], second["features"])
        np.testing.assert_array_equal(first["labels"], second["labels"])
        assert not run(items, force=True)["from_cache"]
        write_annotations(list_path, items[:-2])  # the list changes: recompute
        third = run(items[:-2])
        assert not third["from_cache"] and third["features"].shape[0] == tiny["n_good"] - 1


def test_tsne_script_writes_figure_and_embedding(tiny, tmp_path, capsys):
    tsne = load_script("tsne")
    out = str(tmp_path / "tsne")
    argv = ["--model_path", tiny["model"], "--config_name", "toy", "--draw_data_path", tiny["list"],
            "--out_dir", out, "--device", "cpu", "--legend", "real", "ganA", "ganB",
            "--compare", tiny["model"], "--compare_name", "same again", "--set", *SETTINGS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tsne.main(argv) == 0
        assert "features extracted, extracted" in capsys.readouterr().out
        assert tsne.main(argv[:-len(SETTINGS) - 5] + ["--set", *SETTINGS]) == 0  # no --compare
    printed = capsys.readouterr().out
    assert "features cached" in printed and "1 unreadable skipped" in printed
    assert png_std(os.path.join(out, "tsne.png")) > 0
    for name in ("tsne.csv", "tsne_compare.csv"):
        with open(os.path.join(out, name), newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == tiny["n_good"] and set(rows[0]) == {"path", "label", "x", "y"}
        assert all(np.isfinite(float(row["x"])) and np.isfinite(float(row["y"])) for row in rows)


def test_tsne_script_rejects_wrong_legend(tiny, tmp_path, capsys):
    argv = ["--model_path", tiny["model"], "--config_name", "toy", "--draw_data_path", tiny["list"],
            "--out_dir", str(tmp_path), "--device", "cpu", "--legend", "a", "b", "--set", *SETTINGS]
    assert load_script("tsne").main(argv) == 1
    assert "--legend has 2 names" in capsys.readouterr().err
    wrong_config = argv[:argv.index("--legend")]  # toy config: 5 classes, the model has 3
    assert load_script("tsne").main(wrong_config) == 1
    assert "--set class_num=3" in capsys.readouterr().err


def manual_cam(model: SimpleCNN, x: torch.Tensor, target: int) -> torch.Tensor:
    """Grad-CAM at main.3 (keep block of stage 1) computed by hand with autograd.grad."""
    activation = model.main[:4](x)
    logits = model.classification_head(model.main[4:](activation).mean(dim=(2, 3)))
    gradient = torch.autograd.grad(logits[:, target].sum(), activation)[0]
    cam = F.relu((gradient.mean(dim=(2, 3), keepdim=True) * activation).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return cam / cam.flatten(1).amax(1)[:, None, None]


def test_grad_cam_matches_hand_computation_and_leaves_no_hooks():
    torch.manual_seed(1)
    model = SimpleCNN(3, width=8).eval()
    x = torch.randn(2, 3, 32, 48)
    cams, logits, targets = grad_cam(model, x, "main.3.main.2", torch.tensor([2, 2]))
    assert cams.shape == (2, 32, 48) and logits.shape == (2, 3) and targets.tolist() == [2, 2]
    assert torch.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    assert torch.allclose(cams, manual_cam(model, x, 2), atol=1e-5)
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


def test_grad_cam_responds_to_target_and_defaults_to_prediction():
    torch.manual_seed(2)
    model = SimpleCNN(3, width=8).train()
    x = torch.randn(1, 3, 32, 32)
    maps = [grad_cam(model, x, "main.3.main.2", torch.tensor([k]))[0] for k in range(3)]
    assert model.training  # mode restored
    assert not torch.allclose(maps[0], maps[1], atol=1e-3)
    assert not torch.allclose(maps[1], maps[2], atol=1e-3)
    predicted, logits, targets = grad_cam(model, x, "main.3.main.2")
    assert targets.item() == logits.argmax(1).item()
    assert torch.allclose(predicted, maps[targets.item()])


def test_grad_cam_on_other_layers_and_bad_names():
    model = SimpleCNN(3, width=8).eval()
    x = torch.randn(1, 3, 32, 32)
    for name in ("main.3.main.1", "main.0", "main.7"):  # BN output later modified in place; first; last
        cams = grad_cam(model, x, name)[0]
        assert cams.shape == (1, 32, 32) and torch.isfinite(cams).all()
    with pytest.raises(ValueError) as error:
        grad_cam(model, x, "main.9.main.2")
    assert "main.3.main.2" in str(error.value) and "classification_head.1" in str(error.value)
    with pytest.raises(ValueError, match=r"\[N, C, h, w\]"):
        grad_cam(model, x, "classification_head.1")
    assert "main.3.main.2" in layer_names(model)
    assert all(not m._forward_hooks for m in model.modules())


def test_all_zero_map_stays_zero():
    maps = normalise_maps(torch.cat([torch.zeros(1, 4, 4), torch.full((1, 4, 4), 2.0)]))
    assert torch.equal(maps[0], torch.zeros(4, 4)) and torch.equal(maps[1], torch.ones(4, 4))


def test_gradcam_script_writes_images_and_contact_sheet(tiny, tmp_path, capsys):
    gradcam = load_script("gradcam")
    out = str(tmp_path / "cam")
    argv = ["--model_path", tiny["model"], "--config_name", "toy", "--draw_data_path", tiny["list"],
            "--out_dir", out, "--device", "cpu", "--num", "0", "--set", *SETTINGS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert gradcam.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"of {tiny['n_good']} images" in printed and "1 unreadable skipped" in printed
    files = sorted(os.listdir(out))
    assert len(files) == tiny["n_good"] * 3 + 1 and "contact_sheet.png" in files
    names = ["class_0", "class_1", "class_2"]
    listed = read_annotations(tiny["list"])
    for name in files[:-1]:
        match = re.fullmatch(r"(\d{5})_true-(class_\d)_pred-(class_\d)_(input|heatmap|overlay)\.png", name)
        assert match, name
        assert listed[int(match.group(1))][1] == names.index(match.group(2))
        assert np.asarray(Image.open(os.path.join(out, name))).shape == (32, 32, 3)
    assert all(png_std(os.path.join(out, name)) > 0 for name in files if "heatmap" not in name)
    assert any(png_std(os.path.join(out, name)) > 0 for name in files if "heatmap" in name)
    assert png_std(os.path.join(out, "contact_sheet.png")) > 0
    bad = argv[:-len(SETTINGS) - 1] + ["--layer_name", "nope", "--set", *SETTINGS]
    assert gradcam.main(bad) == 1
    assert "valid layer names" in capsys.readouterr().err
