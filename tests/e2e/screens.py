"""Where browser tests write their screenshots, and the widths the console must work at.

The folder is `artifacts/screenshots/` in the checkout (git ignores it) unless
CFADMIN_SCREENSHOTS names another; the README points reviewers there.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page

BASE_DIR = Path(__file__).resolve().parents[2]
WIDTHS = (1400, 390)  # a desk, a phone


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("CFADMIN_SCREENSHOTS", BASE_DIR / "artifacts" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, name: str, widths: tuple[int, ...] = WIDTHS) -> list[Path]:
    """Full-page screenshots of what the page shows now, one per width; the viewport is put
    back afterwards. Returns the files written (`<name>-<width>.png`)."""
    before = page.viewport_size or {"width": 1400, "height": 1000}
    written = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": before["height"]})
        page.wait_for_timeout(100)  # let the layout settle at the new width
        path = screenshot_dir() / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)
    page.set_viewport_size(before)
    return written


def overflows_horizontally(page: Page) -> bool:
    """The page is wider than the viewport (something would be clipped on a phone)."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
