"""The one parser of amounts people type, for every form (money, thresholds, prices), and of
counts (CountField).

Only the ASCII digits 0-9 are digits here. Python's `\\d`, `int()` and `Decimal()` read the
digits of every script, so "１０" (fullwidth) was saved as 10, "٥٠" (Arabic-Indic) as 50 and
"੧੦.੦੦" (Gurmukhi, which reads like "90.00") credited $10: each is refused, by name, with
what to type instead (`foreign_digits`).

A point is the decimal separator. A comma is accepted only as a thousands separator in its
right places ("1,000.50", "12,345"); anything else with a comma ("0,50", "1,5",
"1.000,50") is refused with a message showing how to write it, never guessed: a decimal
comma read as a thousands separator once recorded $0.50 as $50.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

_AMOUNT_RE = re.compile(r"^-?(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.(?P<frac>[0-9]+))?$")


def foreign_digits(text: str) -> str:
    """The characters of `text` that are digits or numbers in some script but not the ASCII
    0-9 ("١٠" → "١٠", "²" → "²", "10" → ""): what makes it not an amount or a count."""
    return "".join(c for c in text if c.isnumeric() and c not in "0123456789")


def _foreign_digits_message(text: str) -> str:
    return (
        f"'{text}' has digits other than 0-9 ({foreign_digits(text)}); type the number "
        "with the digits 0 to 9"
    )


class ForeignDigits(ValueError):
    """A number typed with digits of another script (the message says which and what to do)."""


def _how_to_write(text: str) -> str:
    return (
        f"'{text}' is ambiguous: write a point for decimals and nothing or a comma between "
        "thousands, e.g. 0.50, 1.5 or 1,000.50"
    )


def parse_amount(text: str, *, places: int, max_value: Decimal | None = None) -> Decimal:
    """What a person typed ("12.5", "$1,000.00") as an exact Decimal with at most `places`
    decimals, never rounded; ValueError with a message for people otherwise."""
    cleaned = (text or "").strip()
    if foreign_digits(cleaned):
        raise ForeignDigits(_foreign_digits_message(cleaned))
    sign = "-" if cleaned.startswith("-") else ""
    cleaned = sign + cleaned.removeprefix("-").strip().removeprefix("$").strip()
    match = _AMOUNT_RE.match(cleaned)
    if not cleaned or match is None or (match["int"] is None and match["frac"] is None):
        if "," in cleaned:
            raise ValueError(_how_to_write(text.strip()))
        try:  # "1e400": an amount, but not one anybody may type
            number = Decimal(cleaned)
            if max_value is not None and number.is_finite() and abs(number) > max_value:
                raise ValueError(f"amounts are at most {max_value:,}")
        except InvalidOperation:
            pass
        raise ValueError(f"'{text.strip()}' is not an amount")
    try:
        amount = Decimal(cleaned.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise ValueError(f"'{text.strip()}' is not an amount") from None
    if max_value is not None and amount > max_value:
        raise ValueError(f"amounts are at most {max_value:,}")
    if match["frac"] and len(match["frac"]) > places:
        raise ValueError(f"amounts have at most {places} decimal places")
    return amount


# Wording of the number fields that were Django DecimalFields (thresholds): kept for them.
DECIMAL_FIELD_MESSAGES = {
    "invalid": "Enter a number.",
    "max_places": "Ensure that there are no more than {places} decimal places.",
    "min_value": "Ensure this value is greater than or equal to {min_value}.",
}


class AmountField(forms.CharField):
    """A form field for an amount: `parse_amount`, then a range. Typed as text, so the
    browser never reinterprets it; shown back as typed. `messages` may reword the plain
    refusals ("invalid", "max_places", "min_value"); an ambiguous comma always gets the
    one message that shows how to write it."""

    def __init__(
        self,
        *,
        places: int = 6,
        min_value: Decimal | None = None,
        max_value: Decimal | None = None,
        allow_zero: bool = False,
        messages: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.places, self.min_value, self.max_value = places, min_value, max_value
        self.allow_zero = allow_zero
        self.messages = messages or {}
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return value if isinstance(value, str) or value is None else f"{value}"

    def clean(self, value: Any) -> Decimal | None:
        text = super().clean(value)
        if text in self.empty_values:
            return None
        try:
            amount = parse_amount(text, places=self.places, max_value=self.max_value)
        except ForeignDigits as exc:  # shown after the field's label, as every refusal
            raise ValidationError(f"{exc}.") from exc
        except ValueError as exc:
            message = str(exc)
            if "ambiguous" not in message:
                key = "max_places" if "decimal places" in message else "invalid"
                if "at most" in message and key == "invalid":
                    key = "max_value"
                if key in self.messages:
                    raise ValidationError(
                        self.messages[key].format(places=self.places, max_value=self.max_value)
                    ) from exc
            raise ValidationError(f"{message[0].upper()}{message[1:]}.") from exc
        if self.min_value is not None and amount < self.min_value:
            template = self.messages.get("min_value", "Enter an amount of at least {min_value}.")
            raise ValidationError(template.format(min_value=self.min_value))
        if not self.allow_zero and amount <= 0:
            raise ValidationError("Enter an amount greater than zero.")
        return amount


class CountField(forms.IntegerField):
    """A whole number a person types (a count: top-ups a month…): the ASCII digits 0-9 only,
    as for amounts; Django's IntegerField reads "١٠" as 10."""

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str) and foreign_digits(value):
            raise ValidationError(f"{_foreign_digits_message(value.strip())}.")
        return super().to_python(value)
