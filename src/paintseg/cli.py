"""The ``paintseg`` command: train, predict, evaluate and open the GUI from a shell.

Examples
--------
::

    paintseg train --image cells.tif --labels strokes.tif --out cells.paintseg.safetensors
    paintseg train --project my_set        # every image of an image set made in the dock
    paintseg predict --model cells.paintseg.safetensors --input cells.tif --output classes.tif
    paintseg evaluate --model cells.paintseg.safetensors --image cells.tif --truth truth.tif
    paintseg gui --sample synthetic
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from paintseg.classes import ClassInfo, classes_from_names
from paintseg.errors import InputError, PaintsegError, describe_os_error
from paintseg.io.images import read_image
from paintseg.io.labels import atomic_file, read_labels
from paintseg.io.project import Project
from paintseg.learn.device import choose_threads
from paintseg.learn.events import drain
from paintseg.learn.memory import use_one_malloc_arena
from paintseg.learn.model import Segmenter, open_model
from paintseg.learn.suggest import suggest_places
from paintseg.learn.train import train
from paintseg.pipeline import batch
from paintseg.pipeline.evaluate import evaluate
from paintseg.pipeline.files import predict_file
from paintseg.pipeline.outputs import (
    Outputs,
    beside,
    check_output,
    check_targets,
    is_image_path,
    is_store_path,
    output_targets,
)
from paintseg.zoo.bioimageio import export_bioimageio

OVERLAP = 32  # the overlap of prediction tiles (predict's default)
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's largest seed


class _Parser(argparse.ArgumentParser):
    """argparse, with its error on one line even when an argument holds a line break."""
    def error(self, message: str):
        super().error(one_line(message))


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paintseg", description="Train a U-Net from painted strokes and segment images.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on images and stroke label files")
    train.add_argument("--image", type=_path, action="append", default=[],
                       help="image (repeatable)")
    train.add_argument("--labels", type=_path, action="append", default=[],
                       help="stroke labels for the image at the same position (repeatable)")
    train.add_argument("--project", type=_path, help="an image set's folder: train on all "
                       "its strokes (instead of --image/--labels) and save its model")
    train.add_argument("--out", type=_path, help="model file to write (.safetensors; with "
                       "--project, default: the set's model)")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=_above(float, 0),
                        help="training time budget (default 60)")
    budget.add_argument("--steps", type=_above(int, 0), help="number of training steps")
    train.add_argument("--continue-from", type=_path,
                       help="model file to continue training from")
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    train.add_argument("--preset", default="auto", help="model size preset (default: auto)")
    train.add_argument("--classes", nargs="+",
                       help="class names in label order, if the label file has no class "
                            "table; NAME:ROLE sets a role (background, object, boundary), "
                            "else it is guessed from the name")
    train.add_argument("--forest-blend", type=_share, default=None,
                       help=FOREST_BLEND_HELP + "; default: learnt from how well the network "
                       "has learnt each class (0.5 to 1)")
    train.add_argument("--seed", type=_seed, default=0,
                       help=f"random seed, 0 to {MAX_SEED} (default 0)")
    _add_threads(train)

    predict = sub.add_parser("predict", help="segment an image or a folder of images")
    predict.add_argument("--model", type=_path, required=True)
    predict.add_argument("--input", type=_path, required=True,
                         help="image file, zarr, or folder of them")
    predict.add_argument("--output", type=_path, required=True,
                         help="class map .tif (or OME-Zarr labels .zarr; or .ome.zarr: class map, "
                         "probabilities and uncertainty in one OME-Zarr) for one input, else an "
                         "output folder")
    predict.add_argument("--objects", action="store_true",
                         help="also write object ids (_objects.tif / .zarr) and a table "
                         "(_objects.csv)")
    predict.add_argument("--probabilities", action="store_true",
                         help="also write class probabilities (_probabilities.tif)")
    predict.add_argument("--forest-blend", type=_share, default=None,
                         help=FOREST_BLEND_HELP + "; default: the model's own")
    predict.add_argument("--places", type=_above(int, 0), default=None, metavar="N",
                         help="also write the N places where a stroke would likely help most "
                         "(_places.csv: rank, plane, y, x, score, reason)")
    predict.add_argument("--labels", type=_path, default=None,
                         help="the image's strokes, so that --places keeps away from them "
                         "(one input image only)")
    cluster = predict.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=_above(int, 0), default=None, metavar="N",
                         help="predict on a dask cluster of N local worker processes: files of "
                         "a folder, or bands of planes of one large image (--output x.ome.zarr)")
    cluster.add_argument("--scheduler", type=_path, default=None, metavar="ADDRESS",
                         help="predict on a running dask cluster (e.g. tcp://host:8786); its "
                         "workers must see the input and output paths")
    _add_common(predict)

    evaluate = sub.add_parser("evaluate", help="score a model against a truth class map")
    evaluate.add_argument("--model", type=_path, required=True)
    evaluate.add_argument("--image", type=_path, required=True)
    evaluate.add_argument("--truth", type=_path, required=True,
                          help="truth class map (same class values as the model; 0 = ignore)")
    evaluate.add_argument("--truth-objects", type=_path,
                          help="truth instance labels; default: connected truth objects")
    _add_common(evaluate)

    gui = sub.add_parser("gui", help="open napari with the PaintSeg widget")
    gui.add_argument("--sample", default="none", choices=["synthetic", "real", "none"])

    export = sub.add_parser("export", help="export a model file to another format")
    export.add_argument("model", type=_path, help="paintseg model file (.safetensors)")
    export.add_argument("--bioimageio", type=_path, required=True, metavar="OUT.zip",
                        help="write a BioImage Model Zoo package (format 0.5)")
    export.add_argument("--author", action="append", default=[],
                        help="author name (repeatable; default: your user name)")
    export.add_argument("--license", default="CC-BY-4.0",
                        help="SPDX licence identifier (default CC-BY-4.0)")
    export.add_argument("--name", help="package name (default: from the classes)")
    export.add_argument("--image", type=_path,
                        help="image whose centre is the package's test tile (default: "
                        "synthetic cells)")
    _add_threads(export)
    return parser


def _above(kind: type, low: int):
    """An argparse type: a finite number of ``kind`` above ``low`` (else an argument error,
    status 2)."""
    def parse(text: str):
        value = _number(kind, text)
        if not (value > low and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text} must be a number above {low}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _number(kind: type, text: str):
    """``text`` as a ``kind``, else an argument error."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _share(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = _number(float, text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be from 0 to 1")
    return value


