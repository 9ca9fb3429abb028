"""Grad-CAM (Selvaraju et al., ICCV 2017) on a named layer (paper Figure 6).

For an image x and a target class t, with A = the layer's activations [C, h, w]:
    w_c = mean over (i, j) of d logit_t / d A_c(i, j)
    cam = ReLU(sum_c w_c A_c)                        -> [h, w]
then bilinear upsampling to the input size and division by the map's maximum, so the
map lies in [0, 1] (a map that is zero everywhere stays zero). The target is the
predicted class unless given.

Default layer ``main.3.main.2``: the LeakyReLU of the second stage's keep block of
``SimpleCNN`` (128 channels at w = 64, stride 4), SPEC section 9. Any module of
``model.named_modules()`` with a 4-D output works.
"""
import os
import re
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data.sampling import seeded_subset
from engine.evaluate import ready_batches
from engine.inference import EvalSetup, build_loader

DEFAULT_LAYER = "main.3.main.2"


def layer_names(model: nn.Module) -> List[str]:
    """Every named submodule (the valid ``--layer_name`` values), in model order."""
    return [name for name, _ in model.named_modules() if name]


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``; ValueError listing the valid names otherwise."""
    modules = dict(model.named_modules())
    if not name or name not in modules:
        raise ValueError(f"no layer named {name!r} in {type(model).__name__}; valid layer names: "
                         + ", ".join(layer_names(model)))
    return modules[name]


def grad_cam(model: nn.Module, images: torch.Tensor, layer_name: str = DEFAULT_LAYER,
             targets: Optional[torch.Tensor] = None):
    """Grad-CAM maps of a batch.

    Args:
        images: [N, 3, H, W] normalised network inputs.
        targets: [N] class indices, or None for the predicted classes.
    Returns:
        (cams [N, H, W] float in [0, 1], logits [N, K], targets [N]).
    The model is put in eval mode (and back in its previous mode afterwards). A
    forward hook keeps the layer's activations and hooks their gradient; both hooks
    are removed before returning, and no parameter's ``.grad`` is touched.
    """
    layer = find_layer(model, layer_name)
    store = {}

    def keep_activation(_module, _inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"layer {layer_name!r} outputs {shape}; Grad-CAM needs a "
                             f"convolutional layer with [N, C, h, w] output")
        store["activation"] = output.detach().clone()  # the next op may modify it in place
        output.register_hook(lambda grad: store.__setitem__("gradient", grad.detach()))

    was_training = model.training
    model.eval()
    handle = layer.register_forward_hook(keep_activation)
    try:
        with torch.enable_grad():
            inputs = images.detach().requires_grad_(True)
            logits = model(inputs)[0]
            if targets is None:
                targets = logits.argmax(dim=1)
            targets = torch.as_tensor(targets, device=logits.device).long()
            score = logits.gather(1, targets[:, None]).sum()  # images are independent in eval mode
            torch.autograd.grad(score, inputs)
    finally:
        handle.remove()
        model.train(was_training)
    if "activation" not in store or "gradient" not in store:
        raise ValueError(f"layer {layer_name!r} is not on the path to the logits: no gradient reached it")
    activation, gradient = store["activation"].float(), store["gradient"].float()
    weights = gradient.mean(dim=(2, 3), keepdim=True)                  # [N, C, 1, 1]
    cams = F.relu((weights * activation).sum(dim=1, keepdim=True))     # [N, 1, h, w]
    cams = F.interpolate(cams, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return normalise_maps(cams[:, 0]), logits.detach(), targets


def normalise_maps(cams: torch.Tensor) -> torch.Tensor:
    """[N, H, W] non-negative maps divided by their maxima (all-zero maps stay zero)."""
    peak = cams.flatten(1).amax(dim=1).clamp_min(torch.finfo(cams.dtype).tiny)
    return (cams.clamp_min(0) / peak[:, None, None]).clamp_(0.0, 1.0)


def to_uint8_images(images: torch.Tensor) -> np.ndarray:
    """Normalised [N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] for display."""
    pixels = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return pixels.byte().permute(0, 2, 3, 1).numpy()


def iter_gradcam(setup: EvalSetup, items: Sequence, layer_name: str = DEFAULT_LAYER,
                 target: Optional[int] = None, skipped: Optional[list] = None):
    """Yield ``(position, picture uint8 [H, W, 3], cam [H, W], label, pred)`` per readable item.

    Images are preprocessed like evaluation (``engine.inference.build_loader`` and
    ``ready_batches``). Paths of unreadable items are appended to ``skipped``.
    """
    model, device = setup.model, setup.device
    unreadable: list = []
    for images, labels, indices in ready_batches(build_loader(setup, items), device, setup.image_size,
                                                 unreadable):
        if skipped is not None:
            skipped += [items[i][0] for i in unreadable]
        unreadable.clear()
        targets = None if target is None else torch.full((len(images),), target, device=device)
        cams, logits, _ = grad_cam(model, images, layer_name, targets)
        preds = logits.argmax(dim=1).cpu().tolist()
        yield from zip(indices.tolist(), to_uint8_images(images), cams.cpu().numpy(),
                       labels.tolist(), preds)
    if skipped is not None:
        skipped += [items[i][0] for i in unreadable]


def file_safe(name: str) -> str:
    """A class name usable in a file name (anything but letters, digits, ``-`` and ``.`` -> ``_``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


def run_gradcam(setup: EvalSetup, items: Sequence, out_dir: str, layer_name: str = DEFAULT_LAYER,
                target: Optional[int] = None, per_class: int = 4, sheet_per_class: int = 3) -> dict:
    """Grad-CAM of ``per_class`` items of every class (``data.sampling.seeded_subset``
    with the config's seed; 0 = all), saved under ``out_dir``; returns a summary dict.
    Class names are the setup's.

    Per image: ``{index:05d}_true-{name}_pred-{name}_{input|heatmap|overlay}.png``
    (index = position in ``items``), and ``contact_sheet.png`` with up to
    ``sheet_per_class`` images of every true class. Summary: ``n_images``, ``n_skipped``,
    ``skipped`` (paths), ``n_correct``, ``files`` (written PNGs), ``sheet`` (its path).
    """
    from analysis import figures  # matplotlib only when drawing
    class_names = setup.class_names
    find_layer(setup.model, layer_name)  # fail before reading any image
    if target is not None and not 0 <= target < len(class_names):
        raise ValueError(f"--target {target} outside 0..{len(class_names) - 1}")
    positions = seeded_subset(items, setup.config.seed, per_class=per_class)
    chosen = [items[p] for p in positions]
    summary = {"n_images": 0, "n_correct": 0, "skipped": [], "files": []}
    sheet = {}
    for index, picture, cam, label, pred in iter_gradcam(setup, chosen, layer_name, target, summary["skipped"]):
        true_name, pred_name = class_names[label], class_names[pred]
        stem = os.path.join(out_dir, f"{positions[index]:05d}_true-{file_safe(true_name)}"
                                     f"_pred-{file_safe(pred_name)}")
        panels = figures.gradcam_panels(picture, cam)
        summary["files"] += [figures.save_rgb(panel, f"{stem}_{kind}.png") for kind, panel in panels.items()]
        summary["n_images"] += 1
        summary["n_correct"] += int(label == pred)
        if len(sheet.setdefault(label, [])) < sheet_per_class:
            sheet[label].append((picture, panels["overlay"], f"true {true_name}\npred {pred_name}"))
    summary["n_skipped"] = len(summary["skipped"])
    if summary["n_images"] == 0:
        raise ValueError(f"none of the {len(chosen)} chosen images could be read")
    rows = [(class_names[label], sheet[label]) for label in sorted(sheet)]
    title = f"Grad-CAM at {layer_name}" + (f", target {class_names[target]}" if target is not None else "")
    summary["sheet"] = figures.save_contact_sheet(rows, os.path.join(out_dir, "contact_sheet.png"), title)
    return summary
