"""Import-time budget (issue 14): importing the client loads neither the models, the spec
machinery, the trust layer nor their heavy dependencies; they load on first use."""

import subprocess
import sys

HEAVY = ("cedx.generated.models", "cedx.spec.validate", "cedx.spec.rules", "cedx.spec.xmlcodec", "cedx.trust", "pydantic", "jsonschema", "lxml",
         "fastjsonschema", "jsonschema_rs", "asn1crypto", "cryptography")


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_client_import_is_light():
    loaded = loaded_after("import cedx.generated.client")
    assert not {m for m in HEAVY if m in loaded}
    assert loaded_after("import cedx") & set(HEAVY) == set()


def test_first_use_loads_what_is_needed():
    loaded = loaded_after(
        "from cedx.generated.client import ReportingClient\n"
        "from cedx.generated import client\n"
        "assert client.models.Entity.__name__ == 'Entity'\n"
        "from cedx import spec\n"
        "assert spec.validator().validate('Quantity', {'value': '1', 'unit': 't'}) == []\n"
        "assert 'jsonschema' not in sys.modules  # valid documents never need the explainer\n"
        "assert spec.validator().validate('Quantity', {'value': 1, 'unit': 't'})[0].code == 'R-DEC-001'\n"
    )
    assert {"cedx.generated.models", "pydantic", "cedx.spec.validate", "jsonschema"} <= loaded
    assert {"fastjsonschema", "jsonschema_rs"} & loaded  # the fast structural check, either one


def test_the_clients_list_of_signature_algorithms_is_the_trust_layers():
    from cedx import trust
    from cedx.runtime.client import SIGNATURE_ALGORITHMS

    assert SIGNATURE_ALGORITHMS == trust.ALGORITHMS and SIGNATURE_ALGORITHMS[0] == trust.PREHASH_ALGORITHM
