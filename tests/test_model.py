"""The backbone matches the released checkpoint format and trains."""
import torch

from models import ContrastiveModel, SimpleCNN

RELEASED_SHAPES = {
    0: (64, 3, 4, 4), 1: (64, 64, 3, 3), 2: (128, 64, 4, 4), 3: (128, 128, 3, 3),
    4: (256, 128, 4, 4), 5: (256, 256, 3, 3), 6: (512, 256, 4, 4), 7: (512, 512, 3, 3),
}


def test_state_dict_keys_and_shapes_match_release():
    state = SimpleCNN(5).state_dict()
    expected = []
    for i in range(8):
        expected += [f"main.{i}.main.0.weight", f"main.{i}.main.0.bias"]
        expected += [f"main.{i}.main.1.{n}" for n in
                     ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    expected += ["classification_head.1.weight", "classification_head.1.bias"]
    assert list(state) == expected
    for i, shape in RELEASED_SHAPES.items():
        assert tuple(state[f"main.{i}.main.0.weight"].shape) == shape
    assert tuple(state["classification_head.1.weight"].shape) == (5, 512)


def test_parameter_count_is_released_count():
    assert sum(p.numel() for p in SimpleCNN(5).parameters()) == 5_897_349


def test_forward_returns_logits_and_stride_16_feature_map():
    model = SimpleCNN(5, width=8).eval()
    logits, feature_map = model(torch.randn(2, 3, 64, 48))
    assert logits.shape == (2, 5)
    assert feature_map.shape == (2, 64, 4, 3)
    # logits, not probabilities (the released double softmax is fixed)
    assert not torch.allclose(logits.sum(dim=1), torch.ones(2))


def test_backward_reaches_every_parameter_without_nan():
    model = ContrastiveModel(SimpleCNN(4, width=8), proj_dim=16)
    logits, projections = model(torch.randn(6, 3, 32, 32))
    assert torch.allclose(projections.norm(dim=1), torch.ones(6), atol=1e-5)
    (logits.logsumexp(dim=1).mean() + projections.sum()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_projection_head_keys():
    keys = [k for k in ContrastiveModel(SimpleCNN(5, width=8)).state_dict() if k.startswith("projection")]
    assert keys == ["projection.head.0.weight", "projection.head.0.bias",
                    "projection.head.2.weight", "projection.head.2.bias"]
