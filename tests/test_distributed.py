"""Data-parallel training on CPU: 2 processes, gloo, launched with torchrun.

What "same result" means on CPU: SyncBatchNorm needs CUDA, so in training mode each
rank normalises with its own sub-batch statistics and a 2-process run is not
bit-comparable with a 1-process run. The gradient test therefore puts the model in
eval mode (BatchNorm uses its running statistics, dropout is off): then the DDP
gradient of the local batches (cross-entropy averaged over ranks, contrastive loss
over the all-gathered global batch) must equal the single-process gradient on the
global batch. The end-to-end test runs ``main.py`` under torchrun and checks that it
finishes and that only rank 0 writes the run directory.

Both tests share one torchrun launch (process start-up is most of their time); this file
is also its worker script (``--worker OUT``).
"""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from configs import load_config  # noqa: E402
from engine import builders  # noqa: E402
from engine.device import amp_dtype  # noqa: E402
from engine.distributed import DistContext  # noqa: E402
from engine.train import step_losses  # noqa: E402
from models import SupConLoss, recalibrate_batchnorm  # noqa: E402

pytestmark = pytest.mark.slow

GRAD_OVERRIDES = ["width=4", "class_num=3", "batch_size=4", "crop_size=16", "resize_size=16",
                  "multi_size=16", "crop_num=2", "num_workers=0", "amp=off"]   # fp32: compared to 1e-4


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(args: list, timeout: int = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args]
    python_path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": python_path}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def _global_batch(config):
    """A fixed global batch in the pil layout: views [B, K, n, 3, m, m] in [-1, 1], labels [B, K]."""
    generator = torch.Generator().manual_seed(7)
    shape = (config.batch_size, config.class_num, config.crop_num, 3, config.multi_size, config.multi_size)
    views = torch.rand(shape, generator=generator) * 2 - 1
    labels = torch.arange(config.class_num).repeat(config.batch_size, 1)
    return views, torch.zeros(*shape[:3], 2, dtype=torch.long), labels


