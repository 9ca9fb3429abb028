"""Toy GAN zoo (DataPrepare/toy_zoo): layout, labels, caching, determinism, generators, bad input."""
import hashlib
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "DataPrepare"))

from toy_zoo import DOMAIN_PHOTOS, GENERATORS, SCALES, Discriminator, build_generator, build_zoo  # noqa: E402
from toy_zoo.photos import load_domain_photos, load_extra_photos  # noqa: E402
from toy_zoo.train_gan import LOSSES, generate_images, images_to_tensor, make_gan, train_gan  # noqa: E402

EXPECTED_DIRS = {
    "real/A": 0, "real/B": 0, "real/C": 0,
    "GANs/dcgan/A_seed0": 1, "GANs/progan/A_seed0": 2, "GANs/bilinear/A_seed0": 3, "GANs/subpixel/A_seed0": 4,
    "GANs/dcgan/A_seed1": 1, "GANs/dcgan/A_seed2": 1,
    "GANs/progan/A_seed0_hinge": 2, "GANs/subpixel/A_seed0_lsgan": 4,
    "GANs/dcgan/ft_C": 1, "GANs/progan/ft_C": 2, "GANs/bilinear/ft_C": 3, "GANs/subpixel/ft_C": 4,
    "GANs/dcgan/B_seed0": 1, "GANs/progan/B_seed0": 2, "GANs/bilinear/B_seed0": 3, "GANs/subpixel/B_seed0": 4,
}


