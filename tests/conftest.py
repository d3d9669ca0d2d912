pytest_plugins = [
    "tests.fixtures.pki",
    "tests.fixtures.certomancer_pki",
]
