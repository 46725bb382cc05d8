"""The learning engine. Pure numpy/torch/scikit-image/dask: no Qt, no napari."""

from paintseg.classes import ClassInfo, default_colors
from paintseg.learn.device import Numerics, choose_numerics, describe_device, pick_device
from paintseg.learn.events import drain
from paintseg.learn.metrics import matching, semantic_scores
from paintseg.learn.model import PRESETS, ModelConfig, Segmenter
from paintseg.learn.objects import find_objects
from paintseg.learn.predict import PredictEvent, Prediction, predict, predict_plane
from paintseg.learn.train import Preview, TrainEvent, train

__all__ = [
    "PRESETS",
    "ClassInfo",
    "ModelConfig",
    "Numerics",
    "PredictEvent",
    "Prediction",
    "Preview",
    "Segmenter",
    "TrainEvent",
    "choose_numerics",
    "default_colors",
    "describe_device",
    "drain",
    "find_objects",
    "matching",
    "pick_device",
    "predict",
    "predict_plane",
    "semantic_scores",
    "train",
]
