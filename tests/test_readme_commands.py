"""Every shell command in README.md's ```bash blocks runs as written (network-free).

README.md is parsed when the test runs, so a new or edited command is checked without touching
this file. The commands run in README order in one working folder (a later command may use what
an earlier one wrote, e.g. ``zsvl report results/`` after ``zsvl eval``), with:

- ``HOME`` a fresh folder whose ``~/data`` is the toy suite (CoOp layout), ``ZSVL_HOME`` the
  test session's, ``HF_HUB_OFFLINE=1``, ``PYTHONPATH`` this checkout;
- in the working folder: ``photos/`` (toy images), ``img1.jpg``, ``img2.jpg``, ``a.jpg``,
  ``b.png``, ``classes.txt`` and ``pets.txt`` (toy class names, one per line), ``shots/<class>/``
  (3 labelled images per class), ``captions.txt`` (2,000 toy captions);
- rewrites, because no real weights, data or LLM endpoint exist offline: a real model spec
  (``--model ViT-B-32:...``, or none where zsvl's default would load real weights) becomes
  ``--model toy``; ``--suite coop11`` becomes ``--suite toy`` (``--datasets`` dropped); an LLM
  command (``zsvl descriptors generate``) talks to the test's local OpenAI-compatible server;
  ``make demo`` runs ``zsvl demo`` (the target's command); ``python PATH`` runs this Python on
  the checkout's file; ``export K=V`` sets K for the later commands.
- not run, with the reason given: ``make test``/``test-slow``/``bench``/``lint``/``toy-model``
  and ``pip install`` (they rebuild environments or run this suite itself), ``source``.

A command of another kind fails the test: teach it here. The fast test only parses every zsvl
command with zsvl's own argument parser; the slow one runs them all. ``ZSVL_README=draft.md``
checks a draft instead of README.md.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
README = Path(os.environ.get("ZSVL_README", REPO / "README.md"))  # another file: a draft
SHELL_LANGS = {"bash", "sh", "shell", "console"}
TOY = "toy"
NOT_RUN = {
    "test": "runs this test suite itself",
    "test-slow": "runs this test suite itself",
    "bench": "benchmarks (minutes to hours)",
    "lint": "a linter run, not a zsvl command",
    "toy-model": "retrains the toy model (about 15 minutes)",
    "clean": "deletes the environment",
}
LLM_COMMANDS = {("descriptors", "generate")}
MODEL_DEFAULT_COMMANDS = {"classify", "fit"}  # commands whose default model is real weights
# Scripts whose real input cannot exist offline (CoOp-11 records: the suite is rewritten to the toy
# one): they must give their documented hint and exit status instead of a result.
EXPECTED_OFFLINE = {
    "examples/compare_published.py": (1, "No CoOp-11 records"),
}


@dataclass
class Command:
    line: int  # line of README.md where the command starts
    text: str  # as written (continuations joined)
    argv: list[str]


def _strip_comment(text: str) -> str:
    """Drop a shell comment: '#' at a word start outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def readme_commands(path: Path = README) -> list[Command]:
    """Shell commands of the README's ```bash (sh, shell, console) blocks, in order."""
    out: list[Command] = []
    lang, pending, start = None, "", 0
    for no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```\s*([\w-]*)", raw)
        if fence:
            lang = None if lang is not None else fence.group(1).lower()
            pending = ""
            continue
        if lang not in SHELL_LANGS:
            continue
        line = raw[2:] if lang == "console" and raw.startswith("$ ") else raw
        line = _strip_comment(line).rstrip()
        if not pending:
            start = no
        pending = f"{pending} {line.strip()}" if pending else line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending:
            for part in re.split(r"\s(?:&&|;)\s", pending):
                out.append(Command(start, part.strip(), shlex.split(part)))
        pending = ""
    return out


def _zsvl_words(argv: list[str]) -> list[str]:
    """The subcommand words of a zsvl argv (after leading global flags)."""
    words = []
    for token in argv[1:]:
        if token.startswith("-"):
            if words:
                break
            continue
        words.append(token)
        if len(words) == 2:
            break
    return words


def _set_option(argv: list[str], flag: str, value: str | None) -> list[str]:
    """Replace ``flag VALUE`` (or ``flag=VALUE``); append when absent; drop when value is None."""
    out, i, found = [], 0, False
    while i < len(argv):
        token = argv[i]
        if token == flag:
            found = True
            i += 2
            if value is not None:
                out += [flag, value]
            continue
        if token.startswith(flag + "="):
            found = True
            i += 1
            if value is not None:
                out += [flag, value]
            continue
        out.append(token)
        i += 1
    if not found and value is not None:
        out += [flag, value]
    return out


def _option(argv: list[str], flag: str) -> str | None:
    for i, token in enumerate(argv):
        if token == flag and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def rewrite(cmd: Command, world: dict) -> tuple[list[str] | None, str]:
    """(argv to run, note); argv None means "not run" and the note says why."""
    argv = list(cmd.argv)
    head = argv[0]
    if head == "make":
        target = argv[1] if len(argv) > 1 else "demo"
        if target == "demo":
            return [sys.executable, "-m", "zsvl.cli", "demo"], "make demo -> zsvl demo"
        if target in NOT_RUN:
            return None, NOT_RUN[target]
        raise AssertionError(f"README line {cmd.line}: unknown make target {target!r}")
    if head in ("source", "."):
        return None, "shell setup"
    if head in ("pip", "pip3") or argv[:3] == ["python", "-m", "pip"]:
        return None, "installs packages"
    if head == "export":
        return [], "environment"
    if head.endswith("zsvl"):  # zsvl, .venv/bin/zsvl
        return _rewrite_zsvl(argv, world)
    if head in ("python", "python3"):
        rest = argv[1:]
        if rest and not rest[0].startswith("-") and (REPO / rest[0]).is_file():
            rest[0] = str(REPO / rest[0])
        return [sys.executable, *rest], "python -> this interpreter"
    raise AssertionError(
        f"README line {cmd.line}: no rule to run {cmd.text!r}; teach tests/test_readme_commands.py"
    )


def _rewrite_zsvl(argv: list[str], world: dict) -> tuple[list[str], str]:
    words = _zsvl_words(argv)
    notes = []
    args = argv[1:]
    if tuple(words) in LLM_COMMANDS:
        args = _set_option(args, "--model", world["llm_model"])
        args = _set_option(args, "--base-url", world["llm_url"])
        notes.append("LLM -> local toy server")
    else:
        spec = _option(args, "--model")
        needs_default = (
            words[:1]
            and words[0] in MODEL_DEFAULT_COMMANDS
            and _option(args, "--classifier") is None
        )
        if (spec is not None and spec != TOY) or (spec is None and needs_default):
            args = _set_option(args, "--model", TOY)
            notes.append(f"--model {spec or '(default)'} -> toy")
        if (
            words[:1] == ["index"]
            and words[1:] == ["build"]
            and spec is None
            and _option(args, "--recipe") is None
        ):
            args = _set_option(args, "--model", TOY)
    if _option(args, "--suite") == "coop11":
        args = _set_option(args, "--suite", "toy")
        args = _set_option(args, "--datasets", None)
        notes.append("coop11 -> toy suite")
    return [sys.executable, "-m", "zsvl.cli", *args], "; ".join(notes)


def _expand_home(token: str, home: str) -> str:
    """The shell's tilde expansion, with the test's HOME (not this process's)."""
    if token == "~" or token.startswith("~/"):
        return home + token[1:]
    return token


# -- the fast check: every command is understood and every zsvl command parses --------------
def test_readme_has_commands_and_each_is_understood():
    from zsvl.cli import build_parser

    commands = readme_commands()
    assert len(commands) >= 5, "README.md's ```bash blocks hold fewer commands than expected"
    world = {"llm_model": "toy-llm", "llm_url": "http://127.0.0.1:9/v1"}
    for cmd in commands:
        argv, _ = rewrite(cmd, world)
        if argv and argv[1:3] == ["-m", "zsvl.cli"]:
            expanded = [_expand_home(a, "/home/user") for a in argv[3:]]
            try:
                build_parser().parse_args(expanded)
            except SystemExit as exc:  # argparse printed the reason on stderr
                pytest.fail(f"README line {cmd.line}: {cmd.text!r} does not parse ({exc})")


