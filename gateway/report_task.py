"""The signed PDF report, made in a signing worker: rendering the report and signing
it at B-LT are CPU work, so neither runs on the service's event loop. Picklable by
module path for ``SigningPool.run``."""

from __future__ import annotations

import datetime as dt

from exchange.report_pdf import render_report_pdf
from signing.engine import sign_pdf
from signing.options import Appearance, Level, SignOptions
from signing.pool import _state

__all__ = ["render_and_sign_report"]


def render_and_sign_report(report: dict, agency: str, now: dt.datetime) -> bytes:
    worker = _state()
    pdf = render_report_pdf(report, font_path=worker.context.font_path)
    options = SignOptions(
        agency=agency,
        level=Level.B_LT,
        appearance=Appearance.NONE,
        reason="Báo cáo tỷ lệ trao đổi văn bản điện tử",
    )
    result = worker.loop.run_until_complete(sign_pdf(pdf, options, worker.context, now=now))
    return result.pdf
