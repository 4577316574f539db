"""Countries a license may be billed in, and the format of a tax ID in each: the VAT
numbers of the EU countries (with their country prefix, as VIES expects them), the UK's,
and a few others'. A country without a rule takes any short ID. Only the format is
checked, never whether the number is registered."""

import re
from dataclasses import dataclass

from portal.exceptions import ApplicationError


@dataclass(frozen=True)
class TaxIdRule:
    name: str  # what the ID is called there
    pattern: str  # of the normalized ID (upper case, no spaces, dots or dashes)
    shape: str  # said to the customer when the ID does not match
    example: str


def _vat(prefix: str, body: str, shape: str, example: str) -> TaxIdRule:
    return TaxIdRule("VAT number", f"{prefix}(?:{body})", f"{prefix} followed by {shape}", example)


TAX_ID_RULES: dict[str, TaxIdRule] = {
    "AT": _vat("ATU", r"\d{8}", "8 digits", "ATU12345678"),
    "BE": _vat("BE", r"[01]\d{9}", "10 digits starting with 0 or 1", "BE0123456789"),
    "BG": _vat("BG", r"\d{9,10}", "9 or 10 digits", "BG123456789"),
    "CY": _vat("CY", r"\d{8}[A-Z]", "8 digits and a letter", "CY12345678X"),
    "CZ": _vat("CZ", r"\d{8,10}", "8 to 10 digits", "CZ12345678"),
    "DE": _vat("DE", r"\d{9}", "9 digits", "DE123456789"),
    "DK": _vat("DK", r"\d{8}", "8 digits", "DK12345678"),
    "EE": _vat("EE", r"\d{9}", "9 digits", "EE123456789"),
    "ES": _vat("ES", r"[A-Z0-9]\d{7}[A-Z0-9]", "9 letters or digits", "ESX1234567X"),
    "FI": _vat("FI", r"\d{8}", "8 digits", "FI12345678"),
    "FR": _vat(
        "FR", r"[A-HJ-NP-Z0-9]{2}\d{9}", "2 letters or digits and 9 digits", "FR12345678901"
    ),
    "GR": _vat("EL", r"\d{9}", "9 digits", "EL123456789"),
    "HR": _vat("HR", r"\d{11}", "11 digits", "HR12345678901"),
    "HU": _vat("HU", r"\d{8}", "8 digits", "HU12345678"),
    "IE": _vat(
        "IE", r"\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W]", "7 digits and 1 or 2 letters", "IE1234567T"
    ),
    "IT": _vat("IT", r"\d{11}", "11 digits", "IT12345678901"),
    "LT": _vat("LT", r"\d{9}|\d{12}", "9 or 12 digits", "LT123456789"),
    "LU": _vat("LU", r"\d{8}", "8 digits", "LU12345678"),
    "LV": _vat("LV", r"\d{11}", "11 digits", "LV12345678901"),
    "MT": _vat("MT", r"\d{8}", "8 digits", "MT12345678"),
    "NL": _vat("NL", r"\d{9}B\d{2}", "9 digits, B and 2 digits", "NL123456789B01"),
    "PL": _vat("PL", r"\d{10}", "10 digits", "PL1234567890"),
    "PT": _vat("PT", r"\d{9}", "9 digits", "PT123456789"),
    "RO": _vat("RO", r"\d{2,10}", "2 to 10 digits", "RO1234567890"),
    "SE": _vat("SE", r"\d{10}01", "12 digits ending in 01", "SE123456789001"),
    "SI": _vat("SI", r"\d{8}", "8 digits", "SI12345678"),
    "SK": _vat("SK", r"\d{10}", "10 digits", "SK1234567890"),
    "GB": _vat("GB", r"\d{9}|\d{12}|GD\d{3}|HA\d{3}", "9 or 12 digits", "GB123456789"),
    "CH": TaxIdRule(
        "UID", r"CHE\d{9}(?:MWST|TVA|IVA)?", "CHE and 9 digits", "CHE-123.456.789 MWST"
    ),
    "NO": TaxIdRule("VAT number", r"NO\d{9}(?:MVA)?", "NO, 9 digits and MVA", "NO123456789MVA"),
    "AU": TaxIdRule("ABN", r"\d{11}", "11 digits", "51824753556"),
    "IN": TaxIdRule(
        "GSTIN", r"\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]", "15 characters", "22AAAAA0000A1Z5"
    ),
}

# The countries offered, by ISO 3166-1 alpha-2 code: the ones with a rule and the common
# others (any other ID format is accepted for them).
COUNTRIES: dict[str, str] = {
    "AR": "Argentina",
    "AT": "Austria",
    "AU": "Australia",
    "BE": "Belgium",
    "BG": "Bulgaria",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CL": "Chile",
    "CN": "China",
    "CO": "Colombia",
    "CY": "Cyprus",
    "CZ": "Czechia",
    "DE": "Germany",
    "DK": "Denmark",
    "EE": "Estonia",
    "EG": "Egypt",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GB": "United Kingdom",
    "GR": "Greece",
    "HK": "Hong Kong",
    "HR": "Croatia",
    "HU": "Hungary",
    "ID": "Indonesia",
    "IE": "Ireland",
    "IL": "Israel",
    "IN": "India",
    "IS": "Iceland",
    "IT": "Italy",
    "JP": "Japan",
    "KR": "South Korea",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "LV": "Latvia",
    "MT": "Malta",
    "MX": "Mexico",
    "MY": "Malaysia",
    "NG": "Nigeria",
    "NL": "Netherlands",
    "NO": "Norway",
    "NZ": "New Zealand",
    "PH": "Philippines",
    "PL": "Poland",
    "PT": "Portugal",
    "RO": "Romania",
    "RS": "Serbia",
    "SA": "Saudi Arabia",
    "SE": "Sweden",
    "SG": "Singapore",
    "SI": "Slovenia",
    "SK": "Slovakia",
    "TH": "Thailand",
    "TR": "Türkiye",
    "TW": "Taiwan",
    "UA": "Ukraine",
    "AE": "United Arab Emirates",
    "US": "United States",
    "VN": "Vietnam",
    "ZA": "South Africa",
}

# Where the tax on a sale is called VAT on the documents.
VAT_COUNTRIES = {code for code, rule in TAX_ID_RULES.items() if rule.name == "VAT number"}


def tax_id_normalize(tax_id: str) -> str:
    return re.sub(r"[\s.\-]", "", tax_id or "").upper()


def tax_id_check(*, country: str, tax_id: str) -> str:
    """The tax ID as stored (normalized), or ApplicationError naming the field and, where
    the country has a rule, the shape expected there."""
    normalized = tax_id_normalize(tax_id)
    if not normalized:
        return ""
    if not country:
        raise ApplicationError("Tax ID: choose the country it was issued in.", field="country")
    rule = TAX_ID_RULES.get(country)
    if rule is None:
        if not re.fullmatch(r"[A-Z0-9/]{2,32}", normalized):
            raise ApplicationError("Tax ID: use 2 to 32 letters and digits.", field="tax_id")
        return normalized
    if not re.fullmatch(rule.pattern, normalized):
        raise ApplicationError(
            f"Tax ID: a {rule.name} in {COUNTRIES[country]} is {rule.shape} "
            f"(for example {rule.example}).",
            field="tax_id",
        )
    return normalized
