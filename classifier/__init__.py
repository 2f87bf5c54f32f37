"""A small toolkit to train and use a two-class image classifier (cats vs dogs first) with Keras 3.

Importing the package is cheap: TensorFlow is imported only by the modules that need it, so
`--help` and usage errors answer at once.
"""
import os

# TensorFlow's C++ start-up logs (oneDNN notices, CUDA probing on CPU-only machines) would bury
# our own lines; users can still raise the level by setting the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
