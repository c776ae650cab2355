"""A separate process that submits through the outbox (killed with SIGKILL by the tests).

usage: python -m tests.platform.outbox_worker URL OUTBOX CREDIT_CODE SECRET KEY.pem CERT.pem CA.pem N|deliver
"""

import sys
import time
from pathlib import Path

from cedx.generated import models
from cedx.generated.client import ReportingClient
from cedx.runtime.client import RetryPolicy, TokenProvider
from cedx.runtime.outbox import Outbox
from cedx.trust import load_private_key

from ..spec.conftest import load_example

MONTHS = ["01", "03", "05", "07", "08", "10", "12"]  # 31-day months (unit running hours)


def periods(n: int) -> list[str]:
    return [f"{2001 + i // len(MONTHS)}-{MONTHS[i % len(MONTHS)]}" for i in range(n)]


def main() -> None:
    url, box, code, secret, key, cert, ca, mode = sys.argv[1:9]
    client = ReportingClient(url, token_provider=TokenProvider(f"{url}/oauth/token", f"{code}-erp", secret),
                             signing_key=load_private_key(Path(key).read_bytes()), signing_certificate=Path(cert).read_bytes(),
                             trust_anchors=[Path(ca).read_bytes()], retry=RetryPolicy(attempts=3, base=0.05))
    outbox = Outbox(box, client)
    if mode != "deliver":
        import uuid

        for period in periods(int(mode)):
            report = models.MonthlyReport.model_validate(load_example("monthly-report-power.json")["payload"])
            report.period, report.report_id = period, uuid.uuid4()
            outbox.enqueue(report)
        print("enqueued", flush=True)
    while True:
        n = outbox.deliver(limit=1)
        if n == 0 and outbox.counts().get("pending", 0) == 0:
            break
        print("delivered", outbox.counts().get("delivered", 0), flush=True)
        time.sleep(0.05)
    print("done", outbox.counts(), flush=True)


if __name__ == "__main__":
    main()
