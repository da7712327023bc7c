"""`make screenshots`: serve the dashboard and take a headless Chromium screenshot of each page,
whole pages (the window grows to the page's height).

Uses Debian's chromium (apt-get install chromium) driven by playwright, with the flags a closed
network needs. Images go to dashboards/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "dashboards" / "screenshots"
PAGES = {"overview": "", "comparison": "Therapy_comparison",
         # a pooled view (three cohorts: a diamond and a prediction interval), linked by its ids
         "comparison_pooled": "Therapy_comparison?outcome=insulin_independence&definition=ii_ever"
                              "&diabetes_type=T1D&window=last_followup",
         "landscape": "Trial_landscape", "safety": "Safety", "publications": "Publications",
         "reporting": "Results_reporting", "quality": "Data_quality",
         "prisma": "PRISMA_flow", "changed": "What_changed"}
# Debian chromium, driven by playwright (no browser download); flags for a closed network
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars"]


WIDTH = 1400
# the height of Streamlit's main scrolling area (its content), the document's otherwise; tables
# and charts scroll inside themselves and do not count
FULL_HEIGHT_JS = """() => {
    const main = document.querySelector('[data-testid="stMain"]')
        || document.querySelector('section.main');
    const top = main ? main.getBoundingClientRect().top : 0;
    return Math.max(document.documentElement.scrollHeight, main ? main.scrollHeight + top : 0);
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium is not installed: apt-get install chromium")
    port = free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    log = (OUT.parent / ".screenshots-server.log").open("w")  # the app's warnings, if any
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboards" / "Overview.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        OUT.mkdir(parents=True, exist_ok=True)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": 1100})
            for name, url_path in PAGES.items():
                page.set_viewport_size({"width": WIDTH, "height": 1100})
                page.goto(f"http://127.0.0.1:{port}/{url_path}")
                # wait until the script run is over: no "Running" indicator, content drawn
                page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60000)
                page.get_by_role("button", name="Stop").wait_for(state="hidden", timeout=120000)
                if name.startswith(("comparison", "landscape", "safety", "publications")):
                    page.wait_for_selector(".js-plotly-plot", timeout=60000)
                page.wait_for_timeout(2500)  # let plotly finish drawing
                # Streamlit scrolls inside its own container, so the document is only as tall
                # as the window and full_page alone captures the first screen: grow the window
                # to the tallest scrolling content, let the page lay out again, then capture.
                height = int(page.evaluate(FULL_HEIGHT_JS)) + 1
                page.set_viewport_size({"width": WIDTH, "height": max(height + 40, 600)})
                page.wait_for_timeout(1500)
                target = OUT / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"wrote {target.relative_to(ROOT)}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    main()
