"""Verification throughput on a one-page B-LT document signed by DocGate.

In one run:
- baseline: plain in-process ``pyhanko.sign.validation.validate_pdf_signature`` (the
  synchronous classic API, in a fresh process without DocGate's code) with a ValidationContext holding the same trust and
  revocation data, one document after another;
- DocGate in-process: ``signing.verify.verify_pdf`` (the full report, incl. the tamper
  checks), one after another;
- DocGate's worker pool (one hardened worker per core), documents submitted
  concurrently, as the HTTP service runs them.

Prints documents/s, median and p99 latency. Run: ``.venv/bin/python bench/verify.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.baselines import in_fresh_process, naive_verify  # noqa: E402
from bench.common import AGENCY, dev_pki, measure, one_page_pdf, report, write_results  # noqa: E402
from signing.engine import sign_pdf  # noqa: E402
from signing.options import Appearance, Level, SignOptions  # noqa: E402
from signing.pool import SigningPool  # noqa: E402
from signing.runtime import close_context, development_spec, open_context  # noqa: E402
from signing.verify import VerifyContext, verify_pdf  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    pki = dev_pki()
    spec = development_spec(pki, [AGENCY])
    loop = asyncio.new_event_loop()
    ctx = loop.run_until_complete(open_context(spec, None))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    options = SignOptions(agency=AGENCY.code, level=Level.B_LT, appearance=Appearance.AGENCY)
    pdf = loop.run_until_complete(sign_pdf(one_page_pdf(), options, ctx, now=now)).pdf
    close_context(ctx)

    vctx = VerifyContext.for_development(pki)
    trust = vctx.trust

    baseline = in_fresh_process(  # no DocGate code (nor its speed-ups) in that process
        naive_verify,
        pdf,
        [c.dump() for c in trust.roots],
        [c.dump() for c in trust.intermediates],
        list(trust.crls),
        list(trust.ocsps),
        args.runs,
    )

    def docgate_inprocess():
        result = loop.run_until_complete(verify_pdf(pdf, vctx, now=dt.datetime.now(dt.UTC)))
        assert result.valid

    rows = [
        baseline,
        measure("DocGate verify_pdf (full report), 1 process", docgate_inprocess, args.runs),
    ]

    async def pool_run():
        pool = SigningPool(spec, args.workers)
        await pool.start()
        try:
            for _ in range(args.workers * 2):  # warm-up
                await pool.verify(pdf, dt.datetime.now(dt.UTC))
            latencies: list[float] = []

            async def one():
                t = time.perf_counter()
                result = await pool.verify(pdf, dt.datetime.now(dt.UTC))
                latencies.append(time.perf_counter() - t)
                assert result["valid"]

            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(args.runs * args.workers)))
            wall = time.perf_counter() - start
            return latencies, wall
        finally:
            await pool.close()

    latencies, wall = loop.run_until_complete(pool_run())
    report(rows)
    latencies.sort()
    print(
        f"{'DocGate worker pool, ' + str(args.workers) + ' workers, concurrent':<48} "
        f"{len(latencies):>5} {statistics.median(latencies) * 1000:>10.2f} "
        f"{latencies[int(0.99 * (len(latencies) - 1))] * 1000:>9.2f} "
        f"{len(latencies) / wall:>8.1f} {'-':>9}"
    )
    print(
        f"\nthroughput: baseline {rows[0].per_second:.1f} docs/s (1 core), "
        f"DocGate pool {len(latencies) / wall:.1f} docs/s on {args.workers} workers; "
        f"document {len(pdf)} bytes, B-LT"
    )
    loop.close()
    pool_figures = {
        "runs": len(latencies),
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "per_second": len(latencies) / wall,
    }
    path = write_results(
        "verify", {"rows": [vars(r) for r in rows], "pool": pool_figures}, vars(args)
    )
    print(f"figures in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
