"""Content-shortcut audit: how far can a classifier that sees no generation trace get?

Features of an image (256 numbers, none of which can see an upsampling trace):
- its colour histogram, 4 x 4 x 4 bins over RGB (64 numbers, fractions of the pixels);
- its 8 x 8 thumbnail (block means of the 64 x 64 image, 192 numbers in [0, 1]).
A standardised multinomial logistic regression on them is trained on ``toy_train`` and
tested on ``toy_test`` (closed set, chance 1/5). If it scores far above chance, the zoo's
classes differ in colour or layout, and an attribution model may learn that instead of the
architecture trace. Goal for the default zoo: at most 40 %.
"""
import os
import tempfile

import numpy as np
from PIL import Image

from data.annotations import read_annotations

HISTOGRAM_BINS = 4
THUMBNAIL = 8
CROSS_KINDS = ("seed", "loss", "finetune", "dataset")


def shortcut_features(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] (H, W multiples of 8) -> float64 [N, 256]: histogram + thumbnail."""
    n, height, width, _ = images.shape
    bins = (images // (256 // HISTOGRAM_BINS)).astype(np.int64)  # [N, H, W, 3] in 0..3
    cell = (bins[..., 0] * HISTOGRAM_BINS + bins[..., 1]) * HISTOGRAM_BINS + bins[..., 2]
    histogram = np.stack([np.bincount(c.ravel(), minlength=HISTOGRAM_BINS ** 3) for c in cell])
    histogram = histogram / float(height * width)
    # [N, H, W, 3] -> [N, 8, H/8, 8, W/8, 3] -> block means [N, 8, 8, 3]
    blocks = images.reshape(n, THUMBNAIL, height // THUMBNAIL, THUMBNAIL, width // THUMBNAIL, 3)
    thumbnail = blocks.mean(axis=(2, 4)) / 255.0
    return np.concatenate([histogram, thumbnail.reshape(n, -1)], axis=1)


def _load(items: list) -> tuple:
    """Images and labels of annotation items: (uint8 [N, H, W, 3], int [N])."""
    images = []
    for path, _ in items:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return np.stack(images), np.array([label for _, label in items])


def audit_lists(train_list: str, test_lists: dict, seed: int = 0) -> dict:
    """Fit the shortcut classifier on ``train_list``; accuracy on every list of ``test_lists``.

    Args:
        test_lists: {name: annotation file}; the first is the headline ("closed").
    Returns:
        {"accuracy": {name: float in [0, 1]}, "chance": 1 / classes, "train_images": n,
         "features": description}.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_images, train_labels = _load(read_annotations(train_list))
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    classifier.fit(shortcut_features(train_images), train_labels)
    accuracy = {}
    for name, path in test_lists.items():
        images, labels = _load(read_annotations(path))
        accuracy[name] = float(np.mean(classifier.predict(shortcut_features(images)) == labels))
    return {"accuracy": accuracy, "chance": 1.0 / len(np.unique(train_labels)),
            "train_images": int(len(train_labels)),
            "features": f"{HISTOGRAM_BINS}x{HISTOGRAM_BINS}x{HISTOGRAM_BINS} colour histogram + "
                        f"{THUMBNAIL}x{THUMBNAIL} thumbnail, standardised logistic regression"}


def audit_zoo(zoo_root: str, seed: int = 0) -> dict:
    """Write the zoo's toy lists (as ``generate_.py --mode toy --seed seed`` does) to a
    temporary folder and audit them: closed test first, then the four cross tests."""
    from DataPrepare.splits import generate_lists
    from DataPrepare.splits.plan import cross_list_path, split_list_path

    with tempfile.TemporaryDirectory(prefix="toy_audit_") as lists:
        generate_lists("toy", zoo_root, lists, seed=seed, echo=lambda _text: None)
        tests = {"closed": split_list_path(lists, "toy", "test")}
        tests.update({f"cross_{kind}": cross_list_path(lists, "toy", kind) for kind in CROSS_KINDS})
        tests = {name: path for name, path in tests.items() if os.path.isfile(path)}
        return audit_lists(split_list_path(lists, "toy", "train"), tests, seed=seed)


def format_audit(result: dict) -> str:
    """One line per test list: the shortcut classifier's accuracy next to chance."""
    lines = [f"content-shortcut audit ({result['features']}, trained on toy_train, "
             f"{result['train_images']} images; chance {result['chance']:.0%}):"]
    lines += [f"  {name:<16}{value:7.1%}" for name, value in result["accuracy"].items()]
    return "\n".join(lines)
