"""PDF objects for a stamp: the embedded Type0/CIDFontType2 font and the seal image.

The expensive parts (the compressed font program, the /ToUnicode CMap, decoded
and compressed seal pixels) are cached per process; here we only wrap those
bytes in fresh PDF objects for the writer of the current signature.
"""

from __future__ import annotations

import functools
import io
import zlib
from dataclasses import dataclass

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from ..errors import InvalidOptionsError
from .font import StampFont

__all__ = ["embed_font", "embed_image", "PreparedImage", "prepare_image"]

_MAX_SEAL_SIDE = 600  # px; larger seals are downscaled once (plenty for ~100 pt)
_MAX_SEAL_PIXELS = 25_000_000


def _flate_stream(dict_data: dict, flate: bytes) -> generic.StreamObject:
    d = {pdf_name(k): v for k, v in dict_data.items()}
    d[pdf_name("/Filter")] = pdf_name("/FlateDecode")
    return generic.StreamObject(d, encoded_data=flate)


def _widths_array(widths: tuple[int, ...]) -> generic.ArrayObject:
    return generic.ArrayObject(
        [
            generic.NumberObject(0),
            generic.ArrayObject([generic.NumberObject(w) for w in widths]),
        ]
    )


def embed_font(writer: BasePdfFileWriter, font: StampFont) -> generic.IndirectObject:
    """Add a Type0 font (Identity-H, CIDFontType2, FontFile2, ToUnicode) to ``writer``."""
    font_file = writer.add_object(
        _flate_stream({"/Length1": generic.NumberObject(len(font.program))}, font.program_flate)
    )
    to_unicode = writer.add_object(_flate_stream({}, font.to_unicode_flate))
    base_font = pdf_name("/" + font.base_font)
    descriptor = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/FontDescriptor"),
                pdf_name("/FontName"): base_font,
                pdf_name("/Flags"): generic.NumberObject(32 | 2),  # nonsymbolic, serif
                pdf_name("/FontBBox"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in font.bbox]
                ),
                pdf_name("/ItalicAngle"): generic.FloatObject(font.italic_angle),
                pdf_name("/Ascent"): generic.NumberObject(font.ascent),
                pdf_name("/Descent"): generic.NumberObject(font.descent),
                pdf_name("/CapHeight"): generic.NumberObject(font.cap_height),
                pdf_name("/StemV"): generic.NumberObject(80),
                pdf_name("/FontFile2"): font_file,
            }
        )
    )
    cid_font = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/CIDFontType2"),
                pdf_name("/BaseFont"): base_font,
                pdf_name("/CIDSystemInfo"): generic.DictionaryObject(
                    {
                        pdf_name("/Registry"): generic.TextStringObject("Adobe"),
                        pdf_name("/Ordering"): generic.TextStringObject("Identity"),
                        pdf_name("/Supplement"): generic.NumberObject(0),
                    }
                ),
                pdf_name("/FontDescriptor"): descriptor,
                pdf_name("/DW"): generic.NumberObject(1000),
                pdf_name("/W"): _widths_array(font.widths),
                pdf_name("/CIDToGIDMap"): pdf_name("/Identity"),
            }
        )
    )
    return writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Font"),
                pdf_name("/Subtype"): pdf_name("/Type0"),
                pdf_name("/BaseFont"): base_font,
                pdf_name("/Encoding"): pdf_name("/Identity-H"),
                pdf_name("/DescendantFonts"): generic.ArrayObject([cid_font]),
                pdf_name("/ToUnicode"): to_unicode,
            }
        )
    )


@dataclass(frozen=True)
class PreparedImage:
    """Decoded seal pixels, compressed and ready to wrap in image XObjects."""

    width: int
    height: int
    rgb_flate: bytes
    alpha_flate: bytes | None  # None: fully opaque


@functools.lru_cache(maxsize=32)
def prepare_image(png: bytes) -> PreparedImage:
    """Decode an image (PNG with or without alpha) once per distinct byte string."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(png))
        if img.width * img.height > _MAX_SEAL_PIXELS:
            raise InvalidOptionsError("seal image is too large")
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidOptionsError(f"seal image cannot be read: {exc}") from None
    img = img.convert("RGBA")
    if max(img.size) > _MAX_SEAL_SIDE:
        scale = _MAX_SEAL_SIDE / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    alpha = img.getchannel("A")
    lo, _hi = alpha.getextrema()
    return PreparedImage(
        width=img.width,
        height=img.height,
        rgb_flate=zlib.compress(img.convert("RGB").tobytes(), 6),
        alpha_flate=None if lo == 255 else zlib.compress(alpha.tobytes(), 6),
    )


def embed_image(writer: BasePdfFileWriter, image: PreparedImage) -> generic.IndirectObject:
    """Add the image (and its /SMask for transparency) to ``writer``."""

    def xobject(colour_space: str, flate: bytes, extra: dict) -> generic.StreamObject:
        return _flate_stream(
            {
                "/Type": pdf_name("/XObject"),
                "/Subtype": pdf_name("/Image"),
                "/Width": generic.NumberObject(image.width),
                "/Height": generic.NumberObject(image.height),
                "/ColorSpace": pdf_name(colour_space),
                "/BitsPerComponent": generic.NumberObject(8),
                "/Interpolate": generic.BooleanObject(True),
                **extra,
            },
            flate,
        )

    extra: dict = {}
    if image.alpha_flate is not None:
        extra["/SMask"] = writer.add_object(xobject("/DeviceGray", image.alpha_flate, {}))
    return writer.add_object(xobject("/DeviceRGB", image.rgb_flate, extra))
