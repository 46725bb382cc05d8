"""The model: configuration, U-Net weights, normalisation, and the safe one-file format."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

from paintseg import __version__
from paintseg.classes import ClassInfo
from paintseg.errors import FileFormatError, InputError, PaintsegError
from paintseg.learn.device import Numerics, choose_numerics, pick_device
from paintseg.learn.forest import KnownPlanes, PixelForest
from paintseg.learn.objects import SPLITS
from paintseg.learn.recipe import Recipe
from paintseg.learn.unet import UNet

FORMAT = "paintseg-model"
FORMAT_VERSION = 1
OPTIMIZER_PREFIX = "optimizer."  # optimiser state tensors (to_bytes only)
FOREST_PREFIX = "forest."  # the random forest's arrays (learn/forest.py), when it has one
# Bounds on what a model file's settings may claim: far above any real model, far below
# what would exhaust a machine
MAX_CHANNELS = 64
MAX_CLASSES = 64
MAX_DEPTH = 6
MAX_WIDTH = 128

# No normalisation layers: with sparse strokes, batch/group normalisation made the network
# lean on context and generalise far worse (foreground Dice 0.3 against 0.9 on test data).
PRESETS: dict[str, dict[str, Any]] = {
    # Learns in seconds on two CPU cores.
    "fast": {"depth": 3, "width": 16, "dropout": 0.0, "patch_size": 64, "batch_size": 8,
             "learning_rate": 3e-3},
    # The GPU default.
    "balanced": {"depth": 4, "width": 32, "dropout": 0.0, "patch_size": 128,
                 "batch_size": 8, "learning_rate": 1e-3},
    "accurate": {"depth": 5, "width": 32, "dropout": 0.1, "patch_size": 256,
                 "batch_size": 8, "learning_rate": 1e-3},
}


def open_model(path: str | os.PathLike, device: str | torch.device = "auto",
               option: str = "the model") -> Segmenter:
    """`Segmenter.load`, for the CLI and the dock (``option``: how the user named the file):
    a folder, a missing or a damaged file is a sentence naming it."""
    if Path(path).is_dir():
        raise InputError(f"{path} is a folder: give {option} a model file "
                         "(.safetensors, saved by paintseg).")
    return Segmenter.load(path, device=device)


def preset_recipe(preset: str, depth: int) -> Recipe:
    """The recipe a model of ``preset`` learns by: the default one, with the preset's patch
    and batch sizes and learning rate (patches rounded up to a multiple of ``2**depth``)."""
    settings = PRESETS.get(preset, PRESETS["fast"])
    recipe = Recipe(**{k: v for k, v in settings.items() if k in Recipe.field_names()})
    recipe.patch_size = -(-recipe.patch_size // 2**depth) * 2**depth
    return recipe


def default_preset(device: torch.device) -> str:
    """``"fast"`` on a CPU, ``"balanced"`` on a GPU."""
    return "fast" if device.type == "cpu" else "balanced"


def _versions() -> dict[str, str]:
    return {
        "paintseg": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


# Architecture options measured and removed (docs/benchmarks.md): what every file had or
# may have, by default, and still loads
RETIRED_OPTIONS = {"norm": "none", "upsample": "transpose"}


@dataclass
class ModelConfig:
    """What a model is, saved inside its file: channels, classes, architecture, normalisation,
    how its predictions blend with its forest and its objects are found, and its history.
    How it learns is its `Recipe` (not saved).

    ``norm_low``/``norm_high`` are the per-channel intensities at the 1st and 99.8th
    percentile, set by the first training. ``history`` has one entry per training session.
    """

    channels: list[str]
    classes: list[ClassInfo]
    preset: str = "fast"
    depth: int = 3
    width: int = 16
    dropout: float = 0.0
    # Predictions are this share the random forest's (fitted on the strokes, kept in the
    # model file) and the rest the network's; 0 = the network alone. Each training learns it
    # (learn/blend.py) unless the user fixed it.
    forest_blend: float = 0.5
    forest_blend_fixed: bool = False
    norm_low: list[float] | None = None
    norm_high: list[float] | None = None
    # How objects are found (find_objects keyword arguments), chosen from the painted object
    # strokes at the end of training (objects.choose_split); empty: the defaults
    objects: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=_versions)

    def __post_init__(self) -> None:
        if not 1 <= len(self.channels) <= MAX_CHANNELS:
            raise InputError(f"A model needs 1 to {MAX_CHANNELS} channels, not "
                             f"{len(self.channels)}.")
        if not 2 <= len(self.classes) <= MAX_CLASSES:
            raise InputError(f"A model needs 2 to {MAX_CLASSES} classes, not "
                             f"{len(self.classes)}.")
        for name, value, high in (("depth", self.depth, MAX_DEPTH),
                                  ("width", self.width, MAX_WIDTH)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
                    or not 1 <= value <= high:
                raise InputError(f"The {name} must be a whole number from 1 to {high}, "
                                 f"not {value!r}.")
        if not isinstance(self.forest_blend, (int, float)) or isinstance(self.forest_blend, bool) \
                or not 0 <= self.forest_blend <= 1:
            raise InputError(f"The forest blend must be from 0 to 1, not {self.forest_blend!r}.")
        if not isinstance(self.forest_blend_fixed, bool):
            raise InputError("forest_blend_fixed must be true or false.")
        if not 0 <= self.dropout < 1:
            raise InputError(f"The dropout must be from 0 to below 1, not {self.dropout!r}.")
        for bound in (self.norm_low, self.norm_high):
            if bound is not None and len(bound) != len(self.channels):
                raise InputError("The normalisation needs one value per channel.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        data = asdict(self)
        data["classes"] = [c.to_dict() for c in self.classes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions, or the recipe that
        older files carried) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, only in RETIRED_OPTIONS.items():
            if data.get(name, only) != only:
                raise FileFormatError(
                    f"This model was made with {name} {data[name]!r}, an experimental option "
                    "this version no longer has; train a new model.")
        values["classes"] = [ClassInfo.from_dict(c) for c in data["classes"]]
        return cls(**values)


class Segmenter:
    """A U-Net with its configuration, device, numerics and (while training) optimiser.

    Make one with :meth:`create` or :meth:`load`; train it in place with
    :func:`paintseg.learn.train`; predict with :func:`paintseg.learn.predict`.
    """

    def __init__(self, config: ModelConfig, net: UNet, device: torch.device,
                 recipe: Recipe | None = None):
        self.config = config
        self.recipe = recipe or preset_recipe(config.preset, config.depth)
        self.net = net.to(device)
        self.device = device
        self.optimizer: torch.optim.Optimizer | None = None
        self.forest: PixelForest | None = None  # set by training; blended into predictions
        self.forest_known: KnownPlanes | None = None  # of the planes trained on, predicted since
        self._numerics: Numerics | None = None
        self._inference_numerics: Numerics | None = None

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        channels: list[str],
        classes: list[ClassInfo],
        preset: str = "auto",
        device: str | torch.device = "auto",
        seed: int = 0,
        **overrides: Any,
    ) -> Segmenter:
        """A new, untrained model.

        Parameters
        ----------
        channels : list of str
            Channel names, in the order of the image channels.
        classes : list of ClassInfo
            Class table; entry ``i`` is label value ``i + 1``.
        preset : str
            ``"auto"`` (``"fast"`` on a CPU, ``"balanced"`` on a GPU) or a key of `PRESETS`.
        device : str or torch.device
            See :func:`paintseg.learn.pick_device`.
        seed : int
            Seed of the initial weights.
        **overrides
            Any `ModelConfig` or `Recipe` field, e.g. ``depth=4`` or ``forest_weight=0``.

        Returns
        -------
        Segmenter
        """
        torch_device = pick_device(device)
        if preset == "auto":
            preset = default_preset(torch_device)
        if preset not in PRESETS:
            raise InputError(f"Unknown preset {preset!r}; use auto or one of {', '.join(PRESETS)}.")
        settings = {**PRESETS[preset], **overrides}
        if "forest_blend" in overrides:  # a share the caller chose is kept, not learnt
            settings.setdefault("forest_blend_fixed", True)
        recipe = Recipe(**{k: settings.pop(k) for k in Recipe.field_names() & set(settings)})
        recipe.check_patch_size(settings["depth"])
        config = ModelConfig(
            channels=list(channels),
            classes=[c if isinstance(c, ClassInfo) else ClassInfo(str(c)) for c in classes],
            preset=preset,
            **settings,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _build_net(config)
        return cls(config, net, torch_device, recipe)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "auto") -> Segmenter:
        """Load a model file written by :meth:`save`. Nothing is unpickled.

        Raises
        ------
        FileFormatError
            If the file is not a paintseg model file (e.g. a pickled PyTorch checkpoint).
        """
        path = Path(path)
        if not path.is_file():
            raise PaintsegError(f"Model file {path} does not exist.")
        source = str(path)
        return cls._from_tensors(_parse_model_bytes(path.read_bytes(), source), device, source)

    @classmethod
    def from_bytes(cls, data: bytes, device: str | torch.device = "auto") -> Segmenter:
        """Inverse of :meth:`to_bytes`: the model with its optimiser state. Nothing is unpickled."""
        return cls._from_tensors(_parse_model_bytes(data, "model data"), device, "model data")

    @classmethod
    def _from_tensors(cls, parsed: tuple, device, source: str) -> Segmenter:
        config, tensors, optimizer_groups = parsed
        weights = {k: v for k, v in tensors.items()
                   if not k.startswith((OPTIMIZER_PREFIX, FOREST_PREFIX))}
        try:
            net = checked_net(config, weights, source)
        except PaintsegError:
            raise
        except Exception as error:  # settings JSON allows but the network refuses
            raise FileFormatError(f"{Path(source).name} is damaged: its settings do not make a "
                                  f"network ({type(error).__name__}: {error}).") from error
        model = cls(config, net, pick_device(device))
        forest = {k[len(FOREST_PREFIX):]: v.numpy() for k, v in tensors.items()
                  if k.startswith(FOREST_PREFIX)}
        if forest:
            try:
                model.forest = PixelForest.from_arrays(
                    forest, len(config.classes), len(config.channels),
                    threads=torch.get_num_threads())
            except ValueError as error:
                raise _not_a_model(source, f"its random forest is broken: {error}") from error
        if optimizer_groups is not None:
            model.optimizer = _restore_optimizer(model, tensors, optimizer_groups)
        return model

    def to_bytes(self) -> bytes:
        """The model and its optimiser state as safetensors bytes (e.g. for another process)."""
        tensors, metadata = self._tensors_and_metadata(with_optimizer=True)
        return safetensors.torch.save(tensors, metadata=metadata)

    def _tensors_and_metadata(self, with_optimizer: bool) -> tuple[dict, dict[str, str]]:
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        if self.forest is not None:
            tensors.update({FOREST_PREFIX + k: torch.from_numpy(np.ascontiguousarray(v))
                            for k, v in self.forest.to_arrays().items()})
        metadata = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "paintseg": json.dumps(self.config.to_dict()),
        }
        if with_optimizer and self.optimizer is not None:
            state = self.optimizer.state_dict()
            for index, values in state["state"].items():
                for key, value in values.items():
                    name = f"{OPTIMIZER_PREFIX}{index}.{key}"
                    tensors[name] = torch.as_tensor(value).cpu().contiguous()
            metadata["optimizer"] = json.dumps(state["param_groups"])
        return tensors, metadata

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one ``.safetensors`` file, atomically.

        The weights are tensors; the configuration is JSON in the header metadata under
        ``"paintseg"``. A temporary file beside ``path`` is renamed over it at the end, so a
        crash never leaves a half-written model.
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise PaintsegError(f"Cannot save the model: the folder {path.parent} does not exist.")
        weights, metadata = self._tensors_and_metadata(with_optimizer=False)
        descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                                 dir=path.parent)
        os.close(descriptor)
        try:
            safetensors.torch.save_file(weights, temp_name, metadata=metadata)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return path

    # -- use --------------------------------------------------------------------------------
    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (``2**depth``)."""
        return 2**self.config.depth

    @property
    def object_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`paintseg.learn.find_objects` for this model's objects:
        the split chosen from its painted object strokes."""
        chosen = self.config.objects  # read from a file: only known, sensible values
        options = {"split": chosen["split"]} if chosen.get("split") in SPLITS else {}
        h = chosen.get("shape_h")
        if isinstance(h, (int, float)) and 0 < h <= 10:
            options["shape_h"] = float(h)
        return options

    @property
    def class_names(self) -> list[str]:
        """Names of the classes, label value ``i + 1`` for entry ``i``."""
        return [c.name for c in self.config.classes]

    @property
    def numerics(self) -> Numerics:
        """Autocast dtype and memory layout, detected for this device on first use."""
        if self._numerics is None:
            shape = (self.recipe.batch_size, len(self.config.channels),
                     self.recipe.patch_size, self.recipe.patch_size)
            self._numerics = choose_numerics(self.device, self.net, shape)
            self._use_layout(self._numerics)
        return self._numerics

    @numerics.setter
    def numerics(self, value: Numerics) -> None:
        """Set the numerics of training and inference (e.g. ``Numerics()`` for fp32)."""
        self._numerics = self._inference_numerics = value
        self._use_layout(value)

    def _use_layout(self, numerics: Numerics) -> None:
        layout = torch.channels_last if numerics.channels_last else torch.contiguous_format
        self.net.to(memory_format=layout)

    @property
    def inference_numerics(self) -> Numerics:
        """Numerics of prediction: the training numerics, or with bf16 autocast where that
        is faster for a forward pass and predicts the same classes (detected on first use)."""
        if self._inference_numerics is None:
            train = self.numerics
            shape = (1, len(self.config.channels), 0, 0)
            chosen = choose_numerics(self.device, self.net, shape, purpose="inference")
            # Keep the weights' memory layout: only the autocast may differ.
            self._inference_numerics = chosen if chosen.channels_last == train.channels_last \
                else train
        return self._inference_numerics

    @property
    def is_trained(self) -> bool:
        """Whether the model has been trained (and so has its normalisation)."""
        return self.config.norm_low is not None

    def to(self, device: str | torch.device) -> Segmenter:
        """Move the model (and optimiser state) to ``device``; numerics are detected again."""
        self.device = pick_device(device)
        self.net.to(self.device)
        if self.optimizer is not None:
            for state in self.optimizer.state.values():
                for key, value in state.items():
                    if torch.is_tensor(value):
                        state[key] = value.to(self.device)
        self._numerics = self._inference_numerics = None
        return self

    def check_channels(self, n_channels: int) -> None:
        """Raise `InputError` unless the image has the number of channels the model expects."""
        expected = len(self.config.channels)
        if n_channels != expected:
            names = ", ".join(self.config.channels)
            raise InputError(
                f"This model was trained on {expected} channels ({names}) "
                f"but the image has {n_channels}."
            )

    def normalize(self, channels: np.ndarray) -> np.ndarray:
        """Scale a ``(C, ..., Y, X)`` array with the stored percentiles; returns float32.

        The 1st percentile maps to 0 and the 99.8th to 1.
        """
        if not self.is_trained:
            raise PaintsegError("This model has not been trained yet: train it first.")
        self.check_channels(len(channels))
        return scale_intensities(channels, self.config.norm_low, self.config.norm_high)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, K, H, W)`` float32 on ``self.device`` for a normalised batch.

        ``x`` is ``(N, C, H, W)`` on any device; H and W must be multiples of `multiple`.
        Runs in eval mode without gradients, with `inference_numerics`.
        """
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(
                f"Height and width {tuple(x.shape[-2:])} must be multiples of {self.multiple}."
            )
        numerics = self.inference_numerics
        x = x.to(self.device, dtype=torch.float32, non_blocking=True)
        if numerics.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad(), numerics.autocast(self.device):
                out = self.net(x)
        finally:
            self.net.train(was_training)
        return out.float().contiguous()


