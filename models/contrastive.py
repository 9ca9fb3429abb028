"""What training optimises: the backbone, the projection head of the contrastive loss and the
automatic loss weights."""
import torch
import torch.nn.functional as F
from torch import nn

from models.losses import AutomaticWeightedLoss
from models.simple_cnn import run_head


class ProjectionHead(nn.Module):
    """Linear(d, d) -> ReLU -> Linear(d, proj_dim), then L2-normalised (keys ``head.0``, ``head.2``)."""

    def __init__(self, in_dim: int, proj_dim: int = 128):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True),
                                  nn.Linear(in_dim, proj_dim))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(pooled), dim=1)


class ContrastiveModel(nn.Module):
    """Backbone with a projection head, used only while training.

    Forward: x [N, 3, h, w] -> (logits [N, classes], projections [N, proj_dim], unit norm);
    in training both heads follow autocast (``models.simple_cnn.run_head``).
    ``backbone`` is what is saved as the released-format ``model.pth``.
    """

    def __init__(self, backbone: nn.Module, proj_dim: int = 128):
        super().__init__()
        self.backbone = backbone
        self.projection = ProjectionHead(backbone.feature_dim, proj_dim)

    def forward(self, x: torch.Tensor):
        pooled, _ = self.backbone.forward_features(x)
        logits = self.backbone.classify(pooled)
        return logits, run_head(self.projection, pooled)


class TrainModel(nn.Module):
    """What the optimiser trains: the classifier, plus (``use_contrastive``) the projection
    head and the automatic weights of the two losses.

    Forward: x [N, 3, h, w] -> (logits [N, K], projections [N, proj_dim] or None).
    ``backbone`` is the classifier saved as the released-format ``model.pth``.
    """

    def __init__(self, backbone: nn.Module, use_contrastive: bool, proj_dim: int = 128):
        super().__init__()
        self.use_contrastive = use_contrastive
        self.net = ContrastiveModel(backbone, proj_dim) if use_contrastive else backbone
        self.loss_weights = AutomaticWeightedLoss(2) if use_contrastive else None

    @property
    def backbone(self) -> nn.Module:
        return self.net.backbone if self.use_contrastive else self.net

    def forward(self, x: torch.Tensor):
        if self.use_contrastive:
            return self.net(x)
        return self.net(x)[0], None
