"""Issue 11.7: bad arguments give one clear error, also when everything is already cached."""

from __future__ import annotations

import numpy as np
import pytest

from zsvl.embed.cached import CachedEncoder
from zsvl.errors import CacheError, InvalidParameterError, ZsvlError
from zsvl.paths import zsvl_home

from .helpers import FakeEncoder, write_png


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_batch_size_is_refused_even_when_all_inputs_are_cached(fake, tmp_path, bad) -> None:
    enc = CachedEncoder(fake, enabled=True)
    png = write_png(tmp_path / "a.png", seed=3)
    enc.encode_texts(["a cat"])
    enc.encode_images([png])  # now both are cached: no batch would ever run
    calls = (len(fake.text_calls), len(fake.image_calls))
    with pytest.raises(InvalidParameterError, match="'batch_size' must be an int >= 1"):
        enc.encode_texts(["a cat"], batch_size=bad)
    with pytest.raises(InvalidParameterError, match="'batch_size' must be an int >= 1"):
        enc.encode_images([png], batch_size=bad)
    assert (len(fake.text_calls), len(fake.image_calls)) == calls
    assert enc.encode_texts(["a cat"], batch_size=np.int64(1)).shape == (1, 16)


def test_batch_size_is_refused_with_the_cache_off(tmp_path) -> None:
    enc = CachedEncoder(FakeEncoder(), enabled=False)
    with pytest.raises(InvalidParameterError, match="batch_size"):
        enc.encode_texts(["a cat"], batch_size=0)


def test_zsvl_home_pointing_at_a_file(tmp_path, monkeypatch) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    monkeypatch.setenv("ZSVL_HOME", str(afile))
    with pytest.raises(CacheError, match=r"ZSVL_HOME=.*not-a-folder' is a file, not a folder"):
        zsvl_home()
    monkeypatch.setenv("ZSVL_HOME", str(afile / "sub"))
    with pytest.raises(CacheError, match="lies under a file"):
        zsvl_home()


def test_zsvl_home_pointing_at_a_file_through_the_cli(tmp_path, monkeypatch, capsys) -> None:
    """The CLI prints one line and exits non-zero: no FileExistsError traceback."""
    from zsvl.cli import main

    afile = tmp_path / "home"
    afile.write_text("x")
    png = write_png(tmp_path / "a.png", seed=4)
    monkeypatch.setenv("ZSVL_HOME", str(afile))
    code = main(["classify", str(png), "--model", "toy", "--classes", "red", "blue"])
    err = capsys.readouterr().err
    assert code != 0 and "is a file, not a folder" in err and "Traceback" not in err
    assert issubclass(CacheError, ZsvlError)
