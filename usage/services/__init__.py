"""Writes of the usage app, one module per subject: a record checked (`records`), the sync
of a license (`sync`) and what it came to (`results`), the feed of licenses with new usage
(`feed`), and the manual-refresh claim (`refresh`)."""
