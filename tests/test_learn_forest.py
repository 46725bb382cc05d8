"""Soft targets on unpainted pixels (a random forest's, then the network's own where it is
sure): found where nobody painted, never counted over painted pixels."""

import threading

import numpy as np
import pytest
import torch
from test_learn_continue import prepared
from test_learn_train import disks, new_model

from paintseg.learn import forest
from paintseg.learn.forest import forest_probabilities
from paintseg.learn.train import _Session
from paintseg.session import jobs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_forest_finds_the_unpainted_disks(monkeypatch):
    image, truth, strokes = disks(size=96)
    _, (whole,), _ = forest_probabilities([image], [strokes], 2)
    assert whole.shape == (2,) + truth.shape
    unpainted = strokes == 0
    predicted = whole[1] > 0.5
    agreement = (predicted == (truth == 1))[unpainted].mean()
    assert agreement > 0.9
    # 4 blocks of rows: the same result
    monkeypatch.setattr(forest, "BLOCK_BYTES", 30 * 96 * 4 * forest.features_per_pixel(1))
    _, (blocked,), _ = forest_probabilities([image], [strokes], 2)
    np.testing.assert_allclose(blocked, whole, atol=1e-3)


def striped_and_blotchy(n: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``(1, n, n)`` image: stripes on the left, blotches of the same brightness and
    contrast on the right; its truth (1, 2) and a stroke in each half."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:n, :n]
    stripes = np.sin(2 * np.pi * (x * np.cos(0.3) + y * np.sin(0.3)) / 8)
    blotches = ndi.gaussian_filter(rng.normal(size=(n, n)), 1.5)
    blotches *= stripes.std() / blotches.std()
    image = np.where(x < n // 2, stripes, blotches) + rng.normal(0, 0.2, (n, n))
    strokes = np.zeros((n, n), np.int64)
    strokes[10:20, 10:50], strokes[10:20, n - 50:n - 10] = 1, 2
    return image[None].astype(np.float32), np.where(x < n // 2, 1, 2), strokes


def test_the_forest_tells_oriented_texture_from_blotches_of_the_same_brightness():
    image, truth, strokes = striped_and_blotchy()
    fitted = forest.PixelForest.fit([image], [strokes], 2)
    found = fitted.predict(image).argmax(0) + 1
    assert (found == truth)[30:].mean() > 0.9  # multiscale filters alone: 0.67


def test_a_forest_saved_with_the_earlier_filters_keeps_them_and_other_counts_are_refused():
    image, _, strokes = striped_and_blotchy(64)
    arrays = forest.PixelForest.fit([image], [strokes], 2).to_arrays()
    assert forest.PixelForest.from_arrays(arrays, 2, 1).filters == forest.NEW_FILTERS
    arrays = {k: v for k, v in arrays.items() if k in forest.ARRAYS}  # one stage, as then
    basic = forest.features_per_pixel(1, "basic")
    earlier = forest.PixelForest.from_arrays(
        {**arrays, "feature": np.minimum(arrays["feature"], basic - 1),
         "n_features": np.array([basic])}, 2, 1)
    assert earlier.filters == "basic"
    assert earlier.predict(image).shape == (2, 64, 64)
    with pytest.raises(ValueError, match="none of the filter sets"):
        forest.PixelForest.from_arrays({**arrays, "feature": np.minimum(arrays["feature"], basic),
                                        "n_features": np.array([basic + 1])}, 2, 1)


@pytest.mark.parametrize("planes_kept", [2, 1])
def test_features_kept_from_fitting_give_each_plane_its_own_prediction(monkeypatch,
                                                                        planes_kept):
    image, _, strokes = disks(size=96)
    planes = [image, np.ascontiguousarray(image[:, ::-1])]
    labels = [strokes, np.ascontiguousarray(strokes[::-1])]
    one_plane = forest.plane_features(image).nbytes
    monkeypatch.setattr(forest, "KEPT_FEATURE_BYTES", planes_kept * one_plane)
    fitted, probabilities, _ = forest_probabilities(planes, labels, 2)
    for plane, kept in zip(planes, probabilities):
        np.testing.assert_allclose(kept, fitted.predict(plane), atol=1e-3)
    assert not np.allclose(probabilities[0], probabilities[1], atol=1e-3)


def test_predictions_use_every_stroke_and_soft_targets_only_the_training_ones(monkeypatch):
    from paintseg.learn import drain

    image, _, strokes = disks(size=96)
    fitted_on = []  # painted pixels of each forest fitted
    fit = forest.PixelForest.fit.__func__

    def counted_fit(cls, planes, labels, *args, **kwargs):
        fitted_on.append(sum(int((lab > 0).sum()) for lab in labels))
        return fit(cls, planes, labels, *args, **kwargs)

    monkeypatch.setattr(forest.PixelForest, "fit", classmethod(counted_fit))
    model = new_model()
    drain(train_for(model, image, strokes, steps=2))
    soft_targets, blended = fitted_on
    assert blended == int((strokes > 0).sum())  # the held-out strokes count too
    assert soft_targets < blended  # validation is scored on strokes the targets never saw
    known = model.forest_known.get(model.normalize(image)).astype(np.float32)
    np.testing.assert_allclose(known, model.forest.predict(model.normalize(image)), atol=1e-3)


def test_soft_targets_never_change_the_loss_on_painted_pixels():
    image, _, strokes = disks()
    model = new_model()
    data = prepared(model, image, strokes)
    session = _Session(model, data, first_session=True)
    labels = torch.from_numpy(strokes.astype(np.int64))[None]
    logits = torch.randn(1, 2, *strokes.shape)
    soft = torch.zeros(1, 2, *strokes.shape)
    soft[:, 0] = 1.0  # the forest says background everywhere
    changed = soft.clone()
    painted = torch.from_numpy(strokes > 0)
    changed[0, :, painted] = torch.tensor([0.0, 1.0])[:, None]  # contradict it where painted
    assert session.loss(logits, labels, soft) == session.loss(logits, labels, changed)
    assert session.loss(logits, labels, soft) != session.loss(logits, labels, None)


def test_the_forest_is_the_first_preview_before_any_step():
    from paintseg.learn.train import train

    image, truth, strokes = disks(size=96)
    model = new_model()
    events = train(model, [image], [strokes], steps=2, preview=lambda: (0, ()))
    first = next(events)
    assert first.step == 0 and first.preview is not None
    found = first.preview.labels == 2
    assert first.preview.labels.shape == truth.shape
    assert (found == (truth == 1))[strokes == 0].mean() > 0.9  # useful at once


def test_self_training_replaces_the_forest_targets_only_where_the_network_is_sure():
    from paintseg.learn import drain, predict_plane
    from paintseg.learn.train import _add_pseudo_labels, _fit_forest, train

    image, _, strokes = disks(size=96)
    model = new_model()
    drain(train(model, [image], [strokes], steps=40))
    data = prepared(model, image, strokes)
    _fit_forest(data, seed=0)
    plane = data.planes[0]
    forest_targets = plane.soft.clone()
    _add_pseudo_labels(model, [list(image)], data, confidence=0.9)
    pad = plane.pad
    inside = plane.soft[:, pad:-pad, pad:-pad].float()
    probabilities = predict_plane(model, list(image), with_forest=False).probabilities
    probabilities = torch.from_numpy(probabilities.astype(np.float32))
    sure = probabilities.max(0).values >= 0.9
    assert 0.2 < sure.float().mean() < 1.0  # some pixels each way, or the test proves nothing
    expected = torch.nn.functional.one_hot(probabilities.argmax(0), 2).permute(2, 0, 1).float()
    agree = (inside == expected).all(0)
    assert agree[sure].float().mean() > 0.99  # sure: the network's own class, one-hot
    unsure = ~sure & (probabilities.max(0).values < 0.85)  # away from the threshold
    torch.testing.assert_close(inside[:, unsure],
                               forest_targets[:, pad:-pad, pad:-pad].float()[:, unsure])
    assert plane.soft[:, :pad].abs().sum() == 0  # the padding stays out of the loss
    assert model.net.training  # ready for the next step


def test_predictions_blend_the_network_and_the_forest_fitted_on_the_strokes():
    from paintseg.learn import drain, predict, predict_plane

    image, _, strokes = disks(size=96)
    model = new_model()  # blended by default
    drain(train_for(model, image, strokes))
    assert model.forest is not None
    blended = drain(predict(model, image)).probabilities.astype(np.float32)
    network = predict_plane(model, list(image), with_forest=False).probabilities
    trees = model.forest.predict(model.normalize(image))
    w = model.config.forest_blend  # the forest's share, learnt in training
    assert 0.5 <= w <= 1
    np.testing.assert_allclose(blended, (1 - w) * network.astype(np.float32) + w * trees,
                               atol=2e-3)
    assert np.abs(network.astype(np.float32) - trees).max() > 0.1  # two different opinions
    assert drain(predict(model, image)).separators is None  # no boundary class
    model.config.forest_blend = 0.0  # the network alone
    alone = drain(predict(model, image))
    np.testing.assert_allclose(alone.probabilities, network, atol=1e-3)
    assert alone.separators is None


def test_a_prediction_cuts_objects_where_the_network_is_sure_of_a_boundary_class():
    from dataclasses import replace

    from paintseg.learn import drain, predict, predict_plane
    from paintseg.learn.blend import SURE_BOUNDARY

    image, _, strokes = disks(size=96)
    model = new_model()
    drain(train_for(model, image, strokes))
    before = drain(predict(model, image))
    background, *others = model.config.classes  # as if it were a painted outline, learnt
    model.config.classes = [replace(background, role="boundary"), *others]
    found = drain(predict(model, image))
    np.testing.assert_array_equal(found.labels, before.labels)  # the class map is the blend's
    network = predict_plane(model, list(image), with_forest=False).probabilities[0]
    sure = network.astype(np.float32) >= SURE_BOUNDARY
    clear = np.abs(network.astype(np.float32) - SURE_BOUNDARY) > 2e-3  # float16 rounding
    assert 0.01 < sure.mean() < 0.99  # some pixels each way, or the test proves nothing
    np.testing.assert_array_equal(found.separators[clear], sure[clear])
    assert predict_plane(model, list(image)).separators[clear].tolist() == sure[clear].tolist()


def train_for(model, image, strokes, steps=30):
    from paintseg.learn.train import train

    return train(model, [image], [strokes], steps=steps)


def test_planes_trained_on_or_predicted_are_predicted_again_from_the_forest_probabilities_kept(
        monkeypatch):
    from paintseg.learn import drain, predict

    image, _, strokes = disks(size=96)
    model = new_model()
    drain(train_for(model, image, strokes, steps=2))
    computed_planes = []
    compute = forest.PixelForest.predict
    monkeypatch.setattr(forest.PixelForest, "predict", lambda self, plane, *rest, **named: (
        computed_planes.append(plane.shape), compute(self, plane, *rest, **named))[1])
    kept = drain(predict(model, image)).probabilities.astype(np.float32)
    assert computed_planes == []  # the plane trained on: no filters, no trees
    unseen = np.ascontiguousarray(image[:, :, ::-1])
    first = drain(predict(model, unseen)).probabilities
    assert len(computed_planes) == 1  # a plane never seen: computed, then kept
    np.testing.assert_array_equal(drain(predict(model, unseen)).probabilities, first)
    assert len(computed_planes) == 1
    model.forest_known = None  # as after loading the model from its file
    again = drain(predict(model, image)).probabilities.astype(np.float32)
    np.testing.assert_allclose(kept, again, atol=2e-3)


def test_a_new_plane_gets_the_forest_of_the_whole_plane_once_not_band_by_band(monkeypatch):
    from paintseg.learn import drain, predict

    image, _, strokes = disks(size=96)
    model = new_model()
    drain(train_for(model, image, strokes, steps=2))
    model.forest_known = None  # as after loading its file: no plane's forest is kept
    unseen = np.ascontiguousarray(image[:, ::-1])
    computed = []
    compute = forest.PixelForest.predict
    monkeypatch.setattr(forest.PixelForest, "predict", lambda self, plane, *rest, **named: (
        computed.append(plane.shape), compute(self, plane, *rest, **named))[1])
    whole = drain(predict(model, unseen, tile=32, overlap=8)).probabilities  # bands of rows
    assert computed == [unseen.shape]
    computed.clear()  # a forest that computes a few rows at a time: the same, in blocks
    monkeypatch.setattr(forest, "BLOCK_BYTES", 20 * 96 * 4 * model.forest._per_pixel(1))
    blocked = drain(predict(model, unseen, tile=32, overlap=8)).probabilities
    assert len(computed) > 1
    np.testing.assert_array_equal(blocked, whole)


def test_cancel_during_the_forest_of_a_new_plane_stops_before_its_trees_run(monkeypatch):
    from paintseg.learn import drain, predict

    image, _, strokes = disks(size=96)
    model = new_model()
    drain(train_for(model, image, strokes, steps=2))
    unseen = np.ascontiguousarray(image[:, ::-1])
    cancel, trees_ran = threading.Event(), []
    features, votes = forest.plane_features, forest._votes
    monkeypatch.setattr(forest, "plane_features", lambda *args, **named: (
        cancel.set(), features(*args, **named))[1])  # the user cancels as the filters start
    monkeypatch.setattr(forest, "_votes", lambda trees, x: (
        trees_ran.append(len(x)), votes(trees, x))[1])
    result = drain(predict(model, unseen, stop=cancel))
    assert not result.complete and not trees_ran
    assert not result.labels.any()  # no row was finished: nothing shows as predicted
    cancel.clear()  # the same in the dock's Predict slice: no result, nothing to show
    assert drain(jobs.predict_job(model, list(unseen), (), cancel)) is None
    assert not trees_ran


def test_stop_during_a_live_preview_of_a_new_plane_ends_training_before_its_trees_run(
        monkeypatch):
    from paintseg.learn import drain, train

    image, _, strokes = disks(size=96)
    stack = np.stack([image, image[:, ::-1]], axis=1)  # (C, Z, Y, X): plane 1 never painted
    painted = np.stack([strokes, np.zeros_like(strokes)])
    stop, asked, trees_ran = threading.Event(), [], []

    def on_screen():  # the user looks at the plane nobody painted
        asked.append(True)
        return 0, (1,)

    features, votes = forest.plane_features, forest._votes
    monkeypatch.setattr(forest, "plane_features", lambda *args, **named: (
        len(asked) > 1 and stop.set(), features(*args, **named))[1])  # Stop, as a preview starts
    monkeypatch.setattr(forest, "_votes", lambda trees, x: (
        trees_ran.append(stop.is_set()), votes(trees, x))[1])
    events = []
    model = drain(train(new_model(), [stack], [painted], steps=1000, stop=stop,
                        preview=on_screen, preview_every=0.0), events.append)
    assert len(asked) == 2  # the forest's preview before any step, then the first live one
    assert model.config.history[-1]["steps"] == 1  # it ended at once, not after 1000 steps
    assert events[-1].done and events[-1].preview is None  # a stopped preview is not shown
    assert trees_ran and not any(trees_ran)  # only the fit's trees ran, none after Stop


def test_no_forest_is_kept_when_predictions_do_not_blend_one():
    from paintseg.learn import drain

    image, _, strokes = disks(size=96)
    model = new_model(forest_blend=0.0)  # the network alone
    drain(train_for(model, image, strokes, steps=2))
    assert model.forest is None


def test_forest_arrays_that_would_crash_or_loop_are_refused():
    image, _, strokes = disks(size=96)
    fitted, _, _ = forest_probabilities([image], [strokes], 2)
    arrays = fitted.to_arrays()
    rebuilt = forest.PixelForest.from_arrays(arrays, 2, n_channels=len(image))
    np.testing.assert_array_equal(rebuilt.predict(image), fitted.predict(image))
    loop = {**arrays, "left": np.zeros_like(arrays["left"])}  # every node its own child
    outside = {**arrays, "right": arrays["right"] + 10_000}
    feature = {**arrays, "feature": np.where(arrays["feature"] >= 0, 999, -2)}
    short = {**arrays, "threshold": arrays["threshold"][:-1]}
    second = forest.CONTEXT_PREFIX
    assert fitted.context is not None and second + "left" in arrays  # two stages
    other_filters = {**arrays, second + "n_features": arrays[second + "n_features"] + 1}
    second_loops = {**arrays, second + "left": np.zeros_like(arrays[second + "left"])}
    half_second = {k: v for k, v in arrays.items() if k != second + "value"}
    for broken in (loop, outside, feature, short, {k: arrays[k] for k in list(arrays)[1:]},
                   other_filters, second_loops, half_second):
        with pytest.raises(ValueError):
            forest.PixelForest.from_arrays(broken, 2, n_channels=len(image))


def test_validation_scores_the_blend_that_predictions_show():
    from paintseg.learn import drain, predict
    from paintseg.learn.metrics import semantic_scores
    from paintseg.learn.sampling import prepare_training_data
    from paintseg.learn.train import _fit_forest

    image, _, strokes = disks(size=96)
    model = new_model()
    drain(train_for(model, image, strokes, steps=2))  # a network that has hardly learnt

    def held_out_f1(blend):
        model.config.forest_blend = blend
        data = prepare_training_data(model.class_names, [list(image)], [strokes],
                                     model.normalize, 64, torch.device("cpu"))
        _fit_forest(data, seed=0)
        val = _Session(model, data, first_session=False)._scores()
        held = data.planes[0].val_labels
        shown = np.asarray(drain(predict(model, image)).labels)[held > 0]
        expected = semantic_scores(shown, held[held > 0], model.class_names)
        return ([val[name]["f1"] for name in model.class_names],
                [expected[name]["f1"] for name in model.class_names])

    blended, shown_blended = held_out_f1(0.5)
    network, shown_network = held_out_f1(0.0)
    np.testing.assert_allclose(blended, shown_blended, atol=0.05)
    np.testing.assert_allclose(network, shown_network, atol=0.05)
    assert min(blended) > max(network)  # two different opinions, or this proves nothing
