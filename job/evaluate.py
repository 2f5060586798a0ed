"""Evaluation: predictions over a data set, and top-1, top-5, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np


def predict(network, dataset) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) for every image of `dataset`, in dataset order."""
    network.set_train(False)
    logits, labels = [], []
    for images, batch_labels in dataset.create_tuple_iterator(num_epochs=1):
        logits.append(network(images).asnumpy())
        labels.append(batch_labels.asnumpy())
    return np.concatenate(logits), np.concatenate(labels)


def classification_metrics(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Top-1 and top-5 accuracy (top-5 covers every class when there are fewer than 5), per-class accuracy
    (None for classes absent from the set) and the confusion matrix (rows: true, columns: predicted)."""
    k = min(5, len(classes))
    ranked = np.argsort(-logits, axis=1)
    predicted = ranked[:, 0]
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    support = confusion.sum(axis=1)
    per_class = {name: (float(confusion[i, i] / support[i]) if support[i] else None) for i, name in enumerate(classes)}
    return {
        "top1": float(np.mean(predicted == labels)),
        "top5": float(np.mean((ranked[:, :k] == labels[:, None]).any(axis=1))),
        "images": int(len(labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }
