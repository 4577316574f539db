"""Monthly statements: opening, movements and closing of a license's month."""
