"""Classification metrics of SPEC section 8 (scikit-learn)."""
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score


def compute_metrics(labels: Sequence[int], preds: Sequence[int], class_num: int) -> dict:
    """Accuracy, macro-F1, macro-recall, per-class recall and the confusion matrix.

    Macro averages run over the classes present in ``labels`` (a cross-test list
    that holds only class 1 is scored on class 1), so absent classes do not
    count as zero. Rows of the confusion matrix are true classes, columns predictions.
    """
    labels, preds = np.asarray(labels, dtype=int), np.asarray(preds, dtype=int)
    if labels.size == 0:
        raise ValueError("no predictions to score (every image failed to load?)")
    present = np.unique(labels)
    all_classes = np.arange(class_num)
    per_class = recall_score(labels, preds, labels=all_classes, average=None, zero_division=0)
    return {
        "acc": float(accuracy_score(labels, preds)),
        "f1": float(f1_score(labels, preds, labels=present, average="macro", zero_division=0)),
        "recall": float(recall_score(labels, preds, labels=present, average="macro", zero_division=0)),
        "per_class_recall": [float(per_class[k]) if k in present else None for k in all_classes],
        "confusion": confusion_matrix(labels, preds, labels=all_classes).tolist(),
        "n_images": int(labels.size),
    }
