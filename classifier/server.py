"""`python serve.py`: a web page and a JSON API that label photos with one loaded model.

    GET  /          a page to drop or pick photos on; each is shown with its label and confidence
    POST /predict   multipart field `file` (one or more photos) -> {"predictions": [{filename, label,
                    confidence, probabilities, unknown_score}, ...]}; a photo it cannot read among
                    others gets {filename, "error": why} in its place; a request of refused photos
                    only -> 4xx {"error": "NAME: why"}
    GET  /health    the model, its classes and image size, and how many photos it has labelled

Uploaded photos are read from their bytes (no temporary file) exactly as predict.py reads files
(compiled.read_for_model for a fresh model.tflite, which needs no TensorFlow; else data.load_image),
so a photo gets the same label from both. Photos that arrive together share one model call (micro-batching): each decoded photo
waits in a queue, and one worker runs the model on everything queued, up to batch_size photos,
after waiting batch_wait seconds for company. Eight clients at once then cost
about one model call instead of eight, and the model is only ever called from one thread.
"""
import asyncio
import io
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import escape

import numpy as np
from PIL import Image

from .compiled import CompiledModel, read_for_model
from .pages import render
from .images import BadImage
from .prediction import Labels, inference_model, predict_batch, unknown_threshold
from .writers import json_fields

MB = 2**20
MULTIPART_ROOM = MB  # the part headers and boundaries around the files, allowed on top of their bytes


@dataclass(frozen=True)
class Limits:
    """What one request may send: refused beyond these, before the model sees anything."""
    max_file_bytes: int = 20 * MB       # a phone's JPEG is 2-10 MB
    max_pixels: int = 50_000_000        # a 48-megapixel phone photo passes; a decompression bomb does not
    max_files: int = 32                 # photos per request

    @property
    def max_request_bytes(self):
        return self.max_files * self.max_file_bytes + MULTIPART_ROOM


class Refused(Exception):
    """A request the server will not label: answered with status and {"error": message}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class Batcher:
    """Runs the model on the photos queued by all requests, many per call, on one thread of its own."""

    def __init__(self, model, batch_size=32, batch_wait=0.005):
        self.model, self.batch_size, self.batch_wait = model, batch_size, batch_wait
        self.queue = self.thread = self.worker = None
        self.calls = self.images = 0

    def start(self):
        """At the app's start-up, in its event loop: a new queue, model thread and worker each time."""
        self.queue = asyncio.Queue()
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        self.worker = asyncio.create_task(self.run())

    def stop(self):
        """At shutdown: a model call under way finishes before the process exits."""
        self.worker.cancel()
        self.thread.shutdown(wait=True)

    async def run(self):
        """The worker: one model call per turn, on whatever the requests queued meanwhile."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            if self.queue.qsize() + 1 < self.batch_size:
                await asyncio.sleep(self.batch_wait)  # the other photos of a burst arrive within a few ms
            while len(batch) < self.batch_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            waiting = [(pixels, future) for pixels, future in batch if not future.done()]  # a client that left is skipped
            if not waiting:
                continue
            try:
                rows = await loop.run_in_executor(self.thread, self._call, np.stack([pixels for pixels, _ in waiting]))
            except Exception as error:  # every request of the batch gets the error; the worker goes on
                rows = [error] * len(waiting)
            for (_, future), row in zip(waiting, rows):
                if not future.done():
                    future.set_exception(row) if isinstance(row, Exception) else future.set_result(row)

    def _call(self, images):
        self.calls, self.images = self.calls + 1, self.images + len(images)
        scores, unknown = predict_batch(self.model, images.astype(np.float32))
        return list(zip(scores, [None] * len(scores) if unknown is None else unknown))

    async def predict(self, images):
        """(probabilities, unknown score or None) per image (uint8 HxWx3), once the worker has run them."""
        if self.worker is None:
            raise RuntimeError("the model worker is not running: the app's lifespan was not started "
                               "(use `with TestClient(app)`, or run it under uvicorn)")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in images]
        for pixels, future in zip(images, futures):
            self.queue.put_nowait((pixels, future))
        return await asyncio.gather(*futures)


def read_photo(data, filename, image_size, max_pixels, compiled=False):
    """An uploaded file's pixels as the model sees them, read as predict.py reads a file; else Refused."""
    if not data:
        raise Refused(400, f"{filename}: empty file (0 bytes)")
    _check_pixels(data, filename, max_pixels)
    try:  # from the bytes received: the shared reader takes bytes as it takes a path
        if compiled:
            return read_for_model(data, image_size, filename)
        from .data import load_image
        return load_image(data, image_size, filename)
    except BadImage as bad:
        raise Refused(415, f"{filename}: {bad.reason}")


def _check_pixels(data, filename, max_pixels):
    """Refuse a photo with too many pixels from its header alone, before decoding it fills memory."""
    try:  # no warnings.catch_warnings() here: it is not thread-safe, and photos are read on several threads
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(413, f"{filename}: too many pixels (refused by Pillow as a possible decompression bomb)")
    except Exception:
        return  # not an image Pillow knows: load_image says why, in the words predict.py uses
    if width * height > max_pixels:
        raise Refused(413, f"{filename}: {width}x{height} is {width * height / 1e6:.3g} megapixels, over this "
                           f"server's limit of {max_pixels / 1e6:.3g} (serve.py --max-megapixels); shrink it")


