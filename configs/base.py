"""Every configuration key, with its type and default (SPEC section 6).

Experiment modules (``celeba.py``, ``toy.py``, ...) assign only the keys they change,
as plain module-level variables; ``configs.load_config`` merges them onto these
defaults and then applies strict command-line overrides (``--set key=value``).
Defaults are the released CelebA stage-2 values.
"""
from dataclasses import dataclass
from typing import Tuple


@dataclass
class Config:
    # --- reproducibility and hardware ---
    seed: int = 0                       # released seed
    device: str = "auto"                # auto | cpu | cuda | cuda:N (the CLI --device wins)
    num_workers: int = 4                # DataLoader worker processes
    amp: str = "auto"                   # auto = off (fp32, bit-exact) | bf16 | fp16 (CUDA only); engine.device
    channels_last: bool = True          # NHWC memory format of the training network (CUDA and CPU)
    compile: bool = False               # torch.compile the network (CUDA only; ignored on CPU)
    data_pipeline: str = "batched"      # batched: decode once, resize/crop as tensors | pil: released per-image Pillow path
    image_cache_gb: float = 8.0         # batched stage 2: decoded uint8 training images kept in memory, per process

    # --- model ---
    method: str = "dnadet"              # dnadet | ce_only | attnet | dct (see models.build_model)
    class_num: int = 5                  # 0 real, 1 ProGAN, 2 MMDGAN, 3 SNGAN, 4 InfoMaxGAN
    class_names: Tuple[str, ...] = ("real", "ProGAN", "MMDGAN", "SNGAN", "InfoMaxGAN")
    width: int = 64                     # backbone base width w; stage i has w * 2**i channels
    proj_dim: int = 128                 # contrastive projection output size
    dropout: float = 0.2                # before the linear classifier
    input_filter: str = "none"          # none (the paper) | highpass: x - GaussianBlur(x), sigma 2, before
    #                                     the first conv (models.simple_cnn.HighPassResidual; toy configs)

    # --- data (SPEC section 4) ---
    batch_size: int = 32                # items per step; one item = one image of every class
    val_batch_size: int = 32            # whole images per evaluation batch
    crop_size: int = 128                # centre crop of non-square images
    resize_size: int = 512              # PIL bicubic resize of the whole image
    second_resize_size: int = 0         # 0 = none; in-the-wild resizes twice (128 then 512)
    multi_size: int = 64                # side of each random training crop
    crop_num: int = 16                  # random crops per image (views for the contrastive loss)
    train_aug: bool = False             # random post-processings in stage 2 (robustness training)
    train_aug_prob: float = 0.5         # probability that an image gets one post-processing

    # --- objective (SPEC section 3) ---
    temperature: float = 0.07           # SupCon temperature (base temperature equals it)
    use_contrastive: bool = True        # False: patchwise cross-entropy only (ablation)
    whole_image: bool = False           # True: no crops, train on whole resized images (baselines)

    # --- optimisation ---
    learning_rate: float = 1e-4         # Adam lr of the network
    loss_weight_lr: float = 0.01        # Adam lr of the automatic loss weights
    lr_step_size: int = 500             # StepLR step, in iterations
    lr_gamma: float = 0.9               # StepLR decay
    max_epochs: int = 30
    iters_per_epoch: int = 0            # 0 = one pass over the largest class
    early_stop_bar: int = 20            # stop after this many epochs without improvement
    save_interval: int = 5              # periodic snapshot every N epochs
    metric: str = "acc"                 # model selection: acc | f1 (macro-F1)
    val_max_images: int = 0             # 0 = whole validation list; else a seeded subset
    log_interval: int = 20              # iterations between TensorBoard loss points
    bn_recalibrate_batches: int = 0     # >0: before each validation, BatchNorm statistics are
    #                                     recomputed over this many training batches (precise BN;
    #                                     0 = the paper's momentum averages)

    # --- stage-1 pre-training only ---
    pretrain_crop: int = 128            # random crop of the source image before transforming
    pretrain_val_per_class: int = 10    # validation images per transformation (170 x 10)
    pretrain_multiscale: bool = False   # True: random-side squares resized to pretrain_crop (large photos)
    pretrain_images_per_label: int = 1  # source images per item sharing one transformation (SupCon positives)


CHOICES = {
    "amp": ("auto", "off", "bf16", "fp16"),
    "data_pipeline": ("batched", "pil"),
    "method": ("dnadet", "ce_only", "attnet", "dct"),
    "input_filter": ("none", "highpass"),
    "metric": ("acc", "f1"),
}
