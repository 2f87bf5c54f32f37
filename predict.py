"""Label photos with a trained model: one line per image (path, label, confidence).
A photo unlike all the training photos of every class is labelled `unknown`: not one of the classes.

    python predict.py                          # every image in Dataset/Predict, with the shipped model.h5
    python predict.py photo.jpg holidays/      # files and folders (walked recursively)
    python predict.py --model runs/cnn/model.h5 photos/   # a model you trained (its weights.h5 comes with it)
    python predict.py --csv labels.csv         # also write the rows to a CSV file
    python predict.py --json                   # a JSON list of {path, label, confidence, probabilities, unknown_score}
    python predict.py --sheet sheet.png        # also draw the photos with their labels in one picture
    python predict.py --evaluate Dataset/Test_Set   # accuracy and confusion matrix on labelled folders
    python predict.py --heatmaps why/          # also why/<photo>.png: where in each photo the evidence lies
    python predict.py --tta                    # average each photo's prediction with its mirror image's
    python predict.py --unsure-below 0.9       # label a photo "unsure" when its confidence is below 90%
    python predict.py --no-unknown             # always one of the model's classes, never "unknown"

A fresh model.tflite beside model.h5 (train_CNN.py writes it; predict.py too, after a run without
one) labels photos without loading TensorFlow, with the same answers: start-up in a fraction of a second.

The confidence is the model's probability of its most probable class: of the printed label,
unless that is "unsure" or "unknown". The unknown score (CSV, JSON) says how unlike the training
photos a photo is: 0 for one just like them; above the model's threshold, the label is "unknown".
Exit codes: 0 every image labelled; 1 some files could not be read (each named on stderr);
2 usage error, missing or unloadable model files, or no images found; 130 stopped by Ctrl-C or kill
(the rows labelled before the stop are kept: printed, in a complete --csv file and a valid --json list).
"""
import os
import signal
import sys
from contextlib import contextmanager

from classifier import config
from classifier.images import configure_pillow


