"""BioImage Model Zoo (bioimage.io, model format 0.5) export and import of paintseg models.

The package holds the network as ``pytorch_state_dict`` weights with a standalone
architecture file (the U-Net of ``learn/unet.py`` and `ProbabilityUNet`, which adds the
softmax) and as TorchScript; our normalisation as ``scale_linear``; a test tile with the
output of our own path (normalise, network, softmax; float32); a cover; documentation; the
whole ``ModelConfig`` under ``config.paintseg``; and the paintseg model file as an
attachment, from which :func:`import_bioimageio` restores the model (random forest included).
Other tools run the network alone, as paintseg does with ``forest_blend`` 0.

Importing never runs code from a package: the state dict is decoded without unpickling
(`paintseg.zoo.state_dicts`) and the architecture file is never imported.
"""

from __future__ import annotations

import getpass
import inspect
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from paintseg.errors import FileFormatError, InputError, PaintsegError
from paintseg.io.labels import atomic_file
from paintseg.io.samples import synthetic_cells
from paintseg.learn import unet
from paintseg.learn.device import Numerics, pick_device
from paintseg.learn.model import ModelConfig, Segmenter, checked_net
from paintseg.learn.sampling import as_channels
from paintseg.learn.unet import UNet
from paintseg.zoo.state_dicts import read_state_dict

MODEL_FILE = "model.paintseg.safetensors"  # the attached paintseg model file
TILE = 256  # largest side of the test tile
NAME_CHARACTERS = "letters, digits, spaces and _+-()"  # what the spec allows in a name
UNET_CITATION = ("Ronneberger O, Fischer P, Brox T (2015). U-Net: Convolutional Networks "
                 "for Biomedical Image Segmentation. MICCAI 2015.")
UNET_DOI = "10.1007/978-3-319-24574-4_28"


