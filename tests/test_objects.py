"""Objects from a class map: touching objects split, specks dropped, a correct table."""

import numpy as np
import pytest
from skimage.draw import disk, ellipse

from paintseg.classes import ClassInfo
from paintseg.errors import InputError
from paintseg.learn.objects import find_objects

CLASSES = [ClassInfo("background", role="background"), ClassInfo("cell"),
           ClassInfo("boundary", role="boundary")]


def two_touching_disks() -> np.ndarray:
    labels = np.ones((64, 100), np.uint8)
    for center in [(32, 30), (32, 62)]:  # radius 17, centres 32 apart: they overlap
        labels[disk(center, 17, shape=labels.shape)] = 2
    return labels


def test_distance_split_separates_touching_disks():
    labels = two_touching_disks()
    merged, _ = find_objects(labels, CLASSES, split="none")
    split, table = find_objects(labels, CLASSES, split="distance")
    assert merged.max() == 1
    assert split.max() == 2 and len(table) == 2
    assert (split > 0).sum() == (labels == 2).sum()  # every cell pixel belongs to an object
    left, right = split[32, 20], split[32, 72]
    assert left != right and left > 0 and right > 0


def test_boundary_class_splits_and_is_shared_out():
    labels = np.ones((40, 60), np.uint8)
    labels[10:30, 10:50] = 2
    labels[10:30, 29:31] = 3  # a painted boundary between two touching cells
    instances, table = find_objects(labels, CLASSES, split="boundary")
    assert instances.max() == 2
    assert sorted(table["area"]) == [20 * 20, 20 * 20]  # boundary pixels went to the cells
    assert instances[20, 29] != instances[20, 30]


def test_boundary_split_needs_a_boundary_class():
    with pytest.raises(InputError, match="boundary"):
        find_objects(two_touching_disks(), CLASSES[:2], split="boundary")


def test_min_size_drops_specks():
    labels = np.ones((30, 30), np.uint8)
    labels[5:15, 5:15] = 2
    labels[25:27, 25:27] = 2  # 4-pixel speck
    instances, table = find_objects(labels, CLASSES, min_size=20)
    assert instances.max() == 1 and list(table["area"]) == [100]
    assert instances[26, 26] == 0


def test_touching_objects_part_along_the_edge_the_image_shows():
    labels = np.ones((60, 100), np.uint8)
    labels[20:40, 20:80] = 2  # two 20 x 30 cells side by side: the mask has no neck
    image = np.zeros(labels.shape, np.float32)
    image[20:40, 20:49] = image[20:40, 51:80] = 1.0  # a dark seam where they meet
    merged, _ = find_objects(labels, CLASSES)
    split, table = find_objects(labels, CLASSES, image=image)
    assert merged.max() == 1
    assert len(table) == 2 and split[30, 30] != split[30, 70]
    assert abs(table["area"].iloc[0] - table["area"].iloc[1]) <= 40  # parted at the seam


def test_a_swarm_of_specks_does_not_change_the_objects_size():
    labels = two_touching_disks()
    specks = np.zeros(labels.shape, bool)
    specks[1::3, 1::3] = True  # ~700 one-pixel specks, as a noisy class map has
    labels[specks & (labels == 1)] = 2
    textured = (labels == 2) + np.random.default_rng(0).normal(0, 0.3, labels.shape)
    instances, table = find_objects(labels, CLASSES, image=textured)
    assert len(table) == 2 and instances[32, 20] != instances[32, 72]


def test_slivers_along_an_outline_are_dropped_small_round_objects_kept():
    labels = np.ones((80, 120), np.uint8)
    for center in [(20, 20), (20, 60), (60, 20), (60, 60)]:  # radius 10
        labels[disk(center, 10, shape=labels.shape)] = 2
    labels[disk((60, 100), 5, shape=labels.shape)] = 2  # a small nucleus: half as thick
    labels[32, 10:40] = 2  # a one-pixel sliver below two nuclei, 30 px long
    instances, table = find_objects(labels, CLASSES)
    assert len(table) == 5 and instances[32, 25] == 0 and instances[60, 100] > 0
    kept, _ = find_objects(labels, CLASSES, min_thickness=0)
    assert kept.max() == 6 and kept[32, 25] > 0


