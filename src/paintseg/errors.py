"""Errors a user can cause and fix. The message is one clear sentence, shown as is."""

import errno
import os


class PaintsegError(ValueError):
    """A problem with the user's input, files or settings (not a bug)."""


class InputError(PaintsegError):
    """Wrong shapes, no strokes, one class only, NaN values, wrong channel count."""


class FileFormatError(PaintsegError):
    """A file that cannot be read: corrupt, truncated, or not what its name says."""


_OS_HINTS = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some disk space",
    errno.EACCES: "choose a place you may write to",
    errno.EPERM: "choose a place you may write to",
    errno.EROFS: "choose a place you may write to",
    errno.EISDIR: "give a file name, not a folder",
    errno.ENOTDIR: "check the path: part of it is a file, not a folder",
}


def describe_os_error(error: OSError) -> str:
    """One sentence for a file-system error: the file, what the system said, what to do."""
    if isinstance(error, FileNotFoundError) and error.filename:
        folder = os.path.dirname(os.path.abspath(error.filename))
        if not os.path.isdir(folder):
            return f"The folder {folder} does not exist: create it or choose another."
        return f"{error.filename} does not exist."
    what = (error.strerror or str(error)).lower()
    hint = _OS_HINTS.get(error.errno, "check the path and try again")
    where = f"Cannot use {error.filename}: " if error.filename else "A file operation failed: "
    return f"{where}{what}; {hint}."
