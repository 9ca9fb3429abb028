"""Pooled backbone features of whole images, cached on disk, and their t-SNE (paper Figure 1).

The images go through exactly the evaluation preprocessing and forward pass
(``engine.inference.run_items`` of the model's ``EvalSetup``). The feature is the globally pooled output of the last backbone
stage, ``[n_images, 8w]`` (512-d at the paper's w = 64).

Cache: ``{stem}.npy`` (features ``[n, d]`` float32), ``{stem}_index.npy`` (``[n, 2]``:
position in the list, label) and ``{stem}.json`` (the key plus the skipped images). The
key records the model file and the list file (``data.content_hash.file_identity``: SHA-1 and
size of the contents), the number of images asked for, the seed and the preprocessing; any
difference, or ``force=True`` (``--do_extract``), recomputes.
"""
import json
import os
import warnings
from typing import Optional, Sequence

import numpy as np

from data.atomic import atomic_file
from data.annotations import read_annotations
from data.content_hash import file_identity
from data.sampling import seeded_subset
from engine.inference import EvalSetup, run_items


def extract_features(setup: EvalSetup, items: Sequence) -> dict:
    """Pooled features of ``items`` ([(path, label)]) through the evaluation forward pass.

    Returns ``features`` [n, d] float32, ``positions`` [n] (index into ``items``),
    ``labels`` [n] for the readable images and ``skipped`` (paths that could not be read).
    """
    outputs = run_items(setup, items, "features", progress=False, features=True)
    if not outputs["labels"].size:
        raise ValueError(f"none of the {len(items)} images could be read")
    return {"features": outputs["features"].astype(np.float32), "positions": outputs["indices"],
            "labels": outputs["labels"], "skipped": [items[i][0] for i in outputs["skipped"]]}


def cache_key(setup: EvalSetup, list_path: str, num: int) -> dict:
    """What the cached features depend on (see the module docstring)."""
    return {"model": file_identity(setup.model_path), "list": file_identity(list_path), "num": num,
            "seed": setup.config.seed, **setup.preprocessing(), "amp": str(setup.amp)}


def load_cached(stem: str, key: dict) -> Optional[dict]:
    """The cached arrays when ``{stem}.json`` holds ``key`` and the arrays exist, else None."""
    try:
        with open(stem + ".json", encoding="utf-8") as handle:
            meta = json.load(handle)
        features = np.load(stem + ".npy")
        index = np.load(stem + "_index.npy")
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or len(features) != len(index):
        return None
    return {"features": features, "positions": index[:, 0], "labels": index[:, 1],
            "skipped": meta.get("skipped", [])}


def save_cache(stem: str, key: dict, result: dict) -> None:
    """Write the arrays, then the JSON key last (a crash leaves no valid-looking cache)."""
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    if os.path.exists(stem + ".json"):
        os.remove(stem + ".json")
    with atomic_file(stem + ".npy", "wb") as handle:
        np.save(handle, result["features"])
    with atomic_file(stem + "_index.npy", "wb") as handle:
        np.save(handle, np.stack([result["positions"], result["labels"]], axis=1))
    with atomic_file(stem + ".json") as handle:
        json.dump({"key": key, "n_images": int(len(result["features"])),
                   "skipped": result["skipped"]}, handle, indent=1)


def cached_features(setup: EvalSetup, list_path: str, items: Sequence, num: int, stem: str,
                    force: bool = False) -> dict:
    """``extract_features`` of ``items`` through the cache at ``stem``.

    The returned dict has ``from_cache`` (bool) besides the arrays of ``extract_features``.
    """
    key = cache_key(setup, list_path, num)
    if not force:
        cached = load_cached(stem, key)
        if cached is not None:
            return {**cached, "from_cache": True}
    result = extract_features(setup, items)
    save_cache(stem, key, result)
    return {**result, "from_cache": False}


def effective_perplexity(perplexity: float, n_images: int) -> float:
    """scikit-learn needs ``perplexity < n``: a larger value becomes ``max(1, (n - 1) / 3)``
    (with a warning). Fewer than 3 images is an error."""
    if n_images < 3:
        raise ValueError(f"t-SNE needs at least 3 readable images, got {n_images}")
    if perplexity <= 0:
        raise ValueError(f"--perplexity must be positive, got {perplexity}")
    if perplexity < n_images:
        return float(perplexity)
    lowered = max(1.0, (n_images - 1) / 3)
    warnings.warn(f"perplexity {perplexity} is not below the {n_images} images; using {lowered:.2f}")
    return lowered


def fit_tsne(features: np.ndarray, perplexity: float = 15.0, seed: int = 0) -> np.ndarray:
    """scikit-learn t-SNE (PCA init, seeded) of ``features`` [n, d] -> embedding [n, 2].

    ``perplexity`` is first passed through ``effective_perplexity``.
    """
    from sklearn.manifold import TSNE  # imported here: slow to import, only t-SNE needs it
    perplexity = effective_perplexity(perplexity, len(features))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto")
    return tsne.fit_transform(features.astype(np.float64)).astype(np.float32)


def run_tsne(setups: Sequence[tuple], list_path: str, out_dir: str, num: int = 4000,
             perplexity: float = 15.0, force: bool = False) -> dict:
    """Figure 1: t-SNE of the pooled features of a (seeded, stratified) subset of a list.

    Args:
        setups: ``[(title, EvalSetup)]``, one panel each (two for ``--compare``); the first
            one's class names make the legend (list labels must lie below their count).
        num: at most this many images (``data.sampling.seeded_subset`` with the config's seed).
    Writes ``out_dir/tsne.png``, ``out_dir/tsne[_compare].csv`` (path,label,x,y) and the
    feature caches ``out_dir/cache/{model|compare}_{list stem}.*``. Returns ``png``,
    ``csvs``, ``n_images``, ``n_skipped``, ``skipped``, ``from_cache`` (one bool per model)
    and ``perplexity`` (the value used).
    """
    from analysis import figures  # matplotlib only when drawing
    class_names, seed = setups[0][1].class_names, setups[0][1].config.seed
    items = read_annotations(list_path, class_num=len(class_names))
    subset = [items[i] for i in seeded_subset(items, seed, total=num)]
    list_stem = os.path.splitext(os.path.basename(list_path))[0]
    panels, csvs, from_cache, result = [], [], [], None
    for number, (title, setup) in enumerate(setups):
        tag = "model" if number == 0 else "compare"
        stem = os.path.join(out_dir, "cache", f"{tag}_{list_stem}")
        result = cached_features(setup, list_path, subset, num, stem, force=force)
        used = effective_perplexity(perplexity, len(result["features"]))
        xy = fit_tsne(result["features"], used, seed=seed)
        panels.append((xy, result["labels"], title))
        csvs.append(figures.save_embedding_csv(
            os.path.join(out_dir, "tsne.csv" if number == 0 else "tsne_compare.csv"),
            [subset[p][0] for p in result["positions"]], result["labels"], xy))
        from_cache.append(result["from_cache"])
    png = figures.save_tsne_figure(panels, class_names, os.path.join(out_dir, "tsne.png"))
    return {"png": png, "csvs": csvs, "n_images": len(panels[0][0]), "n_listed": len(items),
            "n_skipped": len(result["skipped"]), "skipped": result["skipped"],
            "from_cache": from_cache, "perplexity": used}
