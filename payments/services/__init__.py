"""Card payments by subject: cards, paying, crediting, refunds, disputes."""
