"""The DNA-Det backbone (``Simple_CNN`` in the paper's code), SPEC section 2.

Four stages; stage i (i = 0..3) has ``width * 2**i`` channels and is a *down*
block (Conv 4x4 stride 2) followed by a *keep* block (Conv 3x3 stride 1), each
Conv -> BatchNorm -> LeakyReLU(0.2). Fully convolutional, total stride 16; the head
is global average pooling -> Dropout(0.2) -> Linear(8w, class_num).

``state_dict()`` keys match the authors' released ``model.pth`` exactly:
``main.{0..7}.main.{0,1}.*`` and ``classification_head.1.*``.

``input_filter="highpass"`` (not in the paper; the toy configs use it) puts a fixed
high-pass residual in front of the first conv, see ``HighPassResidual``. It has no
weights, so the state_dict keys stay those of the released format.
"""
import torch
import torch.nn.functional as F
from torch import nn

INPUT_FILTERS = ("none", "highpass")


def head_in_fp32(head: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """``head(pooled)`` in float32, outside autocast.

    Under bf16 autocast a linear head rounds its logits to 8 significant bits: logits near 20
    move in steps of 0.125, so energy and max-logit scores of different images tie and the
    open-set AUROC counts the ties as coin flips. The head is a few thousand multiply-adds;
    in float32 it costs nothing measurable. Without autocast this is exactly ``head(pooled)``.
    Used in evaluation only: in training the heads stay under autocast, as in the runs the toy
    recipe was measured with (with the heads in float32 also in training, six bf16 runs of the
    toy recipe ended 22 points lower on cross-loss, p = 0.014; docs/results.md, "Precision").
    """
    with torch.autocast(device_type=pooled.device.type, enabled=False):
        return head(pooled.float())


def run_head(head: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """A head in training (``head.training``): under autocast; in evaluation: ``head_in_fp32``."""
    return head(pooled) if head.training else head_in_fp32(head, pooled)


class PooledClassifier(nn.Module):
    """A network whose logits are a head on a pooled feature (DNA-Det and both baselines).

    Subclasses define ``forward_features(x) -> (pooled [N, D], feature_map)``, pooling
    ``self.pooling_input(feature_map)``, and name their classifier module in ``head_name``.
    ``classify(pooled)`` runs it; ``forward(x) -> (logits [N, K], feature_map)``. In evaluation
    (``eval()``) the pooled feature and the logits are float32 under any autocast
    (``run_head``); in training they follow autocast.
    """
    head_name = "classification_head"

    @property
    def head(self) -> nn.Module:
        """The classifier: pooled feature [N, D] -> logits [N, K]."""
        return getattr(self, self.head_name)

    def pooling_input(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The feature map to pool: float32 in evaluation, as computed in training."""
        return feature_map if self.training else feature_map.float()

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        return run_head(self.head, pooled)

    def forward(self, x: torch.Tensor):
        pooled, feature_map = self.forward_features(x)
        return self.classify(pooled), feature_map


class HighPassResidual(nn.Module):
    """x - GaussianBlur(x): keeps the high frequencies where upsampling traces live.

    A fixed (untrained) depthwise filter, like the noise residuals of image forensics.
    Measured on the toy zoo (README, "Why the toy configs filter their input"): a plain
    CNN on raw 32-px crops stays at chance (loss 1.611 after 700 steps) because photo
    content dominates the gradient; on this residual it reaches 74 % closed-set in 400.
    The Gaussian has ``sigma`` px and a ``2 * radius + 1`` tap kernel, reflect padding.
    Forward: x [N, C, H, W] -> [N, C, H, W]; a constant image maps to zeros.
    """

    def __init__(self, sigma: float = 2.0, radius: int = 4):
        super().__init__()
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-taps.pow(2) / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()
        # not persistent: the filter is fixed, and released-format weight files stay unchanged
        self.register_buffer("kernel", torch.outer(kernel, kernel)[None, None], persistent=False)
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(channels, 1, -1, -1)
        blurred = F.conv2d(F.pad(x, (self.radius,) * 4, mode="reflect"), weight, groups=channels)
        return x - blurred


class ConvBlock(nn.Module):
    """Conv2d(bias) -> BatchNorm2d -> LeakyReLU(0.2); keys ``main.0.*`` (conv), ``main.1.*`` (BN)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel, stride, padding=1, bias=True),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class SimpleCNN(PooledClassifier):
    """DNA-Det backbone and classifier.

    Args:
        class_num: number of output classes (5 multiple-cross, 11 in the wild, 170 stage 1).
        width: base width w (64 in the paper); the pooled feature has 8w channels.
        dropout: dropout before the linear classifier (0.2).
        input_filter: ``none`` (the paper) or ``highpass`` (``HighPassResidual`` first).
    Forward:
        x: [N, 3, H, W], H and W multiples of 16 for exact stride (any size works).
        returns (logits [N, class_num], feature_map [N, 8w, H/16, W/16]).
        In evaluation the pooled feature and the logits are float32 under any autocast.
        Logits, not probabilities: the released code applied softmax here and again
        inside CrossEntropyLoss; this project fixes that double softmax.
    """

    def __init__(self, class_num: int, width: int = 64, dropout: float = 0.2,
                 input_filter: str = "none"):
        super().__init__()
        self.set_input_filter(input_filter)
        blocks, channels = [], 3
        for stage in range(4):
            out = width * 2 ** stage
            blocks.append(ConvBlock(channels, out, kernel=4, stride=2))  # down
            blocks.append(ConvBlock(out, out, kernel=3, stride=1))       # keep
            channels = out
        self.main = nn.Sequential(*blocks)
        self.feature_dim = channels
        self.classification_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, class_num))

    def set_input_filter(self, input_filter: str) -> None:
        """Choose the fixed front end (it has no weights, so trained weights are unaffected)."""
        if input_filter not in INPUT_FILTERS:
            raise ValueError(f"input_filter={input_filter!r}; choose one of {INPUT_FILTERS}")
        self.input_filter = input_filter
        self.prefilter = HighPassResidual() if input_filter == "highpass" else nn.Identity()

    def forward_features(self, x: torch.Tensor):
        """Return (pooled feature [N, 8w], feature map [N, 8w, h, w])."""
        feature_map = self.main(self.prefilter(x))
        return self.pooling_input(feature_map).mean(dim=(2, 3)), feature_map
