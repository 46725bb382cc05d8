"""Predict image files into result files: the work of ``paintseg predict``, in one process or
in each worker of a cluster (`paintseg.pipeline.batch`).

For a class map ``result.tif`` the other outputs go beside it: ``result_uncertainty.tif``,
``result_probabilities.tif``, ``result_objects.tif`` and ``result_objects.csv``. A
``.zarr`` class map is an OME-Zarr labels image; a ``.ome.zarr`` one holds everything in
one OME-Zarr (`paintseg.io.prediction_store`). Every file is written atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paintseg.errors import InputError
from paintseg.learn.events import StopFlag, drain

IMAGE_SUFFIXES = (".tif", ".tiff", ".zarr")
STORE_SUFFIX = ".ome.zarr"  # one OME-Zarr with the class map, probabilities and uncertainty


@dataclass(frozen=True)
class Outputs:
    """What to write for each image besides the class map and the uncertainty, and how."""

    objects: bool = False
    probabilities: bool = False
    tile: int = 512
    split: str = "auto"  # "auto": the model's choice (Segmenter.object_options)
    min_size: int = 20
    min_thickness: float | None = None


def is_image_path(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES)


def is_store_path(path: Path) -> bool:
    return path.name.lower().endswith(STORE_SUFFIX)


def output_targets(inp: Path, output: Path, suffix: str = ".tif") -> list[tuple[Path, Path]]:
    """(input, class map path) pairs for a file or a folder of images; into a folder, the
    class maps are ``<image name><suffix>``."""
    from paintseg.io.images import image_name

    if inp.is_dir() and not is_image_path(inp):
        inputs = sorted(p for p in inp.iterdir() if is_image_path(p))
        if not inputs:
            raise InputError(f"The folder {inp} holds no .tif, .tiff or .zarr images.")
    elif inp.exists():
        inputs = [inp]
    else:
        raise InputError(f"--input {inp} does not exist.")
    if len(inputs) == 1 and is_image_path(output):
        return [(inputs[0], output)]
    if output.exists() and not output.is_dir():
        raise InputError(f"The output {output} is a file; for several inputs give --output "
                         "a folder.")
    return [(p, output / f"{image_name(p)}{suffix}") for p in inputs]


def beside(target: Path, suffix: str) -> Path:
    """The path of another output beside the class map ``target``: ``suffix`` replaces
    its .tif, .tiff, .zarr or .ome.zarr."""
    stem = target.name
    for ext in (STORE_SUFFIX, *IMAGE_SUFFIXES):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return target.with_name(stem + suffix)


def label_suffix(target: Path) -> str:
    """The label format of a class map path: ``.zarr`` (OME-Zarr) or ``.tif``."""
    return ".zarr" if target.name.lower().endswith(".zarr") else ".tif"


def written_paths(target: Path, outputs: Outputs) -> list[Path]:
    """Every file that `predict_file` writes for the class map ``target``."""
    if is_store_path(target):
        return [target, beside(target, "_objects.csv")] if outputs.objects else [target]
    paths = [target, beside(target, "_uncertainty.tif")]
    if outputs.probabilities:
        paths.append(beside(target, "_probabilities.tif"))
    if outputs.objects:
        paths += [beside(target, f"_objects{label_suffix(target)}"),
                  beside(target, "_objects.csv")]
    return paths


def write_tiff(path: Path, array: np.ndarray) -> None:
    """Write a TIFF atomically (temporary file beside it, then rename)."""
    import tifffile

    from paintseg.io.labels import atomic_file

    atomic_file(path, lambda tmp: tifffile.imwrite(tmp, array, compression="zlib"))


def find_image_objects(model, image, prediction, outputs: Outputs):
    """Objects of a prediction: (instance labels, table)."""
    from paintseg.learn.objects import MIN_THICKNESS, find_objects

    thickness = MIN_THICKNESS if outputs.min_thickness is None else outputs.min_thickness
    options = model.object_options if outputs.split == "auto" else {"split": outputs.split}
    return find_objects(prediction.labels, model.config.classes,
                        probabilities=prediction.probabilities, image=image.channels,
                        **options, min_size=outputs.min_size,
                        min_thickness=thickness, spacing=image.scale,
                        channel_names=image.channel_names)


Runner = Callable[[Generator, str], Any]  # drains a predict generator (a progress bar or not)


def predict_file(model, source: Path, target: Path, outputs: Outputs,
                 run: Runner = lambda gen, desc: drain(gen), stop: StopFlag = None):
    """Predict the image ``source`` and write the class map ``target`` and its other outputs.

    Returns ``(image, prediction)``; when ``stop`` is set before the end, nothing is written
    and ``prediction.complete`` is False.
    """
    from paintseg.io.images import read_image
    from paintseg.io.labels import atomic_file, write_labels
    from paintseg.learn.predict import predict

    image = read_image(source)
    prediction = run(predict(model, image.channels, tile=outputs.tile, stop=stop), source.name)
    if not prediction.complete:
        return image, prediction
    target.parent.mkdir(parents=True, exist_ok=True)
    instances, table = (find_image_objects(model, image, prediction, outputs)
                        if outputs.objects else (None, None))
    if is_store_path(target):
        from paintseg.io.prediction_store import write_prediction

        write_prediction(target, labels=prediction.labels,
                         probabilities=prediction.probabilities,
                         uncertainty=prediction.uncertainty, classes=model.config.classes,
                         scale=image.scale, axes=image.axes,
                         objects=instances)
    else:
        write_labels(target, prediction.labels, model.config.classes, scale=image.scale)
        write_tiff(beside(target, "_uncertainty.tif"), prediction.uncertainty)
        if outputs.probabilities:
            write_tiff(beside(target, "_probabilities.tif"), prediction.probabilities)
        if instances is not None:
            write_labels(beside(target, f"_objects{label_suffix(target)}"), instances,
                         scale=image.scale)
    if table is not None:
        atomic_file(beside(target, "_objects.csv"), lambda tmp: table.to_csv(tmp, index=False))
    return image, prediction
