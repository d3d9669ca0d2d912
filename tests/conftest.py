pytest_plugins = [
    "tests.fixtures.pki",
    "tests.fixtures.pkcs11",
    "tests.fixtures.certomancer_pki",
    "tests.fixtures.service",
    "tests.fixtures.poppler",
    "tests.fixtures.docs",
    "tests.fixtures.db",
]
