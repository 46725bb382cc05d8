"""Tiled prediction with smooth blending, plane by plane, on numpy or dask/zarr input of any size.

A plane ``(Y, X)`` is padded by reflection (half the overlap on each side, so border pixels
get context) and cut into overlapping tiles on a regular grid. Each tile's class
probabilities are weighted by a window that is 1 in the middle and falls off as ``sin^2``
over the overlap, and the weighted sums are divided by the summed weights. Tiles are read
tile by tile, and output rows are written as soon as no later tile touches them, so memory is
bounded by the tile batch and one row of tiles' probabilities, not by the plane or the image.
With ``ModelConfig.forest_blend`` > 0, finished rows are blended with the model's random forest
(``learn.blend.blend``), and where the network is sure of a boundary class it has learnt,
objects are cut (``Prediction.separators``, ``learn.blend.sure_boundary``).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from paintseg.errors import InputError
from paintseg.learn.blend import blend, learnt_boundaries, sure_boundary
from paintseg.learn.events import StopFlag, Stopped, check_stop, stop_requested
from paintseg.learn.memory import release_freed_memory
from paintseg.learn.sampling import as_channels


@dataclass
class PredictEvent:
    """Progress of :func:`predict`: tiles ``done`` of ``total``, seconds ``elapsed``."""

    done: int
    total: int
    elapsed: float


@dataclass
class Prediction:
    """Result of :func:`predict`.

    Attributes
    ----------
    labels : array-like
        Class map ``([Z|T...], Y, X)``, ``uint8`` (``uint16`` when there are more than 255
        classes); label ``i + 1`` = class ``i``; 0 = not predicted (stopped early or a plane
        that was not asked for).
    probabilities : array-like
        ``(K, [Z|T...], Y, X)`` float16 class probabilities.
    uncertainty : array-like
        Normalised entropy of the probabilities, float16 in ``[0, 1]`` (1 = all classes
        equally likely).
    separators : array-like or None
        Boolean, where objects are cut whatever the class map says: the boundary classes
        the network is sure of, where the forest is blended in (for ``find_objects``).
        None when the model has no such class, or ``out`` has no ``separators`` array.
    complete : bool
        False when prediction was stopped before all planes were done.
    """

    labels: Any
    probabilities: Any
    uncertainty: Any
    separators: Any = None
    complete: bool = True


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class _Axis:
    """Tiling of one axis: ``size`` pixels, padded by ``margin`` before them, tiles of
    ``length`` pixels starting at ``starts`` (in padded coordinates), ``padded`` in all."""

    size: int
    margin: int
    length: int
    starts: tuple[int, ...]
    padded: int

    @classmethod
    def plan(cls, size: int, tile: int, overlap: int, multiple: int) -> _Axis:
        margin = overlap // 2
        padded = size + 2 * margin
        if padded <= _round_up(tile, multiple):
            return cls(size, margin, _round_up(padded, multiple), (0,), padded)
        # The fewest tiles that cover the axis, shrunk to the same length and spread evenly,
        # so that little is computed twice.
        n = -(-(padded - overlap) // (tile - overlap))
        length = _round_up(-(-(padded - overlap) // n) + overlap, multiple)
        starts = np.linspace(0, padded - length, n).round().astype(int)
        return cls(size, margin, length, tuple(int(s) for s in starts), padded)

    def window(self, overlap: int) -> np.ndarray:
        """Blending weights of one tile: 1 in the middle, ``sin^2`` ramps over the overlap."""
        ramp_len = max(1, min(overlap, self.length // 2))
        ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / ramp_len) ** 2
        w = np.ones(self.length, np.float32)
        if len(self.starts) > 1:
            w[:ramp_len] = ramp
            w[-ramp_len:] = ramp[::-1]
        return w

    def weight_sum(self, window: np.ndarray) -> np.ndarray:
        """Summed window weights at each padded position."""
        total = np.zeros(max(self.padded, self.starts[-1] + self.length), np.float32)
        for s in self.starts:
            total[s:s + self.length] += window
        return total

    def read_range(self, start: int) -> tuple[int, int, tuple[int, int]]:
        """Image range ``[lo, hi)`` under a tile at ``start`` and the reflect padding needed."""
        lo, hi = start - self.margin, start - self.margin + self.length
        clo, chi = max(lo, 0), min(hi, self.size)
        return clo, chi, (clo - lo, hi - chi)


class _StripAccumulator:
    """Weighted probability sums of the rows that tiles still write to, in one buffer as high
    as the tile rows one batch can reach (tiles come in raster order)."""

    def __init__(self, n_classes: int, height: int, width: int, wy: np.ndarray, wx: np.ndarray):
        self.y0 = 0  # padded row held in buffer row 0
        self.acc = np.zeros((n_classes, min(height, len(wy)), width), np.float32)
        self.wy, self.wx = wy, wx

    def add(self, ys: int, xs: int, weighted: np.ndarray) -> None:
        top = ys - self.y0
        self.acc[:, top:top + weighted.shape[1], xs:xs + weighted.shape[2]] += weighted

    def pop(self, upto: int) -> tuple[int, np.ndarray]:
        """Finished rows ``[y0, upto)`` (padded coordinates) as probabilities."""
        n = upto - self.y0
        rows = self.acc[:, :n] / (self.wy[self.y0:upto, None] * self.wx[None, :])
        if n:
            self.acc[:, :-n] = self.acc[:, n:]
            self.acc[:, -n:] = 0
        start, self.y0 = self.y0, upto
        return start, rows


def _check_image(model, image) -> list:
    channels = as_channels(image)
    model.check_channels(len(channels))
    return channels


def _read_tile(model, channels: Sequence, plane: tuple, ys: int, xs: int, ay: _Axis,
               ax: _Axis) -> np.ndarray:
    """Normalised tile at padded position ``(ys, xs)``; outside the image, reflected."""
    y0, y1, pad_y = ay.read_range(ys)
    x0, x1, pad_x = ax.read_range(xs)
    window = plane + (slice(y0, y1), slice(x0, x1))
    tile = model.normalize(np.stack([np.asarray(c[window]) for c in channels]))
    mode = "reflect" if min(tile.shape[1:]) > 1 else "edge"
    return np.pad(tile, ((0, 0), pad_y, pad_x), mode=mode)


def _tiles(model, channels, plane, tile_rows: Sequence[int], ay: _Axis, ax: _Axis
           ) -> Iterator[tuple[int, int, np.ndarray]]:
    for ys in tile_rows:
        for xs in ax.starts:
            yield ys, xs, _read_tile(model, channels, plane, ys, xs, ay, ax)


def _batched(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _plane_rows(model, channels, plane: tuple, tile: int, overlap: int, batch_size: int,
                with_forest: bool = True, rows: tuple[int, int] | None = None,
                stop: StopFlag = None
                ) -> Generator[tuple[int, tuple[int, np.ndarray, np.ndarray | None]], None, None]:
    """Predict one plane; after each tile batch yields ``(tiles in the batch, (first image
    row, probabilities (K, h, X), separators (h, X) or None))`` of the rows that are final by
    then (h may be 0). With ``with_forest``, the model's random forest is blended in
    (``ModelConfig.forest_blend``) and the separators found.
    With ``rows=(y0, y1)``, only the tiles that touch image rows y0..y1-1 run (the band and
    its halo): those rows come out as they do in the whole plane's prediction. The forest
    raises :class:`Stopped` soon after ``stop`` is set."""
    ay, ax = _plan(model, channels[0].shape, tile, overlap)
    wy, wx = ay.window(overlap), ax.window(overlap)
    window = torch.from_numpy(np.outer(wy, wx)).to(model.device)
    rows_per_batch = -(-batch_size // len(ax.starts)) + 1
    acc = _StripAccumulator(len(model.config.classes), rows_per_batch * ay.length,
                            ax.starts[-1] + ax.length, ay.weight_sum(wy), ax.weight_sum(wx))
    tile_rows = ay.starts if rows is None else tuple(
        ys for ys in ay.starts
        if ys < rows[1] + ay.margin and ys + ay.length > rows[0] + ay.margin)
    acc.y0 = tile_rows[0]
    row_of_tile = [ys for ys in tile_rows for _ in ax.starts]
    forest = (_ForestRows(model, channels, plane, ay.size if rows is None else rows[1], stop)
              if with_forest else None)
    done = 0
    for batch in _batched(_tiles(model, channels, plane, tile_rows, ay, ax), batch_size):
        x = torch.from_numpy(np.stack([tile for _, _, tile in batch])).to(model.device)
        probs = (torch.softmax(model.logits(x).float(), dim=1) * window).cpu().numpy()
        for (ys, xs, _), p in zip(batch, probs):
            acc.add(ys, xs, p)
        done += len(batch)
        # Rows above the next tile are final.
        upto = row_of_tile[done] if done < len(row_of_tile) else tile_rows[-1] + ay.length
        first, rows_done = _crop(*acc.pop(upto), ay, ax)
        if rows is not None:
            first, rows_done = _within(first, rows_done, rows)
        separators = None
        if with_forest:
            rows_done, separators = _blend_forest(model, first, rows_done, forest)
        yield len(batch), (first, rows_done, separators)


def _within(first: int, probs: np.ndarray, rows: tuple[int, int]) -> tuple[int, np.ndarray]:
    """The part of image rows ``first...`` (probabilities ``probs``) inside ``rows``."""
    lo, hi = max(first, rows[0]), min(first + probs.shape[1], rows[1])
    return lo, probs[:, lo - first:max(hi, lo) - first]


def _blends(model) -> bool:
    return model.forest is not None and model.config.forest_blend > 0


class _ForestRows:
    """The forest's probabilities of one plane's rows, for the blend: those the model keeps
    of the plane (trained on, or predicted whole before), or computed in blocks as large as
    the forest computes at once (each with its margin of context), so that a plane that fits
    in one block is computed once, not band by band with a margin each; a model that keeps
    probabilities then keeps that plane's too."""

    def __init__(self, model, channels, plane: tuple, end: int, stop: StopFlag = None):
        self.model, self.channels, self.plane, self.end = model, channels, plane, end
        self.stop = stop
        self.first, self.probabilities = 0, None
        self.known = None
        if _blends(model) and model.forest_known is not None:
            shape = (len(channels), *channels[0].shape[-2:])
            if model.forest_known.may_hold(shape):
                self.known = model.forest_known.get(model.normalize(
                    np.stack([np.asarray(c[plane]) for c in channels])))

    def rows(self, first: int, count: int) -> np.ndarray:
        """``(K, count, X)`` probabilities of image rows ``first...`` (rows asked for come
        in order, and none beyond ``end``). Raises :class:`Stopped` soon after the stop
        flag is set."""
        if self.known is not None:
            return self.known[:, first:first + count]
        held = 0 if self.probabilities is None else self.probabilities.shape[1]
        if first < self.first or first + count > self.first + held:
            self._compute(first, count)
        return self.probabilities[:, first - self.first:first - self.first + count]

    def _compute(self, first: int, count: int) -> None:
        forest, (height, width) = self.model.forest, self.channels[0].shape[-2:]
        margin, block = forest.margin, forest.block_rows(len(self.channels), width)
        lo = max(first - margin, 0)
        if min(self.end + margin, height) - lo <= block:  # the rest fits in one block
            end = self.end
        else:
            end = max(first + count, min(self.end, lo + block - margin))
        hi = min(end + margin, height)
        raw = np.stack([np.asarray(c[self.plane + (slice(lo, hi), slice(None))])
                        for c in self.channels])
        normalized = self.model.normalize(raw)
        self.first = first
        self.probabilities = forest.predict(normalized, stop=self.stop)[:, first - lo:end - lo]
        if self.model.forest_known is not None and first == 0 and end == height:
            self.model.forest_known.add(normalized, self.probabilities)  # the whole plane


