"""Trained models for evaluation: weights + preprocessing settings, loaders, one pass per list.

Shared by ``eval/cross_test.py``, ``eval/robustness.py`` and ``eval/predict.py``.
Preprocessing is SPEC section 4 for whole images: centre-crop non-square images to
``crop_size``, PIL bicubic resize to ``resize_size`` (then ``second_resize_size`` if
set), normalise to [-1, 1]; one forward pass; argmax. Settings are resolved as
``--set`` > the model's ``model.json`` sidecar > the config module, and class names
as sidecar/checkpoint > config (a class_num mismatch between config and weights is
an error).
"""
import dataclasses
import warnings
from typing import Dict, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from configs import generic_class_names, load_config
from configs.base import Config
from data.datasets import WholeImageDataset
from data.image_io import ImageLoadError, load_rgb
from data.preprocess import final_size
from engine.device import amp_dtype, resolve_device
from engine.evaluate import eval_loader, forward_pass
from engine.metrics import compute_metrics
from engine.checkpoint import load_model, use_config_input_filter

PREPROCESSING_KEYS = ("crop_size", "resize_size", "second_resize_size")
PIPELINES = ("pil", "batched")


@dataclasses.dataclass
class EvalSetup:
    """A model ready for evaluation and everything needed to feed it.

    Attributes:
        model: classifier in eval mode; forward x [N, 3, R, R] -> (logits [N, K], features).
        config: resolved config (preprocessing, batch size, workers, amp).
        class_names: K names; pipeline: ``pil`` (exact SPEC preprocessing, default)
            or ``batched`` (last resize as a torch tensor op on the device).
        notes: human-readable remarks on how settings were resolved (printed by the script).
    """
    model: torch.nn.Module
    config: Config
    class_names: List[str]
    device: torch.device
    model_path: str
    pipeline: str = "pil"
    notes: List[str] = dataclasses.field(default_factory=list)

    @property
    def class_num(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return final_size(self.config.resize_size, self.config.second_resize_size)

    @property
    def amp(self):
        return amp_dtype(self.config.amp, self.device)

    def preprocessing(self) -> dict:
        values = {key: getattr(self.config, key) for key in PREPROCESSING_KEYS}
        return {**values, "pipeline": self.pipeline}


def _has_names(names, class_num: int) -> bool:
    return bool(names) and len(names) == class_num and list(names) != generic_class_names(class_num)


def load_eval_setup(model_path: str, config_name: Optional[str] = None,
                    overrides: Sequence[str] = (), device: str = "auto",
                    pipeline: str = "pil", legend: Optional[Sequence[str]] = None) -> EvalSetup:
    """Load weights (released ``model.pth`` or ``checkpoint.pth``) with their settings.

    The one place that decides what a model needs at evaluation: config, preprocessing
    (``--set`` > model.json > config), input filter, device and class names (``legend`` >
    the model's non-generic names > the config's > ``class_0``...).

    Raises:
        ValueError: unreadable weights, unknown config, no config name anywhere, a config
            whose class_num differs from the weights' classifier, or a legend of another length.
    """
    if pipeline not in PIPELINES:
        raise ValueError(f"--pipeline must be one of {PIPELINES}, got {pipeline!r}")
    model = load_model(model_path)
    info = model.info
    name = config_name or info.get("config_name")
    if not name:
        raise ValueError(f"{model_path} has no model.json naming its config; pass --config_name "
                         f"(e.g. celeba, lsun, in_the_wild, toy)")
    config = load_config(name, overrides)
    use_config_input_filter(model, config.input_filter)
    if config.class_num != info["class_num"]:
        raise ValueError(f"config {name!r} has class_num={config.class_num} but the weights in "
                         f"{model_path} have {info['class_num']} outputs; pass the config the model "
                         f"was trained with (or --set class_num={info['class_num']})")
    notes = []
    config = _apply_sidecar_preprocessing(config, info, overrides, name, notes)
    if legend:
        if len(legend) != config.class_num:
            raise ValueError(f"--legend has {len(legend)} names but the model has {config.class_num} "
                             f"classes; give one name per class")
        names = list(legend)
    elif _has_names(info.get("class_names"), config.class_num):
        names = list(info["class_names"])
    elif _has_names(config.class_names, config.class_num):
        names = list(config.class_names)
    else:
        names = generic_class_names(config.class_num)
    device_name = device if device != "auto" else config.device
    torch_device = resolve_device(device_name)
    return EvalSetup(model.to(torch_device), config, names, torch_device, model_path, pipeline, notes)


def _apply_sidecar_preprocessing(config: Config, info: dict, overrides: Sequence[str],
                                 name: str, notes: list) -> Config:
    """Preprocessing from model.json unless given with --set; differences become notes."""
    explicit = {item.split("=", 1)[0].strip() for item in overrides}
    changes = {}
    for key in PREPROCESSING_KEYS:
        recorded = info.get(key)
        if recorded is None or key in explicit or recorded == getattr(config, key):
            continue
        changes[key] = int(recorded)
        notes.append(f"using {key}={recorded} from the model's model.json "
                     f"(config {name!r} says {getattr(config, key)})")
    return dataclasses.replace(config, **changes) if changes else config


def parse_methods(model_path: Optional[str], methods: Optional[Sequence[str]]) -> Dict[str, str]:
    """``--model_path M`` -> {"": M}; ``--methods a=M1 b=M2`` -> {"a": M1, "b": M2} (ordered)."""
    if bool(model_path) == bool(methods):
        raise ValueError("give either --model_path or --methods name=path ... (not both)")
    if model_path:
        return {"": model_path}
    parsed: Dict[str, str] = {}
    for item in methods:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--methods expects name=path, got {item!r}")
        if name in parsed:
            raise ValueError(f"--methods: name {name!r} given twice")
        parsed[name] = path
    return parsed


def build_loader(setup: EvalSetup, items: Sequence, perturb=None,
                 batch_size: Optional[int] = None) -> DataLoader:
    """In-order loader of whole images (items: [(path, label)]) with optional perturbation."""
    config = setup.config
    dataset = WholeImageDataset(items, config.crop_size, config.resize_size, config.second_resize_size,
                                pipeline=setup.pipeline, perturb=perturb, seed=config.seed)
    return eval_loader(dataset, batch_size or config.val_batch_size, config.num_workers, setup.device)


def run_items(setup: EvalSetup, items: Sequence, desc: str, perturb=None, progress: bool = True,
              batch_size: Optional[int] = None, features: bool = False) -> dict:
    """``engine.evaluate.forward_pass`` over ``items``; unreadable files quietly left out.

    Returns its arrays: labels, indices, logits [n, K], probs [n, K], preds, skipped (list
    indices), and with ``features`` the pooled features [n, D].
    """
    loader = build_loader(setup, items, perturb, batch_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="skipping unreadable test image")
        return forward_pass(setup.model, loader, setup.device, setup.image_size, amp=setup.amp,
                            features=features, progress=progress, desc=desc)


def score(outputs: dict, class_num: int) -> dict:
    """``compute_metrics`` of the readable images + ``n_skipped``; an all-unreadable list scores None."""
    if outputs["labels"].size == 0:
        metrics = {"acc": None, "f1": None, "recall": None, "per_class_recall": [None] * class_num,
                   "confusion": [[0] * class_num for _ in range(class_num)], "n_images": 0}
    else:
        metrics = compute_metrics(outputs["labels"], outputs["preds"], class_num)
    metrics["n_skipped"] = len(outputs["skipped"])
    return metrics


def unreadable_reason(path: str) -> str:
    """Why ``path`` cannot be used (decoding it again in this process)."""
    try:
        load_rgb(path)
    except ImageLoadError as error:
        return error.reason
    return "failed while loading (readable now: transient error?)"
