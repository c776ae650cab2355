"""`generator diff`: compatible and breaking changes between two spec versions."""

import copy
import subprocess
import sys

from generator.diff import diff, load
from generator.pipeline import REPO


def _changes(mutate):
    old = load(REPO / "spec")
    new = copy.deepcopy(old)
    mutate(new)
    return {(c.breaking, c.where, c.what) for c in diff(old, new)}


def test_identical_specs_have_no_changes():
    assert _changes(lambda d: None) == set()


def test_classification():
    def mutate(d):
        s = d["components"]["schemas"]
        s["GeneratingUnit"]["properties"]["biomass"] = {"$ref": "#/components/schemas/Quantity"}
        s["GeneratingUnit"]["properties"].pop("loadFactor")
        s["MonthlyReport"]["required"].append("evidence")
        s["Industry"]["enum"].append("aviation")
        s["FuelCode"]["enum"].remove("kerosene")
        del d["paths"]["/v1/reporting/annual-reports/{submissionId}"]
        d["x-cedx-rules"]["rules"].append({"id": "R-NEW-001", "kind": "document", "appliesTo": ["Entity"], "check": "true"})
        d["x-cedx-units"] = [u for u in d["x-cedx-units"] if u["code"] != "kWh"]
    found = _changes(mutate)
    assert (False, "schema GeneratingUnit", "property biomass added (optional)") in found
    assert (True, "schema GeneratingUnit", "property loadFactor removed") in found
    assert (True, "schema MonthlyReport", "property evidence became required") in found
    assert (False, "schema Industry", "enum values added: aviation") in found
    assert (True, "schema FuelCode", "enum values removed: kerosene") in found
    assert (True, "operation getAnnualReport", "removed") in found
    assert (True, "rule R-NEW-001", "added (documents valid before may now be refused)") in found
    assert (True, "units kWh", "removed") in found


def test_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "generator", "diff", str(REPO / "spec"), str(REPO / "sdk/cedx/generated/openapi.json")],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip().endswith("0 change(s), 0 breaking"), out.stdout + out.stderr
