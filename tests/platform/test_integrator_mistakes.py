"""The mistakes an ERP/MES integrator makes in the first hour, against the real platform: each
one is a typed cedx error that names what to fix, raised before anything is sent where it can
be, never a raw TypeError/AttributeError from deep inside (issue 16)."""

import subprocess
import sys
import uuid
import warnings

import pytest
from sqlalchemy import func, select

import cedx
from cedx.generated import models
from cedx.platform.db import SubmissionRow
from cedx.runtime.client import RetryPolicy, TokenProvider
from cedx.runtime.outbox import Outbox
from cedx.trust import x509 as tx


def _stored(env, period):
    with env.admin.sessions() as s:
        return s.scalar(select(func.count()).select_from(SubmissionRow).where(
            SubmissionRow.credit_code == env.power.credit_code, SubmissionRow.period == period))


def _report(env, period):
    report = env.power.report()
    report.period, report.report_id = period, uuid.uuid4()
    return report


def _breaking_r_pow_004(env, february):
    return _report(env, february)  # the example's 744 running hours do not fit February


def test_the_outbox_parks_a_refused_item_with_its_problem_items(env, tmp_path):
    """A 422 with field items used to crash deliver() (AttributeError: Issue has no __dict__)."""
    client = env.client(env.power, validate=False)  # the platform, not the client, refuses it
    box = Outbox(tmp_path / "o.db", client)
    item = box.enqueue(_breaking_r_pow_004(env, "2015-02"))
    assert box.deliver() == 0
    parked = box.item(item)
    assert parked.state == "failed" and box.counts() == {"failed": 1}
    assert parked.last_error.startswith("422 RULE_VIOLATION")
    assert '"rule": "R-POW-004"' in parked.last_error and "$.payload.power.units[0]" in parked.last_error


def test_the_outbox_refuses_to_store_what_it_could_not_verify_the_receipt_of(env, tmp_path):
    client = env.client(env.power, trust_anchors=None)
    box = Outbox(tmp_path / "o.db", client)
    with pytest.raises(cedx.ConfigurationError, match="trust_anchors"):
        box.enqueue(_report(env, "2015-03"))
    assert box.counts() == {}


