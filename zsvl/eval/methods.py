"""Built-in evaluation methods: thin adapters from the registry's context to zsvl's estimators."""

from __future__ import annotations

from typing import Any

import numpy as np

from zsvl.eval.registry import MethodContext, MethodResult, register
from zsvl.methods.zeroshot import ZeroShotClassifier


@register("zeroshot", description="CLIP zero-shot with the dataset's prompt templates")
def _zeroshot(ctx: MethodContext) -> MethodResult:
    templates = ctx.params.get("templates") or ctx.templates
    clf = ZeroShotClassifier(ctx.encoder, ctx.classes, templates=templates).fit()
    return MethodResult(clf.decision_function(ctx.X_test), {"templates": list(clf.templates_)})


@register("classname", description="class name alone ('{c}.'), CBD's baseline")
def _classname(ctx: MethodContext) -> MethodResult:
    clf = ZeroShotClassifier(ctx.encoder, ctx.classes, templates=["{}."]).fit()
    return MethodResult(clf.decision_function(ctx.X_test), {"templates": ["{}."]})


def _descriptor_file(ctx: MethodContext, style: str) -> str:
    """The suite's descriptor file for this dataset, or the packaged ``<folder>_<style>`` one."""
    return ctx.params.get("descriptors") or f"{ctx.dataset.folder}_{style}"


def _explanations(ctx: MethodContext, clf, n: int = 4) -> list[dict]:  # noqa: ANN001
    picks = np.linspace(0, len(ctx.X_test) - 1, num=min(n, len(ctx.X_test)), dtype=int)
    out = []
    for row, exp in zip(picks, clf.explain(ctx.X_test[picks], top=4), strict=True):
        out.append(
            {
                "source": ctx.test_sources[row],
                "label": exp.classname,
                "descriptors": [[e.descriptor, float(e.similarity)] for e in exp.evidence],
            }
        )
    return out


def _llm(ctx: MethodContext):  # noqa: ANN202 - an LLM client or None
    if "llm" not in ctx.params:
        return None
    from zsvl.text.llm import LLMConfig, OpenAIChatClient

    return OpenAIChatClient(LLMConfig(**ctx.params["llm"]))


@register("cbd", description="classification by description (mean of descriptor similarities)")
def _cbd(ctx: MethodContext) -> MethodResult:
    from zsvl.methods.descriptors import DescriptorClassifier

    source = _descriptor_file(ctx, "cbd")
    clf = DescriptorClassifier(ctx.encoder, source, ctx.classes, concept=ctx.params.get("concept"))
    clf.fit()
    return MethodResult(
        clf.decision_function(ctx.X_test),
        {"descriptors": str(source)},
        explanations=_explanations(ctx, clf),
    )


@register("cupl", description="CuPL: similarity to the mean of LLM-written sentences")
def _cupl(ctx: MethodContext) -> MethodResult:
    from zsvl.methods.descriptors import DescriptorClassifier

    source = _descriptor_file(ctx, "cupl")
    clf = DescriptorClassifier(ctx.encoder, source, ctx.classes, aggregation="mean_emb").fit()
    return MethodResult(clf.decision_function(ctx.X_test), {"descriptors": str(source)})


@register("waffle", seeded=True, description="WaffleCLIP: random descriptors matched to CBD's")
def _waffle(ctx: MethodContext) -> MethodResult:
    from zsvl.methods.descriptors import DescriptorClassifier

    source = ctx.params.get("descriptors") or f"{ctx.dataset.folder}_cbd"
    base = DescriptorClassifier(ctx.encoder, source, ctx.classes)
    clf = base.waffle_control(seeds=(ctx.seed,), kind=ctx.params.get("kind", "mixed")).fit()
    return MethodResult(
        clf.decision_function(ctx.X_test), {"matched_to": str(source), "seed": ctx.seed}
    )


@register("fudd", description="FuDD: follow-up differential descriptions of each image's top k")
def _fudd(ctx: MethodContext) -> MethodResult:
    from zsvl.methods.fudd import FuDDClassifier

    k = int(ctx.params.get("k", 10))
    llm = _llm(ctx)
    pairs = None if llm is not None else _descriptor_file(ctx, "fudd")
    # fit on the (unlabelled) test images: it asks for the class pairs their top k need
    clf = FuDDClassifier(ctx.encoder, ctx.classes, llm=llm, descriptors=pairs, k=k)
    scores = clf.fit(ctx.X_test).decision_function(ctx.X_test)
    stage1 = clf.stage1_scores(ctx.X_test)
    hyper = {"k": k, "pairs_used": int(clf.pairs_needed_), "all_pairs": int(clf.all_pairs_)}
    return MethodResult(
        scores,
        hyper,
        explanations=_explanations(ctx, clf),
        extra_scores={f"top{k}_ceiling": (stage1, k)},
    )


