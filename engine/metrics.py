"""Classification metrics of SPEC section 8 (scikit-learn)."""
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score


def compute_metrics(labels: Sequence[int], preds: Sequence[int], class_num: int) -> dict:
    """Accuracy, macro-F1, macro-recall, per-class recall and the confusion matrix.

    Macro averages follow scikit-learn's definition: they run over every class that
    occurs in ``labels`` *or* in ``preds``. On a cross-test list that holds only
    class 1, a prediction of class 3 makes class 3 a scored class with recall 0
    (undefined, counted as 0) and precision 0, so stray predictions of absent
    classes cost macro-F1 and macro-recall, and macro-F1 never exceeds what the
    predictions earn. Per-class recall is reported for the classes in ``labels``
    only (None elsewhere). Rows of the confusion matrix are true classes, columns predictions.
    """
    labels, preds = np.asarray(labels, dtype=int), np.asarray(preds, dtype=int)
    if labels.size == 0:
        raise ValueError("no predictions to score (every image failed to load?)")
    present = np.unique(labels)
    scored = np.union1d(present, preds)
    all_classes = np.arange(class_num)
    per_class = recall_score(labels, preds, labels=all_classes, average=None, zero_division=0)
    return {
        "acc": float(accuracy_score(labels, preds)),
        "f1": float(f1_score(labels, preds, labels=scored, average="macro", zero_division=0)),
        "recall": float(recall_score(labels, preds, labels=scored, average="macro", zero_division=0)),
        "per_class_recall": [float(per_class[k]) if k in present else None for k in all_classes],
        "confusion": confusion_matrix(labels, preds, labels=all_classes).tolist(),
        "n_images": int(labels.size),
    }
