"""Build the toy GAN zoo: crops of three photo domains, 18 image-conditioned generators (27 with
``cross_tests="wide"``), manifest, grids.

Output root layout (see sources.py for the full table)::

    manifest.json                 zoo seed, scale, settings, domains, one entry per source, audit
    real/{A,B,C}/000000.png ...   64x64 RGB crops of each photo domain (real class, held-out inputs)
    train_crops/{A,B,C}/...       64x64 RGB crops the generators train on (in no list)
    photos/{A,B,C}/*.png          every photo of each domain, whole (stage 1 trains on their crops)
    GANs/{arch}/{variant}/...     64x64 RGB reconstructions of real/{domain} by each generator
    grids/{arch}_{variant}.png    input crops above their reconstructions (grids/real_A.png: 8x8 crops)
    grids/compare_{A,B,C}.png     8 crops of the domain above every generator's reconstruction of them
    weights/{arch}_{variant}.pt   generator state_dict (``..._disc.pt``: its discriminator)

Deterministic: one zoo seed fixes every byte on a given machine and thread count. Resumable:
a source whose folder carries a ``.done`` marker and a manifest entry is never rebuilt; the
manifest is rewritten atomically after every source. The content-shortcut audit (audit.py)
runs at the end of every build and is recorded in the manifest.
"""
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from data.atomic import atomic_file
from data.content_hash import tree_fingerprint

from . import storage
from .audit import audit_zoo
from .generators import FAMILY_LABELS, Discriminator, build_generator
from .photos import DOMAINS, load_domain_photos, random_crops
from .sources import CROSS_TESTS, SCALES, Scale, Source, derive_seed, manifest_cross_tests, plan_sources
from .summary import save_comparison_grids
from .train_gan import (TrainSettings, images_to_tensor, make_gan, psnr, reconstruct_images, train_generator,
                        transfer_low_frequencies)

MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # 1: unconditional GANs (before issue #14)


def load_photo_domains(extra_photos: dict) -> tuple:
    """Photos of every domain plus their manifest record; user folders validated up front.

    Args:
        extra_photos: {domain: folder or None}.
    Returns:
        ({domain: [Photo]}, {domain: {"photos": [names], "extra_folder": ..., "skipped_files": n}})
    """
    unknown = set(extra_photos) - set(DOMAINS)
    if unknown:
        raise ValueError(f"extra photos given for unknown domain(s) {sorted(unknown)}; domains are {DOMAINS}")
    folders = [os.path.realpath(f) for f in extra_photos.values() if f is not None]
    if len(folders) != len(set(folders)):
        raise ValueError(f"one extra photos folder is given to two domains ({folders}); domains must be disjoint")
    photos, record = {}, {}
    for domain in DOMAINS:
        folder = extra_photos.get(domain)
        photos[domain], skipped = load_domain_photos(domain, folder)
        record[domain] = {"photos": [p.name for p in photos[domain]],
                          "extra_folder": os.path.abspath(folder) if folder else None, "skipped_files": skipped}
    return photos, record


def _open_manifest(out: str, header: dict) -> dict:
    """The existing manifest if it was built with the same header, else a fresh one. A standard
    zoo may be widened (``cross_tests`` wide: its sources are a subset of the wide plan's); a
    wide one is not narrowed."""
    path = os.path.join(out, MANIFEST)
    if not os.path.isfile(path):
        return {**header, "sources": []}
    manifest = storage.read_json(path)
    built, wanted = manifest_cross_tests(manifest), manifest_cross_tests(header)
    if (built, wanted) == ("standard", "wide"):
        manifest["cross_tests"] = "wide"
    elif built != wanted:
        raise ValueError(f"{out!r} holds a zoo built with cross_tests {built!r}, now {wanted!r}; "
                         f"pass --cross_tests {built}, or use another --out")
    for key, value in header.items():
        if manifest.get(key) != value:
            raise ValueError(f"{out!r} holds a zoo built with a different {key!r} "
                             f"({manifest.get(key)!r}, now {value!r}); use another --out or delete it")
    return manifest


def _entry(manifest: dict, name: str):
    return next((e for e in manifest["sources"] if e["name"] == name), None)


