"""Credits a person gives: the four-eyes limit and its approvals."""
