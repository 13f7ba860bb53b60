"""Take a full-page screenshot of a saltmap report with headless Chromium.

Usage::

    python tools/screenshot_report.py runs/demo-*/report.html [--out shot.png] [--width 1280]

Chromium comes from Debian's packages (``apt-get install chromium``). The page
is opened from disk with networking features off, so the shot also shows that
the report needs nothing from the network. Headless Chromium cannot size the
window to the page, so the window is made tall (``--height``, CSS pixels) and the
blank bottom is cropped with Pillow when it is installed; a page taller than the
window is cut at its height.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no chromium found: install it with `apt-get install -y chromium` (as root)")


def screenshot(report: Path, out: Path, width: int = 1280, height: int = 16000) -> Path:
    """Render ``report`` at ``width`` × ``height`` CSS pixels into ``out`` (PNG)."""
    with tempfile.TemporaryDirectory() as profile:
        command = [
            find_chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={out.resolve()}",
            f"--window-size={width},{height}",
            report.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    crop_blank_bottom(out)
    return out


def crop_blank_bottom(path: Path) -> None:
    """Cut the white rows below the page's end (needs Pillow; skipped without it)."""
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        background = Image.new("RGB", rgb.size, (255, 255, 255))
        box = ImageChops.difference(rgb, background).getbbox()
        if box is not None:
            rgb.crop((0, 0, rgb.width, min(rgb.height, box[3] + 24))).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("report.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=16000)
    args = parser.parse_args()
    shot = screenshot(args.report, args.out, args.width, args.height)
    print(f"wrote {shot}")


if __name__ == "__main__":
    main()
