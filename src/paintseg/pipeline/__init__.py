"""Prediction of image files into result files: one file at a time (``files``, as the CLI,
the dock's Folder... and each dask worker write them) and on a dask cluster (``batch``)."""
