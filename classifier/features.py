"""Fine-tuning a pretrained model on a CPU, made cheap: the frozen part of the backbone runs once.

Both phases of the pretrained recipe (training.plan_phases) keep the lower blocks of the backbone
frozen, BatchNorm included, so what they output for a photo never changes during training. We
compute it once for each photo and for its mirror image (the model's only augmentation is a
horizontal flip), and fit the model's top (the trainable blocks, the head conv and the new head)
on those tensors. An epoch then costs a fraction of a forward pass through the whole network,
and the lower blocks cost one pass over the photos for the whole run, however many epochs.

The top shares its layers with the whole model: training it trains the model that model.h5 saves.
"""
import numpy as np

from . import import_tensorflow

import_tensorflow()  # Keras loads TensorFlow: through the one function that hides its start-up lines
import keras  # noqa: E402
from keras import layers  # noqa: E402

from .data import image_dataset  # noqa: E402


def backbone_of(model):
    """The pretrained backbone: the one nested model among the classifier's layers."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def split(model, cut_layer):
    """(frozen, top): frozen maps pixels to the output of backbone layer `cut_layer` (its last layer:
    all of it); top maps that output to the class probabilities, through the very layers of `model`."""
    backbone = backbone_of(model)
    position = model.layers.index(backbone)
    before, after = model.layers[:position], model.layers[position + 1:]
    # Only a horizontal flip may come before the backbone: the cache holds each photo and its mirror image.
    assert all(isinstance(layer, layers.RandomFlip) and layer.mode == "horizontal" for layer in before), before
    cut = backbone.get_layer(cut_layer).output
    frozen = keras.Model(backbone.input, cut, name="frozen_blocks")
    inputs = keras.Input(shape=cut.shape[1:], name="frozen_features")
    whole = cut_layer == backbone.layers[-1].name  # the backbone's output: only the layers after it train
    x = inputs if whole else keras.Model(cut, backbone.output, name="trainable_blocks")(inputs)
    for layer in after:
        x = layer(x)
    return frozen, keras.Model(inputs, x, name=f"{model.name}_top")


def frozen_features(frozen, samples, image_size, batch_size, mirrors, verbose):
    """The frozen blocks' output for each photo: shape (N, 2, ...) with each photo's mirror image
    second when `mirrors`, else (N, ...). Kept as float16: half the memory, and these activations
    of a few units keep three significant digits."""
    tf = import_tensorflow()
    if not samples:
        return np.zeros((0, *frozen.output.shape[1:]), np.float16)
    as_float16 = keras.Model(frozen.input, keras.ops.cast(frozen.output, "float16"))
    dataset = image_dataset(samples, image_size, batch_size)
    if mirrors:  # each batch of photos becomes photo 1, its mirror, photo 2, its mirror...
        dataset = dataset.map(lambda images, labels: tf.reshape(tf.stack([images, tf.image.flip_left_right(images)], axis=1),
                                                                (-1, image_size, image_size, 3)))
    else:
        dataset = dataset.map(lambda images, labels: images)
    features = as_float16.predict(dataset, verbose=verbose)
    return features.reshape(len(samples), 2, *features.shape[1:]) if mirrors else features


def feature_dataset(features, samples, batch_size, shuffle=False, seed=None, mirrored=False):
    """A tf.data stream of (float32 features, labels) batches. Mirrored features, of shape (N, 2, ...)
    (frozen_features), give for each photo in each epoch the photo or its mirror image at random:
    the flip augmentation."""
    tf = import_tensorflow()
    labels = np.array([sample.label for sample in samples], np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    if mirrored:  # a new coin for each photo at each pass over the set (each epoch)
        coins = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(dataset, coins).map(lambda photo, coin: (photo[0][coin % 2], photo[1]))
    if shuffle:
        dataset = dataset.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(lambda x, labels: (tf.cast(x, tf.float32), labels)).prefetch(tf.data.AUTOTUNE)