@pytest.mark.parametrize("anchors, words", [
    ([b"not a certificate"], "trust_anchors[0] is not a CA certificate"),
    ([b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"], "trust_anchors[0] is not a CA certificate"),
])
def test_unusable_trust_anchors_are_refused_before_the_report_is_sent(env, anchors, words):
    """They used to be found only on the receipt: the report was stored, the caller got an error
    and a retry a 409."""
    client = env.client(env.power, trust_anchors=anchors)
    with pytest.raises(cedx.ConfigurationError) as exc:
        client.submit_monthly_report(_report(env, "2015-05"))
    assert words in str(exc.value)
    assert _stored(env, "2015-05") == 0


def test_keys_and_certificates_given_as_text_or_file_names_are_refused_when_the_client_is_made(env):
    ca_pem = tx.to_pem(env.ca)
    cases = [
        (dict(trust_anchors=["platform-ca.pem"]), "trust_anchors[0] must be a certificate as PEM or DER bytes, not str"),
        (dict(trust_anchors=[ca_pem.decode()]), "Path(...).read_bytes()"),
        (dict(trust_anchors=ca_pem), "trust_anchors is a list of CA certificates"),
        (dict(signing_certificate="entity.pem"), "signing_certificate must be a certificate as PEM or DER bytes"),
        (dict(signing_key=env.power.key.to_pem()), "signing_key is a key object, not the key file or its bytes"),
        (dict(signing_key="entity.key.pem"), "cedx.load_private_key(Path('entity.key.pem').read_bytes())"),
        (dict(token_provider="erp-secret-0123456789"), "token_provider is a cedx.TokenProvider(token_url, client_id"),
        (dict(token_provider=None, token=env.tokens(env.power)), "a cedx.TokenProvider goes in token_provider="),
    ]
    for options, words in cases:
        with pytest.raises(cedx.ConfigurationError) as exc:
            env.client(env.power, **options)
        assert words in str(exc.value), options


def test_a_wrong_token_url_is_a_not_found_naming_the_url(env):
    wrong = f"{env.url}/token"
    client = cedx.ReportingClient(env.url, token_provider=TokenProvider(wrong, "x", "y"), trust_anchors=[env.ca],
                                  retry=RetryPolicy(attempts=1))
    with pytest.raises(cedx.NotFoundError) as exc:
        client.list_submissions()
    assert exc.value.code == "NOT_FOUND" and wrong in str(exc.value)


def test_token_providers_of_the_other_kind_are_refused(env):
    pytest.importorskip("httpx")
    tokens = cedx.AsyncTokenProvider(f"{env.url}/oauth/token", "x", "y")
    with pytest.raises(cedx.ConfigurationError, match="AsyncTokenProvider is for the asyncio clients"):
        cedx.ReportingClient(env.url, token_provider=tokens, trust_anchors=[env.ca])
    with pytest.raises(cedx.ConfigurationError, match="TokenProvider is for the blocking clients"):
        cedx.AsyncReportingClient(env.url, token_provider=env.tokens(env.power), trust_anchors=[env.ca])


def test_a_refusal_says_which_rule_and_path_in_its_message(env):
    client = env.client(env.power, validate=False)
    with pytest.raises(cedx.UnprocessableError) as exc:
        client.submit_monthly_report(_breaking_r_pow_004(env, "2014-02"))
    assert exc.value.rules == ["R-POW-004"]
    assert "$.payload.power.units[0]: R-POW-004 Running hours" in str(exc.value)


def test_a_correction_made_with_model_copy_and_a_str_id_sends_without_warnings(env):
    """The integrator guide's correction: model_copy(update=...) with the id read from
    receipt.json (a str where the model has a UUID) used to print pydantic's serializer warning."""
    client = env.client(env.power)
    report = _report(env, "2015-08")
    first = client.submit_monthly_report(report)
    correction = report.model_copy(update={"submission_kind": models.SubmissionKind.correction,
                                           "replaces_submission_id": str(first.payload.submission_id),
                                           "reason": "修正 / corrected"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        receipt = client.submit_monthly_report(correction)
    assert receipt.payload.version == 2


def test_the_asyncio_clients_without_httpx_name_the_extra():
    probe = ("import sys; sys.modules['httpx'] = None\nimport cedx\n"
             "try:\n    cedx.AsyncReportingClient\nexcept ModuleNotFoundError as e:\n    print(e.name, '|', e)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "httpx | the asyncio clients need httpx: pip install 'cedx[async]'"


def test_the_outbox_refuses_an_asyncio_client_before_storing_anything(env, tmp_path):
    """deliver() used to call the coroutine methods without awaiting them (AttributeError on a
    coroutine, the item left pending after enqueue had stored it)."""
    pytest.importorskip("httpx")
    client = cedx.AsyncReportingClient(env.url, signing_key=env.power.key, trust_anchors=[env.ca])
    with pytest.raises(cedx.ConfigurationError, match="blocking client"):
        Outbox(tmp_path / "o.db", client)
    assert not (tmp_path / "o.db").exists()


def test_the_api_reference_describes_no_retry_by_its_values():
    from generator.apidocs import face_names

    rows = {f["name"]: f["doc"] for f in face_names()}
    assert rows["NO_RETRY"].startswith("`RetryPolicy(attempts=1,")
    assert "``pending``" in rows["OutboxItem"] and "``failed``" in rows["OutboxItem"]


def test_a_platform_that_is_down_is_said_in_the_systems_words(env):
    from cedx.runtime.serve import free_port

    down = f"http://127.0.0.1:{free_port()}"
    sleeps = []
    client = cedx.ReportingClient(down, token_provider=TokenProvider(f"{down}/oauth/token", "erp", "s",
                                                                     retry=RetryPolicy(attempts=3, sleep=sleeps.append)),
                                  trust_anchors=[env.ca])
    with pytest.raises(cedx.ConnectionFailed) as exc:
        client.list_submissions()
    assert str(exc.value) == f"POST {down}/oauth/token: Connection refused (3 attempts)"
    assert len(sleeps) == 2 and "HTTPConnectionPool" in str(exc.value.__cause__)  # the whole story stays the cause


def test_the_outbox_signs_again_what_waited_longer_than_the_freshness_window(env, tmp_path):
    """docs/trust-profile.md §9: an outbox re-sending a document signed more than 7 days ago
    signs it again under a new idempotency key (the platform refuses it as stale); it used to be
    parked as failed, for a person to enqueue again."""
    import datetime as dt
    import json
    import sqlite3

    from cedx import trust

    client = env.client(env.power)
    box = Outbox(tmp_path / "o.db", client)
    report = _report(env, "2014-03")
    report.prepared_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    item = box.enqueue(report)
    # as if enqueued 8 days ago and the platform unreachable since
    db = sqlite3.connect(tmp_path / "o.db")
    document, key = db.execute("SELECT document, idempotency_key FROM outbox WHERE id = ?", (item,)).fetchone()
    old = trust.sign_document(json.loads(document)["payload"], env.power.key, certificate_chain=[env.power.cert],
                              signing_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8),
                              envelope_fields={"specVersion": "1.0"})
    db.execute("UPDATE outbox SET document = ? WHERE id = ?", (json.dumps(old), item))
    db.commit()
    assert box.deliver() == 1
    delivered = box.item(item)
    assert delivered.state == "delivered" and "signed again" in delivered.last_error
    assert db.execute("SELECT idempotency_key FROM outbox WHERE id = ?", (item,)).fetchone()[0] != key
    db.close()
    assert _stored(env, "2014-03") == 1


def test_the_outbox_does_not_sign_again_what_the_caller_signed(env, tmp_path):
    """A document enqueued already signed (the caller's key, envelope and any time-stamp token of
    its own) and refused as stale is parked saying so; signing its payload with the client's key
    would have put another signature, and another envelope, on the caller's document."""
    import datetime as dt
    import json
    import sqlite3

    from cedx import trust

    client = env.client(env.power)
    box = Outbox(tmp_path / "o.db", client)
    payload = _report(env, "2014-10").model_dump(mode="json", by_alias=True, exclude_none=True)
    signed = trust.sign_document(payload, env.power.key, certificate_chain=[env.power.cert],
                                 signing_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8),
                                 envelope_fields={"specVersion": "1.0"})
    item = box.enqueue(signed)
    assert box.deliver() == 0
    parked = box.item(item)
    assert parked.state == "failed" and parked.last_error.startswith("422 SIGNATURE_INVALID")
    assert "enqueued signed by the caller" in parked.last_error and "signing time" in parked.last_error
    with sqlite3.connect(tmp_path / "o.db") as db:  # as the caller signed it, not signed again
        document = db.execute("SELECT document FROM outbox WHERE id = ?", (item,)).fetchone()[0]
    assert json.loads(document) == signed
    assert _stored(env, "2014-10") == 0


def test_an_outbox_from_before_signed_here_gains_the_column_and_signs_its_items_again(env, tmp_path):
    """An outbox file made by an earlier cedx (no signed_here column) opens, gains the column,
    and treats its items as its own, as that cedx did: a stale one is signed again and delivered."""
    import datetime as dt
    import json
    import sqlite3
    import time

    from cedx import trust

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the earlier schema, as that release created it
        db.executescript("""
            CREATE TABLE outbox (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, document TEXT NOT NULL,
                idempotency_key TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT, receipt TEXT, created_at REAL NOT NULL, delivered_at REAL);
            CREATE INDEX outbox_pending ON outbox(state, seq);
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);""")
        payload = _report(env, "2014-12").model_dump(mode="json", by_alias=True, exclude_none=True)
        old = trust.sign_document(payload, env.power.key, certificate_chain=[env.power.cert],
                                  signing_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8),
                                  envelope_fields={"specVersion": "1.0"})
        db.execute("INSERT INTO outbox (id, seq, kind, document, idempotency_key, created_at) VALUES (?, 1, ?, ?, ?, ?)",
                   ("legacy-1", "monthly_report", json.dumps(old), str(uuid.uuid4()), time.time()))
    box = Outbox(path, env.client(env.power))
    with sqlite3.connect(path) as db:
        assert "signed_here" in {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    assert box.deliver() == 1
    assert box.item("legacy-1").state == "delivered" and "signed again" in box.item("legacy-1").last_error
    assert _stored(env, "2014-12") == 1


def test_a_failed_item_is_requeued_once_the_platform_is_put_right(env, tmp_path):
    """An item refused for a reason on the platform's side (here its body limit, 413) is parked;
    once the operator raises the limit, requeue() sends the same bytes under the same key and it
    is stored, once. Only failed items are requeued; items() lists them in order."""
    import sqlite3

    client = env.client(env.power)
    box = Outbox(tmp_path / "o.db", client)
    first, second = box.enqueue(_report(env, "2011-01")), box.enqueue(_report(env, "2011-03"))
    hooks = env.app.state.hooks
    limit = hooks.max_body_bytes
    hooks.max_body_bytes = 1024
    try:
        assert box.deliver() == 0
    finally:
        hooks.max_body_bytes = limit
    assert [(i.id, i.state) for i in box.items()] == [(first, "failed"), (second, "failed")]
    assert box.items("failed")[0].last_error.startswith("413 PAYLOAD_TOO_LARGE")
    with sqlite3.connect(tmp_path / "o.db") as db:
        before = db.execute("SELECT document, idempotency_key FROM outbox WHERE id = ?", (first,)).fetchone()
    box.requeue(first)
    assert [i.id for i in box.items("pending")] == [first]
    with sqlite3.connect(tmp_path / "o.db") as db:  # the same bytes under the same key
        assert db.execute("SELECT document, idempotency_key FROM outbox WHERE id = ?", (first,)).fetchone() == before
    assert box.deliver() == 1 and box.item(first).state == "delivered"
    assert box.item(first).last_error.startswith("requeued after: 413 PAYLOAD_TOO_LARGE")
    assert box.item(second).state == "failed" and _stored(env, "2011-01") == 1 and _stored(env, "2011-03") == 0
    with pytest.raises(cedx.ConfigurationError, match="only a failed item is requeued"):
        box.requeue(first)  # delivered: done
    with pytest.raises(KeyError):
        box.requeue("no-such-item")
    with pytest.raises(cedx.ConfigurationError, match="state is one of"):
        box.items("parked")


def test_outboxes_opened_at_once_on_an_older_file_add_its_column_once(env, tmp_path):
    """Several processes (here threads) opening the same outbox file of an earlier release at
    once: the column is added under the write lock, so none fails on a duplicate column."""
    import sqlite3
    from concurrent.futures import ThreadPoolExecutor

    paths = []
    for n in range(8):
        path = tmp_path / f"old{n}.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE outbox (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
                       "document TEXT NOT NULL, idempotency_key TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', "
                       "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, receipt TEXT, created_at REAL NOT NULL, "
                       "delivered_at REAL)")
        paths.append(path)
    client = env.client(env.power)
    with ThreadPoolExecutor(6) as pool:
        boxes = list(pool.map(lambda path: Outbox(path, client), [p for p in paths for _ in range(6)]))
    assert len(boxes) == 48
    for path in paths:
        with sqlite3.connect(path) as db:
            assert [r[1] for r in db.execute("PRAGMA table_info(outbox)")].count("signed_here") == 1


def test_signed_again_then_a_conflict_is_parked_saying_it_may_be_stored(env, tmp_path):
    """A stale document signed again, then refused as a conflict (the period holds an accepted
    version, perhaps this very document delivered before with its answer lost): parked, and the
    reason says to look the period up rather than just 'failed'."""
    import datetime as dt
    import json
    import sqlite3

    from cedx import trust

    client = env.client(env.power)
    client.submit_monthly_report(_report(env, "2014-08"))  # the period's accepted original
    box = Outbox(tmp_path / "o.db", client)
    item = box.enqueue(_report(env, "2014-08"))
    db = sqlite3.connect(tmp_path / "o.db")
    document = db.execute("SELECT document FROM outbox WHERE id = ?", (item,)).fetchone()[0]
    old = trust.sign_document(json.loads(document)["payload"], env.power.key, certificate_chain=[env.power.cert],
                              signing_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8),
                              envelope_fields={"specVersion": "1.0"})
    db.execute("UPDATE outbox SET document = ? WHERE id = ?", (json.dumps(old), item))
    db.commit()
    db.close()
    assert box.deliver() == 0
    parked = box.item(item)
    assert parked.state == "failed" and parked.last_error.startswith("409 ")
    assert "may already be stored" in parked.last_error and "list_submissions" in parked.last_error
    assert _stored(env, "2014-08") == 1


def test_the_outbox_parks_what_signing_again_cannot_help(env, tmp_path):
    """signingTime before preparedAt: signed again once, refused again, parked."""
    import datetime as dt

    client = env.client(env.power)
    box = Outbox(tmp_path / "o.db", client)
    report = _report(env, "2014-05")
    report.prepared_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    item = box.enqueue(report)
    assert box.deliver() == 0
    assert box.item(item).state == "failed" and "SIGNATURE_INVALID" in box.item(item).last_error
    assert _stored(env, "2014-05") == 0


def test_refused_credentials_leave_the_outbox_pending_and_are_raised(env, tmp_path):
    """A wrong or rotated secret used to park every queued item as failed (with no way to
    queue them again): the documents were fine, the credentials were not."""
    wrong = TokenProvider(f"{env.url}/oauth/token", f"{env.power.credit_code}-erp", "rotated-secret-0123456789")
    box = Outbox(tmp_path / "o.db", env.client(env.power, token_provider=wrong))
    for period in ("2013-01", "2013-03"):
        box.enqueue(_report(env, period))
    with pytest.raises(cedx.AuthenticationError) as exc:
        box.deliver()
    assert exc.value.code == "invalid_client" and box.counts() == {"pending": 2}
    box.client = env.client(env.power)  # the secret put right
    assert box.deliver() == 2 and box.counts() == {"delivered": 2}


def test_a_wrong_token_url_leaves_the_outbox_pending_and_is_raised(env, tmp_path):
    """Its 404 (problem+json, a NotFoundError since the token endpoint's answers are typed) parked
    every queued item as failed: a configuration mistake, not a refused document."""
    wrong = TokenProvider(f"{env.url}/oauth/tokn", f"{env.power.credit_code}-erp", "erp-secret-0123456789")
    box = Outbox(tmp_path / "o.db", env.client(env.power, token_provider=wrong, retry=RetryPolicy(attempts=1)))
    for period in ("2013-07", "2013-08"):
        box.enqueue(_report(env, period))
    with pytest.raises(cedx.NotFoundError) as exc:
        box.deliver()
    assert "/oauth/tokn" in str(exc.value) and box.counts() == {"pending": 2}
    box.client = env.client(env.power)  # the URL put right
    assert box.deliver() == 2 and box.counts() == {"delivered": 2}


def test_enqueue_names_the_document_kinds(env, tmp_path):
    box = Outbox(tmp_path / "o.db", env.client(env.power))
    with pytest.raises(cedx.ConfigurationError, match="unknown document kind 'monthly'; one of: annual_report, monthly_report"):
        box.enqueue(_report(env, "2013-05"), kind="monthly")


def test_a_request_signed_with_a_key_the_platform_does_not_accept_says_why(env):
    """It said "unknown request signing key <id>" whether the key had never been registered or
    its certificate had been revoked."""
    from cedx import trust

    stranger = trust.generate_private_key()
    with pytest.raises(cedx.AuthenticationError) as exc:
        env.client(env.power, signing_key=stranger).submit_monthly_report(_report(env, "2013-07"))
    assert exc.value.code == "REQUEST_SIGNATURE_INVALID"
    assert f"request signing key {stranger.public_key().fingerprint()}: the signing key has no certificate registered" \
        in exc.value.detail
    revoked = trust.generate_private_key()
    cert = env.admin.issue_certificate(env.power.credit_code, tx.create_csr(revoked, {"common_name": env.power.credit_code}))
    env.admin.revoke_certificate(cert)
    with pytest.raises(cedx.AuthenticationError) as exc:
        env.client(env.power, signing_key=revoked, signing_certificate=cert).submit_monthly_report(_report(env, "2013-08"))
    assert "the signing certificate was revoked at" in exc.value.detail


def test_the_outbox_signs_again_with_the_new_key_after_a_rotation(env, tmp_path):
    """docs/security.md §4: the entity switches to a new key, the operator revokes the old
    certificate. Items queued (signed) under the old key were parked as CERTIFICATE_INVALID."""
    from cedx import trust

    old = trust.generate_private_key()
    old_cert = env.admin.issue_certificate(env.power.credit_code, tx.create_csr(old, {"common_name": env.power.credit_code}))
    box = Outbox(tmp_path / "o.db", env.client(env.power, signing_key=old, signing_certificate=old_cert))
    item = box.enqueue(_report(env, "2012-01"))
    env.admin.revoke_certificate(old_cert)
    with pytest.raises(cedx.AuthenticationError):  # the old key cannot even sign the request now
        box.deliver()
    box.client = env.client(env.power)  # the new key (env.power's, registered)
    assert box.deliver() == 1
    assert box.item(item).state == "delivered" and "CERTIFICATE_INVALID" in box.item(item).last_error
    assert _stored(env, "2012-01") == 1


def test_a_base_url_with_a_path_shows_in_the_not_found(env):
    client = cedx.ReportingClient(
        f"{env.url}/v1/reporting", token_provider=env.tokens(env.power), trust_anchors=[env.ca])
    with pytest.raises(cedx.NotFoundError) as exc:
        client.list_submissions()
    assert str(exc.value) == "404 NOT_FOUND: no resource at this address (/v1/reporting/v1/reporting/submissions)"


def test_an_outbox_path_that_cannot_be_a_database_is_named(env, tmp_path):
    (tmp_path / "not-a-db").write_bytes(b"x" * 4096)
    for path, words in ((tmp_path / "missing" / "o.db", "unable to open database file"),
                        (tmp_path / "not-a-db", "not a database")):
        with pytest.raises(cedx.ConfigurationError) as exc:
            Outbox(path, env.client(env.power))
        assert str(exc.value).startswith(f"cannot use {path} as the outbox: ") and words in str(exc.value)


def test_a_format_may_be_named_as_a_newcomer_writes_it(env):
    assert cedx.Format("xml") is cedx.Format.XML and cedx.Format("JSON") is cedx.Format.JSON
    assert cedx.Format("application/xml") is cedx.Format.XML
    with pytest.raises(ValueError):
        cedx.Format("yaml")
    client = env.client(env.power, format="xml")
    assert client.format is cedx.Format.XML
    assert client.submit_monthly_report(_report(env, "2012-03")).payload.version == 1


def test_a_report_given_as_its_file_or_text_is_named(env, tmp_path):
    """The JSON text was validated as a string (a 300-character message quoting the file), a
    Path or bytes gave a bare ValueError from the encoder."""
    path = tmp_path / "report.json"
    path.write_text(_report(env, "2012-05").model_dump_json(by_alias=True, exclude_none=True))
    client = env.client(env.power, validate=False)
    for body in (path, path.read_text(), path.read_bytes()):
        with pytest.raises(cedx.ConfigurationError) as exc:
            client.submit_monthly_report(body)
        assert str(exc.value).startswith("submitMonthlyReport takes a cedx.models.MonthlyReport (or the same record as a dict)")
        assert "cedx.models.MonthlyReport.model_validate_json(Path('report.json').read_bytes())" in str(exc.value)
    assert _stored(env, "2012-05") == 0


def test_an_unsigned_report_without_a_signing_key_says_how_to_give_one(env, tmp_path):
    client = env.client(env.power, signing_key=None)
    with pytest.raises(cedx.ConfigurationError) as exc:
        client.submit_monthly_report(_report(env, "2012-07"))
    assert "submitMonthlyReport sends a signed document: configure signing_key, e.g. signing_key=cedx.load_private_key(" \
        in str(exc.value)
    with pytest.raises(cedx.ConfigurationError):  # the outbox signs when it stores: nothing stored
        Outbox(tmp_path / "o.db", client).enqueue(_report(env, "2012-07"))
    assert Outbox(tmp_path / "o.db", client).counts() == {} and _stored(env, "2012-07") == 0
