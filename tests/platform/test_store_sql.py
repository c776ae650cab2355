"""The store's request path (SQL text on DBAPI connections, issue 14) against the mapped
SQLAlchemy types it must agree with, on SQLite and PostgreSQL: the values it writes are the
values the ORM writes (SQLite datetime text that listings sort and compare on, the document
as received), and what must hold across worker processes holds across two stores with their
own connection pools on one database: a nonce is recorded once, a rate-limit count loses no
hit, a revocation or a disabled client is seen by the next lookup."""

import datetime as dt
import re
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text

from cedx.platform.db import IdempotencyRow, SqlStore, SubmissionRow
from cedx.platform.store import (
    CertificateRecord,
    ClientRecord,
    StoreConflict,
    SubmissionRecord,
    TokenRecord,
)

from .conftest import _fresh_postgres, database_urls

UTC = dt.timezone.utc
CODE = "91320500MA1X2P3Q4R"


@pytest.fixture(scope="module", params=database_urls(), ids=lambda p: p[0])
def url(request, tmp_path_factory):
    _kind, base = request.param
    return _fresh_postgres(base) if base else f"sqlite:///{tmp_path_factory.mktemp('store') / 'platform.db'}"


@pytest.fixture(scope="module")
def stores(url):
    """Two stores on one database, as two worker processes have (separate pools)."""
    a, b = SqlStore.from_url(url), SqlStore.from_url(url)
    a.add_entity(CODE)
    yield a, b
    a.dispose()
    b.dispose()


def _record(period: str, document: str | bytes, received_at: dt.datetime, **kw) -> SubmissionRecord:
    values = dict(submission_id=str(uuid.uuid4()), credit_code=CODE, document_type="monthlyReport",
                  report_id=str(uuid.uuid4()), period=period, version=1, kind="original", state="accepted",
                  supersedes=None, superseded_by=None, document=document, document_digest="d" * 64,
                  receipt='{"payload": {"收据": 1}}', receipt_id=str(uuid.uuid4()), received_at=received_at)
    values.update(kw)
    return SubmissionRecord(**values)


def _accepted_original(store: SqlStore, period: str, when: dt.datetime) -> SubmissionRecord:
    """An accepted original for ``period``, stored under the key ``key-<period>``."""
    first = _record(period, b"{}", when)
    with store.submission_transaction() as tx:
        tx.insert(first, f"key-{period}", "e" * 64)
    return first


def _stored(store: SqlStore, submission_id: str) -> dict:
    """A submission's row as the database holds it (SQLite: the text and its storage class)."""
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT s.*, i.created_at AS key_created FROM submissions s "
                                "JOIN idempotency i ON i.submission_id = s.submission_id "
                                "WHERE s.submission_id = :s"), {"s": submission_id}).mappings().one()
        out = dict(row)
        if store.sqlite:
            kinds = conn.execute(text("SELECT typeof(document), typeof(received_at), typeof(receipt) FROM submissions "
                                      "WHERE submission_id = :s"), {"s": submission_id}).one()
            out["kinds"] = tuple(kinds)
    return out


