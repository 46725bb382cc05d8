"""A model saved by an earlier release, random forest included, predicts exactly as it did:
the forest is rebuilt from plain arrays into the installed scikit-learn (a tested range,
see pyproject.toml), so an upgrade within that range must not change a saved model."""

from pathlib import Path

import numpy as np

from paintseg.learn import Segmenter, predict_plane

DATA = Path(__file__).parent / "data"


def test_a_saved_forest_model_predicts_as_when_it_was_saved():
    model = Segmenter.load(DATA / "forest_model.safetensors", device="cpu")
    expected = np.load(DATA / "forest_model_expected.npz")
    plane = model.normalize(expected["image"])
    np.testing.assert_array_equal(model.forest.predict(plane), expected["forest"])
    found = predict_plane(model, expected["image"]).probabilities
    np.testing.assert_allclose(found.astype(np.float32),
                               expected["probabilities"].astype(np.float32), atol=2e-3)
