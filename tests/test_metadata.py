"""Core metadata parsing: lockship's fast header reader agrees with packaging's."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.metadata import parse_email

from lockship.metadata import parse_core_metadata, read_headers

FOLDED = "\n".join([
    "Metadata-Version: 2.1",
    "Name: Demo_Pkg",
    "Version: 1.0",
    "License: Copyright (c) 2015",
    "        All rights reserved.",
    "        ",  # a whitespace-only folded line does not end the headers
    "        Redistribution and use in source and binary forms",
    "Requires-Python: >=3.9",
    "Provides-Extra: Fast",
    "Requires-Dist: attrs>=23",
    'Requires-Dist: numpy; extra == "fast"',
    "Description-Content-Type: text/markdown",
    "",
    "Requires-Dist: this-is-in-the-description",
    "",
]).encode()


def test_folded_fields_and_description_body():
    meta = parse_core_metadata(FOLDED, where="demo")
    assert meta.name == "demo-pkg"
    assert str(meta.version) == "1.0"
    assert [str(r) for r in meta.requires_dist] == ["attrs>=23", 'numpy; extra == "fast"']
    assert str(meta.requires_python) == ">=3.9"
    assert meta.provides_extra == frozenset({"fast"})


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    requires=st.lists(_text.filter(lambda s: s and ":" not in s), max_size=4),
    extras=st.lists(_text.filter(bool), max_size=3),
    junk=st.lists(st.tuples(st.sampled_from(["Summary", "License", "Classifier", "Keywords"]), _text), max_size=4),
    body=_text,
)
def test_read_headers_matches_packaging(requires, extras, junk, body):
    lines = ["Metadata-Version: 2.1", "Name: demo", "Version: 1.0"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    lines += [f"Provides-Extra: {e}" for e in extras]
    lines += [f"{k}: {v}\n        continued\n        " for k, v in junk]
    data = ("\n".join(lines) + "\n\n" + body + "\n").encode()
    raw, _ = parse_email(data)
    mine = read_headers(data)
    assert mine.get("requires-dist", []) == raw.get("requires_dist", [])
    assert mine.get("provides-extra", []) == raw.get("provides_extra", [])
    assert mine["name"] == [raw["name"]]
