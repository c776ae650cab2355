"""Sealed columnar batches: the store writers use (SQLite and PostgreSQL), the trust properties
(every value signed; tampering, omission, repetition, reordering and skipped intervals
detected; the chain unbroken across pages and days) and the one-pass canonical form."""

import copy
import datetime as dt
import json
from decimal import Decimal

import pytest

from cedx import trust
from cedx.acquisition.batches import BatchError, BatchVerifier, Signer, canonical_payload
from cedx.acquisition.store import Reading, SealedStore
from cedx.trust import x509 as tx

from ..platform.conftest import _fresh_postgres, database_urls
from .acq_data import POINT_DOC

CST = dt.timezone(dt.timedelta(hours=8))
SINCE = dt.datetime(2026, 10, 1, tzinfo=CST)
POINT = POINT_DOC


@pytest.fixture(scope="module")
def pki():
    ca_key = trust.generate_private_key()
    ca = tx.create_ca(ca_key, {"common_name": "metering CA"}, not_before=SINCE - dt.timedelta(days=30))
    key = trust.generate_private_key()
    cert = tx.issue_certificate(tx.create_csr(key, {"common_name": "source"}), ca, ca_key,
                                not_before=SINCE - dt.timedelta(days=30))
    return Signer("SRC-T-01", key, [cert, ca]), ca


@pytest.fixture(scope="module", params=database_urls(), ids=lambda p: p[0])
def store(request, pki, tmp_path_factory):
    kind, url = request.param
    url = _fresh_postgres(url) if kind == "postgresql" else tmp_path_factory.mktemp("store") / "source.db"
    s = SealedStore(url, signer=pki[0])
    s.register_point(POINT, since=SINCE)
    special = {100: (None, "B"), 200: (Decimal(0), "F")}
    minutes = [Reading(SINCE + dt.timedelta(minutes=i), *special.get(i, (Decimal(231000 + i % 97), "N")))
               for i in range(2 * 1440 + 90) if i % 500 != 7]               # a few telegrams lost
    assert s.append("CEMS-CO2", minutes).accepted == len(minutes)
    s.seal(until=SINCE + dt.timedelta(days=1, hours=6))       # in two steps: a day splits into two batches
    s.seal(until=SINCE + dt.timedelta(days=2, minutes=30))
    yield s
    s.close()


def _envelopes(store, granularity):
    return [json.loads(b.envelope) for b in store.batches("CEMS-CO2", granularity, 0, 2**40)]


def _verifier(pki, granularity="minute", **kw):
    return BatchVerifier(tx.ChainResolver([pki[1]]), point_id="CEMS-CO2", granularity=granularity, **kw)


def test_sealed_series_is_complete_and_verifies(store, pki):
    envs = _envelopes(store, "minute")
    assert [e["payload"]["count"] for e in envs] == [1440, 360, 1080, 30]     # never across a local midnight
    v = _verifier(pki)
    out = [v.verify(e) for e in envs]
    assert out[0].payload["start"] == "2026-09-30T16:00:00Z" and out[0].payload["previousBatchDigest"] == "0" * 64
    flags = "".join(b.payload["flags"] for b in out)
    values = [x for b in out for x in b.payload["values"]]
    assert len(flags) == 2 * 1440 + 30 and flags[100] == "B" and values[100] == "" and flags[200] == "F"
    assert flags[7] == "B" and values[7] == ""                          # never received: sealed as B
    assert values[0] == "231000" and flags.count("N") == len(flags) - 2 - 6
    for e in envs:   # the one-pass form is the RFC 8785 form; the generic verifier agrees
        assert canonical_payload(e["payload"]) == trust.canonicalize(e["payload"])
        trust.verify_document(e, tx.ChainResolver([pki[1]]))


def test_hourly_and_daily_series_are_derived(store, pki):
    hv, dv = _verifier(pki, "hour"), _verifier(pki, "day")
    hours = [hv.verify(e).payload for e in _envelopes(store, "hour")]
    assert [h["count"] for h in hours] == [24, 6, 18] and hours[0]["values"][0] != ""
    assert all(f == "N" for h in hours for f in h["flags"])
    days = [dv.verify(e).payload for e in _envelopes(store, "day")]
    assert [d["count"] for d in days] == [1, 1] and days[1]["start"] == "2026-10-01T16:00:00Z" and days[0]["step"] == "P1D"


