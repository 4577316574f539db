"""Text people type into the portal: refused when it carries characters nobody can see.

Control characters (NUL, and tab or line breaks in one-line fields), bidirectional
overrides (U+202E, which can make "gnp.exe" read as "exe.png") and zero-width characters
change what a name or a reason *looks* like without showing themselves. They are refused
with a message naming the character, never silently dropped. Markup and formula prefixes
(`<script>`, `=`, `+`) are not refused: templates escape them and CSV cells neutralize them.
"""

import unicodedata
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError

_LINE_BREAKS = "\n\r"


def invisible_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character `text` must not hold, described for people, or None."""
    for ch in text:
        if multiline and (ch in _LINE_BREAKS or ch == "\t"):
            continue
        category = unicodedata.category(ch)
        if category == "Cc":
            name = {"\x00": "NUL", "\t": "tab", "\n": "line break", "\r": "line break"}.get(ch)
            return name or f"control character U+{ord(ch):04X}"
        if category in ("Cf", "Zl", "Zp", "Co", "Cs", "Cn"):
            return f"invisible or text-direction character U+{ord(ch):04X}"
    return None


if TYPE_CHECKING:
    _FormBase = forms.Form
else:
    _FormBase = object


class VisibleTextFormMixin(_FormBase):
    """Refuses invisible characters in every text field of a form (passwords and hidden
    fields excepted), checking what was typed before any field cleans it up."""

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        for name, field in self.fields.items():
            if not isinstance(field, forms.CharField) or isinstance(
                field.widget, forms.PasswordInput | forms.HiddenInput
            ):
                continue
            raw = self.data.get(self.add_prefix(name))
            if not isinstance(raw, str):
                continue
            multiline = isinstance(field.widget, forms.Textarea)
            problem = invisible_character(raw, multiline=multiline)
            if problem:
                self.add_error(
                    name, ValidationError(f"Remove the {problem}: it is not allowed here.")
                )
        return cleaned
