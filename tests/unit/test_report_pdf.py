"""The monthly e-exchange report as a PDF (exchange.report_pdf): text extraction,
embedded font, rendering, pagination, determinism, and signing the result."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from exchange.report_pdf import TITLE, format_count, format_rate, render_report_pdf
from tests.fixtures.tools import require_tool

NAMES = [
    "Ủy ban nhân dân tỉnh Bắc Ninh",
    "Sở Thông tin và Truyền thông",
    "Sở Tài nguyên và Môi trường",
    "Văn phòng Đoàn đại biểu Quốc hội",
    "Sở Giáo dục và Đào tạo",
]
RATES = [0.965, 0.982, 0.71, None, 1.0]


def _agency(code: str, name: str, rate: float | None, target: float = 0.95) -> dict:
    empty = rate is None
    return {
        "agency": code,
        "name": name,
        "sent_electronic": 0 if empty else 1200,
        "sent_paper": 0 if empty else 40,
        "received_electronic": 0 if empty else 900,
        "received_paper": 0 if empty else 12,
        "signed_valid": 0 if empty else 1100,
        "e_rate": rate,
        "e_rate_sent": rate,
        "e_rate_received": rate,
        "signed_rate": None if empty else 0.9,
        "on_time_rate": None if empty else 0.875,
        "below_target": False if empty else rate < target,
    }


def _report(agencies: list[dict], provisional: bool = False) -> dict:
    return {
        "month": "2026-10",
        "revision": 2,
        "generated_at": "2026-11-01T00:05:00Z",
        "target": 0.95,
        "provisional": provisional,
        "agencies": agencies,
    }


def five_agencies() -> dict:
    return _report(
        [
            _agency(f"000.00.{i:02d}.H41", name, rate)
            for i, (name, rate) in enumerate(zip(NAMES, RATES, strict=True))
        ]
    )


def many_agencies(n: int = 200) -> dict:
    agencies = [
        _agency(f"000.{i // 100:02d}.{i % 100:02d}.H41", f"Ủy ban nhân dân xã Đông Hưng {i}", r)
        for i, r in ((i, (i * 37 % 101) / 100) for i in range(n))
    ]
    return _report(agencies, provisional=True)


def _run(tool: str, *args: str | Path) -> str:
    exe = require_tool(tool)
    done = subprocess.run([exe, *map(str, args)], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8")


@pytest.fixture(scope="module")
def five_pdf() -> bytes:
    return render_report_pdf(five_agencies())


@pytest.fixture(scope="module")
def many_pdf() -> bytes:
    return render_report_pdf(many_agencies())


# -- formatting ---------------------------------------------------------------


def test_vietnamese_number_formats() -> None:
    assert format_rate(0.965) == "96,5 %"
    assert format_rate(1) == "100,0 %"
    assert format_rate(0.0) == "0,0 %"
    assert format_rate(None) == "—"
    assert format_count(1234567) == "1.234.567"
    assert format_count(None) == "—"


# -- the PDF itself -------------------------------------------------------------


def test_pyhanko_opens_it_as_a4_landscape(five_pdf: bytes) -> None:
    assert five_pdf.startswith(b"%PDF-")
    reader = PdfFileReader(io.BytesIO(five_pdf))
    pages = reader.root["/Pages"]
    assert pages["/Count"] == 1
    box = [float(v) for v in pages["/Kids"][0].get_object()["/MediaBox"]]
    assert box == [0.0, 0.0, 842.0, 595.0]


def test_output_is_deterministic(five_pdf: bytes) -> None:
    assert render_report_pdf(five_agencies()) == five_pdf
    assert render_report_pdf(_report([])) != five_pdf


def test_empty_report_still_renders() -> None:
    reader = PdfFileReader(io.BytesIO(render_report_pdf(_report([]))))
    assert reader.root["/Pages"]["/Count"] == 1


# -- poppler --------------------------------------------------------------------


@pytest.mark.poppler
def test_pdftotext_has_title_names_and_values(tmp_path: Path, five_pdf: bytes) -> None:
    (tmp_path / "r.pdf").write_bytes(five_pdf)
    text = _run("pdftotext", tmp_path / "r.pdf", "-")
    lines = [line.strip() for line in text.splitlines()]
    assert TITLE in lines
    assert "Tháng 10/2026" in lines
    assert "tạm tính" not in text
    assert "2026-11-01T07:05:00+07:00" in text
    for name in NAMES:
        assert name in text
    for value in ("96,5 %", "98,2 %", "71,0 %", "100,0 %", "87,5 %", "95,0 %", "1.200"):
        assert value in text
    assert "—" in text
    assert "Không đạt" in text  # the agency below target
    for label in ("Cơ quan", "Gửi điện tử", "Gửi giấy", "Nhận giấy", "Tỷ lệ điện tử"):
        assert label in text


@pytest.mark.poppler
def test_pdffonts_shows_the_font_embedded(tmp_path: Path, five_pdf: bytes) -> None:
    (tmp_path / "r.pdf").write_bytes(five_pdf)
    rows = _run("pdffonts", tmp_path / "r.pdf").splitlines()[2:]
    assert len(rows) == 1
    fields = rows[0].split()
    assert "CID" in fields and "TrueType" in fields and "Identity-H" in fields
    assert fields[-5:-2] == ["yes", "yes", "yes"]  # emb, sub, uni


@pytest.mark.poppler
def test_pdftoppm_renders_page_one(tmp_path: Path, five_pdf: bytes) -> None:
    from PIL import Image

    (tmp_path / "r.pdf").write_bytes(five_pdf)
    _run("pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", tmp_path / "r.pdf", tmp_path / "p")
    (png,) = tmp_path.glob("p*.png")
    img = Image.open(png).convert("RGB")
    assert img.width == 585 and img.height in (413, 414)  # 842 x 595 pt at 50 dpi
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None

    def count(pred) -> int:
        return sum(n for n, c in colours if pred(c))

    assert count(lambda c: c[2] > 150 and c[0] < 80) > 200  # blue bars (on target)
    assert count(lambda c: c[0] > 180 and c[1] < 80 and c[2] < 80) > 100  # red bar (below)
    assert count(lambda c: c[0] > 240 and 200 < c[1] < 235 and c[2] > 200) > 200  # pink row


@pytest.mark.poppler
def test_many_agencies_span_pages(tmp_path: Path, many_pdf: bytes) -> None:
    (tmp_path / "r.pdf").write_bytes(many_pdf)
    count = PdfFileReader(io.BytesIO(many_pdf)).root["/Pages"]["/Count"]
    assert count >= 5
    text = _run("pdftotext", tmp_path / "r.pdf", "-")
    assert "Tháng 10/2026 (tạm tính)" in text
    for row in many_agencies()["agencies"]:
        assert row["agency"] in text
    assert f"Trang {count}/{count}" in text
    assert text.count(TITLE) >= count  # title on page 1 and in every footer


# -- signing ----------------------------------------------------------------------


def test_signing_engine_can_sign_it(five_pdf: bytes) -> None:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from signing.stamp import StampContent, default_box
    from tests.fixtures.stamps import sign_pdf, throwaway_signer

    content = StampContent(
        kind="agency",
        agency_name="Cổng trao đổi văn bản DocGate",
        signing_time=dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC),
    )
    signed = sign_pdf(five_pdf, content, default_box("agency", (0, 0, 842, 595)))
    reader = PdfFileReader(io.BytesIO(signed))
    (sig,) = reader.embedded_signatures
    context = ValidationContext(trust_roots=[throwaway_signer().signing_cert])
    status = validate_pdf_signature(sig, signer_validation_context=context)
    assert status.intact and status.coverage.name == "ENTIRE_FILE"
