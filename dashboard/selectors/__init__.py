"""Reads of the customer pages, one module per subject: the overview's basis and sections
(`basis`, `overview`, `transactions`, `prices`) and the usage explorer (`explorer`)."""
