"""Sample data: a generated 2-channel Z stack with ground truth, painted-looking strokes, and a
real microscopy image bundled in ``sample_data/`` (npe2 sample-data hooks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.io import imread
from skimage.morphology import disk
from skimage.segmentation import find_boundaries

from paintseg.io.image_data import ImageData, contrast_limits
from paintseg.io.labels import LabelsData
from paintseg.io.napari_reader import LayerData, image_layers, labels_layer

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
REAL_IMAGE = SAMPLE_DIR / "cell.png"
REAL_PIXEL_SIZE = 0.107  # micrometres, from scikit-image's documentation of data.cell()

# Label values are index + 1. The membrane is a painted class but not an object to count, so
# its role is "background"; nuclei are the objects (touching ones must be split).
CLASSES = [
    {"name": "background", "color": "#808080", "role": "background"},
    {"name": "nucleus", "color": "#ff3b30", "role": "object"},
    {"name": "membrane", "color": "#0a84ff", "role": "background"},
]
BACKGROUND, NUCLEUS, MEMBRANE = 1, 2, 3
CHANNEL_NAMES = ["nuclei", "membrane"]
SCALE = (2.0, 0.5, 0.5)  # micrometres per pixel (z, y, x)


def synthetic_cells(
    shape: tuple[int, int, int] = (6, 192, 192), seed: int = 0, touching: bool = True
) -> dict[str, Any]:
    """Generate a 2-channel fluorescence Z stack of cells with known ground truth.

    Nuclei are ellipsoids (radius shrinking away from their centre plane) inside Voronoi
    cells whose outlines form the membrane. With ``touching``, some nuclei come in touching
    pairs inside one cell (just divided), so that objects must be split. The image is
    blurred, has a background offset, per-cell brightness, Poisson and Gaussian noise.

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)``.
    seed : int
        Random seed; the same seed gives the same data.
    touching : bool
        Add pairs of touching nuclei.

    Returns
    -------
    dict
        ``image`` uint16 ``(2, Z, Y, X)`` (nuclei, membrane); ``semantic`` uint8 ``(Z, Y, X)``
        (1 background, 2 nucleus, 3 membrane); ``instances`` int32 ``(Z, Y, X)`` nucleus ids;
        ``classes``; ``channel_names``; ``scale`` ``(z, y, x)``; ``touching_pairs`` (list of
        id pairs that touch).
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    radius = max(4.0, min(ny, nx) / 18)
    nuclei, cell_of = _place_nuclei(rng, ny, nx, radius, touching)
    instances = _draw_nuclei(rng, nuclei, shape)
    cells = _voronoi_cells(rng, nuclei, cell_of, (ny, nx), radius)
    membrane = find_boundaries(cells, mode="inner")
    membrane = np.broadcast_to(membrane, shape)
    semantic = np.full(shape, BACKGROUND, np.uint8)
    semantic[membrane] = MEMBRANE
    semantic[instances > 0] = NUCLEUS
    image = np.stack(
        [
            _nuclei_channel(rng, instances, len(nuclei)),
            _membrane_channel(rng, cells, membrane),
        ]
    )
    image = _microscope(rng, image)
    pairs = [(i + 1, j + 1) for i, j in _touching_pairs(nuclei, cell_of)]
    return {
        "image": image,
        "semantic": semantic,
        "instances": instances,
        "classes": [dict(c) for c in CLASSES],
        "channel_names": list(CHANNEL_NAMES),
        "scale": SCALE,
        "touching_pairs": [p for p in pairs if touch(instances, *p)],
    }


def touch(instances: np.ndarray, a: int, b: int) -> bool:
    """True if objects ``a`` and ``b`` share a face (they touch) anywhere in the stack."""
    grown = ndi.binary_dilation(instances == a)
    return bool(np.any(grown & (instances == b)))


def _place_nuclei(
    rng: np.random.Generator, ny: int, nx: int, radius: float, touching: bool
) -> tuple[np.ndarray, list[int]]:
    """Nucleus centres and radii ``(y, x, ry, rx, angle, zc)`` and the cell each belongs to."""
    centres: list[tuple[float, float]] = []
    spacing = 3.2 * radius
    for _ in range(400):
        y, x = rng.uniform(radius, ny - radius), rng.uniform(radius, nx - radius)
        if all((y - cy) ** 2 + (x - cx) ** 2 > spacing**2 for cy, cx in centres):
            centres.append((y, x))
    nuclei, cell_of = [], []
    for cell, (y, x) in enumerate(centres):
        ry, rx = radius * rng.uniform(0.8, 1.15, 2)
        angle = rng.uniform(0, np.pi)
        if touching and cell % 3 == 0:  # a just-divided pair: two nuclei, one cell
            ry, rx, zc = 0.8 * ry, 0.8 * rx, rng.uniform(0.4, 0.6)
            dy, dx = 0.8 * rx * np.sin(angle), 0.8 * rx * np.cos(angle)  # along the x radius
            for sign in (-1, 1):
                nuclei.append((y + sign * dy, x + sign * dx, ry, rx, angle, zc))
                cell_of.append(cell)
        else:
            nuclei.append((y, x, ry, rx, angle, rng.uniform(0.35, 0.65)))
            cell_of.append(cell)
    return np.array(nuclei), cell_of