def test_store_refuses_what_it_cannot_keep(store, pki, tmp_path):
    late = store.append("CEMS-CO2", [Reading(SINCE, Decimal(1), "N")])
    assert late.late == 1 and late.accepted == 0                        # a sealed batch never changes
    t = SINCE + dt.timedelta(days=3)
    first = store.append("CEMS-CO2", [Reading(t, Decimal(5), "N")])
    again = store.append("CEMS-CO2", [Reading(t, Decimal(5), "N")])
    assert first.accepted == 1 and again.duplicates == 1 and again.accepted == 0
    for bad in (Reading(SINCE - dt.timedelta(minutes=1), Decimal(1), "N"),    # before commissioning
                Reading(t + dt.timedelta(seconds=30), Decimal(1), "N"),       # off the minute
                Reading(t, None, "N"), Reading(t, "1e5", "N"), Reading(t, Decimal(1), "X"), Reading(t, 1.5, "N")):
        with pytest.raises(ValueError):
            store.append("CEMS-CO2", [bad])
    with pytest.raises(KeyError):
        store.append("NO-SUCH-POINT", [])
    with pytest.raises(RuntimeError):
        SealedStore(tmp_path / "x.db").seal(until=t)                     # only the key holder seals
    with pytest.raises(ValueError):
        store.register_point({**POINT, "pointId": "P2"}, since=SINCE + dt.timedelta(hours=1))  # not a midnight


def test_tampering_omission_reordering_are_detected(store, pki):
    envs = _envelopes(store, "minute")

    def verify_all(seq):
        v = _verifier(pki)
        for e in seq:
            v.verify(e)

    verify_all(envs)
    for mutate in (lambda p: p["values"].__setitem__(5, "231001"),       # a value
                   lambda p: p.__setitem__("flags", "M" + p["flags"][1:]),  # a flag
                   lambda p: (p["values"].pop(), p.__setitem__("count", p["count"] - 1),
                              p.__setitem__("flags", p["flags"][:-1])),  # a value dropped consistently
                   lambda p: p.__setitem__("start", "2026-09-30T16:01:00Z")):  # shifted in time
        forged = copy.deepcopy(envs)
        mutate(forged[1]["payload"])
        with pytest.raises(BatchError) as exc:
            verify_all(forged)
        assert exc.value.position == 1
    for seq in (envs[:1] + envs[2:], [envs[1], envs[0]] + envs[2:], envs[:2] + envs[1:]):  # omit, reorder, repeat
        with pytest.raises(BatchError):
            verify_all(seq)
    with pytest.raises(BatchError):                                  # a batch of another point
        BatchVerifier(tx.ChainResolver([pki[1]]), point_id="OTHER").verify(envs[0])


def test_a_batch_signed_with_the_prehash_algorithm_verifies_and_its_tampering_is_detected(store, pki):
    """Every signed document may carry either algorithm of docs/trust-profile.md §2; a source
    that seals with SM2-with-SM3-prehash is verified (the same chain), and a value changed
    after signing or the algorithm relabelled is refused."""
    signer = pki[0]
    envs = _envelopes(store, "minute")
    assert {e["signature"]["algorithm"] for e in envs} == {"SM2-with-SM3"}  # cedx's source seals so
    resigned = [trust.sign_document(e["payload"], signer.key, certificate_chain=signer.certificate_chain,
                                    envelope_fields={"specVersion": e["specVersion"]}, instants={},
                                    algorithm=trust.PREHASH_ALGORITHM) for e in envs]
    verifier = _verifier(pki)
    for e in resigned:
        verifier.verify(e)
    for mutate in (lambda e: e["payload"]["values"].__setitem__(5, "231001"),
                   lambda e: e["signature"].__setitem__("algorithm", "SM2-with-SM3")):
        forged = copy.deepcopy(resigned)
        mutate(forged[0])
        with pytest.raises(BatchError, match="signature invalid"):
            _verifier(pki).verify(forged[0])


def test_a_skipped_interval_is_detected_even_when_signed_by_the_source(store, pki):
    """Sequence and digest link correctly, but the batch starts an hour after its predecessor
    ended: values of that hour were silently left out."""
    signer = pki[0]
    envs = _envelopes(store, "minute")
    first = envs[0]["payload"]
    digest = trust.sm3(canonical_payload(first)).hex()
    forged = {**first, "start": "2026-10-01T17:00:00Z", "count": 2, "values": ["1", "2"], "flags": "NN",
              "sequenceNumber": 2, "previousBatchDigest": digest}
    _, envelope = signer.seal(forged)
    v = _verifier(pki)
    v.verify(envs[0])
    with pytest.raises(BatchError, match="not where its predecessor ended"):
        v.verify(json.loads(envelope))


