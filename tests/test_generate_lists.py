"""DataPrepare/generate_.py and DataPrepare/splits: annotation lists (SPEC sections 4, 7, 10).

Fake dataset trees of tiny PNGs are built in tmp_path; every check reads the written files.
"""
import io
import os
import subprocess
import sys
from collections import Counter

import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from data.annotations import read_annotations
from DataPrepare.splits import generate_lists
from DataPrepare.splits.collect import list_images, seeded_subset, split_by_fractions, stable_rng
from DataPrepare.splits.generate import closed_lists
from DataPrepare.splits.report import format_report
from DataPrepare.splits.plan import Plan, Source
from DataPrepare.splits.sources import SourceReader


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png_bytes()


def make_dirs(root, rel_dirs, n=10):
    """``n`` tiny PNGs in each of ``rel_dirs`` under ``root``."""
    for rel_dir in rel_dirs:
        directory = os.path.join(root, rel_dir)
        os.makedirs(directory, exist_ok=True)
        for i in range(n):
            with open(os.path.join(directory, f"img_{i:03d}.png"), "wb") as handle:
                handle.write(PNG)


GANS = ("ProGAN", "MMDGAN", "SNGAN", "InfoMax-GAN")


def real_layout_dirs():
    dirs = ["real/celeba/celeba_align_png_cropped", "real/lsun/bedroom"]
    for v in range(10):
        dirs.append(f"GANs/ProGAN/multiseed_celeba/celeba_align_png_cropped_seed_v{v}")
        dirs.append(f"GANs/ProGAN/multiseed_lsun/lsun_bedroom_200k_png_seed_v{v}")
    for gan in ("MMDGAN", "SNGAN", "InfoMax-GAN", "CramerGAN", "SSGAN"):
        dirs += [f"GANs/{gan}/celeba_align_png_cropped", f"GANs/{gan}/lsun_bedroom_200k_png"]
    for gan in GANS:
        dirs += [f"GANs/{gan}/ft_old_crop", f"GANs/{gan}/ft_sofa_crop"]
    return dirs


TOY_ARCHS = ("dcgan", "progan", "bilinear", "subpixel")


def toy_dirs():
    dirs = ["real/A", "real/B", "real/C", "train_crops/A", "train_crops/B", "train_crops/C",
            "GANs/dcgan/A_seed1", "GANs/dcgan/A_seed2", "GANs/progan/A_seed0_hinge", "GANs/subpixel/A_seed0_lsgan",
            "GANs/stylegan2/A_seed0", "GANs/resizeblur/A_seed0"]
    return dirs + [f"GANs/{a}/{m}" for a in TOY_ARCHS for m in ("A_seed0", "ft_C", "B_seed0")]


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("real_layout"))
    make_dirs(root, real_layout_dirs(), n=20)
    return root


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("toy"))
    make_dirs(root, toy_dirs(), n=10)
    make_dirs(root, ["GANs/dcgan/B_seed0"], n=15)  # dcgan pools more: arch must be balanced
    return root


def lists_of(save, prefix, cross=()):
    """{name: [(path, label), ...]} for the closed splits and the given cross kinds."""
    names = [f"{prefix}_{s}" for s in ("train", "val", "test")]
    out = {n: read_annotations(os.path.join(save, n, "annotations", n + ".txt")) for n in names}
    for kind in cross:
        name = f"{prefix}_test_cross_{kind}.txt"
        out[kind] = read_annotations(os.path.join(save, f"{prefix}_test", "annotations", name))
    return out


def labels(items):
    return {label for _, label in items}


def quiet(_text):
    pass


# ---------------------------------------------------------------- building blocks
def test_list_images_recursive_sorted_case_insensitive(tmp_path):
    for rel in ("b/2.PNG", "a/1.JpG", "a/0.jpeg", "z.webp", "notes.txt", "._hidden.png",
                ".cache/x.png"):
        os.makedirs(os.path.dirname(tmp_path / rel), exist_ok=True)
        (tmp_path / rel).write_bytes(PNG)
    assert list_images(str(tmp_path)) == ["a/0.jpeg", "a/1.JpG", "b/2.PNG", "z.webp"]