def _record(out: str, manifest: dict, entry: dict, order: list) -> None:
    """Insert or replace ``entry``, keep entries in build-plan ``order``, rewrite atomically."""
    others = [e for e in manifest["sources"] if e["name"] != entry["name"]]
    manifest["sources"] = sorted(others + [entry], key=lambda e: order.index(e["name"]))
    storage.write_json_atomic(os.path.join(out, MANIFEST), manifest)


def is_cached(out: str, manifest: dict, source: Source) -> bool:
    """A finished source: marker present, manifest entry present, all images and weights on disk."""
    folder = os.path.join(out, source.dir)
    entry = _entry(manifest, source.name)
    if entry is None or not storage.is_marked_done(folder) or storage.count_pngs(folder) != source.count:
        return False
    return source.kind != "gan" or all(os.path.isfile(os.path.join(out, entry[key]))
                                       for key in ("weights", "disc_weights"))


def _build_crops(out: str, source: Source, photos: list, zoo_seed: int) -> dict:
    """Random multi-scale crops of the domain's photos: the real class (and the generators'
    held-out inputs) or the generators' training crops; same function, same PNG format."""
    seed = derive_seed(zoo_seed, source.name)
    images = random_crops(photos, source.count, np.random.default_rng(seed))
    storage.write_pngs(os.path.join(out, source.dir), images)
    if source.kind == "real":
        storage.save_grid(os.path.join(out, "grids", f"{source.file_stem}.png"), images)
    return {"derived_seed": seed, "weights": None}


def _load_parent(out: str, manifest: dict, source: Source, scale: Scale) -> tuple:
    """Generator and discriminator of ``source.parent``, loaded strictly from weights/.

    Fine-tuning continues the parent's adversarial game (both networks) on the new domain.
    """
    parent = _entry(manifest, source.parent)
    if parent is None:
        raise ValueError(f"{source.name} needs its parent {source.parent}, which is not built yet")
    generator, discriminator = build_generator(source.architecture, scale.width), Discriminator(scale.disc_width)
    generator.load_state_dict(storage.load_state(os.path.join(out, parent["weights"])))
    discriminator.load_state_dict(storage.load_state(os.path.join(out, parent["disc_weights"])))
    return generator, discriminator


def train_settings(scale: Scale, source: Source) -> TrainSettings:
    """The training hyperparameters of generator ``source`` at ``scale``."""
    return TrainSettings(adv_loss=source.loss, rec_loss=source.rec_loss, steps=source.steps,
                         batch_size=scale.batch_size, lr_g=scale.lr_g, lr_d=scale.lr_d,
                         rec_weight=scale.rec_weight, colour_weight=scale.colour_weight,
                         decay_start=scale.decay_start, bn_batches=scale.bn_batches)


def _read_source(out: str, manifest: dict, name: str, count: int = None) -> np.ndarray:
    entry = _entry(manifest, name)
    return storage.read_pngs(os.path.join(out, entry["dir"]), entry["images"] if count is None else count)


def _save_reconstruction_grid(path: str, inputs: np.ndarray, outputs: np.ndarray, pairs: int = 4) -> None:
    """Rows of 8 input crops, each followed by the generator's reconstructions of them."""
    rows, names = [], []
    for start in range(0, min(len(inputs), 8 * pairs), 8):
        rows += [inputs[start:start + 8], outputs[start:start + 8]]
        names += ["input", "output"]
    storage.save_row_grid(path, rows, names, label_width=48)