def test_a_later_pull_continues_the_chain_from_its_anchor(store, pki):
    envs = _envelopes(store, "minute")
    v = _verifier(pki)
    v.verify(envs[0])
    later = _verifier(pki, anchor=v.head)
    for e in envs[1:]:
        later.verify(e)
    with pytest.raises(BatchError):
        _verifier(pki, anchor=v.head).verify(envs[2])                 # envs[1] is missing


def test_other_signers_are_refused(store, pki):
    intruder_ca = tx.create_ca(trust.generate_private_key(), {"common_name": "intruder"})
    with pytest.raises(BatchError):
        BatchVerifier(tx.ChainResolver([intruder_ca])).verify(_envelopes(store, "minute")[0])


def test_concurrent_writer_and_sealer_lose_nothing(pki, tmp_path, request):
    """A bridge appending while the source seals (two store objects, as two processes would
    have): every reading is either in a sealed batch with its value or reported late."""
    import threading

    kind, url = database_urls()[-1]
    url = _fresh_postgres(url) if kind == "postgresql" else tmp_path / "shared.db"
    sealer, writer = SealedStore(url, signer=pki[0]), SealedStore(url)
    point = {**POINT, "pointId": "RACE"}
    sealer.register_point(point, since=SINCE)
    sent, late = {}, 0

    def write():
        nonlocal late
        for i in range(0, 720, 6):
            chunk = [Reading(SINCE + dt.timedelta(minutes=i + k), Decimal(1000 + i + k), "N") for k in range(6)]
            late += writer.append("RACE", chunk).late
            sent.update({int(r.time.timestamp()): str(r.value) for r in chunk})

    t = threading.Thread(target=write)
    t.start()
    for m in range(0, 720, 24):
        sealer.seal("RACE", until=SINCE + dt.timedelta(minutes=m))
    t.join()
    sealer.seal("RACE", until=SINCE + dt.timedelta(minutes=720))
    got = {}
    v = BatchVerifier(tx.ChainResolver([pki[1]]))
    for b in sealer.batches("RACE", "minute", 0, 2**40):
        p = v.verify(json.loads(b.envelope)).payload
        for i, (value, flag) in enumerate(zip(p["values"], p["flags"])):
            if flag == "N":
                got[b.start + 60 * i] = value
    assert v.head.end == int((SINCE + dt.timedelta(minutes=720)).timestamp())
    assert len(got) + late == len(sent) == 720
    assert all(sent[t_] == value for t_, value in got.items())
    sealer.close()
    writer.close()


@pytest.mark.parametrize("cells,expected", [
    ([("10", "N")] * 50 + [("900", "C")] * 10, ("10", "N")),                       # C excluded from the mean
    ([("10", "N")] * 30 + [("300000", "T")] * 20 + [("300010", "T")] * 10, ("300003", "T")),  # T mean >= upper
    ([("10", "N")] * 30 + [("", "M")] * 20 + [("12", "S")] * 10, ("", "M")),       # M carries no number
    ([("10.5", "N")] * 10, ("", "B")),                                                # 50 instants never received
    ([("7", "S")] * 60, ("7", "S")),                                                  # manual entries: a value, not valid
])
def test_a_derived_value_counts_n_only_and_keeps_flags_consistent(cells, expected):
    """Spec QualityFlag: only N enters the mean (75 % of the expected values needed); otherwise
    the dominant other flag, with the mean of its values when it must carry one (R-ACQ-001)."""
    from cedx.acquisition.store import _aggregate

    assert _aggregate(cells, 60) == expected


def test_b_carries_no_value_even_without_a_comparable_range(tmp_path, pki):
    # The instrument's range is in another unit than the point (no range check possible): the
    # presence rules still hold — B (communication error) with a number is refused (R-ACQ-005)
    # by both writers, before anything is sealed.
    point = copy.deepcopy(POINT)
    point["instrument"]["range"]["unit"] = "kPa"
    store = SealedStore(tmp_path / "b.db", signer=pki[0])
    store.register_point(point, since=SINCE)
    t = SINCE + dt.timedelta(minutes=5)
    with pytest.raises(ValueError, match="R-ACQ-005"):
        store.append("CEMS-CO2", [Reading(t, Decimal(7), "B")])
    with pytest.raises(ValueError, match="R-ACQ-005"):
        store.append_and_seal("CEMS-CO2", [Reading(t, Decimal(7), "B")], until=SINCE + dt.timedelta(hours=1))
    assert store.append("CEMS-CO2", [Reading(t, None, "B")]).accepted == 1
