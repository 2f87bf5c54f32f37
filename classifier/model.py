"""The networks, in one registry: MODELS maps each name train_CNN.py offers to its builder and defaults.

Every builder takes (image_size, num_classes) and returns a Keras model that takes float RGB pixels
0-255 and ends in the same head: Dense(num_classes, softmax). Augmentation (active only while
training) and pixel scaling are layers of the model, so model.h5 carries them and predict.py needs
nothing else. Adding a model is one builder function and one MODELS entry.

Softmax for two classes too: it is the same function as a sigmoid on the difference of two
logits, and one output per class keeps every path (labels, confusion matrix, export) the same for
2 and for N classes. Models saved with a Dense(1) sigmoid head still load (prediction.probabilities).
"""
import enum
from dataclasses import dataclass
from typing import Callable


class Phase(enum.Enum):
    """What trains, phase by phase (training.plan_phases, set_phase below). The values name the
    checkpoint files of a phase (checkpoint/backup-head/, after-head.weights.h5), which --resume reads."""
    TRAIN = "train"            # every layer: a model from scratch
    HEAD = "head"              # a pretrained model's new head, on its frozen backbone
    FINE_TUNE = "fine-tune"    # then the top blocks of the backbone too, BatchNorm frozen

    @property
    def what(self):
        """The phase in words, as train_CNN.py announces it."""
        return {Phase.TRAIN: "training every layer", Phase.HEAD: "training the new head on the frozen ImageNet backbone",
                Phase.FINE_TUNE: "fine-tuning the top blocks of the backbone (BatchNorm frozen)"}[self]


def augmentation(strong=True):
    """Random flips, plus small rotations and zooms (the classic ImageDataGenerator set) for the
    from-scratch models. The pretrained model gets flips only: its features already generalise, and
    rotation and zoom would dominate the time of a CPU epoch."""
    from keras import layers
    flip = [layers.RandomFlip("horizontal")]
    return flip + [layers.RandomRotation(0.08), layers.RandomZoom(0.15)] if strong else flip


def head(num_classes, dropout=0.0):
    """The last layers of every model: one probability per class."""
    from keras import layers
    return ([layers.Dropout(dropout)] if dropout else []) + [layers.Dense(num_classes, activation="softmax", name="predictions")]


def conv_block(filters):
    from keras import layers
    # No bias before BatchNormalization: its beta does that job. momentum=0.9 (Keras: 0.99) so the
    # moving statistics used at test time catch up within a few dozen steps: with 0.99 a model
    # trained on a few hundred photos scored exactly chance on its test photos.
    return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(momentum=0.9),
            layers.Activation("relu"), layers.MaxPooling2D()]


def make_efficientnet(variant_name, dropout):
    """A builder: an EfficientNet-Lite with its ImageNet weights, and a new head for our classes (efficientnet.py)."""
    def build(image_size, num_classes):
        import keras
        from . import efficientnet

        backbone = efficientnet.make_backbone(image_size, efficientnet.VARIANTS[variant_name])
        efficientnet.load_imagenet_weights(backbone)
        return keras.Sequential([keras.Input(shape=(image_size, image_size, 3)), *augmentation(strong=False), backbone,
                                 *head(num_classes, dropout=dropout)], name=f"{variant_name}_classifier")
    return build


def make_cnn(image_size, num_classes, blocks=(32, 64, 128, 256, 256), dense=256):
    """Our from-scratch CNN: five conv blocks with BatchNormalization, then a small dense head."""
    import keras
    from keras import layers
    stack = [keras.Input(shape=(image_size, image_size, 3)), *augmentation(), layers.Rescaling(1.0 / 255)]
    for filters in blocks:
        stack += conv_block(filters)
    stack += [layers.Flatten(), layers.Dense(dense, activation="relu"), *head(num_classes, dropout=0.5)]
    return keras.Sequential(stack, name="cnn")


def make_classic(image_size, num_classes):
    """The classic tutorial's two-block CNN (its 64 px, batch 64 recipe is the benchmark anchor)."""
    import keras
    from keras import layers
    return keras.Sequential([
        keras.Input(shape=(image_size, image_size, 3)), *augmentation(), layers.Rescaling(1.0 / 255),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(128, activation="relu"), *head(num_classes),
    ], name="classic")


def make_logistic(image_size, num_classes):
    """Logistic regression on the pixels: the baseline, through the same pipeline."""
    import keras
    from keras import layers
    return keras.Sequential([keras.Input(shape=(image_size, image_size, 3)), *augmentation(), layers.Rescaling(1.0 / 255),
                             layers.Flatten(), *head(num_classes)], name="logistic")


@dataclass(frozen=True)
class Architecture:
    build: Callable          # (image_size, num_classes) -> keras.Model
    image_size: int          # default pixels per side
    epochs: int              # default epochs, all phases together
    learning_rate: float     # default peak learning rate
    summary: str             # what --help says
    pretrained: bool = False  # an ImageNet backbone: its head trains first, then its top blocks (phases)
    head_epochs: int = 0      # of the default epochs, how many train only the head (pretrained models)
    min_image_size: int = 32  # smaller photos leave too little for the convolutions and pooling to work on
    batch_size: int = 32      # default images per mini-batch
    # The fine-tuning phase's learning rate, as a share of learning_rate (pretrained models). Lite0's
    # 1/30 (against 1/10) kept the same validation accuracy and left its top blocks' features closer
    # to ImageNet's, which tell a wolf from a dog: the unknown score flags 99.1 % of photos of
    # neither, against 97.2 % (MODEL_CARD.md).
    fine_tune_share: float = 0.1


MODELS = {
    "efficientnet-lite0": Architecture(make_efficientnet("efficientnet_lite0", 0.2), 288, 2, 1e-3,
                                       "ImageNet-pretrained EfficientNet-Lite0, fine-tuned", pretrained=True, head_epochs=1,
                                       fine_tune_share=1 / 30),
    "efficientnet-lite2": Architecture(make_efficientnet("efficientnet_lite2", 0.3), 288, 2, 1e-3,
                                       "ImageNet-pretrained EfficientNet-Lite2, fine-tuned", pretrained=True, head_epochs=1),
    "cnn": Architecture(make_cnn, 96, 18, 1e-3, "our five-block CNN, from scratch"),
    "classic": Architecture(make_classic, 64, 18, 1e-3, "the classic tutorial's two-block CNN, from scratch", batch_size=64),
    "logistic": Architecture(make_logistic, 64, 18, 1e-3, "logistic regression on the pixels, the baseline", min_image_size=1),
}


def make_model(name, image_size, num_classes):
    return MODELS[name].build(image_size, num_classes)


def set_phase(model, phase):
    """Choose what trains (a Phase, or its value): HEAD freezes the pretrained backbone, FINE_TUNE
    opens its top blocks (BatchNorm stays frozen), TRAIN leaves every layer trainable."""
    from .features import backbone_of

    phase = Phase(phase)
    if phase is Phase.HEAD:
        backbone_of(model).trainable = False
    elif phase is Phase.FINE_TUNE:
        from .efficientnet import freeze_except_top
        freeze_except_top(backbone_of(model))


def split_frozen(model, whole_backbone=False):
    """(frozen part, trainable top) of a pretrained model: features.py runs the first once per photo.
    The frozen part is the backbone's lower blocks, or all of it when only the head trains."""
    from .efficientnet import variant_of
    from .features import backbone_of, split
    backbone = backbone_of(model)
    return split(model, backbone.layers[-1].name if whole_backbone else variant_of(backbone).frozen_output)
