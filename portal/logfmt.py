"""One shape for the log lines operators grep and ship: `event key=value key=value`.

Values with spaces, quotes or `=` are quoted (and their quotes and backslashes escaped),
so a line splits into the same fields whatever an upstream message or a customer's text
holds, and a newline in a value never starts a forged line.
"""

from decimal import Decimal


def _value(value) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal):
        text = f"{value}"
    elif value is None:
        text = ""
    else:
        text = str(value)
    if text == "" or any(c.isspace() or c in '"=\\' for c in text) or not text.isprintable():
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        text = f'"{escaped}"'
    return text


def logfmt(event: str, **fields) -> str:
    """ "sync license=ACME-1 pages=3 error=\"Upstream answered 503\" " — in argument order."""
    return " ".join([event, *(f"{key}={_value(value)}" for key, value in fields.items())])