def parse_args(argv=None):
    parser = config.ArgumentParser(__doc__)
    parser.add_argument("paths", nargs="*", metavar="PATH", help="image files or folders (default: Dataset/Predict)")
    parser.add_argument("--model", default=str(config.PROJECT_DIR / config.MODEL_FILE), metavar="FILE",
                        help="the model saved by train_CNN.py (default: the shipped model.h5)")
    parser.add_argument("--weights", metavar="FILE",
                        help="its weights (default: the weights.h5 beside --model, else the weights inside it)")
    parser.add_argument("--csv", metavar="FILE", help="also write the rows to FILE, with the header path,label,confidence,unknown_score")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of tab-separated lines")
    parser.add_argument("--sheet", metavar="FILE.png", help="also draw a contact sheet: every photo with its label, doubtful ones marked")
    parser.add_argument("--evaluate", metavar="DIR", help="instead of labelling, score the model on DIR/<class>/ photos")
    parser.add_argument("--heatmaps", metavar="DIR", help="also write DIR/<photo's name>.png: the photo under a heatmap of "
                        "what made the label (Grad-CAM; a saliency map for the logistic model); --sheet shows them too")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation: average each photo's prediction with "
                        "its mirror image's (twice the time); for labelling and --evaluate")
    parser.add_argument("--unsure-below", type=float, metavar="P", default=0.0,
                        help=f"label a photo 'unsure' when its confidence is below P ({config.UNSURE_RANGE}; with N classes, useful above 1/N; "
                             "--evaluate says what P buys)")
    parser.add_argument("--unknown-above", type=float, metavar="D", default=None,
                        help="label a photo 'unknown' when its unknown score is above D (0-2; default: the threshold stored "
                             "in the model, which flagged 1%% of its held-out photos; lower flags more)")
    parser.add_argument("--no-unknown", action="store_true",
                        help="never label a photo 'unknown': always one of the model's classes")
    parser.add_argument("--no-compiled", dest="compiled", action="store_false",
                        help="run model.h5 with TensorFlow even when a fresh model.tflite beside it would run without "
                             "(the same answers; TensorFlow takes seconds to start)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="images per batch (default: %(default)s)")
    parser.add_argument("--classes", type=lambda text: [name.strip() for name in text.split(",")], metavar="A,B",
                        help="class names for a model.h5 from a Keras 2 script, which does not store them, in the order "
                             "of its outputs (default: the folders of Dataset/Training_Set, else Cats,Dogs)")
    args = parser.parse_args(argv)
    if args.classes is not None and (len(args.classes) < 2 or not all(args.classes) or len(set(args.classes)) != len(args.classes)):
        parser.error("--classes takes two or more different names separated by commas, such as --classes Cats,Dogs")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if not 0 <= args.unsure_below <= 1:
        parser.error(f"--unsure-below takes a confidence {config.UNSURE_RANGE}, such as --unsure-below 0.9")
    if args.unknown_above is not None and not 0 <= args.unknown_above <= 2:
        parser.error("--unknown-above takes a score between 0 and 2, such as --unknown-above 0.5")
    if args.unknown_above is not None and args.no_unknown:
        parser.error("--unknown-above and --no-unknown contradict each other: pass one of them")
    return args


def unknown_above(args):
    """predict_files' unknown_above: off, a number given, or the model's own threshold."""
    return None if args.no_unknown else "model" if args.unknown_above is None else args.unknown_above


def open_writers(args):
    """The output formats asked for, opened before any photo is read: a path that cannot be written is refused at once."""
    from classifier.writers import WRITERS

    writers = []
    if args.csv:
        writers.append(WRITERS["csv"](args.csv))
    if args.sheet:
        writers.append(WRITERS["sheet"](args.sheet, args.unsure_below))
    if args.heatmaps:
        writers.append(WRITERS["heatmaps"](args.heatmaps))
    # The screen last: a row printed is already in the CSV file, even if Ctrl-C comes right after it.
    return writers + [WRITERS["json"]() if args.json else WRITERS["lines"]()]


def label_images(args):
    from classifier.images import BadImage, find_images
    from classifier.prediction import load_classifier, predict_files

    paths, missing = find_images(args.paths or [config.PREDICT_DIR])
    if not paths:  # nothing to label: one line that says why
        if not args.paths:
            raise config.UsageError(f"{config.short_path(config.PREDICT_DIR)} holds no photos: put the photos to label there, "
                                    "or name files or folders: python predict.py PHOTOS")
        if len(missing) == len(args.paths):
            raise config.UsageError(f"{', '.join(map(str, missing))}: no such file or folder")
        raise config.UsageError(f"no images found in {', '.join(args.paths)} (looked for {', '.join(config.IMAGE_EXTENSIONS)} files)")
    for path in missing:
        print(f"error: {path}: no such file or folder", file=sys.stderr)
    writers = open_writers(args)
    model, info = load_classifier(args.model, args.weights, args.classes, compiled=args.compiled and not args.heatmaps)
    hint_at_model(args, info)
    explainer = None
    if args.heatmaps:
        from classifier.heatmap import Explainer
        explainer = Explainer(model)
        print(f"Heatmaps: {explainer.method}", file=sys.stderr)
    labelled, bad = 0, len(missing)
    try:
        for result in predict_files(model, info, paths, args.batch_size, args.tta, explainer, args.unsure_below, unknown_above(args)):
            if isinstance(result, BadImage):
                print(f"error: {result}", file=sys.stderr)
                bad += 1
                continue
            labelled += 1
            for writer in writers:
                writer.add(result)
    finally:  # on Ctrl-C too: the rows labelled so far make a complete CSV file and a valid JSON list
        for writer in writers:
            writer.close()
    if bad:
        print(f"{config.counted(labelled, 'image')} labelled, {bad} could not be read", file=sys.stderr)
    compile_for_next_time(model, info, args)
    return config.EXIT_SOME_INPUTS_BAD if bad else config.EXIT_OK


def compile_for_next_time(model, info, args):
    """After a run on TensorFlow (no fresh model.tflite beside model.h5): write one, so that the next
    run labels photos without TensorFlow (classifier/compiled.py). Keras 2 files have no compiled form."""
    from classifier.artifacts import weights_beside
    from classifier.compiled import CompiledModel, compile_model, compiled_path, is_fresh

    weights = args.weights or weights_beside(args.model)
    if isinstance(model, CompiledModel) or not args.compiled or args.classes or info.model.startswith("Keras ") \
            or is_fresh(args.model, weights):
        return
    target = config.short_path(compiled_path(args.model))
    print(f"Writing {target}, so that the next run labels photos without TensorFlow...", file=sys.stderr, flush=True)
    try:
        compile_model(model, info, args.model, weights)
    except OSError as error:
        print(f"note: could not write {target} ({error.strerror or error}): predict.py keeps running this model "
              "with TensorFlow, which starts slower", file=sys.stderr)


def evaluate(args):
    from classifier.prediction import evaluate, format_report, load_classifier

    check_holds_class_folders(args.evaluate)
    model, info = load_classifier(args.model, args.weights, args.classes, compiled=args.compiled)
    confusion, predictions, right, bad = evaluate(model, info, args.evaluate, args.batch_size, args.tta, unknown_above(args))
    print(format_report(confusion, info.class_names))
    print(unknown_report(predictions, right))
    if args.unsure_below:
        print(unsure_report(args.unsure_below, predictions, right))
    for unreadable in bad:
        print(f"error: {unreadable}", file=sys.stderr)
    if bad:
        print(f"{config.counted(len(bad), 'file')} could not be read and {'was' if len(bad) == 1 else 'were'} left out", file=sys.stderr)
    compile_for_next_time(model, info, args)
    return config.EXIT_SOME_INPUTS_BAD if bad else config.EXIT_OK


def hint_at_model(args, info):
    """One line when the shipped model (no --model given) knows other classes than the folders of
    Dataset/Training_Set: the user has probably trained a model of their own, and meant that one."""
    from classifier.data import class_folders
    from classifier.runs import latest_model

    train = config.DATASET_DIR / config.TRAIN_DIR
    if args.model != str(config.PROJECT_DIR / config.MODEL_FILE):
        return
    found = class_folders(train)
    if len(found) < 2 or sorted(found) == sorted(info.class_names):
        return
    trained = latest_model(config.RUNS_DIR)
    which = f"--model {config.short_path(trained)}" if trained else "--model runs/NAME/model.h5 once train_CNN.py has made it"
    print(f"note: the shipped {config.MODEL_FILE} knows {', '.join(info.class_names)}, but {config.short_path(train)} holds "
          f"{', '.join(found)}: to label with the model trained on them, pass {which}", file=sys.stderr)


def check_holds_class_folders(folder):
    """--evaluate's folder, checked before the model loads (TensorFlow takes seconds). Whether its
    class folders are the model's, the model says (prediction.labelled_photos)."""
    from classifier.data import class_folders

    example = config.short_path(config.DATASET_DIR / config.TEST_DIR)
    if not os.path.isdir(folder):
        raise config.UsageError(f"{folder}: no such folder: --evaluate takes a folder with one sub-folder of photos per class, such as {example}")
    if not class_folders(folder):
        raise config.UsageError(f"{folder} holds no class folders: --evaluate takes a folder with one sub-folder of photos per class, "
                                f"such as {example}")


@contextmanager
def stop_on_sigterm():
    """kill (SIGTERM) stops like Ctrl-C: the same one line, and the rows labelled so far are kept."""
    def stop(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def unknown_report(predictions, right):
    """How many of the evaluated photos, all of the model's classes, the unknown score flags."""
    import numpy as np

    threshold = predictions[0].unknown_above if predictions else None
    if threshold is None:
        why = "--no-unknown" if predictions and predictions[0].unknown_score is not None else "this model has no unknown score"
        return f"\nunknown: off ({why})"
    flagged = [prediction.unknown for prediction in predictions]
    kept = [correct for correct, unknown in zip(right, flagged) if not unknown]
    return (f"\nunknown (score above {threshold:.4f}): {sum(flagged)} of {config.counted(len(flagged), 'image')} flagged ({np.mean(flagged):.2%}), "
            f"though all are of the model's classes; accuracy above counts their most probable class "
            f"(on the {len(kept)} not flagged: {np.mean(kept) if kept else float('nan'):.2%})")


def unsure_report(threshold, predictions, right):
    """What --unsure-below P buys on the evaluated photos: how many keep a label, and how many of those are right."""
    from classifier.prediction import coverage

    share, accuracy = coverage([prediction.confidence for prediction in predictions], right, threshold)
    unsure = round(len(predictions) * (1 - share))
    return (f"\nwith --unsure-below {threshold:g}: {share:.2%} of the images labelled ({unsure} unsure), "
            f"accuracy of those labelled {accuracy:.2%}")


def main(argv=None):
    args = parse_args(argv)
    configure_pillow()
    try:
        with stop_on_sigterm():
            return evaluate(args) if args.evaluate else label_images(args)
    except config.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return config.EXIT_USAGE
    except KeyboardInterrupt:
        kept = "no score was computed" if args.evaluate else "the rows labelled before the stop are kept"
        print(f"Interrupted: {kept}; run the same command again to finish.", file=sys.stderr)
        return config.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
