"""The published vectors of sealed columnar batches (spec/vectors/sealed-batches.json, shown in
docs/trust-batches.md): canonical bytes, SM3 chain, signing input and signature, checked with
cedx's verifier, the generic envelope verifier and the OpenSSL command line."""

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cedx import trust
from cedx.acquisition.batches import BatchError, BatchVerifier, canonical_payload
from cedx.trust import x509 as tx

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "spec" / "vectors" / "sealed-batches.json").read_text())
CA = tx.load_certificate((ROOT / "spec" / "examples" / "pki" / "ca.pem").read_bytes()).dump()


def test_vectors_verify_and_chain():
    verifier = BatchVerifier(tx.ChainResolver([CA]))
    previous = "0" * 64
    for v in VECTORS["batches"]:
        payload = v["envelope"]["payload"]
        assert canonical_payload(payload).decode() == v["canonicalPayload"] == trust.canonicalize(payload).decode()
        assert trust.sm3(v["canonicalPayload"].encode()).hex() == v["payloadSm3"]
        assert payload["previousBatchDigest"] == previous
        assert trust.envelope.signing_input(v["envelope"]).decode() == v["signingInput"]
        verifier.verify(v["envelope"])
        trust.verify_document(v["envelope"], tx.ChainResolver([CA]))
        previous = v["payloadSm3"]
    docs = (ROOT / "docs" / "trust-batches.md").read_text()
    assert all(v["payloadSm3"] in docs and v["envelope"]["signature"]["value"] in docs for v in VECTORS["batches"])


def test_a_changed_vector_fails():
    env = json.loads(json.dumps(VECTORS["batches"][0]["envelope"]))
    env["payload"]["values"][1] = "0"
    with pytest.raises(BatchError):
        BatchVerifier(tx.ChainResolver([CA])).verify(env)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")
def test_vectors_verify_with_openssl(tmp_path):
    cert = tmp_path / "source.pem"
    cert.write_bytes(tx.to_pem(base64.b64decode(VECTORS["signerCertificate"])))
    subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout", "-out", tmp_path / "pub.pem"], check=True)
    for i, v in enumerate(VECTORS["batches"]):
        (tmp_path / f"in{i}").write_bytes(v["signingInput"].encode())
        (tmp_path / f"sig{i}").write_bytes(base64.b64decode(v["envelope"]["signature"]["value"]))
        out = subprocess.run(["openssl", "dgst", "-sm3", "-verify", tmp_path / "pub.pem", "-sigopt",
                              f"distid:{VECTORS['userId']}", "-signature", tmp_path / f"sig{i}", tmp_path / f"in{i}"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and "Verified OK" in out.stdout, out.stderr
        digest = subprocess.run(["openssl", "dgst", "-sm3", "-r", tmp_path / f"in{i}"], capture_output=True, text=True)
        (tmp_path / f"p{i}").write_bytes(v["canonicalPayload"].encode())
        payload_digest = subprocess.run(["openssl", "dgst", "-sm3", "-r", tmp_path / f"p{i}"], capture_output=True, text=True)
        assert payload_digest.stdout.split()[0] == v["payloadSm3"] and digest.returncode == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")
def test_the_documented_openssl_check_runs_as_written(tmp_path):
    """docs/trust-batches.md §5: the shell block, exactly as written, with the files it names.
    (It once hashed an undefined shell variable `$P1`, printing the SM3 of nothing.)"""
    import re

    docs = (ROOT / "docs" / "trust-batches.md").read_text(encoding="utf-8")
    (recipe,) = re.findall(r"```sh\n(.*?)```", docs.split("## 5.", 1)[1].split("## 6.", 1)[0], re.S)
    pki = ROOT / "spec" / "examples" / "pki"
    for name in ("source.pem", "ca.pem"):
        (tmp_path / name).write_bytes((pki / name).read_bytes())
    first = VECTORS["batches"][0]
    (tmp_path / "in.bin").write_bytes(first["signingInput"].encode("utf-8"))
    (tmp_path / "p1.bin").write_bytes(first["canonicalPayload"].encode("utf-8"))

    def run():
        return subprocess.run(["bash", "-euo", "pipefail", "-c", recipe], cwd=tmp_path, capture_output=True, text=True)

    out = run()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert "source.pem: OK" in out.stdout and "Verified OK" in out.stdout
    assert first["envelope"]["signature"]["keyId"] in lines and first["payloadSm3"] in lines
    assert VECTORS["batches"][1]["envelope"]["payload"]["previousBatchDigest"] == first["payloadSm3"]
    (tmp_path / "in.bin").write_bytes(first["signingInput"].replace('"0"', '"1"').encode("utf-8"))
    assert run().returncode != 0  # a changed value does not verify
