"""Toy GAN zoo (DataPrepare/toy_zoo): layout, labels, caching, determinism, generators, audit, bad input."""
import hashlib
import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

from data.annotations import read_annotations, write_annotations
from DataPrepare.toy_zoo import (DECODERS, DOMAIN_PHOTOS, SCALES, UNSEEN_ARCHS, Discriminator, audit_lists,
                     audit_zoo, build_generator, build_zoo)
from DataPrepare.toy_zoo.photos import load_domain_photos, load_extra_photos
from DataPrepare.toy_zoo.train_gan import (ADVERSARIAL_LOSSES, TrainSettings, make_gan, psnr,
                               reconstruct_images, train_generator, transfer_low_frequencies)

CLOSED = ("dcgan", "progan", "bilinear", "subpixel")
EXPECTED_DIRS = {
    "real/A": 0, "real/B": 0, "real/C": 0, "train_crops/A": 0, "train_crops/B": 0, "train_crops/C": 0,
    "GANs/dcgan/A_seed0": 1, "GANs/progan/A_seed0": 2, "GANs/bilinear/A_seed0": 3, "GANs/subpixel/A_seed0": 4,
    "GANs/dcgan/A_seed1": 1, "GANs/dcgan/A_seed2": 1,
    "GANs/progan/A_seed0_hinge": 2, "GANs/subpixel/A_seed0_lsgan": 4,
    "GANs/stylegan2/A_seed0": -1, "GANs/resizeblur/A_seed0": -1,
    "GANs/dcgan/ft_C": 1, "GANs/progan/ft_C": 2, "GANs/bilinear/ft_C": 3, "GANs/subpixel/ft_C": 4,
    "GANs/dcgan/B_seed0": 1, "GANs/progan/B_seed0": 2, "GANs/bilinear/B_seed0": 3, "GANs/subpixel/B_seed0": 4,
}


