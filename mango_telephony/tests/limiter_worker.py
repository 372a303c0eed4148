"""One Odoo worker of ``test_shared_rate_limit``, in a process of its own.

It loads the database's registry as a server worker does, builds the account's
client through ``mango.account._mango_client()`` (what click-to-call uses), says
``ready``, and on ``go`` sends click-to-call requests from several threads. It
prints what went wrong, as JSON, on its last line. The account is built in memory
(``new``): the test's own records are not committed, and the limiter needs none.

Run by the test: ``python limiter_worker.py '<json arguments>'``.
"""

import json
import sys
import threading


def main():
    args = json.loads(sys.argv[1])
    import odoo
    from odoo.modules.registry import Registry
    from odoo.tools import config

    config.parse_config(args["odoo_args"])
    registry = Registry(args["db"])
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        account = env["mango.account"].new(args["account"])
        clients = [account._mango_client() for _ in range(args["threads"])]
    failures = []

    def send(client):
        for _ in range(args["calls"]):
            try:
                client.callback(args["extension"], args["number"])
            except Exception as exc:  # noqa: BLE001 - reported to the test
                failures.append(f"{type(exc).__name__}: {exc}")

    # The parent reads its lines: stdout is this worker's channel, not a log.
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sys.stdout.write(json.dumps({"failures": failures}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
