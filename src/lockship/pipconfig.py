"""Index settings, taken from pip's own configuration so lockship sees what pip sees.

Precedence for each option, lowest first, as pip applies it: the global config
files, the user file, the site file (``sys.prefix``), the file named by
``PIP_CONFIG_FILE``, ``PIP_*`` environment variables, options found in
requirements files, and finally lockship's command line. ``[global]`` is read,
then ``[install]`` (the section pip uses for resolving). When
``PIP_CONFIG_FILE`` names an existing file, user and site files are skipped,
and with ``PIP_CONFIG_FILE=/dev/null`` every file is, exactly as pip does. pip's ``constraint`` (a
space-separated list of files, relative to the current directory) is kept here
and read as constraints files by ``lockship.lock``.
"""

from __future__ import annotations

import configparser
import enum
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from lockship._urls import redact_url
from lockship.errors import InputError

if TYPE_CHECKING:  # the CLI imports this module at start-up: keep inputs (urllib, packaging) off it
    from lockship.inputs import IndexOptions

__all__ = [
    "PYPI_SIMPLE",
    "IndexConfig",
    "IndexStrategy",
    "load_index_config",
    "pip_config_files",
]

PYPI_SIMPLE = "https://pypi.org/simple/"


class IndexStrategy(str, enum.Enum):
    """How several indexes are combined (names follow uv's ``--index-strategy``)."""

    FIRST_INDEX = "first-index"  # a project comes only from the first index that has it
    UNSAFE_FIRST_MATCH = "unsafe-first-match"  # each version from the first index that has it
    UNSAFE_BEST_MATCH = "unsafe-best-match"  # all indexes merged, as pip does


@dataclass(frozen=True)
class IndexConfig:
    """Where packages come from and how to reach them."""

    index_url: str = PYPI_SIMPLE
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()
    cert: Optional[str] = None
    client_cert: Optional[str] = None
    timeout: float = 15.0
    retries: int = 5
    proxy: Optional[str] = None
    strategy: IndexStrategy = IndexStrategy.FIRST_INDEX
    constraints: tuple[str, ...] = ()  # pip's ``constraint`` (pip.conf, PIP_CONSTRAINT)
    sources: tuple[str, ...] = field(default=(), compare=False)  # config files read

    @property
    def indexes(self) -> tuple[str, ...]:
        """Index URLs in priority order (none with ``--no-index``)."""
        if self.no_index:
            return ()
        seen: dict[str, None] = {}
        for url in (self.index_url, *self.extra_index_urls):
            seen.setdefault(url, None)
        return tuple(seen)


def pip_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's configuration files in the order pip loads them (later wins).

    None at all when ``PIP_CONFIG_FILE`` is ``os.devnull``: pip then skips the
    global files too (``Configuration._load_config_files``).
    """
    if environ.get("PIP_CONFIG_FILE") == os.devnull:
        return []
    files: list[Path] = []
    if sys.platform == "win32":  # pragma: no cover - the online side is usually POSIX
        program_data = environ.get("PROGRAMDATA", r"C:\ProgramData")
        files.append(Path(program_data) / "pip" / "pip.ini")
        appdata = environ.get("APPDATA")
        user = [Path(appdata) / "pip" / "pip.ini"] if appdata else []
        legacy_user = Path.home() / "pip" / "pip.ini"
    else:
        xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        files.extend(Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d)
        files.append(Path("/etc/pip.conf"))
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        user = [Path(xdg_home) / "pip" / "pip.conf"]
        legacy_user = Path.home() / ".pip" / "pip.conf"
    env_file = environ.get("PIP_CONFIG_FILE")
    if not (env_file and Path(env_file).exists()):
        files.append(legacy_user)
        files.extend(user)
        files.append(Path(sys.prefix) / ("pip.ini" if sys.platform == "win32" else "pip.conf"))
    if env_file:
        files.append(Path(env_file))
    return files


_LIST_OPTIONS = {"extra-index-url", "find-links", "trusted-host"}
_KNOWN = {
    "constraint",
    "index-url",
    "extra-index-url",
    "find-links",
    "no-index",
    "trusted-host",
    "cert",
    "client-cert",
    "timeout",
    "default-timeout",
    "retries",
    "proxy",
}


def _truthy(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InputError(f"invalid boolean {value!r}", where=where)


def _read_pip_settings(environ: Mapping[str, str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Return ``{option: (value, where-it-came-from)}`` and the files read."""
    settings: dict[str, tuple[str, str]] = {}
    read: list[str] = []
    for path in pip_config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            if not parser.read(path, encoding="utf-8"):
                continue
        except (configparser.Error, UnicodeDecodeError) as exc:
            # configparser's messages run over several lines (file, line, the text): say it in one
            line, what = getattr(exc, "lineno", None), str(exc).splitlines()[0].rstrip(".")
            errors = getattr(exc, "errors", None)  # a ParsingError: [(line, its repr)]
            if errors:
                line, what = errors[0][0], f"cannot parse line {errors[0][1]}"
            raise InputError(
                f"invalid pip configuration: {what}; fix the file, "
                "or pass --no-pip-config to read no pip configuration",
                where=f"{path}, line {line}" if line else str(path),
            ) from None
        read.append(str(path))
        for section in ("global", "install"):
            if parser.has_section(section):
                for key, value in parser.items(section):
                    name = key.replace("_", "-")
                    if name in _KNOWN:
                        settings[name] = (value, f"{path} [{section}] {key}")
    for key, value in environ.items():
        if key.startswith("PIP_") and key != "PIP_CONFIG_FILE":
            name = key[4:].lower().replace("_", "-")
            if name in _KNOWN:
                settings[name] = (value, key)
    return settings, read