async def uploaded_files(request, limits):
    """The (filename, bytes) of the multipart field `file`, with the byte limits enforced as they arrive."""
    from starlette.requests import Request

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_request_bytes:
        raise Refused(413, f"upload of {_size(int(declared))} is over this server's limit of "
                           f"{_size(limits.max_request_bytes)} per request")
    received = 0

    async def counted():  # a body sent without Content-Length (chunked) is bounded too
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limits.max_request_bytes:
            raise Refused(413, f"upload over this server's limit of {_size(limits.max_request_bytes)} per request")
        return message

    form = await Request(request.scope, counted).form(max_files=limits.max_files, max_fields=limits.max_files)
    try:
        fields = form.getlist("file")
        if not fields:
            raise Refused(400, "no photos: send them as multipart/form-data in the field `file`, "
                               "e.g. curl -F file=@photo.jpg http://HOST:PORT/predict")
        return [await _read_field(field, number, limits) for number, field in enumerate(fields, 1)]
    finally:
        await form.close()  # the spooled temporary files


async def _read_field(field, number, limits):
    from starlette.datastructures import UploadFile

    if not isinstance(field, UploadFile):
        raise Refused(400, f"field `file` number {number} is text, not a file: send it as a file upload")
    filename = field.filename or f"file {number}"
    if field.size is not None and field.size > limits.max_file_bytes:
        raise Refused(413, f"{filename}: {_size(field.size)}, over this server's limit of "
                           f"{_size(limits.max_file_bytes)} per photo (serve.py --max-upload-mb)")
    return filename, await field.read()


def _size(count):
    return f"{count / MB:.1f} MB" if count >= MB else f"{count:,} bytes"


def create_app(model, info, limits=Limits(), batch_size=32, batch_wait=0.005, model_file="", unsure_below=0.0):
    """The FastAPI app around one loaded model (prediction.load_classifier). unsure_below: the page
    marks a label under this confidence as unsure (0: the page's own 70 %), as predict.py's sheet does."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException

    from .sheet import LOW_CONFIDENCE

    batcher = Batcher(inference_model(model, info), batch_size, batch_wait)
    labels = Labels(info.class_names, unsure_below, unknown_threshold(info))

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        try:
            yield
        finally:
            batcher.stop()

    app = FastAPI(title="Photo classifier", lifespan=lifespan, docs_url=None, redoc_url=None)  # docs pages load a CDN
    app.state.batcher = batcher

    @app.exception_handler(Refused)
    async def refused(request, error):
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, error):  # 404, 405, a malformed multipart body: the same {"error"} shape
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def crashed(request, error):  # a bug, not the upload: still {"error"}, and the traceback goes to the log
        return JSONResponse({"error": f"internal error ({type(error).__name__}); see the server's log"}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        classes = json.dumps(", ".join(info.class_names)).replace("</", "<\\/")  # a JavaScript string, safe in <script>
        return render("serve.html", title=escape(f"{info.model or 'model'}: {', '.join(info.class_names)}"),
                      classes=classes, unsure_below=f"{unsure_below or LOW_CONFIDENCE:g}")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": info.model, "model_file": str(model_file), "classes": info.class_names,
                "image_size": info.image_size, "unknown_above": labels.unknown_above, "unsure_below": unsure_below,
                "model_calls": batcher.calls, "images_labelled": batcher.images}

    @app.post("/predict")
    async def predict(request: Request):
        files = await uploaded_files(request, limits)
        loop = asyncio.get_running_loop()
        compiled = isinstance(model, CompiledModel)
        read = [loop.run_in_executor(None, read_photo, data, name, info.image_size, limits.max_pixels, compiled)
                for name, data in files]
        images = await asyncio.gather(*read, return_exceptions=True)
        for result in images:  # not a refused photo, a bug: the traceback goes to the log
            if isinstance(result, BaseException) and not isinstance(result, Refused):
                raise result
        good = [image for image in images if not isinstance(image, Refused)]
        if not good:  # nothing to label: the first refused photo, in upload order, is the one named
            raise images[0]
        rows = iter(await batcher.predict(good))
        return {"predictions": [{"filename": name, "error": image.message} if isinstance(image, Refused)
                                else _as_json(labels(name, *next(rows))) for (name, _), image in zip(files, images)]}

    return app


def _as_json(prediction):
    """The fields of predict.py --json, with the upload's filename for its path."""
    fields = json_fields(prediction)
    return {"filename": fields.pop("path"), **fields}


def warm_up(app, image_size):
    """One call before the first request, so the first user does not wait for TensorFlow's tracing
    (or LiteRT's first allocation)."""
    predict_batch(app.state.batcher.model, np.zeros((1, image_size, image_size, 3), np.float32))  # as the Batcher calls it
