"""Descriptor generation with an LLM: CBD lists, CuPL sentences, FuDD pairwise differences.

Every request goes through an :class:`~zsvl.text.llm.LLMClient` (the OpenAI-compatible client
caches and retries); answers are parsed tolerantly (:mod:`zsvl.text.parsing`), and a generated
description that names another class of the set is reported (or dropped, ``on_mention``). An answer that
cannot be parsed is asked again once (the re-ask text lives in the prompt file); if that fails
too, ``on_failure="raise"`` stops with the classes named, and ``on_failure="empty"`` records the
class (or pair) as empty in the provenance's ``failures`` and logs a warning. Nothing is
dropped silently.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from zsvl.classes import ClassSet, as_classset
from zsvl.errors import InvalidParameterError, LLMOutputError
from zsvl.text.descriptors import DescriptorSet, PairAttribute
from zsvl.text.llm import LLMClient, LLMConfig, Messages, OpenAIChatClient
from zsvl.text.parsing import MentionFinder, parse_list, parse_pairs
from zsvl.text.prompts import PromptTemplate, load_prompt

__all__ = [
    "STYLES",
    "PAIR_PROMPT",
    "generate_descriptors",
    "generate_pair_descriptions",
    "generate_descriptor_file",
    "class_phrase",
]

logger = logging.getLogger(__name__)

STYLES: dict[str, tuple[str, ...]] = {  # style -> prompt files asked for every class
    "cbd": ("cbd",),
    "cupl": ("cupl_describe", "cupl_identify", "cupl_caption"),
}
PAIR_PROMPT = "fudd_pair"
OnFailure = Literal["raise", "empty"]
OnMention = Literal["report", "drop"]


def class_phrase(name: str, concept: str | None = None) -> str:
    """How a class reads inside an LLM prompt (underscores as spaces, optional concept)."""
    name = name.replace("_", " ").strip()
    if not concept:
        return name
    phrase = load_prompt("concept").phrase or "{c} ({concept})"
    return phrase.replace("{c}", name).replace("{concept}", concept)


def _check_policy(on_failure: str) -> None:
    if on_failure not in ("raise", "empty"):
        raise InvalidParameterError(f"on_failure must be 'raise' or 'empty'. Got {on_failure!r}.")


def _complete_many(
    llm: LLMClient, batch: list[Messages], desc: str, parse: Callable[[str], list[Any]]
) -> list[str]:
    """Answers in order; an OpenAI-style client is told which answers parse (see llm.py)."""
    many = getattr(llm, "complete_many", None)
    if many is None:
        return [llm.complete(m) for m in batch]
    from tqdm.auto import tqdm

    with tqdm(
        total=len(batch), desc=desc, unit="req", disable=None, file=sys.stderr, leave=False
    ) as bar:
        return many(batch, progress=bar.update, validate=lambda _i, text: parse(text))


def ask_parsed(
    llm: LLMClient,
    prompt: PromptTemplate,
    fields: Sequence[dict[str, str]],
    parse: Callable[[str], list[Any]],
    *,
    on_failure: OnFailure = "raise",
) -> tuple[list[list[Any]], list[int]]:
    """Ask ``prompt`` once per ``fields`` entry; parse; re-ask once where the result is empty.

    Returns (parsed results, positions that failed twice). Failures raise LLMOutputError with
    ``on_failure="raise"``. Unparsable answers are never served from the cache again (a rerun
    asks anew), except offline, where the replay follows the recorded path.
    """
    _check_policy(on_failure)
    messages = [prompt.render(**f) for f in fields]
    answers = _complete_many(llm, messages, prompt.name, parse)
    parsed = [parse(a) for a in answers]
    bad = [i for i, p in enumerate(parsed) if not p]
    if bad:
        logger.info("%d answers to %s could not be parsed; asking again once.", len(bad), prompt.id)
        retry = [prompt.reask_messages(messages[i], answers[i], **fields[i]) for i in bad]
        again = _complete_many(llm, retry, prompt.name + " (again)", parse)
        for i, answer in zip(bad, again, strict=True):
            parsed[i], answers[i] = parse(answer), answer
    failed = [i for i, p in enumerate(parsed) if not p]
    if failed:
        what = [", ".join(fields[i].values()) for i in failed]
        msg = (
            f"{len(failed)} of {len(fields)} answers to prompt {prompt.id} could not be parsed, "
            f"even after asking again: {what[:10]}. Last answer began: "
            f"{answers[failed[0]][:160]!r}."
        )
        if on_failure == "raise":
            raise LLMOutputError(msg + " Pass on_failure='empty' to record them as empty.")
        logger.warning("%s Recorded as empty (on_failure='empty').", msg)
    return parsed, failed


def screen_mentions(
    cs: ClassSet, texts: Sequence[tuple[int, str]], *, on_mention: OnMention = "report"
) -> tuple[list[bool], list[dict[str, str]]]:
    """Find generated texts that name another class of ``cs`` (a leak between classes).

    texts : (label the text describes, text) pairs.
    Returns (keep flag per text, one report record per offending text). With ``"report"`` every
    text is kept and the records go to the provenance and a warning; ``"drop"`` removes them.
    """
    if on_mention not in ("report", "drop"):
        raise InvalidParameterError(f"on_mention must be 'report' or 'drop'. Got {on_mention!r}.")
    finder = MentionFinder(cs.names)
    keep, found = [], []
    for label, text in texts:
        others = finder.others(text, label)
        keep.append(not others or on_mention == "report")
        if others:
            found.append(
                {
                    "class": cs.names[label],
                    "text": text,
                    "names": ", ".join(cs.names[o] for o in others),
                }
            )
    if found:
        action = "dropped" if on_mention == "drop" else "kept (on_mention='report')"
        logger.warning(
            "%d generated descriptions name another class of the set and were %s; first: "
            "%r for %r names %r.",
            len(found),
            action,
            found[0]["text"],
            found[0]["class"],
            found[0]["names"],
        )
    return keep, found


def _provenance(llm: LLMClient, style: str, prompts: list[PromptTemplate], **extra: Any) -> dict:
    from zsvl._version import __version__

    config = getattr(llm, "config", None)
    prov: dict[str, Any] = {
        "source": "llm",
        "style": style,
        "model": getattr(config, "model", type(llm).__name__),
        "endpoint": getattr(llm, "endpoint", getattr(config, "base_url", None)),
        "temperature": getattr(config, "temperature", None),
        "max_tokens": getattr(config, "max_tokens", None),
        "seed": getattr(config, "seed", None),
        "prompts": [p.provenance() for p in prompts],
        "created": time.strftime("%Y-%m-%d"),
        "zsvl_version": __version__,
    }
    prov.update({k: v for k, v in extra.items() if v is not None})
    return prov


def generate_descriptors(
    classes: ClassSet | Sequence[str],
    llm: LLMClient,
    *,
    style: str = "cbd",
    concept: str | None = None,
    on_failure: OnFailure = "raise",
    on_mention: OnMention = "report",
) -> DescriptorSet:
    """Ask the LLM about every class in the ``style``'s prompts; one DescriptorSet, label order.

    Descriptors that name another class of the set are listed in ``provenance["mentions"]``
    (and a warning); ``on_mention="drop"`` also removes them.
    """
    if style not in STYLES:
        raise InvalidParameterError(f"style must be one of {sorted(STYLES)}. Got {style!r}.")
    cs = as_classset(classes)
    prompts = [load_prompt(name) for name in STYLES[style]]
    fields = [{"c": class_phrase(n, concept)} for n in cs.names]
    per_class: list[list[str]] = [[] for _ in cs.names]
    failures: set[str] = set()
    for prompt in prompts:
        parsed, failed = ask_parsed(llm, prompt, fields, parse_list, on_failure=on_failure)
        failures.update(f"{cs.names[i]} ({prompt.name})" for i in failed)
        for items, new in zip(per_class, parsed, strict=True):
            items.extend(new)
    flat = [(label, d) for label, items in enumerate(per_class) for d in dict.fromkeys(items)]
    keep, mentions = screen_mentions(cs, flat, on_mention=on_mention)
    lists: list[list[str]] = [[] for _ in cs.names]
    for (label, text), kept in zip(flat, keep, strict=True):
        if kept:
            lists[label].append(text)
    prov = _provenance(
        llm,
        style,
        prompts,
        concept=concept,
        failures=sorted(failures) or None,
        mentions=mentions or None,
    )
    return DescriptorSet(cs, tuple(tuple(items) for items in lists), {}, prov)


def generate_pair_descriptions(
    classes: ClassSet | Sequence[str],
    pairs: Sequence[tuple[int, int]],
    llm: LLMClient,
    *,
    concept: str | None = None,
    on_failure: OnFailure = "raise",
    prompt: str = PAIR_PROMPT,
    on_mention: OnMention = "report",
    mentions: list[dict[str, str]] | None = None,
) -> dict[tuple[int, int], tuple[PairAttribute, ...]]:
    """FuDD differential descriptions for each pair (i, j) of labels; keys come back as i < j.

    A description of one class that names another class of the set is reported (appended to
    ``mentions`` when given, and a warning), and removed with ``on_mention="drop"``.
    """
    cs = as_classset(classes)
    keys = sorted({(min(int(i), int(j)), max(int(i), int(j))) for i, j in pairs})
    bad = [k for k in keys if k[0] == k[1] or k[0] < 0 or k[1] >= len(cs)]
    if bad:
        raise InvalidParameterError(
            f"Pairs must name two different labels < {len(cs)}. Got {bad[:5]}."
        )
    if not keys:
        return {}
    template = load_prompt(prompt)
    fields = [
        {"a": class_phrase(cs.names[i], concept), "b": class_phrase(cs.names[j], concept)}
        for i, j in keys
    ]
    parsed, _ = ask_parsed(llm, template, fields, parse_pairs, on_failure=on_failure)
    texts = [
        (label, text)
        for (i, j), triples in zip(keys, parsed, strict=True)
        for _, first, second in triples
        for label, text in ((i, first), (j, second))
    ]
    keep, found = screen_mentions(cs, texts, on_mention=on_mention)
    if mentions is not None:
        mentions.extend(found)
    out: dict[tuple[int, int], tuple[PairAttribute, ...]] = {}
    pos = 0  # position of the pair's first text in ``texts``/``keep``
    for key, triples in zip(keys, parsed, strict=True):
        attrs = []
        for attribute, first, second in triples:
            if keep[pos] and keep[pos + 1]:
                attrs.append(PairAttribute(attribute, first, second))
            pos += 2
        out[key] = tuple(attrs)
    return out


def generate_descriptor_file(
    classes: ClassSet | Sequence[str] | str | Path,
    out: str | Path,
    *,
    style: str = "cbd",
    config: LLMConfig | None = None,
    offline: bool = False,
    concept: str | None = None,
    on_failure: OnFailure = "raise",
    cache_dir: str | Path | None = None,
    on_mention: OnMention = "report",
) -> tuple[DescriptorSet, str]:
    """Generate descriptors (``style`` cbd, cupl, or fudd = every class pair) and save them.

    Returns the DescriptorSet and a one-line request/token summary (with a count of descriptions
    that name another class, when there are any).
    """
    from zsvl.text.llm_cache import LLMCache

    if isinstance(classes, str | Path):
        cs = ClassSet.from_file(classes)
    else:
        cs = as_classset(classes)
    client = OpenAIChatClient(config, cache=LLMCache(cache_dir), offline=offline)
    if style == "fudd":
        n = len(cs)
        keys = [(i, j) for i in range(n) for j in range(i + 1, n)]
        found: list[dict[str, str]] = []
        pairs = generate_pair_descriptions(
            cs,
            keys,
            client,
            concept=concept,
            on_failure=on_failure,
            on_mention=on_mention,
            mentions=found,
        )
        failed = [f"{cs.names[i]} | {cs.names[j]}" for (i, j), v in pairs.items() if not v]
        prov = _provenance(
            client,
            "fudd",
            [load_prompt(PAIR_PROMPT)],
            concept=concept,
            failures=failed or None,
            mentions=found or None,
        )
        result = DescriptorSet(cs, tuple(() for _ in cs.names), pairs, prov)
    else:
        result = generate_descriptors(
            cs, client, style=style, concept=concept, on_failure=on_failure, on_mention=on_mention
        )
    usage = client.usage.as_dict()
    result = DescriptorSet(
        result.classes, result.descriptors, result.pairs, {**result.provenance, "usage": usage}
    )
    result.save(out)
    summary = client.usage.summary()
    named = len(result.provenance.get("mentions") or ())
    if named:
        verb = "dropped" if on_mention == "drop" else "kept; see provenance.mentions"
        summary += f"; {named} descriptions name another class ({verb})"
    return result, summary
