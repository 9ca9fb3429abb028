"""Pooled backbone features of whole images, cached on disk, and their t-SNE (paper Figure 1).

The images go through exactly the evaluation preprocessing (``WholeImageDataset`` and
``eval_loader``; the batched pipeline resizes uint8 batches on the device with
``resize_normalise``). The feature is the globally pooled output of the last backbone
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
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from configs import generic_class_names
from data.atomic import atomic_file
from data.annotations import read_annotations
from data.content_hash import file_identity
from data.datasets import WholeImageDataset
from data.preprocess import final_size
from data.sampling import seeded_subset
from engine.evaluate import eval_loader, forward_pass


def extract_features(model: nn.Module, items: Sequence, config, device: torch.device,
                     amp=None) -> dict:
    """Pooled features of ``items`` ([(path, label)]) preprocessed like evaluation.

    Returns ``features`` [n, d] float32, ``positions`` [n] (index into ``items``),
    ``labels`` [n] for the readable images and ``skipped`` (paths that could not be read).
    """
    model.eval()
    dataset = WholeImageDataset(items, config.crop_size, config.resize_size,
                                config.second_resize_size, pipeline=config.data_pipeline)
    loader = eval_loader(dataset, config.val_batch_size, config.num_workers, device)
    size = final_size(config.resize_size, config.second_resize_size)
    outputs = forward_pass(model, loader, device, size, amp=amp, features=True)
    if not outputs["labels"].size:
        raise ValueError(f"none of the {len(items)} images could be read")
    return {"features": outputs["features"].astype(np.float32), "positions": outputs["indices"],
            "labels": outputs["labels"], "skipped": [items[i][0] for i in outputs["skipped"]]}


def cache_key(model_path: str, list_path: str, num: int, config, amp=None) -> dict:
    """What the cached features depend on (see the module docstring)."""
    return {"model": file_identity(model_path), "list": file_identity(list_path),
            "num": num, "seed": config.seed, "crop_size": config.crop_size,
            "resize_size": config.resize_size, "second_resize_size": config.second_resize_size,
            "data_pipeline": config.data_pipeline, "amp": str(amp)}


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


def cached_features(model: nn.Module, model_path: str, list_path: str, items: Sequence,
                    num: int, config, device: torch.device, stem: str, force: bool = False,
                    amp=None) -> dict:
    """``extract_features`` of ``items`` through the cache at ``stem``.

    The returned dict has ``from_cache`` (bool) besides the arrays of ``extract_features``.
    """
    key = cache_key(model_path, list_path, num, config, amp)
    if not force:
        cached = load_cached(stem, key)
        if cached is not None:
            return {**cached, "from_cache": True}
    result = extract_features(model, items, config, device, amp=amp)
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


def resolve_class_names(class_num: int, legend: Optional[Sequence[str]], model_info: dict,
                        config) -> List[str]:
    """Names for the legend and file names: ``--legend``, else the model's, else the config's.

    A model's generic names (``class_0``...) lose to the config's. A config whose
    class_num differs from the model's is an error: it is the wrong config (and so,
    likely, the wrong preprocessing).
    """
    if config.class_num != class_num:
        raise ValueError(f"the config has class_num={config.class_num} but the model has {class_num} "
                         f"outputs; pass the config it was trained with (or --set class_num={class_num})")
    if legend:
        if len(legend) != class_num:
            raise ValueError(f"--legend has {len(legend)} names but the model has {class_num} "
                             f"classes; give one name per class")
        return list(legend)
    names = list(model_info.get("class_names") or [])
    generic = names == generic_class_names(class_num)
    if len(names) == class_num and not generic:
        return names
    if len(config.class_names) == class_num:
        return list(config.class_names)
    return generic_class_names(class_num)


def run_tsne(models: Sequence[tuple], list_path: str, config, device: torch.device, out_dir: str,
             class_names: Sequence[str], num: int = 4000, perplexity: float = 15.0,
             force: bool = False, amp=None) -> dict:
    """Figure 1: t-SNE of the pooled features of a (seeded, stratified) subset of a list.

    Args:
        models: ``[(title, model, model_path)]``, one panel each (two for ``--compare``).
        class_names: one per class (the legend); list labels must lie below their count.
        num: at most this many images (``data.sampling.seeded_subset`` with ``config.seed``).
    Writes ``out_dir/tsne.png``, ``out_dir/tsne[_compare].csv`` (path,label,x,y) and the
    feature caches ``out_dir/cache/{model|compare}_{list stem}.*``. Returns ``png``,
    ``csvs``, ``n_images``, ``n_skipped``, ``skipped``, ``from_cache`` (one bool per model)
    and ``perplexity`` (the value used).
    """
    from analysis import figures  # matplotlib only when drawing
    items = read_annotations(list_path, class_num=len(class_names))
    subset = [items[i] for i in seeded_subset(items, config.seed, total=num)]
    list_stem = os.path.splitext(os.path.basename(list_path))[0]
    panels, csvs, from_cache, result = [], [], [], None
    for number, (title, model, model_path) in enumerate(models):
        tag = "model" if number == 0 else "compare"
        stem = os.path.join(out_dir, "cache", f"{tag}_{list_stem}")
        result = cached_features(model, model_path, list_path, subset, num, config, device, stem,
                                 force=force, amp=amp)
        used = effective_perplexity(perplexity, len(result["features"]))
        xy = fit_tsne(result["features"], used, seed=config.seed)
        panels.append((xy, result["labels"], title))
        csvs.append(figures.save_embedding_csv(
            os.path.join(out_dir, "tsne.csv" if number == 0 else "tsne_compare.csv"),
            [subset[p][0] for p in result["positions"]], result["labels"], xy))
        from_cache.append(result["from_cache"])
    png = figures.save_tsne_figure(panels, class_names, os.path.join(out_dir, "tsne.png"))
    return {"png": png, "csvs": csvs, "n_images": len(panels[0][0]), "n_listed": len(items),
            "n_skipped": len(result["skipped"]), "skipped": result["skipped"],
            "from_cache": from_cache, "perplexity": used}
