"""Confidences that mean what they say: the expected calibration error, and temperature scaling.

A model is calibrated when, of the photos it labels with 90 % confidence, 90 % are right. The
expected calibration error (ECE; Guo et al. 2017, "On calibration of modern neural networks")
sorts the photos into BINS equal-width bins of confidence and averages |accuracy - confidence|
over the bins, weighted by their share of photos. Temperature scaling divides the logits by one
number T fitted on the validation photos: T > 1 softens over-confident probabilities, T < 1
sharpens timid ones, and the most probable class never changes. Training keeps a T only where it
lowers the ECE of the validation photos (training.score_photos), and only with enough of them
(MIN_PHOTOS); on the shipped model it does not lower it.
"""
import numpy as np

BINS = 15
MIN_PHOTOS = 200  # fewer held-out photos fit a temperature to their noise (2 photos once gave T = 0.25): 1 is kept
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(4), 161))  # the grid a temperature is chosen from


def reliability(probabilities, labels, bins=BINS):
    """Per confidence bin: (lower edge, upper edge, photos, mean confidence, accuracy); empty bins left out."""
    probabilities, labels = np.asarray(probabilities, float), np.asarray(labels)
    confidence, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            rows.append((low, high, int(inside.sum()), float(confidence[inside].mean()), float(right[inside].mean())))
    return rows


def expected_calibration_error(probabilities, labels, bins=BINS):
    """The ECE, 0 (calibrated) to 1."""
    total = len(labels)
    return sum(count / total * abs(accuracy - confidence) for _, _, count, confidence, accuracy
               in reliability(probabilities, labels, bins)) if total else float("nan")


def scaled(probabilities, temperature):
    """The probabilities with their logits divided by temperature (numpy)."""
    logits = np.log(np.clip(np.asarray(probabilities, float), 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(probabilities, labels):
    """The temperature of TEMPERATURES that minimises the negative log-likelihood of the labels."""
    labels = np.asarray(labels)

    def nll(temperature):
        return -np.mean(np.log(np.clip(scaled(probabilities, temperature)[np.arange(len(labels)), labels], 1e-12, 1)))
    return float(min(TEMPERATURES, key=nll))


def calibrate(probabilities, labels):
    """(temperature, ECE before, ECE after) on held-out photos: the fitted temperature where it lowers
    their ECE, else 1; 1 with fewer than MIN_PHOTOS of them."""
    before = expected_calibration_error(probabilities, labels)
    if len(labels) < MIN_PHOTOS:
        return 1.0, before, before
    temperature = fit_temperature(probabilities, labels)
    after = expected_calibration_error(scaled(probabilities, temperature), labels)
    return (round(temperature, 4), before, after) if after < before else (1.0, before, before)


def with_temperature(probabilities, temperature):
    """scaled() on a Keras tensor of probabilities, inside the model; the tensor itself when temperature is 1."""
    if temperature == 1:
        return probabilities
    from keras import ops
    return ops.softmax(ops.log(ops.maximum(probabilities, 1e-12)) / temperature, axis=-1)
