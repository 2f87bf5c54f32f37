"""Label photos from a web page or a JSON API on this machine, with the model loaded once.

    python serve.py                                   # the shipped model.h5, on http://127.0.0.1:8000
    python serve.py --model runs/cnn/model.h5         # a model you trained (its weights.h5 comes with it)
    python serve.py --host 0.0.0.0 --port 8080        # reachable from other machines (no login: a trusted network only)

    open http://127.0.0.1:8000/                       # drop or pick photos; each is shown with its label
    curl -F file=@cat.jpg -F file=@dog.jpg http://127.0.0.1:8000/predict
    curl http://127.0.0.1:8000/health

POST /predict answers {"predictions": [{"filename", "label", "confidence", "probabilities": {class: p},
"unknown_score"}]} (the fields of predict.py --json): a photo of none of the model's classes gets the
label "unknown", and the page says "not one of: Cats, Dogs". A photo it cannot read among others
gets {"filename", "error"} in its place; a request with no readable photo gets a 4xx {"error": "NAME: why"}.
A fresh model.tflite beside model.h5 (classifier/compiled.py) runs without TensorFlow: less memory,
a start in about a second.
Ctrl-C or SIGTERM stops it, after the requests under way are answered (5 s at most): exit code 0.
A missing model file, a port in use or an unknown --host: one `error:` line, exit code 2.
"""
import logging
import os
import signal
import socket
import sys

from classifier import config

STOP_SECONDS = 5  # Ctrl-C or SIGTERM waits this long at most for the requests under way: the docstring and README say it


def parse_args(argv=None):
    from classifier.server import MB, Limits

    limits = Limits()
    parser = config.ArgumentParser(__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one, printed at start (default: %(default)s)")
    parser.add_argument("--model", default=str(config.PROJECT_DIR / config.MODEL_FILE), metavar="FILE",
                        help="the model saved by train_CNN.py (default: the shipped model.h5)")
    parser.add_argument("--weights", metavar="FILE",
                        help="its weights (default: the weights.h5 beside --model, else the weights inside it)")
    parser.add_argument("--max-upload-mb", type=float, metavar="MB", default=limits.max_file_bytes / MB,
                        help="largest photo accepted, in MB (default: %(default)g)")
    parser.add_argument("--max-megapixels", type=float, metavar="N", default=limits.max_pixels / 1e6,
                        help="most pixels a photo may have, in millions (default: %(default)g)")
    parser.add_argument("--max-files", type=int, metavar="N", default=limits.max_files,
                        help="most photos in one request (default: %(default)s)")
    parser.add_argument("--unsure-below", type=float, metavar="P", default=0.0,
                        help=f"label a photo 'unsure' when its confidence is below P, as predict.py does ({config.UNSURE_RANGE}; "
                             "default: never, and the page marks a label under 70%% confidence)")
    parser.add_argument("--batch-size", type=int, metavar="N", default=config.BATCH_SIZE,
                        help="most photos per model call, from all requests together (default: %(default)s)")
    parser.add_argument("--no-compiled", dest="compiled", action="store_false",
                        help="run model.h5 with TensorFlow even when a fresh model.tflite beside it would run without "
                             "(the same answers; more memory, slower start)")
    parser.add_argument("--batch-wait-ms", type=float, metavar="MS", default=5.0,
                        help="how long the first photo waits for others to share its model call (default: %(default)g)")
    args = parser.parse_args(argv)
    for name in ("max_upload_mb", "max_megapixels", "max_files", "batch_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0")
    if args.batch_wait_ms < 0:
        parser.error("--batch-wait-ms must be 0 or more")
    if not 0 <= args.port <= 65535:  # else socket raises OverflowError, or blames --host
        parser.error(f"--port {args.port}: a port is a number from 1 to 65535 (0 picks a free one)")
    if not 0 <= args.unsure_below <= 1:
        parser.error(f"--unsure-below takes a confidence {config.UNSURE_RANGE}, such as --unsure-below 0.9")
    return args


def listen(host, port):
    """The listening socket, opened before the model loads, so that a port in use is said at once."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except socket.gaierror as error:
        raise config.UsageError(f"--host {host}: {error.strerror}; pass an address of this machine, such as 127.0.0.1 or 0.0.0.0")
    except OSError as error:
        raise config.UsageError(f"cannot listen on {host}:{port} ({os.strerror(error.errno) if error.errno else error}): "
                                "pass --port with a free port, or stop the program using it")


def serve(args):
    import uvicorn

    from classifier.images import configure_pillow
    from classifier.prediction import load_classifier
    from classifier.server import MB, Limits, create_app, warm_up

    limits = Limits(max_file_bytes=int(args.max_upload_mb * MB), max_pixels=int(args.max_megapixels * 1e6), max_files=args.max_files)
    configure_pillow(limits.max_pixels)  # Pillow refuses images above its own bomb limit; --max-megapixels is the limit here
    with listen(args.host, args.port) as sock:
        model, info = load_classifier(args.model, args.weights, compiled=args.compiled)
        app = create_app(model, info, limits, args.batch_size, args.batch_wait_ms / 1000, model_file=args.model,
                         unsure_below=args.unsure_below)
        warm_up(app, info.image_size)
        server = uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=STOP_SECONDS))
        # uvicorn answers Ctrl-C and SIGTERM by finishing the requests under way (STOP_SECONDS at most), then sends
        # itself the signal again with the handlers it found, which by default would kill the process
        # (exit -15). These handlers make that a normal exit 0; a signal that comes before uvicorn's own
        # handlers are in place stops the server as soon as it has started.
        def stop(signum, frame):
            server.should_exit = True
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        host, port = sock.getsockname()[:2]
        print(f"Serving on http://{f'[{host}]' if ':' in host else host}:{port}/ (Ctrl-C or SIGTERM stops it)",
              file=sys.stderr, flush=True)
        server.run(sockets=[sock])
    if not server.started:
        raise config.UsageError("the server did not start: see the messages above")
    return config.EXIT_OK


def main(argv=None):
    args = parse_args(argv)
    try:
        return serve(args)
    except config.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return config.EXIT_USAGE


if __name__ == "__main__":
    code = main()
    # Everything is answered and closed by now. Python's own teardown of TensorFlow's modules would
    # take seconds more (2-4 s on 2 busy cores) before a service manager saw the process end.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
