"""Import-time budget (issue 14): importing the client loads neither the models, the spec
machinery, the trust layer nor their heavy dependencies; they load on first use."""

import subprocess
import sys

import pytest

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


def test_the_client_imports_no_dataclasses_and_its_value_types_keep_their_behaviour():
    """Issue, OperationInfo, Unit and Property are NamedTuples and Problem a plain exception, so
    that `import cedx.generated.client` does not load dataclasses and inspect (target 4)."""
    assert not {"dataclasses", "inspect", "uuid"} & loaded_after("import cedx.generated.client")
    from cedx.runtime.errors import Problem, ProblemItem
    from cedx.runtime.operations import OperationInfo
    from cedx.spec.issue import Issue

    a, b = Problem("NOT_FOUND", "x"), Problem("NOT_FOUND", "x")
    assert a == b and a != Problem("NOT_FOUND", "y") and a.errors == [] and a.errors is not b.errors
    assert str(a) == "NOT_FOUND: x" and "code='NOT_FOUND'" in repr(a)
    with pytest.raises(TypeError):
        hash(a)
    item = ProblemItem("$.a", "R-1", "m")
    assert Problem("C", "d", [item], 422, {"H": "v"}).errors == [item]
    issue = Issue("$.a", "R-1", "m")
    assert issue == Issue("$.a", "R-1", "m") and hash(issue) == hash(Issue("$.a", "R-1", "m"))
    assert issue.as_problem_item() == {"path": "$.a", "code": "R-1", "message": "m"}
    with pytest.raises(AttributeError):
        issue.code = "other"  # type: ignore[misc]
    op = OperationInfo("op", "GET", "/x", "reporting")
    assert op.query_params == {} and op.body_media == () and op.success_status == 200
    with pytest.raises(TypeError):
        op.query_params["a"] = "b"  # type: ignore[index]
