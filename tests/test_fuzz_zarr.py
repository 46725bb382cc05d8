"""Fuzzed zarr and OME-Zarr stores: damaged metadata (.zarray, .zattrs, .zgroup, zarr.json,
NGFF multiscales, class tables), damaged or missing chunks, extreme shapes and dtypes. Each
reads correctly or raises PaintsegError naming the store; nothing else escapes."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_files import CLASSES, DTYPES, FUZZ, SHAPES, damaged, read_all, reads_or_names
from test_io_images import _write_ome_zarr

from paintseg.errors import PaintsegError
from paintseg.io.labels import write_labels

KINDS = ["v2.zarr", "v3.zarr", "ngff04.ome.zarr", "ngff05.ome.zarr", "labels.zarr"]
EXTREME_SHAPES = SHAPES + [(1, 1, 1, 1, 1, 1, 1)]
METADATA = (".zarray", ".zattrs", ".zgroup", "zarr.json")
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, -1, 1, 3, 2**31, 2**63, 10**30, 1e308]),
    st.floats(allow_nan=True), st.text(max_size=8),
    st.sampled_from(["<f8", "|b1", "<c8", ">u2", "|O", "complex128", "bool", "0", "../x"]),
    st.lists(st.integers(-2, 2**40), max_size=6), st.just({}), st.just([{}]),
)


def valid_stores(folder: Path) -> dict[str, Path]:
    """Valid stores of every zarr kind the product reads, by kind."""
    image = np.arange(2 * 3 * 16 * 16, dtype=np.uint16).reshape(2, 3, 16, 16)
    paths = {kind: folder / kind for kind in KINDS}
    for kind, zarr_format in (("v2.zarr", 2), ("v3.zarr", 3)):
        zarr.create_array(str(paths[kind]), data=image, chunks=(1, 1, 8, 8),
                          zarr_format=zarr_format)
    levels = [image, image[:, :, ::2, ::2]]
    _write_ome_zarr(paths["ngff04.ome.zarr"], levels, "0.4")
    _write_ome_zarr(paths["ngff05.ome.zarr"], levels, "0.5")
    write_labels(paths["labels.zarr"], (image[0] % 3).astype(np.uint8), CLASSES)
    return paths


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return valid_stores(tmp_path_factory.mktemp("valid_zarr"))


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


@FUZZ
@given(data=st.data())
def test_damaged_zarr_stores_read_or_give_a_sentence_naming_them(stores, tmp_path, data):
    damaged_store(stores, tmp_path, data.draw)


@FUZZ
@given(shape=st.sampled_from(EXTREME_SHAPES), dtype=st.sampled_from(DTYPES),
       zarr_format=st.sampled_from([2, 3]))
def test_extreme_zarr_shapes_and_dtypes_read_or_give_a_sentence(shape, dtype, zarr_format,
                                                                 tmp_path):
    extreme_zarr(shape, dtype, zarr_format, tmp_path)


def _edit_json(path: Path, change) -> None:
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


FOUND = {  # damage the fuzzing found escaping as another exception, or not naming the store
    "damaged image chunk": ("v2.zarr", lambda p: (p / "0.0.0.0").write_bytes(b"junk" * 9),
                            "pixels cannot be read"),
    "damaged label chunk": ("labels.zarr", lambda p: (p / "0" / "1.0.0").write_bytes(b"junk"),
                            "labels cannot be read"),
    "label store without multiscales": (
        "labels.zarr", lambda p: _edit_json(p / ".zattrs", lambda m: m.pop("multiscales")),
        "damaged label store"),
    "label store without its array": ("labels.zarr", lambda p: (p / "0" / ".zarray").unlink(),
                                      "damaged label store"),
    "class without a name": (
        "labels.zarr",
        lambda p: _edit_json(p / ".zattrs", lambda m: m["paintseg"]["classes"].append({})),
        "damaged class table"),
    "class table not a list": (
        "labels.zarr",
        lambda p: _edit_json(p / ".zattrs", lambda m: m["paintseg"].update(classes=5)),
        "damaged class table"),
    "labels claiming a huge shape": (
        "labels.zarr",
        lambda p: _edit_json(p / "0" / ".zarray", lambda m: m.update(shape=[10**5] * 3)),
        "memory"),
    "7 dimensions, no axis names": (
        "v3.zarr", lambda p: _edit_json(p / "zarr.json", lambda m: m.update(
            shape=[1, 1, 1, 2, 3, 16, 16], dimension_names=None,
            chunk_grid={"name": "regular", "configuration": {"chunk_shape": [1] * 5 + [8, 8]}})),
        "7 dimensions"),
}


@pytest.mark.parametrize("case", FOUND)
def test_damage_found_by_fuzzing_gives_a_sentence(case, stores, tmp_path):
    kind, damage, expected = FOUND[case]
    path = tmp_path / f"found_{kind}"
    shutil.copytree(stores[kind], path)
    damage(path)
    with pytest.raises(PaintsegError, match=expected) as error:
        read_all("labels" if kind == "labels.zarr" else "image", path)
    assert path.name in str(error.value)
