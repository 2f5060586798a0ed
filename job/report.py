"""Pictures of a run: training curves and the confusion matrix (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_training_curves(history: list[dict], path: Path) -> None:
    epochs = [record["epoch"] for record in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [record["loss"] for record in history], marker="o")
    loss_axis.set(title="training loss", xlabel="epoch", ylabel="loss")
    accuracy_axis.plot(epochs, [record["train_accuracy"] for record in history], marker="o", label="train")
    evaluated = [record for record in history if record["eval"]]
    if evaluated:
        accuracy_axis.plot(
            [record["epoch"] for record in evaluated],
            [record["eval"]["top1"] for record in evaluated],
            marker="s",
            label="eval top-1",
        )
    accuracy_axis.set(title="accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    accuracy_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion_matrix(confusion: list[list[int]], classes: list[str], path: Path) -> None:
    size = max(4.0, 0.45 * len(classes) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(confusion, cmap="Blues")
    axis.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix",
    )
    axis.set_xticklabels(classes, rotation=90)
    axis.set_yticklabels(classes)
    if len(classes) <= 30:
        limit = max(max(row) for row in confusion) / 2 if confusion else 0
        for row, counts in enumerate(confusion):
            for column, count in enumerate(counts):
                axis.text(
                    column,
                    row,
                    str(count),
                    ha="center",
                    va="center",
                    color="white" if count > limit else "black",
                    fontsize=8,
                )
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
