"""pyHanko stamp style drawing DocGate's appearances with our own content stream.

pyHanko's text stamps (GlyphAccumulator/OpenType) mis-space and clip Vietnamese
text, so the text is drawn here directly: an embedded Type0 font, one ``Tj`` per
line with 2-byte glyph ids, laid out with the font's own advance widths.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyhanko.pdf_utils import content, layout
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp import BaseStamp, BaseStampStyle

from .content import StampContent, stamp_text_lines
from .font import StampFont, load_font
from .layout import DEFAULT_FONT_SIZE, MIN_FONT_SIZE, TextBlock, fit_text
from .pdfobjects import PreparedImage, embed_font, embed_image, prepare_image

__all__ = ["DocGateStampStyle", "DocGateStamp", "build_stamp_style"]

_SEAL_MAX_WIDTH_FRACTION = 0.45  # of the box width
_SEAL_GAP = 6.0  # between seal and text, points


def _num(value: float) -> bytes:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return (text if text not in ("", "-0") else "0").encode("ascii")


@dataclass(frozen=True)
class DocGateStampStyle(BaseStampStyle):
    """Draws a :class:`StampContent` (agency seal + text, or text only)."""

    stamp_content: StampContent | None = None
    font_path: str | None = None
    font_size: float = DEFAULT_FONT_SIZE
    min_font_size: float = MIN_FONT_SIZE
    padding: float = 4.0
    border_width: int = 0
    background: content.PdfContent | None = None

    def create_stamp(
        self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict
    ) -> DocGateStamp:
        return DocGateStamp(writer=writer, style=self, box=box)


class DocGateStamp(BaseStamp):
    """One rendering of a :class:`DocGateStampStyle` into a fixed box."""

    style: DocGateStampStyle

    def __init__(
        self, writer: BasePdfFileWriter, style: DocGateStampStyle, box: layout.BoxConstraints
    ):
        if not (box and box.width_defined and box.height_defined):
            raise layout.LayoutError("DocGate stamps need a box with a fixed width and height")
        if style.stamp_content is None:
            raise ValueError("DocGateStampStyle has no stamp_content")
        super().__init__(writer=writer, style=style, box=box)

    def _seal_placement(self, image: PreparedImage) -> tuple[float, float, float, float]:
        """(x, y, width, height) of the seal: fit the box height, keep the aspect ratio."""
        pad = self.style.padding
        avail_h = max(self.box.height - 2 * pad, 1.0)
        max_w = self.box.width * _SEAL_MAX_WIDTH_FRACTION
        h = avail_h
        w = h * image.width / image.height
        if w > max_w:
            w, h = max_w, max_w * image.height / image.width
        return pad, (self.box.height - h) / 2, w, h

    def _text_ops(self, font: StampFont, block: TextBlock, x: float, top_y: float) -> bytes:
        ops = [b"BT 0 g 0 Tr 0 Tc 0 Tw 100 Tz /F1 %s Tf" % _num(block.size)]
        baseline = top_y - block.top
        ops.append(b"%s %s Td" % (_num(x), _num(baseline)))
        for i, line in enumerate(block.lines):
            if i:
                ops.append(b"0 %s Td" % _num(-block.leading))
            hex_gids = "".join(f"{g:04X}" for g in font.glyph_ids(line))
            ops.append(b"<%s> Tj" % hex_gids.encode("ascii"))
        ops.append(b"ET")
        return b" ".join(ops)

    def _render_inner_content(self) -> list[bytes]:
        style = self.style
        stamp = style.stamp_content
        assert stamp is not None
        writer = self._ensure_writer
        font = load_font(style.font_path)
        pad = style.padding
        ops: list[bytes] = []

        text_x = pad
        if stamp.kind == "agency" and stamp.seal_png is not None:
            image = prepare_image(stamp.seal_png)
            x, y, w, h = self._seal_placement(image)
            self.set_resource(
                category=content.ResourceType.XOBJECT,
                name=pdf_name("/Im1"),
                value=embed_image(writer, image),
            )
            ops.append(b"q %s 0 0 %s %s %s cm /Im1 Do Q" % (_num(w), _num(h), _num(x), _num(y)))
            text_x = x + w + _SEAL_GAP

        avail_w = self.box.width - text_x - pad
        avail_h = self.box.height - 2 * pad
        block = fit_text(
            font,
            stamp_text_lines(stamp),
            avail_w,
            avail_h,
            max_size=style.font_size,
            min_size=style.min_font_size,
        )
        self.set_resource(
            category=content.ResourceType.FONT,
            name=pdf_name("/F1"),
            value=embed_font(writer, font),
        )
        top_y = (self.box.height + block.height) / 2  # centre the block vertically
        ops.append(self._text_ops(font, block, text_x, top_y))
        return ops


def build_stamp_style(content: StampContent, font_path: str | None = None) -> DocGateStampStyle:
    """The pyHanko stamp style for ``content`` (pass as ``PdfSigner(stamp_style=...)``).

    The font is loaded (once per process) and the seal decoded here, so bad
    configuration or a broken seal image fails before signing starts.
    """
    load_font(font_path)
    if content.kind == "agency" and content.seal_png is not None:
        prepare_image(content.seal_png)
    return DocGateStampStyle(stamp_content=content, font_path=font_path)