def _digest(root: Path) -> dict:
    """sha256 of every file under root (manifest excluded: it records this run's time)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_zoo")
    start = time.perf_counter()
    manifest = build_zoo(str(out), scale="tiny", seed=0, show_progress=False)
    return out, manifest, time.perf_counter() - start


def test_layout_and_counts_match_manifest(zoo):
    out, manifest, _ = zoo
    tiny = SCALES["tiny"]
    assert {e["dir"] for e in manifest["sources"]} == set(EXPECTED_DIRS)
    for entry in manifest["sources"]:
        names = sorted(os.listdir(out / entry["dir"]))
        pngs = [n for n in names if n.endswith(".png")]
        assert pngs == [f"{i:06d}.png" for i in range(entry["images"])]
        assert (out / entry["grid"]).is_file()
        closed = entry["dir"].endswith("A_seed0") or entry["dir"] == "real/A"
        expected = tiny.closed_images if closed else tiny.finetune_images if entry["dir"] == "real/C" \
            else tiny.cross_images
        assert entry["images"] == expected, entry["name"]
        if entry["kind"] == "gan":
            assert (out / entry["weights"]).is_file() and (out / entry["disc_weights"]).is_file()
            assert np.isfinite([entry["d_loss_first"], entry["d_loss_last"], entry["g_loss_last"]]).all()


def test_images_are_64x64_rgb_png(zoo):
    out, manifest, _ = zoo
    for entry in manifest["sources"]:
        for name in ("000000.png", f"{entry['images'] - 1:06d}.png"):
            with Image.open(out / entry["dir"] / name) as image:
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))


def test_manifest_labels_and_variants(zoo):
    _, manifest, _ = zoo
    by_dir = {e["dir"]: e for e in manifest["sources"]}
    assert {d: e["label"] for d, e in by_dir.items()} == EXPECTED_DIRS
    assert manifest["zoo_seed"] == 0 and manifest["scale"] == "tiny"
    assert by_dir["GANs/progan/A_seed0_hinge"]["loss"] == "hinge"
    assert by_dir["GANs/subpixel/A_seed0_lsgan"]["loss"] == "lsgan"
    assert by_dir["GANs/subpixel/A_seed0_lsgan"]["lr_g"] == 2e-4 and by_dir["GANs/dcgan/A_seed0"]["lr_g"] == 5e-4
    assert by_dir["GANs/dcgan/A_seed2"]["seed"] == 2
    assert by_dir["GANs/bilinear/ft_C"]["parent"] == "bilinear/A_seed0"
    assert by_dir["GANs/bilinear/ft_C"]["domain"] == "C" and by_dir["GANs/bilinear/B_seed0"]["domain"] == "B"
    assert all(e["parent"] is None for e in manifest["sources"] if "ft_C" not in e["dir"])


def test_rebuild_is_cached(zoo):
    out, manifest, first_seconds = zoo
    before = _digest(out)
    start = time.perf_counter()
    again = build_zoo(str(out), scale="tiny", seed=0, show_progress=False)
    assert time.perf_counter() - start < max(2.0, first_seconds / 3)
    assert _digest(out) == before
    assert again["sources"] == manifest["sources"]


@pytest.mark.parametrize("names, workers", [(["subpixel/B_seed0"], 1), (["dcgan/A_seed0", "dcgan/ft_C"], 2)])
def test_interrupted_sources_are_rebuilt_identically(zoo, names, workers):
    """Unfinished sources are rebuilt byte for byte, in process or by worker processes
    (the fine-tune child of a rebuilt parent waits for it and loads its weights)."""
    out, _, _ = zoo
    before = _digest(out)
    for name in names:
        folder = out / "GANs" / name
        (folder / ".done").unlink()
        (folder / "000003.png").unlink()
        (folder / "000000.png").write_bytes(b"half-written")
    build_zoo(str(out), scale="tiny", seed=0, workers=workers, show_progress=False)
    assert _digest(out) == before


def test_other_seed_in_same_folder_is_refused(zoo):
    out, _, _ = zoo
    with pytest.raises(ValueError, match="zoo_seed"):
        build_zoo(str(out), scale="tiny", seed=1, show_progress=False)


def test_training_is_deterministic_and_seed_dependent():
    real = images_to_tensor(np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8))

    def run(seed):
        generator, discriminator = make_gan("subpixel", 4, seed)
        history = train_gan(generator, discriminator, real, "ns", steps=2, batch_size=4, seed=seed)
        return history, generate_images(generator, 3, seed=seed)

    (history_a, images_a), (history_b, images_b) = run(5), run(5)
    assert history_a == history_b and np.array_equal(images_a, images_b)
    assert not np.array_equal(images_a, run(6)[1])


@pytest.mark.parametrize("arch", sorted(GENERATORS))
def test_generator_shape_range_and_gradients(arch):
    torch.manual_seed(0)
    generator = build_generator(arch, width=4)
    images = generator(torch.randn(3, 64))
    assert images.shape == (3, 3, 64, 64)
    assert images.min() >= -1 and images.max() <= 1
    images.square().mean().backward()
    for name, param in generator.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_subpixel_starts_as_nearest_upsampling():
    """ICNR: the four phases of every sub-pixel conv are equal at initialisation."""
    generator, _ = make_gan("subpixel", 4, seed=0)
    for layer in [*generator.blocks, generator.to_rgb]:
        phases = layer.conv.weight.view(-1, 4, *layer.conv.weight.shape[1:])  # [C, 4 phases, C_in, k, k]
        assert torch.equal(phases, phases[:, :1].expand_as(phases))


def test_discriminator_and_losses_at_zero_logits():
    assert Discriminator(width=4)(torch.zeros(5, 3, 64, 64)).shape == (5,)
    zeros = torch.zeros(4)
    expected = {"ns": (2 * np.log(2), np.log(2)), "hinge": (2.0, 0.0), "lsgan": (0.5, 0.5)}
    for loss, (d_value, g_value) in expected.items():
        d_fn, g_fn = LOSSES[loss]
        assert d_fn(zeros, zeros).item() == pytest.approx(d_value)
        assert g_fn(zeros).item() == pytest.approx(g_value)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        train_gan(*make_gan("dcgan", 4, 0), torch.zeros(2, 3, 64, 64), "wgan", 1, 2, 0)


def test_domains_use_disjoint_colour_photos(zoo):
    names = [set(names) for names in DOMAIN_PHOTOS.values()]
    assert all(not (a & b) for i, a in enumerate(names) for b in names[i + 1:])
    _, manifest, _ = zoo
    recorded = [set(d["photos"]) for d in manifest["domains"].values()]
    assert recorded == names
    for domain in DOMAIN_PHOTOS:
        photos, skipped = load_domain_photos(domain)
        assert skipped == 0
        for photo in photos:
            array = np.asarray(photo.image)
            assert min(photo.image.size) >= 64 and np.abs(np.diff(array.astype(int), axis=2)).mean() > 1, photo.name
    pixels = {d: np.asarray(p.image).tobytes() for d in DOMAIN_PHOTOS for p in load_domain_photos(d)[0]}
    assert len(set(pixels.values())) == len(pixels)


def test_missing_or_empty_extra_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ValueError, match="no_such_folder"):
        build_zoo(str(tmp_path / "out"), scale="tiny", extra_photos={"B": str(missing)}, show_progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="broken.jpg"), pytest.raises(ValueError, match="empty"):
        load_extra_photos(str(empty))


def test_extra_photos_skip_unreadable_files(tmp_path):
    Image.fromarray(np.full((80, 96, 3), 200, np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="bad.png"):
        photos, skipped = load_extra_photos(str(tmp_path))
    assert [p.name for p in photos] == ["extra:good.png"] and skipped == 1


def test_cli_runs_on_cached_zoo(zoo, capsys):
    out, _, _ = zoo
    spec = importlib.util.spec_from_file_location("make_toy_zoo", REPO / "DataPrepare" / "make_toy_zoo.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main(["--out", str(out), "--scale", "tiny"])
    printed = capsys.readouterr().out
    assert "subpixel/B_seed0" in printed and "total" in printed