def _draw_nuclei(rng: np.random.Generator, nuclei: np.ndarray, shape: tuple) -> np.ndarray:
    """Rasterise ellipsoids; radii shrink away from each nucleus's centre plane."""
    nz, ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx].astype(np.float32)
    instances = np.zeros(shape, np.int32)
    half_depth = max(nz / 2 + 0.5, 1.0)
    for label, (y, x, ry, rx, angle, zc) in enumerate(nuclei, start=1):
        cos, sin = np.cos(angle), np.sin(angle)
        u = (xx - x) * cos + (yy - y) * sin
        v = -(xx - x) * sin + (yy - y) * cos
        ellipse = (u / rx) ** 2 + (v / ry) ** 2
        for z in range(nz):
            shrink = 1 - ((z - zc * (nz - 1)) / half_depth) ** 2
            if shrink > 0.15:
                instances[z][(ellipse <= shrink) & (instances[z] == 0)] = label
    return instances


def _voronoi_cells(
    rng: np.random.Generator, nuclei: np.ndarray, cell_of: list[int], shape: tuple, radius: float
) -> np.ndarray:
    """Cell ids (from 1) around nucleus centres: nearest centre within about 2.3 radii."""
    seeds = np.zeros(shape, np.int32)
    for index, (y, x) in enumerate(nuclei[:, :2]):
        seeds[int(y), int(x)] = index + 1
    distance, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    nearest = seeds[iy, ix] - 1
    cells = np.asarray(cell_of)[nearest] + 1
    reach = radius * rng.uniform(2.0, 2.6, len(cell_of) + 1)
    cells[distance > reach[nearest]] = 0
    return cells


def _touching_pairs(nuclei: np.ndarray, cell_of: list[int]) -> list[tuple[int, int]]:
    """Indices of nuclei that share a cell (the touching pairs)."""
    return [(i, i + 1) for i in range(len(cell_of) - 1) if cell_of[i] == cell_of[i + 1]]


def _nuclei_channel(rng: np.random.Generator, instances: np.ndarray, n: int) -> np.ndarray:
    """Nuclear stain: per-nucleus brightness times a mottled chromatin texture."""
    brightness = np.concatenate([[0.0], rng.uniform(0.5, 1.4, n)])
    texture = ndi.gaussian_filter(rng.normal(1.0, 0.35, instances.shape), (0.5, 1.5, 1.5))
    return brightness[instances] * np.clip(texture, 0.5, 1.5)


def _membrane_channel(
    rng: np.random.Generator, cells: np.ndarray, membrane: np.ndarray
) -> np.ndarray:
    """Membrane stain: bright outlines, faint cytoplasm, per-cell brightness."""
    brightness = rng.uniform(0.6, 1.3, cells.max() + 1)
    brightness[0] = 0.0
    plane = np.where(cells > 0, 0.12, 0.0) * brightness[cells]
    signal = np.broadcast_to(plane, membrane.shape) + membrane * brightness[cells] * 0.9
    return signal


def _microscope(rng: np.random.Generator, signal: np.ndarray) -> np.ndarray:
    """Blur (optics), background offset, Poisson shot noise and Gaussian read noise -> uint16."""
    photons = 600.0
    blurred = ndi.gaussian_filter(signal, (0, 0.8, 1.3, 1.3))
    expected = 40.0 + photons * blurred
    counts = rng.poisson(expected) + rng.normal(0, 6.0, signal.shape) + 100.0
    return np.clip(counts, 0, 65535).astype(np.uint16)


def draw_strokes(
    semantic: np.ndarray,
    coverage: float = 0.02,
    seed: int = 0,
    planes: list[int] | None = None,
) -> np.ndarray:
    """Imitate a person painting a few brush strokes per class.

    Strokes are random walks that follow the class region (thick where it is wide, one
    pixel along thin structures), on a few planes only, balanced over classes.

    Parameters
    ----------
    semantic : numpy.ndarray
        Ground-truth class map ``(Y, X)`` or ``(Z, Y, X)``, values ``1..K`` (0 ignored).
    coverage : float
        Fraction of all pixels to paint (about 0.01-0.03 is realistic).
    seed : int
        Random seed.
    planes : list of int, optional
        Z planes to paint on; by default two or three spread over the stack.

    Returns
    -------
    numpy.ndarray
        uint8 annotation of the same shape: 0 unannotated, else the class.
    """
    rng = np.random.default_rng(seed)
    stack = semantic[None] if semantic.ndim == 2 else semantic
    if planes is None:
        count = min(len(stack), 3 if len(stack) >= 6 else 2)
        planes = sorted({int(p) for p in np.linspace(0, len(stack) - 1, count + 2)[1:-1]})
    strokes = np.zeros(stack.shape, np.uint8)
    classes = [int(k) for k in np.unique(stack) if k > 0]
    budget = coverage * semantic.size / max(len(classes), 1)
    for k in classes:
        candidates = [p for p in planes if np.any(stack[p] == k)] or [
            int(np.argmax((stack == k).sum(axis=(1, 2))))
        ]
        _paint_class(rng, stack, strokes, k, candidates, budget)
    return strokes[0] if semantic.ndim == 2 else strokes