def test_a_submission_is_stored_as_the_mapped_types_store_it(stores):
    store, _ = stores
    when = dt.datetime(2026, 11, 30, 23, 59, 58, 7, tzinfo=UTC)  # microseconds with leading zeros
    body = '{"payload": {"名称": "华能", "x": 1}}'
    raw = _record("2031-01", body.encode(), when)     # the received bytes (a JSON body)
    as_str = _record("2031-02", body, when)           # a str (an XML body's logical record)
    for r in (raw, as_str):
        with store.submission_transaction() as tx:
            tx.insert(r, f"key-{r.period}", "e" * 64)
    # The same rows written the way the ORM writes them.
    orm = _record("2031-03", body, when)
    with store.sessions() as s, s.begin():
        s.add(SubmissionRow(**{k: getattr(orm, k) for k in SubmissionRow.__table__.columns.keys()}))
        s.add(IdempotencyRow(credit_code=CODE, key="key-2031-03", request_digest="e" * 64,
                             submission_id=orm.submission_id, created_at=when))
    # the read-and-insert statement (PostgreSQL's own) with either form
    merged = (_record("2031-04", body.encode(), when), _record("2031-05", body, when))
    for r in merged:
        with store.submission_transaction() as tx:
            assert tx.insert_unless_taken(r, f"key-{r.period}", "e" * 64) == (None, None)
    mine, theirs = _stored(store, raw.submission_id), _stored(store, orm.submission_id)
    assert _stored(store, as_str.submission_id)["document"] == mine["document"] == theirs["document"] == body
    for r in merged:
        stored = _stored(store, r.submission_id)
        assert (stored["document"], stored["received_at"], stored.get("kinds")) == (body, mine["received_at"],
                                                                                    mine.get("kinds"))
    assert mine["received_at"] == theirs["received_at"] and mine["receipt"] == theirs["receipt"]
    if store.sqlite:
        assert mine["received_at"] == "2026-11-30 23:59:58.000007"
        assert mine["kinds"] == theirs["kinds"] == ("text", "text", "text")
        for created in (mine["key_created"], theirs["key_created"]):
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", created)
    # Read back through either path: the same record.
    for r in (raw, orm):
        via_sql, via_orm = store.submission(r.submission_id), store.submissions(
            CODE, document_type=None, period=r.period, state=None, after=None, limit=5)[0]
        assert via_sql == via_orm
        assert via_sql.received_at == when and via_sql.received_at.tzinfo is not None and via_sql.document == body
    with store.submission_reader() as reader:
        prior = reader.idempotency(CODE, "key-2031-01")
        assert prior is not None and prior.request_digest == "e" * 64 and prior.submission == store.submission(
            raw.submission_id)
        assert reader.accepted(CODE, "monthlyReport", "2031-02") == store.submission(as_str.submission_id)
        assert reader.idempotency(CODE, "no-such-key") is None and reader.accepted(CODE, "monthlyReport", "1999-01") is None
    with store.submission_transaction() as tx:  # both opening reads in one statement: the same answers
        for key, period in (("key-2031-01", "2031-01"), ("key-2031-01", "2031-02"), ("no-such-key", "2031-03"),
                            ("key-2031-02", "1999-01"), ("no-such-key", "1999-01")):
            both = tx.idempotency_and_accepted(CODE, key, "monthlyReport", period)
            assert both == (tx.idempotency(CODE, key), tx.accepted(CODE, "monthlyReport", period))
            assert (both[0] is None) == (key == "no-such-key") and (both[1] is None) == (period == "1999-01")


