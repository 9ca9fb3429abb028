"""Checkpoints, written atomically and read with ``weights_only=True`` (STYLE rule 9).

Two tiers: the versioned resume checkpoint (``checkpoint.pth``) and the best
weights as a plain state_dict in the released DNA-Det format (``model.pth``)
with a ``model.json`` sidecar naming method, classes and width.
"""
import os
import random

import numpy as np
import torch

from models.loading import CHECKPOINT_FORMAT, write_sidecar

CHECKPOINT_VERSION = 1


def atomic_save(obj, path: str) -> None:
    """``torch.save`` through a temporary file and a rename: never a half-written file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def capture_rng() -> dict:
    """Python, NumPy and torch RNG states as plain tensors/lists (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_py = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "python": {"version": version, "internal": list(internal), "gauss": gauss_py}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["gauss"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, **state) -> None:
    """Write the resume checkpoint: model, optimizer, scheduler, epoch, best metric, RNG, config."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "rng": capture_rng()}
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
    """Best/snapshot weights: the plain backbone state_dict (released format) + sidecar."""
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    atomic_save(state, path)
    write_sidecar(path, info)
