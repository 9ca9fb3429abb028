"""Tiny end-to-end runs of both stages: outputs, resume, determinism, failures."""
import json
import os
import subprocess
import sys

import pytest
import torch

import main
from conftest import TINY_OVERRIDES
from data.annotations import read_annotations, write_annotations
from models import SimpleCNN
from engine.checkpoint import checkpoint_backbone, load_model

STAGE2 = TINY_OVERRIDES + ["class_num=3"]


def run_main(root, *extra, run_id="1", config="toy", collections=("toy_train", "toy_val"), overrides=STAGE2):
    argv = ["--data_path", root, "--train_collection", collections[0], "--val_collection", collections[1],
            "--config_name", config, "--device", "cpu", "--run_id", run_id, *extra, "--set", *overrides]
    return main.main(argv)


def run_dir(root, run_id="1", collections=("toy_train", "toy_val"), config="toy"):
    return os.path.join(root, collections[0], "models", collections[1], config, f"run_{run_id}")


@pytest.mark.slow
def test_two_stages_end_to_end(collections):
    assert run_main(collections, "--pretrain", config="toy_pretrain", collections=("pre_train", "pre_val"),
                    overrides=TINY_OVERRIDES) == 0
    stage1 = run_dir(collections, collections=("pre_train", "pre_val"), config="toy_pretrain")
    assert load_model(os.path.join(stage1, "model.pth")).info["class_num"] == 170
    assert run_main(collections, "--pretrain_model_path", os.path.join(stage1, "model.pth")) == 0
    out = run_dir(collections)
    for name in ("config.json", "train.log", "metrics.jsonl", "checkpoint.pth", "model.pth", "model.json",
                 "snapshot_epoch2.pth"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert os.listdir(os.path.join(out, "tb"))
    state = torch.load(os.path.join(out, "model.pth"), weights_only=True)
    assert list(state) == list(SimpleCNN(3, width=8).state_dict())  # released format
    lines = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert {"train_ce", "train_supcon", "val_acc", "val_f1", "lr"} <= set(lines[0])
    assert "stage-1 weights" in open(os.path.join(out, "train.log")).read()


def test_resumed_run_matches_uninterrupted_run(collections):
    fp32 = STAGE2 + ["amp=off"]                   # bit-exactness is promised in fp32 (README)
    assert run_main(collections, run_id="full", overrides=fp32 + ["max_epochs=3"]) == 0
    assert run_main(collections, run_id="cut", overrides=fp32 + ["max_epochs=2"]) == 0
    assert run_main(collections, "--resume", run_id="cut", overrides=fp32 + ["max_epochs=3"]) == 0
    full = torch.load(os.path.join(run_dir(collections, "full"), "checkpoint.pth"), weights_only=True)
    cut = torch.load(os.path.join(run_dir(collections, "cut"), "checkpoint.pth"), weights_only=True)
    assert full["epoch"] == cut["epoch"] == 3
    for key, value in full["model"].items():
        assert torch.equal(value, cut["model"][key]), key
    for key in ("best_metric", "best_epoch", "global_step"):
        assert full[key] == cut[key]
    epochs = [json.loads(line)["epoch"] for line in open(os.path.join(run_dir(collections, "cut"), "metrics.jsonl"))]
    assert epochs == [1, 2, 3]


def test_same_seed_gives_bit_identical_weights(collections):
    assert run_main(collections, run_id="a", overrides=STAGE2 + ["amp=off"]) == 0   # fp32: bit-exact
    assert run_main(collections, run_id="b", overrides=STAGE2 + ["amp=off"]) == 0
    a = torch.load(os.path.join(run_dir(collections, "a"), "model.pth"), weights_only=True)
    b = torch.load(os.path.join(run_dir(collections, "b"), "model.pth"), weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_needs_resume(collections, capsys):
    assert run_main(collections) == 0
    assert run_main(collections) == 1
    assert "pass --resume" in capsys.readouterr().err


def test_non_finite_loss_stops_and_keeps_last_checkpoint(collections, monkeypatch, capsys):
    from models.losses import SupConLoss
    calls = {"n": 0}
    original = SupConLoss.forward

    def poisoned(self, features, labels):
        calls["n"] += 1
        loss = original(self, features, labels)
        return loss * float("nan") if calls["n"] > 2 else loss  # epoch 2 (2 steps per epoch)
    monkeypatch.setattr(SupConLoss, "forward", poisoned)
    assert run_main(collections) == 1
    assert "non-finite loss" in capsys.readouterr().err
    checkpoint = torch.load(os.path.join(run_dir(collections), "checkpoint.pth"), weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_unreadable_image_in_list_is_skipped_and_counted(collections):
    train = os.path.join(collections, "toy_train", "annotations", "toy_train.txt")
    items = read_annotations(train)
    broken = os.path.join(collections, "broken.png")
    open(broken, "wb").close()
    write_annotations(train, items + [(broken, 1)])
    assert run_main(collections) == 0
    out = run_dir(collections)
    assert "1 skipped as unreadable" in open(os.path.join(out, "train.log")).read()
    assert broken in open(os.path.join(out, "skipped_images.txt")).read()


def test_bad_config_override_is_reported(collections, capsys):
    assert run_main(collections, overrides=["nonsense=1"]) == 1
    assert "unknown config key 'nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize("method_overrides", [["use_contrastive=false"], ["whole_image=true", "use_contrastive=false"],
                                              ["data_pipeline=pil"], ["train_aug=true", "train_aug_prob=1.0"]])
def test_training_variants_run(collections, method_overrides):
    assert run_main(collections, overrides=STAGE2 + ["max_epochs=1"] + method_overrides) == 0


@pytest.mark.slow
def test_help_documents_every_flag():
    text = subprocess.run([sys.executable, "main.py", "--help"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout
    for flag in ("--data_path", "--train_collection", "--val_collection", "--config_name", "--run_id",
                 "--device", "--pretrain", "--pretrain_model_path", "--resume", "--set"):
        assert flag in text


def test_resume_refuses_a_changed_config_and_names_the_keys(collections, capsys):
    assert run_main(collections, run_id="r", overrides=STAGE2 + ["max_epochs=1"]) == 0
    config_file = os.path.join(run_dir(collections, "r"), "config.json")
    before = open(config_file).read()
    assert run_main(collections, "--resume", run_id="r",
                    overrides=STAGE2 + ["max_epochs=2", "learning_rate=0.5", "crop_num=3"]) == 1
    error = capsys.readouterr().err
    assert "configuration differs" in error and "learning_rate" in error and "crop_num" in error
    assert "max_epochs" not in error.split("only")[0]          # extending a run is allowed
    assert open(config_file).read() == before                  # nothing overwritten
    # more epochs and other machine settings are fine
    assert run_main(collections, "--resume", run_id="r", overrides=STAGE2 + ["max_epochs=2", "num_workers=1"]) == 0


def test_fp16_resume_restores_the_grad_scaler(collections, monkeypatch):
    """An fp16 run resumed after epoch 2 equals the uninterrupted run, GradScaler state included.

    CPU autocast in fp16 stands in for CUDA's; the scaler grows its scale every step
    (growth_interval=1), so a resume that restarted it at its initial scale would differ.
    """
    import functools
    import engine.train
    fp16 = lambda amp, device: torch.float16                               # noqa: E731
    monkeypatch.setattr(engine.train, "amp_dtype", fp16)
    monkeypatch.setattr(engine.train.torch.amp, "GradScaler",
                        functools.partial(torch.amp.GradScaler, growth_interval=1, init_scale=2.0 ** 4))
    assert run_main(collections, run_id="full16", overrides=STAGE2 + ["max_epochs=3", "amp=fp16"]) == 0
    assert run_main(collections, run_id="cut16", overrides=STAGE2 + ["max_epochs=2", "amp=fp16"]) == 0
    assert run_main(collections, "--resume", run_id="cut16", overrides=STAGE2 + ["max_epochs=3", "amp=fp16"]) == 0
    full = torch.load(os.path.join(run_dir(collections, "full16"), "checkpoint.pth"), weights_only=True)
    cut = torch.load(os.path.join(run_dir(collections, "cut16"), "checkpoint.pth"), weights_only=True)
    assert full["scaler"]["scale"] == cut["scaler"]["scale"] > 2.0 ** 4     # it did grow
    for key, value in full["model"].items():
        assert torch.equal(value, cut["model"][key]), key


def test_resume_accepts_a_checkpoint_from_before_a_new_config_key(collections):
    """A key added to the code after the run started ran with its default: not a change."""
    assert run_main(collections, run_id="old", overrides=STAGE2 + ["max_epochs=1"]) == 0
    path = os.path.join(run_dir(collections, "old"), "checkpoint.pth")
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["config"]["pretrain_images_per_label"]
    torch.save(checkpoint, path)
    assert run_main(collections, "--resume", run_id="old", overrides=STAGE2 + ["max_epochs=2"]) == 0


def test_bn_recalibration_changes_only_the_statistics_and_is_logged(collections):
    fp32 = STAGE2 + ["amp=off"]
    assert run_main(collections, run_id="plain", overrides=fp32 + ["bn_recalibrate_batches=0"]) == 0
    assert run_main(collections, run_id="precise", overrides=fp32 + ["bn_recalibrate_batches=2"]) == 0
    blobs = [torch.load(os.path.join(run_dir(collections, run_id), "checkpoint.pth"), weights_only=True)
             for run_id in ("plain", "precise")]
    assert not any("backbone" in blob for blob in blobs)          # the weights are stored once
    plain, precise = (checkpoint_backbone(blob) for blob in blobs)
    stats = [key for key in plain if key.endswith(("running_mean", "running_var"))]
    assert stats
    for key, value in plain.items():   # training itself is untouched by recalibration
        if key not in stats and not key.endswith("num_batches_tracked"):
            assert torch.equal(value, precise[key]), key
    assert any(not torch.equal(plain[key], precise[key]) for key in stats)
    best = torch.load(os.path.join(run_dir(collections, "precise"), "model.pth"), weights_only=True)
    assert best.keys() == precise.keys()          # the released key format, read back from the checkpoint
    lines = [json.loads(line) for line in open(os.path.join(run_dir(collections, "precise"), "metrics.jsonl"))]
    assert [line.get("bn_recalibrated_batches") for line in lines] == [2, 2]


def test_stage1_curve_table_reads_a_pretrain_run(tmp_path, capsys):
    from conftest import load_script
    curve_script = load_script("eval", "stage1_curve")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"iters_per_epoch": 100}))
    family = {"jpeg": {"top1": 0.1, "family_acc": 0.5, "n": 10}}
    records = [{"epoch": e, "train_ce": 4.0 - e / 10, "lr": 1e-3, "val_ce": 3.0, "val_top1": top1, "val_top5": 0.5,
                "val_family_acc": 0.7, "val_per_family": family, "best_epoch": 2} for e, top1 in
               ((1, 0.05), (2, 0.12), (3, 0.12), (4, 0.10))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = str(tmp_path / "curve")
    assert curve_script.main(["--run_dir", str(run), "--out", out, "--every", "3"]) == 0
    assert "best top-1 12.0 % at epoch 2 (step 200)" in capsys.readouterr().out   # the first of a tie
    text = open(out + ".md").read()
    assert [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()][:4] == ["1", "2", "3", "4"]       # first, best, every 3rd, last
    assert "model.pth is epoch 2" in text and "| jpeg" in text
    assert len(open(out + ".csv").read().splitlines()) == 2 + 4
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_acc": 0.5}) + "\n")   # a stage-2 run
    assert curve_script.main(["--run_dir", str(run), "--out", out]) == 1
    assert "is this a --pretrain run?" in capsys.readouterr().err
