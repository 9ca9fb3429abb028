"""The empirical study of GAN fingerprints (SPEC section 10; DNA-Det paper, section 3).

Train a small classifier on patches cut at *one* fixed position of every training image,
then measure its accuracy on test patches cut at every position of a grid. If the
traces the classifier relies on are the same everywhere in an image (the paper's claim
for architecture traces), accuracy stays flat across the grid; if they depend on the
region (the claim for weight/seed traces), it falls away from the training position.

Positions are the top-left corners ``(y, x)`` of ``patch``-px squares in the original
(un-resized) image, ``0, stride, 2*stride, ...`` while the patch fits. Patches are taken
from the raw pixels (no resizing), normalised to [-1, 1]. The classifier is
``models.SimpleCNN`` trained with cross-entropy (Adam), no augmentation, its BatchNorm
statistics recomputed exactly on the training patches at the end.
"""
import csv
import json
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from data.atomic import atomic_file
from data.image_io import ImageLoadError, load_rgb
from data.sampling import seeded_subset
from models import SimpleCNN, recalibrate_batchnorm


@dataclass
class StudySettings:
    """Hyperparameters of one study run (defaults sized for 64-px toy images on a CPU)."""
    patch_size: int = 16                      # side of every patch, in original pixels
    stride: int = 16                          # grid step between patch corners
    train_position: Tuple[int, int] = (0, 0)  # (y, x) corner of the training patches
    epochs: int = 8
    batch_size: int = 128
    width: int = 16                           # SimpleCNN base width
    learning_rate: float = 1e-3
    seed: int = 0
    balance: bool = True                      # cut every class to the smallest (seeded subset)


def balance_items(items: Sequence[Tuple[str, int]], seed: int) -> list:
    """Keep ``min_k count_k`` items of every class (a seeded subset, list order kept).

    Unbalanced classes would make the majority class's share the floor of the accuracy
    map; balanced ones make chance exactly 1/K everywhere.
    """
    smallest = min(np.unique([label for _, label in items], return_counts=True)[1])
    return [items[i] for i in seeded_subset(items, seed, per_class=int(smallest))]


def load_images(items: Sequence[Tuple[str, int]]) -> Tuple[torch.Tensor, torch.Tensor, List[str]]:
    """Decode every listed image: (uint8 [N, 3, H, W], labels [N], skipped paths).

    All images must share one size (the study compares pixel positions); an unreadable
    file is warned about, skipped and returned in ``skipped``.
    """
    arrays, labels, skipped = [], [], []
    for path, label in items:
        try:
            array = np.asarray(load_rgb(path))
        except ImageLoadError as error:
            warnings.warn(f"skipping unreadable image: {error}")
            skipped.append(path)
            continue
        if arrays and array.shape != arrays[0].shape:
            raise ValueError(f"{path!r} is {array.shape[1]}x{array.shape[0]} but the first image "
                             f"is {arrays[0].shape[1]}x{arrays[0].shape[0]}; the fingerprint study "
                             f"needs images of one size")
        arrays.append(array)
        labels.append(label)
    if not arrays:
        raise ValueError(f"none of the {len(items)} listed images is readable")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # [N, 3, H, W]
    return images, torch.tensor(labels, dtype=torch.long), skipped


def grid_offsets(size: int, patch: int, stride: int) -> List[int]:
    """Patch corners along one axis: 0, stride, ... while ``corner + patch <= size``."""
    if patch < 1 or stride < 1 or patch > size:
        raise ValueError(f"patch_size {patch} and stride {stride} must be >= 1 and the patch "
                         f"must fit the {size}-px image")
    return list(range(0, size - patch + 1, stride))


