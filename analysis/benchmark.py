"""Throughput of the stage-2 data paths and of the model, measured in one run (issue 7).

Three data paths feed the same training step (``engine.train``):
- ``released``: the released design, ``data_pipeline=pil``: per image, Pillow resize
  to the full size, random crops, to float and normalise, all in DataLoader workers;
- ``batched``: this project's path without the image cache: the workers decode each
  image; each batch is resized, cropped and normalised at once, on the GPU (uint8
  squares shipped) or, when training on CPU, in the loader workers;
- ``cached``: the default: ``batched`` plus every image decoded once into memory.
For each path: data-only throughput (loader + device preparation, no model) in
crops/s and in CPU time per crop, and real training steps with the share of each step spent on data
(waiting for the loader + preparing the views). ``model`` times training steps on
one preloaded batch, in the config's precision; ``precision`` times them in fp32
(``amp=off``) and under bf16 autocast (``amp=bf16``) back to back (issue 12).
Measurements are interleaved across ``repeats`` rounds so that load from other
processes touches every path alike; rows report the median and the range.
"""
import dataclasses
import os
import resource
import statistics
import time
from typing import List

import numpy as np
import torch
from PIL import Image

from configs.base import Config
from data.annotations import read_annotations
from engine import builders
from engine.device import amp_dtype, resolve_amp
from engine.train import batch_views, views_losses
from models import SupConLoss

PATHS = {"released": ("pil", "released-style (pil, per image)"),
         "batched": ("batched", "batched, decode per item"),
         "cached": ("batched", "batched + uint8 cache (default)")}
PARTS = ("data", "train", "model", "precision")
PRECISIONS = {"fp32": ("off", "fp32 (amp=off)"), "bf16": ("bf16", "bf16 autocast (amp=bf16)")}


@dataclasses.dataclass
class BenchSettings:
    data_batches: int = 100    # batches timed per data-only measurement (toy: ~1 epoch of a small list)
    steps: int = 3             # training steps timed per path
    warmup: int = 2            # batches / steps run before timing (worker start, compile)
    repeats: int = 3           # interleaved rounds
    parts: tuple = PARTS

    def __post_init__(self):
        if min(self.data_batches, self.steps, self.repeats) < 1 or self.warmup < 0:
            raise ValueError(f"benchmark settings must be positive (warmup >= 0): {self}")
        if not self.parts or set(self.parts) - set(PARTS):
            raise ValueError(f"--parts {','.join(self.parts)!r}: use a comma list of {', '.join(PARTS)}")


def synthetic_items(folder: str, config: Config, per_class: int = 48, seed: int = 0) -> list:
    """Write ``per_class`` square PNGs of ``crop_size`` px per class; returns [(path, label)].

    Smooth random colour fields plus mild noise: PNG sizes and decode costs are those
    of natural-looking images rather than of flat or pure-noise ones.
    """
    rng = np.random.default_rng(seed)
    side, items = config.crop_size, []
    for label in range(config.class_num):
        os.makedirs(os.path.join(folder, str(label)), exist_ok=True)
        for i in range(per_class):
            coarse = Image.fromarray(rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8))
            smooth = np.asarray(coarse.resize((side, side), Image.BICUBIC), dtype=np.int16)
            noisy = np.clip(smooth + rng.integers(-6, 7, smooth.shape), 0, 255).astype(np.uint8)
            path = os.path.join(folder, str(label), f"{i:04d}.png")
            Image.fromarray(noisy).save(path)
            items.append((path, label))
    return items


def list_items(path: str, config: Config) -> list:
    """An annotation list (``path<TAB>label``) with every class present."""
    items = read_annotations(path, class_num=config.class_num)
    missing = sorted(set(range(config.class_num)) - {label for _, label in items})
    if missing:
        raise ValueError(f"{path} has no image of class(es) {missing}; the balanced sampler "
                         f"needs every class of the config ({config.class_num})")
    return items


