"""Baselines (ce_only, attnet, dct) and the DNA-Det ablation configs: build, train, evaluate.

Also the DCT transform against scipy and a direct O(N^4) sum, and the spectrum
standardisation's statistics and state_dict round trip.
"""
import itertools
import math
import os

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES, make_collections

import main
from configs import load_config
from data.annotations import read_annotations
from data.datasets import WholeImageDataset
from engine.evaluate import eval_loader, evaluate
from models import build_model
from engine.checkpoint import load_model
from models.baselines import AttNet, DCTNet, build_baseline
from models.dct import LogDCT, SpectrumStandardise, dct2, dct_matrix


def direct_dct2(block: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D DCT-II by its definition, one coefficient at a time (O(N^4))."""
    rows, cols = block.shape
    out = np.zeros_like(block, dtype=np.float64)
    for u, v in itertools.product(range(rows), range(cols)):
        total = sum(block[i, j] * math.cos(math.pi * (2 * i + 1) * u / (2 * rows))
                    * math.cos(math.pi * (2 * j + 1) * v / (2 * cols))
                    for i, j in itertools.product(range(rows), range(cols)))
        a_u = math.sqrt((1 if u == 0 else 2) / rows)
        a_v = math.sqrt((1 if v == 0 else 2) / cols)
        out[u, v] = a_u * a_v * total
    return out


def test_dct_matches_direct_sum_and_scipy():
    rng = np.random.default_rng(0)
    block = rng.normal(size=(8, 8))
    ours = dct2(torch.from_numpy(block)).numpy()
    np.testing.assert_allclose(ours, direct_dct2(block), atol=1e-10)
    scipy_fft = pytest.importorskip("scipy.fft")
    image = rng.normal(size=(2, 3, 12, 20))
    np.testing.assert_allclose(dct2(torch.from_numpy(image)).numpy(),
                               scipy_fft.dctn(image, axes=(-2, -1), norm="ortho"), atol=1e-10)


def test_dct_matrix_is_orthonormal_and_constant_image_is_dc_only():
    basis = dct_matrix(16)
    torch.testing.assert_close(basis @ basis.T, torch.eye(16, dtype=basis.dtype))
    grey = torch.zeros(1, 3, 8, 8)                       # 0 in [-1, 1] = 127.5 on 0..255
    spectrum = LogDCT()(grey)
    assert spectrum[0, 0, 0, 0].item() == pytest.approx(math.log(127.5 * 8), rel=1e-5)
    assert spectrum[0, 0].flatten()[1:].max().item() < math.log(1e-2)


def test_standardise_running_statistics_and_round_trip():
    layer = SpectrumStandardise()
    x = torch.randn(6, 3, 4, 5)
    layer.eval()
    assert torch.equal(layer(x), x)                      # untrained: identity
    layer.train()
    first, second = x[:2] * 3 + 1, x[2:] * 3 + 1
    layer(first)
    layer(second)                                        # cumulative over both batches
    all_seen = torch.cat([first, second])
    torch.testing.assert_close(layer.mean, all_seen.mean(0))
    layer.eval()
    out = layer(all_seen)
    torch.testing.assert_close(out.mean(0), torch.zeros(3, 4, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.ones(3, 4, 5), atol=1e-3, rtol=0)
    fresh = SpectrumStandardise().eval()
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh(all_seen), out)
    with pytest.raises(ValueError, match="trained on spectra of shape"):
        fresh(torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize("method", ["dnadet", "ce_only", "attnet", "dct"])
def test_every_method_builds_with_finite_gradients(method):
    torch.manual_seed(0)
    model = build_model(method, 4, width=16)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    logits, feature_map = model(x)
    assert logits.shape == (3, 4) and feature_map.dim() == 4 and feature_map.shape[0] == 3
    pooled, _ = model.forward_features(x)
    assert pooled.shape[0] == 3 and pooled.dim() == 2
    logits.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_attnet_and_dctnet_shapes():
    attnet = AttNet(5, width=8)
    assert attnet(torch.zeros(2, 3, 64, 64))[1].shape == (2, 64, 4, 4)
    dctnet = DCTNet(5, width=64, grid=32)
    logits, feature_map = dctnet(torch.zeros(2, 3, 128, 128))
    assert feature_map.shape == (2, 32, 32, 32) and dctnet.feature_dim == 32 * 32 * 32
    with pytest.raises(ValueError, match="unknown baseline"):
        build_baseline("nope", 5)


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """One tiny main.py run per method config on 3 synthetic classes."""
    root = make_collections(str(tmp_path_factory.mktemp("baselines")))
    runs = {}
    for config_name in ("toy_ce_only", "toy_attnet", "toy_dct", "toy_no_contrastive"):
        argv = ["--data_path", root, "--train_collection", "toy_train", "--val_collection",
                "toy_val", "--config_name", config_name, "--device", "cpu",
                "--set", *TINY_OVERRIDES, "class_num=3", "width=8"]
        assert main.main(argv) == 0, config_name
        runs[config_name] = os.path.join(root, "toy_train", "models", "toy_val", config_name, "run_1")
    return root, runs


@pytest.mark.parametrize("config_name,method", [("toy_ce_only", "ce_only"), ("toy_attnet", "attnet"),
                                                ("toy_dct", "dct"), ("toy_no_contrastive", "dnadet")])
@pytest.mark.slow
def test_each_config_trains_and_evaluates(trained_runs, config_name, method):
    root, runs = trained_runs
    model = load_model(os.path.join(runs[config_name], "model.pth"))
    assert model.info["method"] == method and model.info["class_num"] == 3
    config = load_config(config_name, TINY_OVERRIDES + ["class_num=3"])
    items = read_annotations(os.path.join(root, "toy_val", "annotations", "toy_val.txt"))
    dataset = WholeImageDataset(items, config.crop_size, config.resize_size, pipeline="pil")
    metrics = evaluate(model, eval_loader(dataset, 8, 0), torch.device("cpu"), 3, config.resize_size)
    assert metrics["n_images"] == len(items) and 0.0 <= metrics["acc"] <= 1.0
    if method == "dct":                                  # the spectrum statistics were saved
        assert int(model.standardise.count) > 0 and model.standardise.mean.shape == (3, 32, 32)
