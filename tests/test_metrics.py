"""Metrics: a case worked by hand, ties, and agreement with scikit-learn on random predictions."""

import numpy as np
import pytest
from sklearn.metrics import classification_report, log_loss, top_k_accuracy_score

from core.metrics import evaluate_predictions


def one_hot_probs(predicted, n_classes, confidence=0.7):
    probs = np.full((len(predicted), n_classes), (1 - confidence) / (n_classes - 1))
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


def test_metrics_match_a_case_worked_by_hand():
    # true:      a a a a b b b c c c   (4 a, 3 b, 3 c)
    # predicted: a a b c b b a c c b
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 1])
    ev = evaluate_predictions(labels, one_hot_probs(predicted, 3), ["a", "b", "c"])
    assert ev.confusion.tolist() == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert ev.accuracy == pytest.approx(6 / 10)
    # a: TP 2, predicted a 3, support 4 -> P 2/3, R 1/2, F1 4/7
    # b: TP 2, predicted b 4, support 3 -> P 1/2, R 2/3, F1 4/7
    # c: TP 2, predicted c 3, support 3 -> P 2/3, R 2/3, F1 2/3
    expected = {"a": (2 / 3, 1 / 2, 4 / 7, 4), "b": (1 / 2, 2 / 3, 4 / 7, 3), "c": (2 / 3, 2 / 3, 2 / 3, 3)}
    for row in ev.per_class:
        p, r, f1, support = expected[row["class"]]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p, r, f1))
        assert row["support"] == support
    assert ev.macro["precision"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert ev.macro["f1"] == pytest.approx((4 / 7 + 4 / 7 + 2 / 3) / 3)
    assert ev.weighted["recall"] == pytest.approx((4 * 1 / 2 + 3 * 2 / 3 + 3 * 2 / 3) / 10)
    assert ev.loss == pytest.approx(-(6 * np.log(0.7) + 4 * np.log(0.15)) / 10)
    assert ev.top_k_accuracy is None, "top-3 only where there are more than three classes"
    # Most confused: each off-diagonal count is 1; ties sort by class name.
    assert ev.confused_pairs(2) == [
        {"true": "a", "predicted": "b", "count": 1, "share of true class": 0.25},
        {"true": "a", "predicted": "c", "count": 1, "share of true class": 0.25},
    ]


def test_top_3_accuracy_and_confident_mistakes_first():
    labels = np.array([0, 1, 2, 3])
    probs = np.array(
        [
            [0.1, 0.6, 0.2, 0.1],  # wrong (predicted 1, 60%), true class ranked 3rd: in the top 3
            [0.05, 0.05, 0.0, 0.9],  # wrong (predicted 3, 90%), true class ranked 2nd
            [0.0, 0.0, 1.0, 0.0],  # right
            [0.4, 0.3, 0.3, 0.0],  # wrong (40%), true class last: not in the top 3
        ]
    )
    ev = evaluate_predictions(labels, probs, list("wxyz"))
    assert ev.top_k_accuracy == pytest.approx(3 / 4)
    assert ev.mistakes().tolist() == [1, 0, 3]


def test_metrics_agree_with_sklearns_report_on_random_predictions():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 6, 500)
    labels[labels == 5] = 4  # class 5 has no test images: its precision, recall and F1 are 0
    probs = rng.dirichlet(np.ones(6), 500)
    names = [f"c{i}" for i in range(6)]
    ev = evaluate_predictions(labels, probs, names)
    report = classification_report(
        labels, probs.argmax(1), labels=range(6), target_names=names, output_dict=True, zero_division=0
    )
    for row in ev.per_class:
        expected = report[row["class"]]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (expected["precision"], expected["recall"], expected["f1-score"])
        )
        assert row["support"] == expected["support"]
    for mine, theirs in ((ev.macro, report["macro avg"]), (ev.weighted, report["weighted avg"])):
        assert (mine["precision"], mine["recall"], mine["f1"]) == pytest.approx(
            (theirs["precision"], theirs["recall"], theirs["f1-score"])
        )
    assert ev.accuracy == pytest.approx(np.mean(probs.argmax(1) == labels))
    assert ev.confusion.sum() == 500 and ev.confusion[:, 5].sum() == (probs.argmax(1) == 5).sum()
    assert ev.per_class[5]["support"] == 0 and ev.per_class[5]["recall"] == 0.0
    # Random probabilities have no ties and none near the 1e-7 clip, so top-3 and the loss agree with sklearn's.
    assert ev.top_k_accuracy == pytest.approx(top_k_accuracy_score(labels, probs, k=3, labels=range(6)))
    assert ev.loss == pytest.approx(log_loss(labels, probs, labels=range(6)))


def test_ties_in_top_3_rank_the_lower_class_first():
    # True class 0 ties class 3 for third place: the lower index wins, so it counts as in the top 3
    # (sklearn's top_k_accuracy_score would rank class 3 first and score this 0).
    ev = evaluate_predictions(np.array([0]), np.array([[0.1, 0.6, 0.2, 0.1]]), list("wxyz"))
    assert ev.top_k_accuracy == 1.0


def test_the_loss_clips_probabilities_as_keras_does():
    # A true class given probability 0 costs -log(1e-7), not infinity.
    ev = evaluate_predictions(np.array([0, 1]), np.array([[0.0, 1.0], [0.0, 1.0]]), ["a", "b"])
    assert ev.loss == pytest.approx(-np.log(1e-7) / 2)
