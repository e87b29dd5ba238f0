"""Tolerant parsing of LLM answers and the prompt files."""

from __future__ import annotations

import pytest

from zsvl.errors import InvalidParameterError
from zsvl.text.parsing import clean_item, parse_list, parse_pairs
from zsvl.text.prompts import list_prompts, load_prompt


@pytest.mark.parametrize(
    "text",
    [
        "- round\n- red in colour.\n- three corners",
        "* round\n* **red in colour**\n* three corners",
        "• round\n• red in colour\n• three corners",
        "1. round\n2) red in colour\n(3) three corners",
        "There are several useful visual features:\n- round\n- red in colour\n- three corners",
        '```json\n["round", "red in colour", "three corners"]\n```',
        '{"descriptors": ["round", "red in colour", "three corners."]}',
        "round\nred in colour\nthree corners",
        "- round\n- Round\n- red in colour\n\n- three corners\n",
    ],
)
def test_list_formats(text):
    assert [s.lower() for s in parse_list(text)] == ["round", "red in colour", "three corners"]


@pytest.mark.parametrize(
    "text", ["", "   ", None, "I am sorry, I cannot help with that.", "Here is the list:"]
)
def test_unparsable_answers_give_an_empty_list(text):
    assert parse_list(text) == []


def test_clean_item():
    assert clean_item('  "Red in  colour." ') == "Red in colour"
    assert clean_item("**bold** item;") == "bold item"


@pytest.mark.parametrize(
    "text",
    [
        '[{"attribute": "colour", "first": "a red shape", "second": "a blue shape"}]',
        '```json\n[{"attribute": "colour", "first": "a red shape.", "second": "a blue shape"}]\n```',
        '{"colour": ["a red shape", "a blue shape"]}',
        '[{"attr_type": "colour", "prompt_pair": ["a red shape", "a blue shape"]}]',
        "- colour: a red shape | a blue shape",
        'Sure! [{"attribute": "colour", "cat": "a red shape", "dog": "a blue shape"}] Hope it helps',
    ],
)
def test_pair_formats(text):
    assert parse_pairs(text) == [("colour", "a red shape", "a blue shape")]


def test_unparsable_pairs():
    assert parse_pairs("They look different.") == []
    assert parse_pairs('[{"attribute": "colour", "first": "", "second": "blue"}]') == []


def test_prompt_files_are_versioned_and_render():
    assert {"cbd", "cupl_describe", "cupl_identify", "cupl_caption", "fudd_pair", "concept"} <= set(
        list_prompts()
    )
    cbd = load_prompt("cbd")
    assert cbd.id == "cbd@v1" and len(cbd.sha256) == 64 and cbd.answer == "list"
    messages = cbd.render(c="red circle")
    assert messages[-1]["content"].endswith("to tell there is a red circle in a photo:")
    again = cbd.reask_messages(messages, "nonsense", c="red circle")
    assert [m["role"] for m in again] == ["user", "assistant", "user"]
    assert "red circle" in again[-1]["content"]
    pair = load_prompt("fudd_pair").render(a="cat", b="dog")
    assert pair[0]["role"] == "system" and "a cat look different from a dog" in pair[1]["content"]
    with pytest.raises(InvalidParameterError, match=r"needs a value for \{c\}"):
        cbd.render()
    with pytest.raises(InvalidParameterError, match="Unknown LLM prompt"):
        load_prompt("nope")


def test_changed_prompt_changes_hash(tmp_path):
    text = load_prompt("cbd")
    path = tmp_path / "cbd.txt"
    from zsvl.text.prompts import prompts_folder

    original = (prompts_folder() / "cbd.txt").read_text()
    path.write_text(original.replace("useful visual features", "visual features"))
    changed = load_prompt(path)
    assert changed.sha256 != text.sha256
    assert changed.render(c="x") != text.render(c="x")


def test_mention_finder_whole_words_and_own_name():
    from zsvl.text.parsing import MentionFinder

    finder = MentionFinder(["tree frog", "frog", "Tiger", "tiger_shark", "crane"])
    assert finder.others("a tree frog has sticky pads", own=0) == []
    assert finder.others("unlike a frog, it climbs", own=0) == [1]
    assert finder.others("smaller than a tree frog", own=1) == [0]
    assert finder.others("striped like a TIGER", own=3) == [2]
    assert finder.others("a tiger shark's stripes fade", own=2) == [3]  # "_" reads as a space
    assert finder.others("cranes and frogs", own=4) == []  # whole words only
    assert finder.others("a tiger-like pattern", own=4) == [2]