def test_table_columns_and_values():
    labels = np.ones((30, 40), np.uint8)
    labels[2:6, 3:8] = 2  # 4 x 5 rectangle
    image = np.stack([np.full(labels.shape, 7.0), np.where(labels == 2, 3.0, 0.0)])
    probabilities = np.zeros((3,) + labels.shape, np.float32)
    probabilities[1] = np.where(labels == 2, 0.8, 0.1)
    _, table = find_objects(labels, CLASSES, image=image, probabilities=probabilities,
                            channel_names=["dna", "membrane"], min_size=1)
    assert list(table.columns) == [
        "label", "class_id", "class_name", "area", "centroid-0", "centroid-1",
        "bbox-0", "bbox-1", "bbox-2", "bbox-3", "mean_intensity_dna",
        "mean_intensity_membrane", "mean_probability"]
    row = table.iloc[0]
    assert (row["label"], row["class_id"], row["class_name"], row["area"]) == (1, 2, "cell", 20)
    assert (row["centroid-0"], row["centroid-1"]) == (3.5, 5.0)
    assert [row[f"bbox-{i}"] for i in range(4)] == [2, 3, 6, 8]
    assert row["mean_intensity_dna"] == pytest.approx(7.0)
    assert row["mean_intensity_membrane"] == pytest.approx(3.0)
    assert row["mean_probability"] == pytest.approx(0.8)


def test_objects_of_several_classes_get_distinct_ids():
    classes = [ClassInfo("background", role="background"), ClassInfo("nucleus"),
               ClassInfo("vesicle")]
    labels = np.ones((30, 30), np.uint8)
    labels[2:10, 2:10] = 2
    labels[15:25, 15:25] = 3
    instances, table = find_objects(labels, classes)
    assert sorted(np.unique(instances)) == [0, 1, 2]
    assert sorted(table["class_name"]) == ["nucleus", "vesicle"]
    only, _ = find_objects(labels, classes, object_classes=["vesicle"])
    assert only.max() == 1 and only[20, 20] == 1


def test_stack_objects_are_3d_unless_per_plane():
    labels = np.ones((2, 20, 20), np.uint8)
    labels[:, 5:15, 5:15] = 2  # one cell through both planes
    volume, table = find_objects(labels, CLASSES)
    planes, _ = find_objects(labels, CLASSES, per_plane=True)
    assert volume.max() == 1 and table["area"].iloc[0] == 200
    assert planes.max() == 2 and planes[0, 10, 10] != planes[1, 10, 10]


def test_distance_split_keeps_an_elongated_object_whole():
    labels = np.ones((60, 120), np.uint8)
    labels[ellipse(30, 60, 12, 45, shape=labels.shape)] = 2
    labels[ellipse(30, 60, 14, 6, shape=labels.shape)] = 2  # a bump on its outline
    instances, _ = find_objects(labels, CLASSES, split="distance")
    assert instances.max() == 1


def touching_pair(radius: float) -> np.ndarray:
    """Class map of two disks of ``radius`` whose centres are 1.6 radii apart (a neck)."""
    size = int(6 * radius)
    labels = np.ones((size, size), np.uint8)
    for cx in (2 * radius, 3.6 * radius):
        labels[disk((3 * radius, cx), radius, shape=labels.shape)] = 2
    return labels


@pytest.mark.parametrize("radius", [6, 15, 40])
def test_shape_split_separates_touching_objects_at_any_size(radius):
    labels = touching_pair(radius)
    instances, table = find_objects(labels, CLASSES)  # the default split
    assert instances.max() == 2 and len(table) == 2
    assert (instances > 0).sum() == (labels == 2).sum()


@pytest.mark.parametrize("radius", [6, 15, 40])
def test_shape_split_keeps_a_bumpy_object_whole(radius):
    labels = np.ones((int(4 * radius),) * 2, np.uint8)
    center = (2 * radius, 2 * radius)
    labels[ellipse(*center, radius, 1.3 * radius, shape=labels.shape)] = 2
    rng = np.random.default_rng(0)
    for angle in rng.uniform(0, 2 * np.pi, 12):  # small bumps on the outline
        bump = (center[0] + radius * np.sin(angle), center[1] + 1.3 * radius * np.cos(angle))
        labels[disk(bump, 0.15 * radius + 1, shape=labels.shape)] = 2
    instances, _ = find_objects(labels, CLASSES)
    assert instances.max() == 1