FOREST_BLEND_HELP = ("share of the random forest fitted on the strokes in the predictions, "
                     "0 to 1 (0: the network alone, faster)")


def _seed(text: str) -> int:
    """An argparse type: a whole number from 0 to MAX_SEED."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} must be from 0 to {MAX_SEED}")
    return value


def _path(text: str) -> str:
    """An argparse type: a path, not empty and without NUL characters."""
    if not text.strip() or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable path")
    return text


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: the free cores but one; or set "
                             "PAINTSEG_THREADS)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    _add_threads(parser)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--tile", type=_above(int, OVERLAP), default=512,
                        help=f"tile size in pixels (above the {OVERLAP} px overlap)")
    parser.add_argument("--split", default="auto",
                        choices=["auto", "shape", "distance", "boundary", "none"],
                        help="how touching objects are separated (see find_objects); auto: "
                             "as chosen from the painted objects when the model was trained")
    parser.add_argument("--min-size", type=int, default=20, help="smallest object in pixels")
    parser.add_argument("--min-thickness", type=float, default=None,
                        help="drop objects nowhere thicker than this fraction of the typical "
                             "object, slivers along outlines (default 0.25; 0 keeps them)")


def _run(gen, desc: str, progress, postfix=None):
    """Drain a generator of progress events, showing a progress bar on stderr.

    ``progress(event) -> (done, total)``; ``postfix(event)`` gives text shown after the bar.
    """
    with tqdm(desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        def show(event) -> None:
            done, bar.total = progress(event)
            if postfix is not None:
                bar.set_postfix_str(postfix(event), refresh=False)
            bar.update(done - bar.n)

        return drain(gen, show)


def _class_table(label_classes, names: Sequence[str] | None, n_classes: int):
    """Class table from a label file's table, else from names, else class1..classK."""
    if label_classes:
        return [ClassInfo.from_dict(c) for c in label_classes]
    names = list(names) if names else [f"class{i}" for i in range(1, n_classes + 1)]
    if len(names) < n_classes:
        raise InputError(
            f"The labels use values up to {n_classes} but only {len(names)} class names "
            f"were given: give {n_classes} names with --classes.")
    return classes_from_names(names)