def crops_per_step(config: Config) -> int:
    crops = builders.crop_settings(config)
    return config.batch_size * config.class_num * crops["crop_num"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_path_dataset(config: Config, items: list, path: str, batches: int):
    """The training dataset of one data path, long enough for ``batches`` batches."""
    pipeline = PATHS[path][0]
    path_config = dataclasses.replace(config, data_pipeline=pipeline, iters_per_epoch=batches)
    dataset = builders.build_train_dataset(path_config, items, "main")
    preload = builders.preload_images(dataset, path_config) if path == "cached" else ""
    return dataset, path_config, preload


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_data(config: Config, dataset, device: torch.device, settings: BenchSettings) -> dict:
    """Data-only: every loader batch turned into normalised views on ``device``, no model.

    Returns crops/s over the batches after ``warmup`` (wall clock) and the CPU
    milliseconds per 1000 crops over all batches (this process + workers, which
    exit when the loader is exhausted): the second is insensitive to other
    processes competing for the cores.
    """
    cpu_start = _cpu_seconds()
    loader = builders.train_loader(dataset, config, epoch=1, device=device)
    timed, started = 0, None
    for step, batch in enumerate(loader):
        if step == settings.warmup:
            _sync(device)
            started = time.perf_counter()
        batch_views(batch, config, device)
        timed += step >= settings.warmup
    _sync(device)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_start
    return {"crops_s": timed * crops_per_step(config) / wall,
            "cpu_ms_per_kcrop": 1e6 * cpu / (len(loader) * crops_per_step(config))}


def _train_setup(config: Config, device: torch.device):
    torch.manual_seed(config.seed)
    model = builders.build_train_model(config).to(device)
    builders.prepare_model_for_device(model, config, device)
    optimizer, _ = builders.build_optimizer(model, config)
    amp = amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    return model.train(), optimizer, amp, scaler


def _model_step(model, optimizer, scaler, x, labels, device, amp, supcon) -> None:
    losses = views_losses(model, x, labels, device, amp, supcon)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["loss"]).backward()
    scaler.step(optimizer)
    scaler.update()


def measure_training(config: Config, dataset, device: torch.device, settings: BenchSettings) -> dict:
    """Real training steps fed by ``dataset``: seconds per step and the data share of a step.

    wait = blocked on the loader; prep = turning the batch into views on the device.
    The timed steps start only after the batches the workers prefetched (2 each) are used
    up, so a loader slower than the model shows as waiting instead of hiding in the buffer.
    """
    model, optimizer, amp, scaler = _train_setup(config, device)
    supcon = SupConLoss(config.temperature, config.temperature)
    loader = builders.train_loader(dataset, config, epoch=1, device=device)
    batches = iter(loader)
    warmup = settings.warmup + config.num_workers * (loader.prefetch_factor or 0)
    totals = {"wait": 0.0, "prep": 0.0, "model": 0.0}
    for step in range(warmup + settings.steps):
        started = time.perf_counter()
        batch = next(batches)
        loaded = time.perf_counter()
        x, labels = batch_views(batch, config, device)
        _sync(device)
        prepared = time.perf_counter()
        _model_step(model, optimizer, scaler, x, labels, device, amp, supcon)
        _sync(device)
        if step >= warmup:
            totals["wait"] += loaded - started
            totals["prep"] += prepared - loaded
            totals["model"] += time.perf_counter() - prepared
    step_time = sum(totals.values()) / settings.steps
    return {"step_s": step_time, "data_share": (totals["wait"] + totals["prep"]) / settings.steps / step_time,
            "wait_share": totals["wait"] / settings.steps / step_time}


def _preloaded_batch(config: Config, dataset, device: torch.device):
    """One training batch as views on ``device``: (x [N, 3, m, m], image labels)."""
    loader = builders.train_loader(dataset, dataclasses.replace(config, num_workers=0), epoch=1, device=device)
    return batch_views(next(iter(loader)), config, device)


def _timed_steps(runs: dict, x, labels, device, supcon, settings: BenchSettings) -> dict:
    """Steps of every set-up in ``runs`` ({name: _train_setup(...)}) on one batch, alternating
    step by step (order reversed every step) so that load changes touch all alike.

    Returns {name: {"step_s", "crops_s", "cpu_s"}} over the steps after ``warmup``.
    """
    totals = {name: [0.0, 0.0] for name in runs}
    for step in range(settings.warmup + settings.steps):
        for name in (list(runs) if step % 2 == 0 else list(runs)[::-1]):
            model, optimizer, amp, scaler = runs[name]
            _sync(device)
            started, cpu_started = time.perf_counter(), time.process_time()
            _model_step(model, optimizer, scaler, x, labels, device, amp, supcon)
            _sync(device)
            if step >= settings.warmup:
                totals[name][0] += time.perf_counter() - started
                totals[name][1] += time.process_time() - cpu_started
    return {name: {"step_s": wall / settings.steps, "crops_s": x.shape[0] * settings.steps / wall,
                   "cpu_s": cpu / settings.steps} for name, (wall, cpu) in totals.items()}


