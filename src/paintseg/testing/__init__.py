"""Inputs for the fuzz tests and ``benchmarks/fuzz.py``, shared by both: valid and damaged
files (``files``), zarr stores (``stores``), command lines (``command_lines``) and model
files that lie (``crafted``), each with the check of its property. Qt-free; ``hypothesis``
(of the ``testing`` extra) draws the damage. The dock's helpers are in
``paintseg.widgets.testing``."""
