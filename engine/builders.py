"""Build what training needs from a Config: datasets, loaders, the training model, the optimiser."""
from concurrent.futures import ThreadPoolExecutor
from typing import List, Tuple

import torch
from torch.utils.data import DataLoader

from configs.base import Config
from data.annotations import group_by_label, read_annotations
from data.batched import CachedBalancedMultiCropDataset, CropCollate
from data.datasets import (BalancedMultiCropDataset, TransformDataset, TransformEvalDataset,
                           WholeImageDataset, collate_squares)
from data.image_io import check_readable
from data.preprocess import final_size
from data.sampling import ShardedShuffleSampler, seeded_subset
from models import TrainModel, build_model


def scan_items(items: List[Tuple[str, int]], threads: int = 8) -> Tuple[list, list]:
    """Split items into (readable, [(path, reason)]): every image is decoded once
    (``check_readable``: truncated files, the pixel cap), on ``threads`` threads (Pillow
    releases the GIL while decoding; on network storage the reads overlap)."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        reasons = list(pool.map(check_readable, [path for path, _ in items]))
    good = [item for item, reason in zip(items, reasons) if not reason]
    bad = [(item[0], reason) for item, reason in zip(items, reasons) if reason]
    return good, bad


def crop_settings(config: Config) -> dict:
    """Geometry of the training views; whole-image training is one crop covering the image."""
    size = final_size(config.resize_size, config.second_resize_size)
    if config.whole_image:
        return {"multi_size": size, "crop_num": 1}
    return {"multi_size": config.multi_size, "crop_num": config.crop_num}


def build_train_dataset(config: Config, items: list, stage: str, transforms=None, augment=None):
    """Stage ``pretrain``: TransformDataset; stage ``main``: BalancedMultiCropDataset.

    With the ``batched`` pipeline stage 2 uses ``CachedBalancedMultiCropDataset``: call
    ``preload_images`` to decode every image once and keep it in memory as uint8.
    """
    length = config.iters_per_epoch * config.batch_size
    crops = crop_settings(config)
    if stage == "pretrain":
        return TransformDataset([p for p, _ in items], transforms, config.pretrain_crop,
                                config.resize_size, pipeline=config.data_pipeline,
                                seed=config.seed, length=length, multiscale=config.pretrain_multiscale,
                                images_per_label=config.pretrain_images_per_label, **crops)
    groups = group_by_label(items, config.class_num)
    cached = config.data_pipeline == "batched"
    dataset_class = CachedBalancedMultiCropDataset if cached else BalancedMultiCropDataset
    return dataset_class(groups, config.crop_size, config.resize_size, config.second_resize_size,
                         pipeline=config.data_pipeline, seed=config.seed, length=length,
                         augment=augment, **crops)




def preload_images(dataset, config: Config) -> str:
    """Fill the dataset's uint8 image cache if it has one; returns a line for the log ('' if none)."""
    if not hasattr(dataset, "preload"):
        return ""
    limit = int(config.image_cache_gb * (1 << 30))
    stats = dataset.preload(limit, threads=max(1, config.num_workers))
    line = (f"decoded {stats['images']} training images once into memory "
            f"({stats['bytes'] / 2 ** 20:.0f} MiB, {stats['seconds']:.1f} s)")
    if not stats["complete"]:
        line += f"; cache limit {config.image_cache_gb:g} GiB (image_cache_gb) reached, the rest is decoded per item"
    return line


def prepare_model_for_device(model: torch.nn.Module, config: Config, device: torch.device,
                             compile_on_cpu: bool = False, compile_now: bool = True) -> str:
    """channels_last parameters, cuDNN autotuning on CUDA and, with ``compile``, an in-place
    ``torch.compile`` of ``model.net`` (see ``compile_network``).

    channels_last (NHWC) applies on every device: on CUDA for the tensor cores, on CPU
    because oneDNN's convolutions are faster in it (measured: 8-16% a training step, fp32
    and bf16; docs/performance.md). On CUDA ``cudnn.benchmark`` is switched on: the
    training crops have one fixed size, so each convolution's fastest algorithm is chosen
    once. ``compile_now=False`` leaves compiling to the caller, which must call
    ``compile_network`` after wrapping the model for DDP (SyncBatchNorm conversion replaces
    modules; compiling first would compile the wrong graph and recompile).
    Returns a note for the log, or ''.
    """
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return compile_network(model, config, device, compile_on_cpu) if compile_now else ""