class ProbabilityUNet(UNet):
    """The paintseg U-Net giving class probabilities: a softmax over the class axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(super().forward(x), dim=1)


def export_bioimageio(
    model: Segmenter,
    path: str | os.PathLike,
    *,
    authors: Sequence[str] | None = None,
    license: str = "CC-BY-4.0",
    name: str | None = None,
    image: Any = None,
) -> Path:
    """Write ``model`` as a BioImage Model Zoo package (a ``.zip``), atomically.

    Parameters
    ----------
    model : Segmenter
        A trained model.
    path : path-like
        The ``.zip`` to write.
    authors : sequence of str, optional
        Author names; default: the user name of this account.
    license : str
        SPDX licence identifier of the package.
    name : str, optional
        The package's name (letters, digits, spaces and ``_+-()``); default from the classes.
    image : array-like, optional
        An image ``(C, [Z|T...], Y, X)`` (or list of channels) whose first plane gives the
        test tile (its centre, at most `TILE` px); default: synthetic cells in the model's
        intensity range.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        If the model is untrained, the image too small or of other channels, or the name or
        licence invalid.
    """
    from bioimageio.spec import save_bioimageio_package

    path = Path(path)
    if not model.is_trained:
        raise InputError("This model has not been trained yet: train it before exporting it.")
    if not path.parent.is_dir():
        raise InputError(f"Cannot export: the folder {path.parent} does not exist.")
    name = _package_name(model, name)
    authors = _check_authors(authors)
    _check_license(license)
    with tempfile.TemporaryDirectory(prefix="paintseg-bioimageio-") as folder:
        files = Path(folder)
        model.save(files / MODEL_FILE)
        # An independent CPU copy in float32: the user's model keeps its device and numerics.
        reference = Segmenter.load(files / MODEL_FILE, device="cpu")
        reference.numerics = Numerics()
        tile = _test_tile(reference, image)
        normalized = torch.from_numpy(reference.normalize(tile))[None]
        expected = torch.softmax(reference.logits(normalized), dim=1).numpy()
        for kind, array in (("input", tile[None]), ("output", expected)):
            np.save(files / f"test_{kind}.npy", array)
            tifffile.imwrite(files / f"sample_{kind}.tif", array)  # for viewers (FAIR)
        _write_cover(files / "cover.png", reference, tile, expected[0])
        try:
            descr = _describe(reference, files, normalized, name, authors, license)
            atomic_file(path, lambda tmp: save_bioimageio_package(descr, output_path=tmp))
        except PaintsegError:
            raise
        except ValueError as error:  # pydantic's ValidationError; an invalid package
            raise InputError(f"The BioImage Model Zoo package would be invalid: "
                             f"{_reason(error)}.") from error
    return path


def import_bioimageio(path: str | os.PathLike, device: str | torch.device = "auto"
                      ) -> Segmenter:
    """Load a paintseg model from a BioImage Model Zoo package written by
    :func:`export_bioimageio`: its attached model file (lossless), else the network alone
    from ``config.paintseg`` and the ``pytorch_state_dict`` weights. Runs no code from it.

    Raises
    ------
    FileFormatError
        If ``path`` is not a valid package or was not exported by paintseg.
    """
    from bioimageio.spec import InvalidDescr, load_description

    path, device = Path(path), pick_device(device)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file.")
    try:
        descr = load_description(path)
    except Exception as error:  # anything that is not a package
        raise _not_a_package(path, _reason(error)) from error
    if isinstance(descr, InvalidDescr) or getattr(descr, "type", None) != "model":
        reason = descr.get_reason() if isinstance(descr, InvalidDescr) else "not a model"
        raise _not_a_package(path, (reason or "invalid").splitlines()[0])
    attached = [a for a in descr.attachments if str(a.source).endswith(".safetensors")]
    settings = (descr.config.model_extra or {}).get("paintseg")
    weights = descr.weights.pytorch_state_dict
    if not attached and (settings is None or weights is None):
        raise _not_a_package(path, "it holds no paintseg model: it was not exported by "
                             "paintseg")
    try:
        if attached:  # the complete model file
            return Segmenter.from_bytes(attached[0].get_reader().read(), device)
        config = ModelConfig.from_dict(settings)  # else the network alone
        state = read_state_dict(weights.get_reader().read())  # never unpickled
        return Segmenter(config, checked_net(config, state, path.name), device)
    except Exception as error:  # a damaged or foreign package
        raise _not_a_package(path, f"its paintseg model is unusable: {_reason(error)}") \
            from error


def _not_a_package(path: Path, reason: str) -> FileFormatError:
    return FileFormatError(f"{path.name} is not a paintseg BioImage Model Zoo package "
                           f"({reason}).")


def _package_name(model: Segmenter, name: str | None) -> str:
    if name is None:
        name = re.sub(r"[^A-Za-z0-9_+\-() ]+", "-", "paintseg " + " ".join(model.class_names))
        return name[:128]
    if not re.fullmatch(r"[A-Za-z0-9_+\-() ]{5,128}", name):
        raise InputError(f"The name {name!r} must be 5 to 128 {NAME_CHARACTERS}.")
    return name


def _check_authors(authors: Sequence[str] | None) -> list[str]:
    """The author names (the spec needs one: default, the user name), without slashes."""
    authors = [a.strip() for a in authors or [] if a.strip()] or [default_author()]
    for author in authors:
        if "/" in author:
            raise InputError(f"The author name {author!r} must not contain '/'.")
    return authors


def default_author() -> str:
    """The user name of this account (the default author)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 (no user name in this environment)
        return "paintseg user"


def _check_license(license: str) -> None:
    from bioimageio.spec.model.v0_5 import LicenseId

    try:
        LicenseId(license)
    except ValueError:
        raise InputError(f"{license!r} is not an SPDX licence identifier that the BioImage "
                         "Model Zoo accepts (e.g. CC-BY-4.0, MIT, BSD-3-Clause).") from None


def _reason(error: Exception) -> str:
    """The first problem of a pydantic ValidationError (else the first line of ``error``)."""
    problems = getattr(error, "errors", list)()
    if problems:
        where = ".".join(str(part) for part in problems[0].get("loc", ()))
        return f"{where}: {problems[0].get('msg', '')}".strip(": ")
    return (str(error).splitlines() or [type(error).__name__])[0]