def test_shape_split_follows_the_probability_where_objects_meet():
    labels = np.ones((40, 80), np.uint8)
    labels[8:32, 10:70] = 2  # one bar: by shape alone it is one object
    probability = np.zeros((3,) + labels.shape, np.float32)
    probability[1][labels == 2] = 1.0
    probability[1][:, 38:42] = 0.55  # the model hesitates on a line across it
    plain, _ = find_objects(labels, CLASSES)
    guided, _ = find_objects(labels, CLASSES, probabilities=probability)
    assert plain.max() == 1 and guided.max() == 2


def touching_spheres() -> np.ndarray:
    """Class map of two touching spheres of radius 20, sampled every 4 px in Z."""
    zz, yy, xx = np.mgrid[:12, :64, :96] * np.array([4, 1, 1])[:, None, None, None]
    labels = np.ones(zz.shape, np.uint8)
    for cx in (30, 62):
        labels[(zz - 22) ** 2 + (yy - 32) ** 2 + (xx - cx) ** 2 < 20**2] = 2
    return labels


def test_shape_split_measures_anisotropic_stacks_in_their_voxel_size():
    """Two touching spheres sampled every 4 px in Z split when the spacing is given."""
    instances, _ = find_objects(touching_spheres(), CLASSES, spacing=(4, 1, 1))
    assert instances.max() == 2
    assert instances[5, 32, 25] != instances[5, 32, 67]


def test_objects_do_not_depend_on_the_unit_of_the_voxel_size():
    """The same stack in micrometres or in millimetres gives the same objects."""
    labels = touching_spheres()
    micrometres, _ = find_objects(labels, CLASSES, spacing=(4, 1, 1))
    millimetres, _ = find_objects(labels, CLASSES, spacing=(0.004, 0.001, 0.001))
    assert micrometres.max() == 2
    np.testing.assert_array_equal(millimetres, micrometres)
    plane = touching_pair(15)  # and a calibrated 2D image (pixels of 0.01 µm) as a plain one
    np.testing.assert_array_equal(find_objects(plane, CLASSES, spacing=(0.01, 0.01))[0],
                                  find_objects(plane, CLASSES)[0])


def _wavy_cells() -> tuple[np.ndarray, np.ndarray]:
    """Long, bent, touching-free cells of uneven width, with a stroke along each."""
    labels = np.ones((120, 200), np.uint8)
    strokes = np.zeros_like(labels)
    for row in (20, 60, 100):
        xs = np.arange(10, 190)
        ys = (row + 6 * np.sin(xs / 15)).astype(int)
        width = (4 + 3 * np.sin(xs / 7) ** 2).astype(int)  # necks: the shape split's bait
        for x, y, w in zip(xs, ys, width):
            labels[y - w:y + w + 1, x] = 2
        strokes[ys[20:150], xs[20:150]] = 2  # along the middle
        strokes[ys[20:150] + 1, xs[20:150]] = 2
    return labels, strokes


def _plane(labels, strokes):
    probabilities = np.stack([labels == 1, labels == 2, labels == 3]).astype(np.float32)
    return labels, probabilities, strokes, [labels.astype(np.float32)]


def test_the_chosen_split_never_cuts_a_painted_object_stroke():
    from paintseg.learn.objects import choose_split, cut_strokes

    labels, strokes = _wavy_cells()
    shape, _ = find_objects(labels, CLASSES, split="shape")
    assert cut_strokes(shape, strokes == 2)[0] > 0  # the round-nucleus split cuts them
    options = choose_split([_plane(labels, strokes)], CLASSES)
    chosen, _ = find_objects(labels, CLASSES, **options)
    assert cut_strokes(chosen, strokes == 2) == (0, 3) and chosen.max() == 3


def test_the_chosen_split_still_splits_touching_round_objects():
    from paintseg.learn.objects import choose_split

    labels = two_touching_disks()
    strokes = np.zeros_like(labels)
    strokes[30:33, 22:38], strokes[30:33, 56:70] = 2, 2
    options = choose_split([_plane(labels, strokes)], CLASSES)
    assert options["split"] == "shape"
    assert find_objects(labels, CLASSES, **options)[0].max() == 2


