"""DNA-Det models: the backbone, the contrastive wrapper, baselines and weight loading."""
from models.batchnorm import recalibrate_batchnorm
from models.contrastive import ContrastiveModel, ProjectionHead
from models.loading import (HEAD_KEYS, build_model, load_backbone_for_finetune, load_model,
                            read_state_dict, use_config_input_filter)
from models.losses import AutomaticWeightedLoss, SupConLoss
from models.simple_cnn import SimpleCNN

__all__ = ["SimpleCNN", "ContrastiveModel", "ProjectionHead", "SupConLoss",
           "AutomaticWeightedLoss", "build_model", "load_model", "read_state_dict",
           "load_backbone_for_finetune", "use_config_input_filter", "HEAD_KEYS",
           "recalibrate_batchnorm"]
