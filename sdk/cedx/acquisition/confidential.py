"""Confidentiality mode of the acquisition interface (docs/key-exchange.md §6).

The client (initiator A) and the source (responder B) agree a key K by the SM2 key exchange of
GB/T 32918.3 with their certificates' keys and key confirmation in both directions; from K each
side derives separate SM4-GCM keys per direction and purpose. A page of batches is the clear
JSON page (batches signed as usual) encrypted as a whole: sign-then-encrypt, so the decrypted
page verifies exactly like a clear one. The additional authenticated data binds the session,
the point, the request (granularity, range, cursor, limit) and the content type, so a page
cannot be moved to another request; nonces are a direction prefix and a per-key counter, so a
nonce never repeats under one key.

Server side: ``ConfidentialMode`` (a mixin of the AcquisitionService implementations).
Client side: ``ClientCredentials`` + ``open_session`` + ``encrypted_pages`` (used by
``pull_batches(..., confidential=...)``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import requests

from ..generated.constants import SPEC_VERSION
from ..generated.operations import OPERATIONS
from ..generated.server import AcquisitionService, Reply
from ..runtime.errors import ApiError, Problem
from ..trust import key_exchange as kx
from ..trust import reqsign, sm4
from ..trust import x509 as tx
from ..trust.errors import CertificateError, DecryptionError, InvalidKey, ReplayError, TrustError
from ..trust.keys import SM2PrivateKey, SM2PublicKey
from ..trust.sm3 import kdf

if TYPE_CHECKING:
    from ..generated import models
    from ..runtime.client import BaseClient
    from ..runtime.server import RequestContext

ENCRYPTION = "SM4-GCM"
CONTENT_TYPE = "application/json"
SHARED_KEY_LENGTH = 32          # bytes of K; the SM4 keys are derived from it
SESSION_LIFETIME = 600          # seconds
MAX_SESSIONS, MAX_SESSIONS_PER_CLIENT = 1000, 16
LABEL_PAGES = b"cedx-acq-v1 source-to-client pages"
LABEL_CLIENT = b"cedx-acq-v1 client-to-source"     # reserved for requests; not used yet
NONCE_PREFIX_PAGES = b"\x00\x00\x00\x01"           # 4-byte direction prefix ‖ 8-byte counter
AAD_VERSION = "cedx-acq-page-v1"


class ConfidentialityError(TrustError):
    """The client refuses a confidential exchange: bad confirmation, untrusted certificate,
    undecryptable page or an answer that is not encrypted (downgrade)."""


def derive_key(shared: bytes, label: bytes, session_id: str) -> bytes:
    """A 16-byte SM4 key for one direction and purpose: KDF(K ‖ label ‖ 0x00 ‖ sessionId)."""
    return kdf(shared + label + b"\x00" + session_id.encode("ascii"), sm4.KEY_SIZE)


def page_aad(session_id: str, point_id: str, granularity: str, from_: str, to: str,
             cursor: str | None, limit: int | None, content_type: str = CONTENT_TYPE) -> bytes:
    """AAD of one encrypted page: the fields joined by LF, UTF-8 (docs/key-exchange.md §6.4)."""
    fields = (AAD_VERSION, session_id, point_id, granularity, from_, to, cursor or "",
              "" if limit is None else str(limit), content_type)
    return "\n".join(fields).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Problem("INVALID_PARAMETER", f"{what}: not valid base64") from None


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------ source side
@dataclass
class _Session:
    principal: str
    expires: float
    client_key: SM2PublicKey    # of the client certificate: signs the confirmation
    page_key: bytes
    expected_confirmation: bytes
    confirmed: bool = False
    counter: int = 0


@dataclass
class SessionTable:
    """Confidential sessions of one source, in memory (a restart ends them; clients reopen)."""

    client_trust_anchors: list[bytes]
    user_id: str
    key: SM2PrivateKey
    chain: list[bytes]
    required: bool = False
    lifetime: int = SESSION_LIFETIME
    clock: Callable[[], float] = time.time
    sessions: dict[str, _Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    nonces: reqsign.MemoryNonceStore = field(default_factory=reqsign.MemoryNonceStore)
    base_url: str | None = None   # the announced base URL: its path is part of the signed path

    def verify_request(self, ctx: RequestContext, key: SM2PublicKey) -> None:
        """The request signature (X-Cedx-*), made with the key of the client certificate:
        proof of possession at the handshake, and replayed handshake requests are refused."""
        verifier = reqsign.RequestVerifier(lambda kid: key if kid == key.fingerprint() else None,
                                           nonce_store=self.nonces)
        try:
            verifier.verify(ctx.request.method, reqsign.signed_path(ctx.request.url.path, self.base_url),
                            ctx.request.url.query, ctx.request.headers, ctx.raw_body or b"")
        except ReplayError as exc:
            raise Problem("REQUEST_REPLAYED", str(exc)) from None
        except TrustError as exc:
            raise Problem("REQUEST_SIGNATURE_INVALID", f"{exc} (sign with the key of the certificate sent)") from None

    def _prune(self, now: float) -> None:
        self.sessions = {k: s for k, s in self.sessions.items() if s.expires > now}

    def get(self, session_id: str, principal: str, *, confirmed: bool = True) -> _Session:
        with self.lock:
            s = self.sessions.get(session_id)
            # Another client's session is reported as unknown: ids are not an oracle.
            if s is None or not secrets.compare_digest(s.principal, principal):
                raise Problem("SESSION_UNKNOWN", "no such confidential session for this client; open one")
            if s.expires <= self.clock():
                del self.sessions[session_id]
                raise Problem("SESSION_EXPIRED", "the confidential session has expired; open a new one")
            if confirmed and not s.confirmed:
                raise Problem("SESSION_STATE_CONFLICT", "the session is not confirmed yet: send S_A first")
            return s


class ConfidentialMode(AcquisitionService):
    """The three confidentiality operations of an AcquisitionService (its implementations
    inherit them); inactive (403 CONFIDENTIALITY_UNAVAILABLE) until ``enable_confidentiality``
    is called."""

    sessions: SessionTable | None = None

    def enable_confidentiality(self, client_trust_anchors: list[bytes], *, user_id: str, key: SM2PrivateKey,
                               chain: list[bytes], required: bool = False,
                               lifetime: int = SESSION_LIFETIME, base_url: str | None = None) -> SessionTable:
        self.sessions = SessionTable(list(client_trust_anchors), user_id, key, list(chain), required, lifetime,
                                     base_url=base_url)
        return self.sessions

    def _table(self) -> SessionTable:
        if self.sessions is None or not self.sessions.client_trust_anchors:
            raise Problem("CONFIDENTIALITY_UNAVAILABLE", "this source has no trust anchors for client certificates")
        return self.sessions

    def open_confidential_session(self, ctx: RequestContext, *,
                                  body: models.SessionRequest) -> models.SessionOffer | Reply:
        table = self._table()
        principal = ctx.principal or ""
        chain = [_unb64(c.root, f"certificateChain[{i}]") for i, c in enumerate(body.certificate_chain)]
        peer_ephemeral = _unb64(body.ephemeral_key, "ephemeralKey")
        try:
            peer_key = tx.validate_chain(chain[0], trust_anchors=table.client_trust_anchors, intermediates=chain[1:])
        except (CertificateError, ValueError) as exc:
            raise Problem("CERTIFICATE_INVALID", f"client certificate not trusted: {exc}") from None
        table.verify_request(ctx, peer_key)
        r, own_ephemeral = kx.generate_ephemeral()
        try:
            agreement = kx.agree("responder", table.user_id.encode(), table.key.private_value, r,
                                 body.user_id.encode("utf-8"), peer_key.raw(), peer_ephemeral, SHARED_KEY_LENGTH)
        except InvalidKey as exc:
            raise Problem("INVALID_PARAMETER", f"ephemeralKey: {exc}") from None
        except kx.KeyExchangeError as exc:
            raise Problem("KEY_CONFIRMATION_FAILED", str(exc)) from None
        del r   # the ephemeral private key is not kept
        session_id = secrets.token_urlsafe(24)
        now = table.clock()
        with table.lock:
            table._prune(now)
            if len(table.sessions) >= MAX_SESSIONS or \
                    sum(s.principal == principal for s in table.sessions.values()) >= MAX_SESSIONS_PER_CLIENT:
                raise Problem("RATE_LIMITED", "too many open confidential sessions; let some expire",
                              headers={"Retry-After": str(table.lifetime)})
            table.sessions[session_id] = _Session(principal, now + table.lifetime, peer_key,
                                                  derive_key(agreement.key, LABEL_PAGES, session_id),
                                                  agreement.expected_confirmation)
        offer = {"specVersion": SPEC_VERSION, "sessionId": session_id, "certificateChain": [_b64(c) for c in table.chain],
                 "userId": table.user_id, "ephemeralKey": _b64(own_ephemeral),
                 "confirmation": _b64(agreement.confirmation), "encryption": ENCRYPTION,
                 "expiresAt": _utc(now + table.lifetime)}
        return Reply(offer, status=201, headers={"Cache-Control": "no-store"})

    def confirm_confidential_session(self, ctx: RequestContext, *, session_id: str,
                                     body: models.SessionConfirmation) -> models.SessionState | Reply:
        table = self._table()
        s = table.get(session_id, ctx.principal or "", confirmed=False)
        table.verify_request(ctx, s.client_key)
        received = _unb64(body.confirmation, "confirmation")
        with table.lock:
            if s.confirmed:
                raise Problem("SESSION_STATE_CONFLICT", "the session is already confirmed")
            if not secrets.compare_digest(received, s.expected_confirmation):
                table.sessions.pop(session_id, None)   # K is discarded with the session
                raise Problem("KEY_CONFIRMATION_FAILED", "S_A does not match; the session was discarded")
            s.confirmed = True
        return Reply({"specVersion": SPEC_VERSION, "sessionId": session_id, "status": "confirmed", "expiresAt": _utc(s.expires)},
                     headers={"Cache-Control": "no-store"})

    def list_encrypted_batches(self, ctx: RequestContext, *, session_id: str, point_id: str, granularity: str,
                               from_: str, to: str, limit: int | None,
                               cursor: str | None) -> models.EncryptedBatchPage | Reply:
        table = self._table()
        s = table.get(session_id, ctx.principal or "")
        outer, ctx.format = ctx.format, CONTENT_TYPE   # the plaintext is always the JSON page
        try:
            clear = self.list_measurement_batches(ctx, point_id=point_id, granularity=granularity, from_=from_,
                                                  to=to, limit=limit, cursor=cursor)
        finally:
            ctx.format = outer   # the outer answer in the negotiated form (JSON or XML)
        plaintext = _body_bytes(clear)
        with table.lock:
            s.counter += 1
            nonce = NONCE_PREFIX_PAGES + s.counter.to_bytes(8, "big")
        sealed = sm4.gcm_encrypt(s.page_key, nonce, plaintext,
                                 page_aad(session_id, point_id, granularity, from_, to, cursor, limit))
        return Reply({"specVersion": SPEC_VERSION, "sessionId": session_id, "encryption": ENCRYPTION, "contentType": CONTENT_TYPE,
                      "nonce": _b64(nonce), "ciphertext": _b64(sealed)}, headers={"Cache-Control": "no-store"})


def _body_bytes(result: object) -> bytes:
    """The bytes a clear listMeasurementBatches answer would carry."""
    from starlette.responses import StreamingResponse

    if isinstance(result, StreamingResponse):   # a large page: drain it on the event loop
        import anyio.from_thread

        async def collect() -> bytes:
            # starlette sends a str chunk as UTF-8 (its default charset)
            return b"".join([chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
                             async for chunk in result.body_iterator])

        return anyio.from_thread.run(collect)
    if hasattr(result, "body") and isinstance(result.body, (bytes, bytearray)):
        return bytes(result.body)
    record = result.body if isinstance(result, Reply) else result
    if hasattr(record, "model_dump"):
        record = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ------------------------------------------------------------------------------ client side
@dataclass(frozen=True)
class ClientCredentials:
    """What a client needs for the confidentiality mode: its SM2 key, its certificate chain
    (DER, own certificate first) and its user ID (UTF-8; e.g. its credit code)."""

    key: SM2PrivateKey
    chain: list[bytes]
    user_id: str

    def __repr__(self) -> str:   # never print the key
        return f"<ClientCredentials user_id={self.user_id!r}>"


@dataclass
class ClientSession:
    session_id: str
    page_key: bytes
    expires_at: str
    last_counter: int = 0

    def __repr__(self) -> str:
        return f"<ClientSession {self.session_id[:6]}… expires {self.expires_at}>"

    def open_page(self, page: object, *, point_id: str, granularity: str, from_: str, to: str,
                  cursor: str | None, limit: int | None) -> dict[str, Any]:
        """Decrypt one EncryptedBatchPage; refuse anything else (no downgrade to a clear page)."""
        if not isinstance(page, dict) or "ciphertext" not in page:
            raise ConfidentialityError("the source answered a clear page in confidential mode (downgrade refused)")
        if page.get("encryption") != ENCRYPTION or page.get("contentType") != CONTENT_TYPE:
            raise ConfidentialityError(f"unsupported encryption {page.get('encryption')!r} / "
                                       f"content type {page.get('contentType')!r}")
        if page.get("sessionId") != self.session_id:
            raise ConfidentialityError("the page belongs to another session")
        try:
            nonce = base64.b64decode(page.get("nonce", ""), validate=True)
            sealed = base64.b64decode(page["ciphertext"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ConfidentialityError("nonce or ciphertext is not valid base64") from None
        if len(nonce) != sm4.GCM_NONCE_SIZE or nonce[:4] != NONCE_PREFIX_PAGES:
            raise ConfidentialityError("the nonce is not a source-to-client page nonce")
        counter = int.from_bytes(nonce[4:], "big")
        if counter <= self.last_counter:   # a page replayed within the session
            raise ConfidentialityError("the page nonce repeats an earlier one (replay)")
        try:
            plaintext = sm4.gcm_decrypt(self.page_key, nonce, sealed,
                                        page_aad(self.session_id, point_id, granularity, from_, to, cursor, limit))
        except DecryptionError as exc:
            raise ConfidentialityError(f"the page does not decrypt: {exc}") from None
        self.last_counter = counter
        page_clear = json.loads(plaintext)
        if not isinstance(page_clear, dict):
            raise ConfidentialityError("the decrypted page is not a JSON object")
        return page_clear


def _problem(resp: requests.Response) -> ApiError:
    try:
        problem = resp.json()
    except ValueError:
        problem = {"code": "HTTP_ERROR", "detail": resp.text[:300]}
    return ApiError.from_problem(resp.status_code, problem if isinstance(problem, dict) else {})


def _path(op_id: str, **params: str) -> str:
    """The operation's path (from the spec) with its parameters filled in, e.g. sessionId."""
    path = OPERATIONS[op_id].path
    for name, value in params.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


