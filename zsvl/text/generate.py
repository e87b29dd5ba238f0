"""Descriptor generation with an LLM: CBD lists, CuPL sentences, FuDD pairwise differences.

Every request goes through an :class:`~zsvl.text.llm.LLMClient` (the OpenAI-compatible client
caches and retries); answers are parsed tolerantly (:mod:`zsvl.text.parsing`). An answer that
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

from zsvl.errors import InvalidParameterError, LLMOutputError
from zsvl.text.classes import ClassSet, as_classset
from zsvl.text.descriptors import DescriptorSet, PairAttribute
from zsvl.text.llm import LLMClient, LLMConfig, Messages, OpenAIChatClient
from zsvl.text.parsing import parse_list, parse_pairs
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


def _complete_many(llm: LLMClient, batch: list[Messages], desc: str) -> list[str]:
    many = getattr(llm, "complete_many", None)
    if many is None:
        return [llm.complete(m) for m in batch]
    from tqdm.auto import tqdm

    with tqdm(total=len(batch), desc=desc, unit="req", disable=None, file=sys.stderr,
              leave=False) as bar:
        return many(batch, progress=bar.update)


def ask_parsed(
    llm: LLMClient, prompt: PromptTemplate, fields: Sequence[dict[str, str]],
    parse: Callable[[str], list[Any]], *, on_failure: OnFailure = "raise",
) -> tuple[list[list[Any]], list[int]]:
    """Ask ``prompt`` once per ``fields`` entry; parse; re-ask once where the result is empty.

    Returns (parsed results, positions that failed twice). Failures raise LLMOutputError with
    ``on_failure="raise"``.
    """
    _check_policy(on_failure)
    messages = [prompt.render(**f) for f in fields]
    answers = _complete_many(llm, messages, prompt.name)
    parsed = [parse(a) for a in answers]
    used = list(messages)
    bad = [i for i, p in enumerate(parsed) if not p]
    if bad:
        logger.info("%d answers to %s could not be parsed; asking again once.", len(bad), prompt.id)
        retry = [prompt.reask_messages(messages[i], answers[i], **fields[i]) for i in bad]
        for i, msgs, answer in zip(bad, retry, _complete_many(llm, retry, prompt.name + " (again)"),
                                   strict=True):
            parsed[i], answers[i], used[i] = parse(answer), answer, msgs
    record = getattr(llm, "record_parsed", None)
    for msgs, result in zip(used, parsed, strict=True):
        if record is not None and result:
            record(msgs, [list(r) if isinstance(r, tuple) else r for r in result])
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


def _provenance(llm: LLMClient, style: str, prompts: list[PromptTemplate], **extra: Any) -> dict:
    from zsvl._version import __version__

    config = getattr(llm, "config", None)
    prov: dict[str, Any] = {
        "source": "llm",
        "style": style,
        "model": getattr(config, "model", type(llm).__name__),
        "endpoint": getattr(config, "base_url", None),
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
    classes: ClassSet | Sequence[str], llm: LLMClient, *, style: str = "cbd",
    concept: str | None = None, on_failure: OnFailure = "raise",
) -> DescriptorSet:
    """Ask the LLM about every class in the ``style``'s prompts; one DescriptorSet, label order."""
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
    lists = tuple(tuple(dict.fromkeys(items)) for items in per_class)
    prov = _provenance(llm, style, prompts, concept=concept, failures=sorted(failures) or None)
    return DescriptorSet(cs, lists, {}, prov)


def generate_pair_descriptions(
    classes: ClassSet | Sequence[str], pairs: Sequence[tuple[int, int]], llm: LLMClient, *,
    concept: str | None = None, on_failure: OnFailure = "raise", prompt: str = PAIR_PROMPT,
) -> dict[tuple[int, int], tuple[PairAttribute, ...]]:
    """FuDD differential descriptions for each pair (i, j) of labels; keys come back as i < j."""
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
    fields = [{"a": class_phrase(cs.names[i], concept), "b": class_phrase(cs.names[j], concept)}
              for i, j in keys]
    parsed, _ = ask_parsed(llm, template, fields, parse_pairs, on_failure=on_failure)
    return {
        key: tuple(PairAttribute(a, first, second) for a, first, second in triples)
        for key, triples in zip(keys, parsed, strict=True)
    }


def generate_descriptor_file(
    classes: ClassSet | Sequence[str] | str | Path, out: str | Path, *, style: str = "cbd",
    config: LLMConfig | None = None, offline: bool = False, concept: str | None = None,
    on_failure: OnFailure = "raise", cache_dir: str | Path | None = None,
) -> tuple[DescriptorSet, str]:
    """Generate descriptors (``style`` cbd, cupl, or fudd = every class pair) and save them.

    Returns the DescriptorSet and a one-line request/token summary.
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
        pairs = generate_pair_descriptions(cs, keys, client, concept=concept, on_failure=on_failure)
        failed = [f"{cs.names[i]} | {cs.names[j]}" for (i, j), v in pairs.items() if not v]
        prov = _provenance(client, "fudd", [load_prompt(PAIR_PROMPT)], concept=concept,
                           failures=failed or None)
        result = DescriptorSet(cs, tuple(() for _ in cs.names), pairs, prov)
    else:
        result = generate_descriptors(cs, client, style=style, concept=concept,
                                      on_failure=on_failure)
    usage = client.usage.as_dict()
    result = DescriptorSet(result.classes, result.descriptors, result.pairs,
                           {**result.provenance, "usage": usage})
    result.save(out)
    return result, client.usage.summary()
