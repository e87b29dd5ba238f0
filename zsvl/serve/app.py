"""The FastAPI app: routes, request parsing, errors as JSON, bearer-token auth, the web page.

``create_app(service, token=None)`` returns an ASGI app. Every refused request gets a 4xx JSON
body ``{"error": {"status", "code", "message"}}`` that says what was wrong; the server goes on.
Routes: ``GET /`` (web page), ``GET /health``, ``GET /indexes``, ``POST /search``,
``POST /classify``, ``POST /name``; OpenAPI docs at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from zsvl._version import __version__
from zsvl.errors import ZsvlError
from zsvl.serve.limits import RequestError, check_count, check_k, check_texts, decode_upload
from zsvl.serve.service import SearchItem, Service

__all__ = ["create_app", "TextSearch"]

logger = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


class TextSearch(BaseModel):
    """JSON body of a text search: one ``query`` or a list of ``queries``."""

    model_config = ConfigDict(extra="forbid")
    query: str | None = Field(None, description="one text query")
    queries: list[str] | None = Field(None, description="several text queries")
    index: str | None = Field(None, description="index name (default: the first loaded)")
    k: int = Field(10, description="captions per query")
    dedupe: float | None = Field(
        None, description="drop captions with cosine >= this to a better one (e.g. 0.94)"
    )


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"status": status, "code": code, "message": message}},
        status_code=status,
        headers=headers,
    )


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (by header, and while reading)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            response = _error(413, "body_too_large", self._message(int(length)))
            return await response(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise RequestError(413, "body_too_large", self._message(seen))
            return message

        return await self.app(scope, limited, send)

    def _message(self, size: int) -> str:
        return (
            f"The request body is {size:,} bytes (or more); the server accepts at most "
            f"{self.max_bytes:,} (set by --max-upload-mb)."
        )


def create_app(service: Service, *, token: str | None = None) -> FastAPI:
    """The HTTP API over ``service``; with ``token``, API routes need ``Authorization: Bearer``."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        await service.stop()

    app = FastAPI(
        title="zsvl serve",
        version=__version__,
        lifespan=lifespan,
        description="Caption search, zero-shot and vocabulary-free classification "
        "with CLIP-style models (zsvl).",
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_upload_bytes)
    _add_error_handlers(app)
    limits = service.limits

    def authorized(request: Request) -> bool:
        if token is None:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode()
        )

    async def require_token(request: Request) -> None:
        if not authorized(request):
            raise RequestError(
                401,
                "unauthorized",
                "Missing or wrong bearer token; send "
                "'Authorization: Bearer <token>' (the server's --token).",
            )

    auth = [Depends(require_token)]

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health", summary="Liveness (no auth); model and batching counters with the token")
    async def health(request: Request) -> dict:
        base = {"status": "ok", "version": __version__, "auth": token is not None}
        return {**service.health(), **base} if authorized(request) else base

    @app.get("/indexes", dependencies=auth, summary="Loaded indexes (with manifests), classifiers")
    async def indexes() -> dict:
        return {
            "model": service.model,
            "fingerprint": service.encoder.fingerprint,
            "indexes": service.describe_indexes(),
            "classifiers": service.describe_classifiers(),
            "descriptor_sets": _descriptor_sets(),
        }

    @app.post(
        "/search",
        dependencies=auth,
        summary="Top-k captions for text or an image",
        openapi_extra=_body(
            {
                "application/json": {"schema": TextSearch.model_json_schema()},
                "multipart/form-data": {
                    "schema": _form_schema(
                        {
                            "image": "one image file (or several 'image' parts)",
                            "index": "index name",
                            "k": "captions per image",
                            "dedupe": "near-duplicate cosine",
                        },
                        files=("image",),
                    )
                },
            }
        ),
    )
    async def search(request: Request) -> JSONResponse:
        kind = _content_kind(request)
        if kind == "json":
            body = TextSearch.model_validate(await _json(request))
            texts = ([body.query] if body.query is not None else []) + (body.queries or [])
            if body.query is not None and body.queries is not None:
                raise RequestError(422, "bad_query", "Give either 'query' or 'queries', not both.")
            texts = check_texts(texts, limits, what="queries", max_count=limits.max_queries)
            k, name = check_k(body.k, limits), service.index_name(body.index)
            dedupe = _dedupe(body.dedupe)
            hits = await service.search([SearchItem(name, t, k, dedupe) for t in texts])
            return JSONResponse(
                {
                    "index": name,
                    "k": k,
                    "results": [{"query": t, "hits": h} for t, h in zip(texts, hits, strict=True)],
                }
            )
        form = await _form(request, limits)
        name = service.index_name(_field(form, "index"))
        k = check_k(_field(form, "k") or 10, limits)
        dedupe = _dedupe(_field(form, "dedupe"))
        files, images = await _images(form, ("image", "images"), limits)
        hits = await service.search_images(name, images, k, dedupe)
        return JSONResponse(
            {
                "index": name,
                "k": k,
                "results": [
                    {"query": f.filename, "hits": h} for f, h in zip(files, hits, strict=True)
                ],
            }
        )

    @app.post(
        "/classify",
        dependencies=auth,
        summary="Classify images with a class list or a saved classifier",
        openapi_extra=_body(
            {
                "multipart/form-data": {
                    "schema": _form_schema(
                        {
                            "images": "image files",
                            "classes": "JSON list or one name per line",
                            "classifier": "name of a loaded saved classifier",
                            "templates": "template set name or one template with {}",
                            "descriptors": "packaged descriptor set (explanations)",
                            "top_k": "classes listed per image",
                            "explain": "descriptors shown",
                        },
                        files=("images",),
                    )
                }
            }
        ),
    )
    async def classify(request: Request) -> JSONResponse:
        form = await _form(request, limits)
        classifier = _field(form, "classifier") or None
        descriptors = _field(form, "descriptors") or None
        raw = _field(form, "classes")
        classes = _class_list(raw, limits) if raw is not None else None
        if classifier is None and descriptors is None and classes is None:
            raise RequestError(
                422,
                "empty_classes",
                "Give 'classes' (a JSON list or one name "
                "per line), 'descriptors' or a loaded 'classifier'.",
            )
        top_k = check_k(_field(form, "top_k") or 5, limits, "top_k")
        explain = check_k(_field(form, "explain") or 3, limits, "explain")
        files, images = await _images(form, ("images", "image"), limits)
        out = await service.classify(
            images,
            classes=classes,
            classifier=classifier,
            templates=_field(form, "templates") or None,
            descriptors=descriptors,
            top_k=top_k,
            explain=explain,
        )
        for f, rec in zip(files, out["results"], strict=True):
            rec["image"] = f.filename
        return JSONResponse(out)

    @app.post(
        "/name",
        dependencies=auth,
        summary="Vocabulary-free names for images (CaSED)",
        openapi_extra=_body(
            {
                "multipart/form-data": {
                    "schema": _form_schema(
                        {
                            "images": "image files",
                            "index": "caption index name",
                            "top_k": "candidates listed",
                        },
                        files=("images",),
                    )
                }
            }
        ),
    )
    async def name(request: Request) -> JSONResponse:
        form = await _form(request, limits)
        index = service.index_name(_field(form, "index"))
        top_k = check_k(_field(form, "top_k") or 5, limits, "top_k")
        files, images = await _images(form, ("images", "image"), limits)
        results = await service.name(index, images, top_k)
        for f, rec in zip(files, results, strict=True):
            rec["image"] = f.filename
        return JSONResponse({"index": index, "results": results})

    return app


