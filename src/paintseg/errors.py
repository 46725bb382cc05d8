"""Errors a user can cause and fix. The message is one clear sentence, shown as is."""


class PaintsegError(ValueError):
    """A problem with the user's input, files or settings (not a bug)."""


class InputError(PaintsegError):
    """Wrong shapes, no strokes, one class only, NaN values, wrong channel count."""


class FileFormatError(PaintsegError):
    """A file that cannot be read: corrupt, truncated, or not what its name says."""
