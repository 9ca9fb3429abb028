"""Weights: released format round trip, safe loading, strict and partial loads."""
import os
import pickle

import pytest
import torch

from engine.checkpoint import (atomic_save, load_backbone_for_finetune, load_checkpoint, load_model,
                               save_checkpoint, save_released_weights, use_config_input_filter, write_sidecar)
from models import SimpleCNN


def test_released_state_dict_round_trip(tmp_path):
    model = SimpleCNN(5, width=8).eval()
    path = str(tmp_path / "model.pth")
    torch.save(model.state_dict(), path)  # exactly how the released weights are stored
    loaded = load_model(path)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(loaded(x)[0], model(x)[0])
    assert loaded.info["class_num"] == 5 and loaded.info["width"] == 8
    assert loaded.info["source"] == "state_dict"


def test_sidecar_supplies_class_names(tmp_path):
    path = str(tmp_path / "model.pth")
    save_released_weights(SimpleCNN(3, width=8), path, {"method": "dnadet", "class_names": ["a", "b", "c"]})
    assert set(torch.load(path, weights_only=True)) == set(SimpleCNN(3, width=8).state_dict())
    assert load_model(path).info["class_names"] == ["a", "b", "c"]


def test_class_num_mismatch_is_an_error(tmp_path):
    path = str(tmp_path / "model.pth")
    torch.save(SimpleCNN(5, width=8).state_dict(), path)
    with pytest.raises(ValueError, match="class_num=4 but the weights' classifier has 5"):
        load_model(path, class_num=4)


def test_missing_key_is_an_error(tmp_path):
    state = SimpleCNN(5, width=8).state_dict()
    del state["main.3.main.1.running_var"]
    path = str(tmp_path / "model.pth")
    torch.save(state, path)
    with pytest.raises(ValueError, match="running_var"):
        load_model(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_code_carrying_pickle_is_refused(tmp_path):
    path = str(tmp_path / "evil.pth")
    with open(path, "wb") as handle:
        pickle.dump({"x": _Exploit()}, handle)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_model(path)


def test_resume_checkpoint_round_trip_and_load_model(tmp_path):
    model = SimpleCNN(4, width=8)
    path = str(tmp_path / "checkpoint.pth")
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3, 32, 32))[0].sum().backward()
    optimizer.step()
    save_checkpoint(path, model=model.state_dict(), backbone=model.state_dict(),
                    optimizer=optimizer.state_dict(), config={"method": "dnadet", "width": 8},
                    class_names=["a", "b", "c", "d"], epoch=3, best_metric=0.5)
    payload = load_checkpoint(path)
    assert payload["epoch"] == 3 and payload["best_metric"] == 0.5
    assert payload["optimizer"]["state"][0]["exp_avg"].shape == model.main[0].main[0].weight.shape
    loaded = load_model(path)
    assert loaded.info["class_names"] == ["a", "b", "c", "d"]
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(loaded(x)[0], model.eval()(x)[0])


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint to resume"):
        load_checkpoint(str(tmp_path / "none.pth"))
    plain = str(tmp_path / "plain.pth")
    torch.save(SimpleCNN(2, width=8).state_dict(), plain)
    with pytest.raises(ValueError, match="not a DNA-Det resume checkpoint"):
        load_checkpoint(plain)


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "sub" / "w.pth")
    atomic_save({"a": torch.ones(2)}, path)
    assert os.listdir(tmp_path / "sub") == ["w.pth"]


def test_stage_one_weights_load_into_stage_two_except_the_head(tmp_path):
    stage1 = SimpleCNN(170, width=8)
    path = str(tmp_path / "stage1.pth")
    torch.save(stage1.state_dict(), path)
    stage2 = SimpleCNN(5, width=8)
    skipped = load_backbone_for_finetune(stage2, path)
    assert skipped == ["classification_head.1.bias", "classification_head.1.weight"]
    assert torch.equal(stage2.main[6].main[0].weight, stage1.main[6].main[0].weight)
    other = str(tmp_path / "other.pth")
    torch.save(SimpleCNN(170, width=16).state_dict(), other)
    with pytest.raises((ValueError, RuntimeError)):
        load_backbone_for_finetune(SimpleCNN(5, width=8), other)
    state = stage1.state_dict()
    del state["main.0.main.0.bias"]
    torch.save(state, other)
    with pytest.raises(ValueError, match="main.0.main.0.bias"):
        load_backbone_for_finetune(SimpleCNN(5, width=8), other)


def test_sidecar_write_is_json(tmp_path):
    path = str(tmp_path / "m.pth")
    write_sidecar(path, {"class_names": ["x"]})
    assert (tmp_path / "m.json").read_text().strip().startswith("{")


def test_sidecar_input_filter_round_trips(tmp_path):
    path = str(tmp_path / "model.pth")
    model = SimpleCNN(5, width=8, input_filter="highpass").eval()
    save_released_weights(model, path, {"method": "dnadet", "input_filter": "highpass"})
    loaded = load_model(path)
    x = torch.randn(2, 3, 32, 32)
    assert loaded.input_filter == "highpass" and torch.equal(loaded(x)[0], model(x)[0])
    os.remove(str(tmp_path / "model.json"))   # the authors' files carry no sidecar: raw input
    assert load_model(path).input_filter == "none"


def test_stage1_with_another_input_filter_is_refused(tmp_path):
    path = str(tmp_path / "model.pth")
    save_released_weights(SimpleCNN(170, width=8), path, {"method": "dnadet", "input_filter": "none"})
    with pytest.raises(ValueError, match="input_filter='none' but this model has input_filter='highpass'"):
        load_backbone_for_finetune(SimpleCNN(5, width=8, input_filter="highpass"), path)
    assert load_backbone_for_finetune(SimpleCNN(5, width=8), path) == sorted(
        ["classification_head.1.weight", "classification_head.1.bias"])


def test_bare_state_dict_takes_the_config_input_filter_and_a_record_wins(tmp_path):
    path = str(tmp_path / "model.pth")
    torch.save(SimpleCNN(5, width=8, input_filter="highpass").state_dict(), path)   # no sidecar
    model = load_model(path)
    use_config_input_filter(model, "highpass")
    assert model.input_filter == "highpass" and model.info["input_filter"] == "highpass"
    write_sidecar(path, {"method": "dnadet", "input_filter": "none"})
    recorded = load_model(path)
    use_config_input_filter(recorded, "highpass")
    assert recorded.input_filter == "none"


def test_sidecar_without_input_filter_means_raw_input(tmp_path):
    """A model.json written before input_filter existed belongs to a model trained on raw input."""
    path = str(tmp_path / "model.pth")
    save_released_weights(SimpleCNN(5, width=8), path, {"method": "dnadet", "config_name": "toy"})
    model = load_model(path)
    use_config_input_filter(model, "highpass")
    assert model.input_filter == "none"
