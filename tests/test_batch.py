"""Prediction on a dask cluster (`paintseg.pipeline.batch`): the same result as one process,
files of a folder and bands of one large image, resume, failures reported by name, the SLURM
snippet."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from paintseg.cli import main
from paintseg.io.labels import read_labels
from paintseg.learn.events import drain
from paintseg.learn.model import Segmenter
from paintseg.learn.predict import predict
from paintseg.pipeline import batch
from paintseg.pipeline.outputs import Outputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DOCS = Path(__file__).parents[1] / "docs" / "distributed.md"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder of three 2-channel images and a model trained on the first (fp32 numerics in
    this process and in the workers, which inherit the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAINTSEG_NUMERICS", "fp32")
        from test_cli import _trained_files

        paths = _trained_files(tmp_path_factory)
        folder = paths["image"].parent / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        image = tifffile.imread(paths["image"])
        for i in range(3):
            shifted = np.roll(image, 7 * i, axis=-1) + rng.normal(0, 0.01, image.shape)
            tifffile.imwrite(folder / f"field{i}.tif", shifted.astype(np.float32),
                             metadata={"axes": "CYX"})
        paths["folder"] = folder
        yield paths


@pytest.fixture(scope="module")
def client(files):
    """A 2-worker LocalCluster, shared by the tests of this module."""
    with batch.cluster(workers=2) as (dask_client, threads):
        assert threads >= 1
        yield dask_client


def _same_outputs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if not p.name.startswith("."))
    assert names == sorted(p.name for p in b.iterdir() if not p.name.startswith("."))
    for name in names:
        if name.endswith(".csv"):
            assert (a / name).read_text() == (b / name).read_text(), name
        else:
            assert np.array_equal(tifffile.imread(a / name), tifffile.imread(b / name)), name


def test_folder_on_two_workers_equals_one_process(files, client, tmp_path):
    common = ["--model", str(files["model"]), "--input", str(files["folder"]), "--objects",
              "--probabilities"]
    assert main(["predict", *common, "--output", str(tmp_path / "local")]) == 0
    assert main(["predict", *common, "--output", str(tmp_path / "cluster"),
                 "--scheduler", client.scheduler.address]) == 0
    _same_outputs(tmp_path / "local", tmp_path / "cluster")
    assert len(list((tmp_path / "cluster").glob("*_objects.csv"))) == 3


def test_rerun_skips_finished_units_and_failures_are_named(files, client, tmp_path, capsys):
    folder = tmp_path / "in"
    shutil.copytree(files["folder"], folder)
    out = tmp_path / "out"
    argv = ["predict", "--model", str(files["model"]), "--input", str(folder), "--output",
            str(out), "--scheduler", client.scheduler.address]
    assert main(argv) == 0
    assert "3 predicted, 0 already done" in capsys.readouterr().err
    (out / "field1.tif").unlink()  # an output lost: that unit runs again
    (folder / "broken.tif").write_bytes(b"not a tiff")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "1 predicted, 2 already done (skipped), 1 failed" in err
    assert "broken.tif: " in err and (out / "field1.tif").is_file()


def test_bands_of_a_large_image_into_ome_zarr_equal_one_process(files, client, tmp_path):
    model = Segmenter.load(files["model"], device="cpu")
    rng = np.random.default_rng(1)
    image = rng.normal(size=(2, 2, 1100, 96)).astype(np.float32)  # C, Z, Y, X
    image[:, :, 300:500, 20:60] += 2
    source = tmp_path / "big.tif"
    tifffile.imwrite(source, image, metadata={"axes": "CZYX"})
    store = tmp_path / "big.ome.zarr"
    plan = batch.plan(source, store, Outputs(tile=256), files["model"].read_bytes(),
                      band_rows=1024)
    assert [u.name for u in plan.units] == [
        "plane 0 rows 0-1023", "plane 0 rows 1024-1099",
        "plane 1 rows 0-1023", "plane 1 rows 1024-1099"]
    report = drain(batch.run(plan, client))
    assert report.predicted and not report.failed
    local = drain(predict(model, image, tile=256))
    root = zarr.open_group(str(store), mode="r")
    k = len(model.config.classes)
    assert np.array_equal(read_labels(store / "labels" / "classes")[0], local.labels)
    assert np.array_equal(root["0"][:k], local.probabilities.astype(np.float32))
    assert np.array_equal(root["0"][k], local.uncertainty.astype(np.float32))
    again = drain(batch.run(batch.plan(source, store, Outputs(tile=256),
                                       files["model"].read_bytes(), band_rows=1024), client))
    assert again.skipped and not again.predicted


def test_cli_local_cluster_and_clear_errors(files, tmp_path, capsys):
    argv = ["predict", "--model", str(files["model"]), "--input", str(files["image"])]
    assert main([*argv, "--output", str(tmp_path / "one.tif"), "--workers", "1"]) == 0
    assert read_labels(tmp_path / "one.tif")[0].shape == (64, 64)
    assert "1 predicted" in capsys.readouterr().err
    assert main([*argv, "--output", str(tmp_path / "x.ome.zarr"), "--workers", "1",
                 "--objects"]) == 2
    assert "--objects needs the whole image in one process" in capsys.readouterr().err
    assert main([*argv, "--output", str(tmp_path / "p.tif"), "--workers", "1",
                 "--places", "3"]) == 2
    assert "--places works in one process" in capsys.readouterr().err


def test_slurm_snippet_of_the_docs_makes_a_job_and_runs(files, tmp_path, monkeypatch):
    """The docs' dask-jobqueue snippet: its SLURM job script is sound, and its code runs
    (on a LocalCluster standing in for the SLURM jobs)."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    from distributed import LocalCluster

    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL).group(1)
    scripts, real_slurm_cluster = [], jobqueue.SLURMCluster

    class LocalJobs(LocalCluster):
        def scale(self, n=0, jobs=0, **kwargs):
            return super().scale(1)  # one local worker, whatever the jobs asked for

    def slurm_cluster(**kwargs):
        scripts.append(real_slurm_cluster(**kwargs).job_script())
        return LocalJobs(n_workers=0, threads_per_worker=1, processes=False,
                         dashboard_address=":0")

    monkeypatch.setattr(jobqueue, "SLURMCluster", slurm_cluster)
    monkeypatch.chdir(tmp_path)
    shutil.copy(files["model"], "cells.paintseg.safetensors")
    shutil.copytree(files["folder"], "plate")
    exec(compile(code, str(DOCS), "exec"), {})  # noqa: S102 (the docs' own snippet)
    assert "#SBATCH" in scripts[0] and "distributed.cli.dask_worker" in scripts[0]
    assert sorted(p.name for p in Path("results").glob("*.tif")) == [
        f"field{i}{s}.tif" for i in range(3) for s in ("", "_uncertainty")]