def test_listing_orders_rows_of_both_paths_and_the_cursor_compares_exactly(stores):
    """Listings sort and compare on received_at: a row written by the request path and one
    written by the ORM, microseconds apart, in order; a cursor at one resumes just after it."""
    store, _ = stores
    base = dt.datetime(2027, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    rows = []
    for i, period in enumerate(("2032-01", "2032-02", "2032-03", "2032-04")):
        r = _record(period, "{}", base + dt.timedelta(microseconds=i), credit_code=CODE)
        rows.append(r)
        if i % 2:
            with store.sessions() as s, s.begin():
                s.add(SubmissionRow(**{k: getattr(r, k) for k in SubmissionRow.__table__.columns.keys()}))
        else:
            with store.submission_transaction() as tx:
                tx.insert(r, f"key-{period}", "e" * 64)
    listed = [x.submission_id for x in store.submissions(CODE, document_type=None, period=None, state=None,
                                                         after=(base - dt.timedelta(microseconds=1), ""), limit=10)
              if x.period.startswith("2032")]
    assert listed == [r.submission_id for r in rows]
    after = store.submissions(CODE, document_type=None, period=None, state=None,
                              after=(rows[1].received_at, rows[1].submission_id), limit=10)
    assert [x.submission_id for x in after][:2] == [rows[2].submission_id, rows[3].submission_id]


def test_one_accepted_version_and_one_key_are_conflicts_and_nothing_is_half_written(stores):
    store, other = stores
    when = dt.datetime.now(UTC)
    first = _accepted_original(store, "2033-01", when)
    for again, key in ((_record("2033-01", b"{}", when), "key-other"),      # a second accepted version
                       (_record("2033-02", b"{}", when), "key-2033-01")):   # the key used before
        with pytest.raises(StoreConflict):
            with other.submission_transaction() as tx:
                tx.insert(again, key, "e" * 64)
        assert store.submission(again.submission_id) is None  # the submission row was rolled back too
    # A correction supersedes the accepted version exactly once.
    correction = _record("2033-01", b"{}", when, version=2, kind="correction", supersedes=first.submission_id)
    with other.submission_transaction() as tx:
        assert tx.supersede(first.submission_id, by=correction.submission_id)
        tx.insert(correction, "key-2033-01-c", "e" * 64)
    with store.submission_transaction() as tx:
        assert not tx.supersede(first.submission_id, by="someone-else")
    old = store.submission(first.submission_id)
    assert (old.state, old.superseded_by) == ("superseded", correction.submission_id)
    # An exception inside the transaction rolls everything back.
    with pytest.raises(RuntimeError), store.submission_transaction() as tx:
        tx.insert(_record("2033-03", b"{}", when), "key-2033-03", "e" * 64)
        raise RuntimeError("decided against it")
    with store.submission_reader() as reader:
        assert reader.idempotency(CODE, "key-2033-03") is None and reader.accepted(CODE, "monthlyReport", "2033-03") is None


def test_a_nonce_is_recorded_once_whichever_worker_sees_it(stores):
    a, b = stores
    later = time.time() + 300
    nonce = f"k:{secrets.token_hex(16)}"
    assert a.add_nonce(nonce, later) is True
    assert b.add_nonce(nonce, later) is False and a.add_nonce(nonce, later) is False  # a replay, on any worker
    expired = f"k:{secrets.token_hex(16)}"
    assert a.add_nonce(expired, time.time() - 10) is True
    assert b.add_nonce(expired, later) is True       # past its window: recorded anew
    assert a.add_nonce(expired, later) is False
    # Raced: many threads of two workers, the same fresh nonces: each accepted exactly once.
    nonces = [f"k:{secrets.token_hex(16)}" for _ in range(12)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: (nonces[i // 8], (a, b)[i % 2].add_nonce(nonces[i // 8], later)),
                                 range(8 * len(nonces))))
    for n in nonces:
        assert [ok for m, ok in results if m == n].count(True) == 1


def test_rate_limit_counts_lose_no_hit_across_workers(stores):
    a, b = stores
    window = int(time.time()) // 60 * 60
    key = f"client:{uuid.uuid4()}"
    assert a.count(key, window) == 0
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda i: (a, b)[i % 2].hit(key, window), range(60)))
    assert sorted(counts) == list(range(1, 61))  # every hit counted, each count seen once
    assert a.count(key, window) == b.count(key, window) == 60
    assert a.count(key, window - 60) == 0 and a.hit(key, window - 60) == 1  # windows are separate


def test_token_lookup_sees_the_clients_state_and_revocations_at_once(stores):
    a, b = stores
    client_id = f"c-{uuid.uuid4().hex[:8]}"
    a.add_client(ClientRecord(client_id, "x", CODE, "reporting:submit"))
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, 60, tzinfo=UTC)
    a.add_token(TokenRecord("t" * 63 + "1", client_id, CODE, "reporting:submit", expires))
    seen = b.token("t" * 63 + "1")
    assert seen == TokenRecord("t" * 63 + "1", client_id, CODE, "reporting:submit", expires, True,
                               a.revocation_counter())
    assert b.token("no-such-token") is None
    a.add_certificate(CertificateRecord(f"key-{client_id}", CODE, b"der", 7))
    a.revoke_certificate(f"key-{client_id}", dt.datetime.now(UTC))
    assert b.token("t" * 63 + "1").revocations == seen.revocations + 1 == b.revocation_counter()
    a.set_client_active(client_id, False)  # also deletes its tokens
    assert b.token("t" * 63 + "1") is None
    a.set_client_active(client_id, True)
    a.add_token(TokenRecord("t" * 63 + "2", client_id, CODE, "reporting:submit", expires))
    with a.sessions() as s, s.begin():  # disabled without deleting the tokens: the flag is read per lookup
        s.execute(text("UPDATE clients SET active = :f WHERE client_id = :c"), {"f": False, "c": client_id})
    assert b.token("t" * 63 + "2").client_active is False


