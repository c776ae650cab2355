"""The profile's words against the published spec, read as another vendor reads them (no cedx):
what the canonical-form rule (§1.3) says is rewritten must be exactly the printed list of members,
and every status/code pair the normative docs state must be the one of the error table."""

import json
import re

import yaml

from .client import BUNDLE, PROFILE, REPO, instant_paths_from_profile

SPEC = json.loads(BUNDLE.read_text(encoding="utf-8"))
SCHEMAS = SPEC["components"]["schemas"]


def _instant_members() -> dict[str, set[str]]:
    """Path -> schema names of string members with `format: date-time`, in every signed document."""
    out: dict[str, set[str]] = {}

    def walk(schema, path, name, seen):
        ref = schema.get("$ref")
        if ref:
            target = ref.rsplit("/", 1)[1]
            if target in seen:
                return
            return walk(SCHEMAS[target], path, target, seen | {target})
        if schema.get("type") == "string" and schema.get("format") == "date-time":
            out.setdefault(path, set()).add(name)
        for sub in schema.get("allOf", []) + schema.get("anyOf", []) + schema.get("oneOf", []):
            walk(sub, path, name, seen)
        for prop, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{path}.{prop}" if path else prop, None, seen)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], path + "[]", None, seen)

    for name, schema in SCHEMAS.items():
        if "x-cedx-signed" in schema:
            walk(schema, "", name, {name})
    return out


def test_the_rule_names_every_schema_it_rewrites_and_the_list_is_complete():
    members = _instant_members()
    assert set(members) == instant_paths_from_profile()
    rule = PROFILE.read_text(encoding="utf-8").split("**1.3", 1)[1].split("本规范版本中", 1)[0]
    for name in set().union(*members.values()):
        assert f"`{name}`" in rule, f"§1.3 rewrites members of schema {name} without saying so"


def test_status_and_code_pairs_in_the_normative_docs_match_the_error_table():
    table = {e["code"]: e["status"] for e in yaml.safe_load((REPO / "spec" / "tables" / "errors.yaml")
                                                            .read_text(encoding="utf-8"))["errors"]}
    pairs = 0
    for doc in ("trust-profile.md", "trust-batches.md", "key-exchange.md"):
        text = (REPO / "docs" / doc).read_text(encoding="utf-8")
        for status, code in re.findall(r"\b([45]\d\d) `([A-Z][A-Z_]{3,})`", text):
            assert table.get(code) == int(status), f"docs/{doc}: {status} {code}, the table says {table.get(code)}"
            pairs += 1
        for row in re.findall(r"^\| [^|]+ \| ([45]\d\d) \| `([A-Z][A-Z_]{3,})` \|$", text, re.M):
            assert table.get(row[1]) == int(row[0]), f"docs/{doc}: {row}"
            pairs += 1
    assert pairs > 20


def problem_convention():
    """The problem-member rule of the spec's conventions: the `type` prefix it names."""
    text = SPEC["info"]["description"]
    return re.search(r"`type` is `(https://[^`]+/)` followed by the `code`", text).group(1)


def check_problem(body: dict) -> None:
    table = {e["code"]: e for e in SPEC["x-cedx-error-codes"]} if isinstance(SPEC["x-cedx-error-codes"], list) \
        else SPEC["x-cedx-error-codes"]
    entry = table[body["code"]]
    assert body["status"] == entry["status"]
    assert body["title"] == f"{entry['zh']} / {entry['en']}"
    assert body["type"] == problem_convention() + body["code"].lower().replace("_", "-")
    for item in body.get("errors", []):
        assert item["path"].startswith("$") and item["code"] and item["message"]


def test_every_problem_example_follows_the_stated_convention():
    examples = []
    for path in SPEC["paths"].values():
        for op in path.values():
            for response in (op.get("responses") or {}).values() if isinstance(op, dict) else ():
                for media, content in (response.get("content") or {}).items():
                    if media == "application/problem+json":
                        examples += [e["value"] for e in (content.get("examples") or {}).values()]
    for response in SPEC["components"]["responses"].values():
        for media, content in (response.get("content") or {}).items():
            if media == "application/problem+json":
                examples += [e["value"] for e in (content.get("examples") or {}).values()]
    assert len(examples) >= 10
    for body in examples:
        check_problem(body)


def test_the_instant_table_of_section_1_4():
    """Every row of §1.4's table, read from the text, through the independent client's rule."""
    from .client import canonical_instant

    section = PROFILE.read_text(encoding="utf-8").split("**1.4", 1)[1].split("**1.5", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \|$", section, re.M)
    assert len(rows) >= 6
    for given, expected in rows:
        if "rejected" in expected:
            try:
                canonical_instant(given)
            except ValueError:
                continue
            raise AssertionError(f"{given} should be rejected")
        assert f"`{canonical_instant(given)}`" == expected, given
