"""An independent reporting client written from docs/trust-profile.md, spec/README.md and the
published spec alone: the Python standard library plus the `openssl` command line, nothing from
cedx (tests/interop/test_conformance.py checks that by AST and in a clean interpreter).

It is deliberately a second implementation of every wire rule — canonical form (RFC 8785 with
instants rewritten by schema type), signatures, request signatures, the JSON ⇄ XML mapping,
receipt, chain and time-stamp verification — so that a rule cedx and its docs disagree on fails
here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "docs" / "trust-profile.md"
BUNDLE = REPO / "sdk" / "cedx" / "generated" / "openapi.json"  # the published single-file spec
DISTID = "distid:1234567812345678"
NS = "urn:cedx:1.0"
UNPROTECTED = ("value", "certificateChain", "timestampToken")


# --------------------------------------------------------------------------- openssl
class OpenSSL:
    def __init__(self, workdir: Path):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["openssl", *args], cwd=self.dir, input=input, capture_output=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
        return proc

    def file(self, data: bytes, suffix: str = "") -> str:
        name = f"f-{secrets.token_hex(6)}{suffix}"
        (self.dir / name).write_bytes(data)
        return name

    def sm3(self, data: bytes) -> str:
        return self.run("dgst", "-sm3", "-r", input=data).stdout.decode()[:64]

    def sign(self, key_pem: str, data: bytes) -> bytes:
        return self.run("dgst", "-sm3", "-sign", key_pem, "-sigopt", DISTID, input=data).stdout

    def verify(self, pub_pem: str, signature: bytes, data: bytes) -> bool:
        sig = self.file(signature)
        return self.run("dgst", "-sm3", "-verify", pub_pem, "-sigopt", DISTID, "-signature", sig,
                        input=data, check=False).returncode == 0

    def key_id(self, pub_pem: str) -> str:
        spki = self.run("pkey", "-pubin", "-in", pub_pem, "-outform", "DER").stdout
        return self.sm3(spki[-65:])  # 04||X||Y

    def cert_pubkey(self, cert_pem: str) -> str:
        out = self.file(b"", ".pem")
        self.run("x509", "-in", cert_pem, "-pubkey", "-noout", "-out", out)
        return out

    def der_to_pem(self, der: bytes) -> str:
        out = self.file(b"", ".pem")
        self.run("x509", "-inform", "DER", "-in", self.file(der), "-out", out)
        return out


# --------------------------------------------------------------------------- canonical form (profile §1)
_INSTANT = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")


def instant_paths_from_profile() -> set[str]:
    """The DateTime member paths, read from the list in profile §1.3."""
    text = PROFILE.read_text(encoding="utf-8")
    section = text.split("**1.3", 1)[1].split("**1.4", 1)[0]
    return set(re.findall(r"^- `([A-Za-z0-9_.\[\]]+)`$", section, re.M))


def canonical_instant(text: str) -> str:
    m = _INSTANT.match(text)
    if not m:
        raise ValueError(f"not an instant: {text!r}")
    day, clock, fraction, offset = m.group(1), m.group(2), m.group(3) or "", m.group(4)
    if len(fraction) > 9:
        raise ValueError("more than nine fraction digits")
    t = dt.datetime.strptime(f"{day}T{clock}", "%Y-%m-%dT%H:%M:%S")
    if offset != "Z":
        delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        t = t - delta if offset[0] == "+" else t + delta
    fraction = fraction.rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def normalise(value, instants: set[str], path: str = ""):
    if isinstance(value, dict):
        return {k: normalise(v, instants, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, instants, path + "[]") for v in value]
    if isinstance(value, str) and path in instants:
        return canonical_instant(value)
    return value


def jcs(value) -> bytes:
    """RFC 8785 for the logical data model (no floats)."""
    def enc(v) -> str:
        if isinstance(v, dict):
            keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
            return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + enc(v[k]) for k in keys) + "}"
        if isinstance(v, list):
            return "[" + ",".join(enc(x) for x in v) + "]"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        raise TypeError(f"no canonical form for {type(v).__name__}")
    return enc(value).encode("utf-8")


def canonical(value, instants: set[str]) -> bytes:
    return jcs(normalise(value, instants))


def signing_input(envelope: dict, instants: set[str]) -> bytes:
    block = {k: v for k, v in envelope["signature"].items() if k not in UNPROTECTED}
    return canonical({**envelope, "signature": block}, instants)


# --------------------------------------------------------------------------- XML mapping (spec/README.md, profile §12)
class Schemas:
    def __init__(self, spec: dict):
        self.spec = spec
        self.schemas = spec["components"]["schemas"]

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def kind(self, schema: dict) -> str:
        s = self.resolve(schema)
        return s.get("type", "object" if "properties" in s else "string")


def to_xml(schemas: Schemas, name: str, record: dict) -> bytes:
    def fill(elem: ET.Element, schema: dict, value) -> None:
        s = schemas.resolve(schema)
        kind = schemas.kind(s)
        if kind == "object":
            for prop, sub in s.get("properties", {}).items():
                if prop not in value:
                    continue
                if (sub.get("xml") or {}).get("attribute"):
                    elem.set(prop, str(value[prop]))
                    continue
                target = schemas.resolve(sub)
                child = ET.SubElement(elem, f"{{{NS}}}{prop}")
                if schemas.kind(target) == "array":
                    items = target["items"]
                    item_name = (items.get("xml") or {}).get("name") or prop
                    for item in value[prop]:
                        fill(ET.SubElement(child, f"{{{NS}}}{item_name}"), items, item)
                else:
                    fill(child, sub, value[prop])
        elif kind == "boolean":
            elem.text = "true" if value else "false"
        else:
            elem.text = str(value)

    ET.register_namespace("", NS)
    root = ET.Element(f"{{{NS}}}{name}")
    fill(root, {"$ref": f"#/components/schemas/{name}"}, record)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def from_xml(schemas: Schemas, data: bytes) -> tuple[str, dict]:
    root = ET.fromstring(data)
    name = root.tag.split("}", 1)[1]

    def read(elem: ET.Element, schema: dict):
        s = schemas.resolve(schema)
        kind = schemas.kind(s)
        if kind == "object":
            out = {}
            children = {c.tag.split("}", 1)[1]: c for c in elem}
            for prop, sub in s.get("properties", {}).items():
                if (sub.get("xml") or {}).get("attribute"):
                    if prop in elem.attrib:
                        out[prop] = elem.attrib[prop]
                    continue
                if prop not in children:
                    continue
                target = schemas.resolve(sub)
                if schemas.kind(target) == "array":
                    out[prop] = [read(c, target["items"]) for c in children[prop]]
                else:
                    out[prop] = read(children[prop], sub)
            return out
        text = elem.text or ""
        if kind == "integer":
            return int(text)
        if kind == "boolean":
            return text == "true"
        return text

    return name, read(root, {"$ref": f"#/components/schemas/{name}"})


# --------------------------------------------------------------------------- HTTP
@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def media(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


def http(method: str, url: str, headers: dict | None = None, body: bytes | None = None) -> Answer:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def canonical_query(query: str) -> str:
    """Profile §5 line 4."""
    pairs = []
    for part in query.split("&") if query else []:
        if not part:
            continue  # empty parts are ignored
        name, _, value = part.partition("=")
        pairs.append((urllib.parse.unquote_plus(name), urllib.parse.unquote_plus(value)))
    encoded = sorted((urllib.parse.quote(n, safe="-._~"), urllib.parse.quote(v, safe="-._~")) for n, v in pairs)
    return "&".join(f"{n}={v}" for n, v in encoded)


# --------------------------------------------------------------------------- the client
@dataclass
class Client:
    base_url: str
    client_id: str
    client_secret: str
    key_pem: str              # file names inside the OpenSSL work directory
    cert_pem: str
    anchor_pem: str
    ssl: OpenSSL
    notes: list[str] = field(default_factory=list)
    token: str = ""

    def __post_init__(self):
        self.instants = instant_paths_from_profile()
        self.schemas = Schemas(json.loads(BUNDLE.read_text(encoding="utf-8")))
        self.pub_pem = self.ssl.cert_pubkey(self.cert_pem)
        self.key_id = self.ssl.key_id(self.pub_pem)
        self.base_path = urllib.parse.urlsplit(self.base_url).path

    # --- token (profile §10) -------------------------------------------------------------
    def get_token(self, scope: str = "reporting:submit reporting:read") -> str:
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
        basic = base64.b64encode(f"{urllib.parse.quote_plus(self.client_id)}:{urllib.parse.quote_plus(self.client_secret)}"
                                 .encode()).decode()
        answer = http("POST", f"{self.base_url}/oauth/token",
                      {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"}, form)
        if answer.status != 200:
            # The profile says the platform MUST accept Basic; until it does, use the body
            # parameters (the other documented method) and record the deviation.
            self.notes.append(f"token endpoint refused HTTP Basic ({answer.status}); used body parameters")
            form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope,
                                           "client_id": self.client_id, "client_secret": self.client_secret}).encode()
            answer = http("POST", f"{self.base_url}/oauth/token",
                          {"Content-Type": "application/x-www-form-urlencoded"}, form)
        assert answer.status == 200, answer.body
        body = answer.json()
        assert body["token_type"].lower() == "bearer" and body["expires_in"] > 0
        self.token = body["access_token"]
        return self.token

    # --- documents (profile §2) -------------------------------------------------------------
    def sign_document(self, payload: dict, signing_time: str | None = None,
                      algorithm: str = "SM2-with-SM3-prehash") -> dict:
        cert_der = self.ssl.run("x509", "-in", self.cert_pem, "-outform", "DER").stdout
        block = {"algorithm": algorithm, "canonicalization": "cedx-jcs-1", "keyId": self.key_id,
                 "signingTime": signing_time or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")}
        envelope = {"specVersion": "1.0", "payload": payload, "signature": block}
        value = self.ssl.sign(self.key_pem, self.signed_message(envelope))
        block["value"] = base64.b64encode(value).decode()
        block["certificateChain"] = [base64.b64encode(cert_der).decode()]
        return envelope

    def signed_message(self, envelope: dict) -> bytes:
        """M of profile §2: the signing input, or its SM3 digest (bytes) under the prehash algorithm."""
        message = signing_input(envelope, self.instants)
        algorithm = envelope["signature"]["algorithm"]
        if algorithm == "SM2-with-SM3-prehash":
            return self.ssl.run("dgst", "-sm3", "-binary", input=message).stdout
        assert algorithm == "SM2-with-SM3", f"unknown signature algorithm {algorithm}"
        return message

    def verify_signed(self, envelope: dict, *, timestamped: bool = False) -> None:
        """Signature, key ID, chain to the out-of-band anchor and (if present) the time-stamp."""
        block = envelope["signature"]
        chain = [base64.b64decode(c) for c in block["certificateChain"]]
        signer = self.ssl.der_to_pem(chain[0])
        cmd = ["verify", "-vfyopt", DISTID, "-CAfile", self.anchor_pem]
        if len(chain) > 1:
            rest = b"".join((self.ssl.dir / self.ssl.der_to_pem(c)).read_bytes() for c in chain[1:])
            cmd += ["-untrusted", self.ssl.file(rest, ".pem")]
        self.ssl.run(*cmd, signer)
        pub = self.ssl.cert_pubkey(signer)
        assert self.ssl.key_id(pub) == block["keyId"], "keyId is not the certificate's key"
        value = base64.b64decode(block["value"])
        assert self.ssl.verify(pub, value, self.signed_message(envelope)), "signature does not verify"
        if timestamped:
            self.verify_timestamp(base64.b64decode(block["timestampToken"]), value)

    def verify_timestamp(self, token: bytes, signature: bytes) -> None:
        """Run the profile's own recipe (§13, verify-timestamp)."""
        recipe = re.search(r"<!-- recipe: verify-timestamp -->\n.*?```sh\n(.*?)```",
                           PROFILE.read_text(encoding="utf-8"), re.S).group(1)
        work = self.ssl.dir / f"ts-{secrets.token_hex(4)}"
        work.mkdir()
        (work / "token.der").write_bytes(token)
        (work / "signature.der").write_bytes(signature)
        (work / "ca.pem").write_bytes((self.ssl.dir / self.anchor_pem).read_bytes())
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe], cwd=work, capture_output=True)
        assert proc.returncode == 0, f"time-stamp token does not verify: {proc.stderr.decode(errors='replace')}"

    # --- requests (profile §5) --------------------------------------------------------------
    def request(self, method: str, path: str, *, query: str = "", body: bytes = b"", headers: dict | None = None,
                sign: bool = False, accept: str = "application/json") -> Answer:
        hdrs = {"Authorization": f"Bearer {self.token}", "Accept": f"{accept}, application/problem+json"}
        hdrs.update(headers or {})
        if sign:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
            nonce = secrets.token_hex(16)
            lines = ["CEDX-SM2-SM3", method.upper(), self.base_path + path, canonical_query(query), stamp, nonce,
                     self.ssl.sm3(body)]
            sig = self.ssl.sign(self.key_pem, "\n".join(lines).encode("utf-8"))
            hdrs.update({"X-Cedx-Timestamp": stamp, "X-Cedx-Nonce": nonce, "X-Cedx-Key-Id": self.key_id,
                         "X-Cedx-Signature": base64.b64encode(sig).decode()})
        url = self.base_url + path + (f"?{query}" if query else "")
        return http(method, url, hdrs, body or None)

    def submit(self, envelope: dict, *, key: str | None = None, xml: bool = False) -> Answer:
        if xml:
            body = to_xml(self.schemas, "SignedMonthlyReport", envelope)
            media = "application/xml"
        else:
            body = json.dumps(envelope, ensure_ascii=False, indent=1).encode("utf-8")
            media = "application/json"
        return self.request("POST", "/v1/reporting/monthly-reports", body=body, sign=True, accept=media,
                            headers={"Content-Type": f"{media}; charset=utf-8",
                                     "Idempotency-Key": key or str(uuid.uuid4())})

    def record(self, answer: Answer) -> dict:
        if answer.media == "application/xml":
            return from_xml(self.schemas, answer.body)[1]
        return answer.json()

    def check_receipt(self, answer: Answer, sent: dict) -> dict:
        assert answer.status == 201, (answer.status, answer.body[:500])
        receipt = self.record(answer)
        self.verify_signed(receipt, timestamped=True)
        payload = receipt["payload"]
        assert payload["documentDigest"] == self.ssl.sm3(canonical(sent, self.instants)), "documentDigest"
        assert payload["creditCode"] == sent["payload"]["creditCode"]
        assert payload["reportId"] == sent["payload"]["reportId"]
        return payload

    def configuration(self) -> dict:
        answer = http("GET", f"{self.base_url}/.well-known/cedx-configuration", {"Accept": "application/json"})
        assert answer.status == 200
        doc = answer.json()
        self.verify_signed(doc)
        return doc["payload"]

    def pages(self, query: str) -> list[dict]:
        items, q = [], query
        while True:
            answer = self.request("GET", "/v1/reporting/submissions", query=q)
            assert answer.status == 200, answer.body
            page = answer.json()
            items += page["items"]
            if not page.get("nextCursor"):
                return items
            q = f"{query}&cursor={urllib.parse.quote(page['nextCursor'], safe='')}"
