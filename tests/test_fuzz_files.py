"""Fuzzed files: every damaged or odd input reads correctly or raises PaintsegError naming
the file; nothing else escapes. ``PAINTSEG_FUZZ_EXAMPLES`` raises the number of examples."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paintseg.errors import PaintsegError
from paintseg.testing.files import (
    DTYPES,
    FILE_KINDS,
    SHAPES,
    damaged_file,
    extreme_tiff,
    read_all,
    valid_files,
)

EXAMPLES = int(os.environ.get("PAINTSEG_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


class Originals(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<valid files: {', '.join(self)}>"


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    return Originals(valid_files(tmp_path_factory.mktemp("valid")))


@pytest.mark.parametrize("kind", FILE_KINDS)
@FUZZ
@given(data=st.data())
def test_damaged_files_read_or_give_a_sentence_naming_them(kind, originals, tmp_path, data):
    damaged_file(originals, kind, tmp_path, data.draw)


@FUZZ
@given(shape=st.sampled_from(SHAPES), dtype=st.sampled_from(DTYPES))
def test_extreme_shapes_and_dtypes_read_or_give_a_sentence(shape, dtype, tmp_path):
    extreme_tiff(shape, dtype, tmp_path)


def test_damaged_ome_xml_gives_a_sentence(originals, tmp_path):
    """Found by benchmarks/fuzz.py: a broken tag in the OME-XML raised ParseError."""
    path = tmp_path / "broken_xml.ome.tif"
    path.write_bytes(originals["ome.tif"].replace(b"</Pixels>", b"</Pixelz>", 1))
    with pytest.raises(PaintsegError, match="broken_xml.ome.tif has damaged metadata"):
        read_all("ome.tif", path)
