"""Opening a model file for the CLI and the dock: any failure is a sentence naming the file.

``Segmenter.load`` reads the weights and the JSON settings without running code; settings
that JSON allows but the network refuses (a damaged file: a dropout of 4, a negative width)
fail while the network is built, with the library's own exception. Here they become a
``FileFormatError`` that names the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from paintseg.errors import FileFormatError, InputError, PaintsegError


def open_model(path: str | os.PathLike, device: str = "auto", option: str = "the model"):
    """Load the model file ``path`` (``option``: how the user named it, for messages).

    Raises
    ------
    PaintsegError
        If ``path`` is a folder, missing, or not a usable paintseg model file.
    """
    from paintseg.learn.model import Segmenter

    if Path(path).is_dir():
        raise InputError(f"{path} is a folder: give {option} a model file "
                         "(.safetensors, saved by paintseg).")
    try:
        return Segmenter.load(path, device=device)
    except (PaintsegError, OSError):
        raise
    except Exception as error:  # the network refused the file's settings
        raise FileFormatError(f"{Path(path).name} is damaged: its settings do not make a "
                              f"network ({type(error).__name__}: {error}).") from error
