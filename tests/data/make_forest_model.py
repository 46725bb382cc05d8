"""Writes forest_model.safetensors and forest_model_expected.npz: a model (with its random
forest) saved by paintseg 0.1.0 with scikit-learn 1.9.1, and what it predicted then.
``tests/test_saved_forest.py`` checks that today's install predicts the same. Run once, by
hand: ``.venv/bin/python tests/data/make_forest_model.py``."""

from pathlib import Path

import numpy as np

from paintseg.learn import ClassInfo, Segmenter, drain, predict_plane, train

HERE = Path(__file__).parent
rng = np.random.default_rng(0)
image = rng.normal(100, 10, (2, 64, 64)).astype(np.float32)
image[:, 16:40, 20:44] += 60
strokes = np.zeros((64, 64), np.uint8)
strokes[4:8, 4:60], strokes[26:30, 24:40] = 1, 2
model = Segmenter.create(["dna", "actin"], [ClassInfo("background", role="background"),
                                            ClassInfo("nucleus")],
                         preset="fast", device="cpu", depth=1, width=4, patch_size=32)
drain(train(model, [image], [strokes], steps=4))
model.save(HERE / "forest_model.safetensors")
test_image = rng.normal(110, 25, (2, 48, 56)).astype(np.float32)
plane = model.normalize(test_image)
np.savez_compressed(HERE / "forest_model_expected.npz", image=test_image,
                    forest=model.forest.predict(plane),
                    probabilities=predict_plane(model, test_image).probabilities)
