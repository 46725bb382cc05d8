"""Who makes the prediction: the network alone, the model's random forest alone, and their
blends, on the same trained models (real images with ground truth, ``real_data``).

For each dataset and stroke seed the product is trained as ``quality_real.py`` trains it
(``--steps`` or ``--seconds``, ``--set`` overrides), then its class probabilities are taken
three ways: the network alone (``forest_blend`` 0), the model's forest alone (fitted on
every stroke), and ``(1 - w) * network + w * forest`` for each ``w`` of ``BLENDS`` (0.5 is
the product's default). Also ``forest_training_strokes``: a forest fitted as the product's
was before 2026-12-05, on the training strokes alone (the held-out ones left out), with the
same seed, and its blend at 0.5; and ``product``, the blend with the forest's share that
training learnt, its objects cut where the network is sure of a boundary class
(``learn/blend.py``).
Each is scored as ``quality_real.py`` scores a class map: mean and per-class IoU for semantic data; foreground
Dice, and the F1@0.5 of the objects that the model's object options find in it, for
instance data. Also each part's accuracy on the training strokes of each class (does the
network fit what it was shown?).

Prints JSON: per dataset and part the scores per seed and their mean; the commit, CPU and
load. Run:
``.venv/bin/python benchmarks/blend_parts.py --steps 500 --datasets drosophila_vnc_sstem_s0_semantic``
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import real_data
import torch
from harness import machine_info, print_report
from quality_real import channels_first, dataset_train, product_objects

from paintseg.learn.blend import blend, learnt_boundaries, sure_boundary
from paintseg.learn.events import drain
from paintseg.learn.forest import PixelForest
from paintseg.learn.metrics import foreground_dice
from paintseg.learn.predict import predict
from paintseg.learn.sampling import prepare_training_data

BLENDS = (0.25, 0.5, 0.75)


def training_strokes_forest(model, image, strokes, seed: int) -> tuple[PixelForest, np.ndarray]:
    """A forest fitted as the model's was before 2026-12-05: on the strokes training kept
    (the held-out ones left out), with the same seed; and those training strokes."""
    data = prepare_training_data(model.class_names, [list(image)], [strokes], model.normalize,
                                 model.multiple, torch.device("cpu"))
    plane = data.planes[0]
    p = plane.pad
    labels = plane.train_labels[p:-p, p:-p].numpy()
    forest = PixelForest.fit([model.normalize(image)], [labels], data.n_classes, seed=seed,
                             threads=torch.get_num_threads())
    return forest, labels


def parts(model, image, strokes, seed: int
          ) -> tuple[dict[str, np.ndarray], float | None, np.ndarray | None]:
    """Class probabilities ``(K, Y, X)`` of the network alone, the forest alone, each blend,
    the forest of the training strokes alone and its blend at 0.5, and the product's own
    blend (``product``, the forest's share learnt in training); that share (None without a
    forest); and where the product cuts objects (its ``separators``, or None)."""
    share = model.config.forest_blend
    model.config.forest_blend = 0.0
    try:
        network = np.asarray(drain(predict(model, image)).probabilities, np.float32)
    finally:
        model.config.forest_blend = share
    found = {"network": network}
    if model.forest is not None:
        forest = np.asarray(model.forest.predict(model.normalize(image)), np.float32)
        found["forest"] = forest
        found.update({f"blend_{w}": (1 - w) * network + w * forest for w in BLENDS})
        old, _ = training_strokes_forest(model, image, strokes, seed)
        old = np.asarray(old.predict(model.normalize(image)), np.float32)
        found["forest_training_strokes"] = old
        found["blend_0.5_training_strokes"] = 0.5 * network + 0.5 * old
        w = model.config.forest_blend
        found["product"] = blend(network, forest, w)
        boundaries = learnt_boundaries(model)
        return found, w, sure_boundary(network, boundaries) if boundaries else None
    return found, None, None


def part_scores(dataset, probabilities: np.ndarray, strokes: np.ndarray, model,
                separators: np.ndarray | None = None) -> dict:
    """Class-map scores of ``probabilities``, the F1 of the objects that ``model``'s object
    options find in it (cut at ``separators``; instance data), and its accuracy on each
    class's strokes."""
    labels = np.argmax(probabilities, 0) + 1
    if dataset.kind == "semantic":
        row = real_data.class_scores(labels, dataset.truth, dataset.classes)
    else:
        foreground = np.isin(labels, dataset.object_values)
        row = {"dice": round(foreground_dice(foreground, dataset.truth > 0), 4)}
        prediction = SimpleNamespace(labels=labels.astype(np.uint8), probabilities=probabilities,
                                     separators=separators)
        objects = product_objects(model, dataset.image, prediction, spacing=dataset.spacing)
        row["f1"] = real_data.scores(foreground, objects, dataset.truth)["f1"]
    row["stroke_accuracy"] = [round(float((labels[strokes == k] == k).mean()), 3)
                              for k in range(1, len(dataset.classes) + 1)
                              if (strokes == k).any()]
    return row


def main() -> None:
    args = real_data.one_shot_arguments(__doc__.splitlines()[0])
    overrides = real_data.config_overrides(args)
    report: dict = {"settings": {"steps": args.steps, "seconds": args.seconds,
                                 "overrides": overrides, **machine_info(),
                                 "load_before": os.getloadavg()[0]},
                    "datasets": {}}
    for dataset in real_data.datasets(args.datasets, args.zoom, args.data):
        rows: dict[str, list[dict]] = {}
        weights: list[float | None] = []  # the forest share learnt, per seed
        steps: list[int] = []  # steps trained per seed
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset, seed, args)
            seconds = None if args.steps else args.seconds  # a step budget alone
            model = dataset_train(dataset, strokes, seconds, args.steps, seed, overrides)
            steps.append(sum(h["steps"] for h in model.config.history))
            image = channels_first(dataset.image)
            by_part, weight, separators = parts(model, image, strokes, seed)
            weights.append(None if weight is None else round(weight, 3))
            for name, probabilities in by_part.items():
                cuts = separators if name == "product" else None
                rows.setdefault(name, []).append(part_scores(dataset, probabilities, strokes,
                                                             model, cuts))
        keys = ["miou"] if dataset.kind == "semantic" else ["dice", "f1"]
        report["datasets"][dataset.name] = {
            name: {**{key: [r[key] for r in found] for key in keys},
                   **{f"mean_{key}": round(float(np.mean([r[key] for r in found])), 4)
                      for key in keys}, "per_seed": found}
            for name, found in rows.items()}
        report["datasets"][dataset.name]["forest_shares"] = weights
        report["datasets"][dataset.name]["steps"] = steps
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