def test_the_token_lookup_counts_the_rate_limit_only_for_a_request_it_authenticates(stores):
    """token_and_hit (PostgreSQL: one statement) answers the token as ``token`` does and counts
    the client's hit only when the hooks' checks pass: the same instant for expiry, whole
    scopes. SQLite counts nothing there (the hooks call ``hit``), so the count stays 0."""
    a, b = stores
    client_id = f"c-{uuid.uuid4().hex[:8]}"
    a.add_client(ClientRecord(client_id, "x", CODE, "reporting:submit reporting:read"))
    now = dt.datetime(2029, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    later = now + dt.timedelta(microseconds=1)
    tokens = {"ok": ("reporting:submit reporting:read", later), "expired": ("reporting:submit reporting:read", now),
              "partial": ("reporting:submit reporting:reads", later)}
    for name, (scopes, expires) in tokens.items():
        a.add_token(TokenRecord(f"h-{client_id}-{name}", client_id, CODE, scopes, expires))
    window, counted = 1_800_000_000, 0

    def lookup(store, name, scopes=("reporting:read",), prefix="client:"):
        return store.token_and_hit(f"h-{client_id}-{name}", scopes, now, prefix, window)

    assert lookup(a, "missing") == (None, None)
    for i, store in enumerate((a, b, a)):
        token, hits = lookup(store, "ok")
        assert token == a.token(f"h-{client_id}-ok")
        if not a.sqlite:
            counted += 1
            assert hits == counted == i + 1
        else:
            assert hits is None
    assert lookup(a, "ok", ())[1] == (None if a.sqlite else 4)  # an operation that needs no scope
    counted = a.count(f"client:{client_id}", window)
    for name, scopes in (("expired", ("reporting:read",)), ("partial", ("reporting:read",)),
                         ("ok", ("reporting:read", "reporting:entity:write")), ("ok", ("reporting",)),
                         ("ok", ("reporting:submit reporting:read",)), ("ok", ("",))):
        token, hits = lookup(b, name, scopes)
        assert token is not None and hits is None, (name, scopes)
    with a.sessions() as s, s.begin():  # a disabled client whose token is still there
        s.execute(text("UPDATE clients SET active = :f WHERE client_id = :c"), {"f": False, "c": client_id})
    token, hits = lookup(a, "ok")
    assert token.client_active is False and hits is None
    assert a.count(f"client:{client_id}", window) == counted  # none of the refused lookups counted
    assert a.count(f"other:{client_id}", window) == 0 and lookup(b, "missing", prefix="other:") == (None, None)


def test_the_merged_rate_limit_count_loses_no_hit_across_workers(stores):
    a, b = stores
    if a.sqlite:
        pytest.skip("SQLite counts through hit (test_rate_limit_counts_lose_no_hit_across_workers)")
    client_id = f"c-{uuid.uuid4().hex[:8]}"
    a.add_client(ClientRecord(client_id, "x", CODE, "reporting:read"))
    a.add_token(TokenRecord(f"h-{client_id}", client_id, CODE, "reporting:read", dt.datetime(2099, 1, 1, tzinfo=UTC)))
    now, window = dt.datetime.now(UTC), int(time.time()) // 60 * 60

    def one(i):
        return (a, b)[i % 2].token_and_hit(f"h-{client_id}", ("reporting:read",), now, "client:", window)[1]

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(one, range(60)))
    assert sorted(counts) == list(range(1, 61)) and a.count(f"client:{client_id}", window) == 60
    assert a.hit(f"client:{client_id}", window) == 61  # the same counter as the hooks' own hit


def test_a_correction_supersedes_and_inserts_both_or_neither(stores):
    store, other = stores
    when = dt.datetime.now(UTC)
    first = _accepted_original(store, "2035-01", when)
    # the correction's idempotency key is taken: the insert fails, the supersede is undone
    correction = _record("2035-01", b"{}", when, version=2, kind="correction", supersedes=first.submission_id)
    with pytest.raises(StoreConflict), other.submission_transaction() as tx:
        assert tx.supersede(first.submission_id, by=correction.submission_id)
        tx.insert(correction, "key-2035-01", "e" * 64)
    assert store.submission(first.submission_id).state == "accepted"
    assert store.submission(correction.submission_id) is None
    # a failure between the supersede and the insert undoes the supersede as well
    with pytest.raises(RuntimeError), other.submission_transaction() as tx:
        assert tx.supersede(first.submission_id, by=correction.submission_id)
        raise RuntimeError("the receipt could not be made")
    assert store.submission(first.submission_id).state == "accepted"
    with other.submission_transaction() as tx:
        assert tx.supersede(first.submission_id, by=correction.submission_id)
        tx.insert(correction, "key-2035-01-c", "e" * 64)
    with store.submission_reader() as reader:
        assert reader.accepted(CODE, "monthlyReport", "2035-01").submission_id == correction.submission_id
        assert reader.idempotency(CODE, "key-2035-01-c").submission.version == 2


