"""The verdict machinery: prerequisites fail once and block their dependants; transport
failures cascade the same way; owners of prerequisites run first, the rate-limit probe last."""

import requests

from cedx.inspect.framework import (
    PREREQUISITES,
    REGISTRY,
    Case,
    RecordingSession,
    check,
    execution_order,
    item_verdict,
    prerequisite,
    run_case,
)


class FakeTarget:
    def __init__(self):
        self.session = RecordingSession()


def _case(case_id, fn, item=4):
    return Case(item, case_id, "t", "s", "p", fn, ("reporting",))


def test_a_failed_prerequisite_fails_once_then_blocks():
    def needs_submit(t):
        with prerequisite("submit"):
            check(False, "the platform refused a valid report: HTTP 500")

    def fails_on_its_own(t):
        check(False, "its own reason")

    steps = {}
    first = run_case(_case("4.1", needs_submit), FakeTarget(), steps)
    second = run_case(_case("1.2", needs_submit, 1), FakeTarget(), steps)
    own = run_case(_case("6.1", fails_on_its_own, 6), FakeTarget(), steps)
    assert first.verdict == "fail" and "HTTP 500" in first.reason and steps == {"submit": "4.1"}
    assert second.verdict == "blocked" and second.blocked_by == "4.1" and "blocked by 4.1" in second.reason
    assert own.verdict == "fail" and own.blocked_by is None  # a case's own check is never "blocked"
    assert item_verdict([second]) == "blocked" and item_verdict([first, second]) == "fail"


def test_transport_failures_cascade():
    def unreachable(t):
        raise requests.ConnectionError("connection refused")

    steps = {}
    verdicts = [run_case(_case(f"7.{i}", unreachable, 7), FakeTarget(), steps).verdict for i in range(1, 4)]
    assert verdicts == ["fail", "blocked", "blocked"] and steps == {"reachable": "7.1"}


def test_owners_run_first_and_the_probe_last():
    order = [c.case_id for c in execution_order([c for c in REGISTRY if "reporting" in c.interfaces])]
    assert order[0] == PREREQUISITES["submit"] == "4.1"
    assert order[-1] == "5.5"
    acq = [c.case_id for c in execution_order([c for c in REGISTRY if "acquisition" in c.interfaces])]
    assert acq[0] == PREREQUISITES["batches"] == "A4.1"
