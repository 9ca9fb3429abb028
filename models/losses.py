"""Losses of DNA-Det (SPEC section 3).

``SupConLoss``: supervised contrastive loss (Khosla et al., NeurIPS 2020), "all"
contrast mode, with the SupContrast call convention.
``AutomaticWeightedLoss``: uncertainty-style weighting of several losses.
"""
import torch
from torch import nn


class SupConLoss(nn.Module):
    """Supervised contrastive loss, every view of every image used as an anchor.

    Args:
        temperature: T (0.07). base_temperature: T_base (0.07); the loss is scaled by T / T_base.
    Call:
        features: [n_images, n_views, dim], L2-normalised along dim. In DNA-Det the
            views are the random crops (patches) of one image.
        labels: [n_images] integer class of each image.
    Returns:
        scalar: -(T / T_base) * mean over anchors of the mean log-probability of
        the anchor's positives (all other views with the same label; the anchor
        itself is excluded from numerator and denominator). An anchor without any
        positive (one view and a class seen once) is left out of the mean instead
        of producing NaN as the reference code did; with no positive anywhere the
        loss is 0 (still attached to the graph).
    """

    def __init__(self, temperature: float = 0.07, base_temperature: float = 0.07):
        super().__init__()
        self.temperature = temperature
        self.base_temperature = base_temperature

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if features.dim() != 3:
            raise ValueError(f"features must be [n_images, n_views, dim], got {tuple(features.shape)}")
        n_images, n_views, _ = features.shape
        if labels.shape != (n_images,):
            raise ValueError(f"labels must be [{n_images}], got {tuple(labels.shape)}")
        # view-major flattening: row v * n_images + i is view v of image i
        anchors = features.transpose(0, 1).reshape(n_images * n_views, -1).float()
        anchor_labels = labels.repeat(n_views)
        logits = anchors @ anchors.T / self.temperature            # [A, A]
        self_mask = torch.eye(len(anchors), dtype=torch.bool, device=features.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positives = (anchor_labels[:, None] == anchor_labels[None, :]) & ~self_mask
        n_positives = positives.sum(dim=1)
        has_positive = n_positives > 0
        pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
        mean_log_prob = pos_log_prob[has_positive] / n_positives[has_positive]
        if mean_log_prob.numel() == 0:
            return features.sum() * 0.0
        return -(self.temperature / self.base_temperature) * mean_log_prob.mean()


class AutomaticWeightedLoss(nn.Module):
    """L = sum_i 0.5 / s_i^2 * L_i + log(1 + s_i^2), one learnable s_i per loss, init 1.

    Args:
        num: how many losses are combined (2 in DNA-Det: cross-entropy, SupCon).
    Call: ``weighting(loss_a, loss_b, ...)`` with exactly ``num`` scalar losses.
    """

    def __init__(self, num: int = 2):
        super().__init__()
        self.params = nn.Parameter(torch.ones(num))

    def forward(self, *losses: torch.Tensor) -> torch.Tensor:
        if len(losses) != len(self.params):
            raise ValueError(f"expected {len(self.params)} losses, got {len(losses)}")
        total = 0.0
        for s, loss in zip(self.params, losses):
            total = total + 0.5 / s ** 2 * loss + torch.log(1 + s ** 2)
        return total
