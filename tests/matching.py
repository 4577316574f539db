"""re.search for tests that read a value out of a page or a message: the match, or a
failure that says what was not found where (rather than None's AttributeError)."""

import re


def search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    found = re.search(pattern, text, flags)
    if found is None:
        raise AssertionError(f"{pattern!r} not found in:\n{text[:3000]}")
    return found
