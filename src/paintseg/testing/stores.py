"""Damaged zarr and OME-Zarr stores for fuzzing: valid stores of every kind the product
reads, copies with damaged metadata or chunks, arrays of extreme shapes and dtypes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import zarr
from hypothesis import strategies as st

from paintseg.io.labels import write_labels
from paintseg.testing.files import CLASSES, SHAPES, damaged, reads_or_names

KINDS = ["v2.zarr", "v3.zarr", "ngff04.ome.zarr", "ngff05.ome.zarr", "labels.zarr"]
EXTREME_SHAPES = SHAPES + [(1, 1, 1, 1, 1, 1, 1)]
METADATA = (".zarray", ".zattrs", ".zgroup", "zarr.json")
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, -1, 1, 3, 2**31, 2**63, 10**30, 1e308]),
    st.floats(allow_nan=True), st.text(max_size=8),
    st.sampled_from(["<f8", "|b1", "<c8", ">u2", "|O", "complex128", "bool", "0", "../x"]),
    st.lists(st.integers(-2, 2**40), max_size=6), st.just({}), st.just([{}]),
)


def write_ome_zarr(path, levels, version):
    """An NGFF multiscale image: 0.4 on zarr v2 or 0.5 (``ome`` key) on zarr v3."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    datasets = []
    for i, level in enumerate(levels):
        group.create_array(str(i), shape=level.shape, dtype=level.dtype,
                           chunks=(1, 1) + level.shape[2:])[:] = level
        factor = 2.0**i
        datasets.append(
            {
                "path": str(i),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 3.0, 0.5 * factor, 0.5 * factor]}
                ],
            }
        )
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"
    ]
    meta = {
        "multiscales": [{"version": version, "axes": axes, "datasets": datasets}],
        "omero": {"channels": [{"label": "nuclei"}, {"label": "membrane"}]},
    }
    group.attrs.update(meta if version == "0.4" else {"ome": {"version": version, **meta}})


def valid_stores(folder: Path) -> dict[str, Path]:
    """Valid stores of every zarr kind the product reads, by kind."""
    image = np.arange(2 * 3 * 16 * 16, dtype=np.uint16).reshape(2, 3, 16, 16)
    paths = {kind: folder / kind for kind in KINDS}
    for kind, zarr_format in (("v2.zarr", 2), ("v3.zarr", 3)):
        zarr.create_array(str(paths[kind]), data=image, chunks=(1, 1, 8, 8),
                          zarr_format=zarr_format)
    levels = [image, image[:, :, ::2, ::2]]
    write_ome_zarr(paths["ngff04.ome.zarr"], levels, "0.4")
    write_ome_zarr(paths["ngff05.ome.zarr"], levels, "0.5")
    write_labels(paths["labels.zarr"], (image[0] % 3).astype(np.uint8), CLASSES)
    return paths


def store_files(store: Path) -> tuple[list[Path], list[Path]]:
    """(metadata files, chunk files) of a store, in a stable order."""
    files = sorted(p for p in store.rglob("*") if p.is_file())
    metadata = [p for p in files if p.name in METADATA]
    return metadata, [p for p in files if p.name not in METADATA]


def mutate_json(value, draw):
    """``value`` with one entry somewhere inside it replaced by an odd value or removed."""
    if isinstance(value, (dict, list)) and value and draw(st.booleans()):
        keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            del value[key]
        else:
            value[key] = mutate_json(value[key], draw)
        return value
    return draw(ODD_VALUES)


def damage_store(store: Path, draw) -> None:
    """One to three damages: metadata JSON changed inside, bytes of a file damaged, or a
    file removed."""
    for _ in range(draw(st.integers(1, 3))):
        metadata, chunks = store_files(store)
        how = draw(st.sampled_from(["json", "json", "bytes", "remove"]))
        pool = metadata if how == "json" or not chunks or draw(st.booleans()) else chunks
        if not pool:
            return
        target = pool[draw(st.integers(0, len(pool) - 1))]
        if how == "remove":
            target.unlink()
        elif how == "bytes" and target.stat().st_size:
            target.write_bytes(damaged(target.read_bytes(), draw))
        elif how == "json":
            try:
                meta = json.loads(target.read_text())
            except ValueError:
                continue
            target.write_text(json.dumps(mutate_json(meta, draw)))


def damaged_store(stores: dict[str, Path], folder: Path, draw) -> str:
    """Damage a copy of a valid store (replacing the last one) and check the property."""
    kind = draw(st.sampled_from(KINDS))
    path = folder / f"fuzzed_{kind}"
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(stores[kind], path)
    damage_store(path, draw)
    return reads_or_names("labels" if kind == "labels.zarr" else "image", path)


def extreme_zarr(shape: tuple[int, ...], dtype: str, zarr_format: int, folder: Path) -> str:
    """Write a zarr array of an odd shape and dtype; check the property as image and labels."""
    path = folder / "odd.zarr"
    shutil.rmtree(path, ignore_errors=True)
    try:
        zarr.create_array(str(path), data=np.ones(shape, dtype), zarr_format=zarr_format)
    except Exception:  # noqa: BLE001 - zarr cannot write it: nothing to read
        return "not written"
    return "+".join(reads_or_names(kind, path) for kind in ("image", "labels"))
