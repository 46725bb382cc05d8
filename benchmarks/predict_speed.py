"""Tiled prediction speed against the bare forward pass, and peak memory against image size.

Prints JSON:

- ``speed``: Mpixel/s of ``predict`` (tiling, reading, normalising, blending, writing) on a
  plane, and of the bare ``model.logits`` forward pass on tiles prepared in advance (same
  model, numerics, tile size and number of image pixels). Target ratio >= 0.8. The overlap
  alone costs ``tile_pixels_per_image_pixel`` (pixels the network sees per image pixel).
  ``with_forest``: the same with a random forest blended in (``forest_blend=0.5``, an
  option), and its time against ``predict``'s without; ``cancel_waits_s``: seconds from
  Cancel, at a quarter, half and three quarters of that prediction, until it returns (and
  ``slice_job_cancel_waits_s``: the same for the dock's Predict slice job).
  ``trained_plane_with_forest``: the same on a plane trained on (the forest's probabilities
  of it are kept, as right after training in napari or in a script).
- ``memory``: peak RSS of a fresh process predicting a zarr volume into zarr (``out=``), for
  a volume and one 8x larger (8x the planes, and 8x the pixels of one plane). Target ratio
  < 1.2. ``peak_rss_before_predict_mb`` is the peak after loading torch and the model; on
  Linux the peak is then reset, so ``peak_rss_mb`` is the peak while predicting (float32
  numerics in every child, so that they compare).

Run: ``.venv/bin/python benchmarks/predict_speed.py [--size 1024] [--tile 256]``
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from harness import print_report

from paintseg.classes import ClassInfo
from paintseg.learn.device import FP32
from paintseg.learn.events import drain
from paintseg.learn.forest import KnownPlanes, PixelForest
from paintseg.learn.model import Segmenter
from paintseg.learn.predict import Prediction, _plan, predict
from paintseg.session import jobs

CLASSES = [ClassInfo("background", role="background"), ClassInfo("nucleus"),
           ClassInfo("membrane", role="background")]


def make_model(device: str = "auto", **overrides) -> Segmenter:
    """A default-preset model for 2 channels (speed does not depend on the weights)."""
    return Segmenter.create(channels=["nuclei", "membrane"], classes=CLASSES, device=device,
                            norm_low=[0.0, 0.0], norm_high=[1.0, 1.0], **overrides)


def painted_rows(image: np.ndarray) -> np.ndarray:
    """Strokes for the forest: every 16th row painted, class by the smoothed first channel."""
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter(image[0], 4)
    labels = np.zeros(smooth.shape, np.uint8)
    labels[::16] = np.where(smooth[::16] > np.median(smooth), 2, 1)
    return labels


def best_times(fns, repeats: int) -> list[float]:
    """Fastest of ``repeats`` runs of each function, runs interleaved so that a change in the
    machine's load (other processes) hits them alike; one warm-up run each first."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def speed(size: int, tile: int, overlap: int, batch_size: int, repeats: int,
          device: str = "auto") -> dict:
    model = make_model(device)
    image = np.random.default_rng(0).random((2, size, size), dtype=np.float32)
    pixels = size * size
    n_tiles = -(-pixels // (tile * tile))
    tiles = torch.rand(n_tiles, 2, tile, tile).to(model.device)

    def bare():
        for i in range(0, n_tiles, batch_size):
            model.logits(tiles[i:i + batch_size])
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    def tiled():
        drain(predict(model, image, tile=tile, overlap=overlap, batch_size=batch_size))

    with_forest = make_model(device, forest_blend=0.5)
    with_forest.forest = PixelForest.fit([image], [painted_rows(image)], len(CLASSES),
                                         threads=torch.get_num_threads())

    def tiled_with_forest(stop=None):  # a new plane: the forest's filters and trees run
        drain(predict(with_forest, image, tile=tile, overlap=overlap, batch_size=batch_size,
                      stop=stop))

    trained = make_model(device, forest_blend=0.5)  # the plane trained on: its forest is kept
    trained.forest, trained.forest_known = with_forest.forest, KnownPlanes()
    normalized = trained.normalize(image)
    trained.forest_known.add(normalized, trained.forest.predict(normalized).astype(np.float16))

    def tiled_trained_plane():
        drain(predict(trained, image, tile=tile, overlap=overlap, batch_size=batch_size))

    t_bare, t_tiled, t_forest, t_trained = best_times(
        [bare, tiled, tiled_with_forest, tiled_trained_plane], repeats)
    waits = [cancel_wait(tiled_with_forest, at * t_forest) for at in (0.25, 0.5, 0.75)]

    def slice_job(stop):  # the dock's Predict slice of a plane it has not seen (objects too)
        drain(jobs.predict_job(with_forest, list(image[:, ::-1]), (), stop))

    slice_waits = [cancel_wait(slice_job, at * t_forest) for at in (0.25, 0.5, 0.75)]
    ay, ax = _plan(model, image.shape, tile, overlap)
    computed = len(ay.starts) * ay.length * len(ax.starts) * ax.length
    return {
        "device": str(model.device),
        "numerics": model.numerics.describe(),
        "preset": model.config.preset,
        "image": [2, size, size],
        "tile": tile,
        "overlap": overlap,
        "batch_size": batch_size,
        "bare_forward_mpix_per_s": round(pixels / t_bare / 1e6, 3),
        "tiled_predict_mpix_per_s": round(pixels / t_tiled / 1e6, 3),
        "ratio": round(t_bare / t_tiled, 3),
        "with_forest_mpix_per_s": round(pixels / t_forest / 1e6, 3),
        "forest_blend_time_ratio": round(t_forest / t_tiled, 2),
        "trained_plane_with_forest_mpix_per_s": round(pixels / t_trained / 1e6, 3),
        "cancel_waits_s": [round(wait, 2) for wait in waits],
        "slice_job_cancel_waits_s": [round(wait, 2) for wait in slice_waits],
        "tile_pixels_per_image_pixel": round(computed / pixels, 3),
        "target_ratio": 0.8,
    }


def cancel_wait(predict_once, after_s: float) -> float:
    """Seconds from Cancel, ``after_s`` into ``predict_once(stop)``, until it returns (0 when
    it ended before)."""
    stop, cancelled_at = threading.Event(), []

    def cancel():
        cancelled_at.append(time.perf_counter())
        stop.set()

    timer = threading.Timer(after_s, cancel)
    timer.start()
    predict_once(stop)
    returned = time.perf_counter()
    timer.cancel()
    return returned - cancelled_at[0] if cancelled_at else 0.0


def child(path: str, tile: int) -> None:
    """Predict the zarr volume at ``path`` into zarr arrays beside it; print peak RSS."""
    import zarr

    model = make_model("cpu")
    model.numerics = FP32  # the same in every child (detection is timing-based)
    group = zarr.open_group(path, mode="a")
    image = group["image"]
    shape = image.shape[1:]
    chunks = (1,) + shape[-2:] if shape[-1] <= 1024 else (1, 1024, 1024)
    out = Prediction(
        labels=group.create_array("labels", shape=shape, chunks=chunks, dtype="uint8"),
        probabilities=group.create_array("probabilities", shape=(3,) + shape,
                                         chunks=(1,) + chunks, dtype="float16"),
        uncertainty=group.create_array("uncertainty", shape=shape, chunks=chunks,
                                       dtype="float16"),
    )
    before = peak_rss_bytes(reset=True)
    drain(predict(model, image, tile=tile, out=out))
    print(before, peak_rss_bytes())


def peak_rss_bytes(reset: bool = False) -> int:
    """Peak resident memory of this process; ``reset`` starts a new peak (Linux only) so that
    what torch and the model needed at start-up does not hide the prediction's own peak."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    status = Path("/proc/self/status")
    if status.exists():
        peak = next(int(line.split()[1]) * 1024 for line in status.read_text().splitlines()
                    if line.startswith("VmHWM:"))
        if reset:
            Path("/proc/self/clear_refs").write_text("5")
    return peak


def peak_rss(shape: tuple[int, int, int], tile: int, workdir: Path) -> dict:
    import zarr

    path = workdir / f"volume_{'x'.join(map(str, shape))}.zarr"
    group = zarr.open_group(path, mode="w")
    chunk_yx = tuple(min(n, 1024) for n in shape[1:])
    image = group.create_array("image", shape=(2,) + shape, chunks=(1, 1) + chunk_yx,
                               dtype="uint16")
    rng = np.random.default_rng(0)
    for z in range(shape[0]):
        image[:, z] = rng.integers(0, 4000, (2,) + shape[1:], dtype=np.uint16)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", str(path), "--tile", str(tile)],
                         capture_output=True, text=True, check=True)
    before, peak = (int(v) / 2**20 for v in out.stdout.split()[-2:])
    return {"shape": list(shape), "megapixels": round(np.prod(shape) / 1e6, 2),
            "peak_rss_mb": round(peak, 1),
            "peak_rss_before_predict_mb": round(before, 1),
            "seconds": round(time.perf_counter() - t0, 1)}


def memory(plane: int, tile: int) -> dict:
    big_plane = int(round(plane * 8 ** 0.5 / 32)) * 32
    with tempfile.TemporaryDirectory() as tmp:
        small = peak_rss((1, plane, plane), tile, Path(tmp))
        more_planes = peak_rss((8, plane, plane), tile, Path(tmp))
        bigger_plane = peak_rss((1, big_plane, big_plane), tile, Path(tmp))
    return {
        "small": small,
        "8x_planes": more_planes,
        "8x_plane_area": bigger_plane,
        "rss_ratio_8x_planes": round(more_planes["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "rss_ratio_8x_plane_area": round(bigger_plane["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "target_ratio_below": 1.2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="speed test plane size")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-plane", type=int, default=1920,
                        help="plane size of the small volume in the memory test (1920: "
                             "4 x 4 tiles of 512, four tile batches, so the memory allocator "
                             "already holds what it keeps between batches; with a single "
                             "batch (960) the peak is ~150 MB lower and the 8x-area volume "
                             "shows that one-time step as a 1.3x ratio)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-memory", action="store_true", help="the speed test only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.tile)
        return
    result = {"torch_threads": torch.get_num_threads(),
              "speed": speed(args.size, args.tile, args.overlap, args.batch_size, args.repeats,
                             args.device)}
    if not args.no_memory:
        result["memory"] = memory(args.memory_plane, args.tile)
    print_report(result, indent=2)


if __name__ == "__main__":
    main()
