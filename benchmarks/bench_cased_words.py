"""Benchmark: agreement of zsvl's CaSED candidate words with the reference's word sets.

The reference (altndrr/vic, ``default_vocab_transform``) turns an image's retrieved captions into
candidate words with regex clean-ups, inflect's singular, a minimum count and flair's
``pos-english-fast`` tagger. flair's model is a Hugging Face download, so the reference word sets
are computed here by a re-implementation of that pipeline (written in this file, not zsvl's) with
each tagger that is installed: spaCy (``--spacy-model``; the closest to flair, a statistical
tagger), TextBlob's pattern tagger (zsvl's default without spaCy) and zsvl's heuristic. Reported
as the mean Jaccard index of the per-image word sets (two empty sets count as 1):

- pipeline: zsvl's default extractor vs the re-implementation, same tagger (should be 1.0);
- tagger: the re-implementation with one tagger vs another;
- earlier zsvl: the old phrase extractor (own cleaner, singulariser and heuristic tagger) vs the
  re-implementation, as is and restricted to single words.

Captions: (a) the 10 captions the toy CLIP retrieves (dedupe 0.94) from a toy caption index for
each of ``--images`` ToyFine test images; (b) the packaged CuPL sentences of the toy datasets,
10 per group, one class per group (LLM-style English). Writes benchmarks/results/cased_words.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
KEEP = {"NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS", "VBG", "VBN"}
DROP = (
    r"\b(?:image|photo|picture|thumbnail|logo|symbol|clipart|portrait|painting|illustration|"
    r"icon|profile)\b"
)


def vic_reference(captions, tag) -> set[str]:
    """vic's default_vocab_transform on one image's captions (re-implemented for this check)."""
    import inflect

    engine = inflect.engine()
    text = " ".join(captions)
    for pattern, repl in (
        (r"<[^>]+>", ""),
        (r"http\S+", ""),
        (r"[^\w\s\-\.\'\&]", ""),
        (r"\.\w+", ""),
        (r"[_\-]", " "),
    ):
        text = re.sub(pattern, repl, text)
    text = " ".join(w for w in text.split() if len(w) >= 3)
    text = re.sub(r"[^a-zA-Z\s]", "", text).lower()
    words = text.split()
    for i, w in enumerate(words):
        if w.endswith("s") and w[-2:] not in ("ss", "us", "is") and w[-3:] not in ("ies", "oes"):
            words[i] = engine.singular_noun(w) or w
    words = re.sub(DROP, "", " ".join(words), flags=re.IGNORECASE).split()
    counts = Counter(words)
    top = max(counts.values(), default=0)
    need = top if 2 > top else 2
    words = [w for w in words if counts[w] >= need]
    if not words:
        return set()
    return {w for w, t in zip(words, tag(words), strict=True) if t in KEEP}


def jaccard(a: set[str], b: set[str]) -> float:
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def mean_jaccard(xs, ys) -> float:
    return float(np.mean([jaccard(set(x), set(y)) for x, y in zip(xs, ys, strict=True)]))


def retrieved_groups(model: str, n_images: int, corpus_lines: int, work: Path) -> list[list[str]]:
    from zsvl.embed import load_model
    from zsvl.index.build import build_index
    from zsvl.toy.captions import write_caption_corpus
    from zsvl.toy.suite import get_toy_dataset, render_split

    enc = load_model(model, device="cpu")
    corpus = write_caption_corpus(work / "captions.txt", corpus_lines, seed=0)
    index = build_index(
        corpus, enc, work / "index", max_memory="1G", shard_size=16384, batch_size=512
    )
    images, _ = render_split(get_toy_dataset("ToyFine"), "test")
    X = enc.encode_images(list(images[:n_images])).embeddings
    return [list(c) for c in index.search(X, 10, dedupe=0.94).captions]


def sentence_groups() -> list[list[str]]:
    from zsvl.text.descriptors import load_descriptors

    groups = []
    for name in ("toy_fine_cupl", "toy_shapes_cupl", "toy_textures_cupl"):
        for items in load_descriptors(name).descriptors:
            groups += [list(items[i : i + 10]) for i in range(0, len(items), 10)]
    return groups


def compare(groups: list[list[str]], taggers: dict) -> dict:
    from zsvl.text.candidates import CandidateExtractor

    ref = {n: [vic_reference(g, t) for g in groups] for n, t in taggers.items()}
    out: dict = {
        "groups": len(groups),
        "mean_reference_words": {n: float(np.mean([len(s) for s in r])) for n, r in ref.items()},
    }
    out["pipeline"] = {
        n: mean_jaccard([CandidateExtractor(tagger=t)(g) for g in groups], ref[n])
        for n, t in taggers.items()
    }
    names = list(taggers)
    out["tagger"] = {
        f"{a} vs {b}": mean_jaccard(ref[a], ref[b])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    old = CandidateExtractor(style="phrases", tagger="heuristic")
    old_sets = [old(g) for g in groups]
    out["earlier_zsvl"] = {n: mean_jaccard(old_sets, r) for n, r in ref.items()}
    out["earlier_zsvl_single_words"] = {
        n: mean_jaccard([[w for w in s if " " not in w] for s in old_sets], r)
        for n, r in ref.items()
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--corpus-lines", type=int, default=20_000)
    parser.add_argument("--spacy-model", default="en_core_web_sm")
    parser.add_argument("--out", default=str(HERE / "results" / "cased_words.json"))
    args = parser.parse_args()

    from zsvl.text.pos import get_tagger, penn_tag

    taggers = {}
    try:
        taggers["spacy"] = get_tagger("spacy", spacy_model=args.spacy_model)[1]
    except Exception as exc:  # noqa: BLE001 - report and go on without it
        print(f"spaCy tagger unavailable ({exc}); skipped")
    taggers["textblob"] = get_tagger("textblob")[1]
    heuristic = get_tagger("heuristic")[1]
    taggers["heuristic"] = lambda toks: [
        penn_tag(w, t) for w, t in zip(toks, heuristic(toks), strict=True)
    ]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zsvl-bench-words-") as tmp:
        retrieved = retrieved_groups(args.model, args.images, args.corpus_lines, Path(tmp))
    result = {
        "benchmark": "cased_words",
        "spacy_model": args.spacy_model if "spacy" in taggers else None,
        "retrieved_toy_captions": compare(retrieved, taggers),
        "cupl_sentences": compare(sentence_groups(), taggers),
        "seconds": time.perf_counter() - start,
        "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    for corpus in ("retrieved_toy_captions", "cupl_sentences"):
        r = result[corpus]
        print(
            f"{corpus} ({r['groups']} groups): pipeline {r['pipeline']}; tagger {r['tagger']}; "
            f"earlier zsvl {r['earlier_zsvl']} (single words {r['earlier_zsvl_single_words']})"
        )


if __name__ == "__main__":
    main()
