"""A license's history as the customer reads it: transactions and the CSV download."""
