"""The descriptor store (zsvl schema) and the importers for CBD, CuPL and FuDD files."""

from __future__ import annotations

import json

import pytest

from zsvl.errors import InvalidParameterError
from zsvl.text.descriptors import DescriptorSet, PairAttribute, load_descriptors
from zsvl.text.importers import import_cbd, import_cupl, import_descriptors, import_fudd

PETS = ["Abyssinian", "Bengal", "Birman"]


def _set() -> DescriptorSet:
    pairs = {(2, 0): (PairAttribute("fur", "long white fur", "short ticked fur"),)}
    return DescriptorSet.from_lists(
        PETS,
        [["ticked coat"], ["spotted coat", "muscular"], []],
        pairs=pairs,
        provenance={"style": "cbd", "model": "m"},
    )


def test_round_trip_keeps_order_pairs_and_provenance(tmp_path):
    ds = _set()
    assert ds.pairs == {(0, 2): (PairAttribute("fur", "short ticked fur", "long white fur"),)}
    assert ds.pair(2, 0) == [("fur", "long white fur", "short ticked fur")]
    assert ds.pair(0, 1) == []
    path = ds.save(tmp_path / "d.json")
    data = json.loads(path.read_text())
    assert data["format"] == "zsvl-descriptors" and data["classes"] == PETS
    assert data["pairs"][0]["names"] == ["Abyssinian", "Birman"]
    back = load_descriptors(path)
    assert back == ds and back.empty_classes == ["Birman"]


def test_align_reorders_by_name_and_moves_pairs():
    ds = _set().align(["Birman", "Abyssinian", "Bengal"])
    assert ds.descriptors == ((), ("ticked coat",), ("spotted coat", "muscular"))
    assert ds.pair(0, 1) == [("fur", "long white fur", "short ticked fur")]
    with pytest.raises(
        InvalidParameterError, match=r"no entry for 1 of the 2 classes: \['Sphynx'\]"
    ):
        _set().align(["Sphynx", "Bengal"])


def test_validation_errors():
    with pytest.raises(InvalidParameterError, match="3 classes but 2 lists"):
        DescriptorSet.from_lists(PETS, [["a"], ["b"]])
    with pytest.raises(InvalidParameterError, match="Pair"):
        DescriptorSet.from_lists(PETS, [[], [], []], pairs={(1, 1): ()})
    with pytest.raises(InvalidParameterError, match="not a zsvl descriptor file"):
        DescriptorSet.from_dict({"Bengal": ["x"]})


def test_cbd_import_uses_the_class_list_not_key_order(tmp_path):
    # the CBD Pets defect: file keys in another order than the labels
    path = tmp_path / "cbd.json"
    path.write_text(
        '{"birman": ["It is a long-haired cat."], "Bengal": ["spotted coat."],'
        ' "Abyssinian": ["ticked coat", "ticked coat"], "Sphynx": ["hairless"]}'
    )
    ds, report = import_cbd(path, PETS)
    assert ds.classes.names == tuple(PETS)
    assert ds.descriptors == (("ticked coat",), ("spotted coat",), ("a long-haired cat",))
    assert report.extra == ["Sphynx"] and report.missing == []
    assert report.duplicate_descriptors == {"Abyssinian": 1}
    assert report.cleaned == 2
    assert not report.ok and "extra: 1" in str(report)


def test_import_reports_missing_duplicate_keys_and_empty(tmp_path, caplog):
    path = tmp_path / "cbd.json"
    path.write_text('{"Abyssinian": ["a"], "Abyssinian": ["b"], "Bengal": []}')
    ds, report = import_descriptors(path, PETS)
    assert report.schema == "cbd"
    assert report.duplicate_keys == ["Abyssinian"] and ds["Abyssinian"] == ("a", "b")
    assert report.missing == ["Birman"] and report.empty == ["Bengal"]
    assert "missing: 1 ('Birman')" in str(report)
    ds, report = import_cbd({"b": ["x"], "a": ["y"]})
    assert ds.classes.names == ("b", "a")
    assert "no class list given" in " ".join(report.notes)


