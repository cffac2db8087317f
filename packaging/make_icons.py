"""Draws the app icon: ``resources/tlgui.svg`` plus PNG sizes, ``tlgui.ico`` and ``tlgui.icns``.

The PNGs are drawn with Pillow from the same geometry as the SVG (Pillow cannot render
SVG), at 4x and scaled down for smooth edges. Run it after changing the artwork:

    .venv/bin/python packaging/make_icons.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
CANVAS = 1024
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)

TOP, BOTTOM = (31, 111, 178), (43, 176, 160)
WHITE = (255, 255, 255)
INK = (31, 95, 160)
SUN = (246, 173, 85)
BADGE = (237, 137, 54)

# One geometry for the SVG and the Pillow drawing, on a 1024 px canvas.
TILE = (64, 64, 960, 960, 200)
BACK_CARD = (300, 212, 840, 632, 44)
FRONT_CARD = (184, 312, 724, 732, 44)
MOUNTAINS = ((224, 692), (384, 492), (484, 592), (564, 512), (684, 692))
SUN_CIRCLE = (604, 412, 52)
BADGE_CIRCLE = (744, 744, 164)
CHECK = ((664, 748), (724, 808), (832, 692))
CHECK_WIDTH = 48


def svg() -> str:
    """The icon as SVG source."""
    x0, y0, x1, y1, r = TILE
    back, front = BACK_CARD, FRONT_CARD
    pts = " ".join(f"{x},{y}" for x, y in MOUNTAINS)
    check = " ".join(f"{x},{y}" for x, y in CHECK)
    sx, sy, sr = SUN_CIRCLE
    bx, by, br = BADGE_CIRCLE

    def rgb(c: tuple[int, int, int]) -> str:
        return "#{:02x}{:02x}{:02x}".format(*c)

    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{CANVAS}" height="{CANVAS}" \
viewBox="0 0 {CANVAS} {CANVAS}">
  <title>tlgui</title>
  <defs>
    <linearGradient id="tile" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="{rgb(TOP)}"/>
      <stop offset="1" stop-color="{rgb(BOTTOM)}"/>
    </linearGradient>
  </defs>
  <rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" rx="{r}" fill="url(#tile)"/>
  <rect x="{back[0]}" y="{back[1]}" width="{back[2] - back[0]}" height="{back[3] - back[1]}" \
rx="{back[4]}" fill="{rgb(WHITE)}" fill-opacity="0.55"/>
  <rect x="{front[0]}" y="{front[1]}" width="{front[2] - front[0]}" \
height="{front[3] - front[1]}" rx="{front[4]}" fill="{rgb(WHITE)}"/>
  <polygon points="{pts}" fill="{rgb(INK)}"/>
  <circle cx="{sx}" cy="{sy}" r="{sr}" fill="{rgb(SUN)}"/>
  <circle cx="{bx}" cy="{by}" r="{br}" fill="{rgb(BADGE)}" stroke="{rgb(WHITE)}" \
stroke-width="24"/>
  <polyline points="{check}" fill="none" stroke="{rgb(WHITE)}" stroke-width="{CHECK_WIDTH}" \
stroke-linecap="round" stroke-linejoin="round"/>
</svg>
"""


def draw(scale: int = 4) -> Image.Image:
    """The icon at ``CANVAS * scale`` pixels, RGBA."""
    n = CANVAS * scale

    def s(v: float) -> int:
        return round(v * scale)

    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    gradient = Image.new("RGBA", (1, n))
    for y in range(n):
        t = y / (n - 1)
        gradient.putpixel((0, y), (*(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM,
                                                                            strict=True)), 255))
    gradient = gradient.resize((n, n))
    x0, y0, x1, y1, r = TILE
    mask = Image.new("L", (n, n), 0)
    ImageDraw.Draw(mask).rounded_rectangle((s(x0), s(y0), s(x1), s(y1)), s(r), fill=255)
    img.paste(gradient, (0, 0), mask)

    overlay = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    bx0, by0, bx1, by1, br = BACK_CARD
    ImageDraw.Draw(overlay).rounded_rectangle((s(bx0), s(by0), s(bx1), s(by1)), s(br),
                                              fill=(*WHITE, 140))
    img = Image.alpha_composite(img, overlay)

    d = ImageDraw.Draw(img)
    fx0, fy0, fx1, fy1, fr = FRONT_CARD
    d.rounded_rectangle((s(fx0), s(fy0), s(fx1), s(fy1)), s(fr), fill=WHITE)
    d.polygon([(s(x), s(y)) for x, y in MOUNTAINS], fill=INK)
    sx, sy, sr = SUN_CIRCLE
    d.ellipse((s(sx - sr), s(sy - sr), s(sx + sr), s(sy + sr)), fill=SUN)
    cx, cy, cr = BADGE_CIRCLE
    ring = 12
    d.ellipse((s(cx - cr - ring), s(cy - cr - ring), s(cx + cr + ring), s(cy + cr + ring)),
              fill=WHITE)
    d.ellipse((s(cx - cr + ring), s(cy - cr + ring), s(cx + cr - ring), s(cy + cr - ring)),
              fill=BADGE)
    d.line([(s(x), s(y)) for x, y in CHECK], fill=WHITE, width=s(CHECK_WIDTH), joint="curve")
    for x, y in (CHECK[0], CHECK[-1]):  # round caps
        h = CHECK_WIDTH / 2
        d.ellipse((s(x - h), s(y - h), s(x + h), s(y + h)), fill=WHITE)
    return img


def main() -> int:
    """Writes every icon file into ``resources/``."""
    RESOURCES.mkdir(exist_ok=True)
    (RESOURCES / "tlgui.svg").write_text(svg(), encoding="utf-8")
    big = draw().resize((CANVAS, CANVAS), Image.Resampling.LANCZOS)
    for size in PNG_SIZES:
        big.resize((size, size), Image.Resampling.LANCZOS).save(
            RESOURCES / f"tlgui-{size}.png", optimize=True)
    big.save(RESOURCES / "tlgui.ico", sizes=[(v, v) for v in ICO_SIZES])
    big.save(RESOURCES / "tlgui.icns", sizes=[(v, v) for v in ICNS_SIZES])
    print(f"icons written to {RESOURCES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