def test_insert_unless_taken_writes_only_a_free_key_and_period_and_returns_what_it_found(stores):
    """PostgreSQL: the opening read and the insert in one statement (SQLite: the two steps)."""
    store, other = stores
    when = dt.datetime.now(UTC)
    first = _record("2036-01", b'{"a": 1}', when)
    with store.submission_transaction() as tx:
        assert tx.insert_unless_taken(first, "key-2036-01", "e" * 64) == (None, None)
    cases = ((_record("2036-02", b"{}", when), "key-2036-01", True, False),  # the key taken
             (_record("2036-01", b"{}", when), "key-other", False, True),    # the period's accepted version
             (_record("2036-01", b"{}", when), "key-2036-01", True, True))   # both
    for again, key, key_taken, period_taken in cases:
        with other.submission_transaction() as tx:
            prior, current = tx.insert_unless_taken(again, key, "f" * 64)
        assert (prior is not None, current is not None) == (key_taken, period_taken)
        if prior is not None:
            assert prior.request_digest == "e" * 64 and prior.submission.submission_id == first.submission_id
            assert prior.submission.document in ('{"a": 1}', b'{"a": 1}')
        if current is not None:
            assert current.submission_id == first.submission_id and current.state == "accepted"
        assert store.submission(again.submission_id) is None  # nothing written
    with store.submission_reader() as reader:
        assert reader.idempotency(CODE, "key-other") is None


def test_insert_unless_taken_stores_racing_duplicates_once(stores):
    """One key raced (and one period raced under different keys) from two stores and many
    threads: one row; every other attempt finds it or is refused as a conflict."""
    a, b = stores
    when = dt.datetime.now(UTC)

    def attempt(i: int, period: str, key: str):
        try:
            with (a, b)[i % 2].submission_transaction() as tx:
                return tx.insert_unless_taken(_record(period, b"{}", when), key, "e" * 64)
        except StoreConflict:
            return "conflict"

    for period, keys in (("2037-01", ["raced"] * 12), ("2037-02", [f"k{i}" for i in range(12)])):
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(12), [period] * 12, keys))
        assert results.count((None, None)) == 1, results  # exactly one inserted
        assert a.count_submissions(CODE, period) == {period: 1}


def test_writes_wait_for_each_other_across_workers(stores):
    """SQLite: the request path's writes from two pools and many threads never fail with
    'database is locked' (the submission holds the write lock from its first statement)."""
    a, b = stores
    errors: list[BaseException] = []
    when = dt.datetime.now(UTC)

    def work(i: int) -> None:
        store = (a, b)[i % 2]
        try:
            store.hit(f"client:w{i % 3}", 0)
            store.add_nonce(f"w:{i}:{secrets.token_hex(8)}", time.time() + 60)
            with store.submission_transaction() as tx:
                period = f"{2100 + i // 12}-{i % 12 + 1:02d}"
                assert tx.idempotency(CODE, f"w-{i}") is None and tx.accepted(CODE, "monthlyReport", period) is None
                tx.insert(_record(period, b"{}", when), f"w-{i}", "e" * 64)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(a.count(f"client:w{k}", 0) for k in range(3)) == 16
    assert sum(a.count_submissions(CODE, "21").values()) == 16


def test_stored_values_read_through_select_match(stores):
    """The ORM reads what the request path wrote (listings and tests use it)."""
    store, _ = stores
    r = _record("2034-01", b"{}", dt.datetime(2026, 2, 3, 4, 5, 6, 123456, tzinfo=UTC))
    with store.submission_transaction() as tx:
        tx.insert(r, "key-2034-01", "e" * 64)
    with store.sessions() as s:
        row = s.execute(select(SubmissionRow).where(SubmissionRow.submission_id == r.submission_id)).scalar_one()
        key = s.execute(select(IdempotencyRow).where(IdempotencyRow.key == "key-2034-01")).scalar_one()
    def aware(value: dt.datetime) -> dt.datetime:  # SQLite's are naive (UTC), PostgreSQL's aware
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    assert aware(row.received_at) == r.received_at and row.document == "{}"
    assert key.submission_id == r.submission_id and abs(aware(key.created_at) - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)


