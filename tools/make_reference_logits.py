"""The PyTorch reference for tests/test_efficientnet.py: an EfficientNet-Lite's ImageNet logits of the
test's three pictures, computed by torch in float64 from the same .pth file, independently of the
Keras port (classifier/efficientnet.py). Not run by CI: it needs torch, which the project does not.

    python tools/make_reference_logits.py [efficientnet_lite2]   # prints the REFERENCE_LOGITS entry to paste
                                                 # into the test, and how far the Keras port is from it

Run it with the project's environment plus torch (any version from 1.13; Debian's python3-torch
will do). The forward pass is lukemelas's EfficientNet (the .pth's names: _conv_stem, _blocks.N...)
without squeeze-excite and with ReLU6, as the Lite models are, and TensorFlow's SAME padding
(F.pad before each conv), which is how the checkpoint was trained in TensorFlow.
"""
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

from classifier.efficientnet import LITE0, VARIANTS, checked_weights_file  # noqa: E402

TOP = 10           # logits kept per picture: the test checks their values and their order
DIGITS = 6         # printed decimals: rounding adds at most 5e-7 to the test's differences
EPSILON = 1e-3     # BatchNormalization's, as TensorFlow trained it


def same_padding(x, kernel_size, stride):
    """TensorFlow's padding="SAME": the output is ceil(input / stride); the odd pixel goes after."""
    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad takes the last dimension first: width, then height
        total = max((math.ceil(size / stride) - 1) * stride + kernel_size - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def conv_bn(x, state, conv, bn, stride=1, groups=1, relu6=True):
    kernel = state[f"{conv}.weight"]
    x = F.conv2d(same_padding(x, kernel.shape[-1], stride), kernel, stride=stride, groups=groups)
    x = F.batch_norm(x, state[f"{bn}.running_mean"], state[f"{bn}.running_var"], state[f"{bn}.weight"],
                     state[f"{bn}.bias"], training=False, eps=EPSILON)
    return F.hardtanh(x, 0.0, 6.0) if relu6 else x


def forward(state, pixels, stages):
    """ImageNet logits (N, 1000) of pixels (N, H, W, 3), values 0-255."""
    # Through lists, not torch.as_tensor: a torch built against numpy 1 (Debian's) cannot read numpy 2's arrays.
    x = (torch.tensor(pixels.tolist(), dtype=torch.float64).permute(0, 3, 1, 2) - 127) / 128
    x = conv_bn(x, state, "_conv_stem", "_bn0", stride=2)
    index = 0
    for repeats, kernel_size, first_stride, expand_ratio, filters in stages:
        for repeat in range(repeats):
            block, inputs = f"_blocks.{index}", x
            stride = first_stride if repeat == 0 else 1
            if expand_ratio != 1:
                x = conv_bn(x, state, f"{block}._expand_conv", f"{block}._bn0")
            x = conv_bn(x, state, f"{block}._depthwise_conv", f"{block}._bn1", stride=stride, groups=x.shape[1])
            x = conv_bn(x, state, f"{block}._project_conv", f"{block}._bn2", relu6=False)
            if stride == 1 and inputs.shape[1] == filters:
                x = x + inputs
            index += 1
    x = conv_bn(x, state, "_conv_head", "_bn1")
    return F.linear(x.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])


def load_state(path):
    """The .pth's tensors in float64. weights_only: torch's own safe unpickler (the file is checked first)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: tensor.double() for name, tensor in state.items() if tensor.is_floating_point()}


def main():
    from test_efficientnet import reference_inputs  # the pictures the test feeds the port

    variant = VARIANTS[sys.argv[1]] if len(sys.argv) > 1 else LITE0
    path, _ = checked_weights_file(variant=variant)  # the sha256 the port was written for
    pixels = reference_inputs()
    with torch.no_grad():
        logits = np.array(forward(load_state(path), pixels, variant.stages).tolist())
    print(f"# computed by tools/make_reference_logits.py with torch {torch.__version__} in float64")
    print(f'"{variant.name}": [')
    for row in logits:
        top = np.argsort(-row, kind="stable")[:TOP]
        print("    [" + ", ".join(f"({index}, {row[index]:.{DIGITS}f})" for index in top) + "],")
    print("],")

    from classifier import import_tensorflow
    import_tensorflow()
    from classifier.efficientnet import imagenet_classifier
    port = np.asarray(imagenet_classifier(pixels.shape[1], variant=variant)(pixels, training=False), dtype=np.float64)
    difference = np.abs(port - logits)
    print(f"# the Keras port (float32): largest difference {difference.max():.2e} over all 1000 logits, "
          f"{max(difference[row, np.argsort(-logits[row])[:TOP]].max() for row in range(len(logits))):.2e} over the top {TOP}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
