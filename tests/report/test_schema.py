"""The JSON report validates against docs/report-schema.json, and every field there is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "report-schema.json").read_text(encoding="utf-8"))
_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """The JSON Schema subset our schema uses (type, const, enum, properties, required,
    additionalProperties, items, minimum); returns the list of violations."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        ok = any(isinstance(value, _TYPES[t]) and not (isinstance(value, bool) and t in
                 ("integer", "number")) for t in names)
        if not ok:
            return [f"{path}: {value!r} is not of type {names}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        errors.append(f"{path}: {value!r} < {schema['minimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in props:
                errors += validate(item, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: undocumented field {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(item, schema["additionalProperties"], f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    return errors


def _reports() -> dict[str, gradcheck.Report]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3))
    b = rng.standard_normal(3)

    def loss(p):
        return float(np.sum(np.tanh(p["W"]) ** 2) + np.sum(p["b"] ** 3))

    def good(p):
        return {"W": 2 * np.tanh(p["W"]) * (1 - np.tanh(p["W"]) ** 2), "b": 3 * p["b"] ** 2}

    def scaled(p):
        g = good(p)
        return {"W": 2 * g["W"], "b": g["b"]}

    def one_entry(p):
        g = good(p)
        g["b"][1] += 1e-3
        return g

    relu = lambda p: float(np.sum(np.maximum(p, 0.0)))  # noqa: E731
    w32 = w.astype(np.float32)  # dtype "float32", evaluated_dtype "float64"
    return {
        "float32": gradcheck.check(lambda p: float(np.sum(p["W"] ** 2)), {"W": w32}, {"W": 2 * w32}),
        "passing": gradcheck.check(loss, {"W": w, "b": b}, good),
        "scale": gradcheck.check(loss, {"W": w, "b": b}, scaled),
        "one entry": gradcheck.check(loss, {"W": w, "b": b}, one_entry),
        "scalar and kink": gradcheck.check(relu, np.array([0.0, 1.0]), np.array([0.5, 1.0])),
    }


REPORTS = _reports()


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_report_json_validates_against_the_documented_schema(name):
    data = json.loads(REPORTS[name].to_json())
    assert validate(data, SCHEMA) == []


def test_the_validator_catches_wrong_documents():
    data = json.loads(REPORTS["scale"].to_json())
    assert validate(data, SCHEMA) == []
    data["components"]["W"]["checked"] = "24"
    data["surprise"] = 1
    del data["passed"]
    errors = validate(data, SCHEMA)
    assert any("checked" in e for e in errors)
    assert any("surprise" in e for e in errors)
    assert any("missing 'passed'" in e for e in errors)


def test_failing_reports_carry_suspects_and_findings():
    data = REPORTS["scale"].to_dict()
    assert data["schema"] == "gradcheck.report/1"
    assert data["passed"] is False and data["suspects"] == ["W"]
    assert data["findings"] and data["findings"][0]["param"] == "W"
    assert data["components"]["W"]["mismatches"] > 0


def _field_names(schema: dict[str, Any]) -> set[str]:
    names: set[str] = set(schema.get("properties", {}))
    for sub in list(schema.get("properties", {}).values()) + [schema.get("additionalProperties"),
                                                              schema.get("items")]:
        if isinstance(sub, dict):
            names |= _field_names(sub)
    return names


def test_every_schema_field_is_documented_in_the_markdown_page():
    page = (DOCS / "report-schema.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", page, flags=re.M))
    missing = _field_names(SCHEMA) - documented
    assert not missing, f"fields in report-schema.json without a row in report-schema.md: {missing}"


def test_json_has_no_nan_literals_even_for_non_finite_values():
    text = REPORTS["scalar and kink"].to_json()
    assert "NaN" not in text and "Infinity" not in text
    assert validate(json.loads(text), SCHEMA) == []


def test_a_report_with_nothing_checked_validates_with_a_null_ratio() -> None:
    calls = 0
    w = np.array([1.0, 2.0, 3.0])

    def loss(p):  # Ctrl-C at the first coordinate step: nothing gets checked
        nonlocal calls
        calls += 1
        if calls > 8:
            raise KeyboardInterrupt
        return float(np.sum(p["w"] ** 3))

    report = gradcheck.check(loss, {"w": w}, {"w": 3 * w**2}, on_interrupt="report")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["relative_error"] is None and data["textbook_verdict"] == "not checked"
    assert data["components"]["w"]["relative_error"] is None
    assert validate(data, SCHEMA) == []


def test_the_json_carries_the_version_the_seed_and_the_options():
    w = np.arange(1.0, 7.0).reshape(2, 3)
    report = gradcheck.check(lambda p: float((p["W"] ** 3).sum()), {"W": w}, {"W": 3 * w**2},
                             seed=7, eps={"W": 1e-5}, scheme="forward", rtol={"float64": 1e-4},
                             coords=4, budget=500)
    data = json.loads(report.to_json())
    assert isinstance(data["gradcheck_version"], str) and data["gradcheck_version"]
    assert data["seed"] == 7
    assert data["options"] == {"eps": {"W": 1e-5}, "scheme": "forward",
                               "rtol": {"float64": 1e-4}, "atol": {}, "coords": 4,
                               "budget": 500}
    assert validate(data, SCHEMA) == []
    again = gradcheck.check(lambda p: float((p["W"] ** 3).sum()), {"W": w}, {"W": 3 * w**2},
                            seed=data["seed"], **data["options"])  # the options round-trip
    assert again.to_dict() | {"seconds": 0} == report.to_dict() | {"seconds": 0}


def test_reports_without_the_new_fields_stay_valid():
    data = REPORTS["scale"].to_dict()
    assert "seed" in data and "options" in data
    for key in ("gradcheck_version", "seed", "options"):
        data.pop(key)
    for component in data["components"].values():
        component.pop("evaluated_dtype")
    assert validate(data, SCHEMA) == []  # a report written before them


def test_the_json_round_trips_both_dtypes() -> None:
    data = json.loads(REPORTS["float32"].to_json())
    assert {k: data["components"]["W"][k] for k in ("dtype", "evaluated_dtype")} == {
        "dtype": "float32", "evaluated_dtype": "float64"}
    assert validate(data, SCHEMA) == []
