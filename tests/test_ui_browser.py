"""The web UI end to end: the real app on a loopback port, driven in headless Chromium.

Debian's `chromium` and `chromium-driver` (no browser downloads), driven with Selenium. Each
wait is for a condition the page announces (`data-state` on #samples and #result), never a
fixed sleep. Screenshots land in artifacts/ (desktop and phone widths).

Without the browser these tests are skipped with a reason naming the packages to install;
under CI (CI set, as CI sets it) they fail instead, so a CI run cannot pass without them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from mockmodels.ui_label_model import inference as ui_label_model
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from squeezenet_support import CONTRIB_DIR, ensure_built, squeezenet_model

from modelhubapi import ModelHubRESTAPI
from modelhubapi.settings import Settings
from modelhubapi.webservice import BackgroundServer

pytestmark = pytest.mark.browser

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS_DIR = os.path.join(REPO_DIR, "artifacts")
MOCK_PACKAGE = os.path.join(REPO_DIR, "tests", "mockmodels", "ui_label_model")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
WAIT_SECONDS = 30
MISSING_BROWSER = (
    "the web UI tests need Debian's chromium and chromedriver ({missing} not found): "
    "apt-get install chromium chromium-driver"
)


def require_browser(programs: tuple[str, ...] = (CHROMIUM, CHROMEDRIVER)) -> None:
    """Skip (fail under CI) unless Chromium and its driver are installed where expected."""
    missing = [path for path in programs if not os.access(path, os.X_OK)]
    if not missing:
        return
    reason = MISSING_BROWSER.format(missing=" and ".join(missing))
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def serve(model, package: str, tmp_path_factory, **settings: Any) -> Iterator[str]:
    """The REST API (and so the UI) of `package` on a free loopback port, built with
    `Settings(**settings)`; its base URL."""
    chosen = Settings(**settings)
    rest_api = ModelHubRESTAPI(model, package, chosen)
    rest_api.working_folder = str(tmp_path_factory.mktemp("working"))
    rest_api.api.output_folder = str(tmp_path_factory.mktemp("output"))
    with BackgroundServer(rest_api.app, settings=chosen) as server:
        yield server.url


@pytest.fixture(scope="module")
def squeezenet() -> tuple[Any, str]:
    """The SqueezeNet model and its package folder."""
    return squeezenet_model(), CONTRIB_DIR


@pytest.fixture(scope="module")
def squeezenet_url(squeezenet, tmp_path_factory) -> Iterator[str]:
    yield from serve(*squeezenet, tmp_path_factory)


@pytest.fixture(scope="module")
def fetching_squeezenet_url(squeezenet, tmp_path_factory) -> Iterator[str]:
    """SqueezeNet served with URLs to private hosts allowed."""
    yield from serve(*squeezenet, tmp_path_factory, allow_private_urls=True)


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory) -> Iterator[str]:
    yield from serve(ui_label_model.Model(), MOCK_PACKAGE, tmp_path_factory)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser):
    """The browser at desktop size; a test changing the size gets it reset afterwards."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", DESKTOP)
    yield browser
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", DESKTOP)


def wait(driver, condition, message: str):
    return WebDriverWait(driver, WAIT_SECONDS).until(condition, message)


def open_ui(driver, base_url: str) -> None:
    """Load the page and wait until the model card and the samples are in."""
    driver.get(f"{base_url}/")
    wait(driver, lambda d: d.find_element(By.ID, "samples").get_attribute("data-state") == "ready",
         "the samples never loaded")
    wait(driver, lambda d: d.find_element(By.ID, "model-description").text,
         "the model card never loaded")


def wait_for_result(driver, source: str) -> str:
    """Wait until the result for `source` is shown (or failed); "done" or "error"."""

    def finished(d):
        result = d.find_element(By.ID, "result")
        state = result.get_attribute("data-state")
        return state if result.get_attribute("data-source") == source and state in (
            "done", "error") else None

    return wait(driver, finished, f"no result for {source}")


def bar_labels(driver) -> list[str]:
    return [bar.text for bar in driver.find_elements(By.CSS_SELECTOR, "#result .bar-label")]


