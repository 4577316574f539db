"""Plain-text emails are plain text (issue 18: "Smith &amp; Sons" in a low-balance email):
every plain-text email template renders what it is given as is, whichever app sends it —
low-balance alerts, flag answers, auto top-ups, disputes, password resets. (HTML parts stay
escaped: tests/billing/test_alerts.py.)"""

from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import render_to_string

NAME = 'Smith & Sons <Data> "Quoted" O\'Brien'
TEMPLATES = sorted(
    str(p.relative_to(Path(settings.BASE_DIR) / "templates"))
    for p in (Path(settings.BASE_DIR) / "templates").glob("*/email/*.txt")
)


def test_there_are_plain_text_emails_to_check():
    assert len(TEMPLATES) >= 10


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_plain_text_email_is_not_html_escaped(template):
    context = {
        "license": {"name": NAME, "key": "SMITH-0001"},
        "flag": {"record_id": NAME, "answer": NAME, "evidence": {}},
        "answer": NAME,
        "message": NAME,
        "why": NAME,
        "email": NAME,
        "uid": "MQ",
        "token": "set-password",
        "base_url": "https://portal.example.com",
    }
    text = render_to_string(template, context)
    assert "&amp;" not in text and "&lt;" not in text and "&#x27;" not in text, text
    source = (Path(settings.BASE_DIR) / "templates" / template).read_text()
    if "license.name" in source:
        assert NAME in text