def test_split_by_fractions_counts_and_disjoint():
    paths = [f"p{i:05d}" for i in range(20000)]
    parts = split_by_fractions(paths, [0.8, 0.1, 0.1], stable_rng(0, "k"))
    assert [len(p) for p in parts] == [16000, 2000, 2000]
    assert sorted(sum(parts, [])) == paths
    small = split_by_fractions(paths[:10], [0.8, 0.1, 0.1], stable_rng(0, "k"))
    assert [len(p) for p in small] == [8, 1, 1]
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_fractions(paths, [0.8, 0.1], stable_rng(0, "k"))


def test_seeded_subset_is_random_not_first_n_and_sorted():
    paths = [f"p{i:03d}" for i in range(100)]
    subset = seeded_subset(paths, 10, stable_rng(0, "dir"))
    assert len(subset) == 10 and subset == sorted(subset) and set(subset) <= set(paths)
    assert subset != paths[:10]
    assert subset == seeded_subset(list(reversed(paths)), 10, stable_rng(0, "dir"))
    assert subset != seeded_subset(paths, 10, stable_rng(1, "dir"))
    assert seeded_subset(paths, None, stable_rng(0, "dir")) == paths


def test_overlapping_sources_are_an_error(toy_root):
    plan = Plan(prefix="x", closed=[Source("real/A", 0), Source("real", 1)])
    with pytest.raises(ValueError, match="appear twice"):
        closed_lists(plan, SourceReader("x", toy_root, 0, False))


# ---------------------------------------------------------------- celeba / lsun
def test_celeba_lists_labels_proportions_and_absolute_paths(real_root, tmp_path):
    generate_lists("celeba", real_root, str(tmp_path), echo=quiet)
    got = lists_of(str(tmp_path), "celeba", ("seed", "loss", "finetune", "dataset"))
    for split in ("train", "val", "test"):
        assert labels(got[f"celeba_{split}"]) == {0, 1, 2, 3, 4}
    for split, n in (("train", 16), ("val", 2), ("test", 2)):
        assert Counter(k for _, k in got[f"celeba_{split}"]) == {k: n for k in range(5)}
    assert labels(got["seed"]) == {1}
    assert labels(got["loss"]) == {2, 4}
    assert labels(got["finetune"]) == {1, 2, 3, 4}
    assert labels(got["dataset"]) == {0, 1, 2, 3, 4}
    assert all("/ft_old_crop/" in p for p, _ in got["finetune"])
    assert all("lsun" in p for p, _ in got["dataset"])
    assert all(p.startswith(os.path.abspath(real_root) + os.sep)
               for items in got.values() for p, _ in items)


def test_celeba_closed_splits_disjoint_and_complete(real_root, tmp_path):
    generate_lists("celeba", real_root, str(tmp_path), echo=quiet)
    got = lists_of(str(tmp_path), "celeba")
    paths = [p for items in got.values() for p, _ in items]
    assert len(paths) == len(set(paths)) == 5 * 20
    assert not any("seed_v1" in p or "CramerGAN" in p for p in paths)


def test_cross_seed_takes_every_seed_folder_once(real_root, tmp_path):
    generate_lists("celeba", real_root, str(tmp_path), max_per_cross_dir=3, echo=quiet)
    seed = lists_of(str(tmp_path), "celeba", ("seed",))["seed"]
    paths = [p for p, _ in seed]
    assert len(paths) == len(set(paths)) == 9 * 3
    folders = Counter(os.path.basename(os.path.dirname(p)) for p in paths)
    assert folders == {f"celeba_align_png_cropped_seed_v{v}": 3 for v in range(1, 10)}
    first_three = {f"img_{i:03d}.png" for i in range(3)}
    picked = [{os.path.basename(p) for p in paths if f"seed_v{v}" in p} for v in range(1, 10)]
    assert any(names != first_three for names in picked)  # a random subset, not the first N


