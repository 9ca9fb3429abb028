"""Baseline attribution networks, trained and evaluated by the same code as DNA-Det.

Both take x [N, 3, H, W] in [-1, 1] and return (logits [N, class_num], feature_map), in
evaluation the pooled feature and the logits in float32 under any autocast (as ``SimpleCNN``);
``forward_features(x)`` returns (pooled feature [N, D], feature_map), ``classify(pooled)`` the
logits and ``head`` the classifier module, as for ``SimpleCNN``.
Their last Linear layer is the classifier (``engine.checkpoint.load_model`` reads class_num from it).

- ``attnet``: ``AttNet``, a plain CNN classifier of whole images after Yu et al. (ICCV 2019,
  "Attributing Fake Images to GANs"): their classifier is the ProGAN discriminator layout,
  per resolution two 3x3 convolutions (reflect padding, LeakyReLU 0.2, no normalisation)
  and a 2x average-pool downscale, then a 3x3 convolution and a two-layer classifier.
- ``dct``: ``DCTNet``, the frequency baseline after Frank et al. (ICML 2020): the
  standardised log-magnitude DCT spectrum (``models.dct``) fed to their "simple CNN"
  (3x3 convolutions with 3, w/8, w/4 and w/2 channels, ReLU, 2x average pooling after the
  second and third) and a linear classifier on the flattened map.
"""
import torch
from torch import nn

from models.dct import LogDCT, SpectrumStandardise
from models.simple_cnn import PooledClassifier


class AttNet(PooledClassifier):
    """Yu et al.'s attribution classifier (ProGAN-discriminator layout), size-independent.

    Args:
        class_num: output classes.
        width: channels of the first block w; block s (s = 0..3) has convolutions
            ``w*2^s -> w*2^(s+1)`` capped at 8w (Yu et al.'s 128-px network has w = 128,
            capped at 512). Four blocks, so a 64-px input ends at 4x4 and a 128-px one at 8x8
            (Yu et al. downscale to 4x4 whatever the size; a fixed depth keeps one set of
            weights for every input size).
    Differences from the original: PyTorch modules with He-normal initialisation instead of
    equalised learning rate; global average pooling before the classifier (their default
    head is 1x1 convolutions whose output map is averaged).
    Forward: x [N, 3, H, W] -> (logits [N, K], feature_map [N, 8w, H/16, W/16]).
    """

    def __init__(self, class_num: int, width: int = 64):
        super().__init__()
        layers, channels = [], 3
        for stage in range(4):
            mid = min(width * 2 ** stage, 8 * width)
            out = min(width * 2 ** (stage + 1), 8 * width)
            layers += [_conv3x3(channels, mid), nn.LeakyReLU(0.2, inplace=True),
                       _conv3x3(mid, out), nn.LeakyReLU(0.2, inplace=True), nn.AvgPool2d(2)]
            channels = out
        layers += [_conv3x3(channels, channels), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.feature_dim = channels
        self.classification_head = nn.Sequential(nn.Linear(channels, channels),
                                                 nn.LeakyReLU(0.2, inplace=True),
                                                 nn.Linear(channels, class_num))
        _he_init(self)

    def forward_features(self, x: torch.Tensor):
        """Return (pooled feature [N, 8w], feature map [N, 8w, h, w])."""
        feature_map = self.features(x)
        return self.pooling_input(feature_map).mean(dim=(2, 3)), feature_map


class DCTNet(PooledClassifier):
    """Frank et al.'s DCT-spectrum classifier.

    Args:
        class_num: output classes.
        width: w; the convolutions have 3, w/8, w/4 and w/2 channels (w = 64 gives Frank
            et al.'s 3, 8, 16, 32).
        grid: the final map is average-pooled to ``grid x grid`` before flattening, so the
            classifier still knows *which* frequencies carry the evidence (their network
            flattens the 32x32 map of a 128-px image; with grid = 32 a 128-px input is
            exactly that, larger inputs are pooled down to it).
    Forward: x [N, 3, H, W] in [-1, 1] -> (logits [N, K], feature_map [N, w/2, H/4, W/4]).
    """

    head_name = "classifier"        # its state_dict key (saved weights keep loading)

    def __init__(self, class_num: int, width: int = 64, grid: int = 32):
        super().__init__()
        c1, c2, c3 = (max(1, width // d) for d in (8, 4, 2))
        self.spectrum = LogDCT()
        self.standardise = SpectrumStandardise()
        self.features = nn.Sequential(
            nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.feature_dim = c3 * grid * grid
        self.classifier = nn.Linear(self.feature_dim, class_num)

    def forward_features(self, x: torch.Tensor):
        """Return (flattened pooled map [N, (w/2)*grid^2], feature map [N, w/2, H/4, W/4])."""
        spectrum = self.standardise(self.spectrum(x))          # [N, 3, H, W]
        feature_map = self.features(spectrum)
        return torch.flatten(self.pool(self.pooling_input(feature_map)), 1), feature_map


BASELINES = {"attnet": AttNet, "dct": DCTNet}


def build_baseline(method: str, class_num: int, width: int = 64) -> nn.Module:
    """The baseline network named ``method`` (``attnet`` or ``dct``)."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[method](class_num, width=width)


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")


def _he_init(module: nn.Module) -> None:
    """He-normal weights for LeakyReLU(0.2) layers, zero biases; the last layer gets gain 1."""
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        nn.init.kaiming_normal_(layer.weight, a=0.2, nonlinearity="leaky_relu")
        nn.init.zeros_(layer.bias)
    nn.init.normal_(layers[-1].weight, std=layers[-1].weight.shape[1] ** -0.5)
