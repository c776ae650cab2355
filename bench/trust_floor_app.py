"""The trust profile's floor, served for bench/reporting.py (not part of cedx).

The reference platform (the same app, server and settings as `cedx serve platform`) plus one
bench-only route that does what every accepted report needs of SM2 and nothing else: verify
the request signature the client made for this request and the document's signature, then
sign the receipt and its time-stamp token (the client makes one SM2 signature per request, as
for a report, over a nonce only: no string to sign, no body SM3). No body, no parsing,
validation, rules, storage or receipt building. Its rate beside /health is the highest reports/trivial ratio an
implementation of this trust profile can reach with this SM2 backend on this machine, however
little the rest of its work costs.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from cedx import trust
from cedx.platform.app import create_served_app

#: A fixed key for the entity's side, known to the bench client (never a real one).
ENTITY_KEY = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
DOCUMENT = b'{"payload":{"period":"2026-10"}}'


def create_app() -> FastAPI:
    app = create_served_app()
    entity = trust.SM2PrivateKey(ENTITY_KEY)
    entity_public = entity.public_key()
    document_signature = entity.sign(DOCUMENT)
    platform_key = trust.SM2PrivateKey.generate()  # the receipt's and the TSA's keys cost the same

    @app.post("/bench/trust-floor", include_in_schema=False)
    def trust_floor(request: Request) -> Response:  # a worker thread, like /health and the reports
        nonce = request.headers["x-floor-nonce"].encode()
        entity_public.verify(bytes.fromhex(request.headers["x-floor-signature"]), nonce)  # request signature
        entity_public.verify(document_signature, DOCUMENT)  # document signature
        platform_key.sign(nonce)  # receipt
        platform_key.sign(nonce)  # time-stamp token
        return Response("ok", media_type="text/plain")

    return app
