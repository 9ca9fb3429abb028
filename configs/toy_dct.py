"""Toy zoo baseline ``dct``: Frank et al. (ICML 2020)'s log-DCT spectrum + simple CNN.

``models.baselines.DCTNet`` on the whole 128-px resized image (a 128-px input is exactly
their network: the 32x32 map is flattened), cross-entropy, no crops, no contrastive
loss, no pre-training.
"""
from configs.toy import *  # noqa: F401,F403  (the toy zoo's geometry and schedule)

method = "dct"
whole_image = True
use_contrastive = False
width = 64                # their channel counts 3, 8, 16, 32

input_filter = "none"      # the baseline takes the raw image (its own DCT front end)