def _training_inputs(args: argparse.Namespace):
    """``(channel names, channels per image, annotations, class table or None, output)``
    from ``--project`` or from ``--image``/``--labels``."""
    if args.project:
        if args.image or args.labels:
            raise InputError("Give either --project or --image/--labels, not both.")
        project = Project.open(args.project)
        _, channels, annotations = project.training_set()
        if not annotations:
            raise InputError(f"No image of the set {args.project} has strokes yet: paint "
                             "some in the dock (paintseg gui) first.")
        return (project.channels, channels, annotations, project.classes or None,
                args.out or project.model_path)
    if not args.image or not args.out:
        raise InputError("Give --image, --labels and --out (or --project).")
    if len(args.image) != len(args.labels):
        raise InputError(f"Give one --labels per --image ({len(args.image)} images, "
                         f"{len(args.labels)} label files).")
    images = [read_image(p) for p in args.image]
    loaded = [read_labels(p) for p in args.labels]
    annotations = [np.asarray(a) for a, _ in loaded]
    for path, labels, image, ann in zip(args.image, args.labels, images, annotations):
        if tuple(ann.shape) != tuple(image.channels[0].shape):
            raise InputError(f"The labels {Path(labels).name} have shape {ann.shape} but the "
                             f"image {Path(path).name} has {tuple(image.channels[0].shape)}: "
                             "give the labels painted on that image.")
    return (images[0].channel_names, [im.channels for im in images], annotations,
            next((c for _, c in loaded if c), None), args.out)


def _cmd_train(args: argparse.Namespace) -> int:
    channel_names, images, annotations, table, out = _training_inputs(args)
    check_output(out, "--out")
    if args.continue_from:
        model = open_model(args.continue_from, args.device, "--continue-from")
    else:
        # At least two names, so that the engine's own sentence (no strokes, one class,
        # negative values) reaches the user.
        n_classes = max(2, *(int(a.max(initial=0)) for a in annotations))
        classes = _class_table(table, args.classes, n_classes)
        model = Segmenter.create(channels=channel_names, classes=classes,
                                 preset=args.preset, device=args.device, seed=args.seed)
    if args.forest_blend is not None:  # kept, not learnt
        model.config.forest_blend, model.config.forest_blend_fixed = args.forest_blend, True
    seconds = args.seconds if args.seconds is not None or args.steps else 60.0

    gen = train(model, images=images, annotations=annotations,
                seconds=seconds, steps=args.steps, seed=args.seed)
    model = _run(gen, "training", lambda e: (e.step, e.total_steps),
                 lambda e: f"loss={e.loss:.3f}")
    model.save(out)
    print(f"saved {out}", file=sys.stderr)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    if args.workers or args.scheduler:
        return _predict_on_cluster(args, outputs)
    model = open_model(args.model, args.device, "--model")
    _use_forest_blend(model, args)
    targets = output_targets(Path(args.input), Path(args.output))
    strokes = _strokes_for_places(args, targets)
    check_targets(targets, outputs)
    for source, target in targets:
        image, prediction = predict_file(model, source, target, outputs, _predict_bar)
        if args.places:
            places = _places_table(model, image, prediction, strokes, args.places)
            atomic_file(beside(target, "_places.csv"),
                        lambda tmp, places=places: places.to_csv(tmp, index=False))
        print(f"{source} -> {target}", file=sys.stderr)
    return 0


def _outputs(args: argparse.Namespace):
    return Outputs(objects=getattr(args, "objects", False),
                   probabilities=getattr(args, "probabilities", False), tile=args.tile,
                   split=args.split, min_size=args.min_size, min_thickness=args.min_thickness)


def _use_forest_blend(model, args: argparse.Namespace) -> None:
    """Apply ``--forest-blend``, with a note when the model has no forest to blend."""
    if args.forest_blend is None:
        return
    model.config.forest_blend = args.forest_blend
    if model.forest is None and args.forest_blend > 0:
        print(f"note: {args.model} keeps no random forest (trained before the blend, or "
              "with --forest-blend 0): predicting with the network alone", file=sys.stderr)


def _predict_bar(gen, desc: str):
    """Drain a prediction, with a progress bar."""
    return _run(gen, desc, lambda e: (e.done, e.total))