def test_class_cap_and_rerun_byte_identical(real_root, tmp_path):
    for out in ("a", "b"):
        generate_lists("celeba", real_root, str(tmp_path / out), max_per_class=10, echo=quiet)
    generate_lists("celeba", real_root, str(tmp_path / "c"), seed=1, max_per_class=10,
                   echo=quiet)
    got = lists_of(str(tmp_path / "a"), "celeba")
    assert [len(got[f"celeba_{s}"]) for s in ("train", "val", "test")] == [40, 5, 5]
    for rel, _, files in os.walk(tmp_path / "a"):
        for name in files:
            a = os.path.join(rel, name)
            b = a.replace(str(tmp_path / "a"), str(tmp_path / "b"))
            with open(a, "rb") as fa, open(b, "rb") as fb:
                assert fa.read() == fb.read(), name
    other = lists_of(str(tmp_path / "c"), "celeba")
    assert other["celeba_train"] != got["celeba_train"]  # the seed matters


def test_lsun_is_the_mirror_image(real_root, tmp_path):
    generate_lists("lsun", real_root, str(tmp_path), echo=quiet)
    got = lists_of(str(tmp_path), "lsun", ("seed", "loss", "finetune", "dataset"))
    assert all("lsun" in p for p, _ in got["lsun_train"])
    assert all("multiseed_lsun" in p for p, _ in got["seed"])
    assert all("/ft_sofa_crop/" in p for p, _ in got["finetune"])
    assert all("celeba" in p for p, _ in got["dataset"])
    assert labels(got["dataset"]) == {0, 1, 2, 3, 4}


def test_missing_directory_is_an_error_naming_it_and_the_mode(real_root, tmp_path):
    root = str(tmp_path / "root")
    make_dirs(root, [d for d in real_layout_dirs() if "SSGAN" not in d], n=2)
    with pytest.raises(ValueError, match=r"(?s)'celeba'.*SSGAN/celeba_align_png_cropped"):
        generate_lists("celeba", root, str(tmp_path / "out"), echo=quiet)
    assert not os.path.exists(tmp_path / "out")


def test_allow_missing_warns_skips_and_summarises(tmp_path):
    root = str(tmp_path / "root")
    make_dirs(root, [d for d in real_layout_dirs() if "SSGAN" not in d], n=10)
    os.makedirs(os.path.join(root, "GANs/SSGAN/lsun_bedroom_200k_png"))  # empty: skipped too
    printed = []
    with pytest.warns(UserWarning, match="SSGAN/celeba_align_png_cropped"):
        report = generate_lists("celeba", root, str(tmp_path / "out"), allow_missing=True,
                                echo=printed.append)
    assert report.missing == ["GANs/SSGAN/celeba_align_png_cropped"]
    assert labels(lists_of(str(tmp_path / "out"), "celeba", ("loss",))["loss"]) == {2}
    assert "missing source directories skipped (1)" in printed[0]
    with pytest.raises(ValueError, match="holds no image"):
        generate_lists("lsun", root, str(tmp_path / "out2"), echo=quiet)


# ---------------------------------------------------------------- in the wild
WILD_FACES_1024 = ["GANs/styleGAN/ffhq", "GANs/styleGAN/celebahq", "GANs/styleGAN/zz_extra",
                   "GANs/styleGAN2/ffhq", "GANs/styleGAN2/cars_not_faces"]


def wild_dirs():
    from DataPrepare.splits.in_the_wild import FIXED_TABLE
    dirs = [d for _, train, cross in FIXED_TABLE for d in train + cross]
    return dirs + WILD_FACES_1024


