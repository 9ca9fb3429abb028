"""Building a network by method name (the model knows nothing of files: weights are read and
written by ``engine.checkpoint``)."""
from torch import nn

from models.simple_cnn import SimpleCNN

# the classifier's keys in the authors' released model.pth (their shape depends on the class count)
HEAD_KEYS = ("classification_head.1.weight", "classification_head.1.bias")


def build_model(method: str, class_num: int, width: int = 64, dropout: float = 0.2,
                input_filter: str = "none") -> nn.Module:
    """A classifier whose forward returns (logits, feature_map), chosen by method name.

    ``dnadet`` and ``ce_only`` share the SimpleCNN backbone (they differ in training);
    ``attnet`` and ``dct`` are the baselines of models.baselines (they take raw input:
    ``input_filter`` other than ``none`` is an error for them).
    """
    if method in ("dnadet", "ce_only"):
        return SimpleCNN(class_num, width=width, dropout=dropout, input_filter=input_filter)
    if input_filter != "none":
        raise ValueError(f"input_filter={input_filter!r} is for the SimpleCNN methods only; "
                         f"set input_filter=none for method {method!r}")
    from models import baselines  # local import: baselines are optional extras
    return baselines.build_baseline(method, class_num, width=width)
