"""How much of a prediction is the random forest's (``ModelConfig.forest_blend``), learnt at
the end of a first training from how well the network fits the strokes it was trained on.

Half and half is the measured best where the network has learnt every class
(docs/benchmarks.md). A class that the network gets wrong on most of its own training strokes is
one it has not learnt in its time (EM textures, in a minute on two CPU cores), and the
forest, which fits every stroke, takes that class's share: the forest's share is
``0.5 + 0.5 * (the share of painted classes not learnt)``. A class learnt but imprecisely
(strokes wider than a thin membrane) changes nothing: there the network is often right.

A Continue keeps the share (unless it trains a class that was not measured): its corrections
are painted where the prediction was wrong, so the network's recall on them says how hard
they are, not how well it has learnt the image; measured on them, the share swung to the
forest and objects merged (docs/benchmarks.md).

Where the network is sure of a boundary class it has learnt (a membrane, an outline), objects
are cut (:func:`sure_boundary`, the prediction's ``separators``): a gap in a boundary joins
two objects, and the forest's thinner membranes leave gaps between EM neurites, while the
blend's class map is nearer the truth (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.measure import label, regionprops

from paintseg.learn.model import Segmenter
from paintseg.learn.sampling import TrainingData, stroke_window

FITTED_SHARE = 0.5  # the forest's share when the network has learnt every class
LEARNT_RECALL = 0.5  # a class is learnt when the network is right on this share of its strokes
STROKES_PER_CLASS = 24  # training strokes of a class the fit is measured on, at most
SURE_BOUNDARY = 0.7  # the network's probability of a learnt boundary class that cuts objects


def blend(network: np.ndarray, forest: np.ndarray, share: float) -> np.ndarray:
    """Class probabilities ``(K, ...)``: ``(1 - share) * network + share * forest``."""
    return (1 - share) * network + share * forest


def sure_boundary(network: np.ndarray, boundaries: Sequence[int]) -> np.ndarray:
    """Where the network's probabilities ``(K, ...)`` give one of the ``boundaries`` (class
    indices, 0-based) at least ``SURE_BOUNDARY``: objects are cut there."""
    return (network[list(boundaries)] >= SURE_BOUNDARY).any(0)


def learnt_boundaries(model: Segmenter) -> list[int]:
    """Indices of the boundary classes that cut objects where the network is sure of them
    (:func:`sure_boundary`): those the network has learnt, by the last training's recall on
    their training strokes -- every boundary class when none is recorded."""
    recalls = recorded_recalls(model.config.history)
    return [i for i, c in enumerate(model.config.classes) if c.role == "boundary"
            and recalls.get(c.name, 1.0) >= LEARNT_RECALL]


def forest_share(recalls: Sequence[float]) -> float:
    """The forest's share, from the network's recall on each painted class's strokes."""
    unlearnt = float(np.mean(np.asarray(recalls) < LEARNT_RECALL))
    return FITTED_SHARE + (1 - FITTED_SHARE) * unlearnt


def training_recalls(model: Segmenter, data: TrainingData, seed: int = 0) -> dict[int, float]:
    """The network alone's recall on the training strokes of each painted class (label value
    -> recall): each stroke predicted in its `stroke_window`, at most `STROKES_PER_CLASS`
    strokes of a class (chosen at random)."""
    rng = np.random.default_rng(seed)
    labels = [plane.train_labels.cpu().numpy() for plane in data.planes]
    by_class: dict[int, list] = {}  # class -> (plane, stroke region)
    for i, plane_labels in enumerate(labels):  # a stroke: touching pixels of one class
        for region in regionprops(label(plane_labels, connectivity=2), plane_labels):
            by_class.setdefault(int(region.intensity_min), []).append((i, region))
    recalls = {}
    for k, strokes in sorted(by_class.items()):
        chosen = rng.permutation(len(strokes))[:STROKES_PER_CLASS]
        right = total = 0
        for i, region in (strokes[j] for j in chosen):
            ys, xs = stroke_window(region.bbox, labels[i].shape, model.multiple)
            window = data.planes[i].data[:, ys, xs][None]
            classes = model.logits(window)[0].argmax(0).cpu().numpy() + 1
            top, left = region.bbox[0] - ys.start, region.bbox[1] - xs.start
            found = classes[top:top + region.image.shape[0],
                            left:left + region.image.shape[1]][region.image]
            right, total = right + int((found == k).sum()), total + found.size
        recalls[k] = right / total
    return recalls


def learn_forest_share(model: Segmenter, data: TrainingData,
                       first_session: bool = True) -> dict[str, float] | None:
    """Set ``model.config.forest_blend`` from the network's fit (to three decimals), unless
    the model has no forest, the user fixed the share, or a Continue (not ``first_session``)
    trains only classes whose recall is recorded; returns the recall per class name it was
    learnt from (None when not learnt)."""
    if model.forest is None or model.config.forest_blend_fixed:
        return None
    trained = {model.class_names[k - 1] for k in data.pixels}
    if not first_session and trained <= set(recorded_recalls(model.config.history)):
        return None
    recalls = training_recalls(model, data)
    model.config.forest_blend = round(forest_share(list(recalls.values())), 3)
    return {model.class_names[k - 1]: round(r, 3) for k, r in recalls.items()}


def recorded_recalls(history: list[dict]) -> dict[str, float]:
    """The network's recall per class name recorded by the last training that learnt the
    share (empty when none)."""
    entries = (entry.get("network_recall") for entry in reversed(history)
               if isinstance(entry, dict))  # a model file's JSON: checked, not trusted
    recalls = next((found for found in entries if found is not None), None)
    if not isinstance(recalls, dict):
        return {}
    return {str(name): float(recall) for name, recall in recalls.items()
            if isinstance(recall, (int, float))}


def not_learnt(history: list[dict]) -> list[str]:
    """The classes that the network of the last measure had not learnt (the forest carries
    them), from its history entry; empty when all were, or not recorded."""
    return [name for name, recall in recorded_recalls(history).items() if recall < LEARNT_RECALL]
