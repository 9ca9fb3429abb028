"""celeba and lsun experiments on the released dataset layout (SPEC section 7).

Five classes: 0 real, 1 ProGAN, 2 MMDGAN, 3 SNGAN, 4 InfoMaxGAN.

| list             | celeba                                           | lsun                   |
|------------------|--------------------------------------------------|------------------------|
| closed 80/10/10  | real CelebA, ProGAN seed v0, MMDGAN, SNGAN,      | the same on            |
|                  | InfoMax-GAN on CelebA (<= 20,000 per class)      | LSUN-bedroom           |
| cross_seed       | ProGAN CelebA seeds v1..v9 -> 1                  | LSUN seeds v1..v9      |
| cross_loss       | CramerGAN -> 2, SSGAN -> 4                       | on LSUN-bedroom        |
| cross_finetune   | {ProGAN,MMDGAN,SNGAN,InfoMax-GAN}/ft_old_crop    | .../ft_sofa_crop       |
| cross_dataset    | the lsun closed sources -> 0..4                  | the celeba closed ones |

Cross lists take at most 2,000 images from *each* directory (the fix of SPEC section 7:
the released script repeated the first seed's images in cross_seed).
"""
from typing import Dict, List, Optional

from .plan import Plan, Source, with_cap

CLASS_CAP = 20000
CROSS_DIR_CAP = 2000
GAN_NAMES = ("ProGAN", "MMDGAN", "SNGAN", "InfoMax-GAN")  # labels 1..4

LAYOUTS: Dict[str, Dict[str, str]] = {
    "celeba": {
        "real": "real/celeba/celeba_align_png_cropped",
        "progan_seed": "GANs/ProGAN/multiseed_celeba/celeba_align_png_cropped_seed_v{}",
        "gan_subdir": "celeba_align_png_cropped",
        "finetune": "ft_old_crop",
        "other": "lsun",
    },
    "lsun": {
        "real": "real/lsun/bedroom",
        "progan_seed": "GANs/ProGAN/multiseed_lsun/lsun_bedroom_200k_png_seed_v{}",
        "gan_subdir": "lsun_bedroom_200k_png",
        "finetune": "ft_sofa_crop",
        "other": "celeba",
    },
}


def closed_sources(dataset: str) -> List[Source]:
    """Real + the four GANs trained on ``dataset`` (ProGAN seed v0), labels 0..4."""
    layout = LAYOUTS[dataset]
    sources = [Source(layout["real"], 0), Source(layout["progan_seed"].format(0), 1)]
    for label, gan in enumerate(GAN_NAMES[1:], start=2):
        sources.append(Source(f"GANs/{gan}/{layout['gan_subdir']}", label))
    return sources


def cross_sources(dataset: str, cap: Optional[int]) -> Dict[str, List[Source]]:
    """The four cross-test source sets of ``dataset``, each directory capped at ``cap``."""
    layout = LAYOUTS[dataset]
    seed = [Source(layout["progan_seed"].format(v), 1, cap) for v in range(1, 10)]
    loss = [Source(f"GANs/CramerGAN/{layout['gan_subdir']}", 2, cap),
            Source(f"GANs/SSGAN/{layout['gan_subdir']}", 4, cap)]
    finetune = [Source(f"GANs/{gan}/{layout['finetune']}", label, cap)
                for label, gan in enumerate(GAN_NAMES, start=1)]
    dataset_shift = with_cap(closed_sources(layout["other"]), cap)
    return {"seed": seed, "loss": loss, "finetune": finetune, "dataset": dataset_shift}


def real_layout_plans(dataset: str, data_root: str, max_per_class: Optional[int],
                      max_per_cross_dir: Optional[int]) -> List[Plan]:
    """The single plan of the ``celeba`` or ``lsun`` experiment (``data_root`` unused:
    the layout is fixed)."""
    class_cap = CLASS_CAP if max_per_class is None else max_per_class
    cross_cap = CROSS_DIR_CAP if max_per_cross_dir is None else max_per_cross_dir
    cross = cross_sources(dataset, cross_cap)
    return [Plan(prefix=dataset, closed=closed_sources(dataset), class_cap=class_cap,
                 cross=[(kind, cross[kind]) for kind in ("seed", "loss", "finetune", "dataset")])]
