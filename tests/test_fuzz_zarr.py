"""Fuzzed zarr and OME-Zarr stores: damaged metadata (.zarray, .zattrs, .zgroup, zarr.json,
NGFF multiscales, class tables), damaged or missing chunks, extreme shapes and dtypes. Each
reads correctly or raises PaintsegError naming the store; nothing else escapes."""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_files import FUZZ

from paintseg.errors import PaintsegError
from paintseg.testing.files import DTYPES, read_all
from paintseg.testing.stores import EXTREME_SHAPES, damaged_store, extreme_zarr, valid_stores


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return valid_stores(tmp_path_factory.mktemp("valid_zarr"))


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
