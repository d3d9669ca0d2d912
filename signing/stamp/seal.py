"""A development stand-in for an agency seal: a red round stamp as a PNG.

Real deployments configure each agency's scanned seal; this one exists so that
development, demos and golden-image tests have a realistic, deterministic image.
"""

from __future__ import annotations

import functools
import io
import math

from PIL import Image, ImageDraw, ImageFont

from .font import load_font

__all__ = ["make_dev_seal", "SEAL_RED"]

SEAL_RED = (206, 17, 38)
_SUPERSAMPLE = 2
_RING_ARC_DEGREES = 300.0  # the name runs over at most this much of the ring


def _font(size: int) -> ImageFont.FreeTypeFont:
    program = load_font().program  # the static Noto Serif instance
    return ImageFont.truetype(io.BytesIO(program), size, layout_engine=ImageFont.Layout.BASIC)


def _glyph_image(ch: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    left, top, right, bottom = font.getbbox(ch, anchor="ms")
    ascent, descent = font.getmetrics()
    advance = font.getlength(ch)
    w = int(math.ceil(max(right, advance) - min(left, 0))) + 4
    h = (ascent + descent) * 2 + 4
    img = Image.new("L", (w, h), 0)
    # baseline in the vertical middle, character centred horizontally on the image
    ImageDraw.Draw(img).text((w / 2, h / 2), ch, fill=255, font=font, anchor="ms")
    return img


def _ring_text(canvas: Image.Image, text: str, centre: float, band_mid: float, size: int) -> None:
    """Write ``text`` clockwise over the top of the ring, letters upright outwards,
    the middle of the capitals on the circle of radius ``band_mid``."""
    font = _font(size)
    advances = [font.getlength(ch) for ch in text]
    total = sum(advances)
    # shrink the letters if the name would run over more than the allowed arc
    max_len = math.radians(_RING_ARC_DEGREES) * (band_mid - size * 0.36)
    if total > max_len:
        size = max(8, int(size * max_len / total))
        font = _font(size)
        advances = [font.getlength(ch) for ch in text]
        total = sum(advances)
    r = band_mid - size * 0.36  # baseline circle (cap height of Noto Serif ~0.71 em)
    arc = total / r  # radians, centred on the top of the seal
    angle = -math.pi / 2 - arc / 2
    colour = Image.new("RGBA", canvas.size, SEAL_RED + (255,))
    layer = Image.new("L", canvas.size, 0)
    for ch, adv in zip(text, advances, strict=True):
        mid = angle + (adv / 2) / r
        if ch.strip():
            glyph = _glyph_image(ch, font)
            rotated = glyph.rotate(
                -math.degrees(mid + math.pi / 2), resample=Image.Resampling.BICUBIC, expand=True
            )
            x = centre + r * math.cos(mid) - rotated.width / 2
            y = centre + r * math.sin(mid) - rotated.height / 2
            layer.paste(Image.new("L", rotated.size, 255), (round(x), round(y)), rotated)
        angle += adv / r
    canvas.paste(colour, (0, 0), layer)


def _star(draw: ImageDraw.ImageDraw, centre: float, radius: float) -> None:
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else radius * 0.382
        a = -math.pi / 2 + i * math.pi / 5
        points.append((centre + r * math.cos(a), centre + r * math.sin(a)))
    draw.polygon(points, fill=SEAL_RED + (255,))


@functools.lru_cache(maxsize=16)
def make_dev_seal(agency_name: str, size_px: int = 400) -> bytes:
    """A red round seal for ``agency_name`` as PNG bytes (transparent background).

    Two concentric circles, the name (upper case) along the ring, a star in the
    middle. The output is deterministic: the same name and size give the same bytes.
    """
    if size_px < 64 or size_px > 4000:
        raise ValueError("size_px must be between 64 and 4000")
    n = size_px * _SUPERSAMPLE
    c = n / 2
    # transparent pixels carry the seal colour, so edges do not darken when scaled
    canvas = Image.new("RGBA", (n, n), SEAL_RED + (0,))
    draw = ImageDraw.Draw(canvas)
    outer_w = max(2, round(n * 0.022))
    inner_w = max(1, round(n * 0.010))
    outer_r = c - outer_w / 2 - 2
    inner_r = n * 0.33
    ink = SEAL_RED + (255,)
    draw.ellipse((c - outer_r, c - outer_r, c + outer_r, c + outer_r), outline=ink, width=outer_w)
    draw.ellipse((c - inner_r, c - inner_r, c + inner_r, c + inner_r), outline=ink, width=inner_w)
    band_mid = (outer_r - outer_w / 2 + inner_r + inner_w / 2) / 2
    band = outer_r - outer_w / 2 - (inner_r + inner_w / 2)
    name = " ".join(agency_name.split()).upper()
    if name:
        _ring_text(canvas, name, c, band_mid, max(8, round(band * 0.62)))
    _star(ImageDraw.Draw(canvas), c, inner_r * 0.55)
    img = canvas.resize((size_px, size_px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False, compress_level=9)
    return out.getvalue()
