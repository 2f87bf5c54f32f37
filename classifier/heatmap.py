"""Why the model said what it said: a heatmap over each photo of where the evidence for its label lies.

Grad-CAM (Selvaraju et al. 2017; keras.io's "Grad-CAM class activation visualization"): with
tf.GradientTape, the gradient of the class's score with respect to the last convolutional
feature map, averaged over the map, weighs the map's channels; their weighted sum, negative parts
dropped, is a coarse map of the places that raised that score. The score is the class's logit
(the softmax's input): a probability close to 1 has almost no gradient left.

The pretrained model's convolutions sit inside its backbone, a functional keras.Model nested in the
Sequential; a two-output copy of the backbone, (last feature map, features), stands in for it while
the other layers run as they are. A model with no convolutional layer (logistic) has no feature
map: it gets a saliency map, the gradient of the class score with respect to the input pixels,
times the pixels. For a linear model the gradient alone is the same for every photo (its weights);
times the pixels, it is each pixel's share of this photo's score.
"""
import numpy as np
from PIL import Image

from . import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
OPACITY = 0.45      # of the colour map over the photo
OVERLAY_SIDE = 512  # the longest side of a heatmap picture, in pixels
CAPTION_MIN_FONT, CAPTION_MAX_FONT = 12, 24  # the caption's font size, in pixels: a 20th of the picture's width, within these
CAPTION_INK, CAPTION_PAPER = (255, 255, 255), (32, 32, 32)


def _flat_layers(model, owner=None):
    """[(layer, the nested model holding it or None)], in the order they run."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += [(inner, inner_owner or layer) for inner, inner_owner in _flat_layers(layer, layer)]
        else:
            found.append((layer, owner))
    return found


def find_feature_layer(model):
    """(layer, nested model holding it or None): the last layer at or after the last convolution
    whose output is still a feature map (4-D), pooling left out; (None, None) without convolutions."""
    layers = _flat_layers(model)
    convolutions = [index for index, (layer, _) in enumerate(layers) if isinstance(layer, CONVOLUTIONS)]
    if not convolutions:
        return None, None
    for layer, owner in reversed(layers[convolutions[-1]:]):
        if len(layer.output.shape) == 4 and not isinstance(layer, POOLING):
            return layer, owner
    return layers[convolutions[-1]]


class Explainer:
    """Heatmaps for a trained model: heatmaps(images, class indices) -> one 2-D map per image, 0-1."""

    def __init__(self, model):
        self.model = model
        self.layer, self.owner = find_feature_layer(model)
        last = model.layers[-1]
        self.logits_from_dense = isinstance(last, keras.layers.Dense) and last.activation.__name__ in ("softmax", "sigmoid")
        if isinstance(model, keras.Sequential):  # run layer by layer; the backbone, if any, gives its feature map too
            self.backbone = None if self.owner is None else \
                keras.Model(self.owner.inputs, [self.layer.output, self.owner.outputs[0]])
        else:  # a functional stack (Keras 2 files): one model giving (feature map, the last layer's input)
            self.graph = keras.Model(model.inputs, ([self.layer.output] if self.layer is not None else []) + [last.input])

    @property
    def method(self):
        """What the maps show, in words."""
        if self.layer is None:
            return ("saliency: gradient of the class score with respect to the input pixels, times the pixels "
                    f"(the '{self.model.name}' model has no convolutional layer, so no Grad-CAM)")
        where = f"{self.owner.name}/{self.layer.name}" if self.owner is not None else self.layer.name
        return f"Grad-CAM on layer {where}"

    def heatmaps(self, images, indices):
        """images: float 0-255 (N, size, size, 3); indices: the class to explain for each image."""
        images = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            features, scores = self._forward(images)
            chosen = tf.gather(scores, tf.constant(np.asarray(indices), tf.int32), batch_dims=1)
        if self.layer is None:
            gradients = tape.gradient(chosen, images)
            maps = tf.nn.relu(tf.reduce_sum(gradients * images, axis=-1))
        else:
            gradients = tape.gradient(chosen, features)
            weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
            maps = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1))
        maps = maps.numpy()
        peaks = maps.reshape(len(maps), -1).max(axis=1)
        return [heatmap / peak if peak > 0 else heatmap for heatmap, peak in zip(maps, peaks)]

    def _forward(self, images):
        """(feature map or None, one score per class), the last Dense giving logits, not probabilities."""
        if not isinstance(self.model, keras.Sequential):
            outputs = self.graph(images, training=False)
            features, x = (outputs if self.layer is not None else (None, outputs))
            return features, self._scores(x)
        features, x = None, images
        for layer in self.model.layers[:-1]:
            if layer is self.owner:
                features, x = self.backbone(x, training=False)
            else:
                x = layer(x, training=False)
                if layer is self.layer:
                    features = x
        return features, self._scores(x)

    def _scores(self, x):
        """What the last layer makes of x, before its softmax or sigmoid."""
        last = self.model.layers[-1]
        if not self.logits_from_dense:
            return last(x, training=False)
        logits = tf.matmul(x, last.kernel) + (last.bias if last.bias is not None else 0)
        if logits.shape[-1] == 1:  # a Dense(1) sigmoid head: its logit speaks for class 1 against class 0
            logits = tf.concat([-logits, logits], axis=1)
        return logits


def colour_map(heatmap):
    """The 0-1 map as an RGB picture in matplotlib's 'jet' colours (blue: nothing, red: the most)."""
    from matplotlib import colormaps
    return Image.fromarray((colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3] * 255).astype(np.uint8))


def overlay(photo, heatmap, opacity=OPACITY):
    """The photo (a Pillow image) with the heatmap stretched over all of it, as the model saw the
    whole photo stretched to a square."""
    photo = photo.convert("RGB")
    colours = colour_map(heatmap).resize(photo.size, Image.Resampling.BILINEAR)
    return Image.blend(photo, colours, opacity)


def save_overlay(image_path, heatmap, target, side=OVERLAY_SIDE, caption=None):
    """Draw the heatmap over the photo at image_path (upright, at most side pixels) into target (.png),
    above a band with the caption (the label and its confidence), if given."""
    from PIL import ImageOps

    from .images import open_image
    photo = ImageOps.exif_transpose(open_image(image_path, draft_size=side))
    photo.thumbnail((side, side), Image.Resampling.LANCZOS)
    picture = overlay(photo, heatmap)
    (with_caption(picture, caption) if caption else picture).save(target)
    return target


def with_caption(picture, caption):
    """The picture above a dark band that holds caption in full, in a font sized to the picture (the
    band is wider than a small picture when the words need it)."""
    from PIL import ImageDraw, ImageFont

    size = max(CAPTION_MIN_FONT, min(CAPTION_MAX_FONT, picture.width // 20))
    font = ImageFont.load_default(size=size)
    pad = size // 2
    _, _, right, bottom = font.getbbox(caption)
    canvas = Image.new("RGB", (max(picture.width, int(right) + 2 * pad), picture.height + int(bottom) + 2 * pad), CAPTION_PAPER)
    canvas.paste(picture, (0, 0))
    ImageDraw.Draw(canvas).text((pad, picture.height + pad), caption, font=font, fill=CAPTION_INK)
    return canvas