def test_dock_predicts_a_folder_on_a_cluster_given_its_address(files, client, paintseg_viewer,
                                                                tmp_path, qtbot, monkeypatch,
                                                                notifications):
    """The dock's Folder… with a scheduler address: the cluster writes what one process
    writes; an unreachable address is one clear sentence."""
    _, widget = paintseg_viewer
    widget.state.model = Segmenter.load(files["model"], device="cpu")
    widget.prediction.folder_format.setCurrentText("as OME-Zarr")
    widget.prediction.cluster_address.setText(client.scheduler.address)
    assert widget.prediction.predict_folder(str(files["folder"]), str(tmp_path / "out"))
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    assert "3 predicted" in notifications()[-1]
    local = drain(predict(widget.state.model, tifffile.imread(files["folder"] / "field0.tif")))
    stored, _ = read_labels(tmp_path / "out" / "field0.ome.zarr" / "labels" / "classes")
    assert np.array_equal(stored, local.labels)
    monkeypatch.setattr(batch, "CONNECT_SECONDS", 2)
    widget.prediction.cluster_address.setText("tcp://127.0.0.1:9")  # nothing listens there
    assert widget.prediction.predict_folder(str(files["folder"]), str(tmp_path / "other"))
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    assert "Cannot reach the dask scheduler at tcp://127.0.0.1:9" in notifications()[-1]
