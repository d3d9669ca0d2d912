"""Settings: ``config/docgate.toml`` plus ``DOCGATE_*`` environment overrides, loaded
once into frozen dataclasses. Unknown keys are refused; a wrong type says which key;
secrets print as ``'***'``."""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from signing.devpki import DevAgency
from signing.engine import TsaFailurePolicy
from signing.keys.base import KeySpec
from signing.options import Level

__all__ = [
    "AGENCY_CODE",
    "AgencySettings",
    "AuditSettings",
    "DeliverySettings",
    "AuthSettings",
    "DatabaseSettings",
    "Mode",
    "ReportSettings",
    "Secret",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "SigningSettings",
    "TrustSettings",
    "VerificationSettings",
    "load_settings",
]


def _default_file() -> Path:
    """config/docgate.toml of the source tree, else of the working folder (an image
    that installed the package copies config/ next to where it runs)."""
    beside = Path(__file__).resolve().parent.parent / "config" / "docgate.toml"
    return beside if beside.exists() else Path.cwd() / "config" / "docgate.toml"


DEFAULT_FILE = _default_file()
AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
_ENV_PREFIX = "DOCGATE_"
_ENV_SHORT = {"HOST": ("service", "host"), "PORT": ("service", "port"), "MODE": ("service", "mode")}
_ENV_IGNORED = {"CONFIG"}  # DOCGATE_CONFIG names a file; DOCGATE_TEST_* belong to the tests


class SettingsError(Exception):
    """The configuration is wrong; the message says which key and why."""


class Secret(str):
    """A string that never shows itself in logs, reprs or tracebacks."""

    def __repr__(self) -> str:
        return "'***'" if self else "''"

    def __str__(self) -> str:
        return "***" if self else ""

    def reveal(self) -> str:
        return str.__str__(self)


