"""Visible signature appearances for Vietnamese official documents
(Decree 30/2020/NĐ-CP, Appendix I): agency seal + name + time, electronic copy,
appendix. Text is drawn with an embedded Unicode TrueType font (default Noto Serif).
"""

from .appearance import DocGateStamp, DocGateStampStyle, build_stamp_style
from .content import StampContent, format_signing_time, stamp_text_lines
from .font import StampFont, load_font
from .layout import StampLayoutError, default_box
from .seal import make_dev_seal

__all__ = [
    "StampContent",
    "build_stamp_style",
    "default_box",
    "make_dev_seal",
    "stamp_text_lines",
    "format_signing_time",
    "load_font",
    "StampFont",
    "StampLayoutError",
    "DocGateStampStyle",
    "DocGateStamp",
]