def click_sample(driver, name: str) -> str:
    driver.find_element(By.CSS_SELECTOR, f'#samples [data-filename="{name}"]').click()
    return wait_for_result(driver, name)


def upload(driver, path: str) -> str:
    # A file input takes a path typed into it: what the picker would have chosen.
    driver.find_element(By.ID, "file-input").send_keys(path)
    return wait_for_result(driver, os.path.basename(path))


def error_text(driver) -> str:
    alert = driver.find_element(By.ID, "error")
    return alert.text if alert.is_displayed() else ""


def test_model_card_shows_the_package(page, squeezenet_url):
    open_ui(page, squeezenet_url)
    assert page.find_element(By.ID, "model-name").text == "squeezenet"
    assert "squeezenet" in page.title
    assert page.find_element(By.ID, "model-task").text
    link = page.find_element(By.CSS_SELECTOR, "#publication-title a")
    assert link.get_attribute("href") == "https://arxiv.org/abs/1602.07360"
    assert "SqueezeNet" in link.text
    page.find_element(By.CSS_SELECTOR, "#legal summary").click()
    # The licences come in their own request, which may answer after the samples.
    licences = wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#legal-texts .licence pre"),
                    "the licences never loaded")
    assert len(licences) == 4
    assert all(licence.is_displayed() and licence.text for licence in licences)
    assert len(page.find_elements(By.CSS_SELECTOR, "#samples .sample img")) == len(
        requests.get(f"{squeezenet_url}/api/get_samples", timeout=10).json())
    assert error_text(page) == ""


def test_page_is_accessible_by_its_markup(page, squeezenet_url):
    open_ui(page, squeezenet_url)
    assert page.find_element(By.ID, "result").get_attribute("aria-live") == "polite"
    assert page.find_element(By.ID, "error").get_attribute("role") == "alert"
    for picture in page.find_elements(By.TAG_NAME, "img"):
        assert picture.get_attribute("alt") is not None
    for field in page.find_elements(By.CSS_SELECTOR, "input"):
        label = page.find_elements(By.CSS_SELECTOR, f'label[for="{field.get_attribute("id")}"]')
        assert label, f"input #{field.get_attribute('id')} has no label"


def test_clicking_a_sample_shows_its_top_label(page, squeezenet_url):
    open_ui(page, squeezenet_url)
    assert click_sample(page, "bagel.jpg") == "done"
    labels = bar_labels(page)
    assert labels[0] == "bagel, beigel"
    assert len(labels) == 5
    values = [v.text for v in page.find_elements(By.CSS_SELECTOR, "#result .bar-value")]
    shares = [float(v.rstrip("%")) for v in values]
    assert shares == sorted(shares, reverse=True)  # top first
    assert page.find_element(By.ID, "processing-time").text.startswith("Processing time: ")
    assert page.find_element(By.CSS_SELECTOR, "#result img.preview").get_attribute("alt")


def test_keyboard_alone_runs_a_sample(page, squeezenet_url):
    open_ui(page, squeezenet_url)
    page.find_element(By.CSS_SELECTOR, '#samples [data-filename="cat.jpeg"]').send_keys(Keys.ENTER)
    assert wait_for_result(page, "cat.jpeg") == "done"
    assert bar_labels(page)[0] == "tabby, tabby cat"


def test_uploaded_file_shows_its_result(page, squeezenet_url):
    open_ui(page, squeezenet_url)
    camel = os.path.join(ensure_built(), "sample_data", "camel.jpeg")
    assert upload(page, camel) == "done"
    assert bar_labels(page)[0] == "Arabian camel, dromedary, Camelus dromedarius"


def test_dropped_file_shows_its_result(page, squeezenet_url):
    open_ui(page, squeezenet_url)
    # Selenium cannot drag a file from the desktop: the page gets the same drop event a
    # browser makes, with the file built from a sample's bytes.
    page.execute_async_script(
        """
        const [name, done] = arguments;
        const blob = await (await fetch(`api/samples/${name}`)).blob();
        const files = new DataTransfer();
        files.items.add(new File([blob], `dropped-${name}`, {type: blob.type}));
        document.getElementById('dropzone').dispatchEvent(
            new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));
        done();
        """,
        "phone.jpeg",
    )
    assert wait_for_result(page, "dropped-phone.jpeg") == "done"
    assert bar_labels(page)[0] == "dial telephone, dial phone"


