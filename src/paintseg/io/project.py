"""An image set (project): images, their strokes, one class table and one model, in a folder.

The folder holds ``paintseg-project.json`` (plain JSON: no pickles, paths relative to the
folder where they can be), ``annotations/<image>.tif`` (the strokes, written atomically with
the class table by :func:`paintseg.io.labels.write_labels`), ``predictions/<image>.tif``,
``places/<image>.json`` (its places to paint next, from its last prediction),
``edits/<image>.tif`` (the objects the user edited, kept through new predictions: see
:mod:`paintseg.learn.edits`),
``images/`` (copies of images that had no file, e.g. layers made in napari) and the model.
The user's image files are only read, never written. The dock and ``paintseg train
--project`` share this module, so the CLI reproduces what the GUI trains.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from scipy import ndimage

from paintseg.errors import FileFormatError, InputError
from paintseg.io.images import ImageData, is_tiff_path, is_zarr_path, read_image
from paintseg.io.labels import (
    atomic_file,
    class_dicts,
    labels_of_shape,
    open_labels,
    write_labels,
)

PROJECT_FILE = "paintseg-project.json"
FORMAT = "paintseg-project"
VERSION = 1
MODEL_FILE = "model.paintseg.safetensors"
PLACE_KEYS = {"plane", "y", "x", "score", "reason"}  # a saved place to paint next


@dataclass
class ProjectImage:
    """One image of the set: its name, its file (relative to the project folder where it
    can be) and what is known of it without reading it."""

    name: str
    source: str
    strokes: int = 0
    predicted: bool = False


@dataclass
class Project:
    """An image set: see the module docstring. ``classes`` are JSON dicts (name, color,
    role); ``channels`` are the channel names every image must match in number."""

    folder: Path
    images: list[ProjectImage] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    classes: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    model: str = MODEL_FILE

    # -- the project file -------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | os.PathLike) -> Project:
        """A new, empty set saved in ``folder`` (made if missing); an existing set there is
        opened instead, so nothing is overwritten."""
        folder = Path(folder)
        if (folder / PROJECT_FILE).exists():
            return cls.open(folder)
        folder.mkdir(parents=True, exist_ok=True)
        project = cls(folder.resolve())
        project.save()
        return project

    @classmethod
    def open(cls, path: str | os.PathLike) -> Project:
        """Open a set from its folder or its JSON file.

        Raises
        ------
        FileFormatError
            If the file is missing, not JSON, or not a paintseg project.
        """
        path = Path(path)
        file = path / PROJECT_FILE if path.is_dir() else path
        try:
            meta = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise FileFormatError(f"Cannot read the image set {file}: {error}") from error
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise FileFormatError(f"{file.name} is not a paintseg image set.")
        try:
            images = [ProjectImage(**entry) for entry in meta.get("images", [])]
        except TypeError as error:
            raise FileFormatError(f"{file.name} lists an image badly: {error}") from error
        return cls(file.parent.resolve(), images, list(meta.get("channels", [])),
                   list(meta.get("classes", [])), dict(meta.get("settings", {})),
                   str(meta.get("model") or MODEL_FILE))

    @property
    def file(self) -> Path:
        return self.folder / PROJECT_FILE

    def save(self) -> None:
        """Write the project file atomically."""
        meta = {"format": FORMAT, "version": VERSION, "channels": self.channels,
                "classes": self.classes, "model": self.model, "settings": self.settings,
                "images": [asdict(image) for image in self.images]}
        text = json.dumps(meta, indent=1)
        atomic_file(self.file, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    @property
    def model_path(self) -> Path:
        return self.folder / self.model

    def set_classes(self, classes: Sequence[Any]) -> None:
        """Set the class table of the set (dicts or ClassInfo-like objects) and save."""
        self.classes = class_dicts(classes) or []
        self.save()

    # -- images -------------------------------------------------------------------
    def index(self, name: str) -> int:
        return [image.name for image in self.images].index(name)

    def path_of(self, image: ProjectImage) -> Path:
        return (self.folder / image.source).resolve()

    def read(self, image: ProjectImage) -> ImageData:
        """Open the image lazily (see :func:`paintseg.io.images.read_image`)."""
        return read_image(self.path_of(image))

    def add_file(self, path: str | os.PathLike) -> ProjectImage:
        """Add an image file (read, never written).

        Raises
        ------
        InputError
            If its number of channels differs from the set's, or it is already in the set.
        FileFormatError
            If it cannot be read.
        """
        path = Path(path).resolve()
        if any(self.path_of(image) == path for image in self.images):
            raise InputError(f"{path.name} is already in this image set.")
        image = read_image(path)
        self._check_channels(path.name, image.channel_names)
        return self._append(image.name, _relative(path, self.folder), image.channel_names)

    def add_folder(self, folder: str | os.PathLike) -> tuple[list[ProjectImage], list[str]]:
        """Add every TIFF or zarr image of a folder, in name order; returns the images added
        and one sentence per file that was not (wrong channels, unreadable, already there)."""
        added, refused = [], []
        for path in sorted(Path(folder).iterdir()):
            if path.name.startswith(".") or not (is_tiff_path(path) or is_zarr_path(path)):
                continue
            if open_labels(path) is not None:  # a label image, e.g. our own output
                continue
            try:
                added.append(self.add_file(path))
            except (InputError, FileFormatError) as error:
                refused.append(str(error))
        return added, refused

    def add_array(self, name: str, channels: Sequence[Any], channel_names: Sequence[str],
                  scale: Sequence[float] | None = None) -> ProjectImage:
        """Add an image that has no file (e.g. a napari layer): a copy is written to
        ``images/`` as an ImageJ TIFF with one channel axis."""
        self._check_channels(name, list(channel_names))
        name = self._unique(name)
        target = self.folder / "images" / f"{name}.tif"
        target.parent.mkdir(exist_ok=True)
        data = np.stack([np.asarray(c) for c in channels])  # (C, [Z], Y, X)
        if data.dtype not in (np.uint8, np.uint16, np.float32):
            data = data.astype(np.float32)
        spatial = data.shape[1:]
        if data.ndim > 4:
            raise InputError(f"{name} has {len(spatial)} spatial axes; at most Z, Y, X.")
        axes = "C" + "ZYX"[-len(spatial):]
        step = tuple(float(s) for s in scale)[-2:] if scale is not None else (1.0, 1.0)
        meta = {"axes": axes, "Labels": list(channel_names)}
        atomic_file(target, lambda tmp: tifffile.imwrite(
            tmp, data, imagej=True,
            resolution=(1 / step[-1], 1 / step[-2]), metadata=meta))
        return self._append(name, _relative(target, self.folder), list(channel_names))

    def _check_channels(self, name: str, names: list[str]) -> None:
        if self.channels and len(names) != len(self.channels):
            raise InputError(
                f"{name} has {len(names)} channel(s); the images of this set have "
                f"{len(self.channels)} ({', '.join(self.channels)}). It was not added.")

    def _unique(self, name: str) -> str:
        taken = {image.name for image in self.images}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def _append(self, name: str, source: str, channel_names: list[str]) -> ProjectImage:
        if not self.channels:
            self.channels = list(channel_names)
        image = ProjectImage(self._unique(name), source)
        self.images.append(image)
        self.save()
        return image

    # -- strokes and predictions ----------------------------------------------------
    def annotation_path(self, image: ProjectImage) -> Path:
        return self.folder / "annotations" / f"{image.name}.tif"

    def prediction_path(self, image: ProjectImage) -> Path:
        return self.folder / "predictions" / f"{image.name}.tif"

    def load_annotations(self, image: ProjectImage, shape: tuple[int, ...]) -> np.ndarray:
        """The image's saved strokes, or zeros (uint8) when it has none yet.

        Raises
        ------
        FileFormatError
            If the saved strokes are corrupt or do not fit the image.
        """
        return labels_of_shape(self.annotation_path(image), shape, "strokes") \
            if self.annotation_path(image).exists() else np.zeros(shape, np.uint8)

    def load_prediction(self, image: ProjectImage, shape: tuple[int, ...]) -> np.ndarray | None:
        path = self.prediction_path(image)
        return labels_of_shape(path, shape, "prediction") if path.exists() else None

    def save_annotations(self, image: ProjectImage, annotations: Any,
                         scale: Sequence[float] | None = None) -> None:
        """Save the image's strokes atomically (with the class table) and their count."""
        annotations = np.asarray(annotations)
        target = self.annotation_path(image)
        target.parent.mkdir(exist_ok=True)
        write_labels(target, annotations, self.classes or None, scale)
        image.strokes = count_strokes(annotations)
        self.save()

    def save_prediction(self, image: ProjectImage, labels: Any,
                        scale: Sequence[float] | None = None) -> None:
        target = self.prediction_path(image)
        target.parent.mkdir(exist_ok=True)
        write_labels(target, np.asarray(labels), self.classes or None, scale)
        image.predicted = True
        self.save()

    def edits_path(self, image: ProjectImage) -> Path:
        return self.folder / "edits" / f"{image.name}.tif"

    def load_edits(self, image: ProjectImage, shape: tuple[int, ...]) -> np.ndarray | None:
        """The image's kept map of object edits (int32), or None when it has none."""
        path = self.edits_path(image)
        return labels_of_shape(path, shape, "object edits").astype(np.int32, copy=False) \
            if path.exists() else None

    def save_edits(self, image: ProjectImage, kept: Any,
                   scale: Sequence[float] | None = None) -> None:
        """Save the image's kept map of object edits atomically (none left: the file goes)."""
        kept, target = np.asarray(kept), self.edits_path(image)
        if not kept.any():
            target.unlink(missing_ok=True)
            return
        target.parent.mkdir(exist_ok=True)
        write_labels(target, kept.astype(np.int32, copy=False), None, scale)

    def places_path(self, image: ProjectImage) -> Path:
        return self.folder / "places" / f"{image.name}.json"

    def save_places(self, image: ProjectImage, places: Sequence[dict[str, Any]]) -> None:
        """Keep the image's places to paint next (``plane, y, x, score, reason`` each), from
        its last whole-image prediction."""
        target = self.places_path(image)
        target.parent.mkdir(exist_ok=True)
        atomic_file(target, lambda tmp: tmp.write_text(json.dumps(list(places))))

    def places(self) -> list[tuple[int, dict[str, Any]]]:
        """The places to paint next of every image, best first: ``(image index, place)``.
        An image whose places file is unreadable has none (they come back with its next
        prediction)."""
        found = []
        for index, image in enumerate(self.images):
            try:
                places = json.loads(self.places_path(image).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(places, list):
                found += [(index, place) for place in places
                          if isinstance(place, dict) and PLACE_KEYS <= place.keys()]
        return sorted(found, key=lambda item: -float(item[1]["score"]))

    def training_set(self, live: dict[str, Any] | None = None
                     ) -> tuple[list[ProjectImage], list[list[Any]], list[np.ndarray]]:
        """Every image with strokes: ``(images, channels (lazy), annotations)``.

        ``live`` maps image names to annotations newer than the saved ones (the layer being
        painted).
        """
        live = live or {}
        chosen, channels, annotations = [], [], []
        for image in self.images:
            data = self.read(image)
            shape = tuple(data.channels[0].shape)
            strokes = live.get(image.name)
            strokes = np.asarray(strokes) if strokes is not None else \
                self.load_annotations(image, shape)
            if strokes.any():
                chosen.append(image)
                channels.append(data.channels)
                annotations.append(strokes)
        return chosen, channels, annotations


def count_strokes(annotations: np.ndarray) -> int:
    """Connected strokes of each class, counted plane by plane."""
    annotations = np.asarray(annotations)
    planes = annotations.reshape((-1, *annotations.shape[-2:])) if annotations.ndim > 1 \
        else annotations[None]
    total = 0
    for plane in planes:
        for value in np.unique(plane[plane != 0]):
            total += ndimage.label(plane == value)[1]
    return int(total)


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (POSIX separators), absolute when it cannot be."""
    try:
        return Path(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()
