"""The networks: Sequential Conv2D -> MaxPooling2D -> ... -> Flatten -> Dense classifiers.

Each model starts with the same preprocessing layers, so model.h5 carries them: augmentation
(active only while training) and rescaling of 0-255 pixels to 0-1.
"""
import keras
from keras import layers

MODELS = ("cnn", "classic", "logistic")


def preprocessing(image_size):
    return [
        keras.Input(shape=(image_size, image_size, 3)),
        # The classic ImageDataGenerator set (flip, zoom, shear/rotation) as Keras layers.
        layers.RandomFlip("horizontal"),
        layers.RandomRotation(0.08),
        layers.RandomZoom(0.15),
        layers.Rescaling(1.0 / 255),
    ]


def conv_block(filters):
    # No bias before BatchNormalization: its beta does that job.
    return [
        layers.Conv2D(filters, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.MaxPooling2D(),
    ]


def make_cnn(image_size, blocks=(32, 64, 128, 256, 256), dense=256, dropout=0.5):
    """Our default: five conv blocks with BatchNormalization, then a small dense head."""
    stack = preprocessing(image_size)
    for filters in blocks:
        stack += conv_block(filters)
    stack += [layers.Flatten(), layers.Dense(dense, activation="relu"), layers.Dropout(dropout),
              layers.Dense(1, activation="sigmoid")]
    return keras.Sequential(stack, name="cnn")


def make_classic(image_size):
    """The classic tutorial's two-block CNN (its 64 px, batch 64 recipe is the benchmark anchor)."""
    stack = preprocessing(image_size) + [
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(1, activation="sigmoid"),
    ]
    return keras.Sequential(stack, name="classic")


def make_logistic(image_size):
    """Logistic regression on the pixels: the baseline, through the same pipeline."""
    stack = preprocessing(image_size) + [layers.Flatten(), layers.Dense(1, activation="sigmoid")]
    return keras.Sequential(stack, name="logistic")


def make_model(kind, image_size):
    return {"cnn": make_cnn, "classic": make_classic, "logistic": make_logistic}[kind](image_size)
