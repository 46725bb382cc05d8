"""The correction loop (`quality_loop.py`, same arguments and JSON) with the forest's share
learnt from the network's recall on the first session's strokes only: the corrections are
left out of `blend.training_recalls`' sample. An ablation, not the product's behaviour."""

import importlib

import quality_loop

blend = importlib.import_module("paintseg.learn.blend")
network_recalls = blend.training_recalls
first_strokes = {}  # plane -> the first session's training labels (padded)


def recalls_on_first_strokes(model, data, seed=0):
    """`blend.training_recalls` on the strokes the first session trained on."""
    if not first_strokes:
        first_strokes.update({i: p.train_labels.clone() for i, p in enumerate(data.planes)})
        return network_recalls(model, data, seed)
    kept = [p.train_labels for p in data.planes]
    for i, plane in enumerate(data.planes):
        plane.train_labels = plane.train_labels * (first_strokes[i] != 0)
    try:
        return network_recalls(model, data, seed)
    finally:
        for plane, labels in zip(data.planes, kept):
            plane.train_labels = labels


def product_fit(dataset, seed, args):
    first_strokes.clear()  # a new loop: its first session records its strokes
    return loop_product_fit(dataset, seed, args)


blend.training_recalls = recalls_on_first_strokes
loop_product_fit, quality_loop.product_fit = quality_loop.product_fit, product_fit

if __name__ == "__main__":
    quality_loop.main()
