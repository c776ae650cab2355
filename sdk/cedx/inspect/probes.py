"""The rate-limit probe, shared by both interfaces (cases 5.5 and A5.5).

Opt-in and bounded: it sends at most ``target.rate_limit_budget`` cheap reads, and declines
(not applicable) when the window holds more requests than that."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .framework import CaseFailed, NotApplicable, check

if TYPE_CHECKING:
    import requests

    from .target import Target


def _problem_429(r: requests.Response) -> None:
    check(r.headers.get("content-type", "").startswith("application/problem+json"),
          f"429 answered as {r.headers.get('content-type')}, not application/problem+json")
    check(r.json().get("code") == "RATE_LIMITED", f"429 with code {r.json().get('code')}, not RATE_LIMITED")
    retry = r.headers.get("Retry-After", "")
    check(retry.isdigit(), f"Retry-After {retry!r} is not a number of seconds")


def probe_rate_limit(t: Target, path: str) -> None:
    budget = t.rate_limit_budget
    if budget <= 0:
        raise NotApplicable("opt-in: the probe sends up to N requests to exhaust the limit (--rate-limit-probe N); "
                            "agree it with the operator before inspecting a production system")
    t.session.polite = False  # here a 429 is what is looked for, not something to wait out
    try:
        _probe(t, budget, path)
    finally:
        t.session.polite = True


def _probe(t: Target, budget: int, path: str) -> None:
    def get(token: str | None = None) -> requests.Response:
        return t.session.get(f"{t.url}{path}", headers={"Authorization": f"Bearer {token or t.token()}"})

    first = get()
    if first.status_code == 429:  # the earlier cases used the window up: the limit is enforced
        _problem_429(first)
        return
    check(first.status_code == 200, f"HTTP {first.status_code}")
    try:
        remaining, limit = int(first.headers["RateLimit-Remaining"]), int(first.headers["RateLimit-Limit"])
    except (KeyError, ValueError) as exc:
        raise CaseFailed(f"RateLimit-Remaining / RateLimit-Limit missing or not integers: {exc}") from exc
    if remaining + 1 > budget - 2:
        raise NotApplicable(f"{remaining} requests remain in the window (limit {limit}); the probe budget is {budget}")
    sent, last, reset = 1, remaining, first.headers.get("RateLimit-Reset", "")
    while sent < budget:
        r = get()
        sent += 1
        if r.status_code == 429:
            _problem_429(r)
            check(last == 0, f"429 while the previous answer said RateLimit-Remaining: {last} — the headers do not tell the truth")
            break
        check(r.status_code == 200, f"HTTP {r.status_code} after {sent} requests")
        remaining = int(r.headers.get("RateLimit-Remaining", "-1"))
        if last == 0 and not (reset.isdigit() and int(reset) <= 1):
            raise CaseFailed(f"RateLimit-Remaining was 0 yet request {sent} was answered 200: the limit is not enforced")
        last, reset = remaining, r.headers.get("RateLimit-Reset", "")
    else:
        raise CaseFailed(f"{sent} requests (limit {limit}) and no 429: the limit is not enforced")
    if not t.client_id:
        return  # a static bearer token: there is no fresh token to ask for
    # The limit belongs to the client, not to the token string: a fresh token must not reset it.
    form = {"grant_type": "client_credentials", "client_id": t.client_id, "client_secret": t.client_secret}
    if t.default_scope:
        form["scope"] = t.default_scope
    resp = t.session.post(f"{t.url}/oauth/token", data=form)
    if resp.status_code == 429:
        return  # the token endpoint is limited as well
    check(resp.status_code == 200, f"token request answered {resp.status_code}")
    again = get(resp.json()["access_token"])
    check(again.status_code == 429, f"a fresh token of the same client was answered {again.status_code}: "
                                    "the limit is kept per token, not per client")
