"""Open a report in headless Chromium: what a reader's browser shows, errors included.

Playwright drives the browser (a well-kept library with console and page-error
events); the browser itself is the system's Chromium (Debian's `chromium`,
installed by `make system-deps`), so nothing is downloaded at run time.

Usage: python -m benchmarks.browser REPORT.html SCREENSHOT.png
"""

import argparse
import os
import shutil
from dataclasses import dataclass, field

CHROMIUM_NAMES = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome")


class BrowserUnavailable(RuntimeError):
    pass


@dataclass
class PageView:
    title: str
    errors: list = field(default_factory=list)      # uncaught exceptions and console errors
    failed_requests: list = field(default_factory=list)
    table_rows: int = 0
    images: list = field(default_factory=list)      # (alt, natural width, natural height)


def chromium_path():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserUnavailable("Chromium is not installed. Install it (Debian/Ubuntu: "
                             "`apt-get install chromium`, or `make system-deps` as root).")


def open_page(html_path, screenshot_path=None, width=1280):
    """Load `html_path` from disk in headless Chromium; report what rendered and what failed."""
    from playwright.sync_api import sync_playwright

    url = "file://" + os.path.abspath(html_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox"])  # root in containers
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            view = PageView(title="")
            page.on("pageerror", lambda error: view.errors.append(f"uncaught: {error}"))
            page.on("console", lambda message: message.type == "error"
                    and view.errors.append(f"console: {message.text}"))
            page.on("requestfailed", lambda request: view.failed_requests.append(request.url))
            page.goto(url, wait_until="load")
            view.title = page.title()
            view.table_rows = page.locator("table tbody tr").count()
            view.images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.alt, i.naturalWidth, i.naturalHeight])")
            if screenshot_path:
                page.screenshot(path=screenshot_path, full_page=True)
        finally:
            browser.close()
    return view


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html")
    parser.add_argument("screenshot")
    args = parser.parse_args(argv)
    view = open_page(args.html, args.screenshot)
    print(f"{view.title}: {view.table_rows} table rows, {len(view.images)} images, "
          f"{len(view.errors)} errors; screenshot in {args.screenshot}")
    for error in view.errors + view.failed_requests:
        print("  ", error)


if __name__ == "__main__":
    main()
