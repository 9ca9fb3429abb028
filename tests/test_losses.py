"""SupCon against a hand computation, its edge cases, and automatic weighting."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import AutomaticWeightedLoss, SupConLoss


def supcon_by_hand(features: np.ndarray, labels: np.ndarray, temperature: float, base: float) -> float:
    """Direct loop over anchors, following Khosla et al. eq. 2 ("all" mode)."""
    n_images, n_views, _ = features.shape
    anchors = [(i, v) for v in range(n_views) for i in range(n_images)]
    per_anchor = []
    for a, (i, v) in enumerate(anchors):
        others = [b for b in range(len(anchors)) if b != a]
        sims = {b: features[i, v] @ features[anchors[b][0], anchors[b][1]] / temperature for b in others}
        denominator = math.log(sum(math.exp(s) for s in sims.values()))
        positives = [b for b in others if labels[anchors[b][0]] == labels[i]]
        if positives:
            per_anchor.append(np.mean([sims[b] - denominator for b in positives]))
    return -(temperature / base) * float(np.mean(per_anchor))


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_supcon_matches_hand_computation(temperature):
    generator = torch.Generator().manual_seed(0)
    features = F.normalize(torch.randn(4, 3, 5, generator=generator), dim=2)
    labels = torch.tensor([0, 1, 0, 2])
    loss = SupConLoss(temperature, base_temperature=0.07)(features, labels)
    expected = supcon_by_hand(features.double().numpy(), labels.numpy(), temperature, 0.07)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_image_whose_class_is_alone_uses_its_own_views():
    features = F.normalize(torch.randn(2, 2, 4), dim=2)
    labels = torch.tensor([0, 1])  # each class has one image: positives are the other views
    loss = SupConLoss()(features, labels)
    expected = supcon_by_hand(features.double().numpy(), labels.numpy(), 0.07, 0.07)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_anchor_without_positive_is_left_out_not_nan():
    generator = torch.Generator().manual_seed(3)   # unseeded, the loss could be ~1e-11 (float32 rounding)
    features = F.normalize(torch.randn(3, 1, 4, generator=generator), dim=2, eps=1e-8).requires_grad_()
    labels = torch.tensor([0, 0, 1])  # image 2 has no positive at all
    loss = SupConLoss()(features, labels)
    assert torch.isfinite(loss)
    expected = supcon_by_hand(features.detach().double().numpy(), labels.numpy(), 0.07, 0.07)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.isfinite(features.grad).all()


def test_no_positive_anywhere_gives_zero_with_graph():
    features = F.normalize(torch.randn(3, 1, 4), dim=2).requires_grad_()
    loss = SupConLoss()(features, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0
    loss.backward()


def test_identical_views_of_one_class_give_lower_loss_than_mixed():
    same = F.normalize(torch.ones(2, 4, 8), dim=2)
    mixed = F.normalize(torch.randn(2, 4, 8), dim=2)
    labels = torch.tensor([0, 1])
    assert SupConLoss()(same, torch.tensor([0, 0])) < SupConLoss()(mixed, labels)


def test_supcon_rejects_bad_shapes():
    with pytest.raises(ValueError, match="n_images, n_views"):
        SupConLoss()(torch.randn(4, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        SupConLoss()(torch.randn(4, 2, 8), torch.zeros(3, dtype=torch.long))


def test_automatic_weighting_value_and_gradient():
    weighting = AutomaticWeightedLoss(2)
    a, b = torch.tensor(2.0), torch.tensor(4.0)
    total = weighting(a, b)
    assert total.item() == pytest.approx(0.5 * 2 + math.log(2) + 0.5 * 4 + math.log(2))
    total.backward()
    # d/ds [0.5 L / s^2 + log(1 + s^2)] at s = 1 is -L + 1
    assert weighting.params.grad.tolist() == pytest.approx([-2 + 1, -4 + 1])
    with pytest.raises(ValueError, match="expected 2 losses"):
        weighting(a)
