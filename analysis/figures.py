"""Drawing the visualisation figures (matplotlib, Agg backend; OpenCV colour maps).

- ``save_tsne_figure``: one or two t-SNE scatter panels, one colour per class, a
  legend with the class names (paper Figure 1).
- ``gradcam_panels`` / ``save_rgb``: input, heat map and overlay images (Figure 6).
- ``save_contact_sheet``: a grid of a few inputs and overlays per class.
- ``save_embedding_csv``: the 2-D embedding as ``path,label,x,y``.
"""
import csv
import os
from typing import Dict, List, Sequence, Tuple

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from data.atomic import atomic_file  # noqa: E402

Panel = Tuple[np.ndarray, np.ndarray, str]  # (xy [n, 2], labels [n], title)


def class_colours(class_num: int) -> List[tuple]:
    """Distinct colours: tab10 for up to 10 classes, tab20 up to 20, else a hue wheel."""
    if class_num <= 10:
        return [plt.get_cmap("tab10")(k) for k in range(class_num)]
    if class_num <= 20:
        return [plt.get_cmap("tab20")(k) for k in range(class_num)]
    return [plt.get_cmap("hsv")(k / class_num) for k in range(class_num)]


def save_tsne_figure(panels: Sequence[Panel], class_names: Sequence[str], path: str,
                     dpi: int = 120) -> str:
    """Scatter plots side by side, colour = true class; returns ``path``.

    Marker area shrinks with the number of points (30 for a few dozen, 4 for
    thousands). The legend (one entry per class name) goes below the panels, so both
    panels of ``--compare`` share it.
    """
    colours = class_colours(len(class_names))
    marker_size = float(np.clip(20000 / max(1, len(panels[0][0])), 4, 30))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.6), squeeze=False)
    for axis, (xy, labels, title) in zip(axes[0], panels):
        for label, name in enumerate(class_names):
            chosen = labels == label
            if chosen.any():
                axis.scatter(xy[chosen, 0], xy[chosen, 1], s=marker_size, color=colours[label],
                             label=name, alpha=0.8, linewidths=0)
        axis.set_title(title, fontsize=11)
        axis.set_xticks([])
        axis.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[k], label=name)
               for k, name in enumerate(class_names)]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(class_names), 6),
                  frameon=False, fontsize=10)
    figure.tight_layout(rect=(0, 0.07 + 0.03 * ((len(class_names) - 1) // 6), 1, 1))
    return save_figure(figure, path, dpi)


def save_embedding_csv(path: str, paths: Sequence[str], labels: Sequence[int],
                       xy: np.ndarray) -> str:
    """``path,label,x,y`` per embedded image; returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "x", "y"])
        for image_path, label, (x, y) in zip(paths, labels, xy):
            writer.writerow([image_path, int(label), f"{x:.5f}", f"{y:.5f}"])
    return path


def heatmap_rgb(cam: np.ndarray) -> np.ndarray:
    """[H, W] map in [0, 1] -> uint8 [H, W, 3] RGB with OpenCV's JET colour map."""
    grey = np.clip(np.rint(cam * 255.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def gradcam_panels(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> Dict[str, np.ndarray]:
    """uint8 image [H, W, 3] and its map [H, W] -> {input, heatmap, overlay} uint8 RGB images.

    overlay = (1 - alpha) * image + alpha * heat map.
    """
    if image.shape[:2] != cam.shape:
        raise ValueError(f"map {cam.shape} and image {image.shape[:2]} differ in size")
    heat = heatmap_rgb(cam)
    overlay = cv2.addWeighted(image, 1.0 - alpha, heat, alpha, 0.0)
    return {"input": image, "heatmap": heat, "overlay": overlay}


def save_rgb(image: np.ndarray, path: str) -> str:
    """Write a uint8 RGB image as PNG with OpenCV; returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"could not write {path!r}")
    return path


def save_contact_sheet(rows: Sequence[Tuple[str, Sequence[tuple]]], path: str, title: str = "",
                       dpi: int = 100) -> str:
    """A grid: one row per class, each cell pair = (input, overlay) of one image.

    ``rows``: [(class name, [(input uint8, overlay uint8, caption), ...])]; returns ``path``.
    """
    columns = max(len(cells) for _, cells in rows)
    figure, axes = plt.subplots(len(rows), 2 * columns, squeeze=False,
                                figsize=(2.0 * 2 * columns, 2.3 * len(rows)))
    for row, (name, cells) in zip(axes, rows):
        for column, axis in enumerate(row):
            axis.axis("off")
            cell = column // 2
            if cell >= len(cells):
                continue
            picture, overlay, caption = cells[cell]
            axis.imshow(picture if column % 2 == 0 else overlay, interpolation="nearest")
            axis.set_title(caption if column % 2 == 0 else "Grad-CAM", fontsize=8)
        row[0].text(-0.08, 0.5, name, transform=row[0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=10)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return save_figure(figure, path, dpi)


def save_figure(figure, path: str, dpi: int = 100) -> str:
    """Write ``figure`` to ``path`` cropped to what it draws (legends and titles never cut), then close it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    extension = os.path.splitext(path)[1].lstrip(".") or "png"   # the temporary name hides it
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format=extension, dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    plt.close(figure)
    return path
