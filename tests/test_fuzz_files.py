"""Fuzzed files: every damaged or odd input reads correctly or raises PaintsegError naming
the file; nothing else escapes. ``PAINTSEG_FUZZ_EXAMPLES`` raises the number of examples."""

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paintseg.errors import PaintsegError
from paintseg.io.images import read_image
from paintseg.io.labels import open_labels, read_labels, write_labels
from paintseg.learn import ClassInfo, Segmenter

EXAMPLES = int(os.environ.get("PAINTSEG_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
CLASSES = [ClassInfo("background", role="background"), ClassInfo("nucleus")]


def valid_files(folder: Path) -> dict[str, bytes]:
    """Bytes of valid files of every kind the product reads."""
    image = np.arange(2 * 3 * 16 * 16, dtype=np.uint16).reshape(3, 2, 16, 16)
    paths = {"imagej.tif": folder / "imagej.tif", "ome.tif": folder / "ome.ome.tif",
             "labels.tif": folder / "labels.tif", "model": folder / "m.safetensors"}
    tifffile.imwrite(paths["imagej.tif"], image, imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(paths["ome.tif"], image, ome=True, metadata={"axes": "ZCYX"})
    write_labels(paths["labels.tif"], (image[:, 0] % 3).astype(np.uint8), CLASSES)
    Segmenter.create(["a", "b"], CLASSES, device="cpu").save(paths["model"])
    return {kind: path.read_bytes() for kind, path in paths.items()}


class Originals(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<valid files: {', '.join(self)}>"


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    return Originals(valid_files(tmp_path_factory.mktemp("valid")))


def damaged(data: bytes, draw) -> bytes:
    """Truncated, bit-flipped, or with a run of bytes overwritten."""
    how = draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    buffer = bytearray(data)
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(buffer) - 1))
            buffer[position] ^= 1 << draw(st.integers(0, 7))
    else:
        start = draw(st.integers(0, len(buffer) - 1))
        patch = draw(st.binary(min_size=1, max_size=64))
        buffer[start:start + len(patch)] = patch
    return bytes(buffer)


def read_all(kind: str, path: Path) -> None:
    """Read the file as the product would, pixels included."""
    if kind == "model":
        Segmenter.load(path, device="cpu")
    elif kind == "labels.tif":
        data, _ = read_labels(path)
        np.asarray(data)
    else:
        for channel in read_image(path).channels:
            np.asarray(channel)


@pytest.mark.parametrize("kind", ["imagej.tif", "ome.tif", "labels.tif", "model"])
@FUZZ
@given(data=st.data())
def test_damaged_files_read_or_give_a_sentence_naming_them(kind, originals, tmp_path, data):
    path = tmp_path / ("fuzzed.safetensors" if kind == "model" else f"fuzzed_{kind}")
    path.write_bytes(damaged(originals[kind], data.draw))
    try:
        read_all(kind, path)
    except PaintsegError as error:
        assert path.name in str(error), str(error)


@FUZZ
@given(shape=st.sampled_from([(1, 1), (1, 3000), (0, 5), (20, 4, 4), (3, 0, 4)]),
       dtype=st.sampled_from([np.bool_, np.int64, np.float64, np.complex64, np.uint8]))
def test_extreme_shapes_and_dtypes_read_or_give_a_sentence(shape, dtype, tmp_path):
    path = tmp_path / "odd.tif"
    try:
        tifffile.imwrite(path, np.zeros(shape, dtype))
    except Exception:  # noqa: BLE001 - tifffile cannot write it: nothing to read
        return
    for reader in (lambda: read_all("imagej.tif", path), lambda: read_labels(path),
                   lambda: open_labels(path)):
        try:
            reader()
        except PaintsegError as error:
            assert path.name in str(error), str(error)
