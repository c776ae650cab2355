"""Client side of the acquisition interface: streaming, verified pulls of sealed batches.

``pull_batches`` (one point) and ``pull_points`` (several, one after another) follow the pages
of listMeasurementBatches and yield every batch only after it verified (cedx.acquisition.batches.BatchVerifier: signature to the trust anchors, chain,
contiguity). A fetcher thread downloads and parses page k+1 while the caller verifies page k;
at most three pages are held (one being verified, one queued, one being fetched), so memory
does not grow with the length of the period.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .. import spec
from ..generated.operations import OPERATIONS
from ..runtime.client import Format
from ..runtime.errors import ApiError
from ..trust import x509 as tx
from .batches import BatchVerifier, ChainHead, VerifiedBatch

if TYPE_CHECKING:
    from ..generated.client import AcquisitionClient

_END = object()


def _pages(client: AcquisitionClient, point_id: str, query: dict[str, Any], fmt: Format) -> Iterator[dict[str, Any]]:
    op = OPERATIONS["listMeasurementBatches"]
    path = op.path.replace("{pointId}", quote(point_id, safe=""))
    cursor = None
    while True:
        q = {**query, **({"cursor": cursor} if cursor else {})}
        hdrs = {"Accept": f"{fmt.value}, application/problem+json", **client._auth_header()}
        resp = client._send(op, path, urlencode(q), hdrs, b"")
        if resp.status_code >= 400:
            try:
                problem = resp.json()
            except ValueError:
                problem = {"code": "HTTP_ERROR", "detail": resp.text[:300]}
            raise ApiError.from_problem(resp.status_code, problem if isinstance(problem, dict) else {})
        if fmt is Format.XML:
            _, page = spec.context(op.spec_package).xml_codec.loads(resp.content, op.response_schema)
        else:
            page = json.loads(resp.content)
        yield page
        cursor = page.get("nextCursor")
        if not cursor or not page.get("items"):
            return


def pull_batches(client: AcquisitionClient, point_id: str, *, granularity: str, from_: str, to: str, trust_anchors: list[bytes],
                 limit: int | None = None, anchor: ChainHead | None = None, format: Format | None = None,
                 prefetch: bool = True, confidential: Any = None) -> Iterator[VerifiedBatch]:
    """Every batch of the point overlapping [from_, to), verified, in order. ``anchor`` is the
    ChainHead of an earlier pull that this one continues (the head is ``verifier.head``).
    ``confidential`` (ClientCredentials, or an open ClientSession) pulls in the confidentiality
    mode: encrypted pages only, never a clear one (cedx.acquisition.confidential)."""
    fmt = Format(format or client.format)
    query = {"granularity": granularity, "from": from_, "to": to, **({"limit": limit} if limit else {})}
    verifier = BatchVerifier(_resolver(trust_anchors), point_id=point_id, granularity=granularity, anchor=anchor)
    if confidential is not None:
        from . import confidential as conf

        session = confidential if isinstance(confidential, conf.ClientSession) else \
            conf.open_session(client, confidential, trust_anchors)
        pages = conf.encrypted_pages(client, session, point_id, query)
    else:
        pages = _pages(client, point_id, query, fmt)
    if prefetch:
        pages = _prefetched(pages)
    for page in pages:
        for envelope in page.get("items", []):
            yield verifier.verify(envelope)


_RESOLVERS: dict[tuple[bytes, ...], tx.ChainResolver] = {}


def _resolver(trust_anchors: list[bytes]) -> tx.ChainResolver:
    """One resolver per set of anchors: a validated certificate chain is reused across pulls
    (ChainResolver re-validates after its time-to-live)."""
    key = tuple(trust_anchors)
    if key not in _RESOLVERS:
        if len(_RESOLVERS) > 16:
            _RESOLVERS.clear()
        _RESOLVERS[key] = tx.ChainResolver(trust_anchors)
    return _RESOLVERS[key]


def pull_points(client: AcquisitionClient, point_ids: list[str], *, granularity: str, from_: str, to: str, trust_anchors: list[bytes],
                limit: int | None = None, format: Format | None = None) -> Iterator[tuple[str, VerifiedBatch]]:
    """Every point's batches, verified, as (point id, batch), point after point. The fetcher
    runs ahead across point boundaries too, so the round trip of each point's first page
    overlaps the verification of the previous point (short periods of many points)."""
    fmt = Format(format or client.format)
    query = {"granularity": granularity, "from": from_, "to": to, **({"limit": limit} if limit else {})}

    def pages() -> Iterator[tuple[str, dict[str, Any]]]:
        for pid in point_ids:
            for page in _pages(client, pid, query, fmt):
                yield pid, page

    verifiers: dict[str, BatchVerifier] = {}
    resolver = _resolver(trust_anchors)
    for pid, page in _prefetched(pages()):
        v = verifiers.get(pid)
        if v is None:
            verifiers.clear()   # points come one after another: keep one verifier
            v = verifiers[pid] = BatchVerifier(resolver, point_id=pid, granularity=granularity)
        for envelope in page.get("items", []):
            yield pid, v.verify(envelope)


def _prefetched(pages: Iterator[Any]) -> Iterator[Any]:
    q: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        q.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=fetch, daemon=True, name="cedx-prefetch")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
