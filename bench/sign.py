"""In-process signing speed: DocGate's signing path against a plain pyHanko call.

For the same one-page document, in one run:
- baseline: ``pyhanko.sign.signers.sign_pdf`` with a ``SimpleSigner`` (PAdES subfilter,
  SHA-256), the way a naive integration calls pyHanko;
- DocGate B-B, invisible signature (the same thing signed as the baseline);
- DocGate B-B with the agency stamp, and B-T with the in-process development TSA.

Prints median, p99, throughput and peak traced memory, and the baseline/DocGate ratio.
Run: ``make bench`` or ``.venv/bin/python bench/sign.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import in_fresh_process, naive_sign  # noqa: E402
from bench.common import AGENCY, dev_pki, measure, one_page_pdf, report, write_results  # noqa: E402
from signing.engine import sign_pdf  # noqa: E402
from signing.options import Appearance, Level, SignOptions  # noqa: E402
from signing.runtime import development_spec, open_context  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    pki = dev_pki()
    pdf = one_page_pdf()
    password = pki.password_file.read_text().splitlines()[0].encode()

    baseline = in_fresh_process(
        naive_sign, str(pki.agency_p12(AGENCY.code)), password, pdf, max(20, args.runs // 5)
    )
    spec = development_spec(pki, [AGENCY])
    loop = asyncio.new_event_loop()
    ctx = loop.run_until_complete(open_context(spec, None))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def docgate(level: Level, appearance: Appearance):
        options = SignOptions(agency=AGENCY.code, level=level, appearance=appearance)
        return lambda: loop.run_until_complete(sign_pdf(pdf, options, ctx, now=now)).pdf

    rows = [
        baseline,
        measure("DocGate B-B, invisible", docgate(Level.B_B, Appearance.NONE), args.runs),
        measure("DocGate B-B, agency stamp", docgate(Level.B_B, Appearance.AGENCY), args.runs),
        measure(
            "DocGate B-T (in-process dev TSA), invisible",
            docgate(Level.B_T, Appearance.NONE),
            args.runs,
        ),
    ]
    report(rows)
    ratio = rows[0].median_ms / rows[1].median_ms
    print(
        f"\nratio baseline/DocGate B-B (median): {ratio:.1f}x  "
        f"(DocGate B-B median {rows[1].median_ms:.2f} ms; target < 10 ms and >= 10x)"
    )
    print(f"document: {len(pdf)} bytes, 1 page; signature RSA-2048 PKCS#1 v1.5, SHA-256")
    path = write_results("sign", {"rows": [vars(r) for r in rows], "ratio": ratio}, vars(args))
    print(f"figures in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