def test_in_the_wild_classes_caps_and_discovery(tmp_path):
    root = str(tmp_path / "root")
    make_dirs(root, wild_dirs(), n=10)
    generate_lists("in_the_wild", root, str(tmp_path / "out"), max_per_class=5,
                   max_per_cross_dir=2, echo=quiet)
    got = lists_of(str(tmp_path / "out"), "in_the_wild", ("dataset",))
    closed = got["in_the_wild_train"] + got["in_the_wild_val"] + got["in_the_wild_test"]
    assert labels(got["in_the_wild_train"]) == set(range(11))
    assert labels(got["dataset"]) == set(range(11))
    per_dir = Counter(os.path.dirname(p) for p, _ in closed)
    assert set(per_dir.values()) == {5}
    assert set(Counter(os.path.dirname(p) for p, _ in got["dataset"]).values()) == {2}
    by_label = lambda items, k: {os.path.relpath(os.path.dirname(p), root)  # noqa: E731
                                 for p, label in items if label == k}
    assert by_label(closed, 9) == {"GANs/styleGAN/celebahq", "GANs/styleGAN/ffhq"}
    assert by_label(got["dataset"], 9) == {"GANs/styleGAN/zz_extra"}
    assert by_label(closed, 10) == {"GANs/styleGAN2/cars_not_faces"}
    assert by_label(got["dataset"], 10) == {"GANs/styleGAN2/ffhq"}
    assert by_label(closed, 8) == {"GANs/styleGAN2/cat", "GANs/styleGAN2/church"}
    assert by_label(got["dataset"], 8) == {"GANs/styleGAN2/horse"}
    assert not set(p for p, _ in closed) & set(p for p, _ in got["dataset"])


# ---------------------------------------------------------------- toy, pretrain, fingerprint
def test_toy_lists(toy_root, tmp_path):
    generate_lists("toy", toy_root, str(tmp_path), echo=quiet)
    got = lists_of(str(tmp_path), "toy", ("seed", "loss", "finetune", "dataset"))
    assert [len(got[f"toy_{s}"]) for s in ("train", "val", "test")] == [40, 5, 5]
    assert labels(got["toy_train"]) == {0, 1, 2, 3, 4}
    assert labels(got["seed"]) == {1} and len(got["seed"]) == 20
    assert labels(got["loss"]) == {2, 4}
    assert labels(got["finetune"]) == {1, 2, 3, 4}
    assert labels(got["dataset"]) == {0, 1, 2, 3, 4}
    unseen_path = os.path.join(str(tmp_path), "toy_test", "annotations", "toy_test_unseen_arch.txt")
    unseen = read_annotations(unseen_path, allow_unknown=True)
    assert labels(unseen) == {-1} and len(unseen) == 20
    assert {p.split("/GANs/")[1].split("/")[0] for p, _ in unseen} == {"stylegan2", "resizeblur"}
    with pytest.raises(ValueError, match="no known architecture"):
        read_annotations(unseen_path)
    every = [p for items in got.values() for p, _ in items] + [p for p, _ in unseen]
    assert not any("/real/C/" in p or "/train_crops/" in p for p in every)
    assert not any("/stylegan2/" in p or "/resizeblur/" in p for items in got.values() for p, _ in items)
    progan = {p for p, k in got["toy_train"] if k == 2}
    assert all("/GANs/progan/A_seed0/" in p for p in progan)


def _pretrain_paths(save):
    paths = []
    for split in ("train", "val"):
        path = os.path.join(save, f"pretrain_{split}", "annotations", f"pretrain_{split}.txt")
        text = open(path).read().splitlines()
        assert text and not any("\t" in line for line in text)
        assert len(read_annotations(path, with_labels=False)) == len(text)
        paths += text
    return paths


def _held_out_paths(save, prefixes):
    """Every path of every list under ``save`` but the train lists and stage 1's own."""
    held = set()
    for root, _, files in os.walk(save):
        for name in files:
            if name.endswith(".txt") and not name.endswith("_train.txt") and not name.startswith("pretrain"):
                assert name.startswith(prefixes), name
                held |= {p for p, _ in read_annotations(os.path.join(root, name), allow_unknown=True)}
    return held