def _blend_forest(model, first: int, rows: np.ndarray, forest: _ForestRows
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """The network's probabilities of image rows ``first...`` blended with the forest's, and
    where the network is sure of a boundary class it has learnt (None when it has none, or
    without a blend)."""
    if not _blends(model) or rows.shape[1] == 0:
        return rows, None
    boundaries = learnt_boundaries(model)
    separators = sure_boundary(rows, boundaries) if boundaries else None
    probabilities = forest.rows(first, rows.shape[1])
    return blend(rows, probabilities, model.config.forest_blend), separators


def _crop(first: int, rows: np.ndarray, ay: _Axis, ax: _Axis) -> tuple[int, np.ndarray]:
    """Padded rows -> (first image row, probabilities of the image pixels among them)."""
    lo = max(first - ay.margin, 0)
    hi = min(first + rows.shape[1] - ay.margin, ay.size)
    if hi <= lo:
        return lo, rows[:, :0, :0]
    start = lo - (first - ay.margin)
    return lo, rows[:, start:start + hi - lo, ax.margin:ax.margin + ax.size]


def _plan(model, shape: tuple[int, ...], tile: int, overlap: int) -> tuple[_Axis, _Axis]:
    if tile < 16 or overlap < 0 or overlap >= tile:
        raise InputError(f"Tiles of {tile} px with {overlap} px overlap are not possible.")
    return (_Axis.plan(shape[-2], tile, overlap, model.multiple),
            _Axis.plan(shape[-1], tile, overlap, model.multiple))


def summarize(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class map (``argmax + 1``) and normalised entropy of probabilities ``(K, ...)``."""
    k = probs.shape[0]
    labels = np.argmax(probs, axis=0) + 1
    p = np.clip(probs, 1e-7, 1.0)
    entropy = -(p * np.log(p)).sum(axis=0)
    uncertainty = np.clip(entropy / np.log(k), 0.0, 1.0) if k > 1 else np.zeros_like(entropy)
    return labels, uncertainty


def _outputs(out, shape: tuple[int, ...], model, with_forest: bool = True):
    n_classes = len(model.config.classes)
    dtype = np.uint8 if n_classes <= 255 else np.uint16
    cuts = with_forest and _blends(model) and bool(learnt_boundaries(model))
    if out is None:
        return Prediction(np.zeros(shape, dtype), np.zeros((n_classes,) + shape, np.float16),
                          np.zeros(shape, np.float16), np.zeros(shape, bool) if cuts else None)
    separators = getattr(out, "separators", None) if cuts else None
    prediction = Prediction(out.labels, out.probabilities, out.uncertainty, separators)
    arrays = [out.labels, out.probabilities, out.uncertainty, separators]
    got = tuple(tuple(a.shape) for a in arrays if a is not None)
    expected = (shape, (n_classes,) + shape, shape, shape)[:len(got)]
    if got != expected:
        raise InputError(f"The output arrays have shapes {got}; they must be {expected}.")
    return prediction


def _planes(leading: tuple[int, ...], planes) -> list[tuple[int, ...]]:
    if planes is None:
        return list(np.ndindex(leading))
    result = []
    for plane in planes:
        plane = (plane,) if np.isscalar(plane) else tuple(int(i) for i in plane)
        if len(plane) != len(leading) or any(not 0 <= i < n for i, n in zip(plane, leading)):
            raise InputError(f"Plane {plane} is not in an image with leading axes {leading}.")
        result.append(plane)
    return result


def predict(model, image, *, planes: Iterable | None = None, tile: int = 512,
            overlap: int = 32, batch_size: int = 4, stop: StopFlag = None,
            out=None) -> Generator[PredictEvent, None, Prediction]:
    """Segment an image plane by plane, tiled with smoothly blended overlaps.

    Parameters
    ----------
    model : Segmenter
        A trained model; the image must have its number of channels.
    image : array-like or list of array-likes
        ``(C, [Z|T...], Y, X)`` or C arrays ``([Z|T...], Y, X)``: numpy, dask or zarr. Only
        one tile is read at a time.
    planes : iterable of tuple, optional
        Plane indices (leading, non-YX indices; ``()`` for a 2D image) to predict; default
        all. Other planes stay 0.
    tile, overlap : int
        Tile size and overlap in pixels (tiles are rounded up to the network's multiple).
    batch_size : int
        Tiles per forward pass.
    stop : threading.Event or callable, optional
        Checked between tile batches and within the forest's work on a new plane; when
        set, prediction returns what it has with ``complete=False`` (pixels not reached are
        label 0, probability 0, uncertainty 0).
    out : object, optional
        Where to write: an object with ``labels``, ``probabilities`` and ``uncertainty``
        array-likes (e.g. zarr arrays) of shapes ``S``, ``(K,) + S`` and ``S`` where ``S``
        is the image's spatial shape, and optionally ``separators`` (bool, ``S``); rows are
        written as they finish. Default: new numpy arrays.

    Yields
    ------
    PredictEvent
        After each tile batch.

    Returns
    -------
    Prediction
        The outputs (``out``'s arrays when given).
    """
    channels = _check_image(model, image)
    shape = tuple(channels[0].shape)
    todo = _planes(shape[:-2], planes)
    result = _outputs(out, shape, model)
    ay, ax = _plan(model, shape, tile, overlap)
    total = len(todo) * len(ay.starts) * len(ax.starts)
    done, t0 = 0, time.perf_counter()
    try:
        for plane in todo:
            for n_tiles, rows in _plane_rows(model, channels, plane, tile, overlap, batch_size,
                                             stop=stop):
                _write(result, plane, *rows)
                done += n_tiles
                yield PredictEvent(done, total, time.perf_counter() - t0)
                if stop_requested(stop) and done < total:
                    raise Stopped
    except Stopped:  # between tile batches, or inside the forest's work on a new plane
        result.complete = False
        return result
    release_freed_memory()  # the tiles' buffers: a long session stays flat
    return result


def _write(result: Prediction, plane: tuple, first: int, probs: np.ndarray,
           separators: np.ndarray | None, block: int = 1024) -> None:
    """Write finished rows, ``block`` columns at a time (few temporaries on wide planes)."""
    rows = slice(first, first + probs.shape[1])
    if result.separators is not None and separators is not None:
        result.separators[plane + (rows,)] = separators
    for x0 in range(0, probs.shape[2] if probs.shape[1] else 0, block):
        part = probs[:, :, x0:x0 + block]
        labels, uncertainty = summarize(part)
        where = plane + (rows, slice(x0, x0 + part.shape[2]))
        result.labels[where] = labels.astype(result.labels.dtype)
        result.probabilities[(slice(None),) + where] = part.astype(np.float16)
        result.uncertainty[where] = uncertainty.astype(np.float16)


def predict_plane(model, image, plane: tuple = (), *, tile: int = 512, overlap: int = 32,
                  batch_size: int = 4, with_forest: bool = True, stop: StopFlag = None
                  ) -> Prediction:
    """Predict a single YX plane (e.g. the visible slice for a live preview).

    Parameters
    ----------
    model : Segmenter
        The model.
    image : array-like or list of array-likes
        As for :func:`predict`.
    plane : tuple
        Leading indices of the plane, ``()`` for a 2D image.
    with_forest : bool
        Blend in the model's random forest (as :func:`predict` does); False: the network alone.
    stop : threading.Event or callable, optional
        Checked between tile batches and within the forest's work; when set, raises
        :class:`~paintseg.learn.events.Stopped`.

    Returns
    -------
    Prediction
        Of the plane, as numpy arrays: labels ``(Y, X)``, probabilities ``(K, Y, X)``,
        uncertainty ``(Y, X)``, separators ``(Y, X)`` or None.
    """
    channels = _check_image(model, image)
    shape = tuple(channels[0].shape)
    (plane,) = _planes(shape[:-2], [plane])
    result = _outputs(None, shape[-2:], model, with_forest)
    for _, rows in _plane_rows(model, channels, plane, tile, overlap, batch_size, with_forest,
                               stop=stop):
        _write(result, (), *rows)
        check_stop(stop)
    return result


def predict_rows(model, image, plane: tuple, rows: tuple[int, int], *, tile: int = 512,
                 overlap: int = 32, batch_size: int = 4) -> Prediction:
    """Predict image rows ``rows[0]`` to ``rows[1] - 1`` of one plane, as :func:`predict`
    predicts them in the whole plane (the tiles of the band and of its halo run).

    One work unit of a distributed prediction (`paintseg.pipeline.batch`): several processes predict
    disjoint bands of a plane too large for one, and the bands add up to :func:`predict`'s
    result.

    Returns
    -------
    Prediction
        Of the band: labels ``(h, X)``, probabilities ``(K, h, X)``, uncertainty ``(h, X)``.
    """
    channels = _check_image(model, image)
    shape = tuple(channels[0].shape)
    (plane,) = _planes(shape[:-2], [plane])
    y0, y1 = rows
    if not 0 <= y0 < y1 <= shape[-2]:
        raise InputError(f"Rows {y0} to {y1} are not in a plane of {shape[-2]} rows.")
    result = _outputs(None, (y1 - y0, shape[-1]), model)
    for _, (first, probs, separators) in _plane_rows(model, channels, plane, tile, overlap,
                                                     batch_size, rows=(y0, y1)):
        _write(result, (), first - y0, probs, separators)
    return result
