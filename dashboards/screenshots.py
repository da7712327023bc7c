"""`make screenshots`: serve the dashboard and take a headless Chromium screenshot of each page.

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
PAGES = {"overview": "", "comparison": "Therapy_comparison", "landscape": "Trial_landscape",
         "safety": "Safety", "publications": "Publications", "reporting": "Results_reporting",
         "quality": "Data_quality"}
# Debian chromium, driven by playwright (no browser download); flags for a closed network
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium is not installed: apt-get install chromium")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboards" / "Overview.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            for name, url_path in PAGES.items():
                page.goto(f"http://127.0.0.1:{port}/{url_path}")
                # wait until the script run is over: no "Running" indicator, content drawn
                page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60000)
                page.get_by_role("button", name="Stop").wait_for(state="hidden", timeout=120000)
                if name in {"comparison", "landscape", "safety", "publications"}:
                    page.wait_for_selector(".js-plotly-plot", timeout=60000)
                page.wait_for_timeout(2500)  # let plotly finish drawing
                target = OUT / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"wrote {target.relative_to(ROOT)}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    main()