def _fewshot_inputs(ctx: MethodContext):  # noqa: ANN202 - (zero-shot head, shots, labels, val)
    """Draw K shots (CoOp protocol), encode their augmented views, and the few-shot val set."""
    from zsvl.data.augment import AugmentConfig, encode_shots
    from zsvl.data.fewshot import sample_few_shot, save_manifest

    draw = sample_few_shot(
        {"train": ctx.train, "val": ctx.val}, ctx.shots, ctx.seed, dataset=ctx.dataset.name
    )
    if ctx.workdir is not None:
        name = f"{ctx.dataset.name}_k{ctx.shots}_seed{ctx.seed}.json"
        save_manifest(draw, ctx.workdir / "fewshot" / name)
    config = AugmentConfig(n_views=int(ctx.params.get("n_views", 10)))
    shots = encode_shots(ctx.encoder, draw.train_paths, config=config, plain=False)
    val = None
    if draw.val_paths:
        X_val = ctx.encoder.encode_images(draw.val_paths).embeddings
        val = (X_val, np.asarray(draw.val_labels))
    zero_shot = ZeroShotClassifier(ctx.encoder, ctx.classes, templates=ctx.templates).fit()
    return zero_shot, shots, np.asarray(draw.train_labels), val


@register("tip", uses_shots=True, description="Tip-Adapter, alpha/beta from few-shot val")
def _tip(ctx: MethodContext) -> MethodResult:
    from zsvl.eval.protocol import tune_tip

    zero_shot, shots, y, val = _fewshot_inputs(ctx)
    adapter, search = tune_tip(zero_shot, shots, y, val=val, mode=ctx.params.get("mode", "auto"))
    return MethodResult(
        adapter.decision_function(ctx.X_test), dict(search.best), protocol=search.mode
    )


@register("gda", uses_shots=True, description="Gaussian discriminant analysis on the shots' views")
def _gda(ctx: MethodContext) -> MethodResult:
    from zsvl.eval.protocol import tune_gda

    zero_shot, shots, y, val = _fewshot_inputs(ctx)
    adapter, search = tune_gda(zero_shot, shots, y, val=val, mode=ctx.params.get("mode", "auto"))
    return MethodResult(
        adapter.decision_function(ctx.X_test), dict(search.best), protocol=search.mode
    )


@register("gda-em", description="unsupervised GDA: EM on the unlabelled test features")
def _gda_em(ctx: MethodContext) -> MethodResult:
    from zsvl.eval.protocol import tune_gda_em

    zero_shot = ZeroShotClassifier(ctx.encoder, ctx.classes, templates=ctx.templates).fit()
    adapter, search = tune_gda_em(zero_shot, ctx.X_test, val=None)
    return MethodResult(
        adapter.decision_function(ctx.X_test),
        dict(search.best),
        protocol="transductive (unlabelled test features)",
    )


def _caption_index(ctx: MethodContext):  # noqa: ANN202 - a CaptionIndex
    """``params.index`` (a built index folder), else the toy caption index under the data root."""
    from zsvl.index.build import build_index
    from zsvl.index.search import CaptionIndex

    if "index" in ctx.params:
        return CaptionIndex.load(ctx.params["index"], ctx.encoder)
    root = ctx.data_root
    corpus = root / "captions" / "toy_captions.txt" if root is not None else None
    if root is None or corpus is None or not corpus.is_file():
        raise ValueError(
            "caption-support needs a caption index: set [params.caption-support] index = "
            "'indexes/NAME' in the suite file (build one with `zsvl index build`)."
        )
    return build_index(
        corpus,
        ctx.encoder,
        root / "caption-index",
        max_memory="1G",
        shard_size=16384,
        batch_size=512,
    )


def caption_support_adapter(ctx: MethodContext) -> Any:
    """The unfitted caption-support adapter of a run (the toy caption index, the suite's
    templates, ``m`` captions per class from the method's params)."""
    from zsvl.methods.caption_support import CaptionSupportAdapter

    return CaptionSupportAdapter(
        ctx.encoder,
        ctx.classes,
        index=_caption_index(ctx),
        templates=list(ctx.templates),
        m=int(ctx.params.get("m", 32)),
    )


@register("caption-support", description="caption support set from a FAISS caption index")
def _caption_support(ctx: MethodContext) -> MethodResult:
    clf = caption_support_adapter(ctx).fit()
    return MethodResult(
        clf.decision_function(ctx.X_test), {"m": clf.m, "alpha": clf.alpha_, "beta": clf.beta_}
    )


@register("vocab-free", description="CaSED: names from retrieved captions, no class list used")
def _vocab_free(ctx: MethodContext) -> MethodResult:
    from zsvl.methods.vocab_free import VocabularyFreeClassifier

    k = int(ctx.params.get("k", 10))
    alpha = float(ctx.params.get("alpha", 0.7))
    clf = VocabularyFreeClassifier(ctx.encoder, _caption_index(ctx), k=k, alpha=alpha).fit()
    names = clf.predict_words(ctx.X_test).labels
    return MethodResult(
        None, {"k": k, "alpha": alpha}, protocol="vocabulary-free", predicted_names=list(names)
    )