def _post(client: BaseClient, op_id: str, record: dict[str, Any], key: SM2PrivateKey, **params: str) -> dict[str, Any]:
    """One handshake request, signed with the certificate's key and sent once: not through the
    client's retrying send, which would re-sign with its own key or repeat the nonce."""
    method, path = OPERATIONS[op_id].method, _path(op_id, **params)
    body = json.dumps({"specVersion": SPEC_VERSION, **record}).encode()
    hdrs = {"Accept": "application/json, application/problem+json", "Content-Type": "application/json",
            **client._auth_header(),
            **reqsign.sign_request(key, method, reqsign.request_path(client.base_url, path), "", body)}
    resp = client.session.request(method, f"{client.base_url}{path}", data=body, headers=hdrs,
                                  timeout=client.timeout, verify=client.verify)
    if resp.status_code >= 400:
        raise _problem(resp)
    answer = resp.json()
    if not isinstance(answer, dict):
        raise ConfidentialityError(f"{op_id}: the answer is not a JSON object")
    return answer


def open_session(client: BaseClient, credentials: ClientCredentials, trust_anchors: list[bytes]) -> ClientSession:
    """Handshake: send chain, ID and R_A; check the source's chain and S_B; send S_A."""
    r, own_ephemeral = kx.generate_ephemeral()
    offer = _post(client, "openConfidentialSession",
                  {"certificateChain": [_b64(c) for c in credentials.chain], "userId": credentials.user_id,
                   "ephemeralKey": _b64(own_ephemeral)}, credentials.key)
    try:
        chain = [base64.b64decode(c, validate=True) for c in offer["certificateChain"]]
        source_key = tx.validate_chain(chain[0], trust_anchors=trust_anchors, intermediates=chain[1:])
        agreement = kx.agree("initiator", credentials.user_id.encode("utf-8"), credentials.key.private_value, r,
                             offer["userId"].encode("utf-8"), source_key.raw(),
                             base64.b64decode(offer["ephemeralKey"], validate=True), SHARED_KEY_LENGTH)
        agreement.confirm(base64.b64decode(offer["confirmation"], validate=True))
    except (KeyError, IndexError, TypeError, binascii.Error, ValueError) as exc:
        raise ConfidentialityError(f"malformed session offer: {exc}") from None
    except CertificateError as exc:
        raise ConfidentialityError(f"source certificate not trusted: {exc}") from None
    except TrustError as exc:   # bad R_B, or S_B does not match: K is discarded
        raise ConfidentialityError(f"key exchange with the source failed: {exc}") from None
    finally:
        del r
    if offer.get("encryption") != ENCRYPTION:
        raise ConfidentialityError(f"unsupported encryption {offer.get('encryption')!r}")
    session_id = offer["sessionId"]
    _post(client, "confirmConfidentialSession", {"confirmation": _b64(agreement.confirmation)}, credentials.key,
          sessionId=session_id)
    return ClientSession(session_id, derive_key(agreement.key, LABEL_PAGES, session_id), offer["expiresAt"])


def encrypted_pages(client: BaseClient, session: ClientSession, point_id: str,
                    query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The decrypted pages of listEncryptedBatches, following nextCursor."""
    op = OPERATIONS["listEncryptedBatches"]
    path = _path(op.operation_id, sessionId=session.session_id, pointId=point_id)
    cursor = None
    while True:
        q = {**query, **({"cursor": cursor} if cursor else {})}
        hdrs = {"Accept": "application/json, application/problem+json", **client._auth_header()}
        resp = client._send(op, path, urlencode(q), hdrs, b"")
        if resp.status_code >= 400:
            raise _problem(resp)
        try:
            answer = json.loads(resp.content)
        except ValueError:
            raise ConfidentialityError("the answer is not JSON") from None
        page = session.open_page(answer, point_id=point_id, granularity=q["granularity"], from_=q["from"],
                                 to=q["to"], cursor=cursor, limit=q.get("limit"))
        yield page
        cursor = page.get("nextCursor")
        if not cursor or not page.get("items"):
            return
