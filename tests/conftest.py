import pytest

# a plain helper module (not a plugin): rewrite its asserts like the tests' own
pytest.register_assert_rewrite("tests.fixtures.stamps", "tests.fixtures.load")

pytest_plugins = [
    "tests.fixtures.pki",
    "tests.fixtures.pkcs11",
    "tests.fixtures.certomancer_pki",
    "tests.fixtures.service",
    "tests.fixtures.poppler",
    "tests.fixtures.docs",
    "tests.fixtures.db",
    "tests.fixtures.exchange_world",
    "tests.fixtures.evidence",
]
