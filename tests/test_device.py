"""Precision and device code paths on CPU: the amp table, bf16 autocast, channels_last,
torch.compile of the backbone, the precision recorded by a run, and the benchmark's
fp32 / bf16 comparison (issue 12). The CUDA-only paths run here wherever PyTorch allows."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

import engine.device
from configs import load_config
from engine import builders
from engine.checkpoint import save_released_weights
from engine.device import amp_dtype, cpu_native_bf16, resolve_amp
from engine.train import views_losses
from models import SimpleCNN, SupConLoss

from conftest import TINY_OVERRIDES, load_script, make_collections, random_model  # noqa: E402

CPU = torch.device("cpu")
STEP = ["width=4", "class_num=3", "batch_size=2", "multi_size=16", "crop_num=2", "num_workers=0"]


def _views(config, seed=0):
    """A training batch as views: x [n_images * n_views, 3, m, m] in [-1, 1], labels [n_images]."""
    generator = torch.Generator().manual_seed(seed)
    n_images = config.batch_size * config.class_num
    x = torch.rand(n_images * config.crop_num, 3, config.multi_size, config.multi_size, generator=generator)
    return x * 2 - 1, torch.arange(config.class_num).repeat(config.batch_size)


def _step(model, config, x, labels, amp):
    """One optimiser step; returns the losses (floats)."""
    optimizer, _ = builders.build_optimizer(model, config)
    losses = views_losses(model, x, labels, CPU, amp,
                          SupConLoss(config.temperature, config.temperature))
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}


# ---------------------------------------------------------------- the amp table
@pytest.mark.parametrize("native, amp, expected", [
    (["amx_bf16"], "auto", None), ([], "auto", None), (["avx512_bf16"], "bf16", torch.bfloat16),
    ([], "bf16", torch.bfloat16), (["amx_bf16"], "fp16", None), (["amx_bf16"], "off", None)])
def test_amp_on_cpu(monkeypatch, native, amp, expected):
    """auto is fp32 also where the CPU has native bf16; bf16 only when asked, emulated without it."""
    monkeypatch.setattr(engine.device, "cpu_native_bf16", lambda: native)
    choice = resolve_amp(amp, CPU)
    assert choice.dtype is expected and amp_dtype(amp, CPU) is expected
    assert choice.name == {None: "fp32", torch.bfloat16: "bf16"}[expected]
    if amp == "auto":
        assert "fp32 on every device" in choice.reason
    if amp == "bf16":
        assert ("with native bf16 (avx512_bf16)" in choice.reason) == bool(native)
        assert ("emulated" in choice.reason) == (not native)


@pytest.mark.parametrize("bf16_gpu, amp, expected", [
    (True, "auto", None), (False, "auto", None), (True, "bf16", torch.bfloat16),
    (False, "bf16", torch.float16), (True, "fp16", torch.float16), (True, "off", None)])
def test_amp_on_cuda(monkeypatch, bf16_gpu, amp, expected):
    """The CUDA branch, with the GPU's bf16 support faked (no device is touched)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16_gpu)
    assert resolve_amp(amp, torch.device("cuda")).dtype is expected


def test_unknown_amp_is_an_error():
    with pytest.raises(ValueError, match="amp='bf32'"):
        resolve_amp("bf32", CPU)


def test_native_bf16_detection_reads_capabilities_or_the_older_queries(monkeypatch):
    """Both ways of asking torch (get_capabilities, torch >= 2.9; the private _is_*_supported
    before), and no oneDNN: no native bf16."""
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True, "amx_bf16": False,
                                                                "avx2": True}, raising=False)
    assert cpu_native_bf16() == ["avx512_bf16"]
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert cpu_native_bf16() == ["amx_bf16"]
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert cpu_native_bf16() == []