def test_cupl_keeps_sentences_and_notes_repeated_names():
    ds, report = import_cupl(
        {"crane": ["A crane is a tall bird.", "It has long legs."]}, ["crane", "crane"]
    )
    assert (
        ds.descriptors[0] == ds.descriptors[1] == ("A crane is a tall bird.", "It has long legs.")
    )
    assert ds.provenance["style"] == "cupl"
    assert any("repeat" in n for n in report.notes)


def test_fudd_import(tmp_path):
    data = {
        "0_1": {
            "classes": [0, 1],
            "prompt_pairs": [
                {"attr_type": "coat", "prompt_pair": ["a ticked coat", "a spotted coat"]}
            ],
        },
        "2_0": {
            "classes": [2, 0],
            "prompt_pairs": [{"attr_type": "fur", "prompt_pair": ["long fur", "short fur"]}],
        },
        "0_2": {"classes": [0, 2], "prompt_pairs": []},
        "1_2": {"classes": [1, 2], "prompt_pairs": [{"attr_type": "x", "prompt_pair": ["a"]}]},
        "1_7": {"classes": [1, 7], "prompt_pairs": []},
        "bad": {},
    }
    path = tmp_path / "fudd.json"
    path.write_text(json.dumps(data))
    ds, report = import_descriptors(path, PETS)
    assert report.schema == "fudd" and report.pairs == 3
    assert ds.pair(0, 2) == [("fur", "short fur", "long fur")]
    assert ds.pair(1, 0) == [("coat", "a spotted coat", "a ticked coat")]
    assert report.duplicate_keys == ["0_2"] and report.extra == ["1_7"]
    assert len(report.invalid) == 2 and report.empty == ["1_2"]
    with pytest.raises(InvalidParameterError, match="keyed by label"):
        import_fudd(path, None)


def test_zsvl_schema_import_checks_classes(tmp_path):
    path = _set().save(tmp_path / "d.json")
    ds, report = import_descriptors(path, ["Bengal", "Abyssinian", "Birman"])
    assert report.schema == "zsvl" and report.missing == [] and report.empty == []
    assert ds.classes.names == ("Bengal", "Abyssinian", "Birman")
    _, report = import_descriptors(path, ["Bengal", "Sphynx"])
    assert report.missing == ["Sphynx"] and report.extra == ["Abyssinian", "Birman"]


def test_import_reports_classes_that_differ_only_in_case_or_underscore(tmp_path):
    from zsvl.text.importers import import_descriptors

    src = tmp_path / "cbd.json"
    src.write_text(
        json.dumps(
            {"crane": ["long legs"], "tree frog": ["sticky toe pads"], "oak": ["lobed leaves"]}
        )
    )
    ds, report = import_descriptors(src, ["Crane", "crane", "tree_frog", "Tree Frog", "oak"])
    assert not report.ok and len(report.collisions) == 2
    assert (
        "['Crane', 'crane']" in report.collisions[0]
        and "kept for 'crane' only" in report.collisions[0]
    )
    assert "used for none" in report.collisions[1]
    assert ds["crane"] == ("long legs",) and ds["Crane"] == ()  # never shared
    assert ds["tree_frog"] == () and ds["Tree Frog"] == () and ds["oak"] == ("lobed leaves",)
    assert report.missing == ["Crane", "tree_frog", "Tree Frog"]
    assert "collisions: 2" in str(report) and "PROBLEMS FOUND" in str(report)
    # two keys of the file that match one class loosely: ambiguous, reported, not guessed
    src.write_text(json.dumps({"Crane": ["a bird"], "crane": ["a machine"]}))
    ds, report = import_descriptors(src, ["CRANE"])
    assert ds["CRANE"] == () and "none was used" in report.collisions[0]
    # one name repeated in the class list keeps sharing, with a note (ImageNet has two cranes)
    src.write_text(json.dumps({"crane": ["long legs"]}))
    ds, report = import_descriptors(src, ["crane", "crane"])
    assert ds.descriptors == (("long legs",), ("long legs",)) and not report.collisions
