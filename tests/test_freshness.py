"""Rollback, replay and freeze: what sign records about a bundle's place in time, and who reads it.

``lockship sign`` signs ``series``, ``sequence``, ``signed_at`` and ``expires`` with
the rest of manifest.json; ``lockship verify`` shows them and refuses an expired
bundle (exit 14); ``lockship diff`` flags a new bundle that is not newer (exit 11).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bundles import SSH_KEYGEN, Keys, make_bundle, reseal, run, sign, verify

pytestmark = pytest.mark.skipif(not Path(SSH_KEYGEN).exists(), reason="needs ssh-keygen")


def manifest(bundle: Path) -> dict[str, object]:
    document = json.loads((bundle / "manifest.json").read_text())
    return {k: document.get(k) for k in ("series", "sequence", "signed_at", "expires")}


def test_sign_records_freshness_and_verify_shows_it(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    code, _, err = run(
        "sign", str(bundle), "--key", str(keys.plain), "--series", "prod",
        "--signed-at", "2026-01-01T00:00:00Z", "--expires", "2999-01-01",
    )
    assert code == 0, err
    assert (
        "series prod, sequence 1, signed 2026-01-01T00:00:00Z, expires 2999-01-01T00:00:00Z\n"
        in err
    )
    assert manifest(bundle) == {
        "series": "prod",
        "sequence": 1,
        "signed_at": "2026-01-01T00:00:00Z",
        "expires": "2999-01-01T00:00:00Z",
    }
    code, out, err = verify(bundle, keys)
    assert code == 0, err
    assert out.endswith(
        "; series prod, sequence 1, signed 2026-01-01T00:00:00Z, expires 2999-01-01T00:00:00Z\n"
    )
    code, out, _ = verify(bundle, keys, "--json")
    assert json.loads(out)["signed_at"] == "2026-01-01T00:00:00Z"
    assert json.loads(out)["sequence"] == 1


def test_sequence_grows_per_series_and_is_kept_for_an_unchanged_manifest(
    tmp_path: Path, keys: Keys
) -> None:
    bundle = make_bundle(tmp_path)

    def signs(*args: str) -> int:
        sign(bundle, keys, "--signed-at", "2026-01-01T00:00:00Z", *args)
        sequence = manifest(bundle)["sequence"]
        assert isinstance(sequence, int)
        return sequence

    assert signs() == 1
    first = (bundle / "manifest.json").read_bytes()
    assert signs() == 1  # the same manifest again: the same bytes, not a new bundle
    assert (bundle / "manifest.json").read_bytes() == first
    assert signs("--expires", "30d") == 2  # anything signed changed: the next number
    assert manifest(bundle)["expires"] == "2026-01-31T00:00:00Z"
    assert signs("--series", "other") == 1  # another series counts on its own
    assert signs("--sequence", "9") == 9
    assert signs("--expires", "2999-01-01") == 10
    counters = json.loads((bundle.parent / ".lockship-sequence.json").read_text())
    assert sorted(s["sequence"] for s in counters["streams"].values()) == [1, 10]
    # the counter file is beside the bundle, never in it (it would be an extra file)
    assert verify(bundle, keys)[0] == 0


def test_signed_at_comes_from_source_date_epoch(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_bundle(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    sign(bundle, keys)
    assert manifest(bundle)["signed_at"] == "2026-01-01T00:00:00Z"
    assert manifest(bundle)["series"] == "host"  # default: the target's name


def test_expired_bundle_is_refused_with_exit_14(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys, "--signed-at", "2020-01-01T00:00:00Z", "--expires", "30d")
    code, out, err = verify(bundle, keys)
    assert (code, out) == (14, "")
    assert re.fullmatch(
        re.escape(
            f"lockship: error: {bundle}: expired at 2020-01-31T00:00:00Z (series host, "
            "sequence 1, signed 2020-01-01T00:00:00Z); it is now "
        )
        + r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n"
        + re.escape(
            "  hint: ask the signer for a freshly signed bundle: an expired one may be "
            "withholding updates (a freeze attack)\n"
        ),
        err,
    ), err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--expires", "soon"),
            ("--expires: not a duration or a time: 'soon'\n"
            "  hint: write 30d (days), 12h (hours), YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ\n"),
        ),
        (
            ("--signed-at", "2026-01-01T00:00:00Z", "--expires", "2025-12-31"),
            "--expires: 2025-12-31 is not after the signing time 2026-01-01T00:00:00Z\n",
        ),
        (
            ("--signed-at", "yesterday"),
            ("--signed-at: not a UTC time or date: 'yesterday'\n"
            "  hint: write YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD\n"),
        ),
        (
            ("--series", "a b"),
            ("--series: unusable series name 'a b'\n"
            "  hint: letters, digits and . _ / + - only, at most 200 characters\n"),
        ),
    ],
)
def test_bad_freshness_options(tmp_path: Path, keys: Keys, args: tuple[str, ...], message: str) -> None:
    bundle = make_bundle(tmp_path)
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain), *args)
    assert (code, err) == (3, f"lockship: error: {message}")
    assert not (bundle / "manifest.json").exists()


def test_bad_sequence_file_is_an_input_error(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    counters = bundle.parent / ".lockship-sequence.json"
    counters.write_text("[" * 100_000)
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 3
    assert err.startswith(f"lockship: error: {counters}: unreadable sequence counters: ")
    assert err.endswith(
        "  hint: restore it, or pass --sequence N (higher than any bundle signed before)\n"
    )
    sign(bundle, keys, "--sequence", "5")  # the override needs no counter
    assert manifest(bundle)["sequence"] == 5


def test_manifest_without_freshness_reads_as_sequence_0_and_no_expiry(
    tmp_path: Path, keys: Keys
) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    document = json.loads((bundle / "manifest.json").read_text())
    for key in ("series", "sequence", "signed_at", "expires"):
        del document[key]  # as lockship wrote it before these existed
    (bundle / "manifest.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    reseal(bundle, keys.plain)
    code, out, err = verify(bundle, keys)
    assert code == 0, err
    assert out.endswith("; series (none), sequence 0, signed at an unknown time, expires never\n")


def _diff(old: Path, new: Path) -> tuple[int, dict[str, object]]:
    code, out, _ = run("diff", str(old), str(new), "--format", "json")
    return code, json.loads(out)


def test_diff_shows_both_sides_and_flags_a_bundle_that_is_not_newer(
    tmp_path: Path, keys: Keys
) -> None:
    old, new = make_bundle(tmp_path / "old"), make_bundle(tmp_path / "new")
    sign(old, keys, "--sequence", "2", "--signed-at", "2026-02-01T00:00:00Z")
    sign(new, keys, "--sequence", "3", "--signed-at", "2026-03-01T00:00:00Z")
    code, document = _diff(old, new)
    assert (code, document["changes"]) == (0, [])
    assert document["signing"] == {
        "old": {"series": "host", "sequence": 2, "signed_at": "2026-02-01T00:00:00Z"},
        "new": {"series": "host", "sequence": 3, "signed_at": "2026-03-01T00:00:00Z"},
    }
    code, out, _ = run("diff", str(old), str(new), "--format", "markdown")
    assert "- old: series host, sequence 2, signed 2026-02-01T00:00:00Z\n" in out
    assert "- new: series host, sequence 3, signed 2026-03-01T00:00:00Z\n" in out

    # Swapped: the "new" bundle is the older one (a rollback, or a replayed bundle).
    code, document = _diff(new, old)
    assert code == 11
    changes = document["changes"]
    assert isinstance(changes, list)
    assert [(c["kind"], c["red_flag"], c["detail"]) for c in changes] == [
        ("not-newer", True, "sequence 2 is not above 3; it was signed before the old one")
    ]
    # The same bundle on both sides (replay): an equal sequence is not newer either.
    code, document = _diff(old, old)
    assert code == 11


def test_report_shows_an_expired_bundle_as_a_red_flag(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys, "--signed-at", "2020-01-01T00:00:00Z", "--expires", "2020-02-01")
    code, out, err = run(
        "report", str(bundle), "--format", "json", "--allowed-signers", str(keys.allowed)
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["signature"]["state"] == "invalid"
    flags = [f for f in document["red_flags"] if f["kind"] == "freshness"]
    assert len(flags) == 1
    assert flags[0]["detail"].startswith("expired at 2020-02-01T00:00:00Z (series host, sequence 1")
