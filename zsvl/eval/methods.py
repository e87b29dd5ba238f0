"""Built-in evaluation methods: thin adapters from the registry's context to zsvl's estimators."""

from __future__ import annotations

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
