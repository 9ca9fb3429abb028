"""DNA-Det ablation on the toy zoo: patchwise cross-entropy only, no contrastive loss.

Same crops and schedule as ``toy``. With ``--pretrain_model_path`` it is the
"without contrastive" ablation; without it, the "without both" ablation. (The
"without pre-training" ablation needs no module: it is ``toy`` trained without
``--pretrain_model_path``.)
"""
from configs.toy import *  # noqa: F401,F403  (the toy zoo's geometry and schedule)

use_contrastive = False
