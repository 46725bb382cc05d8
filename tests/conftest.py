"""Shared fixtures. GUI fixtures build a viewer with a small synthetic sample and the dock."""

import os
import sys

import pytest

SMALL_SHAPE = (3, 128, 128)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """On PySide6, end the process once pytest has reported, skipping interpreter teardown.

    PySide6 6.12 can abort while Python frees its objects at exit ("none_dealloc: deallocating
    None", a refcount bug in shiboken) after every test has passed and been reported.
    """
    if os.environ.get("PYTEST_QT_API") == "pyside6":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config._paintseg_exitstatus)


def pytest_sessionfinish(session, exitstatus):
    session.config._paintseg_exitstatus = int(exitstatus)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: tiny models train faster so on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data():
    """Disks, their truth and strokes (``test_learn_train.disks``)."""
    from test_learn_train import disks

    return disks()


@pytest.fixture(scope="session")
def trained(data):
    """A model trained on the disks' strokes with one torch thread, and the events of its
    training: trained once for every module that reads it (none changes it)."""
    import torch
    from test_learn_train import TRAIN_STEPS, new_model

    from paintseg.learn import drain, train

    image, _, strokes = data
    events = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = drain(train(new_model(), [image], [strokes], steps=TRAIN_STEPS, seed=0),
                      events.append)
    finally:
        torch.set_num_threads(threads)
    return model, events


@pytest.fixture(scope="session")
def small_cells():
    """A small 2-channel Z stack of synthetic cells with ground truth and example strokes."""
    from paintseg.io.samples import draw_strokes, synthetic_cells

    cells = synthetic_cells(shape=SMALL_SHAPE, seed=1)
    cells["strokes"] = draw_strokes(cells["semantic"], coverage=0.03, seed=1, planes=[0, 1, 2])
    return cells


@pytest.fixture
def image_files(tmp_path, small_cells):
    """A folder of three 2-channel 2D images (planes of ``small_cells``) and one 1-channel."""
    import tifffile

    folder = tmp_path / "images"
    folder.mkdir()
    for z in range(3):
        tifffile.imwrite(folder / f"cells{z}.tif", small_cells["image"][:, z], imagej=True,
                         metadata={"axes": "CYX"})
    tifffile.imwrite(folder / "gray.tif", small_cells["image"][0, 0])
    return folder


@pytest.fixture
def notifications():
    """Messages of the napari notifications shown during the test."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)

    def messages() -> list[str]:
        return [str(n.message) for n in notification_manager.records[start:]]

    return messages


@pytest.fixture
def paintseg_viewer(make_napari_viewer, small_cells):
    """A shown viewer with the two channels of ``small_cells`` and the PaintSeg dock widget.

    The widget has no annotation layer yet; tests make one through the widget.
    """
    from paintseg.widgets.paintseg_widget import PaintSegWidget

    viewer = make_napari_viewer(show=True)
    for name, channel in zip(small_cells["channel_names"], small_cells["image"]):
        viewer.add_image(channel, name=name, scale=small_cells["scale"],
                         blending="additive", colormap="green" if name == "nuclei" else "magenta")
    widget = PaintSegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="PaintSeg", area="right")
    widget.training.budget_unit.setCurrentText("seconds")
    widget.training.preset_combo.setCurrentText("fast")
    assert widget.input.checked_images() == ["nuclei", "membrane"]
    yield viewer, widget
    widget.stop()

