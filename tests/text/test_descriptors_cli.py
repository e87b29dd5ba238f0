"""``zsvl descriptors generate|import`` end to end, the shipped toy files, and explain_images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from llm_server import MODEL

from zsvl.cli import main
from zsvl.text.descriptors import DescriptorSet, load_descriptors
from zsvl.text.generate import generate_descriptor_file
from zsvl.text.llm import LLMConfig
from zsvl.toy.suite import TOY_DATASETS
from zsvl.toy.world import class_traits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def test_generate_command_writes_a_store_and_replays_offline(llm_server, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("blue striped square\nred solid circle\n")
    out = tmp_path / "d.json"
    args = [
        "descriptors",
        "generate",
        "--classes-file",
        str(classes),
        "--out",
        str(out),
        "--model",
        MODEL,
        "--base-url",
        llm_server.base_url,
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    assert "2 classes, 14 descriptors" in capsys.readouterr().out
    ds = DescriptorSet.load(out)
    assert ds.classes.names == ("blue striped square", "red solid circle")
    assert ds["red solid circle"] == tuple(class_traits("ToyFine", "red solid circle"))
    llm_server.stop()
    assert main([*args, "--offline"]) == 0
    assert "0 LLM requests sent (2 answered from the cache" in capsys.readouterr().out
    classes.write_text("purple dotted triangle\n")
    assert main([*args, "--offline"]) == 2
    err = capsys.readouterr().err
    assert "1 of 1 LLM requests are not in the cache" in err and "purple dotted triangle" in err


def test_generate_command_timeout_and_retries(llm_server, tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_text("red solid circle\n")
    args = [
        "descriptors",
        "generate",
        "--classes-file",
        str(classes),
        "--out",
        str(tmp_path / "d.json"),
        "--model",
        MODEL,
        "--base-url",
        llm_server.base_url,
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    llm_server.timeout_sleep = 1.0
    llm_server.script("timeout")
    assert main([*args, "--timeout", "0.3", "--max-retries", "0"]) == 2
    err = capsys.readouterr().err
    assert "kept failing (APITimeoutError) after 0 retries (timeout 0.3 s" in err
    assert "Traceback" not in err
    assert main([*args, "--timeout", "0"]) == 2
    assert "LLMConfig.timeout is out of range" in capsys.readouterr().err
    assert main([*args, "--timeout", "5"]) == 0


def test_import_command_reports_and_converts(tmp_path, capsys):
    src = tmp_path / "cbd.json"
    src.write_text(json.dumps({"Bengal": ["spotted coat."], "Sphynx": ["hairless"]}))
    classes = tmp_path / "classes.txt"
    classes.write_text("Abyssinian\nBengal\n")
    out = tmp_path / "zsvl.json"
    code = main(
        [
            "descriptors",
            "import",
            str(src),
            "--classes-file",
            str(classes),
            "--out",
            str(out),
            "--strict",
        ]
    )
    text = capsys.readouterr().out
    assert code == 1 and "missing: 1 ('Abyssinian')" in text and "extra: 1 ('Sphynx')" in text
    assert load_descriptors(out)["Bengal"] == ("spotted coat",)


@pytest.mark.parametrize("spec", TOY_DATASETS, ids=lambda s: s.name)
def test_shipped_toy_files_match_the_toy_world(spec):
    cbd = load_descriptors(f"{spec.folder}_cbd")
    assert cbd.classes.names == spec.classnames
    assert cbd.descriptors == tuple(tuple(class_traits(spec.name, c)) for c in spec.classnames)
    assert cbd.provenance["source"] == "llm" and cbd.provenance["prompts"][0]["name"] == "cbd"
    cupl = load_descriptors(f"{spec.folder}_cupl")
    assert cupl.provenance["style"] == "cupl" and not cupl.empty_classes
    fudd = load_descriptors(f"{spec.folder}_fudd")
    n = len(spec.classnames)
    assert len(fudd.pairs) == n * (n - 1) // 2 and all(fudd.pairs.values())


def test_shipped_files_are_what_the_server_and_client_produce(llm_server, tmp_path):
    spec = TOY_DATASETS[0]
    config = LLMConfig(model=MODEL, base_url=llm_server.base_url, concurrency=8)
    for style in ("cbd", "fudd"):
        fresh, _ = generate_descriptor_file(
            spec.classnames,
            tmp_path / f"{style}.json",
            style=style,
            config=config,
            cache_dir=tmp_path,
        )
        shipped = load_descriptors(f"{spec.folder}_{style}")
        assert fresh.descriptors == shipped.descriptors and fresh.pairs == shipped.pairs


def test_explain_images_with_any_encoder():
    from text_fakes import BagOfWordsEncoder

    from zsvl.api import explain_images

    enc = BagOfWordsEncoder(32)
    ds = DescriptorSet.from_lists(
        ["red circle", "blue square"], [["round", "red colour"], ["four sides", "blue colour"]]
    )
    images = enc.images_of(["red round", "blue four sides"], noise=0.5)
    out = explain_images(np.asarray(images), ds, model=enc, top=2)
    assert [r["label"] for r in out["results"]] == ["red circle", "blue square"]
    assert len(out["results"][0]["explanation"]) == 2 and out["skipped"] == []
    assert out["results"][0]["explanation"][0]["descriptor"] in ("round", "red colour")
