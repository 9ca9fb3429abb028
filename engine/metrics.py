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


def transformation_metrics(labels: Sequence[int], probs: np.ndarray, families: Sequence[str]) -> dict:
    """Stage-1 validation (SPEC section 5): how well the 170 transformations are recognised.

    Args:
        labels: true transformation indices [n]; probs: softmax probabilities [n, 170];
        families: the family name of each transformation index (``data.transforms.transform_families``).
    Returns ``ce`` (mean cross-entropy), ``top1``, ``top5``, ``family_acc`` (share of images whose
    predicted transformation is of the true one's family) and ``per_family`` {family: {"top1",
    "family_acc", "n"}} over the families present in ``labels``.
    """
    labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=np.float64)
    if labels.size == 0 or probs.shape != (labels.size, len(families)):
        raise ValueError(f"need probs [n, {len(families)}] for n = {labels.size} labels, got {probs.shape}")
    family_of = np.asarray(families)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    preds = top5[:, 0]
    hit1 = preds == labels
    family_hit = family_of[preds] == family_of[labels]
    per_family = {}
    for family in dict.fromkeys(family_of[labels]):           # families in label order
        chosen = family_of[labels] == family
        per_family[str(family)] = {"top1": float(hit1[chosen].mean()),
                                   "family_acc": float(family_hit[chosen].mean()), "n": int(chosen.sum())}
    true_probs = probs[np.arange(labels.size), labels]
    return {"ce": float(-np.log(np.clip(true_probs, 1e-12, None)).mean()),
            "top1": float(hit1.mean()), "top5": float((top5 == labels[:, None]).any(axis=1).mean()),
            "family_acc": float(family_hit.mean()), "per_family": per_family}
