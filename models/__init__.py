"""DNA-Det models: the backbone, the contrastive wrapper, baselines and building them by name."""
from models.batchnorm import recalibrate_batchnorm
from models.contrastive import ContrastiveModel, ProjectionHead, TrainModel
from models.build import HEAD_KEYS, build_model
from models.losses import AutomaticWeightedLoss, SupConLoss
from models.simple_cnn import SimpleCNN

__all__ = ["SimpleCNN", "ContrastiveModel", "ProjectionHead", "TrainModel", "SupConLoss",
           "AutomaticWeightedLoss", "build_model", "HEAD_KEYS",
           "recalibrate_batchnorm"]
