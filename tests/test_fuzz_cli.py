"""Fuzzed command lines: valid ``paintseg`` commands with options removed, added, or given odd
values (paths of the wrong kind, missing files, bad numbers, junk text). The command ends
with status 0, or 2 and one line ``paintseg: error: ...``; never a traceback."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_files import FUZZ

from paintseg.testing.command_lines import arguments, cli_files, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAINTSEG_NUMERICS", "fp32")  # no numerics timing
        yield cli_files(tmp_path_factory.mktemp("cli_fuzz"))


@FUZZ
@given(data=st.data())
def test_fuzzed_command_lines_exit_0_or_2_with_one_sentence(files, tmp_path, data):
    run_cli(data.draw(arguments(files)), tmp_path)


FOUND = {  # command lines that once ended in a traceback or a wrong message, and the fix
    "line break in an argument": (["gui", "a\nb"], "unrecognized arguments: a\\nb"),
    "empty path": (["train", "--image", "", "--labels", "{labels.tif}"], "not a usable path"),
    "NUL in a path": (["evaluate", "--model", "a\x00b", "--image", "{image.tif}", "--truth",
                       "{truth.tif}"], "not a usable path"),
    "--out a folder (trained, then failed)": (
        ["train", "--image", "{image.tif}", "--labels", "{labels.tif}", "--out", "{out}",
         "--steps", "1"], "is a folder"),
    "endless budget": (["train", "--project", "{set}", "--seconds", "inf"], "above 0"),
    "seed out of numpy's range": (["train", "--project", "{set}", "--seed", "4294967296"],
                                  "from 0 to"),
    "tile within the overlap": (["predict", "--model", "{model.safetensors}", "--input",
                                 "{image.tif}", "--output", "{new.tif}", "--tile", "16"],
                                "--tile: 16 must be a number above 32"),
    "output under a file": (["predict", "--model", "{model.safetensors}", "--input",
                             "{image.tif}", "--output", "{under a file}"], "notes.txt"),
    "model settings the network refuses": (["predict", "--model", "{dropout 4.safetensors}",
                                            "--input", "{image.tif}", "--output", "{new.tif}"],
                                           "dropout must be from 0 to below 1"),
    "'.' as an image": (["train", "--image", ".", "--labels", "{labels.tif}", "--out",
                         "{new.safetensors}", "--steps", "1"], "is not a TIFF file"),
}


@pytest.mark.parametrize("case", FOUND)
def test_command_lines_found_by_fuzzing_end_with_a_sentence(case, files, tmp_path):
    argv, expected = FOUND[case]
    code, line = run_cli([files.get(word.strip("{}"), word) for word in argv], tmp_path)
    assert code == 2 and expected in line, line
