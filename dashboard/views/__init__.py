"""The customer pages, one module per subject; the dashboard app owns every customer page
(docs/architecture.md). Each view resolves its license through LicenseMixin (a stranger
gets a 404), reads through the selectors of billing, usage, payments, api and this app, and
writes through their services."""
