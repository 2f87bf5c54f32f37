""""None of these": a photo unlike every training photo is labelled `unknown`, not forced into a class.

A softmax always picks one of its classes, and with a high confidence just as readily for a wolf
as for a dog. What tells a wolf apart is where the photo lands among the network's features (the
input of its last Dense layer): far from every training photo. The score is the cosine distance
from a photo's features to its K-th nearest among up to BANK_SIZE stored training photos'
features, 0 for a photo just like a training photo and up to 2 for one opposite to all of them.

Training fits it (fit) and sets its threshold on the held-out validation photos, so that about
TARGET_FLAGGED of real photos of the classes are flagged. The stored features, K and the threshold
travel inside model.h5 (artifacts.py), so predict.py, serve.py, --evaluate, the exports and the
compiled model all get it from that one file. The score is a second output of the network
(scored_model): the same layers up to the features, then the distance, in one graph that every
export format holds. It never changes the probabilities: a photo either keeps its class and
confidence, or is labelled `unknown` beside them.

Why nearest neighbours: measured on the shipped model's features (README, benchmarks/open_set.py),
they flag more photos of other things than a Mahalanobis distance to the class means or the
top-probability threshold, at the same share of real cats and dogs flagged, and they need no
assumption about the classes' shapes, so they work for any classes a user brings.
"""
from dataclasses import dataclass

import numpy as np

BANK_SIZE = 1000        # training photos' features kept in model.h5 (1,280 numbers each for the default model)
BANK_BYTES = 4 * 2**20  # at most this much for them (float16): a model with wider features keeps fewer
K = 5                   # the K-th nearest: one odd training photo near a wolf does not make the wolf familiar
TARGET_FLAGGED = 0.01   # share of the validation photos (of the model's own classes) the threshold flags
MIN_HELD_OUT = 200      # fewer validation photos than this: their distances are pooled with the training photos'


@dataclass
class Scorer:
    """What the unknown score needs: unit-length training features (M, d), K, and the threshold above
    which a photo is `unknown`. flagged: share of the validation photos above it, when fitted."""
    bank: np.ndarray
    k: int
    threshold: float
    flagged: float | None = None

    def scores(self, features):
        """The cosine distance from each row of features (N, d) to its k-th nearest bank row."""
        similarities = unit_rows(features) @ self.bank.astype(np.float32).T
        k = min(self.k, len(self.bank))
        return 1 - np.partition(similarities, -k, axis=1)[:, -k]

    def settings(self):
        """Everything but the bank, for model.h5's metadata (the bank is an array of its own there)."""
        return {"method": "cosine distance to the k-th nearest training photo", "k": self.k,
                "threshold": round(float(self.threshold), 6), "bank": len(self.bank), "features": int(self.bank.shape[1]),
                "validation_flagged": self.flagged}

    @classmethod
    def from_settings(cls, settings, bank):
        return cls(np.asarray(bank), int(settings["k"]), float(settings["threshold"]), settings.get("validation_flagged"))


def unit_rows(features):
    features = np.asarray(features, np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def fit(training_features, validation_features, seed=0, k=K, target=TARGET_FLAGGED):
    """A Scorer from the features of the training photos and of the held-out validation photos.

    The bank is a random sample of the training photos (all of them when they fit). The threshold
    flags `target` of the validation photos. With few of those (a user's 30 photos a class hold out
    3), the training photos left out of the bank count too, each scored like a new photo; and when
    every training photo is in the bank, each is scored against the others (leave one out).
    """
    training = unit_rows(training_features)
    features = training.shape[1]
    size = min(len(training), BANK_SIZE, max(k + 1, BANK_BYTES // (2 * features)))
    order = np.random.default_rng(seed).permutation(len(training))
    bank, rest = training[order[:size]], training[order[size:]]
    k = max(1, min(k, size - 1))
    scorer = Scorer(bank.astype(np.float16), k, 0.0)
    validation = scorer.scores(validation_features) if len(validation_features) else np.zeros(0)
    held_out = validation
    if len(held_out) < MIN_HELD_OUT:
        if len(rest):
            held_out = np.concatenate([held_out, scorer.scores(rest[:5 * MIN_HELD_OUT])])
        else:  # every training photo is in the bank: its k-th nearest other photo is the bank's (k+1)-th nearest
            similarities = bank @ bank.T
            held_out = np.concatenate([held_out, 1 - np.partition(similarities, -(k + 1), axis=1)[:, -(k + 1)]])
    scorer.threshold = float(np.quantile(held_out, 1 - target)) if len(held_out) else 1.0
    scorer.flagged = round(float(np.mean(validation > scorer.threshold)), 4) if len(validation) else None
    return scorer


def fit_after_training(outputs, training_count, validation_labels, seed):
    """What train_CNN.py fits on a trained model's outputs (probabilities, features) for the training
    then the validation photos: the Scorer (fit), and the temperature of calibration.calibrate on the
    validation photos. Returns (scorer, temperature, (validation ECE before, after))."""
    from .calibration import calibrate

    probabilities, features = outputs
    scorer = fit(features[:training_count], features[training_count:], seed)
    temperature, *validation_ece = calibrate(probabilities[training_count:], validation_labels)
    return scorer, temperature, tuple(validation_ece)


def feature_model(model):
    """model -> [probabilities, features]: the features are the input of model's last layer (its Dense
    head), through the very layers of model. Every model of the registry (model.py) is a stack of
    layers ending in that Dense layer; so is the top that features.py trains."""
    import keras

    inputs = keras.Input(shape=model.input_shape[1:], name="images")
    return keras.Model(inputs, list(through(model, inputs)), name=f"{model.name}_with_features")


def through(model, inputs):
    """(probabilities, features) of model's layers called on the Keras tensor inputs."""
    from keras import layers

    features = inputs
    for layer in model.layers[:-1]:
        if not isinstance(layer, layers.InputLayer):  # a functional model (features.py's top) lists its input
            features = layer(features)
    return model.layers[-1](features), features


def unknown_score(features, scorer):
    """Scorer.scores as Keras layers on the features tensor, in stock layers and ops only (so every
    export format holds it and any Keras 3 loads it): unit-length features, a Dense layer whose
    kernel is the bank (one cosine similarity per stored photo), the k-th largest, 1 minus it."""
    from keras import layers, ops

    similarity = layers.Dense(len(scorer.bank), use_bias=False, trainable=False, name="bank_similarity")
    similarities = similarity(layers.UnitNormalization(name="unit_features")(features))
    similarity.set_weights([scorer.bank.astype(np.float32).T])
    k = min(scorer.k, len(scorer.bank))
    return 1 - ops.top_k(similarities, k)[0][:, k - 1:]
