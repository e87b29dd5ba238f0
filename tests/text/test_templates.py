"""Template sets, placeholders, and the ClassSet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError
from zsvl.text.templates import format_prompt, format_prompts, list_template_sets, load_templates


def test_openclip_sets_are_read_from_open_clip():
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

    t80 = load_templates("imagenet80")
    assert len(t80) == len(OPENAI_IMAGENET_TEMPLATES) == 80
    assert t80[0] == OPENAI_IMAGENET_TEMPLATES[0]("{}")
    assert len(load_templates("imagenet7")) == len(SIMPLE_IMAGENET_TEMPLATES) == 7


def test_single_and_coop_sets():
    assert load_templates("single") == ("a photo of a {}.",)
    assert load_templates("coop:dtd") == ("{} texture.",)
    assert load_templates("coop:oxford_pets") == ("a photo of a {}, a type of pet.",)
    assert "coop:eurosat" in list_template_sets() and "imagenet80" in list_template_sets()


def test_both_placeholders_and_underscores():
    assert (
        format_prompt("a photo of a {c}.", "golden_retriever") == "a photo of a golden retriever."
    )
    assert format_prompt("{} texture.", "banded") == "banded texture."
    assert load_templates("itap of a {c}.") == ("itap of a {c}.",)
    assert format_prompts(["a {}.", "the {c}!"], ["x", "y"]) == ["a x.", "the x!", "a y.", "the y!"]


def test_template_errors():
    with pytest.raises(InvalidParameterError, match="Unknown template set 'imagenet8'"):
        load_templates("imagenet8")
    with pytest.raises(InvalidParameterError, match="exactly one"):
        load_templates(["a photo of {} and {}"])
    with pytest.raises(InvalidParameterError, match="coop:<dataset>"):
        load_templates("coop:mnist")
    with pytest.raises(InvalidParameterError):
        load_templates([])


def test_template_json_file(tmp_path: Path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"templates": ["a sketch of a {}.", "a {c} in the wild."]}))
    assert load_templates(path) == ("a sketch of a {}.", "a {c} in the wild.")
    assert load_templates(str(path)) == load_templates(path)


def test_classset(tmp_path: Path):
    f = tmp_path / "classes.txt"
    f.write_text("# animals\ncat\n\ndog\n")
    classes = ClassSet.from_file(f)
    assert classes.names == ("cat", "dog") and classes.index("dog") == 1
    j = tmp_path / "classes.json"
    j.write_text(json.dumps(["a", "b"]))
    assert ClassSet.from_file(j).names == ("a", "b")
    with pytest.raises(InvalidParameterError, match="wrap it in a list"):
        as_classset("cat")
    with pytest.raises(InvalidParameterError, match="at least one"):
        ClassSet(())
    with pytest.raises(InvalidParameterError, match="not one of"):
        classes.index("bird")


def test_classset_file_that_is_not_utf8_or_not_json(tmp_path: Path):
    latin = tmp_path / "classes.txt"
    latin.write_bytes("caf\xe9\nthé\n".encode("latin-1"))
    with pytest.raises(InvalidParameterError, match=r"not UTF-8 text \(byte 0xe9 at offset 3\)"):
        ClassSet.from_file(latin)
    broken = tmp_path / "classes.json"
    broken.write_text('["a", "b"')
    with pytest.raises(InvalidParameterError, match="is not valid JSON"):
        ClassSet.from_file(broken)