def test_parser_of_the_readme_itself(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "text\n```bash\nmake demo   # comment\nzsvl classify a.jpg --classes cat dog \\\n"
        "    --top-k 3    # more\nexport K=1 && zsvl models\n```\n```python\nx = 1\n```\n"
        "```\nnot shell\n```\n",
        encoding="utf-8",
    )
    got = [(c.line, c.argv) for c in readme_commands(readme)]
    assert got == [
        (3, ["make", "demo"]),
        (4, ["zsvl", "classify", "a.jpg", "--classes", "cat", "dog", "--top-k", "3"]),
        (6, ["export", "K=1"]),
        (6, ["zsvl", "models"]),
    ]
    cmd = Command(4, "", got[1][1])
    argv, note = rewrite(cmd, {"llm_model": "m", "llm_url": "u"})
    assert argv[-2:] == ["--model", "toy"] and "toy" in note


# -- the slow check: run them all ------------------------------------------------------------
@pytest.fixture(scope="module")
def world(toy_suite: Path, tmp_path_factory: pytest.TempPathFactory):
    from llm_server import MODEL, ToyLLMServer
    from PIL import Image

    from zsvl.data.splits import read_split_file
    from zsvl.toy.suite import TOY_DATASETS

    root = tmp_path_factory.mktemp("readme")
    home, work = root / "home", root / "work"
    home.mkdir()
    work.mkdir()
    (home / "data").symlink_to(toy_suite, target_is_directory=True)
    spec = TOY_DATASETS[0]
    split = read_split_file(toy_suite / spec.folder / spec.split_file)
    test, train = split["test"], split["train"]
    (work / "photos").mkdir()
    for i in range(6):
        shutil.copy(test.paths[i * 7], work / "photos" / f"photo{i}.png")
    for name, i in (("img1.jpg", 1), ("img2.jpg", 2), ("a.jpg", 3), ("b.png", 4)):
        Image.open(test.paths[i]).convert("RGB").save(work / name)
    names = "\n".join(train.classes.names) + "\n"
    (work / "classes.txt").write_text(names, encoding="utf-8")
    (work / "pets.txt").write_text(names, encoding="utf-8")
    counts: dict[int, int] = {}
    for path, label in zip(train.paths, train.labels, strict=True):
        if counts.get(label, 0) < 3:
            counts[label] = counts.get(label, 0) + 1
            folder = work / "shots" / train.classes.names[label]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / Path(path).name)
    captions = (toy_suite / "captions" / "toy_captions.txt").read_text().splitlines()[:2000]
    (work / "captions.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "OPENAI_API_KEY": "sk-test-readme",
        "ZSVL_PROGRESS": "0",
    }
    with ToyLLMServer() as server:
        yield {"work": work, "env": env, "llm_model": MODEL, "llm_url": server.base_url}


