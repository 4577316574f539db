"""The apps form a stack and every arrow points down (docs/architecture.md): a lower app never
imports a higher one, not even inside a function, and never names a higher app's URLs."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# From the bottom up; an app may import only the apps before it.
# payments sits on usage's level (neither imports the other); listing it above usage also
# holds that usage never imports payments, and below console and api that it imports
# neither. provider (service tokens, push ingestion, the gate) sits on usage and billing
# and below the customer-facing apps, which never import it.
LAYERS = [
    "portal",
    "accounts",
    "billing",
    "usage",
    "payments",
    "provider",
    "console",
    "api",
    "dashboard",
    "demo",
]


def _modules(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def _imported_apps(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


@pytest.mark.parametrize("app", LAYERS)
def test_an_app_imports_only_the_apps_below_it(app):
    # portal/settings/ and portal/urls.py compose the project; they name apps as strings
    # (INSTALLED_APPS, include("dashboard.urls")), never by import.
    above = set(LAYERS[LAYERS.index(app) + 1 :])
    upward = {
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(_imported_apps(path) & above))}"
        for path in _modules(app)
        if _imported_apps(path) & above
    }
    assert not upward, upward


@pytest.mark.parametrize(
    "app", ["portal", "accounts", "billing", "usage", "payments", "provider", "api"]
)
def test_no_lower_app_names_a_customer_page_url(app):
    # A lower app links to a license's pages only through License.get_absolute_url().
    named = re.compile(r"""["']dashboard:[a-z_]+["']""")
    places = [*_modules(app), *(ROOT / "templates" / app).rglob("*.html")]
    places += [*(ROOT / "templates" / app).rglob("*.txt")]
    offending = [
        str(path.relative_to(ROOT))
        for path in places
        if "settings" not in path.parts and named.search(path.read_text(encoding="utf-8"))
    ]
    assert not offending, offending


def test_billing_sends_no_signal_up():
    # What happened to money is written down (billing/events), never announced by a signal
    # whose receivers would run in the posting's transaction: billing defines no Signal.
    defined = [
        str(path.relative_to(ROOT))
        for path in _modules("billing")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Signal"
    ]
    assert not defined, defined


# A module holds one concept (CONVENTIONS.md): past this many lines one has usually moved in.
MODULE_MAX_LINES = 450


@pytest.mark.parametrize("app", LAYERS)
def test_every_module_names_its_concept_and_stays_small(app):
    # Each non-empty module opens with a docstring naming its one concept, and none grows
    # past MODULE_MAX_LINES (migrations aside): split it by concept when one does.
    unnamed, big = [], []
    for path in _modules(app):
        text = path.read_text(encoding="utf-8")
        if text.strip() and ast.get_docstring(ast.parse(text)) is None:
            unnamed.append(str(path.relative_to(ROOT)))
        if len(text.splitlines()) > MODULE_MAX_LINES:
            big.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
    assert not unnamed, f"modules without an opening docstring: {unnamed}"
    assert not big, big


@pytest.mark.parametrize("app", LAYERS)
def test_no_assert_guards_app_code(app):
    # `python -O` strips asserts: a check the code relies on raises an exception of its own.
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _modules(app)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert not found, found