def crop_patches(images: torch.Tensor, y: int, x: int, patch: int) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float [N, 3, patch, patch] in [-1, 1], rows y.., columns x.."""
    if y < 0 or x < 0 or y + patch > images.shape[2] or x + patch > images.shape[3]:
        raise ValueError(f"patch at (y={y}, x={x}) of size {patch} leaves the "
                         f"{images.shape[2]}x{images.shape[3]} image")
    return images[:, :, y:y + patch, x:x + patch].float() / 127.5 - 1.0


def train_patch_classifier(images: torch.Tensor, labels: torch.Tensor, class_num: int,
                           settings: StudySettings, device: torch.device,
                           log: Callable[[str], None] = print) -> torch.nn.Module:
    """SimpleCNN trained with cross-entropy on the patches at ``settings.train_position``."""
    torch.manual_seed(settings.seed)
    y, x = settings.train_position
    patches = crop_patches(images, y, x, settings.patch_size)        # [N, 3, p, p]
    model = SimpleCNN(class_num, width=settings.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    order_rng = torch.Generator().manual_seed(settings.seed)
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(labels), generator=order_rng)
        total, correct = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            index = order[start:start + settings.batch_size]
            batch, target = patches[index].to(device), labels[index].to(device)
            logits = model(batch)[0]
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            correct += (logits.argmax(1) == target).sum().item()
        log(f"epoch {epoch}: train loss {total / len(order):.4f} acc {correct / len(order):.4f}")
    # precise BN: the momentum-averaged statistics lag the weights after few steps
    recalibrate_batchnorm(model, (patches[start:start + settings.batch_size].to(device)
                                  for start in range(0, len(patches), settings.batch_size)))
    return model.eval()


@torch.no_grad()
def accuracy_map(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 ys: Sequence[int], xs: Sequence[int], patch: int, device: torch.device,
                 batch_size: int = 256) -> np.ndarray:
    """Accuracy of ``model`` on the patches at every (y, x): [len(ys), len(xs)]."""
    model.eval()
    result = np.zeros((len(ys), len(xs)))
    for row, y in enumerate(ys):
        for col, x in enumerate(xs):
            correct = 0
            for start in range(0, len(labels), batch_size):
                batch = crop_patches(images[start:start + batch_size], y, x, patch).to(device)
                preds = model(batch)[0].argmax(1).cpu()
                correct += (preds == labels[start:start + batch_size]).sum().item()
            result[row, col] = correct / len(labels)
    return result


def summarise(acc_map: np.ndarray, train_cell: Tuple[int, int]) -> dict:
    """Accuracy at the training cell, elsewhere (mean, min), and by Chebyshev ring distance."""
    rows, cols = np.indices(acc_map.shape)
    ring = np.maximum(abs(rows - train_cell[0]), abs(cols - train_cell[1]))
    elsewhere = acc_map[ring > 0]
    return {"train_position_acc": float(acc_map[train_cell]),
            "elsewhere_mean_acc": float(elsewhere.mean()) if elsewhere.size else float("nan"),
            "elsewhere_min_acc": float(elsewhere.min()) if elsewhere.size else float("nan"),
            "acc_by_distance": {int(d): float(acc_map[ring == d].mean()) for d in np.unique(ring)}}


def run_study(train_items, test_items, class_names: Sequence[str], settings: StudySettings,
              device: torch.device, log: Callable[[str], None] = print) -> dict:
    """Train at one position, test on the grid; returns the map, its axes and a summary."""
    if settings.balance:
        train_items = balance_items(train_items, settings.seed)
        test_items = balance_items(test_items, settings.seed)
    train_images, train_labels, skipped_train = load_images(train_items)
    test_images, test_labels, skipped_test = load_images(test_items)
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"train images are {tuple(train_images.shape[2:])} but test images are "
                         f"{tuple(test_images.shape[2:])}")
    ys = grid_offsets(test_images.shape[2], settings.patch_size, settings.stride)
    xs = grid_offsets(test_images.shape[3], settings.patch_size, settings.stride)
    y, x = settings.train_position
    if y not in ys or x not in xs:
        raise ValueError(f"train_position {settings.train_position} is not on the grid "
                         f"(rows {ys}, columns {xs}); pick corners from those")
    log(f"{len(train_labels)} train / {len(test_labels)} test images of "
        f"{test_images.shape[3]}x{test_images.shape[2]} px, {len(class_names)} classes; "
        f"{settings.patch_size}-px patches, grid {len(ys)}x{len(xs)}, training at (y={y}, x={x})")
    model = train_patch_classifier(train_images, train_labels, len(class_names), settings, device, log)
    acc_map = accuracy_map(model, test_images, test_labels, ys, xs, settings.patch_size, device)
    train_cell = (ys.index(y), xs.index(x))
    return {"acc_map": acc_map, "ys": ys, "xs": xs, "train_cell": train_cell,
            "summary": summarise(acc_map, train_cell), "class_names": list(class_names),
            "chance": 1.0 / len(class_names), "settings": asdict(settings),
            "n_train": len(train_labels), "n_test": len(test_labels),
            "skipped": skipped_train + skipped_test}


def write_outputs(result: dict, out_dir: str, task: str) -> dict:
    """Write ``{task}_acc_map.csv``, ``{task}_acc_map.png`` and ``{task}_summary.json``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {kind: os.path.join(out_dir, f"{task}_{kind}")
             for kind in ("acc_map.csv", "acc_map.png", "summary.json")}
    with atomic_file(paths["acc_map.csv"], newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["y\\x"] + list(result["xs"]))
        for y, row in zip(result["ys"], result["acc_map"]):
            writer.writerow([y] + [f"{value:.4f}" for value in row])
    plot_map(result, paths["acc_map.png"], task)
    record = {key: value for key, value in result.items() if key != "acc_map"}
    record["acc_map"] = result["acc_map"].tolist()
    with atomic_file(paths["summary.json"]) as handle:
        json.dump(record, handle, indent=2)
    return paths


