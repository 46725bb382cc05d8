"""How a model learns: the constants of the method (learning rate, loss weights, the forest's
soft targets, self-training, synthesis). A model file does not carry them: a loaded model
learns by its preset's recipe. Benchmarks change them for a run, through
``Segmenter.create(**overrides)`` or ``model.recipe``."""

from __future__ import annotations

from dataclasses import dataclass, fields

from paintseg.errors import InputError

MAX_PATCH_SIZE = 1024
MAX_BATCH_SIZE = 256


@dataclass
class Recipe:
    """The training recipe of one model (in memory only)."""

    # The patch and batch sizes and the peak learning rate: presets set their own (PRESETS)
    patch_size: int = 64
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    dice_weight: float = 0.5
    class_weight_power: float = 0.5  # loss weight of a class: its painted pixels ** -power
    forest_weight: float = 0.25  # weight of a random forest's soft targets on unpainted pixels
    # Self-training: halfway through the first training, the network's own predictions at
    # least this confident replace the forest's soft targets (0 = off)
    pseudo_label_confidence: float = 0.9
    # learn/synthesis (off by default): share of patches that get sure objects pasted in;
    # rendered pairs added per batch, as a share of it; seconds the image generator learns
    copy_paste_share: float = 0.0
    synthetic_share: float = 0.0
    generator_seconds: float = 20.0

    def __post_init__(self) -> None:
        for name, value, high in (("patch size", self.patch_size, MAX_PATCH_SIZE),
                                  ("batch size", self.batch_size, MAX_BATCH_SIZE)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
                raise InputError(f"The {name} must be a whole number from 1 to {high}, "
                                 f"not {value!r}.")

    def check_patch_size(self, depth: int) -> None:
        """The patches must halve ``depth`` times."""
        if self.patch_size % 2**depth:
            raise InputError(
                f"Patch size {self.patch_size} must be a multiple of 2**depth = {2**depth}.")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}