def _paint_class(
    rng: np.random.Generator,
    stack: np.ndarray,
    strokes: np.ndarray,
    k: int,
    planes: list[int],
    budget: float,
) -> None:
    """Add strokes of class ``k`` on ``planes`` until about ``budget`` pixels are painted."""
    regions = {z: stack[z] == k for z in planes}
    brushes = {z: _brush_radius(regions[z]) for z in planes}
    centres = {z: ndi.binary_erosion(regions[z], disk(brushes[z])) for z in planes}
    painted = 0
    for attempt in range(200):
        if painted >= budget:
            return
        z = planes[attempt % len(planes)]
        before = int(np.count_nonzero(strokes[z] == k))
        length = int(rng.integers(25, 70))
        _random_walk(rng, centres[z], strokes[z], k, brushes[z], length)
        painted += int(np.count_nonzero(strokes[z] == k)) - before


def _brush_radius(region: np.ndarray) -> int:
    """The largest brush (up to 3 px) that fits inside most of the region's width."""
    if not region.any():
        return 0
    depth = ndi.distance_transform_edt(region)
    return int(np.clip(np.percentile(depth[region], 90) - 1, 0, 3))


def _random_walk(
    rng: np.random.Generator,
    centres: np.ndarray,
    canvas: np.ndarray,
    value: int,
    brush: int,
    length: int,
) -> None:
    """Paint a disc of radius ``brush`` along a smooth walk whose centre stays in ``centres``.

    ``centres`` is the class region eroded by the brush, so the paint stays inside the class.
    """
    ys, xs = np.nonzero(centres)
    if len(ys) == 0:
        return
    start = rng.integers(len(ys))
    y, x = int(ys[start]), int(xs[start])
    heading = rng.normal(size=2)
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    visited = set()
    height, width = canvas.shape
    for _ in range(length):
        visited.add((y, x))
        canvas[max(0, y - brush) : y + brush + 1, max(0, x - brush) : x + brush + 1][
            _clipped_disc(brush, y, x, height, width)
        ] = value
        options = [
            (y + dy, x + dx)
            for dy, dx in steps
            if 0 <= y + dy < height and 0 <= x + dx < width
            and centres[y + dy, x + dx] and (y + dy, x + dx) not in visited
        ]
        if not options:
            return
        scores = [heading @ (oy - y, ox - x) + rng.normal(0, 0.6) for oy, ox in options]
        next_y, next_x = options[int(np.argmax(scores))]
        heading = 0.8 * heading + 0.2 * np.array([next_y - y, next_x - x])
        y, x = next_y, next_x


def _clipped_disc(brush: int, y: int, x: int, height: int, width: int) -> np.ndarray:
    """The brush footprint, cut where it overhangs the image edge."""
    footprint = disk(brush).astype(bool)
    top, left = max(0, brush - y), max(0, brush - x)
    bottom = footprint.shape[0] - max(0, y + brush + 1 - height)
    right = footprint.shape[1] - max(0, x + brush + 1 - width)
    return footprint[top:bottom, left:right]


def synthetic_sample() -> list[LayerData]:
    """npe2 sample: the synthetic cells as 2 channel layers, example strokes and ground truth.

    The ``annotations`` layer holds example strokes and the class table, ready to train.
    """
    cells = synthetic_cells()
    image = ImageData(
        channels=list(cells["image"]),
        channel_names=cells["channel_names"],
        axes="ZYX",
        scale=cells["scale"],
        contrast_limits=[contrast_limits(channel) for channel in cells["image"]],
        name="synthetic cells",
    )
    layers = image_layers(image, "paintseg synthetic sample")
    for channel_layer, name in zip(layers, cells["channel_names"]):
        channel_layer[1]["name"] = name
    truth = LabelsData(cells["semantic"], cells["classes"], "ZYX", cells["scale"], "ground truth")
    strokes = draw_strokes(cells["semantic"])
    annotations = LabelsData(strokes, cells["classes"], "ZYX", cells["scale"], "annotations")
    truth_layer = labels_layer(truth, "paintseg synthetic sample")
    truth_layer[1].update(visible=False, opacity=0.5)
    return layers + [truth_layer, labels_layer(annotations, "paintseg synthetic sample")]


def real_sample() -> list[LayerData]:
    """npe2 sample: a real quantitative-phase image of a cell (scikit-image ``cell``, CC0)."""
    data = imread(REAL_IMAGE)
    image = ImageData(
        channels=[data],
        channel_names=["phase"],
        axes="YX",
        scale=(REAL_PIXEL_SIZE, REAL_PIXEL_SIZE),
        contrast_limits=[contrast_limits(data)],
        name="cell (scikit-image)",
    )
    return image_layers(image, str(REAL_IMAGE))
