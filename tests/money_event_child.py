"""A money-event consumer killed between its claim and its commit, as a worker dying there
would be: `python -m tests.money_event_child NAME` runs that consumer with its connection's
commit held back. At the commit of the run's first transaction (the cursor claimed, the
events handled, the cursor moved) it prints one JSON line, what that transaction holds and
the pid of its database backend, and waits on stdin for the kill
(tests/billing/test_money_events.py). Nothing of the portal is changed: only the database
connection's commit, the moment a real kill would fall in.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from billing.events.consumers import money_event_consumer_run, money_event_consumers  # noqa: E402

_HOLDS = """
SELECT (SELECT array[xact_id, event_id] FROM billing_moneyeventcursor WHERE name = %s),
       (SELECT count(*) FROM api_webhookevent),
       (SELECT count(*) FROM payments_payment WHERE source = 'auto_topup')
"""


def main(name: str) -> None:
    [consumer] = [c for c in money_event_consumers() if c.name == name]

    def commit_held_back() -> None:
        with connection.cursor() as cursor:
            cursor.execute(_HOLDS, [name])
            position, webhook_events, topups = cursor.fetchone()
            backend_pid = cursor.connection.info.backend_pid
        held = {"cursor": position, "webhook_events": webhook_events, "topups": topups}
        sys.stdout.write(json.dumps({"holds": held, "backend_pid": backend_pid}) + "\n")
        sys.stdout.flush()
        sys.stdin.readline()  # the parent kills this process before it answers
        raise SystemExit("not killed")

    connection.commit = commit_held_back  # type: ignore[method-assign]
    money_event_consumer_run(consumer)


if __name__ == "__main__":
    main(sys.argv[1])
