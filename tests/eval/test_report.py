"""Reports: the Markdown table against hand-made records, CSV, HTML in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from zsvl.eval.aggregate import aggregate, to_markdown
from zsvl.eval.report import render_report, write_report


def _record(ds, method, shots, seed, top1):
    return {
        "dataset": ds,
        "method": method,
        "shots": shots,
        "seed": seed,
        "status": "ok",
        "metrics": {"top1": top1},
    }


RECORDS = [
    _record("A", "zeroshot", 0, None, 50.0),
    _record("B", "zeroshot", 0, None, 70.0),
    _record("A", "tip", 1, 1, 52.0),
    _record("A", "tip", 16, 1, 60.0),
    _record("A", "tip", 16, 2, 62.0),
    _record("B", "tip", 16, 1, 80.0),
    _record("B", "tip", 16, 2, 80.0),
]


def test_table_means_stds_and_deltas():
    agg = aggregate(RECORDS)
    assert agg.rows == ["zeroshot", "tip (16-shot)"] and agg.datasets == ["A", "B"]
    assert agg.cells[("tip (16-shot)", "A")] == (61.0, 1.0, 2)
    assert agg.row_mean("tip (16-shot)") == pytest.approx(70.5)
    assert agg.delta("tip (16-shot)", "B") == pytest.approx(10.0)
    md = to_markdown(agg)
    assert "| tip (16-shot) | **61.0 ± 1.0** | **80.0 ± 0.0** | **70.5** |" in md  # best: bold
    assert "| tip (16-shot) | +11.0 | +10.0 |" in md
    assert agg.curves["A"]["tip"] == {1: (52.0, 0.0), 16: (61.0, 1.0)}


def _write_results(root: Path) -> Path:
    for i, rec in enumerate(RECORDS):
        path = root / rec["dataset"] / rec["method"] / f"{i}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
    return root


def test_csv_and_empty_folder(tmp_path):
    csv = render_report(_write_results(tmp_path / "r"), "csv").splitlines()
    assert csv[0] == "method,dataset,shots,top1_mean,top1_std" and "tip,A,16,61.0000,1.0000" in csv
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="No run records"):
        render_report(tmp_path / "empty", "md")


def _chromium() -> tuple[str, str] | None:
    """Chromium and chromedriver when installed (.ci/run installs Debian's; tests never do)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _screenshot_dirs(tmp_path: Path) -> list[Path]:
    """The test's own folder, and $ZSVL_TEST_ARTIFACTS/report when set (CI keeps that one)."""
    dirs = [tmp_path]
    if os.environ.get("ZSVL_TEST_ARTIFACTS"):
        dirs.append(Path(os.environ["ZSVL_TEST_ARTIFACTS"]) / "report")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def _full_page_screenshots(driver, name: str, dirs: list[Path]) -> list[Path]:
    """The whole page (window resized to its height) and the first screen, as PNG files."""
    saved = []
    driver.set_window_size(1400, 900)
    first = driver.get_screenshot_as_png()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 120, 12000))
    full = driver.get_screenshot_as_png()
    for d in dirs:
        for suffix, data in (("top", first), ("full", full)):
            path = d / f"{name}-{suffix}.png"
            path.write_bytes(data)
            saved.append(path)
    return saved


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(tmp_path, toy_encoder, toy_suite):
    pytest.importorskip("selenium", reason="selenium comes with the dev extra")
    found = _chromium()
    if found is None:
        pytest.skip("chromium and chromedriver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from zsvl.data.datasets import toy_datasets
    from zsvl.eval.runner import run_suite
    from zsvl.eval.suite import Suite

    two = tuple(d for d in toy_datasets() if d.name in ("ToyShapes", "ToyTextures"))
    suite = Suite(
        "toy-run", two, methods=("zeroshot", "cbd", "tip", "teen"), shots=(0, 1, 2), seeds=(1, 2)
    )
    run_suite(suite, data_root=toy_suite, encoder=toy_encoder, out=tmp_path / "r", model_spec="toy")
    page = write_report(tmp_path / "r", tmp_path / "report.html")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        driver.get(page.as_uri())
        shots = _full_page_screenshots(driver, "report", _screenshot_dirs(tmp_path))
        assert all(p.stat().st_size > 10_000 for p in shots)
        assert driver.title.startswith("zsvl report")
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []

        def js(expr):
            return driver.execute_script("return " + expr)

        cells = js(
            "Array.from(document.querySelectorAll('table.results td')).map(c => c.innerText)"
        )
        assert {"zeroshot", "cbd", "tip (2-shot)"} <= set(cells)
        assert js("document.querySelectorAll('table.results td.best').length") >= 3  # 2 + mean
        widths = js("Array.from(document.querySelectorAll('#plots img')).map(i => i.naturalWidth)")
        assert len(widths) == 2 and min(widths) > 300  # one decoded curve figure per dataset
        detail = js("Array.from(document.querySelectorAll('.detail img')).map(i => i.naturalWidth)")
        assert len(detail) == 4 and min(detail) > 100  # per-class bars + confusion, 2 datasets
        cards = js("Array.from(document.querySelectorAll('.card img')).map(i => i.naturalWidth)")
        assert len(cards) >= 16 and min(cards) == 96  # zeroshot and cbd cards, both datasets
        marks = js("Array.from(document.querySelectorAll('.card .badge')).map(b => b.innerText)")
        assert set(marks) <= {"right", "wrong"} and "right" in marks
        text = js("document.body.innerText")
        assert "Explanations: ToyShapes / cbd" in text and "descriptions that decided" in text
        assert "fingerprint" in text and "zsvl-toy-clip" in text and "test 400" in text
        assert str(toy_suite) not in text and str(tmp_path) not in text  # no absolute paths
        for anchor in js(
            "Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
            ".map(a => a.getAttribute('href').slice(1))"
        ):
            assert js(f"document.getElementById('{anchor}') !== null"), anchor
    finally:
        driver.quit()


def test_scratch_files_are_not_records_and_failures_are(tmp_path):
    root = _write_results(tmp_path / "r")
    (root / "_work" / "fewshot").mkdir(parents=True)
    (root / "_work" / "fewshot" / "A_k1_seed1.json").write_text(json.dumps({"shots": 1}))
    (root / "C" / "zeroshot").mkdir(parents=True)
    (root / "C" / "zeroshot" / "k0.json").write_text(
        json.dumps(
            {
                "dataset": "C",
                "method": "zeroshot",
                "shots": 0,
                "status": "failed",
                "error_kind": "dataset",
                "error": "folder missing",
            }
        )
    )
    md = render_report(root, "md")
    assert "1 runs failed" in md and "C / zeroshot k=0" in md and "folder missing" in md


def test_html_report_structure_without_a_browser(tmp_path):
    root = _write_results(tmp_path / "r")
    page = render_report(root, "html")
    assert page.startswith("<!DOCTYPE html>") and page.count("<table") >= 2
    assert '<td class="best">80.0' in page  # best of column B (tip, 16 shots) is marked
    assert "few-shot curve A" in page and "data:image/png;base64," in page
    assert "<script" not in page and "http" not in page.split("<body>", 1)[1]  # self-contained
    with pytest.raises(Exception, match="Did you mean: tip"):
        render_report(root, "html", method="tpi")