# ---------------------------------------------------------------- CUDA code paths, run on CPU
def test_bf16_autocast_training_step_on_cpu():
    """Convolutions in bf16 (checked on the last block's output), heads in fp32, fp32 master
    weights and finite gradients, losses within bf16 rounding of the fp32 step's."""
    config = load_config("toy", STEP)
    x, labels = _views(config)
    dtypes = []
    losses = {}
    for name, amp in (("fp32", None), ("bf16", torch.bfloat16)):
        torch.manual_seed(0)
        model = builders.build_train_model(config).eval()          # eval: no dropout, same BN in both
        handles = [module.register_forward_hook(lambda module, inputs, out: dtypes.append(out.dtype))
                   for module in (model.net.backbone.main[-1], model.net.backbone.classification_head)]
        losses[name] = _step(model, config, x, labels, amp)
        for handle in handles:
            handle.remove()
        assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    assert dtypes == [torch.float32, torch.float32, torch.bfloat16, torch.float32]
    for key in ("ce", "supcon", "loss"):
        assert losses["bf16"][key] == pytest.approx(losses["fp32"][key], rel=3e-2), key


def test_channels_last_model_trains_and_saves_the_released_format(tmp_path):
    """channels_last (default, every device): NHWC parameters, a bf16 step, the released format."""
    off = load_config("toy", STEP + ["channels_last=false"])
    plain_layout = builders.build_train_model(off)
    assert builders.prepare_model_for_device(plain_layout, off, CPU) == ""
    assert all(p.is_contiguous() for p in plain_layout.parameters())
    config = load_config("toy", STEP)
    torch.manual_seed(0)
    model = builders.build_train_model(config)
    assert builders.prepare_model_for_device(model, config, CPU) == ""
    four_d = [p for p in model.parameters() if p.dim() == 4]
    assert four_d and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                          for p in four_d)
    x, labels = _views(config)
    losses = _step(model.train(), config, x.contiguous(memory_format=torch.channels_last), labels, torch.bfloat16)
    assert all(np.isfinite(value) for value in losses.values())
    path = str(tmp_path / "model.pth")
    save_released_weights(model.backbone, path, {"class_num": 3})
    plain = SimpleCNN(3, width=4, input_filter=config.input_filter).eval()
    plain.load_state_dict(torch.load(path, weights_only=True))                # same keys, strict
    image = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(plain(image)[0], model.backbone.eval()(image)[0], atol=1e-5)