def _build_gan(out: str, manifest: dict, source: Source, zoo_seed: int, show_progress: bool) -> dict:
    """Train (or fine-tune) one generator, save its weights, write its reconstructions and grid."""
    scale = SCALES[manifest["scale"]]
    torch_seed = derive_seed(zoo_seed, source.name)
    if source.parent is None:
        generator, discriminator = make_gan(source.architecture, scale.width, scale.disc_width, torch_seed)
    else:
        generator, discriminator = _load_parent(out, manifest, source, scale)
    settings = train_settings(scale, source)
    crops = images_to_tensor(_read_source(out, manifest, f"train_crops/{source.domain}"))
    with tqdm(total=source.steps, desc=f"  {source.name}", leave=False, disable=not show_progress) as bar:
        history = train_generator(generator, discriminator, crops, settings, torch_seed,
                                  progress=_step_reporter(bar))
    weights = f"weights/{source.file_stem}.pt"
    storage.save_state_atomic(os.path.join(out, weights), generator.state_dict())
    storage.save_state_atomic(os.path.join(out, f"weights/{source.file_stem}_disc.pt"), discriminator.state_dict())
    inputs = _read_source(out, manifest, f"real/{source.domain}", source.count)
    raw = reconstruct_images(generator, inputs)
    images = transfer_low_frequencies(raw, inputs, scale.lowpass_sigma)
    storage.write_pngs(os.path.join(out, source.dir), images)
    _save_reconstruction_grid(os.path.join(out, "grids", f"{source.file_stem}.png"), inputs, images)
    return {"derived_seed": torch_seed, "inputs": f"real/{source.domain}", "train_crops": f"train_crops/{source.domain}",
            "psnr_db": round(psnr(raw, inputs), 3), "psnr_db_after_lowpass": round(psnr(images, inputs), 3),
            "losses": {"adversarial": settings.adv_loss, "reconstruction": settings.rec_loss,
                       "rec_weight": settings.rec_weight, "colour_weight": settings.colour_weight},
            "lr_g": settings.lr_g, "lr_d": settings.lr_d,
            "weights": weights, "disc_weights": f"weights/{source.file_stem}_disc.pt", **_loss_summary(history)}


def _step_reporter(bar: tqdm):
    """train_generator progress callback advancing ``bar`` and showing the current losses."""
    def report(step: int, d_loss: float, g_adv: float, rec: float) -> None:
        bar.set_postfix(D=f"{d_loss:.2f}", G=f"{g_adv:.2f}", rec=f"{rec:.3f}", refresh=False)
        bar.update(1)
    return report


