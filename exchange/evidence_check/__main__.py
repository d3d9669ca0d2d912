"""Check a DocGate evidence package offline.

    python3 verify_evidence [PACKAGE_DIR_OR_ZIP] [--trust ROOT.pem] [--allow-unanchored]

``verify_evidence`` is the folder this file sits in (with ``checks.py``, ``anchor.py``
and ``der.py``): Python runs a folder that holds a ``__main__.py``. Without an argument
it checks the package folder that holds ``verify_evidence``. It prints "OK: ..." and
exits 0, or "PROBLEM: <the first problem found>" and exits 1. Python 3.8+ and the
standard library; the signature of the timestamp token needs the `cryptography` package
(without it the check stops there, unless --skip-token-signature is given).

What is checked, in this order:
 1. every file named in manifest.json is present and has the SHA-256 written there;
 2. audit/entries.jsonl: consecutive entries, each linking to the one before it
    (prev_hash), each hash recomputed as SHA-256(bytes.fromhex(prev_hash) || canonical
    JSON of {seq, created_at, event, actor, subject, payload}) (sorted keys, no
    whitespace, UTF-8, non-ASCII kept as is);
 3. the checkpoint names the last entry (seq and head_hash);
 4. the RFC 3161 token: its message imprint is SHA-256(bytes.fromhex(head_hash)), its
    message-digest attribute matches its TSTInfo, its signature verifies with the TSA
    certificate it names, which is meant for timestamping and was valid at the token's
    time; with --trust, that certificate chains to one of the given certificates;
 5. the entries about this exchange: the document's SHA-256, the envelope's sender and
    recipients, and every status in status_history.json are the ones the chain records;
    the stored verification report (if any) is about this document. A package exported
    for an auditor does not hold the document file: the SHA-256 manifest.json names is
    then compared with the chain, and the output says the file was not checked.

A package exported before any checkpoint covered its entries is NOT ANCHORED: the chain
is then consistent only with itself (anyone can recompute it), which is reported as a
problem unless --allow-unanchored is given.
"""

# ruff: noqa: UP031
# (the checker runs on Python 3.8+, away from DocGate: no 3.10+ idioms)

from __future__ import annotations

import argparse
import os
import sys
import zipfile

# Python puts this folder first on sys.path when it runs it: the modules beside this file
import anchor
import checks


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check a DocGate evidence package offline.")
    parser.add_argument(
        "package",
        nargs="?",
        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        help="the unzipped folder or the ZIP (default: the folder holding verify_evidence)",
    )
    parser.add_argument(
        "--trust", metavar="PEM", help="certificates the TSA's certificate must chain to"
    )
    parser.add_argument(
        "--allow-unanchored", action="store_true", help="accept a package no checkpoint covers yet"
    )
    parser.add_argument(
        "--skip-token-signature",
        action="store_true",
        help="do not check the token's signature (no 'cryptography')",
    )
    args = parser.parse_args(argv)
    try:
        pkg = checks.Package(args.package)
        manifest = checks.check_manifest(pkg)
        entries = checks.check_chain(pkg, manifest)
        anchored = anchor.check_checkpoint(pkg, manifest, entries, args)
        document = checks.check_exchange(pkg, manifest, entries)
    except checks.Problem as exc:
        print("PROBLEM: %s" % exc)
        return 1
    except (OSError, zipfile.BadZipFile) as exc:
        print("PROBLEM: cannot read the package: %s" % exc)
        return 1
    print(
        "OK: exchange %s; audit entries %d to %d link up; %s%s"
        % (
            manifest["exchange_id"],
            entries[0]["seq"],
            entries[-1]["seq"],
            anchored,
            "; " + document if document else "",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
