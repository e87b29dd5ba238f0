"""Check a dataset before any encoding: missing files, unreadable images, empty classes, sizes."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from zsvl.data.datasets import DatasetInfo, dataset_folder, load_dataset
from zsvl.errors import ZsvlError

__all__ = ["DatasetReport", "check_dataset"]


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found; ``ok`` is False when something must be fixed first."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)  # images per split
    missing: list[str] = field(default_factory=list)  # listed files that do not exist
    unreadable: list[str] = field(default_factory=list)  # files that fail to decode
    empty_classes: list[str] = field(default_factory=list)  # classes with no test image
    problems: list[str] = field(default_factory=list)  # one sentence each, with the fix

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        head = f"{self.name}: {'ok' if self.ok else 'PROBLEMS'} ({counts})"
        return "\n".join([head] + [f"  - {p}" for p in self.problems])


def check_dataset(
    info: DatasetInfo, data_root: str | Path, *, decode: bool = True, max_decode: int | None = None
) -> DatasetReport:
    """Check ``info`` under ``data_root``. ``decode`` opens every file (or ``max_decode`` of them)."""
    report = DatasetReport(info.name)
    try:
        splits = load_dataset(info, data_root)
    except ZsvlError as exc:
        report.problems.append(str(exc))
        return report
    report.counts = {name: len(split) for name, split in splits.items()}
    paths = [p for split in splits.values() for p in split.paths]
    report.missing = [str(p) for p in paths if not Path(p).is_file()]
    if report.missing:
        report.problems.append(
            f"{len(report.missing)} listed images do not exist (first: {report.missing[0]}); "
            f"images must sit under {dataset_folder(info, data_root) / info.image_dir}."
        )
    if decode:
        present = [p for p in paths if Path(p).is_file()][: max_decode or None]
        with ThreadPoolExecutor(max_workers=4) as pool:
            bad = [r for r in pool.map(_decode_error, present) if r is not None]
        report.unreadable = bad
        if bad:
            report.problems.append(f"{len(bad)} images cannot be decoded (first: {bad[0]}).")
    test = splits["test"]
    seen = Counter(test.labels)
    report.empty_classes = [n for i, n in enumerate(test.classes.names) if seen[i] == 0]
    if report.empty_classes and len(test):
        report.problems.append(
            f"{len(report.empty_classes)} classes have no test image "
            f"(e.g. {report.empty_classes[:3]}); the split file does not match the class list."
        )
    if info.test_size is not None and len(test) != info.test_size:
        report.problems.append(
            f"the test split has {len(test)} images; the standard split has {info.test_size}. "
            f"Use the published split file, or expect numbers that differ from the papers."
        )
    return report


def _decode_error(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding, not a crash
        return f"{path} ({type(exc).__name__}: {exc})"
    return None
