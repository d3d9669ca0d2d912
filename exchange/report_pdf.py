"""The monthly e-exchange report (API.md "Reports") as an unsigned A4 landscape PDF.

Text is drawn with the stamp machinery of :mod:`signing.stamp` (the embedded Noto
Serif subset as a Type0/Identity-H font with /ToUnicode), so Vietnamese diacritics
render and extract exactly. Page 1 starts with the title block; then comes the table
of agencies (its header repeated on every page), then a horizontal bar chart of each
agency's electronic rate with the target line, split across pages as needed. The
output is deterministic: the same report gives the same bytes.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zlib
from collections.abc import Callable

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from signing.stamp.content import format_signing_time
from signing.stamp.font import StampFont, load_font
from signing.stamp.layout import wrap_line
from signing.stamp.pdfobjects import embed_font

__all__ = ["render_report_pdf", "format_rate", "format_count", "TITLE"]

TITLE = "BÁO CÁO TỶ LỆ TRAO ĐỔI VĂN BẢN ĐIỆN TỬ"
CHART_TITLE = "BIỂU ĐỒ TỶ LỆ TRAO ĐỔI VĂN BẢN ĐIỆN TỬ THEO CƠ QUAN"
NULL_TEXT = "—"
PAGE_W, PAGE_H = 842.0, 595.0  # A4 landscape
LEFT, RIGHT, TOP, BOTTOM = 36.0, PAGE_W - 36.0, PAGE_H - 36.0, 44.0
SIZE = 8.0  # table text
PAD = 3.0  # cell padding
BLACK, GREY, LINE = (0.0, 0.0, 0.0), (0.35, 0.35, 0.35), (0.6, 0.6, 0.6)
HEAD_FILL, BELOW_FILL, BELOW_TEXT = (0.88, 0.90, 0.94), (1.0, 0.87, 0.87), (0.70, 0.05, 0.05)
BAR_OK, BAR_BELOW, TARGET = (0.18, 0.42, 0.70), (0.82, 0.20, 0.20), (0.90, 0.45, 0.0)

Colour = tuple[float, float, float]


def format_rate(value: float | None) -> str:
    """``0.965`` -> ``"96,5 %"`` (Vietnamese decimal comma); ``None`` -> ``"—"``."""
    if value is None:
        return NULL_TEXT
    return f"{float(value) * 100:.1f}".replace(".", ",") + " %"


def format_count(value: int | None) -> str:
    """``12345`` -> ``"12.345"`` (Vietnamese thousands separator); ``None`` -> ``"—"``."""
    return NULL_TEXT if value is None else f"{int(value):,}".replace(",", ".")


def _verdict(row: dict) -> str:
    if row.get("e_rate") is None or row.get("below_target") is None:
        return NULL_TEXT
    return "Không đạt" if row["below_target"] else "Đạt"


# (label, width, align, cell text of an agency row); width 0 = the rest of the line
_COLUMNS: list[tuple[str, float, str, Callable[[int, dict], str]]] = [
    ("STT", 24.0, "center", lambda i, r: str(i + 1)),
    ("Mã cơ quan", 78.0, "left", lambda i, r: str(r.get("agency") or "")),
    ("Cơ quan", 0.0, "left", lambda i, r: str(r.get("name") or r.get("agency") or "")),
    ("Gửi điện tử", 52.0, "right", lambda i, r: format_count(r.get("sent_electronic"))),
    ("Gửi giấy", 46.0, "right", lambda i, r: format_count(r.get("sent_paper"))),
    ("Nhận điện tử", 52.0, "right", lambda i, r: format_count(r.get("received_electronic"))),
    ("Nhận giấy", 46.0, "right", lambda i, r: format_count(r.get("received_paper"))),
    ("Tỷ lệ điện tử", 56.0, "right", lambda i, r: format_rate(r.get("e_rate"))),
    ("Tỷ lệ ký hợp lệ", 56.0, "right", lambda i, r: format_rate(r.get("signed_rate"))),
    ("Đúng hạn", 52.0, "right", lambda i, r: format_rate(r.get("on_time_rate"))),
    ("Đạt chỉ tiêu", 52.0, "center", lambda i, r: _verdict(r)),
]


def _n(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _rgb(c: Colour, op: str) -> str:
    return f"{_n(c[0])} {_n(c[1])} {_n(c[2])} {op}"


class _Canvas:
    """Content-stream operators for the pages, written page by page."""

    def __init__(self, font: StampFont) -> None:
        self.font = font
        self.pages: list[list[str]] = []

    @property
    def ops(self) -> list[str]:
        return self.pages[-1]

    def new_page(self) -> None:
        self.pages.append([])

    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float = SIZE,
        colour: Colour = BLACK,
        align: str = "left",
        bold: bool = False,
    ) -> None:
        """Draw ``s`` with its baseline at ``y``; ``x`` is the left, right or centre."""
        gids = self.font.glyph_ids(s)
        w = self.font.width_of_gids(gids, size)
        x = x - w if align == "right" else x - w / 2 if align == "center" else x
        mode = f"2 Tr {_n(size / 40)} w {_rgb(colour, 'RG')} " if bold else ""
        hexs = "".join(f"{g:04X}" for g in gids)
        body = f"BT {mode}{_rgb(colour, 'rg')} /F1 {_n(size)} Tf {_n(x)} {_n(y)} Td <{hexs}> Tj ET"
        self.ops.append(f"q {body} Q" if bold else body)

    def rect(self, x: float, y: float, w: float, h: float, fill: Colour) -> None:
        self.ops.append(f"{_rgb(fill, 'rg')} {_n(x)} {_n(y)} {_n(w)} {_n(h)} re f")

    def line(
        self, x1: float, y1: float, x2: float, y2: float, colour: Colour = LINE, width: float = 0.5
    ) -> None:
        self.ops.append(
            f"{_rgb(colour, 'RG')} {_n(width)} w {_n(x1)} {_n(y1)} m {_n(x2)} {_n(y2)} l S"
        )

    def dashed(self, x1: float, y1: float, x2: float, y2: float, colour: Colour) -> None:
        self.ops.append(f"q [4 2] 0 d {_rgb(colour, 'RG')} 1.2 w")
        self.ops.append(f"{_n(x1)} {_n(y1)} m {_n(x2)} {_n(y2)} l S Q")


def _month_text(month: str) -> str:
    try:
        year, mon = str(month).split("-")
        return f"Tháng {int(mon):02d}/{int(year)}"
    except ValueError:
        return f"Tháng {month}"


def _moment(value: object) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        t = value
    else:
        try:
            t = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return t.replace(tzinfo=datetime.UTC) if t.utcoffset() is None else t


def _time_text(value: object) -> str:
    t = _moment(value)
    return format_signing_time(t) if t is not None else str(value or NULL_TEXT)


class _ReportWriter(PdfFileWriter):
    """A writer whose document information carries the report's own time, not the
    time of rendering: the same report renders to the same bytes."""

    def __init__(self, moment: datetime.datetime | None) -> None:
        super().__init__(stream_xrefs=False)
        self._moment = moment or datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)

    def _update_meta(self) -> None:
        if self._info is None:
            date = generic.pdf_date(self._moment)
            self._info = self.add_object(
                generic.DictionaryObject(
                    {
                        pdf_name("/CreationDate"): date,
                        pdf_name("/ModDate"): date,
                        pdf_name("/Producer"): generic.TextStringObject("DocGate"),
                    }
                )
            )


class _Report:
    def __init__(self, report: dict, font: StampFont) -> None:
        self.r = report
        self.rows: list[dict] = list(report.get("agencies") or [])
        self.font = font
        self.c = _Canvas(font)
        self.lead = SIZE * 1.2
        fixed = sum(w for _, w, _, _ in _COLUMNS)
        self.widths = [w or (RIGHT - LEFT - fixed) for _, w, _, _ in _COLUMNS]
        target = report.get("target")
        self.target = None if target is None else min(max(float(target), 0.0), 1.0)

    # -- layout primitives ----------------------------------------------------

    def _wrap(self, text: str, width: float, size: float = SIZE) -> list[str]:
        return wrap_line(self.font, text, width - 2 * PAD, size) or [""]

    def _page(self) -> float:
        self.c.new_page()
        return TOP

    def _title(self, y: float) -> float:
        c, r = self.c, self.r
        mid = (LEFT + RIGHT) / 2
        c.text(mid, y - 16, TITLE, 15, align="center", bold=True)
        sub = _month_text(r.get("month", "")) + (" (tạm tính)" if r.get("provisional") else "")
        c.text(mid, y - 34, sub, 12, align="center", bold=bool(r.get("provisional")))
        info = (
            f"Lần tính: {r.get('revision', NULL_TEXT)}   ·   "
            f"Thời điểm lập: {_time_text(r.get('generated_at'))}   ·   "
            f"Chỉ tiêu tỷ lệ điện tử: {format_rate(self.target)}   ·   "
            f"Số cơ quan: {len(self.rows)}"
        )
        c.text(mid, y - 50, info, 9, colour=GREY, align="center")
        return y - 64

    # -- the table ------------------------------------------------------------

    def _row(self, y: float, cells: list[str], fill: Colour | None, header: bool) -> float:
        """Draw one table row whose top is at ``y``; returns its bottom."""
        c = self.c
        wrapped = [self._wrap(t, w) for t, w in zip(cells, self.widths, strict=True)]
        h = max(len(lines) for lines in wrapped) * self.lead + 2 * PAD + 1
        if fill is not None:
            c.rect(LEFT, y - h, RIGHT - LEFT, h, fill)
        x = LEFT
        for (_, _, align, _), w, lines in zip(_COLUMNS, self.widths, wrapped, strict=True):
            base = y - PAD - SIZE * 0.95
            if header:
                base -= (len(max(wrapped, key=len)) - len(lines)) * self.lead / 2
            for line in lines:
                colour = BELOW_TEXT if line == "Không đạt" else BLACK
                how = "center" if header else align
                ax = {"left": x + PAD, "right": x + w - PAD, "center": x + w / 2}[how]
                c.text(ax, base, line, SIZE, colour, how, bold=header)
                base -= self.lead
            x += w
        c.line(LEFT, y - h, RIGHT, y - h)
        return y - h

    def _table_frame(self, top: float, bottom: float) -> None:
        x = LEFT
        self.c.line(LEFT, top, RIGHT, top, BLACK, 0.8)
        for w in [0.0, *self.widths]:
            x += w
            self.c.line(x, top, x, bottom)
        self.c.line(LEFT, bottom, RIGHT, bottom, BLACK, 0.8)

    def table(self, y: float) -> float:
        header = [label for label, _, _, _ in _COLUMNS]
        top = y
        y = self._row(y, header, HEAD_FILL, True)
        for i, row in enumerate(self.rows):
            cells = [cell(i, row) for _, _, _, cell in _COLUMNS]
            need = max(len(self._wrap(t, w)) for t, w in zip(cells, self.widths, strict=True))
            if y - (need * self.lead + 2 * PAD + 1) < BOTTOM:
                self._table_frame(top, y)
                top = y = self._page()
                y = self._row(y, header, HEAD_FILL, True)
            y = self._row(y, cells, BELOW_FILL if row.get("below_target") else None, False)
        self._table_frame(top, y)
        note = "Hàng tô đỏ: cơ quan chưa đạt chỉ tiêu; “—”: không có văn bản để tính tỷ lệ."
        self.c.text(LEFT, y - 12, note, 7.5, GREY)
        return y - 20

    # -- the chart ------------------------------------------------------------

    def _labels(self) -> list[str]:
        names = [str(r.get("name") or r.get("agency") or "") for r in self.rows]
        if all(self.font.text_width(n, 7.5) <= 200 for n in names):
            return names
        return [str(r.get("agency") or "") for r in self.rows]

    def chart(self, y: float) -> None:
        pitch, bar_h, head, foot = 13.0, 8.5, 40.0, 26.0
        labels = self._labels()
        label_w = max((self.font.text_width(t, 7.5) for t in labels), default=0) + 10
        x0, x1 = LEFT + label_w, RIGHT - 46
        start, first = 0, True
        while start < len(self.rows) or first:
            room = int((y - BOTTOM - head - foot) // pitch)
            if room < min(3, len(self.rows) - start) or (room <= 0 and first):
                y = self._page()
                continue
            left = len(self.rows) - start
            if not first and left > room:  # spread the rest evenly (no near-empty last page)
                room = -(-left // -(-left // room))
            end = min(len(self.rows), start + max(room, 0))
            y = self._chart_chunk(y, start, end, labels, x0, x1, pitch, bar_h, head, foot, first)
            start, first = end, False
            if start < len(self.rows):
                y = self._page()

    def _chart_chunk(self, y, start, end, labels, x0, x1, pitch, bar_h, head, foot, first):
        c = self.c
        title = CHART_TITLE + ("" if first else " (tiếp theo)")
        c.text(LEFT, y - 14, title, 10.5, bold=True)
        top = y - head
        bottom = top - (end - start) * pitch
        for k in range(0, 101, 10):
            gx = x0 + (x1 - x0) * k / 100
            c.line(gx, bottom, gx, top, (0.85, 0.85, 0.85) if k % 50 else LINE, 0.4)
            c.text(gx, bottom - 10, f"{k} %", 7, GREY, align="center")
        c.line(x0, bottom, x1, bottom, BLACK, 0.6)
        c.line(x0, bottom, x0, top, BLACK, 0.6)
        labels_after: list[tuple[float, float, str]] = []
        for i in range(start, end):
            row = self.rows[i]
            rate = row.get("e_rate")
            mid = top - (i - start + 0.5) * pitch
            c.text(x0 - 5, mid - 2.6, labels[i], 7.5, align="right")
            if rate is None:
                c.text(x0 + 4, mid - 2.6, NULL_TEXT + " (không có văn bản)", 7.5, GREY)
                continue
            w = (x1 - x0) * min(max(float(rate), 0.0), 1.0)
            c.rect(x0, mid - bar_h / 2, w, bar_h, BAR_BELOW if row.get("below_target") else BAR_OK)
            labels_after.append((x0 + w + 3, mid - 2.6, format_rate(rate)))
        if self.target is not None:
            tx = x0 + (x1 - x0) * self.target
            c.dashed(tx, bottom, tx, top + 8, TARGET)
        for lx, ly, text in labels_after:  # values over the target line, on white
            c.rect(lx - 1, ly - 2, self.font.text_width(text, 7.5) + 2, 8.5, (1.0, 1.0, 1.0))
            c.text(lx, ly, text, 7.5)
            c.text(tx, top + 11, f"Chỉ tiêu {format_rate(self.target)}", 7.5, TARGET, "center")
        legend_y = bottom - 22
        c.rect(x0, legend_y, 9, 6, BAR_OK)
        c.text(x0 + 12, legend_y, "Đạt chỉ tiêu", 7.5)
        c.rect(x0 + 80, legend_y, 9, 6, BAR_BELOW)
        c.text(x0 + 92, legend_y, "Chưa đạt chỉ tiêu", 7.5)
        c.dashed(x0 + 180, legend_y + 3, x0 + 196, legend_y + 3, TARGET)
        c.text(x0 + 200, legend_y, "Chỉ tiêu", 7.5)
        return legend_y - 8


def _page_ops(report: dict, font: StampFont) -> list[bytes]:
    rep = _Report(report, font)
    y = rep._title(rep._page())
    y = rep.table(y)
    rep.chart(y - 10)
    pages = rep.c.pages
    month = _month_text(report.get("month", ""))
    foot = f"{TITLE} · {month} · Lần tính {report.get('revision', NULL_TEXT)}"
    out = []
    for n, ops in enumerate(pages, start=1):
        rep.c.pages = [ops]
        rep.c.line(LEFT, 30, RIGHT, 30, LINE, 0.4)
        rep.c.text(LEFT, 20, foot, 7, GREY)
        rep.c.text(RIGHT, 20, f"Trang {n}/{len(pages)}", 7, GREY, align="right")
        out.append("\n".join(ops).encode("ascii"))
    return out


def render_report_pdf(report: dict, *, font_path: str | None = None) -> bytes:
    """The report as an unsigned, deterministic A4 landscape PDF (one or more pages)."""
    font = load_font(font_path)
    writer = _ReportWriter(_moment(report.get("generated_at")))
    digest = hashlib.sha256(
        json.dumps(report, sort_keys=True, ensure_ascii=False, default=str).encode()
        + font.base_font.encode()
    ).digest()[:16]
    writer._document_id = generic.ArrayObject(  # deterministic instead of random IDs
        [generic.ByteStringObject(digest), generic.ByteStringObject(digest)]
    )
    writer.root[pdf_name("/Lang")] = generic.TextStringObject("vi-VN")
    resources = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Font"): generic.DictionaryObject(
                    {pdf_name("/F1"): embed_font(writer, font)}
                )
            }
        )
    )
    for data in _page_ops(report, font):
        stream = generic.StreamObject(
            {pdf_name("/Filter"): pdf_name("/FlateDecode")}, encoded_data=zlib.compress(data, 9)
        )
        page = PageObject(writer.add_object(stream), (0, 0, PAGE_W, PAGE_H), resources)
        writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