def test_text_file_shows_the_server_error(page, squeezenet_url, tmp_path):
    open_ui(page, squeezenet_url)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")
    assert upload(page, str(notes)) == "error"
    assert error_text(page) == "Incorrect file type."
    assert bar_labels(page) == []


def test_classify_by_url(page, fetching_squeezenet_url):
    # The "remote" file is the app's own sample, on loopback: private addresses allowed.
    open_ui(page, fetching_squeezenet_url)
    url = f"{fetching_squeezenet_url}/api/samples/hammer.jpeg"
    page.find_element(By.ID, "url-input").send_keys(url, Keys.ENTER)
    assert wait_for_result(page, url) == "done"
    assert bar_labels(page)[0] == "hammer"


def test_refused_url_shows_the_server_error(page, squeezenet_url):
    open_ui(page, squeezenet_url)
    url = f"{squeezenet_url}/api/samples/hammer.jpeg"
    expected = requests.get(f"{squeezenet_url}/api/predict", params={"fileurl": url},
                            timeout=10).json()["error"]
    page.find_element(By.ID, "url-input").send_keys(url, Keys.ENTER)
    assert wait_for_result(page, url) == "error"
    assert error_text(page) == expected


def test_other_output_types_of_another_package(page, mock_url):
    open_ui(page, mock_url)
    assert page.find_element(By.ID, "model-name").text == "colour-namer"
    assert not page.find_element(By.ID, "thumbnail").is_displayed()  # this package has none
    assert click_sample(page, "red.png") == "done"
    assert bar_labels(page)[0] == "red"
    outputs = {o.get_attribute("data-output-type"): o
               for o in page.find_elements(By.CSS_SELECTOR, "#result .output")}
    assert set(outputs) == {"label_list", "mask_image", "custom"}
    # An array output is a link to its HDF5 file on the server.
    link = outputs["mask_image"].find_element(By.CSS_SELECTOR, "a.download")
    assert "shape 12 \N{MULTIPLICATION SIGN} 16" in link.text
    assert requests.get(link.get_attribute("href"), timeout=10).content.startswith(b"\x89HDF")
    # Anything else is shown as JSON.
    assert '"height": 12' in outputs["custom"].find_element(By.CSS_SELECTOR, "pre").text


def save_full_page(driver, path: str) -> None:
    """A screenshot of the whole page, not just the part on screen."""
    width, height = driver.execute_script(
        "const root = document.documentElement; return [root.scrollWidth, root.scrollHeight];")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png",
        "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    })
    with open(path, "wb") as file:
        file.write(base64.b64decode(shot["data"]))


def test_screenshots_on_desktop_and_phone(page, squeezenet_url):
    """artifacts/ui.png: a desktop screen after a prediction; ui-phone.png: the whole page
    on a phone, where the result comes below the inputs."""
    os.makedirs(ARTIFACTS_DIR, exist_ok=True)
    for metrics, name in ((DESKTOP, "ui.png"), (PHONE, "ui-phone.png")):
        page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        open_ui(page, squeezenet_url)
        assert click_sample(page, "bagel.jpg") == "done"
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
        page.execute_script("window.scrollTo(0, 0)")
        path = os.path.join(ARTIFACTS_DIR, name)
        if metrics["mobile"]:
            save_full_page(page, path)
        else:
            assert page.save_screenshot(path)


@pytest.mark.parametrize(
    ("ci", "outcome"), [("", pytest.skip.Exception), ("true", pytest.fail.Exception)]
)
def test_a_missing_browser_skips_with_the_packages_to_install_but_fails_ci(
    monkeypatch, tmp_path, ci, outcome
):
    monkeypatch.setenv("CI", ci)
    missing = str(tmp_path / "chromedriver")
    with pytest.raises(outcome, match=f"{missing} not found.*apt-get install chromium "):
        require_browser((missing,))
