"""On-disk format of a zoo: numbered PNG folders, sample grids, crash-safe JSON and weights."""
import json
import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from data.atomic import atomic_file, atomic_write

DONE_MARKER = ".done"


def png_name(index: int) -> str:
    return f"{index:06d}.png"


def write_pngs(folder: str, images: np.ndarray) -> None:
    """Write uint8 [N, H, W, 3] as ``000000.png``, ``000001.png``, ... after clearing old PNGs."""
    os.makedirs(folder, exist_ok=True)
    for stale in os.listdir(folder):
        if stale.endswith(".png") or stale == DONE_MARKER:
            os.remove(os.path.join(folder, stale))
    for index, image in enumerate(images):
        Image.fromarray(image).save(os.path.join(folder, png_name(index)), format="PNG")


def read_pngs(folder: str, count: int) -> np.ndarray:
    """Read ``000000.png`` .. ``count-1``: uint8 [count, H, W, 3]."""
    images = []
    for index in range(count):
        with Image.open(os.path.join(folder, png_name(index))) as image:
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return np.stack(images)


def count_pngs(folder: str) -> int:
    return sum(name.endswith(".png") for name in os.listdir(folder)) if os.path.isdir(folder) else 0


def mark_done(folder: str) -> None:
    with open(os.path.join(folder, DONE_MARKER), "w") as handle:
        handle.write("complete\n")


def is_marked_done(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, DONE_MARKER))


def save_grid(path: str, images: np.ndarray, rows: int = 8) -> None:
    """Tile up to rows x rows images (uint8 [N, H, W, 3]) into one PNG, black where N is short."""
    n, height, width, _ = images.shape
    tiles = np.zeros((rows * rows, height, width, 3), np.uint8)
    tiles[:min(n, rows * rows)] = images[:rows * rows]
    # [rows*rows, H, W, 3] -> [rows, H, rows, W, 3] -> [rows*H, rows*W, 3]
    grid = tiles.reshape(rows, rows, height, width, 3).transpose(0, 2, 1, 3, 4).reshape(rows * height, rows * width, 3)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(grid).save(path, format="PNG")


def save_row_grid(path: str, rows: list, names: list, label_width: int = 120) -> None:
    """One labelled row per image stack: ``rows[i]`` uint8 [C, H, W, 3] (C columns, black where
    short), ``names[i]`` written in the left margin. Used for input crops above reconstructions."""
    columns = max(len(row) for row in rows)
    height, width = rows[0].shape[1:3]
    canvas = Image.new("RGB", (label_width + columns * width, len(rows) * height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for index, (row, name) in enumerate(zip(rows, names)):
        for column, image in enumerate(row):
            canvas.paste(Image.fromarray(image), (label_width + column * width, index * height))
        draw.text((4, index * height + height // 2 - 6), name, fill=(0, 0, 0))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    canvas.save(path, format="PNG")


def write_json_atomic(path: str, payload: dict) -> None:
    """Write JSON through ``data.atomic``, so readers never see half a file."""
    with atomic_file(path) as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


def read_json(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def save_state_atomic(path: str, state_dict: dict) -> None:
    """torch.save a plain state_dict through ``data.atomic``."""
    atomic_write(path, lambda temporary: torch.save(state_dict, temporary))


def load_state(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
