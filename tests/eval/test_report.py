"""Reports: the Markdown table against hand-made records, CSV, HTML in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
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
    assert "| tip (16-shot) | 61.0 ± 1.0 | 80.0 ± 0.0 | 70.5 |" in md
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
    with pytest.raises(Exception, match="No run records"):
        render_report(tmp_path / "empty", "md")


def _chromium() -> tuple[str, str] | None:
    """Chromium and chromedriver, installed from Debian when missing (CI runs as root)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if shutil.which("apt-get") is None:
            return None
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
            capture_output=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(tmp_path, toy_encoder, toy_suite):
    pytest.importorskip("selenium", reason="selenium comes with the dev extra")
    found = _chromium()
    if found is None:
        pytest.skip("Debian's chromium/chromium-driver could not be installed on this machine")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from zsvl.data.datasets import toy_datasets
    from zsvl.eval.runner import run_suite
    from zsvl.eval.suite import Suite

    two = tuple(d for d in toy_datasets() if d.name in ("ToyShapes", "ToyTextures"))
    suite = Suite("toy-run", two, methods=("zeroshot", "cbd"), shots=(0,), seeds=(1,))
    run_suite(suite, data_root=toy_suite, encoder=toy_encoder, out=tmp_path / "r")
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
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        driver.get(page.as_uri())
        assert driver.title.startswith("zsvl report")
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.results td')).map(c => c.innerText)"
        )
        assert {"zeroshot", "cbd"} <= set(cells)
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('#plots img')).map(i => i.naturalWidth)"
        )
        assert len(widths) == 2 and min(widths) > 100  # two decoded curve plots
        thumbs = driver.execute_script(
            "return Array.from(document.querySelectorAll('.ex img')).map(i => i.naturalWidth)"
        )
        assert len(thumbs) == 8 and min(thumbs) > 0  # 4 decoded example images per dataset
        text = driver.execute_script("return document.body.innerText")
        assert "Explanations: ToyShapes / cbd" in text
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()


def test_scratch_files_are_not_records_and_dataset_errors_are(tmp_path):
    root = _write_results(tmp_path / "r")
    (root / "_work" / "fewshot").mkdir(parents=True)
    (root / "_work" / "fewshot" / "A_k1_seed1.json").write_text(json.dumps({"shots": 1}))
    (root / "C").mkdir()
    (root / "C" / "_dataset_error.json").write_text(
        json.dumps({"dataset": "C", "status": "failed", "error": "folder missing"}))
    md = render_report(root, "md")
    assert "1 runs failed" in md and "C / (dataset)" in md and "folder missing" in md