def compile_network(model: torch.nn.Module, config: Config, device: torch.device,
                    compile_on_cpu: bool = False) -> str:
    """With ``compile``: ``torch.compile`` ``model.net`` in place (CUDA only, a note for the log
    otherwise, unless ``compile_on_cpu``: the tests use it to run that path on CPU).
    ``nn.Module.compile`` keeps parameter names, so checkpoints are unchanged."""
    if not config.compile:
        return ""
    if device.type != "cuda" and not compile_on_cpu:
        return "compile=True ignored: torch.compile is used on CUDA only"
    model.net.compile()
    return "compile=True: the network is compiled during its first steps (slower while it compiles)"


def build_val_dataset(config: Config, items: list, stage: str, transforms=None):
    if stage == "pretrain":
        return TransformEvalDataset([p for p, _ in items], transforms, config.pretrain_crop,
                                    config.resize_size, pipeline=config.data_pipeline,
                                    seed=config.seed + 1,
                                    length=config.pretrain_val_per_class * len(transforms))
    items = [items[i] for i in seeded_subset(items, config.seed, total=config.val_max_images)]
    return WholeImageDataset(items, config.crop_size, config.resize_size, config.second_resize_size,
                             pipeline=config.data_pipeline)


def train_loader(dataset, config: Config, epoch: int, device: torch.device, dist=None,
                 persistent: bool = False) -> DataLoader:
    """Shuffled loader whose order depends only on (seed, epoch): resumable and reproducible.

    Under torchrun each rank loads its slice of every global batch (see ``ShardedShuffleSampler``).
    With the batched pipeline on CPU the loader (its workers) also resizes, crops and
    normalises each batch (``CropCollate``); on CUDA that happens on the GPU in the step.
    ``persistent``: the workers are started once and kept; move the loader to another
    epoch with ``set_loader_epoch`` (the sampler hands the epoch to the workers with each key).
    """
    rank, world = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the "
                         f"{world} processes (it is the global batch)")
    sampler = ShardedShuffleSampler(len(dataset), config.batch_size, rank, world, seed=config.seed)
    collate = collate_squares             # the fast path's squares may differ in side
    if config.data_pipeline == "batched" and device.type == "cpu":
        crops = crop_settings(config)     # CPU training: batched views made by the loader
        collate = CropCollate(final_size(config.resize_size, config.second_resize_size), crops["multi_size"])
    loader = DataLoader(dataset, batch_size=config.batch_size // world, sampler=sampler,
                        num_workers=config.num_workers, drop_last=True, collate_fn=collate,
                        pin_memory=device.type == "cuda",
                        persistent_workers=persistent and config.num_workers > 0)
    set_loader_epoch(loader, epoch)
    return loader


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Point a ``train_loader`` at ``epoch``: its shuffle and every item's random draws."""
    loader.dataset.set_epoch(epoch)
    loader.sampler.set_epoch(epoch)


def read_list(path: str, config: Config, stage: str) -> list:
    if stage == "pretrain":
        return read_annotations(path, with_labels=False)
    return read_annotations(path, class_num=config.class_num)


def build_train_model(config: Config) -> TrainModel:
    """The config's network (``models.build_model``) with the projection head and the automatic
    loss weights when ``use_contrastive`` (validation refuses it with ``whole_image``)."""
    backbone = build_model(config.method, config.class_num, width=config.width,
                           dropout=config.dropout, input_filter=config.input_filter)
    return TrainModel(backbone, config.use_contrastive, config.proj_dim)


def build_optimizer(model: TrainModel, config: Config):
    """Adam on the network (lr) and on the loss weights (loss_weight_lr); per-iteration StepLR."""
    groups = [{"params": list(model.net.parameters()), "lr": config.learning_rate}]
    if model.loss_weights is not None:
        groups.append({"params": list(model.loss_weights.parameters()), "lr": config.loss_weight_lr})
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_size,
                                                gamma=config.lr_gamma)
    return optimizer, scheduler


def build_augment(config: Config):
    """Random post-processing for robustness training (``train_aug``), else None.

    With probability ``train_aug_prob`` an image gets one perturbation of
    ``data.postprocess`` at one of its levels, both drawn uniformly.
    """
    if not config.train_aug:
        return None
    from data.postprocess import PERTURBATIONS, apply_perturbation
    names = sorted(PERTURBATIONS)

    def augment(image, rng):
        if rng.random() >= config.train_aug_prob:
            return image
        name = names[int(rng.integers(len(names)))]
        levels = PERTURBATIONS[name].levels
        return apply_perturbation(name, image, levels[int(rng.integers(len(levels)))], rng)
    return augment
