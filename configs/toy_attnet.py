"""Toy zoo baseline ``attnet``: Yu et al. (ICCV 2019)'s plain CNN classifier on whole images.

``models.baselines.AttNet`` (ProGAN-discriminator layout), cross-entropy on the whole
128-px resized image, no crops, no contrastive loss, no pre-training.
"""
from configs.toy import *  # noqa: F401,F403  (the toy zoo's geometry and schedule)

method = "attnet"
whole_image = True
use_contrastive = False
width = 16                # full-resolution 3x3 convolutions are costly on a CPU; 16 -> 16..128 channels

input_filter = "none"      # the baseline takes the raw image, as its authors did
