"""Who makes the prediction: the network alone, the model's random forest alone, and their
blends, on the same trained models (real images with ground truth, ``real_data``).

For each dataset and stroke seed the product is trained as ``quality_real.py`` trains it
(``--steps`` or ``--seconds``, ``--set`` overrides), then its class probabilities are taken
three ways: the network alone (``forest_blend`` 0), the forest it fitted on the training
strokes alone, and ``(1 - w) * network + w * forest`` for each ``w`` of ``BLENDS`` (0.5 is
the product's default). Each is scored as ``quality_real.py`` scores a class map: mean and
per-class IoU for semantic data, foreground Dice for instance data (objects are left out:
this is about the class map). Also each part's accuracy on the training strokes of each
class (does the network fit what it was shown?).

Prints JSON: per dataset and part the scores per seed and their mean; the commit, CPU and
load. Run:
``.venv/bin/python benchmarks/blend_parts.py --steps 500 --datasets drosophila_vnc_sstem_s0_semantic``
"""

from __future__ import annotations

import os

import numpy as np
import real_data
from harness import machine_info, print_report
from quality_real import dataset_train

from paintseg.learn.events import drain
from paintseg.learn.metrics import foreground_dice
from paintseg.learn.predict import predict

BLENDS = (0.25, 0.5, 0.75)


def parts(model, image) -> dict[str, np.ndarray]:
    """Class probabilities ``(K, Y, X)`` of the network alone, the forest alone and each blend."""
    blend = model.config.forest_blend
    model.config.forest_blend = 0.0
    try:
        network = np.asarray(drain(predict(model, image)).probabilities, np.float32)
    finally:
        model.config.forest_blend = blend
    found = {"network": network}
    if model.forest is not None:
        forest = np.asarray(model.forest.predict(model.normalize(image)), np.float32)
        found["forest"] = forest
        found.update({f"blend_{w}": (1 - w) * network + w * forest for w in BLENDS})
    return found


def part_scores(dataset, probabilities: np.ndarray, strokes: np.ndarray) -> dict:
    """Class-map scores of ``probabilities`` and its accuracy on each class's strokes."""
    labels = np.argmax(probabilities, 0) + 1
    if dataset.kind == "semantic":
        row = real_data.class_scores(labels, dataset.truth, dataset.classes)
    else:
        row = {"dice": round(foreground_dice(np.isin(labels, dataset.object_values),
                                             dataset.truth > 0), 4)}
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
    for dataset in real_data.datasets(args.datasets):
        rows: dict[str, list[dict]] = {}
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset, seed, args)
            model = dataset_train(dataset, strokes, args.seconds, args.steps, seed, overrides)
            for name, probabilities in parts(model, np.asarray(dataset.image)).items():
                rows.setdefault(name, []).append(part_scores(dataset, probabilities, strokes))
        key = "miou" if dataset.kind == "semantic" else "dice"
        report["datasets"][dataset.name] = {
            name: {key: [r[key] for r in found], "mean": round(float(np.mean(
                [r[key] for r in found])), 4), "per_seed": found}
            for name, found in rows.items()}
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
