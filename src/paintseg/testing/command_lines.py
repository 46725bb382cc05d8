"""Fuzzed ``paintseg`` command lines: the files a command takes, valid command lines changed
a few times, and the property (status 0, or 2 with one ``paintseg: error:`` line)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from unittest import mock

import numpy as np
import tifffile
from hypothesis import strategies as st

from paintseg import cli
from paintseg.io.labels import write_labels
from paintseg.io.project import Project
from paintseg.testing.files import CLASSES

NUMBERS = {
    "--steps": ["1", "2", "0", "-5", "1.5", "nan", "x", "", "1e3"],
    "--seconds": ["0.3", "1", "0", "-1", "nan", "inf", "-inf", "1e400", "x", "1e-9"],
    "--tile": ["512", "64", "48", "16", "15", "0", "-1", "33", "100000", "x"],
    "--threads": ["1", "2", "0", "-1", "x", "64"],
    "--min-size": ["20", "0", "-1", "1", "x", "1000000000"],
    "--seed": ["0", "7", "-1", "4294967296", "x"],
}
CHOICES = {
    "--device": ["cpu", "auto", "cuda", "mps", "tpu", ""],
    "--preset": ["auto", "fast", "balanced", "huge", ""],
    "--split": ["shape", "distance", "boundary", "none", "watershed"],
    "--sample": ["synthetic", "real", "none", "x"],
}
PATH_FLAGS = ("--image", "--labels", "--out", "--project", "--continue-from", "--model",
              "--input", "--output", "--truth", "--truth-objects")
SWITCHES = ("--objects", "--probabilities", "--help", "-h")  # no value
OTHER_FLAGS = ("--classes", "--version", "-x")
ERROR_LINE = re.compile(r"paintseg( [a-z]+)?: error: \S")
JUNK = st.one_of(st.text(max_size=6), st.sampled_from(["-", "--", "---x", "\x00", "-1"]))


def cli_files(folder: Path) -> dict[str, str]:
    """Files of every kind a command takes, valid and not, and output targets, by name."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 1000, (2, 32, 32), dtype=np.uint16)
    labels = np.zeros((32, 32), np.uint8)
    labels[2:6, 2:20], labels[20:24, 4:28] = 1, 2
    paths = {name: folder / name for name in (
        "image.tif", "labels.tif", "truth.tif", "model.safetensors", "model1.safetensors",
        "notes.txt", "images", "empty", "set", "out", "gray.tif")}
    tifffile.imwrite(paths["image.tif"], image, imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite(paths["gray.tif"], image[0])
    write_labels(paths["labels.tif"], labels, CLASSES)
    tifffile.imwrite(paths["truth.tif"], labels)
    for model, channels in (("model.safetensors", image), ("model1.safetensors", image[:1])):
        tifffile.imwrite(folder / "train.tif", channels, metadata={"axes": "CYX"})
        assert cli.main(["train", "--image", str(folder / "train.tif"), "--labels",
                         str(paths["labels.tif"]), "--out", str(paths[model]), "--steps", "2",
                         "--device", "cpu"]) == 0
    paths["notes.txt"].write_text("not an image")
    model = paths["model.safetensors"].read_bytes()  # its JSON settings, with a dropout of 4
    (folder / "dropout 4.safetensors").write_bytes(model.replace(b'dropout\\": 0.0',
                                                                 b'dropout\\": 4.0', 1))
    for name in ("images", "empty", "out"):
        paths[name].mkdir()
    tifffile.imwrite(paths["images"] / "a.tif", image, imagej=True, metadata={"axes": "CYX"})
    project = Project.create(paths["set"])
    project.set_classes(CLASSES)
    project.save_annotations(project.add_file(paths["image.tif"]), labels)
    found = {name: str(path) for name, path in paths.items()}
    found.update({"missing": str(folder / "missing.tif"), "new.tif": str(folder / "out" / "r.tif"),
                  "new.safetensors": str(folder / "out" / "m.safetensors"),
                  "new.zarr": str(folder / "out" / "r.zarr"),
                  "no folder": str(folder / "nowhere" / "r.tif"),
                  "under a file": str(paths["notes.txt"] / "r.tif"), "here": "", "dot": ".",
                  "dropout 4.safetensors": str(folder / "dropout 4.safetensors")})
    return found


def valid_commands(files: dict[str, str]) -> list[list[str]]:
    """One working command line per kind of use."""
    return [
        ["train", "--image", files["image.tif"], "--labels", files["labels.tif"], "--out",
         files["new.safetensors"], "--steps", "1", "--device", "cpu"],
        ["train", "--project", files["set"], "--out", files["new.safetensors"], "--steps", "1"],
        ["train", "--image", files["image.tif"], "--labels", files["truth.tif"], "--out",
         files["new.safetensors"], "--continue-from", files["model.safetensors"], "--steps", "1"],
        ["predict", "--model", files["model.safetensors"], "--input", files["image.tif"],
         "--output", files["new.tif"], "--objects"],
        ["predict", "--model", files["model.safetensors"], "--input", files["images"],
         "--output", files["out"], "--probabilities"],
        ["evaluate", "--model", files["model.safetensors"], "--image", files["image.tif"],
         "--truth", files["truth.tif"]],
        ["gui", "--sample", "none"],
    ]


def value_for(flag: str, files: dict[str, str], draw) -> str:
    """An odd or ordinary value for ``flag``."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JUNK)
    if flag in NUMBERS:
        return draw(st.sampled_from(NUMBERS[flag]))
    if flag in CHOICES:
        return draw(st.sampled_from(CHOICES[flag]))
    return files[draw(st.sampled_from(sorted(files)))]


def arguments(files: dict[str, str]) -> st.SearchStrategy[list[str]]:
    """A valid command line changed a few times: a value replaced, an option removed, an
    option or a junk word added. Training always has a small budget, so examples stay short."""
    flags = sorted(NUMBERS) + sorted(CHOICES) + list(PATH_FLAGS + SWITCHES + OTHER_FLAGS)

    @st.composite
    def build(draw) -> list[str]:
        argv = list(draw(st.sampled_from(valid_commands(files))))
        for _ in range(draw(st.integers(0, 4))):
            how = draw(st.sampled_from(["value", "value", "remove", "add", "junk"]))
            options = [i for i, word in enumerate(argv[:-1]) if word.startswith("--")]
            if how == "value" and options:
                i = draw(st.sampled_from(options))
                if argv[i] not in SWITCHES:
                    argv[i + 1] = value_for(argv[i], files, draw)
            elif how == "remove" and options:
                i = draw(st.sampled_from(options))
                del argv[i:i + (1 if argv[i] in SWITCHES else 2)]
            elif how == "add":
                flag = draw(st.sampled_from(flags))
                argv += [flag] if flag in SWITCHES else [flag, value_for(flag, files, draw)]
            else:
                argv.insert(draw(st.integers(0, len(argv))), draw(JUNK))
        if argv and argv[0] == "train" and not {"--steps", "--seconds"} & set(argv):
            argv += ["--steps", "1"]
        return argv

    return build()


def run_cli(argv: list[str], folder: Path) -> tuple[int, str]:
    """Run ``paintseg argv`` in ``folder`` (never launching napari) and check the property:
    status 0, or 2 with exactly one ``paintseg: error:`` line, last, and no traceback
    (argparse names the subcommand: ``paintseg predict: error:``). Returns the status and
    the last line written to stderr."""
    err = io.StringIO()
    with contextlib.chdir(folder), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()), \
            mock.patch.dict(cli.COMMANDS, gui=lambda args: 0):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse: --help (0), bad arguments (2)
            code = exit_.code
    lines = err.getvalue().strip().splitlines() or [""]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    assert "Traceback" not in err.getvalue(), err.getvalue()
    assert code in (0, 2), (code, lines[-3:])
    if code == 2:
        assert len(errors) == 1 and lines[-1] == errors[0], lines[-3:]
    return code, lines[-1]