class Mode(enum.Enum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    mode: Mode = Mode.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = 8080
    var_dir: Path = Path("var")
    workers: int = 0
    max_upload_mib: int = 100
    spool_over_mib: int = 4
    parallel_large_uploads: int = 8
    upload_idle_timeout_s: float = 60.0
    worker_memory_mib: int = 2048
    task_timeout_s: float = 180.0
    log_level: str = "INFO"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mib * 1024 * 1024

    @property
    def spool_over_bytes(self) -> int:
        return self.spool_over_mib * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class SigningSettings:
    default_level: Level = Level.B_LT
    tsa_url: str = ""
    tsa_auth_header: Secret = Secret("")
    tsa_timeout_s: float = 10.0
    tsa_retries: int = 2
    tsa_failure: TsaFailurePolicy = TsaFailurePolicy.FAIL
    stamp_font: str = ""
    revocation_fetch_timeout_s: float = 10.0


@dataclasses.dataclass(frozen=True)
class TrustSettings:
    roots: tuple[str, ...] = ()
    intermediates: tuple[str, ...] = ()
    crls: tuple[str, ...] = ()
    ocsps: tuple[str, ...] = ()
    allow_fetching: bool = True


@dataclasses.dataclass(frozen=True)
class VerificationSettings:
    allow_fetching: bool = False
    allowed_hosts: tuple[str, ...] = ()
    fetch_timeout_s: float = 10.0
    max_response_kib: int = 2048
    allowed_digests: tuple[str, ...] = ("sha256", "sha384", "sha512")
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    url: Secret = Secret("")  # may carry a password; empty in development: var/docgate.db
    upgrade_on_start: bool = True


@dataclasses.dataclass(frozen=True)
class DeliverySettings:
    poll_seconds: float = 2.0  # how often the webhook outbox is polled


@dataclasses.dataclass(frozen=True)
class AuditSettings:
    checkpoint_minutes: float = 60.0  # 0: only on demand (docgate audit checkpoint)


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    target: float = 0.95  # agencies whose e_rate is below it are flagged (below_target)
    signing_agency: str = ""  # whose key signs the PDF report; empty: the first configured


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    verify_requires_token: bool = False
    open_rate_per_s: float = 5.0
    open_burst: int = 30
    token_cache_seconds: float = 5.0


@dataclasses.dataclass(frozen=True)
class AgencySettings:
    code: str
    name: str
    key: KeySpec
    seal: str = ""


@dataclasses.dataclass(frozen=True)
class DevelopmentSettings:
    agencies: tuple[DevAgency, ...] = ()


@dataclasses.dataclass(frozen=True)
class Settings:
    service: ServiceSettings = ServiceSettings()
    signing: SigningSettings = SigningSettings()
    trust: TrustSettings = TrustSettings()
    verification: VerificationSettings = VerificationSettings()
    database: DatabaseSettings = DatabaseSettings()
    audit: AuditSettings = AuditSettings()
    delivery: DeliverySettings = DeliverySettings()
    auth: AuthSettings = AuthSettings()
    reports: ReportSettings = ReportSettings()
    agencies: tuple[AgencySettings, ...] = ()
    development: DevelopmentSettings = DevelopmentSettings()

    @property
    def development_mode(self) -> bool:
        return self.service.mode is Mode.DEVELOPMENT

    def var_path(self, *parts: str) -> Path:
        return self.service.var_dir.joinpath(*parts)


# --- building typed values --------------------------------------------------------------


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where}: expected a table")
        return _build(hint, value, where)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()] if item is str else None
        if not isinstance(value, list):
            raise SettingsError(f"{where}: expected a list")
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise SettingsError(f"{where}: unsupported type")  # pragma: no cover
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in hint)
            raise SettingsError(f"{where}: must be one of {allowed}, not {value!r}") from None
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: expected true or false")
        return value
    if hint in (int, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            return hint(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: expected a number, not {value!r}") from None
    if hint is Path:
        return Path(str(value))
    if hint in (str, Secret):
        if not isinstance(value, str):
            raise SettingsError(f"{where}: expected a string")
        return hint(value)
    raise SettingsError(f"{where}: unsupported setting type {hint!r}")  # pragma: no cover


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kwargs = {
        name: _convert(value, hints[name], f"{where}.{name}" if where else name)
        for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(_ENV_PREFIX):
            continue
        rest = name[len(_ENV_PREFIX) :]
        if rest in _ENV_SHORT:
            section, key = _ENV_SHORT[rest]
        elif "__" in rest:
            section, _, key = rest.partition("__")
            section, key = section.lower(), key.lower()
        else:
            continue  # other DOCGATE_* variables are secrets referenced by name, or test knobs
        tree.setdefault(section, {})[key] = value
    return tree


def _agency(raw: Mapping[str, Any], where: str) -> AgencySettings:
    raw = dict(raw)
    key_raw = raw.pop("key", None)
    if not isinstance(key_raw, Mapping):
        raise SettingsError(f"{where}.key: each agency needs a key table")
    agency = _build(AgencySettings, {**raw, "key": _build(KeySpec, key_raw, f"{where}.key")}, where)
    if not AGENCY_CODE.match(agency.code):
        raise SettingsError(f"{where}.code: {agency.code!r} is not an agency code (000.00.00.H41)")
    return agency


def load_settings(
    environ: Mapping[str, str] | None = None, files: list[Path] | None = None
) -> Settings:
    """Read the default file, the file named by DOCGATE_CONFIG, then the environment."""
    environ = os.environ if environ is None else environ
    paths = files if files is not None else [DEFAULT_FILE]
    if files is None and environ.get("DOCGATE_CONFIG"):
        paths.append(Path(environ["DOCGATE_CONFIG"]))
    data: dict[str, Any] = {}
    for path in paths:
        try:
            with path.open("rb") as fh:
                data = _merge(data, tomllib.load(fh))
        except OSError as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    data = _merge(data, _env_overrides(environ))
    agencies_raw = data.pop("agencies", [])
    dev_raw = data.pop("development", {})
    settings = _build(Settings, data, "")
    agencies = tuple(_agency(a, f"agencies[{i}]") for i, a in enumerate(agencies_raw))
    dev_agencies = tuple(
        DevAgency(**_build(_DevAgencyRow, a, f"development.agencies[{i}]").__dict__)
        for i, a in enumerate(dev_raw.get("agencies", []))
    )
    unknown_dev = sorted(set(dev_raw) - {"agencies"})
    if unknown_dev:
        raise SettingsError(f"development: unknown key(s) {', '.join(unknown_dev)}")
    settings = dataclasses.replace(
        settings, agencies=agencies, development=DevelopmentSettings(dev_agencies)
    )
    _check(settings)
    return settings


@dataclasses.dataclass(frozen=True)
class _DevAgencyRow:
    code: str
    name: str


def _check(settings: Settings) -> None:
    svc = settings.service
    if not 0 < svc.port < 65536:
        raise SettingsError("service.port: must be between 1 and 65535")
    if svc.max_upload_mib < 1:
        raise SettingsError("service.max_upload_mib: must be at least 1")
    if svc.workers < 0:
        raise SettingsError("service.workers: must be 0 (one per core) or more")
    if not 0 < settings.reports.target <= 1:
        raise SettingsError("reports.target: must be in (0, 1], e.g. 0.95")
    codes = [a.code for a in settings.agencies] + [a.code for a in settings.development.agencies]
    for code in codes:
        if not AGENCY_CODE.match(code):
            raise SettingsError(f"agency code {code!r} does not match 000.00.00.H41")
    if settings.service.mode is Mode.PRODUCTION:
        if not settings.agencies:
            raise SettingsError("production mode needs [[agencies]] with explicit keys")
        if not settings.trust.roots:
            raise SettingsError("production mode needs trust.roots (trust anchors)")
        if not settings.signing.tsa_url:
            raise SettingsError("production mode needs signing.tsa_url (an RFC 3161 service)")
        if not settings.database.url:
            raise SettingsError("production mode needs database.url (PostgreSQL)")
