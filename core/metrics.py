"""Classification metrics from true labels and class probabilities: accuracy, loss, top-k, the confusion
matrix and per-class precision, recall and F1 (scikit-learn's), with the views the Evaluate page needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP_K = 3
# Keras clips probabilities the same way in its cross-entropy, so the loss here matches model.evaluate.
PROBABILITY_EPSILON = 1e-7


def softmax(outputs: np.ndarray) -> np.ndarray:
    """Probabilities from logits, row by row (float64, numerically stable)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    outputs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return outputs / outputs.sum(axis=1, keepdims=True)


@dataclass
class Evaluation:
    class_names: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    accuracy: float
    loss: float
    top_k_accuracy: float | None
    confusion: np.ndarray  # rows: true class, columns: predicted class
    per_class: list[dict]
    macro: dict
    weighted: dict

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1)

    def confused_pairs(self, limit: int = 10) -> list[dict]:
        """Off-diagonal cells, largest first: (true, predicted, count, share of the true class)."""
        pairs = []
        support = self.confusion.sum(axis=1)
        for t, p in zip(*np.nonzero(self.confusion), strict=True):
            if t != p:
                count = int(self.confusion[t, p])
                pairs.append(
                    {
                        "true": self.class_names[t],
                        "predicted": self.class_names[p],
                        "count": count,
                        "share of true class": count / max(int(support[t]), 1),
                    }
                )
        return sorted(pairs, key=lambda r: (-r["count"], r["true"], r["predicted"]))[:limit]

    def mistakes(self) -> np.ndarray:
        """Indices of misclassified test images, most confident mistakes first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")]

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            f"top_{TOP_K}_accuracy": self.top_k_accuracy,
            "test_images": int(len(self.labels)),
            "class_names": self.class_names,
            "confusion_matrix": self.confusion.tolist(),
            "per_class": self.per_class,
            "macro_avg": self.macro,
            "weighted_avg": self.weighted,
        }


def evaluate_predictions(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> Evaluation:
    """All the numbers from true labels and class probabilities."""
    # Imported here: scikit-learn takes a second or two to import, and the CLI's help and checks need none of it.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    classes = np.arange(len(class_names))
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probs.argmax(axis=1)
    confusion = confusion_matrix(labels, predicted, labels=classes)
    accuracy = float(np.trace(confusion) / max(len(labels), 1))
    picked = probs[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.clip(picked, PROBABILITY_EPSILON, 1.0)))) if len(labels) else 0.0
    top_k = None
    if len(class_names) > TOP_K and len(labels):
        # Ties rank the lower class index first (a stable sort); sklearn's top_k_accuracy_score breaks them
        # the other way, so the same probabilities could score differently here and in the tutorials.
        top = np.argsort(-probs, axis=1, kind="stable")[:, :TOP_K]
        top_k = float(np.mean((top == labels[:, None]).any(axis=1)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    per_class = [
        {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for name, p, r, f, n in zip(class_names, precision, recall, f1, support, strict=True)
    ]
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _support = precision_recall_fscore_support(
            labels, predicted, labels=classes, average=average, zero_division=0
        )
        averages[average] = {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(support.sum())}
    return Evaluation(
        class_names, labels, probs, accuracy, loss, top_k, confusion, per_class, averages["macro"], averages["weighted"]
    )
