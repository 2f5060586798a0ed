"""Evaluation: predictions over a data set, and top-1, top-5, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np


def predict(network, dataset) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) for every image of `dataset`, in dataset order.

    A last, smaller batch is padded with zeros to the first batch's size, so the network runs with one input
    shape, one compiled graph (GRAPH mode compiles again for every new shape); in evaluation mode each image's
    logits do not depend on the others in its batch."""
    import mindspore as ms

    network.set_train(False)
    logits, labels = [], []
    size = None
    for images, batch_labels in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
        count = len(images)
        size = size or count
        if count < size:
            images = np.concatenate([images, np.zeros((size - count, *images.shape[1:]), images.dtype)])
        logits.append(network(ms.Tensor(images)).asnumpy()[:count])
        labels.append(batch_labels)
    return np.concatenate(logits), np.concatenate(labels)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Each row's probabilities, computed stably (in float64)."""
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """The mean negative log-likelihood of the true labels under softmax(logits), computed stably."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(labels)), labels].mean())


def classification_metrics(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Top-1 and top-5 accuracy (top-5 covers every class when there are fewer than 5), the mean cross-entropy,
    per-class accuracy (None for classes absent from the set) and the confusion matrix (rows: true, columns:
    predicted)."""
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
        "loss": cross_entropy(logits, labels),
        "images": int(len(labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }
