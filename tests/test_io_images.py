"""Opening TIFF / OME-TIFF / ImageJ / zarr / OME-Zarr images: round trips, errors, laziness."""

import numpy as np
import pytest
import tifffile
import zarr

from paintseg.errors import FileFormatError
from paintseg.io.images import read_image
from paintseg.io.napari_reader import get_reader
from paintseg.testing.stores import write_ome_zarr

RNG = np.random.default_rng(0)


def _layers(path):
    reader = get_reader(str(path))
    assert reader is not None
    return reader(str(path))


def test_ome_tiff_czyx_becomes_one_layer_per_channel(tmp_path):
    data = RNG.integers(0, 4000, (3, 4, 32, 40), dtype=np.uint16)
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(
        path,
        data,
        metadata={
            "axes": "CZYX",
            "Channel": {"Name": ["dapi", "gfp", "actin"]},
            "PhysicalSizeZ": 2.0,
            "PhysicalSizeY": 0.25,
            "PhysicalSizeX": 0.3,
        },
    )
    layers = _layers(path)
    assert [meta["name"] for _, meta, _ in layers] == [
        "cells [dapi]",
        "cells [gfp]",
        "cells [actin]",
    ]
    for c, (array, meta, kind) in enumerate(layers):
        assert kind == "image"
        assert meta["scale"] == (2.0, 0.25, 0.3)
        assert meta["blending"] == "additive"
        assert meta["metadata"]["paintseg_channel"] == c
        np.testing.assert_array_equal(np.asarray(array), data[c])
        low, high = meta["contrast_limits"]
        assert data[c].min() <= low < high <= data[c].max()
    assert len({meta["colormap"] for _, meta, _ in layers}) == 3


def test_imagej_hyperstack_tzcyx(tmp_path):
    data = RNG.integers(0, 255, (2, 3, 2, 16, 24), dtype=np.uint8)  # T Z C Y X
    path = tmp_path / "movie.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "TZCYX", "spacing": 1.5, "finterval": 30, "Labels": ["h2b", "mem"] * 6},
    )
    image = read_image(path)
    assert image.axes == "TZYX"
    assert image.channel_names == ["h2b", "mem"]
    assert image.scale == pytest.approx((30.0, 1.5, 0.2, 0.2))
    for c in range(2):
        np.testing.assert_array_equal(np.asarray(image.channels[c]), data[:, :, c])


def test_single_channel_tiff_is_gray_and_named_after_file(tmp_path):
    data = RNG.integers(0, 100, (5, 20, 20), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "stack.tiff", data, metadata={"axes": "ZYX"})
    [(array, meta, kind)] = _layers(tmp_path / "stack.tiff")
    assert (meta["name"], meta["colormap"], kind) == ("stack", "gray", "image")
    np.testing.assert_array_equal(np.asarray(array), data)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_zarr_array(tmp_path, zarr_format):
    data = RNG.random((2, 3, 16, 16), dtype=np.float32)
    path = tmp_path / f"plain_v{zarr_format}.zarr"
    zarr.save_array(str(path), data, zarr_format=zarr_format)
    image = read_image(path)
    assert (image.axes, image.channel_names) == ("ZYX", ["ch0", "ch1"])
    for c in range(2):
        np.testing.assert_array_equal(np.asarray(image.channels[c]), data[c])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_multiscale(tmp_path, version):
    full = RNG.integers(0, 1000, (2, 4, 64, 64), dtype=np.uint16)
    levels = [full, full[:, :, ::2, ::2], full[:, :, ::4, ::4]]
    path = tmp_path / "pyramid.ome.zarr"
    write_ome_zarr(path, levels, version)
    layers = _layers(path)
    assert [meta["name"] for _, meta, _ in layers] == ["pyramid [nuclei]", "pyramid [membrane]"]
    for c, (data, meta, _) in enumerate(layers):
        assert meta["multiscale"] is True
        assert meta["scale"] == (3.0, 0.5, 0.5)
        assert [level.shape for level in data] == [(4, 64, 64), (4, 32, 32), (4, 16, 16)]
        for level, expected in zip(data, levels):
            np.testing.assert_array_equal(np.asarray(level), expected[c])


def test_unsupported_paths_return_none(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder").mkdir()
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "folder")) is None
    assert get_reader(str(tmp_path / "missing.tif")) is None
    assert get_reader([str(tmp_path / "notes.txt")]) is None


def test_truncated_tiff_gives_clear_error_naming_file(tmp_path):
    data = RNG.integers(0, 4000, (2, 8, 64, 64), dtype=np.uint16)
    whole = tmp_path / "whole.ome.tif"
    tifffile.imwrite(whole, data, metadata={"axes": "CZYX"})
    content = whole.read_bytes()
    for fraction in (0.5, 0.02):
        broken = tmp_path / f"broken{int(fraction * 100)}.tif"
        broken.write_bytes(content[: int(len(content) * fraction)])
        reader = get_reader(str(broken))
        with pytest.raises(FileFormatError, match=broken.name) as error:
            reader(str(broken))
        assert "truncated" in str(error.value)


def test_not_a_tiff_gives_clear_error(tmp_path):
    fake = tmp_path / "photo.tif"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(FileFormatError, match="photo.tif is not a readable TIFF"):
        read_image(fake)


def test_corrupt_zarr_gives_clear_error(tmp_path):
    path = tmp_path / "bad.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("{ not json")
    with pytest.raises(FileFormatError, match="bad.zarr"):
        read_image(path)


@pytest.fixture
def tiff_bytes_read(monkeypatch):
    """Count the bytes tifffile reads from files (headers and pixels)."""
    counter = {"bytes": 0}
    original = tifffile.FileHandle.read

    def counting_read(self, size=-1):
        result = original(self, size)
        counter["bytes"] += len(result)
        return result

    monkeypatch.setattr(tifffile.FileHandle, "read", counting_read)
    return counter


def test_tiff_opens_lazily(tmp_path, tiff_bytes_read):
    data = np.ones((2, 64, 128, 128), np.uint16)  # 4 MB of pixels, one 32 kB page per plane
    path = tmp_path / "big.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "CZYX"})
    image = read_image(path)
    opened = tiff_bytes_read["bytes"]
    assert opened < 0.05 * data.nbytes  # metadata and one plane per channel for contrast
    np.asarray(image.channels[1][10])  # showing a plane reads about that plane
    assert 0 < tiff_bytes_read["bytes"] - opened < 4 * 128 * 128 * 2
    np.asarray(image.channels[1])  # the probe does see pixel reads
    assert tiff_bytes_read["bytes"] - opened >= data.nbytes // 2


def test_zarr_opens_lazily(tmp_path, monkeypatch):
    chunk_reads = []
    original = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        if not key.rsplit("/", 1)[-1].startswith((".z", "zarr.json")):
            chunk_reads.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    data = np.ones((2, 50, 64, 64), np.uint8)
    zarr.create_array(str(tmp_path / "big.zarr"), data=data, chunks=(1, 1, 64, 64))
    chunk_reads.clear()
    image = read_image(tmp_path / "big.zarr")
    assert len(chunk_reads) <= 2  # one middle-plane chunk per channel for contrast limits
    np.asarray(image.channels[0][7])
    assert len(chunk_reads) == 3


def test_pyramidal_ome_tiff_becomes_multiscale(tmp_path):
    data = RNG.integers(0, 1000, (2, 2, 128, 128), dtype=np.uint16)
    path = tmp_path / "slide.ome.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(data, subifds=1, tile=(64, 64), metadata={"axes": "CZYX"})
        tif.write(data[..., ::2, ::2], subfiletype=1, tile=(64, 64))
    layers = _layers(path)
    assert len(layers) == 2
    levels, meta, _ = layers[1]
    assert meta["multiscale"] is True
    assert [level.shape for level in levels] == [(2, 128, 128), (2, 64, 64)]
    np.testing.assert_array_equal(np.asarray(levels[1]), data[1, :, ::2, ::2])


def test_a_lazy_tiff_pickles_for_another_process(tmp_path):
    """The training child and dask workers get the image by pickling; it reopens the file."""
    import pickle

    data = np.arange(3 * 2 * 32 * 32, dtype=np.uint16).reshape(3, 2, 32, 32)
    tifffile.imwrite(tmp_path / "stack.tif", data, imagej=True, metadata={"axes": "ZCYX"})
    channel = read_image(tmp_path / "stack.tif").channels[1]
    np.testing.assert_array_equal(np.asarray(pickle.loads(pickle.dumps(channel))), data[:, 1])
