"""Python configuration modules: ``base`` holds every key; the others override.

``load_config("celeba", ["batch_size=4"])`` returns a validated ``Config``.
"""
import dataclasses
import math
import importlib
import types
import typing
from typing import Iterable, Optional

from configs.base import CHOICES, Config

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def valid_keys() -> list:
    return [f.name for f in dataclasses.fields(Config)]


def _field_types() -> dict:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in valid_keys()}


def _unknown_key_error(key: str, where: str) -> ValueError:
    return ValueError(f"unknown config key {key!r} in {where}; valid keys: "
                      + ", ".join(sorted(valid_keys())))


def parse_value(key: str, text: str):
    """Convert the string ``text`` to the declared type of ``key`` or raise ValueError."""
    types_ = _field_types()
    if key not in types_:
        raise _unknown_key_error(key, "--set")
    kind = types_[key]
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError
            return lowered in _TRUE
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if typing.get_origin(kind) is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--set {key}={text!r}: expected a value of type "
                         f"{getattr(kind, '__name__', kind)}") from None
    raise TypeError(f"config key {key!r} has an unsupported type {kind}")


def _check_type(key: str, value, where: str):
    kind = _field_types()[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = tuple if typing.get_origin(kind) is tuple else kind
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"{where}: {key} = {value!r} should be of type "
                         f"{getattr(expected, '__name__', expected)}")
    return tuple(value) if expected is tuple else value


def module_overrides(name: str) -> dict:
    """The keys assigned by ``configs/<name>.py`` (modules, classes, functions and _private skipped)."""
    try:
        module = importlib.import_module(f"configs.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"configs.{name}":
            raise
        raise ValueError(f"no config named {name!r}: expected a module configs/{name}.py") from None
    overrides = {}
    for key, value in vars(module).items():
        if key.startswith("_") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        if key not in valid_keys():
            raise _unknown_key_error(key, f"configs/{name}.py")
        overrides[key] = _check_type(key, value, f"configs/{name}.py")
    return overrides


def validate(config: Config) -> Config:
    for key, allowed in CHOICES.items():
        if getattr(config, key) not in allowed:
            raise ValueError(f"{key} = {getattr(config, key)!r}; choose one of {allowed}")
    if len(config.class_names) not in (0, config.class_num):
        raise ValueError(f"class_names has {len(config.class_names)} names but class_num is "
                         f"{config.class_num}; give one name per class (or none)")
    if config.whole_image and config.use_contrastive:
        raise ValueError("whole_image = True trains on one view per image, which leaves the contrastive "
                         "loss nothing to contrast; set use_contrastive = False as well")
    if not config.whole_image and config.multi_size > (config.second_resize_size or config.resize_size):
        raise ValueError(f"multi_size {config.multi_size} is larger than the resized image")
    for key, value in dataclasses.asdict(config).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} = {value!r} is not a finite number; give a finite {key}")
    for key, (low, high) in RANGES.items():
        value = getattr(config, key)
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"between {low} and {high}"
            raise ValueError(f"{key} = {value!r} is out of range: it must be {allowed}")
    for key in ("learning_rate", "temperature", "lr_gamma"):
        if getattr(config, key) <= 0:
            raise ValueError(f"{key} = {getattr(config, key)!r} is out of range: it must be > 0")
    if config.dropout >= 1:
        raise ValueError(f"dropout = {config.dropout!r} is out of range: it must be >= 0 and < 1")
    return config


# (smallest, largest or None) of the numeric settings; learning_rate, temperature, lr_gamma
# must also be > 0 and dropout < 1 (checked in ``validate``)
RANGES = {
    "seed": (0, None), "num_workers": (0, None), "image_cache_gb": (0, None), "class_num": (1, None),
    "width": (1, None), "proj_dim": (1, None), "dropout": (0, 1), "batch_size": (1, None),
    "val_batch_size": (1, None), "crop_size": (1, None), "resize_size": (1, None),
    "second_resize_size": (0, None), "multi_size": (1, None), "crop_num": (1, None),
    "train_aug_prob": (0, 1), "temperature": (0, None), "learning_rate": (0, None),
    "loss_weight_lr": (0, None), "lr_step_size": (1, None), "lr_gamma": (0, 1), "max_epochs": (1, None),
    "iters_per_epoch": (0, None), "early_stop_bar": (1, None), "save_interval": (1, None),
    "val_max_images": (0, None), "log_interval": (1, None), "bn_recalibrate_batches": (0, None),
    "pretrain_crop": (1, None), "pretrain_val_per_class": (1, None), "pretrain_images_per_label": (1, None),
}


def load_config(name: str, overrides: Optional[Iterable[str]] = None) -> Config:
    """Defaults <- ``configs/<name>.py`` <- ``key=value`` overrides, then validated."""
    values = dataclasses.asdict(Config())
    values.update(module_overrides(name))
    command_line = {}
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        command_line[key.strip()] = parse_value(key.strip(), text)
    values.update(command_line)
    if "class_names" not in command_line and len(values["class_names"]) not in (0, values["class_num"]):
        # class_num changed but no names given: fall back to generic names
        values["class_names"] = tuple(generic_class_names(values["class_num"]))
    config = Config(**values)
    return validate(config)


def generic_class_names(class_num: int) -> list:
    """``class_0 .. class_{K-1}``: the names of classes nobody named."""
    return [f"class_{k}" for k in range(class_num)]


def config_to_dict(config: Config) -> dict:
    """Plain dict (tuples as lists) for JSON and checkpoints."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