def test_submissions_commit_durably_counters_and_nonces_need_not(stores):
    """A submission's commit waits for the disk (SQLite synchronous=FULL; PostgreSQL the
    server's synchronous_commit), the counters' and nonces' do not (NORMAL; off)."""
    store, _ = stores
    show = "PRAGMA synchronous" if store.sqlite else "SHOW synchronous_commit"
    with store.engine.connect() as conn:
        configured = conn.exec_driver_sql(show).scalar_one()  # the engine's own connections: durable
    with store.submission_transaction() as tx:
        tx.cur.execute(show)
        durable = tx.cur.fetchone()[0]
    with store._light() as cur:
        cur.execute(show)
        light = cur.fetchone()[0]
    if store.sqlite:
        assert (configured, durable, light) == (2, 2, 1)  # FULL, FULL, NORMAL
    else:
        assert durable == configured != "off" and light == "off"


def test_a_new_sqlite_store_has_large_pages_and_an_existing_one_keeps_its_own(tmp_path):
    """16 KiB pages for a new database (large documents are stored in overflow pages); a
    database made with another page size opens and works as before."""
    import sqlite3

    from cedx.platform.db import SQLITE_PAGE_SIZE

    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'new.db'}")
    with store._light() as cur:
        cur.execute("PRAGMA page_size")
        assert cur.fetchone()[0] == SQLITE_PAGE_SIZE == 16384
    old_path = tmp_path / "old.db"
    with sqlite3.connect(old_path) as old:
        old.execute("PRAGMA page_size=4096")
        old.execute("PRAGMA journal_mode=WAL")
        old.execute("CREATE TABLE kept (x)")
    old.close()
    store = SqlStore.from_url(f"sqlite:///{old_path}")
    with store._light() as cur:
        cur.execute("PRAGMA page_size")
        assert cur.fetchone()[0] == 4096
    big = "x" * 600_000  # spans many overflow pages either way
    r = _record("2026-10", big, dt.datetime.now(UTC))
    with store.submission_transaction() as tx:
        tx.insert(r, "k-" + secrets.token_hex(4), "d" * 64)
    assert _stored(store, r.submission_id)["document"] == big


def test_postgresql_compresses_stored_documents_with_lz4_where_it_can(stores):
    """A cheaper compression for the large documents the request path stores (server CPU);
    the text read back is the same."""
    store, _ = stores
    if store.sqlite:
        pytest.skip("PostgreSQL's TOAST compression")
    body = '{"payload": {"units": [' + ", ".join(['{"名称": "机组", "value": 1.5}'] * 2000) + "]}}"
    r = _record("2038-01", body.encode(), dt.datetime.now(UTC))
    with store.submission_transaction() as tx:
        assert tx.insert_unless_taken(r, "key-2038-01", "e" * 64) == (None, None)
    with store.engine.connect() as conn:
        lz4 = conn.exec_driver_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                   "WHERE name = 'default_toast_compression'").scalar()
        method = conn.execute(text("SELECT pg_column_compression(document) FROM submissions WHERE submission_id = :s"),
                              {"s": r.submission_id}).scalar_one()
    assert method == ("lz4" if lz4 else "pglz")
    assert store.submission(r.submission_id).document == body


def test_a_failure_never_leaves_a_transaction_open_for_the_next_use(stores):
    """SQLite keeps a connection per thread: one left inside a transaction by a failure would
    hold the write lock (or a stale snapshot) into the thread's next request."""
    store, other = stores
    if not store.sqlite:
        pytest.skip("PostgreSQL's connections come from a pool that rolls back on return")
    with pytest.raises(RuntimeError), store._fast.cursor() as cur:
        cur.execute("BEGIN IMMEDIATE")
        raise RuntimeError("failed half-way")
    assert other.hit(f"client:{uuid.uuid4()}", 0) == 1  # the write lock is free at once
    with store.submission_reader() as reader:  # a nested use of the thread's connection keeps its snapshot
        assert store.token("no-such-token") is None
        assert reader.cur.connection.in_transaction


def test_a_connection_the_server_dropped_is_replaced(url):
    """PostgreSQL: a request-path connection the server closed fails its one request and is
    dropped from the pool; the next request gets a new one."""
    store = SqlStore.from_url(url)
    try:
        if store.sqlite:
            pytest.skip("a local file does not drop connections")
        with store._fast.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar_one() is True
        with pytest.raises(Exception):  # noqa: B017 - the driver's OperationalError
            store.count("client:x", 0)
        assert store.count("client:x", 0) == 0 and store.hit("client:x", 0) == 1
    finally:
        store.dispose()
