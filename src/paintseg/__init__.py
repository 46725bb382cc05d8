"""napari-paintseg: paint a few strokes, train a U-Net live, segment multichannel stacks."""

__version__ = "0.1.0"