def test_pretrain_lists_are_real_images_never_held_out_ones(toy_root, tmp_path):
    report = generate_lists("pretrain", toy_root, str(tmp_path), echo=quiet)
    paths = _pretrain_paths(str(tmp_path))
    assert len(set(paths)) == len(paths)
    # real/A: its 1 val + 1 test image are held out; real/B is the cross_dataset real class
    assert len(paths) == 30 - 2 - 10 and report.held_out == 12
    assert {os.path.basename(os.path.dirname(p)) for p in paths} == {"A", "C"}
    generate_lists("toy", toy_root, str(tmp_path), echo=quiet)
    held = _held_out_paths(str(tmp_path), ("toy_",))
    assert len(held) > 12 and not held & set(paths)
    train_real = {p for p, k in lists_of(str(tmp_path), "toy")["toy_train"] if k == 0}
    assert train_real <= set(paths)          # stage-2 training images stay available


def test_pretrain_on_the_authors_layout_leaves_out_every_test_image(tmp_path):
    root = str(tmp_path / "data")
    make_dirs(root, real_layout_dirs() + ["real/extra_photos"], n=20)
    save = str(tmp_path / "lists")
    report = generate_lists("pretrain", root, save, echo=quiet)
    paths = set(_pretrain_paths(save))
    for mode in ("celeba", "lsun"):
        generate_lists(mode, root, save, echo=quiet)
    held = _held_out_paths(save, ("celeba_", "lsun_"))
    assert held and not held & paths
    # each real folder (20 images, under the 2,000 cap) is the other experiment's
    # cross_dataset real class, so all 40 are held out; only the extra folder is left
    assert report.held_out == 40
    assert {os.path.basename(os.path.dirname(p)) for p in paths} == {"extra_photos"} and len(paths) == 20
    assert "left out of stage 1: 40 image(s)" in format_report(report)


def test_fingerprint_arch_balanced_and_weight_classes(toy_root, tmp_path):
    generate_lists("fingerprint", toy_root, str(tmp_path), echo=quiet)

    def read(task, split):
        name = f"fingerprint_{task}_{split}"
        return read_annotations(str(tmp_path / name / "annotations" / (name + ".txt")))

    arch = read("arch", "train") + read("arch", "test")
    counts = Counter(label for _, label in arch)
    assert sorted(counts) == [0, 1, 2, 3] and len(set(counts.values())) == 1  # balanced
    assert counts[2] == 30  # bilinear: 3 models x 10, the smallest class
    assert Counter(k for _, k in read("arch", "test")) == {k: 6 for k in range(4)}
    for path, label in arch:
        assert f"/GANs/{TOY_ARCHS[label]}/" in path
    dcgan_models = {os.path.basename(os.path.dirname(p)) for p, k in arch if k == 0}
    assert dcgan_models == {"A_seed0", "A_seed1", "A_seed2", "B_seed0", "ft_C"}
    weight = read("weight", "train") + read("weight", "test")
    assert Counter(k for _, k in read("weight", "train")) == {0: 8, 1: 8, 2: 8}
    for path, label in weight:
        assert f"/GANs/dcgan/A_seed{label}/" in path


# ---------------------------------------------------------------- CLI
def test_cli_writes_lists_and_reports_errors(toy_root, tmp_path):
    script = os.path.join(REPO, "DataPrepare", "generate_.py")
    ok = subprocess.run([sys.executable, script, "--mode", "toy", "--data_root", toy_root,
                         "--save_path", str(tmp_path / "out"), "--seed", "3"],
                        capture_output=True, text=True, cwd=str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert "toy_test_cross_dataset" in ok.stdout and "total" in ok.stdout
    unseen_row = next(line for line in ok.stdout.splitlines() if line.startswith("toy_test_unseen_arch"))
    assert unseen_row.split()[1:] == ["20"] + ["-"] * 5 + ["20"]  # columns -1, 0..4, total
    items = read_annotations(str(tmp_path / "out/toy_val/annotations/toy_val.txt"))
    assert len(items) == 5 and all(os.path.isabs(p) for p, _ in items)
    bad = subprocess.run([sys.executable, script, "--mode", "celeba", "--data_root", toy_root,
                          "--save_path", str(tmp_path / "bad")],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert bad.returncode == 2 and "celeba_align_png_cropped" in bad.stderr
    assert not (tmp_path / "bad").exists()
