"""Toy zoo baseline ``ce_only``: the DNA-Det backbone with plain cross-entropy on whole images.

The ordinary "model attribution" classifier the paper argues against: no random crops
(the whole 128-px resized image is one sample), no contrastive loss, and it is trained
without ``--pretrain_model_path`` (no stage-1 pre-training). Everything else is ``toy``.
"""
from configs.toy import *  # noqa: F401,F403  (the toy zoo's geometry and schedule)

method = "ce_only"
whole_image = True        # one view per image: the whole resized image
use_contrastive = False   # nothing to contrast with a single view