@pytest.mark.slow
def test_readme_commands_run_as_written(world):
    env = dict(world["env"])
    failures, ran = [], []
    for cmd in readme_commands():
        argv, note = rewrite(cmd, world)
        if argv is None:
            ran.append(f"line {cmd.line}: not run ({note}): {cmd.text}")
            continue
        if not argv:  # export
            for assignment in cmd.argv[1:]:
                key, _, value = assignment.partition("=")
                env[key] = value if value != "..." else env.get(key, "set-by-readme")
            continue
        argv = [_expand_home(a, env["HOME"]) for a in argv]
        done = subprocess.run(
            argv, cwd=world["work"], env=env, capture_output=True, text=True, timeout=3600
        )
        ran.append(
            f"line {cmd.line}: rc {done.returncode}{' (' + note + ')' if note else ''}: {cmd.text}"
        )
        script = cmd.argv[1] if cmd.argv[0] in ("python", "python3") and len(cmd.argv) > 1 else ""
        if script in EXPECTED_OFFLINE:
            rc, hint = EXPECTED_OFFLINE[script]
            if done.returncode != rc or hint not in done.stderr + done.stdout:
                failures.append(
                    f"README line {cmd.line}: {cmd.text!r} -> rc {done.returncode}, "
                    f"expected rc {rc} and {hint!r}\n  stderr: {done.stderr[-1500:]}"
                )
            continue
        if done.returncode != 0 or "Traceback" in done.stderr:
            failures.append(
                f"README line {cmd.line}: {cmd.text!r} -> rc {done.returncode}\n"
                f"  ran: {' '.join(argv)}\n  stderr: {done.stderr[-1500:]}"
            )
    print("\n".join(ran))
    assert not failures, "\n\n".join(failures)
