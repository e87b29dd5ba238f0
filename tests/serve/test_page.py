"""The web page in a real headless Chromium: type a query and see captions; upload an image
and see its label, the class bars and the descriptions behind the decision.

Needs Chromium and chromedriver (``apt-get install chromium chromium-driver``); skipped with the
reason when they are missing. Screenshots go to tmp_path and, when set, $ZSVL_TEST_ARTIFACTS.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .helpers import LiveServer, make_service, toy_png

selenium = pytest.importorskip("selenium", reason="selenium is in the dev extra")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def _binary(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = _binary(("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"))
    driver = _binary(("/usr/bin/chromedriver", "chromedriver"))
    if chromium is None or driver is None:
        pytest.skip(
            "Chromium and chromedriver are not installed (apt-get install chromium "
            "chromium-driver); the page test needs a real browser."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    drv = webdriver.Chrome(options=options, service=DriverService(executable_path=driver))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.fixture
def page_server(toy_encoder, toy_index_dir):
    from zsvl.serve import create_app

    svc = make_service(toy_encoder, toy_index_dir)
    with LiveServer(create_app(svc)) as server:
        yield server
    svc.close()


def _shot(browser, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    folder = os.environ.get("ZSVL_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / name)
    return path


def _wait(browser, condition, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def test_type_a_query_and_see_captions(browser, page_server, toy_index, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(page_server.url + "/")
    _wait(browser, lambda b: b.find_element(By.ID, "index-select").get_attribute("value") == "toy")
    assert "ok" in browser.find_element(By.ID, "status").get_attribute("class")
    box = browser.find_element(By.ID, "query")
    box.send_keys("a photo of a purple dotted crescent")
    browser.find_element(By.ID, "search-btn").click()
    cards = _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#hits .hit .caption"))
    want = toy_index.search_texts(["a photo of a purple dotted crescent"], 12)
    assert len(cards) == 12
    assert cards[0].text == want.captions[0][0]
    score = browser.find_element(By.CSS_SELECTOR, "#hits .hit .score").text
    assert abs(float(score) - float(want.scores[0][0])) < 1e-3
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    _shot(browser, tmp_path, "serve_text_search.png")


def test_upload_an_image_and_see_a_label(browser, page_server, toy_encoder, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from zsvl.methods.descriptors import DescriptorClassifier
    from zsvl.text.descriptors import packaged_descriptors

    image = tmp_path / "star.png"
    image.write_bytes(toy_png(30, shape="star", colour="orange", size="large"))
    browser.get(page_server.url + "/")
    _wait(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "#descriptors option")) > 1)
    Select(browser.find_element(By.ID, "descriptors")).select_by_value("toy_shapes_cbd")
    browser.find_element(By.ID, "file-input").send_keys(str(image))
    label = _wait(browser, lambda b: b.find_element(By.ID, "label").text.strip() or None)

    import numpy as np
    from PIL import Image

    X = toy_encoder.encode_images([np.asarray(Image.open(image).convert("RGB"))]).embeddings
    clf = DescriptorClassifier(toy_encoder, packaged_descriptors("toy_shapes_cbd")).fit()
    predicted = clf.predict(X)[0]
    assert label.split("\n")[0].startswith(predicted)
    bars = browser.find_elements(By.CSS_SELECTOR, "#class-bars .bar-row .name")
    assert bars[0].text == predicted and len(bars) == 10
    evidence = _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#explanation li"))
    first = clf.explain(X, top=5)[0].evidence[0].descriptor
    assert evidence[0].text.startswith(first)
    _wait(browser, lambda b: b.find_element(By.ID, "name-label").text.strip() or None)
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#hits .query-card img"))
    assert browser.find_element(By.ID, "preview").get_attribute("hidden") is None
    _shot(browser, tmp_path, "serve_image_classify.png")

    classes = browser.find_element(By.ID, "classes")  # now a class list of our own
    Select(browser.find_element(By.ID, "descriptors")).select_by_value("")
    classes.send_keys("orange star\nblue ring\ngreen square")
    browser.find_element(By.ID, "query").click()  # blur: the change event re-runs
    _wait(
        browser,
        lambda b: b.find_element(By.ID, "label").text.startswith(
            ("orange star", "blue ring", "green square")
        ),
    )
    bars = browser.find_elements(By.CSS_SELECTOR, "#class-bars .bar-row .name")
    assert sorted(b.text for b in bars) == ["blue ring", "green square", "orange star"]
    assert bars[0].text == "orange star"
    _shot(browser, tmp_path, "serve_image_classes.png")