def _cpp_compiler():
    """The C++ compiler torch.compile's CPU backend would use, or None."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        command = get_cpp_compiler()
    except Exception:              # noqa: BLE001 - any failure means: no usable compiler
        return None
    return shutil.which(str(command).split()[0])


@pytest.mark.slow
def test_compiled_backbone_trains_one_step_like_eager():
    """torch.compile of the backbone (inductor, CPU): one step, same losses as eager, same keys.

    The first run on a machine compiles C++ kernels (~25 s on 2 cores; cached afterwards)."""
    if _cpp_compiler() is None:
        pytest.skip("torch.compile's CPU backend needs a C++ compiler (g++/clang++); none found")
    config = load_config("toy", STEP + ["use_contrastive=false", "compile=true", "channels_last=false"])
    x, labels = _views(config)
    losses = {}
    for name, on_cpu in (("eager", False), ("compiled", True)):
        torch.manual_seed(0)
        model = builders.build_train_model(config).eval()
        note = builders.prepare_model_for_device(model, config, CPU, compile_on_cpu=on_cpu)
        assert ("ignored" in note) == (not on_cpu)
        keys = list(model.state_dict())
        losses[name] = _step(model, config, x, labels, None)
        assert list(model.state_dict()) == keys and not any("_orig_mod" in key for key in keys)
    assert losses["compiled"]["ce"] == pytest.approx(losses["eager"]["ce"], rel=1e-4)


# ---------------------------------------------------------------- runs and evaluation
@pytest.mark.parametrize("amp, native, expected", [("auto", ["amx_bf16"], "fp32"), ("auto", [], "fp32"),
                                                   ("bf16", ["amx_bf16"], "bf16")])
def test_run_records_and_logs_the_precision(tmp_path, monkeypatch, amp, native, expected):
    import main
    monkeypatch.setattr(engine.device, "cpu_native_bf16", lambda: native)
    root = make_collections(str(tmp_path), class_num=3, per_class=4)
    argv = ["--data_path", root, "--train_collection", "toy_train", "--val_collection", "toy_val",
            "--config_name", "toy", "--device", "cpu", "--run_id", "amp", "--set", *TINY_OVERRIDES,
            "class_num=3", "max_epochs=1", f"amp={amp}"]
    assert main.main(argv) == 0
    run = os.path.join(root, "toy_train", "models", "toy_val", "toy", "run_amp")
    with open(os.path.join(run, "config.json"), encoding="utf-8") as handle:
        recorded = json.load(handle)
    assert (recorded["amp"], recorded["amp_resolved"]) == (amp, expected)
    assert ("with native bf16 (amx_bf16)" in recorded["amp_reason"]) == (expected == "bf16")
    with open(os.path.join(run, "train.log"), encoding="utf-8") as handle:
        assert f"precision {expected}: amp={amp}" in handle.read()


def test_evaluation_follows_amp_and_bf16_moves_probabilities_by_rounding_only(tmp_path, monkeypatch):
    """``load_eval_setup`` + ``run_items`` (what cross_test, robustness and predict use)."""
    from data.annotations import read_annotations
    from engine.inference import load_eval_setup, run_items
    monkeypatch.setattr(engine.device, "cpu_native_bf16", lambda: ["amx_bf16"])
    path = random_model(str(tmp_path / "run" / "model.pth"), 3, info={
        "method": "dnadet", "class_num": 3, "width": 8, "config_name": "toy", "crop_size": 32,
        "resize_size": 32, "second_resize_size": 0})
    root = make_collections(str(tmp_path / "data"), class_num=3, per_class=4)
    items = read_annotations(os.path.join(root, "toy_train", "annotations", "toy_train.txt"))
    probs = {}
    for amp in ("off", "auto", "bf16"):
        setup = load_eval_setup(path, overrides=[f"amp={amp}", "num_workers=0", "class_num=3"], device="cpu")
        assert setup.amp is (torch.bfloat16 if amp == "bf16" else None)
        probs[amp] = run_items(setup, items, "test", progress=False)["probs"]
    assert np.array_equal(probs["off"], probs["auto"])             # auto is fp32 on a bf16-native CPU too
    difference = np.abs(probs["off"] - probs["bf16"]).max()
    assert 0 < difference < 0.05                   # bf16 really ran, and moved little


def test_benchmark_prints_bf16_speedup(capsys):
    entry = load_script("eval", "benchmark")
    argv = ["--config_name", "toy", "--device", "cpu", "--per_class", "2", "--steps", "1", "--warmup", "0",
            "--repeats", "1", "--parts", "precision", "--set", "num_workers=0", "width=4", "batch_size=2",
            "crop_size=16", "resize_size=32", "multi_size=16", "crop_num=2"]
    assert entry.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("fp32 (amp=off)") for line in lines)
    assert any(line.startswith("bf16 autocast (amp=bf16)") for line in lines)
    assert lines[-1].startswith("bf16 speedup: ") and float(lines[-1].split()[-1]) > 0
    assert not any(line.startswith("released-style") for line in lines)      # data part not asked for


@pytest.mark.slow
def test_gpu_check_stops_at_once_without_cuda(tmp_path):
    """script/gpu_check.sh (POSIX sh) refuses to start, with the reason, when CUDA is absent."""
    import subprocess
    from conftest import ROOT
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would run")
    env = {**os.environ, "WORK": str(tmp_path / "work")}
    result = subprocess.run(["sh", "script/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "gpu_check: no CUDA device" in result.stderr
    assert "DEVICE=cpu QUICK=1" in result.stderr and not (tmp_path / "work").exists()
    result = subprocess.run(["sh", "script/gpu_check.sh"], cwd=ROOT, env={**env, "DEVICE": "tpu"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "DEVICE must be cuda" in result.stderr
