"""The learning engine. Pure numpy/torch/scikit-image/dask: no Qt, no napari."""