def _calibrate_batchnorm(model, views: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``views`` (one no-grad pass).

    At initialisation the running statistics (0, 1) leave the tiny network's features
    almost equal for every crop, so the contrastive gradient would be ~1e-9 and a wrong
    DDP gradient could pass unnoticed; calibrated, every gradient is of order 1.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None                 # cumulative average: one pass sets the batch's stats
    model.train()
    with torch.no_grad():
        model(views.reshape(-1, *views.shape[-3:]))
    for norm in norms:
        norm.momentum = 0.1


def _gradients(config, batch, dist=None) -> dict:
    """Loss values and parameter gradients of one training step, BatchNorm and dropout in eval mode.

    ``batch`` is this process's part of the global batch; BatchNorm is calibrated on the
    whole global batch in every process, before wrapping, so all processes hold the same model.
    """
    torch.manual_seed(config.seed)
    model = builders.build_train_model(config)
    _calibrate_batchnorm(model, _global_batch(config)[0])
    wrapped = dist.wrap(model, torch.device("cpu")) if dist is not None else model
    wrapped.eval()
    supcon = SupConLoss(config.temperature, config.temperature)
    amp = amp_dtype(config.amp, torch.device("cpu"))
    losses = step_losses(wrapped, batch, config, torch.device("cpu"), amp, supcon, dist)
    losses["loss"].backward()
    return {"losses": {name: value.item() for name, value in losses.items()},
            "grads": {name: p.grad.clone() for name, p in model.named_parameters()}}


def _worker(out_dir: str) -> int:
    """Run under torchrun: (1) rank r takes slice r of the global batch, as ShardedShuffleSampler
    does, and saves its loss values and gradients; (2) ``main.main`` trains end to end with the
    arguments in ``out_dir/main_argv.json``."""
    torch.set_num_threads(1)
    dist = DistContext.from_env(torch.device("cpu"))
    config = load_config("toy", GRAD_OVERRIDES)
    views, offsets, labels = _global_batch(config)
    local = config.batch_size // dist.world_size
    part = slice(dist.rank * local, (dist.rank + 1) * local)
    result = _gradients(config, (views[part], offsets[part], labels[part]), dist)
    torch.save(result, os.path.join(out_dir, f"rank{dist.rank}.pt"))
    with open(os.path.join(out_dir, "main_argv.json"), encoding="utf-8") as handle:
        argv = json.load(handle)
    _check_sync_batchnorm_recalibrates_locally(config)
    import engine.train
    import main
    recalibrate = engine.train.recalibrate_on_training_batches

    def recalibrate_and_record(job, backbone, train_set, epoch, **kwargs):
        used = recalibrate(job, backbone, train_set, epoch, **kwargs)
        stats = {name: value.clone() for name, value in backbone.state_dict().items() if "running" in name}
        torch.save({"used": used, "stats": stats}, os.path.join(out_dir, f"bn_rank{dist.rank}_epoch{epoch}.pt"))
        return used
    engine.train.recalibrate_on_training_batches = recalibrate_and_record
    # a constant validation score: early stopping fires after epoch 2 (early_stop_bar=1), on
    # rank 0's count only, so the other rank must follow it or hang in the next epoch's all-reduce
    engine.train.selection_value = lambda metrics, metric: 0.5
    return main.main(argv)               # reuses the process group and closes it at the end


def _check_sync_batchnorm_recalibrates_locally(config) -> None:
    """In a live 2-process group a SyncBatchNorm in train mode is a collective, which on CPU
    raises at once; the recalibration must swap it for a local layer and get exactly the
    statistics of the plain BatchNorm model."""
    torch.manual_seed(0)
    plain = builders.build_train_model(config).backbone
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(builders.build_train_model(config).backbone)
    synced.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="GPU"):        # what an unguarded forward does here
        synced.train()(torch.rand(4, 3, 16, 16))
    batches = [torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    assert recalibrate_batchnorm(plain, batches) == recalibrate_batchnorm(synced, batches) == 3
    assert all(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    for (name, a), (_, b) in zip(plain.state_dict().items(), synced.state_dict().items()):
        assert torch.equal(a, b), name


def _fault_worker(kind: str, argv_file: str) -> int:
    """Run under torchrun: ``main.main`` with one injected failure on one rank only.

    ``nan``: rank 1's contrastive loss becomes NaN at its third step (epoch 2); rank 0's stays
    finite. ``validation``: rank 0's validation raises after epoch 1 while rank 1 waits for it.
    """
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    import engine.train
    import main
    from models.losses import SupConLoss
    if kind == "nan" and rank == 1:
        original, calls = SupConLoss.forward, {"n": 0}

        def poisoned(self, features, labels):
            calls["n"] += 1
            loss = original(self, features, labels)
            return loss * float("nan") if calls["n"] == 3 else loss
        SupConLoss.forward = poisoned
    if kind == "validation" and rank == 0:
        def broken(*args, **kwargs):
            raise ValueError("injected validation failure")
        engine.train.evaluate = broken
    with open(argv_file, encoding="utf-8") as handle:
        return main.main(json.load(handle))


@pytest.mark.parametrize("kind, message", [("nan", "non-finite loss"),
                                           ("validation", "injected validation failure")])
def test_an_error_on_one_rank_stops_every_rank_instead_of_hanging(tmp_path, kind, message):
    """Without the shared finite check / rank 0's failure flag the other rank blocks in a
    collective until the process group's timeout (60 min); here both exit (the 150 s limit
    only tells a hang from a finished run on a slow, loaded machine)."""
    from conftest import TINY_OVERRIDES, make_collections
    root = make_collections(str(tmp_path / "data"), class_num=3, per_class=4)
    argv = ["--data_path", root, "--train_collection", "toy_train", "--val_collection", "toy_val",
            "--config_name", "toy", "--device", "cpu", "--run_id", kind, "--set", *TINY_OVERRIDES,
            "class_num=3", "max_epochs=3"]
    argv_file = tmp_path / "argv.json"
    argv_file.write_text(json.dumps(argv), encoding="utf-8")
    try:
        result = _torchrun([os.path.abspath(__file__), "--fault", kind, str(argv_file)], timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{kind}: a rank was still blocked 150 s after the failure")
    assert result.returncode != 0
    assert message in result.stderr
    if kind == "nan":              # both ranks stop at the same step, each saying why
        assert result.stderr.count("non-finite loss") >= 2, result.stderr[-3000:]
    else:
        assert "stopping because rank 0 failed" in result.stderr, result.stderr[-3000:]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One 2-process torchrun serving both tests (process start-up dominates their time)."""
    from conftest import TINY_OVERRIDES, make_collections
    out_dir = tmp_path_factory.mktemp("ddp_run")
    root = make_collections(str(tmp_path_factory.mktemp("ddp_data")), class_num=3, per_class=4)
    argv = ["--data_path", root, "--train_collection", "toy_train", "--val_collection", "toy_val",
            "--config_name", "toy", "--device", "cpu", "--run_id", "ddp", "--set", *TINY_OVERRIDES, "class_num=3",
            "max_epochs=4", "early_stop_bar=1", "bn_recalibrate_batches=2"]
    with open(out_dir / "main_argv.json", "w", encoding="utf-8") as handle:
        json.dump(argv, handle)
    result = _torchrun([os.path.abspath(__file__), "--worker", str(out_dir)], timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"out_dir": out_dir, "root": root, "stderr": result.stderr}


def test_ddp_gradients_equal_single_process_gradients(ddp_run):
    ranks = [torch.load(ddp_run["out_dir"] / f"rank{r}.pt", weights_only=True) for r in range(2)]
    config = load_config("toy", GRAD_OVERRIDES)
    single = _gradients(config, _global_batch(config))
    # the contrastive loss is computed on the gathered global batch: equal on every rank
    for rank in ranks:
        assert abs(rank["losses"]["supcon"] - single["losses"]["supcon"]) < 1e-5
    # cross-entropy is a per-rank mean over equal-sized local batches
    mean_ce = sum(rank["losses"]["ce"] for rank in ranks) / 2
    assert abs(mean_ce - single["losses"]["ce"]) < 1e-5
    assert set(ranks[0]["grads"]) == set(single["grads"])
    for name, grad in single["grads"].items():
        assert grad.norm() > 1e-3, f"{name}: vanishing gradient, the comparison would prove nothing"
        for rank in ranks:     # DDP averages the ranks' gradients: both hold the global gradient
            error = (rank["grads"][name] - grad).norm() / grad.norm()
            assert error < 1e-4, f"{name}: relative gradient error {error:.2e}"


def test_torchrun_main_trains_and_only_rank0_writes(ddp_run):
    root = ddp_run["root"]
    run_dir = os.path.join(root, "toy_train", "models", "toy_val", "toy", "run_ddp")
    assert {"model.pth", "model.json", "checkpoint.pth", "metrics.jsonl", "train.log",
            "config.json"} <= set(os.listdir(run_dir))
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        epochs = [json.loads(line)["epoch"] for line in handle]
    assert epochs == [1, 2]       # one line per epoch (one writer); early stop after epoch 2 of 4
    with open(os.path.join(run_dir, "train.log"), encoding="utf-8") as handle:
        log = handle.read()
    assert log.count("training main stage") == 1 and log.count("epoch 2:") == 1
    assert ddp_run["stderr"].count("training main stage") == 1   # rank 1 logs nothing


def test_every_rank_recalibrates_batchnorm_to_the_same_statistics(ddp_run):
    """bn_recalibrate_batches > 0 under torchrun: both ranks finish (the run above returned 0),
    each recalibrated after every epoch, and they hold identical running statistics."""
    for epoch in (1, 2):
        ranks = [torch.load(ddp_run["out_dir"] / f"bn_rank{r}_epoch{epoch}.pt", weights_only=True)
                 for r in range(2)]
        assert ranks[0]["used"] == ranks[1]["used"] == 2
        assert ranks[0]["stats"] and ranks[0]["stats"].keys() == ranks[1]["stats"].keys()
        for name, value in ranks[0]["stats"].items():
            assert torch.equal(value, ranks[1]["stats"][name]), name
    run_dir = os.path.join(ddp_run["root"], "toy_train", "models", "toy_val", "toy", "run_ddp")
    saved = torch.load(os.path.join(run_dir, "model.pth"), weights_only=True)   # best epoch: 1
    first = torch.load(ddp_run["out_dir"] / "bn_rank0_epoch1.pt", weights_only=True)["stats"]
    assert all(torch.equal(saved[name], value) for name, value in first.items())


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--worker":
    sys.exit(_worker(sys.argv[2]))
if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--fault":
    sys.exit(_fault_worker(sys.argv[2], sys.argv[3]))