def measure_model(config: Config, dataset, device: torch.device, settings: BenchSettings) -> dict:
    """Training steps on one batch already on the device: the model's own step time."""
    x, labels = _preloaded_batch(config, dataset, device)
    supcon = SupConLoss(config.temperature, config.temperature)
    return _timed_steps({"model": _train_setup(config, device)}, x, labels, device, supcon, settings)["model"]


def measure_precision(config: Config, dataset, device: torch.device, settings: BenchSettings) -> dict:
    """The model step in fp32 (``amp=off``) and under bf16 autocast (``amp=bf16``), side by side.

    Both models start from the same seed and train on the same preloaded batch, one step
    of each in turn. Returns {"fp32": dict, "bf16": dict} (see ``_timed_steps``).
    """
    x, labels = _preloaded_batch(config, dataset, device)
    supcon = SupConLoss(config.temperature, config.temperature)
    runs = {name: _train_setup(dataclasses.replace(config, amp=amp), device)
            for name, (amp, _) in PRECISIONS.items()}
    return _timed_steps(runs, x, labels, device, supcon, settings)


def run_benchmark(config: Config, items: list, device: torch.device, settings: BenchSettings) -> dict:
    """Every measurement, interleaved over ``settings.repeats`` rounds.

    Returns {"paths": {path: {"data": [dict], "train": [dict]}}, "model": [dict],
    "precision": [{"fp32": dict, "bf16": dict}], "notes": [str]}, one dict per round (see
    ``measure_data``, ``measure_training``, ``measure_model``, ``measure_precision``).
    """
    length = settings.warmup + max(settings.data_batches, settings.steps) + config.num_workers * 2   # + prefetched
    datasets, notes = {}, []
    for path in PATHS:
        dataset, path_config, preload = build_path_dataset(config, items, path, length)
        datasets[path] = (dataset, path_config)
        if preload:
            notes.append(f"cache: {preload}")
    results = {"paths": {path: {"data": [], "train": []} for path in PATHS}, "model": [],
               "precision": [], "notes": notes}
    for _ in range(settings.repeats):
        for path, (dataset, path_config) in datasets.items():
            if "data" in settings.parts:
                results["paths"][path]["data"].append(measure_data(path_config, dataset, device, settings))
            if "train" in settings.parts:
                results["paths"][path]["train"].append(measure_training(path_config, dataset, device, settings))
        if "model" in settings.parts:
            dataset, path_config = datasets["cached"]
            results["model"].append(measure_model(path_config, dataset, device, settings))
        if "precision" in settings.parts:
            dataset, path_config = datasets["cached"]
            results["precision"].append(measure_precision(path_config, dataset, device, settings))
    if device.type == "cuda":
        notes.append(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB "
                     f"(torch.cuda.max_memory_allocated, whole benchmark)")
    else:
        import resource                  # Linux reports ru_maxrss in KiB
        notes.append(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB "
                     f"(maximum resident set of this process, whole benchmark; loader workers not counted)")
    return results


def _spread(values: List[float], scale: float = 1.0, digits: int = 0) -> str:
    """'median [min-max]' of ``values`` times ``scale``; '-' when empty."""
    if not values:
        return "-"
    values = [v * scale for v in values]
    fmt = f"{{:.{digits}f}}"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def speedups(results: dict, key: str = "crops_s") -> List[float]:
    """cached / released data-only throughput per round (``crops_s``, or CPU cost with ``cpu_ms_per_kcrop``)."""
    cached, released = results["paths"]["cached"]["data"], results["paths"]["released"]["data"]
    if key == "crops_s":
        return [c[key] / r[key] for c, r in zip(cached, released)]
    return [r[key] / c[key] for c, r in zip(cached, released)]


def bf16_speedups(rounds: List[dict], key: str = "step_s") -> List[float]:
    """fp32 / bf16 model step time per round (``step_s`` wall clock, ``cpu_s`` CPU time)."""
    return [r["fp32"][key] / r["bf16"][key] for r in rounds]