def _digest(root: Path) -> dict:
    """sha256 of every file under root (manifest excluded: it records this run's time)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def zoo(tiny_zoo):
    return tiny_zoo


# ---------------------------------------------------------------- the built zoo
def test_layout_and_counts_match_manifest(zoo):
    out, manifest, _ = zoo
    tiny = SCALES["tiny"]
    assert {e["dir"] for e in manifest["sources"]} == set(EXPECTED_DIRS)
    for entry in manifest["sources"]:
        names = sorted(os.listdir(out / entry["dir"]))
        pngs = [n for n in names if n.endswith(".png")]
        assert pngs == [f"{i:06d}.png" for i in range(entry["images"])]
        closed = entry["dir"] == "real/A" or (entry["dir"].endswith("A_seed0") and entry["label"] > 0)
        expected = (tiny.train_crops if entry["kind"] == "crops" else
                    tiny.closed_images if closed else tiny.cross_images)
        assert entry["images"] == expected, entry["name"]
        if entry["kind"] == "gan":
            assert (out / entry["grid"]).is_file()
            assert (out / entry["weights"]).is_file() and (out / entry["disc_weights"]).is_file()
            assert np.isfinite([entry["d_loss_first"], entry["d_loss_last"], entry["rec_last"]]).all()
    for domain in "ABC":
        assert (out / "grids" / f"compare_{domain}.png").is_file()


def test_images_are_64x64_rgb_png(zoo):
    out, manifest, _ = zoo
    for entry in manifest["sources"]:
        for name in ("000000.png", f"{entry['images'] - 1:06d}.png"):
            with Image.open(out / entry["dir"] / name) as image:
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))


def test_manifest_records_family_losses_parent_and_psnr(zoo):
    _, manifest, _ = zoo
    by_dir = {e["dir"]: e for e in manifest["sources"]}
    assert {d: e["label"] for d, e in by_dir.items()} == EXPECTED_DIRS
    assert manifest["zoo_seed"] == 0 and manifest["scale"] == "tiny" and manifest["format"] == 2
    hinge, lsgan = by_dir["GANs/progan/A_seed0_hinge"], by_dir["GANs/subpixel/A_seed0_lsgan"]
    assert (hinge["loss"], hinge["rec_loss"]) == ("hinge", "l1")
    assert lsgan["losses"] == {"adversarial": "lsgan", "reconstruction": "l2",
                               "rec_weight": SCALES["tiny"].rec_weight, "colour_weight": SCALES["tiny"].colour_weight}
    assert by_dir["GANs/dcgan/A_seed2"]["seed"] == 2
    assert by_dir["GANs/bilinear/ft_C"]["parent"] == "bilinear/A_seed0"
    assert by_dir["GANs/bilinear/ft_C"]["steps"] == SCALES["tiny"].finetune_steps < SCALES["tiny"].steps
    assert all(e["parent"] is None for e in manifest["sources"] if "ft_C" not in e["dir"])
    for entry in manifest["sources"]:
        if entry["kind"] == "gan":
            assert entry["inputs"] == f"real/{entry['domain']}" and entry["train_crops"] == f"train_crops/{entry['domain']}"
            assert 0 < entry["psnr_db"] < 100, entry["name"]
    assert {by_dir[f"GANs/{a}/A_seed0"]["architecture"] for a in UNSEEN_ARCHS} == set(UNSEEN_ARCHS)


def test_reconstructions_are_of_held_out_real_crops(zoo):
    """Generators train on train_crops/D and reconstruct real/D, which they never saw; the
    recorded PSNR (after the low-frequency transfer) is that of image k against real/D image k."""
    out, manifest, _ = zoo
    for domain in "ABC":
        train = {(out / f"train_crops/{domain}" / n).read_bytes() for n in os.listdir(out / f"train_crops/{domain}")
                 if n.endswith(".png")}
        real = {(out / f"real/{domain}" / n).read_bytes() for n in os.listdir(out / f"real/{domain}")
                if n.endswith(".png")}
        assert not train & real
    entry = next(e for e in manifest["sources"] if e["name"] == "dcgan/B_seed0")
    fakes = np.stack([_read_png(out / entry["dir"] / f"{i:06d}.png") for i in range(entry["images"])])
    inputs = np.stack([_read_png(out / "real/B" / f"{i:06d}.png") for i in range(entry["images"])])
    assert psnr(fakes, inputs) == pytest.approx(entry["psnr_db_after_lowpass"], abs=1e-3)
    assert entry["psnr_db_after_lowpass"] >= entry["psnr_db"]  # the transfer only removes low-frequency error


@pytest.mark.slow
def test_rebuild_is_cached(zoo):
    out, manifest, first_seconds = zoo
    before = _digest(out)
    again = build_zoo(str(out), scale="tiny", seed=0, show_progress=False)
    assert again["build_seconds"] < max(2.0, first_seconds / 3)
    assert _digest(out) == before
    assert again["sources"] == manifest["sources"]


@pytest.mark.slow
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


@pytest.mark.slow
def test_whole_tiny_zoo_is_deterministic_across_workers(zoo, tmp_path):
    """A second build from scratch, with two worker processes, gives the same bytes."""
    out, _, _ = zoo
    build_zoo(str(tmp_path / "again"), scale="tiny", seed=0, workers=2, show_progress=False, audit=False)
    assert _digest(tmp_path / "again") == _digest(out)


def test_other_seed_in_same_folder_is_refused(zoo):
    out, _, _ = zoo
    with pytest.raises(ValueError, match="zoo_seed"):
        build_zoo(str(out), scale="tiny", seed=1, show_progress=False)


def test_a_standard_zoo_widens_in_place_and_its_lists_cover_every_family(zoo, tmp_path):
    """--cross_tests wide adds the 9 WIDE_CROSS generators next to unchanged standard files; the
    toy lists then hold 5 cross-seed and 8 cross-loss generators, labelled by family; a wide zoo
    is not narrowed again."""
    import shutil
    from DataPrepare.splits import generate_lists
    from DataPrepare.toy_zoo.sources import WIDE_CROSS, cross_variant
    out, _, _ = zoo
    wide = tmp_path / "wide"
    shutil.copytree(out, wide)
    before = _digest(wide)
    manifest = build_zoo(str(wide), scale="tiny", seed=0, show_progress=False, audit=False, cross_tests="wide")
    after = _digest(wide)
    assert {k: v for k, v in after.items() if k in before and not k.startswith("grids/compare")} == \
        {k: v for k, v in before.items() if not k.startswith("grids/compare")}
    added = {f"GANs/{arch}/{cross_variant(seed, loss)}" for kind in ("seed", "loss") for arch, seed, loss in WIDE_CROSS[kind]}
    assert len(added) == 9 and {e["dir"] for e in manifest["sources"]} == set(EXPECTED_DIRS) | added
    assert manifest["cross_tests"] == "wide"
    lists = tmp_path / "lists"
    generate_lists("toy", str(wide), str(lists), echo=lambda _text: None)
    for kind, generators in (("seed", 5), ("loss", 8)):
        items = read_annotations(str(lists / "toy_test" / "annotations" / f"toy_test_cross_{kind}.txt"))
        dirs = {str(Path(p).parent.relative_to(wide)): label for p, label in items}
        assert len(dirs) == generators and set(dirs.values()) == {1, 2, 3, 4}
        assert all(label == CLOSED.index(d.split("/")[1]) + 1 for d, label in dirs.items())
    generate_lists("toy", str(out), str(tmp_path / "standard"), echo=lambda _text: None)
    items = read_annotations(str(tmp_path / "standard" / "toy_test" / "annotations" / "toy_test_cross_loss.txt"))
    assert {Path(p).parent.name for p, _ in items} == {"A_seed0_hinge", "A_seed0_lsgan"} and len(
        {Path(p).parent for p, _ in items}) == 2                       # the standard zoo's lists are as before
    with pytest.raises(ValueError, match="cross_tests 'wide', now 'standard'"):
        build_zoo(str(wide), scale="tiny", seed=0, show_progress=False)
    with pytest.raises(ValueError, match="cross_tests='all'"):
        build_zoo(str(tmp_path / "x"), scale="tiny", cross_tests="all", show_progress=False)


# ---------------------------------------------------------------- content-shortcut audit
@pytest.mark.slow
def test_audit_of_tiny_zoo_is_an_accuracy(zoo):
    out, manifest, _ = zoo
    result = audit_zoo(str(out))
    assert set(result["accuracy"]) == {"closed", "cross_seed", "cross_loss", "cross_finetune", "cross_dataset"}
    assert all(0.0 <= value <= 1.0 for value in result["accuracy"].values())
    assert result["chance"] == pytest.approx(0.2)
    assert manifest["audit"] == result


def _colour_class_lists(root: Path, tint: float) -> tuple:
    """Train/test lists of 3 classes of noise images whose mean colour differs by ``tint``."""
    rng = np.random.default_rng(0)
    items = {"train": [], "test": []}
    for label in range(3):
        for index in range(40):
            image = rng.integers(40, 216, (64, 64, 3)).astype(float)
            image[..., label] += tint
            path = root / f"{label}_{index}.png"
            Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path)
            items["train" if index < 30 else "test"].append((str(path), label))
    for split, split_items in items.items():
        write_annotations(str(root / f"{split}.txt"), split_items)
    return str(root / "train.txt"), {"closed": str(root / "test.txt")}


@pytest.mark.parametrize("tint, low, high", [(40.0, 0.95, 1.0), (0.0, 0.0, 0.6)])
def test_audit_detects_a_colour_shortcut_and_only_then(tmp_path, tint, low, high):
    train, tests = _colour_class_lists(tmp_path, tint)
    accuracy = audit_lists(train, tests)["accuracy"]["closed"]
    assert low <= accuracy <= high


# ---------------------------------------------------------------- generators
@pytest.mark.parametrize("arch", sorted(DECODERS))
def test_generator_shape_range_and_gradients(arch):
    torch.manual_seed(0)
    generator = build_generator(arch, width=4)
    images = generator(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert images.shape == (3, 3, 64, 64)
    assert images.min() >= -1 and images.max() <= 1
    assert generator.encoder(torch.zeros(3, 3, 64, 64)).shape == (3, 16, 8, 8)  # 8x8 bottleneck, 4w channels
    images.square().mean().backward()
    for name, param in generator.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("arch", sorted(DECODERS))
def test_no_skip_path_the_bottleneck_determines_the_output(arch):
    """Replacing the encoder's output by a fixed tensor makes the output independent of the
    input (any skip connection around the bottleneck would leak the input through)."""
    torch.manual_seed(0)
    generator = build_generator(arch, width=4).eval()
    first, second = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    assert not torch.allclose(generator(first), generator(second))
    fixed = torch.randn(2, 16, 8, 8)
    handle = generator.encoder.register_forward_hook(lambda module, inputs, output: fixed)
    try:
        assert torch.equal(generator(first), generator(second))
    finally:
        handle.remove()


@pytest.mark.parametrize("arch", sorted(DECODERS))
def test_no_skip_path_an_output_pixel_gradient_flows_only_through_the_bottleneck(arch):
    """d(pixel)/d(input) equals the gradient carried back through the bottleneck tensor alone."""
    torch.manual_seed(1)
    generator = build_generator(arch, width=4)
    inputs = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    captured = {}
    handle = generator.encoder.register_forward_hook(lambda module, args, output: captured.update(z=output))
    output = generator(inputs)
    handle.remove()
    pixel = output[:, :, 20, 37].sum()
    total, d_bottleneck = torch.autograd.grad(pixel, [inputs, captured["z"]], retain_graph=True)
    through_bottleneck, = torch.autograd.grad(captured["z"], inputs, grad_outputs=d_bottleneck)
    assert total.abs().sum() > 0
    torch.testing.assert_close(total, through_bottleneck)


@pytest.mark.parametrize("arch", sorted(DECODERS))
def test_every_family_trains_a_step(arch):
    crops = torch.rand(6, 3, 64, 64) * 2 - 1
    generator, discriminator = make_gan(arch, 4, 4, seed=0)
    before = [p.detach().clone() for p in generator.parameters()]
    history = train_generator(generator, discriminator, crops, TrainSettings(steps=1, batch_size=4), seed=0)
    assert all(np.isfinite(values).all() and len(values) == 1 for values in history.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, generator.parameters()))
    assert reconstruct_images(generator, np.zeros((3, 64, 64, 3), np.uint8)).shape == (3, 64, 64, 3)


def test_training_is_deterministic_and_seed_dependent():
    crops = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    inputs = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)

    def run(seed):
        generator, discriminator = make_gan("subpixel", 4, 4, seed)
        history = train_generator(generator, discriminator, crops, TrainSettings(steps=2, batch_size=4), seed=seed)
        return history, reconstruct_images(generator, inputs)

    (history_a, images_a), (history_b, images_b) = run(5), run(5)
    assert history_a == history_b and np.array_equal(images_a, images_b)
    assert not np.array_equal(images_a, run(6)[1])


def test_subpixel_starts_as_nearest_upsampling():
    """ICNR: the four phases of every sub-pixel conv are equal at initialisation."""
    generator, _ = make_gan("subpixel", 4, 4, seed=0)
    decoder = generator.decoder
    for layer in [decoder.blocks[2], decoder.blocks[3], decoder.to_rgb]:
        phases = layer.conv.weight.view(-1, 4, *layer.conv.weight.shape[1:])  # [C, 4 phases, C_in, k, k]
        assert torch.equal(phases, phases[:, :1].expand_as(phases))


def test_discriminator_losses_and_bad_settings():
    assert Discriminator(width=4)(torch.zeros(5, 3, 64, 64)).shape == (5, 64)  # one logit per 8x8 patch
    zeros = torch.zeros(4, 64)
    expected = {"ns": (2 * np.log(2), np.log(2)), "hinge": (2.0, 0.0), "lsgan": (0.5, 0.5)}
    for loss, (d_value, g_value) in expected.items():
        d_fn, g_fn = ADVERSARIAL_LOSSES[loss]
        assert d_fn(zeros, zeros).item() == pytest.approx(d_value)
        assert g_fn(zeros).item() == pytest.approx(g_value)
    crops = torch.zeros(2, 3, 64, 64)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        train_generator(*make_gan("dcgan", 4, 4, 0), crops, TrainSettings(adv_loss="wgan", steps=1, batch_size=2), 0)
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        train_generator(*make_gan("dcgan", 4, 4, 0), crops, TrainSettings(rec_loss="l3", steps=1, batch_size=2), 0)
    with pytest.raises(ValueError, match="unknown generator architecture"):
        build_generator("vae", 4)


# ---------------------------------------------------------------- photos and bad input
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


# ---------------------------------------------------------------- CLI and lists
def _cli():
    spec = importlib.util.spec_from_file_location("make_toy_zoo", REPO / "DataPrepare" / "make_toy_zoo.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


@pytest.mark.slow
def test_cli_runs_on_cached_zoo_and_audits(zoo, capsys, tmp_path):
    out, _, _ = zoo
    cli = _cli()
    cli.main(["--out", str(out), "--scale", "tiny"])
    printed = capsys.readouterr().out
    assert "subpixel/B_seed0" in printed and "total" in printed and "content-shortcut audit" in printed
    cli.main(["--out", str(out), "--audit_only"])
    assert "closed" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no zoo"):
        cli.main(["--out", str(tmp_path), "--audit_only"])


def test_unseen_architectures_list_is_labelled_minus_one(zoo, tmp_path):
    from DataPrepare.splits import generate_lists
    out, _, _ = zoo
    generate_lists("toy", str(out), str(tmp_path), echo=lambda _text: None)
    path = str(tmp_path / "toy_test" / "annotations" / "toy_test_unseen_arch.txt")
    items = read_annotations(path, allow_unknown=True)
    assert {label for _, label in items} == {-1}
    assert {Path(p).parent.parent.name for p, _ in items} == set(UNSEEN_ARCHS)
    assert len(items) == 2 * SCALES["tiny"].cross_images
    with pytest.raises(ValueError, match="no known architecture"):
        read_annotations(path)
    listed = [p for name in ("train", "val", "test") for p, _ in
              read_annotations(str(tmp_path / f"toy_{name}" / "annotations" / f"toy_{name}.txt"))]
    assert not any("train_crops" in p or any(f"/{a}/" in p for a in UNSEEN_ARCHS) for p in listed)


def test_stage1_list_holds_every_whole_photo(zoo, tmp_path):
    """The zoo writes each domain's photos whole; the pretrain train list holds all of them
    (plus its share of the real crops), the val list only real crops."""
    from DataPrepare.splits import generate_lists
    root = zoo[0]
    photos = sorted(str(p) for p in (root / "photos").rglob("*.png"))
    assert len(photos) == sum(len(names) for names in DOMAIN_PHOTOS.values())
    assert all(Image.open(p).size[0] > 64 for p in photos)                  # whole, not crops
    generate_lists("pretrain", str(root), str(tmp_path), echo=lambda line: None)
    train = [p for p, _ in read_annotations(str(tmp_path / "pretrain_train/annotations/pretrain_train.txt"),
                                            with_labels=False)]
    val = [p for p, _ in read_annotations(str(tmp_path / "pretrain_val/annotations/pretrain_val.txt"),
                                          with_labels=False)]
    assert set(photos) <= {os.path.realpath(p) for p in train} | set(train)
    assert not any("/photos/" in p for p in val) and val


def test_low_frequency_transfer_keeps_the_outputs_detail_and_the_inputs_colours():
    rng = np.random.default_rng(0)
    inputs = rng.integers(60, 200, size=(3, 64, 64, 3)).astype(np.uint8)
    # outputs: a strong colour cast (low frequency) plus a 2-px checkerboard (high frequency)
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 40 - 20)[None, :, :, None]
    outputs = np.clip(inputs.astype(int) // 2 + 90 + checker, 0, 255).astype(np.uint8)
    result = transfer_low_frequencies(outputs, inputs, sigma=2.0)
    assert result.dtype == np.uint8 and result.shape == inputs.shape
    blur = lambda x: np.stack([cv2.GaussianBlur(i.astype(np.float32), (0, 0), 2.0, borderType=cv2.BORDER_REFLECT) for i in x])
    # block means (what the audit's thumbnail sees) now follow the input, not the cast output
    assert np.abs(blur(result) - blur(inputs)).mean() < 1.5 < np.abs(blur(outputs) - blur(inputs)).mean()
    # the checkerboard survives: high-pass of the result matches high-pass of the output
    high = lambda x: x.astype(np.float32) - blur(x)
    assert np.abs(high(result) - high(outputs)).mean() < 1.0
    assert np.abs(high(result)).mean() > 10
    np.testing.assert_array_equal(transfer_low_frequencies(outputs, inputs, sigma=0), outputs)
    with pytest.raises(ValueError, match="pair image by image"):
        transfer_low_frequencies(outputs[:2], inputs, sigma=2.0)
