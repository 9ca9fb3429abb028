"""Weight files: the one owner of their formats, read and written here only (STYLE rule 9).

Two files exist:
- ``model.pth``: a plain state_dict in the authors' released format (their published
  weights load unchanged), with a sidecar ``model.json`` written by this project (method,
  class names, width, preprocessing, input filter);
- ``checkpoint.pth``: this project's versioned resume checkpoint, a dict whose ``model``
  entry holds the training model's state (the classifier inside it in the released key
  format), plus optimiser, scheduler, scaler, counters and config.
Everything is read with ``torch.load(weights_only=True)`` (a file from an untrusted source
cannot run code) and written atomically (a temporary file and a rename).
"""
import json
import os
from typing import Optional, Tuple

import torch
from torch import nn

from configs import generic_class_names
from data.atomic import atomic_file, atomic_write
from models import HEAD_KEYS, build_model

CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "dnadet-checkpoint", 1


def atomic_save(obj, path: str) -> None:
    """``torch.save`` through a temporary file and a rename: never a half-written file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_checkpoint(path: str, **state) -> None:
    """Write the resume checkpoint: model, optimizer, scheduler, epoch, best metric, config.

    No random-generator state: every random draw of an epoch is seeded from
    (seed, epoch) (model dropout, sampler order, dataset crops), so the epoch number
    alone restores it.
    """
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
    payload.update(state)
    atomic_save(payload, path)


def load_checkpoint(path: str) -> dict:
    """Read a resume checkpoint safely; a wrong format or version is a clear error."""
    if not os.path.isfile(path):
        raise ValueError(f"no checkpoint to resume from at {path!r}; start without --resume")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read checkpoint {path!r}: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r} is not a DNA-Det resume checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path!r} has checkpoint version {payload.get('version')}, "
                         f"this code reads version {CHECKPOINT_VERSION}")
    return payload


def save_released_weights(backbone: torch.nn.Module, path: str, info: dict) -> None:
    """Best/snapshot weights: the plain backbone state_dict (released format) + sidecar.

    Raises ValueError, writing nothing, when a weight or statistic is NaN or infinite: a
    diverged network is never saved as a model.
    """
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"not saving {path}: {len(bad)} tensor(s) hold NaN or infinite values "
                         f"(e.g. {bad[0]}); training diverged. Lower learning_rate or use amp=off, "
                         f"then resume from the last checkpoint with --resume")
    atomic_save(state, path)
    write_sidecar(path, info)


def write_sidecar(path: str, info: dict) -> None:
    """Write ``model.json`` next to ``model.pth`` atomically."""
    with atomic_file(os.path.splitext(path)[0] + ".json") as handle:
        json.dump(info, handle, indent=2)


def checkpoint_backbone(blob: dict) -> dict:
    """The classifier's state_dict inside a resume checkpoint's training-model weights
    (``net.backbone.*`` with a projection head, else ``net.*``); checkpoints written before
    the weights were stored once also hold it as ``backbone``."""
    if "backbone" in blob:
        return dict(blob["backbone"])
    model = blob["model"]
    prefix = "net.backbone." if any(key.startswith("net.backbone.") for key in model) else "net."
    return {key[len(prefix):]: value for key, value in model.items() if key.startswith(prefix)}


def read_state_dict(path: str) -> Tuple[dict, dict]:
    """Return (classifier state_dict, info) from a released model.pth or a checkpoint.

    ``info`` holds what is known besides weights: method, class_names, width (and, where
    this project wrote the file, the preprocessing sizes and input_filter).
    """
    if not os.path.isfile(path):
        raise ValueError(f"model file not found: {path!r}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors, truncated files, code-carrying pickles
        raise ValueError(f"cannot load {path!r} as weights (weights_only=True): {error}") from None
    if isinstance(blob, dict) and blob.get("format") == CHECKPOINT_FORMAT:
        state = checkpoint_backbone(blob)
        config = blob.get("config", {})
        info = {"method": config.get("method", "dnadet"), "class_names": blob.get("class_names"),
                "width": config.get("width"), "source": "checkpoint",
                "config_name": blob.get("config_name")}
        for key in ("crop_size", "resize_size", "second_resize_size"):
            if key in config:
                info[key] = config[key]
        # a checkpoint from before input_filter existed was trained on raw input
        info["input_filter"] = config.get("input_filter", "none")
        return state, info
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise ValueError(f"{path!r} is neither a state_dict nor a DNA-Det checkpoint")
    info = {"method": "dnadet", "class_names": None, "width": None, "source": "state_dict"}
    sidecar = os.path.splitext(path)[0] + ".json"
    if os.path.isfile(sidecar):
        with open(sidecar, encoding="utf-8") as handle:
            info.update(json.load(handle))
        info.setdefault("input_filter", "none")   # a sidecar from before input_filter: raw input
    return dict(blob), info


def _infer_shape(state: dict, info: dict, class_num: Optional[int]) -> Tuple[int, int]:
    head = state.get(HEAD_KEYS[0])
    if head is None:
        candidates = [k for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
        if not candidates:
            raise ValueError("cannot infer class_num: no linear classifier weight in the state_dict")
        head = state[candidates[-1]]
    inferred = head.shape[0]
    if class_num is not None and class_num != inferred:
        raise ValueError(f"class_num={class_num} but the weights' classifier has {inferred} outputs")
    first = state.get("main.0.main.0.weight")
    width = info.get("width") or (first.shape[0] if first is not None else 64)
    return inferred, int(width)


def load_model(path: str, class_num: Optional[int] = None, device="cpu") -> nn.Module:
    """Load a classifier in eval mode from a released model.pth or this project's checkpoint.

    ``class_num`` is inferred from the classifier when not given (and checked when given).
    The returned module carries ``model.info`` (method, class_names, width, source).
    Loading is strict: a missing or unexpected key is an error.
    """
    state, info = read_state_dict(path)
    class_num, width = _infer_shape(state, info, class_num)
    # weights without a record of their input filter (a bare state_dict without model.json, like
    # the authors' model.pth) take raw input unless the caller's config says otherwise
    # (see use_config_input_filter); this project's checkpoints and sidecars always record it
    info["input_filter_recorded"] = bool(info.get("input_filter"))
    info["input_filter"] = info.get("input_filter") or "none"
    model = build_model(info.get("method") or "dnadet", class_num, width=width,
                        input_filter=info["input_filter"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"weights in {path!r} do not fit a {info.get('method')} model with "
                         f"{class_num} classes and width {width}: {error}") from None
    info["class_num"], info["width"] = class_num, width
    if not info.get("class_names") or len(info["class_names"]) != class_num:
        info["class_names"] = generic_class_names(class_num)
    model.info = info
    return model.to(device).eval()


def use_config_input_filter(model: nn.Module, input_filter: str) -> None:
    """Give a model whose file records no input filter the config's (a recorded one wins).

    A bare state_dict of a model trained with ``input_filter=highpass`` carries no trace of
    it; the config it is evaluated with (``--config_name toy``) supplies it.
    """
    info = getattr(model, "info", {})
    if info.get("input_filter_recorded") or not hasattr(model, "set_input_filter"):
        return
    model.set_input_filter(input_filter)
    info["input_filter"] = input_filter


def load_backbone_for_finetune(model: nn.Module, path: str) -> list:
    """Stage 2 init: copy every stage-1 weight except the classifier head, asserting that.

    Returns the skipped keys, which are exactly ``HEAD_KEYS`` (their shape depends
    on the number of classes). Anything else missing or unexpected is an error.
    """
    state, info = read_state_dict(path)
    source_filter = info.get("input_filter") or "none"
    target_filter = getattr(model, "input_filter", "none")
    if source_filter != target_filter:
        raise ValueError(f"stage-1 weights {path!r} were trained with input_filter={source_filter!r} "
                         f"but this model has input_filter={target_filter!r}; pre-train with the "
                         f"same input_filter (--set input_filter={target_filter}) or change this one")
    kept = {k: v for k, v in state.items() if k not in HEAD_KEYS}
    result = model.load_state_dict(kept, strict=False)
    skipped = sorted(result.missing_keys)
    if result.unexpected_keys or skipped != sorted(HEAD_KEYS):
        raise ValueError(f"stage-1 weights {path!r} do not match the backbone: missing "
                         f"{result.missing_keys}, unexpected {result.unexpected_keys}; "
                         f"only {list(HEAD_KEYS)} may differ")
    return skipped