def test_a_painted_boundary_class_decides_what_is_one_object():
    """A compartment enclosed by a painted membrane stays whole, necks and all; the same
    shape painted without a membrane is split at its neck."""
    from paintseg.learn.objects import choose_split

    labels = two_touching_disks()
    labels[labels == 1] = 3  # a membrane all round: the dumbbell is one compartment
    strokes = np.zeros_like(labels)
    strokes[30:33, 22:30] = 2  # a dab in one lobe
    assert choose_split([_plane(labels, strokes)], CLASSES)["split"] == "shape"
    strokes[2:4, 10:90] = 3  # the membrane painted
    options = choose_split([_plane(labels, strokes)], CLASSES)
    assert options == {"split": "none"}
    assert find_objects(labels, CLASSES, **options)[0].max() == 1


def test_a_boundary_class_separates_touching_regions_whatever_the_split():
    labels = two_touching_disks()
    labels[:, 45:48] = np.where(labels[:, 45:48] == 2, 3, labels[:, 45:48])  # a membrane
    for split in ("none", "shape"):
        assert find_objects(labels, CLASSES, split=split)[0].max() == 2


@pytest.mark.parametrize("name, role", [("Membrane", "boundary"), ("cell outline", "boundary"),
                                        ("cell wall", "boundary"), ("Background", "background"),
                                        ("mitochondria", "object")])
def test_class_roles_are_guessed_from_names(name, role):
    assert ClassInfo.default_role(name) == role


def test_small_holes_in_objects_are_filled_gaps_between_them_are_not():
    labels = np.ones((80, 80), np.uint8)
    labels[5:35, 5:35] = 2
    labels[18:21, 18:21] = 1  # an organelle-sized hole: part of the cell
    labels[40:78, 40:78] = 2
    labels[50:68, 50:68] = 1  # a large enclosed region: not part of the cell
    objects, table = find_objects(labels, CLASSES, split="none")
    assert objects[19, 19] > 0 and objects[59, 59] == 0 and len(table) == 2


def test_an_object_the_model_is_unsure_of_is_not_reported():
    labels = np.ones((64, 100), np.uint8)
    probability = np.zeros(labels.shape, np.float32)
    for center, sure in [((32, 25), 0.95), ((32, 75), 0.6)]:  # a cell, and a look-alike
        inside = disk(center, 12, shape=labels.shape)
        labels[inside], probability[inside] = 2, sure
    probabilities = np.stack([1 - probability, probability, np.zeros_like(probability)])
    instances, _ = find_objects(labels, CLASSES, probabilities=probabilities)
    assert instances.max() == 1 and instances[32, 25] == 1 and instances[32, 75] == 0
    kept, _ = find_objects(labels, CLASSES, probabilities=probabilities, confidence_share=0)
    assert kept.max() == 2
    unsure = np.where(labels == 2, 0.6, 0).astype(np.float32)  # a briefly trained model
    probabilities = np.stack([1 - unsure, unsure, np.zeros_like(unsure)])
    assert find_objects(labels, CLASSES, probabilities=probabilities)[0].max() == 2


def test_how_finely_a_blob_is_split_does_not_change_which_other_objects_are_kept():
    """A very sure half of a split blob must not raise the bar that drops objects as unsure."""
    labels = np.ones((64, 150), np.uint8)
    probability = np.zeros(labels.shape, np.float32)
    for center, sure in [((32, 30), 0.98), ((32, 62), 0.7), ((32, 120), 0.75)]:
        inside = disk(center, 17, shape=labels.shape)  # the first two touch
        labels[inside], probability[inside] = 2, sure
    probabilities = np.stack([1 - probability, probability, np.zeros_like(probability)])
    for split in ("none", "shape"):
        instances, _ = find_objects(labels, CLASSES, probabilities=probabilities, split=split)
        assert instances[32, 120] > 0, split
    assert find_objects(labels, CLASSES, probabilities=probabilities)[0].max() == 3


def test_the_dock_measures_objects_in_the_layers_voxel_size(monkeypatch, trained):
    """The dock's prediction job hands the layer's scale to the object step: the whole
    stack's voxel size, or a plane's pixel size."""
    import threading

    from paintseg.learn.events import drain
    from paintseg.session import jobs

    seen = []
    monkeypatch.setattr(jobs, "find_objects", lambda labels, *args, spacing=None, **kw: (
        seen.append((labels.ndim, spacing)), find_objects(labels, *args, spacing=spacing,
                                                          **kw))[1])
    model, _ = trained
    stack = list(np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32))
    for plane in (None, (1,)):
        drain(jobs.predict_job(model, stack, plane, threading.Event(), spacing=(4.0, 0.5, 0.5)))
    assert seen == [(3, (4.0, 0.5, 0.5)), (2, (0.5, 0.5))]
