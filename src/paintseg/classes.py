"""The class table: names, colours and roles of the painted classes (label value = index + 1),
and the tables a new annotation layer, a new class and a list of names start with."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from paintseg.errors import InputError

ROLES = ("background", "object", "boundary")

_BACKGROUND_NAMES = ("background", "bg", "back")
_BOUNDARY_NAMES = ("boundary", "border", "edge", "contour", "outline", "membrane", "wall")

# Easy to tell apart on dark and bright images; the first is for a background class.
_PALETTE = (
    "#808080",
    "#ff3b30",
    "#34c759",
    "#0a84ff",
    "#ffcc00",
    "#af52de",
    "#ff9500",
    "#5ac8fa",
    "#ff2d55",
    "#a2845e",
)


@dataclass
class ClassInfo:
    """One class of the class table.

    Parameters
    ----------
    name : str
        Name shown to the user, e.g. ``"nucleus"``.
    color : str
        Colour as ``"#rrggbb"``.
    role : str
        ``"background"``, ``"object"`` (becomes instances) or ``"boundary"`` (splits
        touching objects).
    """

    name: str
    color: str = "#808080"
    role: str = "object"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(
                f"Class {self.name!r} has role {self.role!r}; use one of {', '.join(ROLES)}."
            )

    @staticmethod
    def default_role(name: str) -> str:
        """Guess the role of a class from its name (``"Background"`` -> ``"background"``)."""
        key = name.strip().lower()
        if key == "bg" or key.startswith(_BACKGROUND_NAMES):
            return "background"
        if any(word in key for word in _BOUNDARY_NAMES):
            return "boundary"
        return "object"

    def to_dict(self) -> dict[str, str]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassInfo:
        """Inverse of :meth:`to_dict`; a missing role is guessed from the name."""
        name = str(data["name"])
        return cls(
            name=name,
            color=str(data.get("color", "#808080")),
            role=str(data.get("role") or cls.default_role(name)),
        )


def default_colors(n: int) -> list[str]:
    """``n`` distinct colours as ``"#rrggbb"``: a fixed palette, then evenly spaced hues."""
    colors = list(_PALETTE[:n])
    golden = 0.618033988749895
    for i in range(n - len(colors)):
        r, g, b = colorsys.hsv_to_rgb((0.11 + i * golden) % 1.0, 0.75, 0.95)
        colors.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colors


def default_classes() -> list[ClassInfo]:
    """The class table a new annotation layer starts with: background and cell."""
    return classes_from_names(["background", "cell"])


def new_class(existing: Sequence[ClassInfo]) -> ClassInfo:
    """A class to append to ``existing``: a free name and a colour not used yet."""
    names = {c.name for c in existing}
    number = len(existing) + 1
    while f"class {number}" in names:
        number += 1
    used = {c.color.lower() for c in existing}
    palette = default_colors(len(existing) + 12)
    color = next(c for c in palette if c.lower() not in used)
    return ClassInfo(f"class {number}", color, "object")


def classes_from_names(names: Sequence[str]) -> list[ClassInfo]:
    """A class per name, in the default colours; ``"membrane:boundary"`` sets the role, a bare
    name gets the role its name suggests (`ClassInfo.default_role`)."""
    return [ClassInfo(name, color, role) for (name, role), color
            in zip(map(_name_and_role, names), default_colors(len(names)), strict=True)]


def _name_and_role(text: str) -> tuple[str, str]:
    name, _, role = text.rpartition(":")
    if name and role in ROLES:
        return name, role
    return text, ClassInfo.default_role(text)
