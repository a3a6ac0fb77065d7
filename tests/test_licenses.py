"""Licences: SPDX from core metadata (PEP 639 first, no guesses) and the licence policy,
through ``lockship licenses``, ``lockship sign`` and ``[tool.lockship]``."""

from __future__ import annotations

import json

import pytest

from bundles import make_bundle
from cli_runner import run
from lockship.licenses import LicenseInfo, LicensePolicy, license_from_metadata

MIT = "License :: OSI Approved :: MIT License"
BSD = "License :: OSI Approved :: BSD License"
APACHE = "License :: OSI Approved :: Apache Software License"
GPL3_PLUS = "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)"
GPL3 = "License :: OSI Approved :: GNU General Public License v3 (GPLv3)"


def metadata(*lines: str) -> bytes:
    return ("Metadata-Version: 2.4\nName: x\nVersion: 1\n" + "\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("lines", "spdx", "source"),
    [
        (["License-Expression: mit OR apache-2.0"], "MIT OR Apache-2.0", "License-Expression"),
        (["License-Expression: MIT", "License: GPL", f"Classifier: {GPL3_PLUS}"], "MIT", "License-Expression"),
        (["License: BSD-3-Clause"], "BSD-3-Clause", "License"),
        (["License: Apache 2.0"], "Apache-2.0", "License"),
        (["License: MIT License", f"Classifier: {MIT}"], "MIT", "License"),
        ([f"Classifier: {MIT}"], "MIT", "classifier"),
        ([f"Classifier: {GPL3_PLUS}"], "GPL-3.0-or-later", "classifier"),
        (["License: UNKNOWN", f"Classifier: {MIT}"], "MIT", "classifier"),
        # a whole licence text pasted into License: is not a name; the classifier is
        (["License: Copyright (c) 2024 Someone", "        Permission is hereby granted, free of charge",
          f"Classifier: {MIT}"], "MIT", "classifier"),
        # never a guess:
        (["License: BSD"], None, None),
        ([f"Classifier: {BSD}"], None, None),
        ([f"Classifier: {APACHE}"], None, None),
        ([f"Classifier: {GPL3}"], None, None),  # only, or or-later?
        ([f"Classifier: {MIT}", f"Classifier: {GPL3_PLUS}"], None, None),  # AND or OR?
        (["License: MIT", f"Classifier: {GPL3_PLUS}"], None, None),  # they contradict
        (["License-Expression: not a licence"], None, "License-Expression"),
        ([], None, None),
    ],
)
def test_license_from_metadata(lines, spdx, source):
    info = license_from_metadata(metadata(*lines))
    assert (info.spdx, info.source) == (spdx, source)
    assert info.text == (spdx or "unknown")


def test_unknown_keeps_what_was_declared():
    info = license_from_metadata(metadata("License: BSD", f"Classifier: {BSD}"))
    assert info.declared == ("License: BSD", BSD)


@pytest.mark.parametrize(
    ("allow", "deny", "spdx", "problem"),
    [
        ((), ("GPL-3.0-or-later",), "MIT OR GPL-3.0-or-later", None),  # choose MIT
        ((), ("GPL-3.0-or-later",), "MIT AND GPL-3.0-or-later",
         "licence MIT AND GPL-3.0-or-later: GPL-3.0-or-later in deny-licenses"),
        ((), ("GPL-2.0-only",), "GPL-2.0-only WITH Classpath-exception-2.0",
         ("licence GPL-2.0-only WITH Classpath-exception-2.0: "
         "GPL-2.0-only WITH Classpath-exception-2.0 in deny-licenses")),
        (("MIT", "BSD-3-Clause"), (), "(MIT OR Apache-2.0) AND BSD-3-Clause", None),
        (("MIT",), (), "Apache-2.0", "licence Apache-2.0 is not in allow-licenses"),
        (("MIT",), (), None, "licence unknown, and allow-licenses is set"),
        ((), ("AGPL-3.0-only",), None, None),  # a deny list alone lets unknown through
        (("MIT",), ("MIT",), "MIT", "licence MIT: MIT in deny-licenses"),
    ],
)
def test_policy(allow, deny, spdx, problem):
    policy = LicensePolicy.from_lists(allow, deny, where=("allow", "deny"))
    assert policy.problem(LicenseInfo(spdx)) == problem


def licensed_bundle(tmp_path):
    return make_bundle(
        tmp_path,
        packages=(("alpha", "1.0"), ("beta", "2.0", "alpha"), ("gamma", "3.0")),
        metadata={
            "alpha": ["License-Expression: MIT"],
            "beta": ["License-Expression: GPL-3.0-or-later"],
            "gamma": ["License: BSD", f"Classifier: {BSD}"],
        },
    )


def test_licenses_command_lists_and_checks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundle = licensed_bundle(tmp_path)
    code, out, err = run("licenses", str(bundle), "--json")
    assert (code, err) == (0, "")
    assert [(r["name"], r["license"], r["source"]) for r in json.loads(out)] == [
        ("alpha", "MIT", "License-Expression"),
        ("beta", "GPL-3.0-or-later", "License-Expression"),
        ("gamma", "unknown", None),
    ]
    code, out, err = run("licenses", str(bundle), "--deny-license", "gpl-3.0-or-later")
    assert code == 15
    assert err == (
        f"lockship: error: {bundle}: 1 package breaks the licence policy\n"
        "  beta 2.0: licence GPL-3.0-or-later: GPL-3.0-or-later in deny-licenses\n"
        "  hint: remove or replace them, or change allow-licenses / deny-licenses\n"
    )
    code, _, err = run("licenses", str(bundle), "--allow-license", "MIT")
    assert code == 15
    assert "beta 2.0: licence GPL-3.0-or-later is not in allow-licenses\n" in err
    assert "gamma 3.0: licence unknown, and allow-licenses is set\n" in err
    code, _, err = run("licenses", str(bundle), "--allow-license", "MIT OR BSD-3-Clause")
    assert (code, err) == (
        3,
        ("lockship: error: --allow-license: 'MIT OR BSD-3-Clause': list licences one by one, "
        "not combined with AND/OR\n"),
    )


def test_sign_applies_the_policy_of_tool_lockship(tmp_path, monkeypatch, keys):
    monkeypatch.chdir(tmp_path)
    bundle = licensed_bundle(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1"\n\n'
        '[tool.lockship]\ndeny-licenses = ["GPL-3.0-or-later", "AGPL-3.0-only"]\n'
    )
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 15
    assert err.startswith(
        f"lockship: error: {bundle}: 1 package breaks the licence policy\n"
        "  beta 2.0: licence GPL-3.0-or-later: GPL-3.0-or-later in deny-licenses\n"
    )
    assert not (bundle / "SHA256SUMS").exists() and not (bundle / "sbom.cdx.json").exists()
    (tmp_path / "pyproject.toml").write_text('[tool.lockship]\ndeny-licenses = ["AGPL-3.0-only"]\n')
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain), "-q")
    assert code == 0, err


def test_a_bad_entry_in_tool_lockship_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundle = licensed_bundle(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.lockship]\n\nallow-licenses = ["MIT", "BSD"]\n')
    code, _, err = run("licenses", str(bundle))
    assert code == 3
    assert err == (
        "lockship: error: pyproject.toml:3: [tool.lockship] allow-licenses: "
        "'BSD' is not an SPDX licence identifier\n"
        "  hint: use identifiers from https://spdx.org/licenses/, e.g. 'MIT' or 'GPL-3.0-only'\n"
    )
