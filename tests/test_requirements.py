"""Tests for lockship.inputs: pip requirements files and pyproject.toml inputs."""

from __future__ import annotations

import codecs
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from packaging.markers import Marker
from packaging.requirements import Requirement

from lockship.errors import InputError
from lockship.inputs import (
    IndexOptions,
    InputRequirement,
    Inputs,
    Source,
    merge_inputs,
    read_pyproject,
    read_requirements,
)
from lockship.inputs.requirements_file import _break_args_options, _logical_lines

SHA_A = "a" * 64
SHA_B = "B" * 64
SHA_C = "c" * 64


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Run every test inside its tmp_path so Source paths are short and relative."""
    monkeypatch.chdir(tmp_path)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def read(root: Path, files: dict[str, str], top: str = "req.in", **kwargs) -> Inputs:
    write(root, files)
    kwargs.setdefault("environ", {})
    return read_requirements([Path(top)], **kwargs)


def reqs(inputs: Inputs) -> list[str]:
    return [str(entry.requirement) for entry in inputs.requirements]


def wheres(inputs: Inputs) -> list[str]:
    return [str(entry.source) for entry in inputs.requirements]


# --------------------------------------------------------------------------
# Line syntax
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("requests\n", [("requests", "req.in:1")], id="plain"),
        pytest.param(
            "# comment\n\nrequests  # trailing\n   \n  attrs>=23\n",
            [("requests", "req.in:3"), ("attrs>=23", "req.in:5")],
            id="comments-and-blank-lines",
        ),
        pytest.param("foo#bar==1 # c\n", None, id="hash-without-space-is-not-a-comment"),
        pytest.param(
            "requests \\\n  >=2.31 \\\n  ,<3\nattrs\n",
            [("requests<3,>=2.31", "req.in:1"), ("attrs", "req.in:4")],
            id="continuation-keeps-first-line-number",
        ),
        pytest.param(
            "# comment \\\nrequests\n",
            [("requests", "req.in:2")],
            id="comment-line-never-continues",
        ),
        pytest.param(
            "requests \\\n# comment\nattrs\n",
            [("requests", "req.in:1"), ("attrs", "req.in:3")],
            id="comment-line-ends-a-continuation",
        ),
        pytest.param(
            "requests # comment \\\nswallowed\nattrs\n",
            [("requests", "req.in:1"), ("attrs", "req.in:3")],
            id="pip-joins-before-stripping-comments",
        ),
        pytest.param("requests \\", [("requests", "req.in:1")], id="backslash-on-last-line"),
        pytest.param(
            "requests\r\nattrs>=1\r\n",
            [("requests", "req.in:1"), ("attrs>=1", "req.in:2")],
            id="crlf",
        ),
        pytest.param(
            'idna ; python_version < "3.11"\n',
            [('idna; python_version < "3.11"', "req.in:1")],
            id="marker",
        ),
        pytest.param(
            'idna;python_version<"3.11"\n',
            [('idna; python_version < "3.11"', "req.in:1")],
            id="marker-without-spaces",
        ),
        pytest.param(
            "Requests[Socks,security] >= 2.0, != 2.1\n",
            [("Requests[Socks,security]!=2.1,>=2.0", "req.in:1")],
            id="extras-and-specifiers",
        ),
        pytest.param(
            'foo @ https://example.com/foo-1.0.tar.gz ; os_name == "posix"\n',
            [('foo @ https://example.com/foo-1.0.tar.gz ; os_name == "posix"', "req.in:1")],
            id="direct-reference",
        ),
        pytest.param(
            "foo @ git+https://github.com/o/foo@v1\n",
            [("foo @ git+https://github.com/o/foo@v1", "req.in:1")],
            id="vcs-direct-reference",
        ),
        pytest.param(
            "foo @ file:///srv/foo-1.0-py3-none-any.whl\n",
            [("foo @ file:///srv/foo-1.0-py3-none-any.whl", "req.in:1")],
            id="named-file-url-is-kept",
        ),
    ],
)
def test_requirement_lines(tmp_path, text, expected):
    if expected is None:
        with pytest.raises(InputError) as info:
            read(tmp_path, {"req.in": text})
        assert info.value.where == "req.in:1"
        assert "invalid requirement 'foo#bar==1'" in info.value.message
        return
    inputs = read(tmp_path, {"req.in": text})
    assert list(zip(reqs(inputs), wheres(inputs))) == expected


def test_utf8_bom(tmp_path):
    (tmp_path / "req.in").write_bytes(codecs.BOM_UTF8 + b"requests\nattrs\n")
    assert reqs(read_requirements([Path("req.in")], environ={})) == ["requests", "attrs"]


def test_utf16_bom(tmp_path):
    (tmp_path / "req.in").write_bytes(codecs.BOM_UTF16_LE + "requests\n".encode("utf-16-le"))
    assert reqs(read_requirements([Path("req.in")], environ={})) == ["requests"]


def test_pep263_coding_line(tmp_path):
    data = "# -*- coding: latin-1 -*-\nfoo ; platform_release == 'caf\xe9'\n".encode("latin-1")
    (tmp_path / "req.in").write_bytes(data)
    inputs = read_requirements([Path("req.in")], environ={})
    assert inputs.requirements[0].requirement.marker == Marker("platform_release == 'caf\xe9'")


def test_undecodable_file_names_the_line(tmp_path):
    (tmp_path / "req.in").write_bytes(b"requests\nattrs\nfoo==\xff\n")
    with pytest.raises(InputError) as info:
        read_requirements([Path("req.in")], environ={})
    assert info.value.where == "req.in:3"
    assert "not valid utf-8" in info.value.message


def test_unknown_coding_declaration(tmp_path):
    (tmp_path / "req.in").write_bytes(b"# coding: klingon\nrequests\n")
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        read_requirements([Path("req.in")], environ={})


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${PKG}>=1\n", {"PKG": "requests"}, "requests>=1"),
        (
            "foo @ https://${HOST}/foo.whl\n",
            {"HOST": "h.example"},
            "foo @ https://h.example/foo.whl",
        ),
        ("foo @ https://x/${UNDEFINED}.whl\n", {}, "foo @ https://x/${UNDEFINED}.whl"),
        ("foo @ https://x/${EMPTY}.whl\n", {"EMPTY": ""}, "foo @ https://x/${EMPTY}.whl"),
        ("foo @ https://x/${lower}.whl\n", {"lower": "no"}, "foo @ https://x/${lower}.whl"),
        ("foo @ https://x/$PLAIN.whl\n", {"PLAIN": "no"}, "foo @ https://x/$PLAIN.whl"),
        ("${A}${B}_C\n", {"A": "foo", "B": "bar"}, "foobar_C"),
    ],
)
def test_environment_variables(tmp_path, text, environ, expected):
    assert reqs(read(tmp_path, {"req.in": text}, environ=environ)) == [expected]


def test_environment_defaults_to_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCKSHIP_TEST_PKG", "attrs")
    write(tmp_path, {"req.in": "${LOCKSHIP_TEST_PKG}\n"})
    assert reqs(read_requirements([Path("req.in")])) == ["attrs"]


def test_environment_expansion_happens_after_comment_stripping(tmp_path):
    inputs = read(tmp_path, {"req.in": "--index-url ${URL}\n"}, environ={"URL": "https://x/#frag"})
    assert inputs.options.index_url == "https://x/#frag"


# --------------------------------------------------------------------------
# Hashes
# --------------------------------------------------------------------------


def test_hashes_sorted_lowercased_deduplicated(tmp_path):
    text = (
        f"foo==1.0 --hash=sha256:{SHA_C} \\\n"
        f"    --hash sha256:{SHA_B} \\\n"
        f"    --hash=sha256:{SHA_C.upper()} \\\n"
        f"    --hash=sha512:{'d' * 128}\n"
        "bar==2\n"
    )
    inputs = read(tmp_path, {"req.in": text})
    foo, bar = inputs.requirements
    assert foo.hashes == (f"sha256:{'b' * 64}", f"sha256:{SHA_C}", f"sha512:{'d' * 128}")
    assert foo.source == Source("req.in", 1)
    assert bar.hashes == ()
    assert bar.source == Source("req.in", 5)


def test_hash_on_marker_requirement(tmp_path):
    inputs = read(tmp_path, {"req.in": f'foo ; python_version < "3.11" --hash=sha384:{"e" * 96}\n'})
    assert inputs.requirements[0].hashes == (f"sha384:{'e' * 96}",)
    assert inputs.requirements[0].requirement.marker == Marker('python_version < "3.11"')


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", IndexOptions(), id="none"),
        pytest.param(
            "-i https://a/simple\n--index-url=https://b/simple\n",
            IndexOptions(index_url="https://b/simple"),
            id="later-index-url-wins",
        ),
        pytest.param(
            "-ihttps://a/simple\n", IndexOptions(index_url="https://a/simple"), id="short-attached"
        ),
        pytest.param(
            "--pypi-url https://a/\n", IndexOptions(index_url="https://a/"), id="pip-alias"
        ),
        pytest.param(
            "--extra-index-url https://a/\n--extra-index-url=https://b/\n--extra https://a/\n",
            IndexOptions(extra_index_urls=("https://a/", "https://b/")),
            id="extra-index-urls-dedup-and-abbreviation",
        ),
        pytest.param(
            "--trusted-host a.example\n--trusted-host=b.example:8080\n",
            IndexOptions(trusted_hosts=("a.example", "b.example:8080")),
            id="trusted-hosts",
        ),
        pytest.param(
            "--no-index\n--pre\n--prefer-binary\n--require-hashes\n",
            IndexOptions(no_index=True, pre=True, prefer_binary=True),
            id="flags",
        ),
        pytest.param(
            "--no-index --pre --index-url https://a/\n",
            IndexOptions(index_url="https://a/", no_index=True, pre=True),
            id="several-options-on-one-line",
        ),
        pytest.param(
            "-f https://a/links.html\n-f file:///srv/wheels\n",
            IndexOptions(find_links=("https://a/links.html", "file:///srv/wheels")),
            id="find-links-urls-kept",
        ),
        pytest.param(
            "--only-binary :all:\n", IndexOptions(only_binary=(":all:",)), id="only-binary-all"
        ),
        pytest.param(
            "--only-binary=Foo_Bar,baz\n--no-binary baz\n",
            IndexOptions(only_binary=("foo-bar",), no_binary=("baz",)),
            id="binary-lists-exclude-each-other",
        ),
        pytest.param(
            "--no-binary foo\n--only-binary :all:\n",
            IndexOptions(only_binary=(":all:",)),
            id="all-clears-the-other-list",
        ),
        pytest.param(
            "--only-binary :all:,foo\n", IndexOptions(only_binary=(":all:",)), id="all-covers-names"
        ),
        pytest.param(
            "--only-binary :all:,:none:,foo\n",
            IndexOptions(only_binary=(":none:", "foo"), no_binary=(":none:",)),
            id="none-after-all",
        ),
        pytest.param(
            "--no-binary foo\n--no-binary :none:\n--no-binary bar\n",
            IndexOptions(no_binary=(":none:", "bar")),
            id="none-resets",
        ),
        pytest.param(
            "--only-binary :all:\n--only-binary foo\n",
            IndexOptions(only_binary=(":all:", "foo")),
            id="names-after-all",
        ),
    ],
)
def test_options(tmp_path, text, expected):
    assert read(tmp_path, {"req.in": text + "requests\n"}).options == expected


def test_find_links_relative_to_the_file_that_names_them(tmp_path):
    files = {
        "req.in": "-f wheels\n-r sub/more.in\n-f ~/cache\n-f ~no-such-user-x/w\n",
        "sub/more.in": "--find-links ../other\n--find-links=./here\n-f /abs/dir\n",
    }
    options = read(tmp_path, files).options
    assert options.find_links == (
        str(tmp_path / "wheels"),
        str(tmp_path / "other"),
        str(tmp_path / "sub" / "here"),
        "/abs/dir",
        str(Path("~/cache").expanduser()),
        str(tmp_path / "~no-such-user-x" / "w"),
    )


def test_options_accumulate_across_included_files(tmp_path):
    files = {
        "req.in": "-i https://a/\n--no-binary foo\n-r sub/b.in\n--extra-index-url https://x/\n",
        "sub/b.in": "-i https://b/\n--only-binary foo,bar\n--extra-index-url https://y/\n",
    }
    options = read(tmp_path, files).options
    assert options.index_url == "https://b/"
    assert options.only_binary == ("bar", "foo")
    assert options.no_binary == ()
    assert options.extra_index_urls == ("https://y/", "https://x/")


def test_constraints_files_may_carry_options(tmp_path):
    write(tmp_path, {"req.in": "requests\n", "c.txt": "-i https://c/\n--pre\nidna==3.7\n"})
    inputs = read_requirements([Path("req.in")], constraints=[Path("c.txt")], environ={})
    assert inputs.options.index_url == "https://c/"
    assert inputs.options.pre
    assert [str(c.requirement) for c in inputs.constraints] == ["idna==3.7"]


def test_requirements_file_index_url_overrides_constraints_file(tmp_path):
    write(tmp_path, {"req.in": "-i https://r/\nrequests\n", "c.txt": "-i https://c/\n"})
    inputs = read_requirements([Path("req.in")], constraints=[Path("c.txt")], environ={})
    assert inputs.options.index_url == "https://r/"
    assert inputs.files == (tmp_path / "c.txt", tmp_path / "req.in")


# --------------------------------------------------------------------------
# Includes
# --------------------------------------------------------------------------


def test_nested_includes_with_relative_paths(tmp_path):
    files = {
        "req.in": "top\n-r sub/a.in\n--requirement=sub/deeper/b.in\n-c sub/c.txt\nlast\n",
        "sub/a.in": "a1\n-r deeper/b.in\na2\n",
        "sub/deeper/b.in": "b1\n-r ../../shared.in\n",
        "shared.in": "shared>=1\n",
        "sub/c.txt": "c1==1\n-c ../c2.txt\n",
        "c2.txt": "c2==2\n",
    }
    inputs = read(tmp_path, files)
    assert list(zip(reqs(inputs), wheres(inputs))) == [
        ("top", "req.in:1"),
        ("a1", "sub/a.in:1"),
        ("b1", "sub/deeper/b.in:1"),
        ("shared>=1", "shared.in:1"),
        ("a2", "sub/a.in:3"),
        ("last", "req.in:5"),
    ]
    assert [(str(c.requirement), str(c.source)) for c in inputs.constraints] == [
        ("c1==1", "sub/c.txt:1"),
        ("c2==2", "c2.txt:1"),
    ]
    # b.in is included twice (a diamond, not a cycle); its entries appear once.
    assert inputs.files == tuple(
        tmp_path / name
        for name in ("req.in", "sub/a.in", "sub/deeper/b.in", "shared.in", "sub/c.txt", "c2.txt")
    )


def test_include_by_file_url(tmp_path):
    files = {"req.in": f"-r {(tmp_path / 'sub' / 'x.in').as_uri()}\n", "sub/x.in": "attrs\n"}
    assert wheres(read(tmp_path, files)) == ["sub/x.in:1"]


def test_same_file_twice_on_command_line(tmp_path):
    write(tmp_path, {"req.in": "attrs\n"})
    inputs = read_requirements([Path("req.in"), tmp_path / "req.in"], environ={})
    assert reqs(inputs) == ["attrs"]
    assert inputs.files == (tmp_path / "req.in",)


def test_source_path_given_absolute_inside_cwd_is_relative(tmp_path):
    write(tmp_path, {"sub/req.in": "attrs\n"})
    inputs = read_requirements([tmp_path / "sub" / "req.in"], environ={})
    assert inputs.requirements[0].source == Source(os.path.join("sub", "req.in"), 1)
    assert inputs.files == (tmp_path / "sub" / "req.in",)


def test_source_path_outside_cwd_is_absolute(tmp_path, monkeypatch):
    write(tmp_path, {"req.in": "attrs\n", "work/x": ""})
    monkeypatch.chdir(tmp_path / "work")
    inputs = read_requirements([Path("../req.in")], environ={})
    assert inputs.requirements[0].source == Source(str(tmp_path / "req.in"), 1)
    assert str(inputs.requirements[0].source) == f"{tmp_path / 'req.in'}:1"


@pytest.mark.parametrize(
    ("files", "where", "chain"),
    [
        pytest.param({"req.in": "a\n-r req.in\n"}, "req.in:2", "req.in -> req.in", id="self"),
        pytest.param(
            {"req.in": "-r sub/b.in\n", "sub/b.in": "x\n\n-r ../req.in\n"},
            "sub/b.in:3",
            "req.in -> sub/b.in -> req.in",
            id="through-subdirectory",
        ),
        pytest.param(
            {"req.in": "-r b.in\n", "b.in": "-c c.in\n", "c.in": "-c b.in\n"},
            "c.in:1",
            "req.in -> b.in -> c.in -> b.in",
            id="constraints-cycle-below-top",
        ),
    ],
)
def test_include_cycles(tmp_path, files, where, chain):
    with pytest.raises(InputError) as info:
        read(tmp_path, files)
    assert info.value.where == where
    assert info.value.message == f"requirements files include each other: {chain}"


def test_cycle_through_symlink(tmp_path):
    write(tmp_path, {"req.in": "-r link.in\n"})
    (tmp_path / "link.in").symlink_to(tmp_path / "req.in")
    with pytest.raises(InputError, match=r"include each other: req\.in -> link\.in"):
        read_requirements([Path("req.in")], environ={})


# --------------------------------------------------------------------------
# Errors: where and what
# --------------------------------------------------------------------------

# fmt: off
ERROR_CASES = [
    # (id, files, where, phrase)
    ("editable-short", {"req.in": "a\n-e .\n"}, "req.in:2", "editable requirements cannot be locked"),
    ("editable-long", {"req.in": "--editable=git+https://x/y#egg=y\n"}, "req.in:1", "editable requirements cannot be locked"),
    ("editable-in-constraints", {"req.in": "-c c.txt\n", "c.txt": "-e ./x\n"}, "c.txt:1", "editable requirements"),
    ("dot", {"req.in": ".\n"}, "req.in:1", "local path requirements are not supported: '.'"),
    ("relative-dir", {"req.in": "./pkg[extra]\n"}, "req.in:1", "local path requirements are not supported: './pkg[extra]'"),
    ("dir-slash", {"req.in": "libs/pkg\n"}, "req.in:1", "local path requirements are not supported"),
    ("wheel-file", {"req.in": "pkg-1.0-py3-none-any.whl\n"}, "req.in:1", "local path requirements are not supported"),
    ("sdist-file-with-marker", {"req.in": 'dist/pkg-1.0.tar.gz ; python_version > "3"\n'}, "req.in:1", "local path requirements are not supported: 'dist/pkg-1.0.tar.gz'"),
    ("file-url", {"req.in": "file:///srv/pkg-1.0.tar.gz\n"}, "req.in:1", "local path requirements are not supported"),
    ("named-relative-path", {"req.in": "pkg @ ./pkg\n"}, "req.in:1", "local path requirements are not supported"),
    ("bare-url", {"req.in": "https://example.com/pkg-1.0.tar.gz\n"}, "req.in:1", "a URL requirement cannot be locked by name and hash"),
    ("bare-vcs-url", {"req.in": "git+https://github.com/o/r@main#egg=r\n"}, "req.in:1", "cannot be locked by name and hash"),
    ("unknown-option", {"req.in": "a\n--frobnicate\n"}, "req.in:2", "no such option: --frobnicate"),
    ("unknown-option-after-requirement", {"req.in": "foo==1 --frob=2\n"}, "req.in:1", "no such option: --frob"),
    ("unknown-short-option", {"req.in": "-x\n"}, "req.in:1", "no such option: -x"),
    ("ambiguous-option", {"req.in": "--no\n"}, "req.in:1", "ambiguous option: --no"),
    ("flag-with-value", {"req.in": "--pre=yes\n"}, "req.in:1", "--pre option does not take a value"),
    ("option-missing-value", {"req.in": "--index-url\n"}, "req.in:1", "--index-url option requires 1 argument"),
    ("unsplittable", {"req.in": 'foo --hash "sha256:\n'}, "req.in:1", "cannot split the options"),
    ("invalid-requirement", {"req.in": "ok\nfoo>>1\n"}, "req.in:2", "invalid requirement 'foo>>1': Expected"),
    ("invalid-requirement-continued", {"req.in": "ok\nfoo \\\n  >>1\n"}, "req.in:2", "invalid requirement 'foo   >>1'"),
    ("single-equals", {"req.in": "foo=1\n"}, "req.in:1", "invalid requirement 'foo=1'"),
    ("url-without-name", {"req.in": "foo @\n"}, "req.in:1", "Expected URL after @"),
    ("invalid-marker", {"req.in": 'foo ; python_version ~ "3"\n'}, "req.in:1", "invalid marker 'python_version ~ \"3\"'"),
    ("unknown-marker-variable", {"req.in": 'foo ; pyversion == "3"\n'}, "req.in:1", "invalid marker"),
    ("hash-md5", {"req.in": "foo --hash=md5:abc\n"}, "req.in:1", "hash algorithm 'md5' is not allowed"),
    ("hash-uppercase-algorithm", {"req.in": f"foo --hash=SHA256:{SHA_A}\n"}, "req.in:1", "hash algorithm 'SHA256' is not allowed"),
    ("hash-bad-hex", {"req.in": f"foo --hash=sha256:{'g' * 64}\n"}, "req.in:1", "is not 64 hex digits"),
    ("hash-short", {"req.in": "foo --hash=sha512:abcd\n"}, "req.in:1", "sha512 hash 'abcd' is not 128 hex digits"),
    ("hash-no-algorithm", {"req.in": f"foo --hash={SHA_A}\n"}, "req.in:1", "is not ALGORITHM:HEX"),
    ("hash-on-continuation-line", {"req.in": f"ok\nfoo \\\n --hash=sha256:{SHA_A} \\\n --hash=md5:x\n"}, "req.in:2", "'md5' is not allowed"),
    ("hash-without-requirement", {"req.in": f"--hash=sha256:{SHA_A}\n"}, "req.in:1", "--hash without a requirement"),
    ("option-after-requirement", {"req.in": "foo --index-url https://x/\n"}, "req.in:1", "--index-url is not allowed after a requirement"),
    ("include-after-requirement", {"req.in": "foo -r other.in\n"}, "req.in:1", "-r is not allowed after a requirement"),
    ("two-includes", {"req.in": "-r a.in -r b.in\n", "a.in": "", "b.in": ""}, "req.in:1", "-r must be alone on its line"),
    ("include-with-option", {"req.in": "--pre -c a.in\n", "a.in": ""}, "req.in:1", "-c must be alone on its line"),
    ("two-find-links", {"req.in": "-f a -f b\n"}, "req.in:1", "more than one -f on one line"),
    ("stray-argument", {"req.in": "--pre foo\n"}, "req.in:1", "unexpected 'foo' after the options"),
    ("requirement-after-hash", {"req.in": f"--hash=sha256:{SHA_A} foo\n"}, "req.in:1", "unexpected 'foo'"),
    ("use-feature", {"req.in": "--use-feature=fast-deps\n"}, "req.in:1", "option --use-feature is not supported by lockship"),
    ("config-settings", {"req.in": "foo -C key=value\n"}, "req.in:1", "option -C is not supported"),
    ("no-require-hashes", {"req.in": "--no-require-hashes\n"}, "req.in:1", "--no-require-hashes is not supported"),
    ("all-releases", {"req.in": "--all-releases :all:\n"}, "req.in:1", "--all-releases is not supported"),
    ("binary-option-as-value", {"req.in": "--only-binary=--pre\n"}, "req.in:1", "--only-binary needs a value"),
    ("binary-bad-name", {"req.in": "--no-binary foo,b@d\n"}, "req.in:1", "'b@d' is not a project name"),
    ("remote-include", {"req.in": "a\n-r https://example.com/r.txt\n"}, "req.in:2", "remote requirement files are not supported; download it first"),
    ("remote-constraint", {"req.in": "-c http://example.com/c.txt\n"}, "req.in:1", "remote requirement files are not supported"),
    ("remote-file-url-host", {"req.in": "-r file://otherhost/r.txt\n"}, "req.in:1", "remote requirement files are not supported"),
    ("missing-include", {"req.in": "a\n\n-r sub/missing.in\n"}, "req.in:3", "requirements file sub/missing.in not found"),
    ("missing-constraint-include", {"req.in": "-c nope.txt\n"}, "req.in:1", "constraints file nope.txt not found"),
    ("missing-nested-include", {"req.in": "-r sub/a.in\n", "sub/a.in": "x\n-r b.in\n"}, "sub/a.in:2", "requirements file sub/b.in not found"),
    ("include-directory", {"req.in": "-r sub\n", "sub/x": ""}, "req.in:1", "requirements file sub is a directory"),
    ("include-through-file", {"req.in": "-r other.in/x\n", "other.in": ""}, "req.in:1", "not found"),
    ("constraint-extras", {"req.in": "-c c.txt\n", "c.txt": "ok==1\nfoo[bar]==1\n"}, "c.txt:2", "constraints cannot have extras"),
    ("requirement-include-in-constraints", {"req.in": "-c c.txt\n", "c.txt": "-r other.in\n", "other.in": ""}, "c.txt:1", "-r inside a constraints file"),
    ("error-in-nested-file", {"req.in": "-r sub/a.in\n", "sub/a.in": "ok\n-e .\n"}, "sub/a.in:2", "editable"),
]
# fmt: on


@pytest.mark.parametrize(
    ("files", "where", "phrase"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_errors(tmp_path, files, where, phrase):
    with pytest.raises(InputError) as info:
        read(tmp_path, files)
    assert info.value.where == where
    assert phrase in info.value.message
    assert "\n" not in info.value.message
    assert str(info.value) == f"{where}: {info.value.message}"


@pytest.mark.parametrize(
    "line",
    [
        "-r https://${USER}:${TOKEN}@host.example/r.txt",
        "https://${USER}:${TOKEN}@host.example/pkg-1.0.tar.gz",
        "foo>>1 @ https://${USER}:${TOKEN}@host.example/foo.tar.gz",
        "--pre https://${USER}:${TOKEN}@host.example/x",
    ],
)
def test_credentials_are_redacted_in_messages(tmp_path, line):
    environ = {"USER": "alice", "TOKEN": "s3cret"}
    with pytest.raises(InputError) as info:
        read(tmp_path, {"req.in": line + "\n"}, environ=environ)
    assert "s3cret" not in str(info.value)
    assert "alice" not in str(info.value)
    assert "https://***@host.example/" in info.value.message


def test_credentials_are_kept_in_values(tmp_path):
    environ = {"TOKEN": "s3cret"}
    inputs = read(
        tmp_path,
        {"req.in": "-i https://u:${TOKEN}@h/simple\nfoo @ https://u:${TOKEN}@h/foo.whl\n"},
        environ=environ,
    )
    assert inputs.options.index_url == "https://u:s3cret@h/simple"
    assert inputs.requirements[0].requirement.url == "https://u:s3cret@h/foo.whl"


def test_pyproject_credentials_are_redacted(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["foo @ https://u:s3cret@h/foo.whl ; bad"]\n'
    )
    with pytest.raises(InputError) as info:
        read_pyproject(Path("pyproject.toml"))
    assert "s3cret" not in str(info.value)


def test_error_hints(tmp_path):
    with pytest.raises(InputError) as info:
        read(tmp_path, {"req.in": "foo=1\n"})
    assert info.value.hint == "= is not a valid operator; did you mean == ?"
    with pytest.raises(InputError) as info:
        read(tmp_path, {"req.in": "-e .\n"})
    assert "--find-links directory" in (info.value.hint or "")
    with pytest.raises(InputError) as info:
        read(tmp_path, {"req.in": "--frob\n"})
    assert "--extra-index-url" in (info.value.hint or "")


def test_invalid_requirement_message_is_one_line_with_position(tmp_path):
    with pytest.raises(InputError) as info:
        read(tmp_path, {"req.in": "foo>=1.0[bar]\n"})
    assert info.value.message == (
        "invalid requirement 'foo>=1.0[bar]': Expected comma (within version specifier), "
        "semicolon (after version specifier) or end, at '[bar]'"
    )


@pytest.mark.parametrize(
    ("name", "phrase"),
    [("missing.in", "requirements file not found"), ("adir", "requirements file is a directory")],
)
def test_top_level_file_errors(tmp_path, name, phrase):
    (tmp_path / "adir").mkdir()
    with pytest.raises(InputError) as info:
        read_requirements([Path(name)], environ={})
    assert info.value.where == name
    assert info.value.message == phrase


def test_top_level_constraints_file_missing(tmp_path):
    with pytest.raises(InputError) as info:
        read_requirements([], constraints=[Path("c.txt")], environ={})
    assert (info.value.where, info.value.message) == ("c.txt", "constraints file not found")


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


def test_input_requirement_values(tmp_path):
    entry = read(tmp_path, {"req.in": "Zope.Interface>=5\n"}).requirements[0]
    assert entry.name == "zope-interface"
    assert entry == InputRequirement(Requirement("Zope.Interface>=5"), Source("req.in", 1), ())
    assert hash(entry) == hash(
        InputRequirement(Requirement("Zope.Interface>=5"), Source("req.in", 1))
    )
    with pytest.raises(AttributeError):
        entry.source = Source("x")  # type: ignore[misc]
    assert str(Source("pyproject.toml")) == "pyproject.toml"
    assert str(Source("req.in", 3)) == "req.in:3"


# --------------------------------------------------------------------------
# pyproject.toml
# --------------------------------------------------------------------------

PYPROJECT = """\
[project]
name = "My_Proj"
version = "1.0"
dependencies = ["requests>=2", 'tomli; python_version < "3.11"']

