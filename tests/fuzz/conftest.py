def pytest_terminal_summary(terminalreporter):
    """The fuzzing's figures in the run's log: requests sent and how they were answered."""
    import sys

    module = sys.modules.get("tests.fuzz.test_schemathesis")
    for target, t in (getattr(module, "TALLY", None) or {}).items():
        terminalreporter.write_line(
            f"fuzz {target}: {t['sent']} requests, {t['2xx']} accepted, {t['4xx']} refused (4xx), "
            f"{t['5xx']} server errors; {module.EXAMPLES} examples per operation and mode")