def _descriptor_sets() -> list[str]:
    from zsvl.paths import prompts_dir

    return sorted(p.stem for p in (prompts_dir() / "descriptors").glob("*.json"))


# -- request parsing -------------------------------------------------------------------------
def _content_kind(request: Request) -> str:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return "json"
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return "form"
    raise RequestError(
        415,
        "unsupported_media_type",
        "Send application/json (a text query) "
        f"or multipart/form-data (an image upload). Got {ctype or 'no type'!r}.",
    )


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(
            400, "malformed_json", f"The request body is not valid JSON: {exc}."
        ) from None


async def _form(request: Request, limits: Any) -> Any:
    if _content_kind(request) != "form":
        raise RequestError(
            415,
            "unsupported_media_type",
            "This endpoint takes multipart/form-data (image files and form fields).",
        )
    return await request.form(max_files=10 * limits.max_images, max_fields=100)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise RequestError(422, f"bad_{name}", f"Form field {name!r} must be text, not a file.")


def _dedupe(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = None
    if value is None or not -1 <= value <= 1:
        raise RequestError(422, "bad_dedupe", "dedupe must be a cosine in [-1, 1].")
    return value


def _class_list(raw: str, limits: Any) -> list[str]:
    text = raw.strip()
    if text.startswith(("[", "{")):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RequestError(
                400, "malformed_json", f"'classes' is not a valid JSON list: {exc}."
            ) from None
        if not isinstance(names, list):
            raise RequestError(422, "bad_classes", "'classes' must be a JSON list of names.")
    else:
        names = [n.strip() for n in text.replace(",", "\n").splitlines() if n.strip()]
    names = check_texts(names, limits, what="classes", max_count=limits.max_classes)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise RequestError(
            422, "bad_classes", f"Class names must be distinct; repeated: {dup[:5]}."
        )
    return names


async def _images(form: Any, fields: tuple[str, ...], limits: Any) -> tuple[list, list]:
    files = [f for name in fields for f in form.getlist(name) if isinstance(f, UploadFile)]
    texts = [name for name in fields for f in form.getlist(name) if not isinstance(f, UploadFile)]
    if texts:
        raise RequestError(422, "bad_image", f"Field {texts[0]!r} must be an uploaded file.")
    if not files:
        raise RequestError(422, "no_image", f"Upload at least one image as '{fields[0]}'.")
    check_count(len(files), limits.max_images, "images")
    datas = [await f.read() for f in files]
    images = [
        await run_in_threadpool(decode_upload, d, f.filename or f"image {i}", limits)
        for i, (f, d) in enumerate(zip(files, datas, strict=True))
    ]
    return files, images


def _body(content: dict) -> dict:
    return {"requestBody": {"required": True, "content": content}}


def _form_schema(fields: dict[str, str], files: tuple[str, ...]) -> dict:
    props = {
        name: (
            {"type": "array", "items": {"type": "string", "format": "binary"}, "description": desc}
            if name in files
            else {"type": "string", "description": desc}
        )
        for name, desc in fields.items()
    }
    return {"type": "object", "properties": props, "required": list(files)}


# -- errors ----------------------------------------------------------------------------------
def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, str(exc), headers)

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Any) -> JSONResponse:
        parts = [
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "malformed_form",
            404: "not_found",  # 400: the multipart parser's
            405: "method_not_allowed",
        }.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(ZsvlError)
    async def zsvl_error(request: Request, exc: ZsvlError) -> JSONResponse:
        return _error(400, type(exc).__name__, str(exc))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("Unhandled error on %s %s", request.method, request.url.path)
        return _error(
            500,
            "internal_error",
            f"The server failed on this request "
            f"({type(exc).__name__}); it keeps serving. See the server log.",
        )