def scale_intensities(channels: np.ndarray, low: list[float], high: list[float]) -> np.ndarray:
    """Map per-channel ``low`` to 0 and ``high`` to 1 in a ``(C, ..., Y, X)`` array (float32)."""
    data = np.asarray(channels, dtype=np.float32)
    shape = (-1,) + (1,) * (data.ndim - 1)
    low_ = np.asarray(low, dtype=np.float32).reshape(shape)
    high_ = np.asarray(high, dtype=np.float32).reshape(shape)
    return (data - low_) / np.maximum(high_ - low_, 1e-6)


def _build_net(config: ModelConfig) -> UNet:
    return UNet(
        in_channels=len(config.channels),
        n_classes=len(config.classes),
        depth=config.depth,
        width=config.width,
        dropout=config.dropout,
    )


def checked_net(config: ModelConfig, weights: dict[str, torch.Tensor], source: str) -> UNet:
    """The network of ``config`` with ``weights``, once their names, shapes and dtypes are
    checked against it on the meta device (no memory): a file's settings never build a
    network that its own tensors do not fill."""
    with torch.device("meta"):
        expected = _build_net(config).state_dict()
    if set(expected) != set(weights):
        raise _not_a_model(source, "its weights do not fit its architecture")
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape or weights[name].dtype != tensor.dtype:
            raise _not_a_model(source, f"its weight {name} is {tuple(weights[name].shape)} "
                               f"{weights[name].dtype}, not {tuple(tensor.shape)} {tensor.dtype}")
    net = _build_net(config)
    net.load_state_dict(weights, strict=True)
    return net


