"""How a model learns: the constants of the method (learning rate, loss weights, the forest's
soft targets, self-training, synthesis). A model file does not carry them: a loaded model
learns by its preset's recipe. Benchmarks change them for a run, through
``Segmenter.create(**overrides)`` or ``model.recipe``."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Recipe:
    """The training recipe of one model (in memory only)."""

    learning_rate: float = 3e-3  # the peak; presets set their own (model.PRESETS)
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

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}