TABLE_COLUMNS = ("train_position_acc", "elsewhere_mean_acc", "elsewhere_min_acc", "drop")


def table_row(label: str, seed: int, summary: dict) -> dict:
    """One run of the study as a row of the seed table (accuracies in %; ``drop`` = accuracy at
    the training position minus the mean elsewhere, in points)."""
    row = {"label": label, "seed": seed, **{key: 100 * summary[key] for key in TABLE_COLUMNS[:3]}}
    row["drop"] = row["train_position_acc"] - row["elsewhere_mean_acc"]
    return row


def write_seed_table(stem: str, label: str, rows: Sequence[dict], command: str) -> None:
    """Merge ``rows`` (one label) into the table ``stem``.json and rewrite ``stem``.md: per label
    n, mean ± sd [min-max] of each column over its seeds. The label's earlier rows are replaced."""
    from analysis.seeds import spread_cell, summary   # n, mean, sd, min, max
    try:
        with open(stem + ".json", encoding="utf-8") as handle:
            table = json.load(handle)
    except (OSError, ValueError):
        table = {"rows": [], "commands": {}}
    table["rows"] = [r for r in table["rows"] if r["label"] != label] + list(rows)
    table["commands"][label] = command
    labels = list(dict.fromkeys(r["label"] for r in table["rows"]))
    lines = ["# GAN fingerprints on the toy zoo: accuracy at the training position and elsewhere, over seeds", "",
             "Made by (one command per row):", ""] + [f"- {name}: `{table['commands'][name]}`" for name in labels]
    lines += ["", "Accuracy in %: mean ± sample standard deviation [min-max] over the study's seeds (n); "
                  "drop = training position minus the mean elsewhere, in points.", "",
              "| study | n | " + " | ".join(TABLE_COLUMNS) + " |", "|---|---|" + "---|" * len(TABLE_COLUMNS)]
    for name in labels:
        runs = [r for r in table["rows"] if r["label"] == name]
        cells = [spread_cell(summary([r[column] for r in runs])) for column in TABLE_COLUMNS]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    with atomic_file(stem + ".md") as handle:
        handle.write("\n".join(lines) + "\n")
    with atomic_file(stem + ".json") as handle:
        json.dump(table, handle, indent=1)


def plot_map(result: dict, path: str, task: str) -> None:
    """Heat map of the accuracy grid, values written in, the training cell outlined."""
    from matplotlib.patches import Rectangle

    from analysis.figures import plt, save_figure   # matplotlib (Agg backend) only when drawing

    acc_map, (row, col) = result["acc_map"], result["train_cell"]
    figure, axis = plt.subplots(figsize=(3.6, 3.2), dpi=90)
    image = axis.imshow(acc_map, vmin=0.0, vmax=1.0, cmap="viridis")
    for (r, c), value in np.ndenumerate(acc_map):
        axis.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7,
                  color="black" if value > 0.6 else "white")
    axis.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    axis.set_xticks(range(len(result["xs"])), result["xs"], fontsize=7)
    axis.set_yticks(range(len(result["ys"])), result["ys"], fontsize=7)
    axis.set_xlabel("patch x (px)", fontsize=8)
    axis.set_ylabel("patch y (px)", fontsize=8)
    axis.set_title(f"{task}: {len(result['class_names'])} classes, chance {result['chance']:.2f}\n"
                   f"red = training position", fontsize=8)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
    figure.tight_layout()
    save_figure(figure, path)
