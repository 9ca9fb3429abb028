"""The backbone matches the released checkpoint format and trains."""
import copy

import pytest
import torch

from models import ContrastiveModel, SimpleCNN, recalibrate_batchnorm
from models.baselines import build_baseline
from models.simple_cnn import HighPassResidual

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


def test_highpass_filter_removes_constants_and_keeps_fine_detail():
    flt = HighPassResidual()
    constant = torch.full((1, 3, 32, 32), 0.7)
    assert flt(constant).abs().max() < 1e-5
    # a 2-px checkerboard (an upsampling trace) passes almost unchanged; a smooth ramp does not
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None]).remainder(2).float().expand(1, 3, 32, 32)
    checker = checker * 2 - 1
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    assert torch.allclose(flt(checker)[inner], checker[inner], atol=0.05)
    ramp = torch.linspace(-1, 1, 32).expand(1, 3, 32, 32)
    assert flt(ramp)[inner].abs().max() < 1e-3


def test_input_filter_adds_no_weights_and_changes_the_output():
    torch.manual_seed(0)
    plain = SimpleCNN(5, width=8).eval()
    filtered = SimpleCNN(5, width=8, input_filter="highpass").eval()
    assert list(filtered.state_dict()) == list(plain.state_dict())
    filtered.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert not torch.allclose(plain(x)[0], filtered(x)[0])
    # shifting every pixel by a constant is invisible through the high-pass filter
    assert torch.allclose(filtered(x)[0], filtered(x + 0.3)[0], atol=1e-4)


def test_unknown_input_filter_is_an_error():
    with pytest.raises(ValueError, match="input_filter='sobel'"):
        SimpleCNN(5, width=8, input_filter="sobel")


def test_recalibrate_batchnorm_averages_the_batches_and_restores_the_module():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4, momentum=0.3)).eval()
    batches = [torch.randn(5, 3, 6, 6) + shift for shift in (0.0, 2.0, -1.0)]
    with torch.no_grad():
        means = torch.stack([model[0](b).mean((0, 2, 3)) for b in batches])
    assert recalibrate_batchnorm(model, iter(batches)) == 3
    norm = model[1]
    assert torch.allclose(norm.running_mean, means.mean(0), atol=1e-5)   # plain average, not momentum
    assert norm.momentum == 0.3 and not model.training
    assert recalibrate_batchnorm(torch.nn.Linear(2, 2), [torch.zeros(1, 2)]) == 0   # no BatchNorm


def test_recalibrate_batchnorm_without_batches_is_an_error_and_keeps_the_statistics():
    model = torch.nn.BatchNorm2d(2)
    model.running_mean.fill_(3.0)
    with pytest.raises(ValueError, match="no batch"):
        recalibrate_batchnorm(model, [])
    assert torch.equal(model.running_mean, torch.full((2,), 3.0)) and model.momentum == 0.1


@pytest.mark.parametrize("make", [lambda: SimpleCNN(5, width=8),
                                  lambda: build_baseline("attnet", 5, width=8),
                                  lambda: build_baseline("dct", 5, width=16),
                                  lambda: ContrastiveModel(SimpleCNN(5, width=8), proj_dim=16)])
def test_heads_run_in_fp32_under_bf16_autocast(make):
    """bf16 rounds logits near 20 to steps of 0.125 (tied open-set scores); the heads stay fp32."""
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        plain_logits, plain_second = model(x)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            logits, second = model(x)
    assert logits.dtype == torch.float32
    backbone = model.backbone if isinstance(model, ContrastiveModel) else model
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        pooled, feature_map = backbone.forward_features(x)
    assert pooled.dtype == torch.float32 and feature_map.dtype == torch.bfloat16
    head = getattr(backbone, "classification_head", None) or backbone.classifier
    with torch.no_grad():
        assert torch.equal(logits, head(pooled))           # the head itself in fp32
        bf16_head = copy.deepcopy(head).to(torch.bfloat16)(pooled.to(torch.bfloat16)).float()
    assert not torch.equal(logits, bf16_head)               # what autocast alone would give
    if isinstance(model, ContrastiveModel):
        assert second.dtype == torch.float32
    # without autocast nothing changed: fp32 throughout
    assert plain_logits.dtype == torch.float32 and plain_second.dtype == torch.float32


def test_in_training_the_heads_follow_autocast_as_the_recipe_was_measured():
    """Training keeps the heads under autocast (bit-identical to the runs of the results tables);
    only evaluation moves them to fp32."""
    torch.manual_seed(0)
    model = ContrastiveModel(SimpleCNN(5, width=8), proj_dim=16).train()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits, projections = model(torch.randn(4, 3, 64, 64))
    assert logits.dtype == torch.bfloat16 and projections.dtype == torch.bfloat16
    model.eval()
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits, projections = model(torch.randn(4, 3, 64, 64))
    assert logits.dtype == torch.float32 and projections.dtype == torch.float32