def format_precision(rounds: List[dict], device: torch.device) -> List[str]:
    """Rows of the fp32 / bf16 comparison and the line ``bf16 speedup: X.XX`` ([] when not measured)."""
    if not rounds:
        return []
    cpu = device.type == "cpu"
    lines = ["", f"{'precision (model only, same batch)':<34}{'crops/s':>22}{'CPU s/step' if cpu else '':>24}"
                 f"{'train step (s)':>24}"]
    for name, (_, label) in PRECISIONS.items():
        cpu_column = _spread([r[name]["cpu_s"] for r in rounds], digits=3) if cpu else ""
        lines.append(f"{label:<34}{_spread([r[name]['crops_s'] for r in rounds]):>22}{cpu_column:>24}"
                     f"{_spread([r[name]['step_s'] for r in rounds], digits=3):>24}")
    ratios = bf16_speedups(rounds)
    detail = ", ".join(f"{r:.2f}" for r in ratios)
    if cpu:
        detail += "; CPU time " + ", ".join(f"{r:.2f}" for r in bf16_speedups(rounds, "cpu_s"))
    lines += [f"fp32 / bf16 step time, per round: {detail}",
              f"bf16 speedup: {statistics.median(ratios):.2f}"]
    return lines


def format_table(results: dict, config: Config, config_name: str, device: torch.device,
                 settings: BenchSettings) -> str:
    """The report: a header, one row per data path, the model-only row, the fp32 / bf16 rows
    with ``bf16 speedup: X.XX``; ends with the data path's ``speedup: X.XX``."""
    crops = builders.crop_settings(config)
    threads = f", {torch.get_num_threads()} torch threads" if device.type == "cpu" else ""
    lines = [f"config {config_name} on {device}{threads}: {config.batch_size} items x {config.class_num} "
             f"classes x {crops['crop_num']} crops of {crops['multi_size']} px = {crops_per_step(config)} "
             f"crops/step from {config.crop_size} px images resized to {config.resize_size}; "
             f"{config.num_workers} loader workers; median [min-max] of {settings.repeats} rounds",
             f"train and model rows: amp={config.amp}, {resolve_amp(config.amp, device).describe()}",
             *results["notes"]]
    if set(settings.parts) & {"data", "train", "model"}:
        lines += ["", f"{'path':<34}{'data crops/s':>22}{'CPU ms/1k crops':>20}{'train step (s)':>24}"
                      f"{'data % of step':>18}{'waiting %':>16}"]
        for path, (_, label) in PATHS.items():
            data, train = results["paths"][path]["data"], results["paths"][path]["train"]
            lines.append(f"{label:<34}{_spread([d['crops_s'] for d in data]):>22}"
                         f"{_spread([d['cpu_ms_per_kcrop'] for d in data]):>20}"
                         f"{_spread([t['step_s'] for t in train], digits=3):>24}"
                         f"{_spread([t['data_share'] for t in train], 100, 1):>18}"
                         f"{_spread([t['wait_share'] for t in train], 100, 1):>16}")
        model = results["model"]
        lines.append(f"{'model only (preloaded batch)':<34}{_spread([m['crops_s'] for m in model]):>22}{'-':>20}"
                     f"{_spread([m['step_s'] for m in model], digits=3):>24}{'-':>18}{'-':>16}")
    lines += format_precision(results["precision"], device)
    trained = [(c["step_s"], r["step_s"]) for c, r in zip(results["paths"]["cached"]["train"],
                                                       results["paths"]["released"]["train"])]
    if trained:
        lines += ["", "training steps/s, cached / released, per round: "
                  + ", ".join(f"{released / cached:.2f}" for cached, released in trained),
                  f"training speedup: {statistics.median(released / cached for cached, released in trained):.2f}"]
    ratios = speedups(results)
    if ratios:
        lines += ["", "data path, cached / released, per round: crops/s "
                  + ", ".join(f"{r:.2f}" for r in ratios) + "; CPU time "
                  + ", ".join(f"{r:.2f}" for r in speedups(results, "cpu_ms_per_kcrop")),
                  f"speedup: {statistics.median(ratios):.2f}"]
    return "\n".join(lines)
