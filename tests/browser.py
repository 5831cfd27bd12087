"""Test helper: open a local HTML page in a real headless Chromium and check that every <img> loaded.

Needs Debian's `chromium` and `chromium-driver` (see .ci/install_browser.sh) and selenium; without them the
calling test is skipped, naming what is missing.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run")
LOAD_TIMEOUT_S = 30

IMAGES_STATE_JS = """
return Array.from(document.images).map(function (im) {
    return {src: im.getAttribute('src'), complete: im.complete, naturalWidth: im.naturalWidth};
});
"""


def _find(path, name):
    if os.access(path, os.X_OK):
        return path
    return shutil.which(name)


def _browser_or_skip():
    """(selenium webdriver module, chromium path, chromedriver path), or pytest.skip naming what is missing."""
    missing = []
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
        missing.append("the selenium package (pip install selenium)")
    chromium = _find(CHROMIUM, "chromium")
    chromedriver = _find(CHROMEDRIVER, "chromedriver")
    if chromium is None:
        missing.append(f"chromium ({CHROMIUM})")
    if chromedriver is None:
        missing.append(f"chromedriver ({CHROMEDRIVER})")
    if missing:
        pytest.skip("browser check needs " + ", ".join(missing)
                    + "; install Debian's chromium and chromium-driver with .ci/install_browser.sh")
    return webdriver, chromium, chromedriver


def assert_page_images_load(html_path):
    """Load html_path in headless Chromium; assert it has images and each one decoded. Returns their count."""
    webdriver, chromium, chromedriver = _browser_or_skip()
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = None
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        driver.set_page_load_timeout(LOAD_TIMEOUT_S)
        driver.get(Path(html_path).resolve().as_uri())
        WebDriverWait(driver, LOAD_TIMEOUT_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        images = driver.execute_script(IMAGES_STATE_JS)
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    assert images, f"{html_path} has no <img>"
    broken = [im["src"] for im in images if not (im["complete"] and im["naturalWidth"] > 0)]
    assert not broken, f"{html_path}: {len(broken)} of {len(images)} images did not load: {broken}"
    return len(images)