def load_index_config(
    *,
    environ: Mapping[str, str] = os.environ,
    use_pip_config: bool = True,
    file_options: Optional[IndexOptions] = None,
    index_url: Optional[str] = None,
    extra_index_urls: Sequence[str] = (),
    find_links: Sequence[str] = (),
    no_index: bool = False,
    strategy: Optional[IndexStrategy] = None,
) -> IndexConfig:
    """Build the index configuration, layering pip config, files and CLI options.

    :param file_options: index options found in requirements files.
    :raises InputError: for a malformed value, naming where it came from.
    """
    config = IndexConfig()
    sources: list[str] = []
    if use_pip_config:
        settings, sources = _read_pip_settings(environ)
        config = _apply_pip_settings(config, settings)
    if file_options is not None:
        config = replace(
            config,
            index_url=file_options.index_url or config.index_url,
            extra_index_urls=_dedup(config.extra_index_urls, file_options.extra_index_urls),
            find_links=_dedup(config.find_links, file_options.find_links),
            no_index=config.no_index or file_options.no_index,
            trusted_hosts=_dedup(config.trusted_hosts, file_options.trusted_hosts),
        )
    config = replace(
        config,
        index_url=index_url or config.index_url,
        extra_index_urls=_dedup(config.extra_index_urls, extra_index_urls),
        find_links=_dedup(config.find_links, find_links),
        no_index=config.no_index or no_index,
        strategy=strategy or config.strategy,
        sources=tuple(sources),
    )
    for url in config.indexes:
        _check_index_url(url)
    return config


def _apply_pip_settings(
    config: IndexConfig, settings: Mapping[str, tuple[str, str]]
) -> IndexConfig:
    def text(name: str) -> Optional[str]:
        return settings[name][0].strip() or None if name in settings else None

    def words(name: str) -> tuple[str, ...]:
        return tuple(settings[name][0].split()) if name in settings else ()

    def number(name: str, default: float) -> float:
        if name not in settings:
            return default
        value, where = settings[name]
        try:
            return float(value)
        except ValueError:
            raise InputError(f"invalid number {value!r}", where=where) from None

    no_index = "no-index" in settings and _truthy(*settings["no-index"])
    timeout = number("timeout", number("default-timeout", config.timeout))
    return replace(
        config,
        index_url=text("index-url") or config.index_url,
        extra_index_urls=words("extra-index-url"),
        find_links=words("find-links"),
        no_index=no_index,
        trusted_hosts=words("trusted-host"),
        cert=text("cert"),
        client_cert=text("client-cert"),
        timeout=timeout,
        retries=int(number("retries", config.retries)),
        proxy=text("proxy"),
        constraints=words("constraint"),
    )


def _dedup(first: Sequence[str], more: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *more]))


def _check_index_url(url: str) -> None:
    if not url.startswith(("https://", "http://", "file://")):
        raise InputError(
            f"index URL must start with https://, http:// or file:// (got {redact_url(url)!r})",
            where="index configuration",
        )
