"""One-shot quality on real images with hand-drawn ground truth: the product against a random
forest (ilastik's method), on the same simulated strokes, side by side in one run.

For each dataset (``real_data.datasets``: nuclei, RGB brightfield cells and nuclei, EM neurites,
phase-contrast cells, semantic EM classes) and stroke seed:

- the product as the CLI runs it: ``Segmenter.create`` with the dataset's channels and class
  table and its defaults, ``train`` for ``--seconds`` (60), ``predict``, and, for instance
  data, its own objects (``find_objects`` with the model's ``object_options``, the split it
  chose from the strokes); also the F1 of the plain connected components of its foreground
  (``components_f1``: are its objects better than the components of its own mask?);
- ``RandomForestClassifier(100)`` on ``multiscale_basic_features``, with connected components
  and a plain distance-transform watershed for its objects (the better of the two per image,
  which favours the forest); for semantic data its class map is the most probable class.

Instance data is scored by foreground Dice (of the object classes), F1@0.5 and AP@0.5;
semantic data by per-class IoU (``iou_<class>``) and their mean (``miou``).

Prints JSON: per dataset the mean and sd over seeds of those scores and wall time, the
product's lead over the forest, and the per-seed rows; the means over datasets (the instance
ones, and per group of datasets); the git commit, CPU, cores and load. Run:
``.venv/bin/python benchmarks/quality_real.py [--seconds 60] [--seeds 0 1 2] [--datasets ...]``
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import real_data
from harness import machine_info, print_report

from paintseg.learn.events import drain
from paintseg.learn.model import Segmenter
from paintseg.learn.objects import find_objects
from paintseg.learn.predict import predict
from paintseg.learn.train import train

INSTANCE_KEYS = ("dice", "f1", "ap")


def channels_first(image) -> np.ndarray:
    """A (Y, X) image as (1, Y, X); a (C, Y, X) one as it is."""
    image = np.asarray(image)
    return image[None] if image.ndim == 2 else image


def product_train(image, strokes, seconds, steps, seed, model=None, overrides=None,
                  channels=("nuclei",), classes=None):
    """Train as the CLI does (``paintseg train``) on a (C, Y, X) image (a (Y, X) one is one
    channel), or continue ``model`` (as Continue does); ``overrides``: ``ModelConfig`` fields
    changed from the defaults (``--set``); ``channels``, ``classes``: the channel names and
    the class table of a new model (default: one nuclei channel, ``real_data.CLASSES``)."""
    if model is None:
        model = Segmenter.create(channels=list(channels), classes=classes or real_data.CLASSES,
                                 seed=seed, **(overrides or {}))
    return drain(train(model, images=[channels_first(image)], annotations=[strokes],
                       seconds=seconds, steps=steps, seed=seed))


def product_prediction(model, image, objects: bool = True, options: dict | None = None,
                       spacing=None):
    """The ``Prediction`` and the objects (None without ``objects``), as
    ``paintseg predict --objects`` makes them (``options``: other ``find_objects``
    options than the model's; ``spacing``: the voxel size of a stack)."""
    image = channels_first(image)
    prediction = drain(predict(model, image))
    if not objects:
        return prediction, None
    return prediction, product_objects(model, image, prediction, options, spacing)


def product_objects(model, image, prediction, options: dict | None = None,
                    spacing=None) -> np.ndarray:
    """The objects of ``prediction`` with the model's ``find_objects`` options, or
    ``options``, measured in the voxel size ``spacing`` (a stack's; default 1)."""
    instances, _ = find_objects(prediction.labels, model.config.classes,
                                probabilities=prediction.probabilities,
                                image=list(channels_first(image)), spacing=spacing,
                                separators=getattr(prediction, "separators", None),
                                **(model.object_options if options is None else options))
    return instances


def product_segment(model, image, save_probability_to=None, objects: bool = True):
    """Class map and objects (None without ``objects``) as ``paintseg predict --objects``
    makes them; P(nucleus) (all class probabilities with more than two classes) saved to
    ``save_probability_to`` (a .npy path) when given."""
    prediction, instances = product_prediction(model, image, objects)
    if save_probability_to is not None:
        save_probabilities(prediction, save_probability_to)
    return np.asarray(prediction.labels), instances


def save_probabilities(prediction, path: Path) -> None:
    """P(nucleus), or all class probabilities with more than two classes, as .npy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    probabilities = np.asarray(prediction.probabilities)
    kept = probabilities[1] if len(probabilities) == 2 else probabilities
    np.save(path, np.asarray(kept, np.float16))


def dataset_train(dataset, strokes, seconds, steps, seed, overrides):
    """``product_train`` of a new model for ``dataset``'s channels and class table."""
    return product_train(dataset.image, strokes, seconds, steps, seed, overrides=overrides,
                         channels=dataset.channel_names, classes=dataset.classes)


def product_scores(dataset, labels, instances) -> dict:
    """Instance scores (and ``components_f1``) or class scores of the product's result."""
    if dataset.kind == "semantic":
        return real_data.class_scores(labels, dataset.truth, dataset.classes)
    foreground = np.isin(labels, dataset.object_values)
    row = real_data.scores(foreground, instances, dataset.truth)
    row["components_f1"] = real_data.components_f1(foreground, dataset.truth)
    return row


def run_product(dataset, strokes, seconds, steps, seed, overrides, save_to=None) -> dict:
    t0 = time.perf_counter()
    model = dataset_train(dataset, strokes, seconds, steps, seed, overrides)
    save = None if save_to is None else Path(save_to, f"{dataset.name}_seed{seed}.npy")
    prediction, instances = product_prediction(model, dataset.image,
                                               objects=dataset.kind == "instance",
                                               spacing=dataset.spacing)
    labels = np.asarray(prediction.labels)
    if save is not None:
        save_probabilities(prediction, save)
    row = product_scores(dataset, labels, instances)
    if dataset.kind == "instance":  # the object step before it was chosen from the strokes
        shape = product_objects(model, dataset.image, prediction, {"split": "shape"},
                                dataset.spacing)
        row["shape_split_f1"] = real_data.scores(labels > 0, shape, dataset.truth)["f1"]
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["steps"] = sum(h["steps"] for h in model.config.history)
    if dataset.kind == "instance":
        row["object_options"] = model.object_options
    return row


def forest_candidates(dataset, classes) -> dict[str, dict]:
    """The forest's instance scores per kind of objects (components, watershed)."""
    foreground = np.isin(classes, dataset.object_values)
    return {split: real_data.scores(foreground, objects, dataset.truth)
            for split, objects in real_data.forest_objects(classes).items()}


def run_forest(dataset, strokes, seed, threads) -> dict:
    t0 = time.perf_counter()
    semantic = dataset.kind == "semantic"
    classes, _, _ = real_data.forest_fit_predict(dataset.image, strokes, seed=seed,
                                                 threads=threads, semantic=semantic)
    if semantic:
        return {**real_data.class_scores(classes, dataset.truth, dataset.classes),
                "seconds": round(time.perf_counter() - t0, 1)}
    by_split = forest_candidates(dataset, classes)
    best = max(by_split, key=lambda s: by_split[s]["f1"])
    return {**by_split[best], "split": best, "seconds": round(time.perf_counter() - t0, 1),
            "f1_by_split": {s: r["f1"] for s, r in by_split.items()}}


def score_keys(dataset) -> list[str]:
    """The scores compared between methods: instance Dice, F1 and AP, or mean and per-class
    IoU."""
    if dataset.kind == "semantic":
        return ["miou", *(f"iou_{c.name}" for c in dataset.classes)]
    return list(INSTANCE_KEYS)


def means_over(datasets: dict, keys, methods=("product", "forest")) -> dict:
    """Per method the mean over ``datasets`` (name: {"summary": ...}) of each key's mean."""
    return {method: {k: round(float(np.mean([d["summary"][method][k][0]
                                             for d in datasets.values()])), 4)
                     for k in keys} for method in methods}


def report_means(report: dict, key_of_kind: dict) -> None:
    """``mean_over_datasets``: over the instance datasets, as before semantic data (dice, f1,
    ap); ``mean_over_groups``: per group (``real/instance``, ``real2/instance``,
    ``real2/semantic``) the means of its kind's keys (``key_of_kind``)."""
    entries = report["datasets"]
    instance = {n: d for n, d in entries.items() if d["kind"] == "instance"}
    if instance:
        report["mean_over_datasets"] = means_over(instance, key_of_kind["instance"])
    groups = {}
    for name, entry in entries.items():
        groups.setdefault(f"{entry['group']}/{entry['kind']}", {})[name] = entry
    report["mean_over_groups"] = {
        group: {"datasets": sorted(members),
                **means_over(members, key_of_kind[next(iter(members.values()))["kind"]])}
        for group, members in groups.items()}


def main() -> None:
    args = real_data.one_shot_arguments(__doc__.splitlines()[0])
    seconds = None if args.steps else args.seconds
    report = {"settings": {**vars(args), **machine_info(),
                           "load_before": os.getloadavg()[0]}, "datasets": {}}
    overrides = real_data.config_overrides(args)
    for dataset in real_data.datasets(args.datasets, args.zoom, args.data):
        rows = []
        for seed in args.seeds:
            strokes = real_data.strokes_for(dataset, seed, args)
            rows.append({"seed": seed, "painted": round(float((strokes > 0).mean()), 4),
                         "product": run_product(dataset, strokes, seconds, args.steps, seed,
                                                overrides, args.save_probabilities),
                         "forest": run_forest(dataset, strokes, seed, args.threads)})
            print(dataset.name, seed, {m: {k: v for k, v in rows[-1][m].items()
                                           if k in ("f1", "dice", "miou")}
                                       for m in ("product", "forest")},
                  file=sys.stderr, flush=True)  # progress: the JSON comes at the end
        summary = {method: real_data.mean_sd([r[method] for r in rows])
                   for method in ("product", "forest")}
        summary["product_minus_forest"] = {
            k: round(summary["product"][k][0] - summary["forest"][k][0], 4)
            for k in score_keys(dataset)}
        report["datasets"][dataset.name] = {
            "kind": dataset.kind, "group": dataset.group, "axes": dataset.axes,
            "voxel_size": dataset.spacing, "channels": dataset.channel_names,
            "classes": [c.to_dict() for c in dataset.classes],
            "summary": summary, "runs": rows}
    report_means(report, {"instance": INSTANCE_KEYS, "semantic": ("miou",)})
    report["settings"]["load_after"] = os.getloadavg()[0]
    print_report(report, indent=1)


if __name__ == "__main__":
    main()