def _loss_summary(history: dict) -> dict:
    """Mean of every loss over the first and last tenth of training (evidence it really trained)."""
    tenth = max(1, len(history["d_loss"]) // 10)
    return {f"{key}_{part}": round(float(np.mean(values[:tenth] if part == "first" else values[-tenth:])), 4)
            for key, values in history.items() for part in ("first", "last")}


def build_source(out: str, manifest: dict, source: Source, photos: dict, show_progress: bool) -> dict:
    """Build one source from scratch and return its manifest entry (not yet recorded)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    if source.kind == "gan":
        extra = _build_gan(out, manifest, source, manifest["zoo_seed"], show_progress)
    else:
        extra = _build_crops(out, source, photos[source.domain], manifest["zoo_seed"])
    storage.mark_done(os.path.join(out, source.dir))
    entry = {key: value for key, value in asdict(source).items() if key != "count"}
    grid = {"grid": f"grids/{source.file_stem}.png"} if source.kind != "crops" else {}
    return {**entry, "dir": source.dir, "images": source.count, **grid,
            **extra, "seconds": round(time.perf_counter() - start, 2),
            "cpu_seconds": round(time.process_time() - cpu_start, 2)}


def _dependencies_met(manifest: dict, source: Source, unfinished: set) -> bool:
    """Its real training images and its fine-tuning parent (if any) are built and recorded."""
    needed = [f"real/{source.domain}", f"train_crops/{source.domain}"] + ([source.parent] if source.parent else [])
    return all(_entry(manifest, name) is not None and name not in unfinished for name in needed)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _build_gans_in_pool(out: str, manifest: dict, gans: list, workers: int, threads: int, on_done) -> None:
    """Train ``gans`` in ``workers`` spawned processes, each as soon as its dependencies are built.

    Every source is seeded from its own name and reads its inputs from disk, so the files are
    identical to a sequential build.
    """
    pending, running = list(gans), {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        while pending or running:
            unfinished = {s.name for s in pending} | {s.name for s in running.values()}
            for source in [s for s in pending if _dependencies_met(manifest, s, unfinished)]:
                pending.remove(source)
                running[pool.submit(build_source, out, manifest, source, None, False)] = source
            if not running:
                raise RuntimeError(f"sources with unbuildable dependencies: {[s.name for s in pending]}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                running.pop(future)
                on_done(future.result())


def _build_missing(out: str, manifest: dict, photos: dict, workers: int, threads: int, show_progress: bool) -> None:
    """Build every source not cached yet: crops first (in process), then the generators."""
    plan = plan_sources(SCALES[manifest["scale"]], manifest_cross_tests(manifest))
    order = [source.name for source in plan]
    todo = [source for source in plan if not is_cached(out, manifest, source)]
    with tqdm(total=len(plan), initial=len(plan) - len(todo), desc="toy zoo", unit="source",
              disable=not show_progress) as bar:
        def on_done(entry):
            _record(out, manifest, entry, order)
            bar.set_postfix_str(f"{entry['name']} done")
            bar.update(1)

        for source in todo:
            if source.kind != "gan" or workers == 1:
                bar.set_postfix_str(source.name)
                on_done(build_source(out, manifest, source, photos, show_progress))
        if workers > 1:
            gans = [source for source in todo if source.kind == "gan"]
            _build_gans_in_pool(out, manifest, gans, workers, threads, on_done)


def export_photos(out: str, photos: dict) -> None:
    """Write every photo of every domain, whole and lossless, to ``photos/{domain}/`` (stage 1
    pre-trains on random crops of them); a photo already written is left as it is."""
    for domain, domain_photos in photos.items():
        folder = os.path.join(out, "photos", domain)
        os.makedirs(folder, exist_ok=True)
        for photo in domain_photos:
            stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in photo.name)
            path = os.path.join(folder, f"{stem}.png")
            if not os.path.exists(path):
                with atomic_file(path, "wb") as handle:
                    photo.image.save(handle, format="PNG")


def build_zoo(out: str, scale: str = "default", seed: int = 0, extra_photos: dict = None,
              threads: int = 1, workers: int = 1, show_progress: bool = True, audit: bool = True,
              cross_tests: str = "standard") -> dict:
    """Build (or resume) the whole zoo under ``out`` and return its manifest.

    Args:
        scale: key of SCALES ("tiny" for tests, "default" for the embedded benchmark).
        seed: zoo seed; every per-source seed derives from it and the source name.
        extra_photos: {domain: folder} of user photos added to domains A, B, C.
        threads: torch CPU threads per process, fixed so results are reproducible (1 is
            also the fastest choice when cores are shared with other processes).
        workers: generators trained at once in separate processes (1: all in this process).
        audit: run the content-shortcut audit (audit.py) and record it as ``manifest["audit"]``.
        cross_tests: "standard", or "wide" for 9 more cross-seed and cross-loss generators
            (sources.WIDE_CROSS; recorded in the manifest, which the toy lists read).
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {sorted(SCALES)}")
    if cross_tests not in CROSS_TESTS:
        raise ValueError(f"cross_tests={cross_tests!r}: use one of {CROSS_TESTS}")
    if threads < 1 or workers < 1:
        raise ValueError(f"threads and workers must be at least 1, got {threads} and {workers}")
    torch.set_num_threads(threads)
    photos, domains = load_photo_domains(extra_photos or {})
    header = {"format": FORMAT_VERSION, "zoo_seed": seed, "scale": scale, "threads": threads,
              "image_size": 64, "settings": asdict(SCALES[scale]), "domains": domains,
              "labels": {"real": 0, **FAMILY_LABELS}}
    if cross_tests == "wide":            # only then: a standard zoo's manifest keeps its bytes
        header["cross_tests"] = "wide"
    os.makedirs(out, exist_ok=True)
    manifest = _open_manifest(out, header)
    start = time.perf_counter()
    export_photos(out, photos)
    _build_missing(out, manifest, photos, workers, threads, show_progress)
    save_comparison_grids(out, manifest)
    manifest["build_seconds"] = round(time.perf_counter() - start, 2)
    if audit:
        manifest["audit"] = audit_zoo(out, seed=0)
    manifest["fingerprint"] = tree_fingerprint(out)   # which images these are (differs across CPUs)
    storage.write_json_atomic(os.path.join(out, MANIFEST), manifest)
    return manifest