def _test_tile(model: Segmenter, image: Any) -> np.ndarray:
    """A ``(C, Y, X)`` float32 tile of raw intensities, sides multiples of ``model.multiple``."""
    m = model.multiple
    if image is None:
        cells = synthetic_cells(shape=(1, TILE, TILE), seed=0)["image"][:, 0].astype(np.float32)
        n = len(model.config.channels)
        lows, highs = np.percentile(cells, [1, 99.8], axis=(1, 2))
        # Synthetic channels (repeated as needed) in each model channel's intensity range.
        return np.stack([
            low + (high - low) * (cells[c % 2] - lows[c % 2]) / (highs[c % 2] - lows[c % 2])
            for c, low, high in zip(range(n), model.config.norm_low, model.config.norm_high)
        ]).astype(np.float32)
    channels = as_channels(image)
    model.check_channels(len(channels))
    first = (0,) * (channels[0].ndim - 2)
    ny, nx = (min(size, TILE) // m * m for size in channels[0].shape[-2:])
    if not (ny and nx):
        raise InputError(f"The image is too small for a test tile: it needs at least {m} x "
                         f"{m} pixels.")
    y0, x0 = ((size - s) // 2 for size, s in zip(channels[0].shape[-2:], (ny, nx)))
    return np.stack([np.asarray(c[first][y0:y0 + ny, x0:x0 + nx], dtype=np.float32)
                     for c in channels])


def _write_cover(path: Path, model: Segmenter, tile: np.ndarray, probabilities: np.ndarray
                 ) -> None:
    """The test tile (grey: mean of the normalised channels) beside its class colours."""
    import imageio.v3 as iio

    grey = np.clip(model.normalize(tile).mean(axis=0), 0, 1)[..., None]
    colors = np.array([[int(c.color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
                       for c in model.config.classes])
    classes = 0.4 * grey + 0.6 * colors[probabilities.argmax(axis=0)]
    cover = np.concatenate([np.repeat(grey, 3, axis=2), classes], axis=1)
    iio.imwrite(path, (cover * 255).round().astype(np.uint8))


def _unet_kwargs(config: ModelConfig) -> dict[str, Any]:
    """The arguments of `UNet` (and `ProbabilityUNet`) for ``config``, as in ``_build_net``."""
    return {"in_channels": len(config.channels), "n_classes": len(config.classes),
            "depth": config.depth, "width": config.width, "dropout": config.dropout}


def _write_weights(model: Segmenter, files: Path, example: torch.Tensor) -> bool:
    """State dict, architecture source and (if tracing works) TorchScript into ``files``;
    returns whether the TorchScript was written."""
    kwargs = _unet_kwargs(model.config)
    state = {k: v.detach().cpu().float().contiguous() for k, v in model.net.state_dict().items()}
    torch.save(state, files / "weights.pt")
    source = inspect.getsource(unet) + "\n\n" + inspect.getsource(ProbabilityUNet)
    (files / "paintseg_unet.py").write_text(source, encoding="utf-8")
    net = ProbabilityUNet(**kwargs)
    net.load_state_dict(state)
    net.eval()
    try:
        with torch.no_grad():
            traced = torch.jit.trace(net, example)
        traced.save(str(files / "weights_torchscript.pt"))
    except Exception:  # noqa: BLE001 (TorchScript is optional)
        return False
    return True


def _describe(model: Segmenter, files: Path, example: torch.Tensor, name: str,
              authors: list[str], license: str):
    """The ModelDescr (format 0.5) of the files written in ``files``."""
    from bioimageio.spec.model import v0_5 as spec

    config = model.config
    m = model.multiple
    has_torchscript = _write_weights(model, files, example)
    (files / "README.md").write_text(_documentation(model, has_torchscript), encoding="utf-8")
    low = np.asarray(config.norm_low, np.float32)
    gain = 1 / np.maximum(np.asarray(config.norm_high, np.float32) - low, np.float32(1e-6))
    space = [spec.SpaceInputAxis(id=spec.AxisId(a), size=spec.ParameterizedSize(min=m, step=m))
             for a in ("y", "x")]
    same_size = [spec.SpaceOutputAxis(id=spec.AxisId(a), size=spec.SizeReference(
        tensor_id=spec.TensorId("input"), axis_id=spec.AxisId(a))) for a in ("y", "x")]
    input_ = spec.InputTensorDescr(
        id=spec.TensorId("input"),
        description="raw image channels",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=list(config.channels)), *space],
        test_tensor=spec.FileDescr(source=files / "test_input.npy"),
        sample_tensor=spec.FileDescr(source=files / "sample_input.tif"),
        data=spec.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[
            spec.EnsureDtypeDescr(kwargs=spec.EnsureDtypeKwargs(dtype="float32")),
            # (x - low) / max(high - low, 1e-6) per channel, as Segmenter.normalize
            spec.ScaleLinearDescr(kwargs=spec.ScaleLinearAlongAxisKwargs(
                axis=spec.AxisId("channel"), gain=gain.tolist(),
                offset=(-low * gain).astype(np.float64).tolist())),
        ],
    )
    output = spec.OutputTensorDescr(
        id=spec.TensorId("probabilities"),
        description="class probabilities (softmax over the channel axis)",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=model.class_names), *same_size],
        test_tensor=spec.FileDescr(source=files / "test_output.npy"),
        sample_tensor=spec.FileDescr(source=files / "sample_output.tif"),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
    version = spec.Version(torch.__version__.split("+")[0])
    weights = spec.WeightsDescr(
        pytorch_state_dict=spec.PytorchStateDictWeightsDescr(
            source=files / "weights.pt",
            architecture=spec.ArchitectureFromFileDescr(
                source=files / "paintseg_unet.py", callable=spec.Identifier("ProbabilityUNet"),
                kwargs=_unet_kwargs(config)),
            pytorch_version=version),
        torchscript=spec.TorchscriptWeightsDescr(
            source=files / "weights_torchscript.pt", pytorch_version=version,
            parent="pytorch_state_dict") if has_torchscript else None,
    )
    return spec.ModelDescr(
        name=name,
        description=(f"U-Net trained with napari-paintseg on painted strokes: classes "
                     f"{', '.join(model.class_names)} from channels "
                     f"{', '.join(config.channels)}.")[:1024],
        authors=[spec.Author(name=a) for a in authors],
        cite=[spec.CiteEntry(text=UNET_CITATION, doi=spec.Doi(UNET_DOI))],
        license=license,
        tags=["napari-paintseg", "unet", "semantic-segmentation", "2d", "pytorch"],
        documentation=spec.FileDescr(source=files / "README.md"),
        covers=[spec.FileDescr(source=files / "cover.png")],
        inputs=[input_],
        outputs=[output],
        weights=weights,
        attachments=[spec.FileDescr(source=files / MODEL_FILE)],
        config={"paintseg": config.to_dict()},
    )


def _documentation(model: Segmenter, has_torchscript: bool) -> str:
    config = model.config
    rows = "\n".join(f"| {i} | {c.name} | `{c.color}` | {c.role} |"
                     for i, c in enumerate(config.classes, 1))
    runs = "\n".join(
        f"- {h.get('date', '?')}: {h.get('steps', '?')} steps, {h.get('seconds', '?')} s, "
        f"final loss {h.get('final_loss')}, {h.get('train_strokes')} training and "
        f"{h.get('val_strokes')} held-out strokes, on {h.get('device', '?')}"
        for h in config.history) or "- (none recorded)"
    torchscript = " and TorchScript" if has_torchscript else ""
    return f"""# {', '.join(model.class_names)} (napari-paintseg)

A 2D U-Net (depth {config.depth}, width {config.width}, preset `{config.preset}`) trained
with [napari-paintseg](https://github.com/napari-paintseg/napari-paintseg) from strokes
painted on images of the channels {', '.join(f'`{c}`' for c in config.channels)}.

## Input and output

Input: the channels above, `(batch, channel, y, x)`, height and width multiples of
{model.multiple}. Preprocessing maps each channel's 1st percentile of the training images to
0 and its 99.8th to 1 (`scale_linear`, stored values). Output: per-pixel probabilities of
the classes below (softmax, part of the network); the class map is their argmax, label value
= class index.

| label | class | colour | role |
|---|---|---|---|
{rows}

## The random forest

In napari-paintseg, predictions blend the network with a random forest fitted on the strokes
(`forest_blend` {config.forest_blend}). The forest is not a format bioimage.io can run: other
tools run the network alone (as paintseg with `forest_blend` 0) from the PyTorch state
dict{torchscript} weights. The attached `{MODEL_FILE}` holds the complete model (network,
forest, settings); napari-paintseg imports the package losslessly from it.

## Training history

{runs}

The full settings are in `config.paintseg` of `rdf.yaml`.

## Validation

The test tile's expected output was computed by napari-paintseg's own path (normalise,
network, softmax) in float32 on a CPU. The held-out strokes' scores of each training run are
in `config.paintseg.history` (`val`). Check the model on your images before you rely on it:
it learnt from a few strokes on a few images.
"""
