"""``sbom.cdx.json`` and ``audit.json`` in signed bundles: what they say, that they are
deterministic and valid CycloneDX 1.6, and that verify refuses a dossier that lies."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from bundles import make_bundle, only_wheel, reseal, sign, verify
from cli_runner import run

CARRIED = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}).encode()
ORIGIN = "https://ci:s3cret@mirror.example.org/packages/{filename}?token=abc#frag"


def dossier_bundle(tmp_path: Path, **kwargs) -> Path:
    return make_bundle(
        tmp_path,
        packages=(("alpha", "1.0"), ("beta", "2.0", "alpha>=1"), ("requests", "2.19.1")),
        built=["beta"],
        metadata={"alpha": ["License-Expression: MIT"], "requests": ["License: Apache 2.0"]},
        members={"alpha": {"alpha-1.0.dist-info/sboms/alpha.cdx.json": CARRIED}},
        origin=ORIGIN,
        **kwargs,
    )


def sbom_of(bundle: Path) -> dict:
    return json.loads((bundle / "sbom.cdx.json").read_text())


def components(document: dict) -> dict[str, dict]:
    return {c["name"]: c for c in document["components"]}


def props(component: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in component.get("properties", []):
        out.setdefault(p["name"], []).append(p["value"])
    return out


def test_signed_bundle_carries_a_valid_sbom(tmp_path, keys):
    bundle = dossier_bundle(tmp_path)
    sign(bundle, keys)
    text = (bundle / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    sums = dict(reversed(line.split("  ")) for line in (bundle / "SHA256SUMS").read_text().splitlines())
    assert sums["sbom.cdx.json"] == hashlib.sha256(text.encode()).hexdigest()
    manifest = {f["path"]: f for f in json.loads((bundle / "manifest.json").read_text())["files"]}
    assert manifest["sbom.cdx.json"]["kind"] == "sbom"
    assert "audit.json" not in manifest  # no database given

    document = json.loads(text)
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    assert document["metadata"]["timestamp"] == "2024-01-02T03:04:05+00:00"  # exclude-newer
    assert document["metadata"]["component"]["name"] == "host"
    assert [t["name"] for t in document["metadata"]["tools"]["components"]] == ["lockship"]
    found = components(document)
    assert sorted(found) == ["alpha", "beta", "requests"]
    alpha, beta, requests = found["alpha"], found["beta"], found["requests"]
    wheel = only_wheel(bundle, "alpha")
    # the test bundles' index is not PyPI: the purl names it (purl spec, pypi type)
    assert alpha["purl"] == (
        f"pkg:pypi/alpha@1.0?file_name={wheel.name}&repository_url=https://files.example.org/simple/"
    )
    assert alpha["bom-ref"] == alpha["purl"]
    assert alpha["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(wheel.read_bytes()).hexdigest()}]
    assert alpha["licenses"] == [{"acknowledgement": "declared", "expression": "MIT"}]
    assert requests["licenses"] == [{"acknowledgement": "declared", "expression": "Apache-2.0"}]
    assert props(beta)["lockship:license"] == ["unknown"]
    # the origin, without credentials, query string or fragment
    references = {r["type"]: r for r in alpha["externalReferences"]}
    assert sorted(references) == ["bom", "distribution"]
    distribution, carried = references["distribution"], references["bom"]
    assert distribution == {
        "type": "distribution",
        "url": f"https://mirror.example.org/packages/{wheel.name}",
        "hashes": alpha["hashes"],
    }
    assert "s3cret" not in text and "token=abc" not in text
    # the SBOM the wheel carries itself (PEP 770)
    assert carried["type"] == "bom"
    assert carried["url"] == f"wheels/{wheel.name}#alpha-1.0.dist-info/sboms/alpha.cdx.json"
    assert carried["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(CARRIED).hexdigest()}]
    # built from an sdist: the sdist as the ancestor, the build environment as properties
    (sdist,) = beta["pedigree"]["ancestors"]
    assert sdist["purl"] == "pkg:pypi/beta@2.0?file_name=beta-2.0.tar.gz"
    assert sdist["hashes"] == [{"alg": "SHA-256", "content": "5" * 64}]
    assert props(beta)["lockship:build:backend"] == ["setuptools.build_meta"]
    assert props(beta)["lockship:build:requires"] == ["setuptools==69.0.0"]
    assert props(beta)["lockship:kind"] == ["built-wheel"]
    # the dependency graph of the lock
    graph = {d["ref"]: sorted(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert graph[beta["bom-ref"]] == [alpha["bom-ref"]]
    assert graph["lockship-bundle"] == sorted([beta["bom-ref"], requests["bom-ref"]])
    code, _, err = verify(bundle, keys)
    assert code == 0, err


def test_sbom_is_deterministic(tmp_path, keys, monkeypatch):
    first, second = dossier_bundle(tmp_path / "1"), dossier_bundle(tmp_path / "2")
    sign(first, keys)
    sign(second, keys)
    assert (first / "sbom.cdx.json").read_bytes() == (second / "sbom.cdx.json").read_bytes()
    serial = sbom_of(first)["serialNumber"]
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", serial)
    sign(first, keys)  # re-signing gives the same bytes
    assert (first / "sbom.cdx.json").read_bytes() == (second / "sbom.cdx.json").read_bytes()
    other = make_bundle(tmp_path / "3", packages=(("alpha", "1.1"),), exclude_newer=None)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    sign(other, keys)
    assert sbom_of(other)["serialNumber"] != serial
    assert sbom_of(other)["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"


def edit_sbom(bundle: Path, change) -> None:
    document = sbom_of(bundle)
    change(document)
    (bundle / "sbom.cdx.json").write_text(json.dumps(document, indent=2))


def _claim_other_hash(document: dict) -> None:
    components(document)["alpha"]["hashes"][0]["content"] = "0" * 64


def _drop_component(document: dict) -> None:
    document["components"] = [c for c in document["components"] if c["name"] != "requests"]


def _add_component(document: dict) -> None:
    extra = dict(components(document)["alpha"], name="evil")
    extra["properties"] = [{"name": "lockship:bundle-path", "value": "wheels/evil.whl"}]
    document["components"].append(extra)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_claim_other_hash,
         (r"sbom.cdx.json: wheels/alpha-1.0-py3-none-any.whl is alpha 1.0 sha256 0{64}, "
         r"but the manifest says alpha 1.0 sha256 [0-9a-f]{64}")),
        (_drop_component, r"sbom.cdx.json: no component for wheels/requests-2.19.1-py3-none-any.whl"),
        (_add_component, r"sbom.cdx.json: component wheels/evil.whl is not a wheel of the bundle"),
    ],
)
def test_verify_refuses_an_sbom_that_disagrees_with_the_wheels(tmp_path, keys, change, problem):
    """Signed validly (a careless signer), but the SBOM lies about what the bundle holds."""
    bundle = dossier_bundle(tmp_path)
    sign(bundle, keys)
    edit_sbom(bundle, change)
    reseal(bundle, keys.plain)
    code, _, err = verify(bundle, keys)
    assert code == 6, err
    lines = err.splitlines()
    assert lines[0] == f"lockship: error: {bundle}: 1 problem found"
    assert re.fullmatch(problem, lines[1].strip()), lines[1]


def test_audit_json_is_signed_in_and_checked(tmp_path, keys, osv_db, osv_cache, monkeypatch):
    monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(osv_cache))
    bundle = dossier_bundle(tmp_path)
    args = ["sign", str(bundle), "--key", str(keys.plain), "--db", str(osv_db)]
    code, _, err = run(*args)
    assert code == 13
    assert err == (
        f"lockship: error: {bundle}: 2 known vulnerabilities (database pypa-advisory-database "
        "(2661 records, newest 2024-10-10)); not signed\n"
        "  requests 2.19.1: PYSEC-2018-28 CVE-2018-18074 GHSA-x84v-xcm2-53pg\n"
        "  requests 2.19.1: PYSEC-2023-74 CVE-2023-32681 GHSA-j8r2-6x86-q33q\n"
        "  hint: upgrade them, or accept each risk with --ignore ID=REASON (pipelines: [audit] "
        "ignore), or record them and sign anyway (--allow-advisories; pipelines: [audit] "
        "fail = false)\n"
    )
    assert not (bundle / "SHA256SUMS").exists() and not (bundle / "audit.json").exists()

    code, _, err = run(*args, "--ignore", "PYSEC-2023-74=no proxies", "--allow-advisories")
    assert code == 0, err
    assert "audit: 1 known vulnerability in 1 of 3 packages (1 ignored); database " in err
    audit = json.loads((bundle / "audit.json").read_text())
    assert [(f["id"], f["ignored"]) for f in audit["findings"]] == [
        ("PYSEC-2018-28", None), ("PYSEC-2023-74", "no proxies")
    ]
    assert (audit["source"], audit["target"], audit["packages"]) == ("host", "host", 3)
    manifest = {f["path"]: f for f in json.loads((bundle / "manifest.json").read_text())["files"]}
    assert manifest["audit.json"]["kind"] == "audit"
    assert verify(bundle, keys)[0] == 0

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    audit["findings"][0]["name"] = "alpha"
    audit["packages"] = 2
    (copy / "audit.json").write_text(json.dumps(audit))
    reseal(copy, keys.plain)
    code, _, err = verify(copy, keys)
    assert code == 6
    assert "  audit.json: audited 2 packages, the bundle has 3\n" in err
    assert "  audit.json: PYSEC-2018-28 names alpha 2.19.1, which the bundle does not carry\n" in err

    sign(bundle, keys)  # signing again without a database drops the old audit
    assert not (bundle / "audit.json").exists()
    assert verify(bundle, keys)[0] == 0