def _not_a_model(source: str | Path, reason: str) -> FileFormatError:
    return FileFormatError(f"{source} is not a paintseg model file ({reason}).")


def _parse_model_bytes(data: bytes, source: str
                       ) -> tuple[ModelConfig, dict[str, torch.Tensor], list[dict] | None]:
    """Config, tensors and optimiser groups (if saved) from safetensors bytes; never unpickles."""
    # safetensors: an 8-byte header length, then JSON; its first byte may well be 0x80
    if data[8:9] != b"{" and (data.startswith(b"PK") or data[:1] == b"\x80"):
        raise _not_a_model(
            source, "it looks like a pickled PyTorch checkpoint, which is never loaded because "
            "it could run code"
        )
    try:
        header_size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + header_size]).get("__metadata__") or {}
        tensors = safetensors.torch.load(data)
    except Exception as error:  # safetensors raises several types for corrupt data
        raise _not_a_model(source, f"not a valid safetensors file: {error}") from error
    if "paintseg" not in metadata:
        raise _not_a_model(source, "it has no paintseg metadata")
    try:
        config = ModelConfig.from_dict(json.loads(metadata["paintseg"]))
        groups = json.loads(metadata["optimizer"]) if "optimizer" in metadata else None
    except (ValueError, KeyError, TypeError) as error:
        raise _not_a_model(source, f"its metadata is invalid: {error}") from error
    return config, tensors, groups


def _restore_optimizer(model: Segmenter, tensors: dict[str, torch.Tensor],
                       groups: list[dict]) -> torch.optim.Optimizer:
    """AdamW over the model's parameters, with the state written by ``to_bytes``."""
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=model.recipe.learning_rate,
                                  weight_decay=model.recipe.weight_decay)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(OPTIMIZER_PREFIX):
            index, name = key[len(OPTIMIZER_PREFIX):].split(".", 1)
            state.setdefault(int(index), {})[name] = value.to(model.device)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return optimizer
