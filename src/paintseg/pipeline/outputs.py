"""Where the outputs of a prediction go, and what may be overwritten: one place for the CLI,
the dock's Folder... and the dask workers.

For a class map ``result.tif`` the other outputs go beside it: ``result_uncertainty.tif``,
``result_probabilities.tif``, ``result_objects.tif`` and ``result_objects.csv``; a
``result_edits.tif`` found there (object edits, saved by the dock) is read, never written. A ``.zarr``
class map is an OME-Zarr labels image; a ``.ome.zarr`` one holds everything in one OME-Zarr
(`paintseg.io.prediction_store`). An output never replaces an input image, nor a folder that
paintseg did not write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from paintseg.errors import InputError
from paintseg.io.image_data import image_name
from paintseg.io.labels import is_label_store
from paintseg.io.prediction_store import is_prediction_store

IMAGE_SUFFIXES = (".tif", ".tiff", ".zarr")
STORE_SUFFIX = ".ome.zarr"  # one OME-Zarr with the class map, probabilities and uncertainty
EDITS_SUFFIX = "_edits.tif"  # beside a class map: the user's object edits, kept as they are


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



def check_output(path: str | os.PathLike, option: str, make_folder: bool = False) -> None:
    """Fail before any work if ``path`` is a folder, or its folder is missing (unless it can
    be made: ``make_folder``) or not writable."""
    path = Path(path).absolute()
    if path.is_dir() and not (is_label_store(path) or is_prediction_store(path)):
        # paintseg's own outputs may be replaced
        raise InputError(f"{path} is a folder (not labels written by paintseg): give "
                         f"{option} a file name.")
    folder = path.parent
    while make_folder and not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"{folder} (for {path.name}) {what}: create it or choose another "
                         f"{option}.")
    if not os.access(folder, os.W_OK):
        raise InputError(f"Cannot write in {folder}: choose another {option}.")


def check_targets(targets: list[tuple[Path, Path]], outputs: Outputs) -> None:
    """Fail before any work on an output that would overwrite an input or cannot be written."""
    for source, target in targets:
        if target.absolute() == source.absolute():
            raise InputError(f"--output would write over the input image {source}: "
                             "choose another name or folder.")
        for path in written_paths(target, outputs):
            check_output(path, "--output", make_folder=True)
