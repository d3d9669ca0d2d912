"""Settings: defaults, environment overrides, refusal of unknown keys and bad values,
secrets masked, production requirements."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import DEFAULT_FILE, Mode, Secret, SettingsError, load_settings
from signing.engine import TsaFailurePolicy
from signing.keys.base import ProviderKind
from signing.options import Level


def test_defaults_are_development_on_loopback():
    s = load_settings({})
    assert s.service.mode is Mode.DEVELOPMENT
    assert (s.service.host, s.service.port) == ("127.0.0.1", 8080)
    assert s.service.max_upload_bytes == 100 * 1024 * 1024
    assert s.signing.default_level is Level.B_LT
    assert s.signing.tsa_failure is TsaFailurePolicy.FAIL
    assert [a.code for a in s.development.agencies] == [
        "000.00.00.H41",
        "000.00.01.H41",
        "000.00.02.H41",
    ]


def test_environment_overrides():
    s = load_settings(
        {
            "DOCGATE_PORT": "9090",
            "DOCGATE_HOST": "0.0.0.0",
            "DOCGATE_SIGNING__TSA_FAILURE": "downgrade",
            "DOCGATE_SIGNING__TSA_TIMEOUT_S": "2.5",
            "DOCGATE_TRUST__ROOTS": "/a.pem,/b.pem",
            "DOCGATE_AUTH__VERIFY_REQUIRES_TOKEN": "true",
            "DOCGATE_TEST_POSTGRES_URL": "ignored: test knob",
            "DOCGATE_KEY_PASSWORD": "ignored: a secret referenced by name",
        }
    )
    assert (s.service.host, s.service.port) == ("0.0.0.0", 9090)
    assert s.signing.tsa_failure is TsaFailurePolicy.DOWNGRADE
    assert s.signing.tsa_timeout_s == 2.5
    assert s.trust.roots == ("/a.pem", "/b.pem")
    assert s.auth.verify_requires_token is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOCGATE_SIGNING__TSA_ULR": "x"}, "unknown key(s) tsa_ulr"),
        ({"DOCGATE_NOPE__X": "1"}, "unknown key(s) nope"),
        ({"DOCGATE_PORT": "eighty"}, "service.port: expected a number"),
        ({"DOCGATE_PORT": "70000"}, "service.port"),
        ({"DOCGATE_SIGNING__DEFAULT_LEVEL": "B-X"}, "signing.default_level"),
        ({"DOCGATE_MODE": "staging"}, "service.mode"),
        ({"DOCGATE_SERVICE__MAX_UPLOAD_MIB": "0"}, "max_upload_mib"),
    ],
)
def test_bad_settings_say_which_key(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env)


def test_unknown_key_in_a_file_is_refused(tmp_path: Path):
    extra = tmp_path / "x.toml"
    extra.write_text('[signing]\ntsa_url = "http://tsa"\nsecret_sauce = 1\n')
    with pytest.raises(SettingsError, match="secret_sauce"):
        load_settings({}, files=[DEFAULT_FILE, extra])


def test_secrets_are_masked_in_reprs():
    s = load_settings({"DOCGATE_SIGNING__TSA_AUTH_HEADER": "Basic c2VjcmV0"})
    assert "c2VjcmV0" not in repr(s)
    assert "c2VjcmV0" not in str(s.signing.tsa_auth_header)
    assert s.signing.tsa_auth_header.reveal() == "Basic c2VjcmV0"
    assert repr(Secret("")) == "''"


def test_production_needs_explicit_configuration(tmp_path: Path):
    with pytest.raises(SettingsError, match="production mode needs"):
        load_settings({"DOCGATE_MODE": "production"})


def test_production_example_loads(tmp_path: Path):
    example = Path(DEFAULT_FILE).parent / "production.example.toml"
    s = load_settings({}, files=[DEFAULT_FILE, example])
    assert s.service.mode is Mode.PRODUCTION
    hsm, p12 = s.agencies
    assert hsm.key.provider is ProviderKind.PKCS11 and hsm.key.password_env == "DOCGATE_HSM_PIN"
    assert p12.key.provider is ProviderKind.PKCS12


def test_agency_codes_are_validated(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[agencies]]\ncode = "H41"\nname = "x"\nkey = { provider = "pkcs12", path = "/k.p12" }\n'
    )
    with pytest.raises(SettingsError, match="not an agency code"):
        load_settings({}, files=[DEFAULT_FILE, bad])
    worse = tmp_path / "worse.toml"
    worse.write_text(
        '[[agencies]]\ncode = "000.00.00.H41"\nname = "x"\nkey = { provider = "usb-stick" }\n'
    )
    with pytest.raises(SettingsError, match="provider"):
        load_settings({}, files=[DEFAULT_FILE, worse])


def test_report_target_default_override_and_range():
    assert load_settings({}).reports.target == 0.95
    assert load_settings({"DOCGATE_REPORTS__TARGET": "0.9"}).reports.target == 0.9
    for bad in ("0", "1.5", "x"):
        with pytest.raises(SettingsError):
            load_settings({"DOCGATE_REPORTS__TARGET": bad})
