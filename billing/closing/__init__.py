"""Month close: a reconciled month no posting may enter again."""
