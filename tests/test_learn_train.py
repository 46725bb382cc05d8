"""Training from sparse strokes: learning, stop, continue, reproducibility, input errors."""

import copy
import threading

import dask.array as da
import numpy as np
import pytest
import torch

from paintseg.errors import InputError, PaintsegError
from paintseg.learn import ClassInfo, Segmenter, drain, pick_device, train
from paintseg.learn import device as device_module
from paintseg.learn.sampling import annotated_planes, prepare_training_data
from paintseg.learn.unet import UNet

CLASSES = [ClassInfo("background", role="background"), ClassInfo("cell")]
TRAIN_STEPS = 100


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def disks(size=64, seed=0):
    """2-channel image of bright disks on noise, its truth (1 = disk) and strokes.

    Strokes, as a person would paint them: a dab inside four disks (class 2), half a ring of
    background around each of them and four dabs of background far from any disk (class 1).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centers = []
    while len(centers) < 6:
        cy, cx = rng.integers(8, size - 8, 2)
        if all((cy - a) ** 2 + (cx - b) ** 2 > 16**2 for a, b in centers):
            centers.append((cy, cx))
    truth = np.zeros((size, size), np.uint8)
    strokes = np.zeros_like(truth)
    for i, (cy, cx) in enumerate(centers):
        radius = rng.integers(4, 7)
        distance = np.hypot(yy - cy, xx - cx)
        truth[distance < radius] = 1
        if i < 4:
            strokes[cy - 1:cy + 2, cx - 2:cx + 3] = 2
            side = (yy - cy) * (1 - 2 * (i % 2)) > 0
            strokes[(abs(distance - radius - 2) < 0.8) & side] = 1
    nearest = np.min([np.hypot(yy - cy, xx - cx) for cy, cx in centers], axis=0)
    far = np.argwhere(nearest > 12)
    for y, x in far[rng.choice(len(far), 4, replace=False)]:
        strokes[max(y - 1, 0):y + 2, max(x - 3, 0):x + 4] = 1
    image = np.stack([
        truth + rng.normal(0, 0.3, truth.shape),
        0.5 * truth + rng.normal(0, 0.3, truth.shape),
    ]).astype(np.float32)
    return image, truth, strokes


def new_model(seed=0, **overrides):
    return Segmenter.create(["nuclei", "membrane"], CLASSES, device="cpu", seed=seed,
                            **overrides)


def foreground_dice(model, image, truth):
    logits = model.logits(torch.from_numpy(model.normalize(image))[None])
    predicted = logits[0].argmax(0).numpy() == 1
    return 2 * (predicted & (truth == 1)).sum() / (predicted.sum() + (truth == 1).sum())



def test_training_reduces_loss_and_learns_the_disks(data, trained):
    image, truth, _ = data
    model, events = trained
    first, last = events[0].loss, np.mean([e.loss for e in events[-3:]])
    assert last < 0.3 * first
    assert events[-1].done and events[-1].step == TRAIN_STEPS
    assert set(events[-1].val) == {"background", "cell"}
    assert all(0 <= events[-1].val[name]["iou"] <= 1 for name in events[-1].val)
    untrained = new_model()
    untrained.config.norm_low = model.config.norm_low
    untrained.config.norm_high = model.config.norm_high
    assert foreground_dice(untrained, image, truth) < 0.6
    assert foreground_dice(model, image, truth) > 0.75
    history = model.config.history[-1]
    assert history["steps"] == TRAIN_STEPS and history["final_loss"] < first


def test_events_report_progress(trained):
    _, events = trained
    steps = [e.step for e in events]
    assert steps == sorted(steps) and steps[0] == 1
    assert all(e.total_steps == TRAIN_STEPS for e in events[1:])
    assert all(e.lr > 0 and e.elapsed >= 0 and e.eta >= 0 for e in events)
    assert events[-1].eta == 0 and sum(e.done for e in events) == 1


def test_stop_ends_training_mid_run(data):
    image, _, strokes = data
    stop = threading.Event()
    events = []
    for event in train(new_model(), [image], [strokes], steps=100_000, stop=stop):
        events.append(event)
        if event.step >= 3:
            stop.set()
    assert events[-1].done
    assert 3 <= events[-1].step < 10


def test_stop_accepts_a_callable(data):
    image, _, strokes = data
    model = drain(train(new_model(), [image], [strokes], seconds=600, stop=lambda: True))
    assert model.config.history[-1]["steps"] == 0


def test_a_time_budget_ends_training(data):
    image, _, strokes = data
    events = []
    drain(train(new_model(), [image], [strokes], seconds=1.0), events.append)
    assert events[-1].done and events[-1].elapsed >= 1.0 and events[-1].step > 0


def test_preview_of_the_requested_plane(data):
    image, _, strokes = data
    events = []
    drain(train(new_model(), [image], [strokes], steps=4, preview=lambda: (0, ()),
                preview_every=0.0), events.append)
    previews = [e.preview for e in events if e.preview is not None]
    assert previews and events[-1].preview is not None  # the final state is shown too
    last = previews[-1]
    assert (last.image_index, last.plane) == (0, ())
    assert last.labels.shape == last.confidence.shape == image.shape[1:]
    assert set(np.unique(last.labels)) <= {1, 2}
    assert 0.5 <= last.confidence.min() and last.confidence.max() <= 1.0 + 1e-3


def test_continue_training_resumes_from_current_weights(data, trained, tmp_path):
    image, _, strokes = data
    model, events = trained
    fresh = []
    drain(train(new_model(), [image], [strokes], steps=1), fresh.append)
    resumed = []
    drain(train(copy.deepcopy(model), [image], [strokes], steps=3, seed=1), resumed.append)
    assert resumed[0].loss < 0.25 * fresh[0].loss
    assert resumed[0].loss < events[-1].loss + 0.15
    # a saved model (no optimiser state) continues too, keeping its normalisation
    path = model.save(tmp_path / "model.safetensors")
    loaded = Segmenter.load(path, device="cpu")
    from_file = []
    drain(train(loaded, [image], [strokes], steps=3, seed=1), from_file.append)
    assert from_file[0].loss < 0.25 * fresh[0].loss
    assert loaded.config.norm_low == model.config.norm_low
    assert len(loaded.config.history) == len(model.config.history) + 1


def test_seeded_training_is_reproducible_on_cpu(data):
    image, _, strokes = data
    a = drain(train(new_model(), [image], [strokes], steps=5, seed=3))
    b = drain(train(new_model(), [image], [strokes], steps=5, seed=3))
    c = drain(train(new_model(), [image], [strokes], steps=5, seed=4))
    for key, value in a.net.state_dict().items():
        assert torch.equal(value, b.net.state_dict()[key]), key
    assert any(not torch.equal(v, c.net.state_dict()[k]) for k, v in a.net.state_dict().items())


def test_strokes_are_held_out_whole_for_validation(data):
    image, _, strokes = data
    model = new_model()
    model.config.norm_low, model.config.norm_high = [0.0, 0.0], [1.0, 1.0]
    prepared = prepare_training_data(model.class_names, [list(image)], [strokes],
                                     model.normalize, 64, torch.device("cpu"))
    plane = prepared.planes[0]
    train_labels = plane.train_labels.numpy()[64:-64, 64:-64]
    held_out = plane.val_labels > 0
    assert held_out.any() and not (train_labels[held_out]).any()
    np.testing.assert_array_equal(np.where(held_out, plane.val_labels, train_labels), strokes)
    assert set(np.unique(plane.val_labels)) == {0, 1, 2}  # each class keeps one stroke back
    assert prepared.val_strokes >= 2 and prepared.train_strokes > prepared.val_strokes
    assert prepared.note == ""


def test_a_class_with_one_stroke_is_validated_on_it_with_a_note(data):
    image, _, _ = data
    strokes = np.zeros(image.shape[1:], np.uint8)
    strokes[5, 5:20] = 1
    strokes[40, 5:20] = 1
    strokes[30, 30:40] = 2
    events = []
    drain(train(new_model(), [image], [strokes], steps=2), events.append)
    assert "only one stroke" in events[-1].note
    assert events[-1].val["cell"]["recall"] >= 0  # scored on its training stroke


def test_trains_on_a_dask_stack_loading_only_painted_planes(data):
    image, _, strokes = data
    stack = np.stack([image] * 3, axis=1)  # (C, Z, Y, X)
    annotation = np.zeros(stack.shape[1:], np.uint8)
    annotation[1] = strokes
    loaded = set()

    def record(block, block_info=None):
        loaded.add(block_info[0]["chunk-location"][1])
        return block

    lazy = da.from_array(stack, chunks=(1, 1, 64, 64)).map_blocks(record, dtype=stack.dtype)
    assert annotated_planes(da.from_array(annotation, chunks=(1, 64, 64))) == [(1,)]
    model = new_model()
    model.config.norm_low, model.config.norm_high = [-0.5, -0.5], [1.5, 1.0]
    drain(train(model, [lazy], [annotation], steps=2))
    assert loaded == {1}


def test_cpu_device_can_be_forced():
    model = new_model()
    assert model.device == torch.device("cpu")
    assert next(model.net.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(PaintsegError, match="CUDA"):
            pick_device("cuda")
    with pytest.raises(PaintsegError, match="Unknown device"):
        pick_device("tpu")


def test_chosen_numerics_match_fp32(data, trained):
    image, _, _ = data
    model, _ = trained
    x = torch.from_numpy(model.normalize(image))[None]
    reference = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format).float()
    with torch.no_grad():
        expected = reference.eval()(x).argmax(1)
    assert (model.logits(x).argmax(1) == expected).float().mean() > 0.99


def test_a_cpu_without_bf16_never_gets_bf16(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(device_module, "_numerics_cache", {})
    numerics = device_module.choose_numerics(torch.device("cpu"), UNet(1, 2, 1, 4), (2, 1, 16, 16))
    assert numerics.autocast_dtype is None


def test_numerics_verdict_is_cached_on_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(device_module, "_numerics_cache", {})
    net, shape = UNet(1, 2, 1, 4), (2, 1, 16, 16)
    first = device_module.choose_numerics(torch.device("cpu"), net, shape)
    assert device_module.numerics_cache_file().is_file()

    def no_timing(*args):
        raise AssertionError("timed again instead of reading the cache")

    monkeypatch.setattr(device_module, "_numerics_cache", {})  # a new process
    monkeypatch.setattr(device_module, "_fastest_cpu_numerics", no_timing)
    assert device_module.choose_numerics(torch.device("cpu"), net, shape) == first


@pytest.mark.parametrize("value, dtype", [("fp32", None), ("bf16", torch.bfloat16)])
def test_numerics_can_be_forced_by_environment(monkeypatch, value, dtype):
    monkeypatch.setenv("PAINTSEG_NUMERICS", value)
    monkeypatch.setattr(device_module, "_fastest_cpu_numerics", None)  # must not be called
    numerics = device_module.choose_numerics(torch.device("cpu"), UNet(1, 2, 1, 4), (2, 1, 16, 16))
    assert numerics.autocast_dtype == dtype
    monkeypatch.setenv("PAINTSEG_NUMERICS", "fp8")
    with pytest.raises(PaintsegError, match="PAINTSEG_NUMERICS"):
        device_module.choose_numerics(torch.device("cpu"), UNet(1, 2, 1, 4), (2, 1, 16, 16))


@pytest.mark.parametrize(
    "case, message",
    [
        ("channels", "trained on 2 channels (nuclei, membrane) but the image has 3"),
        ("no strokes", "No strokes painted yet"),
        ("one class", "Only class 'cell' has strokes"),
        ("nan", "NaN"),
        ("shape", "has shape (32, 32) but the image has shape (64, 64)"),
        ("label too big", "only 2 classes"),
    ],
)
def test_bad_input_gives_a_clear_error(data, case, message):
    image, _, strokes = data
    images, annotations = [image], [strokes]
    if case == "channels":
        images = [np.concatenate([image, image[:1]])]
    elif case == "no strokes":
        annotations = [np.zeros_like(strokes)]
    elif case == "one class":
        annotations = [np.where(strokes == 2, 2, 0).astype(np.uint8)]
    elif case == "nan":
        images = [np.where(strokes > 0, np.nan, image)]
    elif case == "shape":
        annotations = [strokes[:32, :32]]
    elif case == "label too big":
        annotations = [np.where(strokes == 2, 3, strokes).astype(np.uint8)]
    model = new_model()
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        drain(train(model, images, annotations, steps=1))
    assert not model.is_trained and model.config.history == []


def test_a_zarr_image_stays_lazy_as_channels(tmp_path):
    import zarr

    from paintseg.learn.sampling import as_channels

    stored = zarr.create_array(tmp_path / "image.zarr", data=np.arange(2 * 4 * 8 * 8,
                               dtype=np.uint16).reshape(2, 4, 8, 8), chunks=(1, 1, 8, 8))
    channels = as_channels(stored)
    assert all(isinstance(channel, da.Array) for channel in channels)
    np.testing.assert_array_equal(np.asarray(channels[1][2]), stored[1, 2])