def _predict_on_cluster(args: argparse.Namespace, outputs) -> int:
    """``predict --workers N`` / ``--scheduler ADDRESS``: `paintseg.pipeline.batch` on dask."""
    if args.places or args.labels:
        raise InputError("--places works in one process: leave out --workers / --scheduler.")
    open_model(args.model, "cpu", "--model")  # a clear error now rather than on each worker
    model_bytes = Path(args.model).read_bytes()
    if is_store_path(Path(args.output)) and is_image_path(Path(args.input)):
        check_output(args.output, "--output", make_folder=True)
    plan = batch.plan(Path(args.input), Path(args.output), outputs, model_bytes,
                      forest_blend=args.forest_blend)
    if plan.store is None:
        check_targets([(u.source, u.target) for u in plan.units], outputs)
    with batch.cluster(args.workers, args.scheduler, args.threads) as (client, threads):
        link = batch.dashboard_link(client)
        print(f"dask: {len(client.scheduler_info()['workers'])} workers; "
              f"dashboard: {link or 'pip install bokeh to see it'}", file=sys.stderr)
        report = _run(batch.run(plan, client, threads), "predicting",
                      lambda e: (e.done, e.total))
    print(report.summary(), file=sys.stderr)
    return 1 if report.failed else 0


def _strokes_for_places(args: argparse.Namespace, targets) -> np.ndarray | None:
    """The ``--labels`` strokes for ``--places`` (read once, before any prediction)."""
    if args.labels is None:
        return None
    if not args.places or len(targets) != 1:
        raise InputError("--labels goes with --places and one input image.")

    strokes = read_labels(args.labels)[0]
    shape = tuple(read_image(targets[0][0]).channels[0].shape)
    if tuple(strokes.shape) != shape:
        raise InputError(f"--labels has shape {tuple(strokes.shape)}; the image is {shape}.")
    return strokes


def _places_table(model, image, prediction, strokes, n: int):
    """The places to paint next as a table: rank, one column per plane axis, y, x, score,
    reason."""
    places = suggest_places(np.asarray(prediction.probabilities), strokes,
                            model.config.classes, n=n)
    axes = [a.lower() for a in image.axes[:-2]]
    return pd.DataFrame([{"rank": i, **dict(zip(axes, p.plane)), "y": p.y, "x": p.x,
                          "score": p.score, "reason": p.reason}
                         for i, p in enumerate(places, 1)],
                        columns=["rank", *axes, "y", "x", "score", "reason"])


def _cmd_evaluate(args: argparse.Namespace) -> int:
    model = open_model(args.model, args.device, "--model")
    image = read_image(args.image)
    truth = np.asarray(read_labels(args.truth)[0])
    truth_objects = np.asarray(read_labels(args.truth_objects)[0]) if args.truth_objects \
        else None
    scores = evaluate(model, image, truth, _outputs(args), truth_objects,
                      run=lambda gen: _predict_bar(gen, "predicting"),
                      names=(Path(args.truth).name, Path(args.image).name))
    print(json.dumps(scores, indent=2))
    return 0


def _cmd_gui(args: argparse.Namespace) -> int:
    from paintseg.widgets.launch import main as launch

    launch(sample=None if args.sample == "none" else args.sample)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    model = open_model(args.model, "cpu", "the model")
    check_output(args.bioimageio, "--bioimageio")
    image = read_image(args.image).channels if args.image else None
    export_bioimageio(model, args.bioimageio, authors=args.author or None,
                      license=args.license, name=args.name, image=image)
    print(f"saved {args.bioimageio}", file=sys.stderr)
    return 0


def _set_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads}: give at least 1.")
    torch.set_num_threads(threads or choose_threads())


def _message(error: PaintsegError | OSError) -> str:
    """The sentence for an error: the engine's own, or the file and what the system said."""
    return str(error) if isinstance(error, PaintsegError) else describe_os_error(error)


COMMANDS = {"train": _cmd_train, "predict": _cmd_predict, "evaluate": _cmd_evaluate,
            "gui": _cmd_gui, "export": _cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``paintseg`` command line; returns the exit status.

    Errors the user can fix (bad files, shapes, options) print one line
    ``paintseg: error: <message>`` to stderr and return 2.
    """
    args = _parser().parse_args(argv)
    use_one_malloc_arena()  # a long session (gui, train --project) does not grow
    try:
        if args.command != "gui":
            _set_threads(args.threads)
        return COMMANDS[args.command](args)
    except (PaintsegError, OSError) as error:
        print(f"paintseg: error: {one_line(_message(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("paintseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
