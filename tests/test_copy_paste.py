"""Copy-paste augmentation: sure objects pasted into training patches with exact labels, never
over a painted stroke."""

import importlib

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from test_learn_train import disks, new_model

from paintseg.learn import drain, synthesis
from paintseg.learn.synthesis.copy_paste import BankObject, object_bank, paste_objects

train_module = importlib.import_module("paintseg.learn.train")  # not the function
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ellipse(h: int, w: int) -> torch.Tensor:
    yy, xx = np.mgrid[:h, :w]
    return torch.from_numpy(((yy - (h - 1) / 2) / (h / 2)) ** 2
                            + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1)


def test_pasted_pixels_and_labels_are_exactly_the_objects_and_strokes_stay():
    rng = np.random.default_rng(0)
    bank = [BankObject(torch.full((2, 9, 13), 7.0), ellipse(9, 13), label=2),
            BankObject(torch.full((2, 6, 6), 5.0), ellipse(6, 6), label=3)]
    images = torch.zeros(16, 2, 32, 32)
    labels = torch.zeros(16, 32, 32, dtype=torch.long)
    labels[:, 10:22, 4:28] = 1  # a painted background stroke across the middle
    soft = torch.full((16, 3, 32, 32), 1 / 3)
    before_labels = labels.clone()
    paste_objects(images, labels, soft, bank, share=1.0, rng=rng)
    changed = labels != before_labels
    assert changed.any(dim=(1, 2)).all()  # every patch got objects (share 1)
    stroke = before_labels == 1
    assert (labels[stroke] == 1).all() and (images[:, :, 10:22, 4:28] == 0).all()  # kept
    # exact: an object's label where its pixels are, and nothing else changed
    for label, value in ((2, 7.0), (3, 5.0)):
        where = changed & (labels == label)
        assert (images.permute(1, 0, 2, 3)[:, where] == value).all()
        expected = torch.nn.functional.one_hot(torch.tensor(label - 1), 3).float()
        assert (soft.permute(0, 2, 3, 1)[where] == expected).all()
    assert ((images != 0).any(1) == changed).all()
    # the pasted shapes are the bank's masks, turned: each patch's pasted pixels of one
    # label come in whole masks (the ellipse areas)
    areas = {2: int(bank[0].mask.sum()), 3: int(bank[1].mask.sum())}
    for b in range(16):
        for label, area in areas.items():
            assert int((changed[b] & (labels[b] == label)).sum()) % area == 0


def test_the_bank_holds_whole_sure_objects_only():
    sure = np.full((40, 40), -1)
    sure[5:25, 5:25] = 0  # background, sure
    sure[10:16, 10:18] = 1  # a whole object
    sure[30:40, 0:8] = 1  # cut by the plane's edge: left out
    sure[0:2, 30:32] = 1  # a speck (and on the edge)
    data = torch.arange(2 * 40 * 40, dtype=torch.float32).reshape(2, 40, 40)
    (found,) = object_bank([data], [sure], object_classes=[1], max_side=32,
                           rng=np.random.default_rng(0))
    assert found.label == 2 and found.mask.all() and found.mask.shape == (6, 8)
    torch.testing.assert_close(found.image, data[:, 10:16, 10:18])
    assert object_bank([data], [sure], [1], max_side=5, rng=np.random.default_rng(0)) == []


def test_training_with_copy_paste_banks_the_sure_objects(monkeypatch):
    """Halfway through a first training, the self-training's sure class maps (here: the
    truth, as if the network were sure of everything) fill the bank that patches draw on."""
    image, truth, strokes = disks(size=96)
    banks = []

    def recorded(*args, **kwargs):
        banks.append(object_bank(*args, **kwargs))
        return banks[-1]

    monkeypatch.setattr(synthesis, "object_bank", recorded)
    monkeypatch.setattr(train_module, "_add_pseudo_labels",
                        lambda *args, **kwargs: [np.where(truth == 1, 1, 0)])
    model = new_model(copy_paste_share=0.5)
    drain(train_module.train(model, [image], [strokes], steps=20))
    (bank,) = banks
    assert model.config.history[-1]["copy_paste_objects"] == len(bank)
    whole = [region for region in ndi.find_objects(ndi.label(truth == 1)[0])
             if all(0 < s.start and s.stop < 96 for s in region)]
    assert len(bank) == len(whole) >= 3 and all(obj.label == 2 for obj in bank)
    banks.clear()
    drain(train_module.train(new_model(), [image], [strokes], steps=20))
    assert banks == []  # off by default: no bank is made