[project.optional-dependencies]
socks = ["pysocks"]
Test_Extra = ["pytest>=8", "my-proj[socks]"]
gpu = ['my.proj[socks,test-extra]; sys_platform == "linux"', "cupy"]
loop-a = ["my_proj[loop-b]", "a"]
loop-b = ["my_proj[loop-a]", "b"]
dup = ["requests>=2"]

[dependency-groups]
lint = ["ruff"]
Typing = ["mypy", {include-group = "lint"}]
dev = [{include-group = "typing"}, "my-proj[socks]", "my-proj"]
"""


def pyproject(tmp_path, text: str = PYPROJECT, **kwargs) -> list[str]:
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    inputs = read_pyproject(Path("pyproject.toml"), **kwargs)
    assert inputs.files == (tmp_path / "pyproject.toml",)
    assert inputs.constraints == ()
    assert inputs.options == IndexOptions()
    assert {entry.source for entry in inputs.requirements} <= {Source("pyproject.toml", None)}
    return reqs(inputs)


BASE = ["requests>=2", 'tomli; python_version < "3.11"']


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, BASE, id="dependencies"),
        pytest.param({"extras": ["socks"]}, [*BASE, "pysocks"], id="extra"),
        pytest.param(
            {"extras": ["test-extra"]}, [*BASE, "pytest>=8", "pysocks"], id="self-reference-pep685"
        ),
        pytest.param(
            {"extras": ["GPU"]},
            [
                *BASE,
                'pysocks; sys_platform == "linux"',
                'pytest>=8; sys_platform == "linux"',
                "cupy",
            ],
            id="self-reference-with-marker-nested",
        ),
        pytest.param({"extras": ["loop-a"]}, [*BASE, "b", "a"], id="self-reference-cycle"),
        pytest.param(
            {"extras": ["dup", "socks", "socks"]}, [*BASE, "pysocks"], id="duplicates-dropped"
        ),
        pytest.param({"groups": ["typing"]}, [*BASE, "mypy", "ruff"], id="group-include"),
        pytest.param(
            {"groups": ["dev"]}, [*BASE, "mypy", "ruff", "pysocks"], id="group-self-reference"
        ),
        pytest.param(
            {"all_extras": True},
            [
                *BASE,
                "pysocks",
                "pytest>=8",
                'pysocks; sys_platform == "linux"',
                'pytest>=8; sys_platform == "linux"',
                "cupy",
                "b",
                "a",
            ],
            id="all-extras",
        ),
    ],
)
def test_pyproject(tmp_path, kwargs, expected):
    assert pyproject(tmp_path, **kwargs) == expected


def test_pyproject_marker_combination_is_parsed(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = []\n[project.optional-dependencies]\n'
        'a = [\'p[b]; os_name == "nt"\']\nb = [\'x; python_version < "3.10" or python_version > "3.12"\']\n'
    )
    (entry,) = read_pyproject(Path("pyproject.toml"), extras=["a"]).requirements
    assert entry.requirement.marker == Marker(
        '(os_name == "nt") and (python_version < "3.10" or python_version > "3.12")'
    )
    assert not entry.requirement.marker.evaluate({"os_name": "nt", "python_version": "3.11"})


def test_pyproject_groups_only_without_project_table(tmp_path):
    text = '[dependency-groups]\ndocs = ["sphinx"]\n'
    assert pyproject(tmp_path, text, groups=["docs"]) == ["sphinx"]


# fmt: off
PYPROJECT_ERRORS = [
    ("toml-syntax", "[project]\nname = 'x'\ndependencies = [\n  'a',\n  b\n]\n", {}, "pyproject.toml:5", "invalid TOML: "),
    ("no-project", "[tool.x]\na = 1\n", {}, "pyproject.toml", "no [project] table"),
    ("no-project-with-extras", '[dependency-groups]\nd = ["x"]\n', {"extras": ["a"], "groups": ["d"]}, "pyproject.toml", "no [project] table"),
    ("dynamic-dependencies", '[project]\nname = "x"\ndynamic = ["version", "dependencies"]\n', {}, "pyproject.toml", "[project] dependencies are dynamic"),
    ("dynamic-extras", '[project]\nname = "x"\ndynamic = ["optional-dependencies"]\n', {"extras": ["a"]}, "pyproject.toml", "optional-dependencies are dynamic"),
    ("dynamic-all-extras", '[project]\nname = "x"\ndynamic = ["optional-dependencies"]\n', {"all_extras": True}, "pyproject.toml", "optional-dependencies are dynamic"),
    ("unknown-extra", PYPROJECT, {"extras": ["socks", "nope"]}, "pyproject.toml", "unknown extra 'nope'"),
    ("unknown-group", PYPROJECT, {"groups": ["nope"]}, "pyproject.toml", "unknown dependency group 'nope'"),
    ("invalid-dependency", '[project]\nname = "x"\ndependencies = ["ok", "foo>>1"]\n', {}, "pyproject.toml", "[project] dependencies: invalid requirement 'foo>>1'"),
    ("invalid-extra-entry", '[project]\nname = "x"\n[project.optional-dependencies]\na = ["foo;;"]\n', {"extras": ["a"]}, "pyproject.toml", "[project.optional-dependencies] a: invalid requirement 'foo;;'"),
    ("dependencies-not-list", '[project]\nname = "x"\ndependencies = "requests"\n', {}, "pyproject.toml", "[project] dependencies must be an array of strings"),
    ("extra-not-list", '[project]\nname = "x"\n[project.optional-dependencies]\na = "b"\n', {}, "pyproject.toml", "[project.optional-dependencies] a must be an array"),
    ("duplicate-extra", '[project]\nname = "x"\n[project.optional-dependencies]\nA_b = []\na-b = []\n', {}, "pyproject.toml", "extra defined twice"),
    ("self-reference-unknown-extra", '[project]\nname = "x"\n[project.optional-dependencies]\na = ["x[zzz]"]\n', {"extras": ["a"]}, "pyproject.toml", "names extra 'zzz', which x does not define"),
    ("local-path", '[project]\nname = "x"\ndependencies = ["foo @ ./foo"]\n', {}, "pyproject.toml", "local path requirements are not supported"),
    ("group-cycle", '[project]\nname = "x"\n[dependency-groups]\na = [{include-group = "b"}]\nb = [{include-group = "a"}]\n', {"groups": ["a"]}, "pyproject.toml", "Cyclic dependency group include"),
    ("group-self-cycle", '[project]\nname = "x"\n[dependency-groups]\na = ["x", {include-group = "a"}]\n', {"groups": ["a"]}, "pyproject.toml", "a includes itself"),
    ("group-bad-requirement", '[project]\nname = "x"\n[dependency-groups]\na = ["ok", "foo>>1"]\n', {"groups": ["a"]}, "pyproject.toml", "invalid requirement 'foo>>1'"),
    ("group-bad-table", '[project]\nname = "x"\n[dependency-groups]\na = [{include = "b"}]\n', {"groups": ["a"]}, "pyproject.toml", "Invalid dependency group item"),
    ("group-missing-include", '[project]\nname = "x"\n[dependency-groups]\na = [{include-group = "zz"}]\n', {"groups": ["a"]}, "pyproject.toml", "'zz' not found"),
    ("project-not-table", 'project = "x"\n', {}, "pyproject.toml", "[project] must be a table"),
    ("groups-not-table", 'dependency-groups = 1\n[project]\nname = "x"\n', {"groups": ["a"]}, "pyproject.toml", "[dependency-groups] must be a table"),
    ("not-utf8", "[project]\nname = 'caf\udcff'\n", {}, "pyproject.toml:2", "not UTF-8"),
    ("group-duplicate-names", '[project]\nname = "x"\n[dependency-groups]\nA = []\na = []\n', {"groups": ["a"]}, "pyproject.toml", "Duplicate dependency group names"),
]
# fmt: on


@pytest.mark.parametrize(
    ("text", "kwargs", "where", "phrase"),
    [c[1:] for c in PYPROJECT_ERRORS],
    ids=[c[0] for c in PYPROJECT_ERRORS],
)
def test_pyproject_errors(tmp_path, text, kwargs, where, phrase):
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(InputError) as info:
        read_pyproject(Path("pyproject.toml"), **kwargs)
    assert info.value.where == where
    assert phrase in info.value.message
    assert "\n" not in info.value.message


def test_pyproject_unused_broken_groups_are_ignored(tmp_path):
    text = '[project]\nname = "x"\ndependencies = ["a"]\n[dependency-groups]\nA = []\na = ["b>>"]\n'
    assert pyproject(tmp_path, text) == ["a"]


def test_pyproject_unknown_extra_lists_available(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    with pytest.raises(InputError) as info:
        read_pyproject(Path("pyproject.toml"), extras=["nope"])
    assert info.value.hint == "available extras: socks, Test_Extra, gpu, loop-a, loop-b, dup"
    with pytest.raises(InputError) as info:
        read_pyproject(Path("pyproject.toml"), groups=["nope"])
    assert info.value.hint == "available groups: lint, Typing, dev"


def test_pyproject_toml_error_keeps_line_and_column(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = \n")
    with pytest.raises(InputError) as info:
        read_pyproject(Path("pyproject.toml"))
    assert info.value.where == "pyproject.toml:2"
    assert "line 2, column" in info.value.message


def test_pyproject_missing(tmp_path):
    with pytest.raises(InputError) as info:
        read_pyproject(Path("pyproject.toml"))
    assert (info.value.where, info.value.message) == ("pyproject.toml", "pyproject file not found")


# --------------------------------------------------------------------------
# merge_inputs
# --------------------------------------------------------------------------


def test_merge_inputs(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["attrs"]\n')
    write(
        tmp_path,
        {
            "a.in": "-i https://a/\n--extra-index-url https://x/\n-f w\n--no-binary foo\nrequests\n",
            "b.in": "--extra-index-url https://x/\n--extra-index-url https://y/\n--pre\n"
            "--only-binary foo\n-c c.txt\nidna\n",
            "c.txt": "idna==3\n",
            "d.in": "-i https://d/\n--prefer-binary\n--no-index\n--trusted-host h\n-f w\n",
        },
    )
    a = read_requirements([Path("a.in")], environ={})
    b = read_requirements([Path("b.in")], environ={})
    d = read_requirements([Path("d.in")], environ={})
    p = read_pyproject(Path("pyproject.toml"))
    merged = merge_inputs(p, a, b, d, a)
    assert reqs(merged) == ["attrs", "requests", "idna", "requests"]
    assert [str(c.requirement) for c in merged.constraints] == ["idna==3"]
    assert merged.files == tuple(
        tmp_path / name for name in ("pyproject.toml", "a.in", "b.in", "c.txt", "d.in")
    )
    assert merged.options == IndexOptions(
        index_url="https://a/",
        extra_index_urls=("https://x/", "https://y/"),
        find_links=(str(tmp_path / "w"),),
        no_index=True,
        trusted_hosts=("h",),
        pre=True,
        only_binary=(),
        no_binary=("foo",),
        prefer_binary=True,
    )
    assert merge_inputs(a, b).options.index_url == "https://a/"
    assert merge_inputs(a, d).options.index_url == "https://d/"
    assert merge_inputs(a, b).options.only_binary == ("foo",)
    assert merge_inputs(a, b).options.no_binary == ()
    assert merge_inputs() == Inputs()


def lines_to_options(tmp_path: Path, name: str, lines: list[str]) -> IndexOptions:
    (tmp_path / name).write_text("".join(f"{line}\n" for line in lines))
    return read_requirements([Path(name)], environ={}).options


BINARY_LINES = [
    "--no-binary a",
    "--no-binary b,c",
    "--only-binary a",
    "--only-binary :all:",
    "--no-binary :all:",
    "--no-binary :none:",
    "--only-binary :none:",
    "--only-binary :all:,:none:,c",
    "--no-binary :all:,b",
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.lists(st.sampled_from(BINARY_LINES), max_size=4),
    second=st.lists(st.sampled_from(BINARY_LINES), max_size=4),
)
def test_merge_replays_binary_lists_like_one_file(tmp_path, first, second):
    """Merging two files' results equals reading both files' lines in one file.

    Known limit (documented on IndexOptions): a name moved into one list and
    that list then emptied with :none: is not removed from an earlier input's
    other list.
    """
    assume(not moved_then_cleared(first))
    assume(not moved_then_cleared(second))
    one = lines_to_options(tmp_path, "one.in", first)
    two = lines_to_options(tmp_path, "two.in", second)
    both = lines_to_options(tmp_path, "both.in", first + second)
    merged = merge_inputs(Inputs(options=one), Inputs(options=two)).options
    assert effective(merged.only_binary) == effective(both.only_binary)
    assert effective(merged.no_binary) == effective(both.no_binary)
    # on top of some earlier state (pip config or CLI), too
    base = lines_to_options(tmp_path, "base.in", ["--no-binary x,a", "--only-binary y,b"])
    merged = merge_inputs(Inputs(options=base), Inputs(options=one), Inputs(options=two)).options
    both = lines_to_options(
        tmp_path, "all.in", ["--no-binary x,a", "--only-binary y,b", *first, *second]
    )
    assert effective(merged.only_binary) == effective(both.only_binary)
    assert effective(merged.no_binary) == effective(both.no_binary)


def moved_then_cleared(lines: list[str]) -> bool:
    added: set[str] = set()
    for line in lines:
        option, value = line.split(" ")
        if ":none:" in value.split(",") and option in added:
            return True
        if any(name not in {":all:", ":none:"} for name in value.split(",")):
            added.add(option)
    return False


def effective(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(values) - {":none:"}


# --------------------------------------------------------------------------
# Property: arbitrary text never raises anything but InputError
# --------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "-r", "-c", "-e", "-i", "-f", "--hash", "--hash=sha256:", SHA_A, "--pre", "--no-binary",
        ":all:", ":none:", "#", " ", "  ", "\\", ";", "@", "[", "]", "==", ">=", ",", "'", '"',
        "${X}", "${Y}", "foo", "Bar.baz", "./x", ".", "x.whl", "https://h/x", "file:///x",
        "python_version", "<", "3.11", "and", "extra", "\t", "\r", "\x00", "\ufeff",
    ]
)  # fmt: skip
LINE = st.one_of(
    st.text(max_size=40), st.lists(st.one_of(TOKENS, st.text(max_size=5)), max_size=8).map("".join)
)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(LINE, max_size=6), constraint=st.booleans())
def test_arbitrary_lines_raise_only_input_error(lines, constraint):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "req.in"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        (Path(tmp) / "x").write_text("foo\n")
        try:
            if constraint:
                read_requirements([], constraints=[path], environ={"X": "foo", "Y": "--pre"})
            else:
                read_requirements([path], environ={"X": "foo", "Y": "--pre"})
        except InputError as exc:
            error = exc
        else:
            return
    assert error.where is not None
    assert error.where.startswith((str(path), os.path.relpath(path)))
    assert "\n" not in error.message


# --------------------------------------------------------------------------
# Cross-checks against pip's own parser (imported only here)
# --------------------------------------------------------------------------

try:
    from pip._internal.index.collector import LinkCollector
    from pip._internal.index.package_finder import PackageFinder
    from pip._internal.models.format_control import FormatControl
    from pip._internal.models.search_scope import SearchScope
    from pip._internal.models.selection_prefs import SelectionPreferences
    from pip._internal.network.session import PipSession
    from pip._internal.req import req_file as pip_req_file
    from pip._internal.req.constructors import install_req_from_parsed_requirement
except ImportError:  # pragma: no cover - pip is in every lockship dev venv
    pip_req_file = None

needs_pip = pytest.mark.skipif(pip_req_file is None, reason="pip is not installed")


def pip_parse(path: Path):
    """Parse with pip: requirements (as packaging objects), hashes, and finder state."""
    session = PipSession()
    finder = PackageFinder.create(
        link_collector=LinkCollector(session, SearchScope.create([], [], False)),
        selection_prefs=SelectionPreferences(
            allow_yanked=False, format_control=FormatControl(set(), set())
        ),
    )
    entries = []
    for parsed in pip_req_file.parse_requirements(str(path), session, finder=finder):
        ireq = install_req_from_parsed_requirement(parsed)
        requirement = Requirement(str(ireq.req))
        if ireq.markers is not None:
            requirement.marker = Marker(str(ireq.markers))
        hashes = tuple(
            sorted(
                {
                    f"{algorithm}:{digest.lower()}"
                    for algorithm, digests in (parsed.options or {}).get("hashes", {}).items()
                    for digest in digests
                }
            )
        )
        entries.append((parsed.constraint, requirement, hashes))
    return entries, finder


PIP_FILES = {
    "req.in": (
        "# comment\n"
        "-i https://a.example/simple\n"
        "--extra-index-url https://b.example/simple\n"
        "-f wheels\n"
        "--only-binary :all:\n"
        "--no-binary Foo_Bar,baz\n"
        "--prefer-binary\n"
        "Requests[socks,Security] >=2.31, <3 ; python_version < '3.11' \\\n"
        f"    --hash=sha256:{SHA_B} \\\n"
        f"    --hash sha256:{SHA_A}\n"
        "idna;python_version<'3.11' and sys_platform != \"win32\"\n"
        "attrs # trailing comment\n"
        "foo @ https://example.com/foo-1.0.tar.gz ; os_name == 'posix'\n"
        "foo2 @ https://example.com/foo2-1.0.tar.gz;os_name == 'posix'\n"
        "${NAME}>=1\n"
        "-c sub/constraints.txt\n"
        "-r sub/more.in\n"
        "zope.interface===5.0\r\n"
        "last \\"
    ),
    "sub/constraints.txt": f"idna==3.7 --hash=sha512:{'f' * 128}\n-c ../c2.txt\n",
    "c2.txt": "attrs<24\n",
    "sub/more.in": "six\n-r ../shared.in\n--no-binary :none:\n--only-binary six\n",
    "shared.in": "packaging>=24 ; extra == 'test'\n",
}


@needs_pip
def test_pip_agrees_on_requirements_and_hashes(tmp_path):
    write(tmp_path, PIP_FILES)
    (tmp_path / "wheels").mkdir()
    environ = {"NAME": "tomli"}
    ours = read_requirements([Path("req.in")], environ=environ)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NAME", "tomli")
        theirs, finder = pip_parse(tmp_path / "req.in")

    expected = [(c, r, h) for c, r, h in theirs]
    got = [(False, e.requirement, e.hashes) for e in ours.requirements]
    got_c = [(True, e.requirement, e.hashes) for e in ours.constraints]
    assert sorted(got + got_c, key=str) == sorted(expected, key=str)
    assert [r for c, r, _ in expected if not c] == [e.requirement for e in ours.requirements]

    options = ours.options
    assert [options.index_url, *options.extra_index_urls] == finder.index_urls
    assert list(options.find_links) == [os.path.normpath(link) for link in finder.find_links]
    assert set(options.only_binary) == finder.format_control.only_binary
    assert set(options.no_binary) - {":none:"} == finder.format_control.no_binary


@needs_pip
@pytest.mark.parametrize(
    "text",
    [
        "a\nb \\\n c\n# x \\\nd\n",
        "x # y \\\nz\nw\n",
        "\\\n\\\\\nq\\\n",
        "  indented \\\n\t# tabbed comment\nz\n",
        "a\r\nb\rc\x0cd\x85e\u2028f\n",
        "${HOME_X} ${UNSET_X} ${EMPTY_X}\n",
    ],
)
def test_pip_agrees_on_logical_lines(text, monkeypatch):
    monkeypatch.setenv("HOME_X", "h")
    monkeypatch.setenv("EMPTY_X", "")
    monkeypatch.delenv("UNSET_X", raising=False)
    assert list(_logical_lines(text, os.environ)) == list(pip_req_file.preprocess(text))


@needs_pip
@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(st.one_of(TOKENS, st.text(max_size=4), st.just("\n")), max_size=20).map("".join)
)
def test_pip_agrees_on_logical_lines_property(text):
    environ = {"X": "expanded"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("X", "expanded")
        patch.delenv("Y", raising=False)
        assert list(_logical_lines(text, environ)) == list(pip_req_file.preprocess(text))
    assert _break_args_options(text.replace("\n", " ")) == pip_req_file.break_args_options(
        text.replace("\n", " ")
    )


PIP_ALSO_REJECTS = [
    "unknown-option", "unknown-short-option", "ambiguous-option", "flag-with-value",
    "option-missing-value", "unsplittable", "invalid-requirement", "single-equals",
    "url-without-name", "invalid-marker", "hash-md5", "hash-uppercase-algorithm",
    "hash-no-algorithm", "missing-include", "missing-constraint-include",
    "missing-nested-include", "binary-option-as-value", "dot",
]  # fmt: skip


@needs_pip
@pytest.mark.parametrize(
    ("files", "where", "phrase"),
    [c[1:] for c in ERROR_CASES if c[0] in PIP_ALSO_REJECTS],
    ids=[c[0] for c in ERROR_CASES if c[0] in PIP_ALSO_REJECTS],
)
def test_pip_also_rejects(tmp_path, files, where, phrase):
    write(tmp_path, files)
    with pytest.raises(Exception) as info:
        pip_parse(tmp_path / "req.in")
    # pip's own error, or the vendored packaging error it lets through (older pips)
    assert type(info.value).__module__.startswith(("pip._internal", "pip._vendor")), info.value


@needs_pip
@pytest.mark.parametrize(
    ("files", "what_pip_does"),
    [
        ({"req.in": "foo --index-url https://x/\n"}, "index_urls"),
        ({"req.in": "-r a.in -r b.in\n", "a.in": "a\n", "b.in": "b\n"}, "requirements"),
        ({"req.in": "-r a.in --pre\n", "a.in": "a\n"}, "release_control"),
        ({"req.in": "-f a -f b\n"}, "find_links"),
        ({"req.in": f"--hash=sha256:{SHA_A}\n"}, "requirements"),
        ({"req.in": "--pre stray\n"}, "requirements"),
    ],
)
def test_pip_silently_ignores_what_lockship_refuses(tmp_path, files, what_pip_does):
    """Each of these is an InputError in lockship (see ERROR_CASES); pip drops part of it."""
    write(tmp_path, files)
    with pytest.raises(InputError):
        read_requirements([Path("req.in")], environ={})
    entries, finder = pip_parse(tmp_path / "req.in")
    if what_pip_does == "index_urls":
        assert finder.index_urls == []
    elif what_pip_does == "requirements":
        assert [str(r) for _, r, _ in entries] in ([], ["a"])
    elif what_pip_does == "release_control":
        assert [str(r) for _, r, _ in entries] == ["a"]
        assert not finder.release_control
    else:
        assert len(finder.find_links) == 1


@needs_pip
def test_pip_reads_an_include_in_a_constraints_file_as_requirements(tmp_path):
    files = {"req.in": "-c c.txt\n", "c.txt": "-r more.in\n", "more.in": "six\n"}
    write(tmp_path, files)
    entries, _ = pip_parse(tmp_path / "req.in")
    assert [(constraint, str(r)) for constraint, r, _ in entries] == [(False, "six")]
    with pytest.raises(InputError, match="-r inside a constraints file"):
        read_requirements([Path("req.in")], environ={})


PIECES = st.sampled_from(
    [
        "foo", "Bar_baz", "[x]", "[x,y]", ">=1", "==2.0", "<3", ",", " ", ";", "; ",
        'python_version < "3.11"', "os_name=='nt'", " and ", "@", " @ ",
        "https://h/x-1.0.tar.gz", "file:///x.whl", f"--hash=sha256:{SHA_A}",
        f" --hash sha256:{SHA_B}", "\\\n", "#", " # c", "\n", "--pre", "-i", " https://i/",
        "--extra-index-url=https://e/", "--only-binary", " :all:", " a,b", "--no-binary=c",
        "-f", " wheels", "\t", "===x/y", "~=1.0",
    ]
)  # fmt: skip


@needs_pip
@settings(max_examples=120, deadline=None)
@given(text=st.lists(PIECES, max_size=12).map("".join))
def test_pip_agrees_whenever_lockship_accepts(text):
    """Whatever lockship accepts, pip reads the same way (lockship may refuse more)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "wheels").mkdir()
        path = Path(tmp) / "req.in"
        path.write_text(text, encoding="utf-8")
        try:
            ours = read_requirements([path], environ={})
        except InputError:
            return
        entries, finder = pip_parse(path)
    assert entries == [(False, e.requirement, e.hashes) for e in ours.requirements]
    options = ours.options
    # pip drops extra index URLs named *before* an --index-url line; lockship keeps them
    assert set(finder.index_urls) <= {options.index_url, *options.extra_index_urls}
    assert options.index_url is None or options.index_url in finder.index_urls
    # pip keeps a relative find-links path that does not exist relative to the cwd
    pip_links = (
        link if len(urlsplit(link).scheme) > 1 else os.path.normpath(os.path.join(tmp, link))
        for link in finder.find_links
    )
    assert options.find_links == tuple(dict.fromkeys(pip_links))
    # pip keeps the empty name that "a,b," yields; lockship skips it
    assert set(options.only_binary) - {":none:"} == finder.format_control.only_binary - {""}
    assert set(options.no_binary) - {":none:"} == finder.format_control.no_binary - {""}
