"""Python configuration modules: ``base`` holds every key; the others override.

``load_config("celeba", ["batch_size=4"])`` returns a validated ``Config``.
"""
import dataclasses
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
    if not config.whole_image and config.multi_size > (config.second_resize_size or config.resize_size):
        raise ValueError(f"multi_size {config.multi_size} is larger than the resized image")
    for key in ("batch_size", "class_num", "crop_num", "multi_size", "resize_size", "max_epochs"):
        if getattr(config, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(config, key)}")
    return config


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
        values["class_names"] = tuple(f"class_{k}" for k in range(values["class_num"]))
    config = Config(**values)
    return validate(config)


def config_to_dict(config: Config) -> dict:
    """Plain dict (tuples as lists) for JSON and checkpoints."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
