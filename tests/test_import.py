"""`import zsvl` is cheap: no torch, faiss, openai or open_clip, and no side effects."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_zsvl_loads_no_heavy_modules():
    code = (
        "import sys, os, warnings; before = dict(os.environ); filters = list(warnings.filters);"
        "import zsvl;"
        "heavy = [m for m in ('torch', 'faiss', 'openai', 'open_clip', 'sklearn') if m in sys.modules];"
        "import json; print(json.dumps({'heavy': heavy, 'env_same': before == dict(os.environ),"
        " 'filters_same': filters == list(warnings.filters), 'version': zsvl.__version__}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["heavy"] == []
    assert report["env_same"] and report["filters_same"]
    assert report["version"].count(".") == 2


def test_public_names_resolve_lazily():
    import zsvl

    assert callable(zsvl.classify) and callable(zsvl.load_model)
    assert zsvl.ZeroShotClassifier.__name__ == "ZeroShotClassifier"
    assert set(zsvl.__all__) <= set(dir(zsvl))
