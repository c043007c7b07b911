"""Binary classification metrics from labels and predicted probabilities."""

import numpy as np

from trainer.keras import keras


def classification_metrics(labels, probabilities, threshold: float = 0.5) -> dict[str, float]:
    """Return accuracy, precision, recall, F1 and ROC AUC, plus counts.

    Precision, recall and F1 are 0.0 when undefined (no predicted or no actual
    positives). AUC is None when only one class is present.
    """
    labels = np.asarray(labels, dtype=np.float32).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float32).reshape(-1)
    predicted = probabilities >= threshold
    actual = labels >= 0.5
    true_positive = int(np.sum(predicted & actual))
    false_positive = int(np.sum(predicted & ~actual))
    false_negative = int(np.sum(~predicted & actual))
    precision = true_positive / (true_positive + false_positive) if true_positive + false_positive else 0.0
    recall = true_positive / (true_positive + false_negative) if true_positive + false_negative else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = None
    if 0 < actual.sum() < len(actual):
        metric = keras.metrics.AUC(num_thresholds=1000)
        metric.update_state(labels, probabilities)
        auc = float(metric.result().numpy())
    return {
        "examples": int(len(labels)),
        "positive_rate": float(actual.mean()) if len(actual) else 0.0,
        "accuracy": float(np.mean(predicted == actual)) if len(actual) else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": auc,
        "threshold": threshold,
    }
