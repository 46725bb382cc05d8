"""Object edits: each changes the objects at once, teaches the next training by strokes,
undoes exactly, and survives a new prediction."""

import numpy as np
import pytest
from skimage.draw import disk

from paintseg.classes import ClassInfo
from paintseg.errors import InputError
from paintseg.learn import edits
from paintseg.learn.objects import find_objects

CLASSES = [ClassInfo("background", role="background"), ClassInfo("nucleus"),
           ClassInfo("boundary", role="boundary")]
BACKGROUND, NUCLEUS, BOUNDARY = 1, 2, 3


def touching_pair():
    """Two touching discs as one merged object, and an image with a dark seam between them."""
    objects = np.zeros((80, 120), np.int32)
    left, right = disk((40, 40), 20), disk((40, 76), 20)
    objects[left] = 1
    objects[right] = 1
    image = np.zeros(objects.shape, np.float32)
    image[left] = 1.0
    image[right] = 1.0
    image[:, 57:59] *= 0.3  # the seam, two pixels right of the middle of the neck
    return objects, image


def arrays(objects):
    return np.zeros(objects.shape, np.uint8), np.zeros(objects.shape, np.int32)


def test_split_cuts_along_the_line_snaps_to_the_seam_and_teaches_a_boundary():
    objects, image = touching_pair()
    strokes, kept = arrays(objects)
    before = objects.copy()
    edit = edits.split(objects, strokes, kept, (35, 56), (45, 56), CLASSES, channels=[image])
    edits.apply(edit, objects, strokes, kept)
    assert sorted(np.unique(objects)) == [0, 1, 2]
    left, right = np.nonzero(objects == 1)[1], np.nonzero(objects == 2)[1]
    assert left.max() < right.min() or right.max() < left.min()
    cut_columns = np.unique(np.nonzero(strokes == BOUNDARY)[1])
    assert set(cut_columns) <= {56, 57, 58, 59}, cut_columns  # on the seam, not the line
    assert (kept[before > 0] > 0).all()
    edits.apply(edit, objects, strokes, kept, undo=True)
    assert (objects == before).all() and not strokes.any() and not kept.any()


def test_a_line_that_does_not_cross_an_object_is_refused_with_a_sentence():
    objects, _ = touching_pair()
    strokes, kept = arrays(objects)
    with pytest.raises(InputError, match="across an object"):
        edits.split(objects, strokes, kept, (2, 2), (5, 10), CLASSES)
    with pytest.raises(InputError, match="a click does not say"):  # inside, not a drag
        edits.split(objects, strokes, kept, (40, 40), (40, 40), CLASSES)


def test_delete_paints_background_inside_and_keeps_the_users_strokes():
    objects, _ = touching_pair()
    strokes, kept = arrays(objects)
    strokes[40, 40] = NUCLEUS
    edit = edits.delete(objects, strokes, kept, 1, CLASSES)
    edits.apply(edit, objects, strokes, kept)
    assert not objects.any()
    assert strokes[40, 40] == NUCLEUS and (strokes == BACKGROUND).sum() > 2000
    assert (kept == edits.KEPT_DELETED).sum() == (strokes > 0).sum()


def test_merge_replaces_the_taught_boundary_with_the_object_class():
    objects, _ = touching_pair()
    strokes, kept = arrays(objects)
    split = edits.split(objects, strokes, kept, (35, 58), (45, 58), CLASSES)
    edits.apply(split, objects, strokes, kept)
    merge = edits.merge(objects, strokes, kept, 1, 2, CLASSES, NUCLEUS)
    edits.apply(merge, objects, strokes, kept)
    assert sorted(np.unique(objects)) == [0, 1]
    assert not (strokes == BOUNDARY).any() and (strokes == NUCLEUS).any()


def test_a_new_object_gets_object_strokes_and_its_outline():
    objects, _ = touching_pair()
    strokes, kept = arrays(objects)
    mask = np.zeros(objects.shape, bool)
    mask[disk((10, 105), 6)] = True
    edit = edits.new_object(objects, strokes, kept, mask, CLASSES, NUCLEUS)
    edits.apply(edit, objects, strokes, kept)
    assert objects[10, 105] == 2 and strokes[10, 105] == NUCLEUS
    assert strokes[10, 111] == BOUNDARY and strokes[10, 113] == 0  # just outside


def test_a_new_prediction_keeps_the_users_edits():
    objects, image = touching_pair()
    strokes, kept = arrays(objects)
    edits.apply(edits.split(objects, strokes, kept, (35, 58), (45, 58), CLASSES,
                            channels=[image]), objects, strokes, kept)
    extra = np.zeros(objects.shape, bool)
    extra[disk((70, 110), 5)] = True
    predicted = np.where(extra, 2, (objects > 0).astype(np.int32))  # merged again, and a blob
    deleted = np.zeros_like(kept)
    deleted[extra] = edits.KEPT_DELETED
    result = edits.keep_edits(predicted, kept + deleted)
    assert len(np.unique(result[objects > 0])) == 2  # the split stays split
    assert not result[extra].any()  # the deleted place stays empty


def test_classes_and_table_follow_an_edit():
    objects, _ = touching_pair()
    labels = np.where(objects > 0, NUCLEUS, BACKGROUND).astype(np.uint8)
    found, table = find_objects(labels, CLASSES, split="none")
    strokes, kept = arrays(found)
    edit = edits.split(found, strokes, kept, (35, 58), (45, 58), CLASSES)
    edits.apply(edit, found, strokes, kept)
    table = edits.edited_table(table, found, edit.touched, CLASSES, {1: NUCLEUS, 2: NUCLEUS})
    assert list(table["label"]) == [1, 2] and set(table["class_name"]) == {"nucleus"}
    assert table["area"].sum() == (found > 0).sum()
    assert edits.classes_of(found, labels, strokes, CLASSES) == {1: NUCLEUS, 2: NUCLEUS}


def test_kept_ids_from_a_file_are_never_sizes():
    """A kept map may come from a file: a huge id is an id, not an allocation."""
    objects = np.zeros((40, 40), np.int32)
    objects[5:15, 5:15] = 1
    kept = np.zeros_like(objects)
    kept[20:30, 20:30] = np.iinfo(np.int32).max - 1
    kept[0:3, 0:3] = -5  # not an edit
    result = edits.keep_edits(objects, kept)
    assert sorted(np.unique(result)) == [0, 1, 2] and result[25, 25] == 2
    assert not result[0:3, 0:3].any()
