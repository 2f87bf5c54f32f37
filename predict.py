"""Label photos with the trained model: one line per image (path, label, confidence).

    python predict.py                          # every image in Dataset/Predict
    python predict.py photo.jpg holidays/      # files and folders (walked recursively)
    python predict.py --csv labels.csv         # also write the rows to a CSV file
    python predict.py --evaluate Dataset/Test_Set   # accuracy and confusion matrix on labelled folders

Exit codes: 0 every image labelled; 1 some files could not be read (each named on stderr);
2 usage error, missing or unloadable model files, or no images found.
"""
import argparse
import csv
import sys

from classifier import config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="PATH", default=[str(config.PREDICT_DIR)],
                        help="image files or folders (default: %(default)s)")
    parser.add_argument("--model", default=str(config.PROJECT_DIR / config.MODEL_FILE), metavar="FILE",
                        help="the model saved by train_CNN.py (default: %(default)s)")
    parser.add_argument("--weights", default=str(config.PROJECT_DIR / config.WEIGHTS_FILE), metavar="FILE",
                        help="the weights saved with it (default: %(default)s)")
    parser.add_argument("--csv", metavar="FILE", help="also write the rows to FILE, with the header path,label,confidence")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="images per batch (default: %(default)s)")
    parser.add_argument("--evaluate", metavar="DIR", help="instead of labelling, score the model on DIR/<class>/ photos")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def label_images(args):
    from classifier.images import BadImage, find_images
    from classifier.prediction import label_of, load_classifier, predict_files

    paths, missing = find_images(args.paths)
    for path in missing:
        print(f"error: {path}: no such file or folder", file=sys.stderr)
    if not paths:
        looked = ", ".join(args.paths)
        raise config.UsageError(f"no images found in {looked} (looked for {', '.join(config.IMAGE_EXTENSIONS)} files)")
    model, metadata = load_classifier(args.model, args.weights)
    rows, bad = [], len(missing)
    for path, result in predict_files(model, metadata["image_size"], paths, args.batch_size):
        if isinstance(result, BadImage):
            print(f"error: {result}", file=sys.stderr)
            bad += 1
            continue
        label, confidence = label_of(result, metadata["class_names"])
        rows.append((str(path), label, f"{confidence:.4f}"))
        print("\t".join(rows[-1]), flush=True)
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(("path", "label", "confidence"))
            writer.writerows(rows)
    if bad:
        print(f"{len(rows)} images labelled, {bad} could not be read", file=sys.stderr)
    return config.EXIT_SOME_INPUTS_BAD if bad else config.EXIT_OK


def evaluate(args):
    from classifier.prediction import evaluate, load_classifier

    model, metadata = load_classifier(args.model, args.weights)
    report, bad = evaluate(model, metadata, args.evaluate, args.batch_size)
    print(report)
    if bad:
        print(f"{bad} files could not be read and were left out", file=sys.stderr)
    return config.EXIT_SOME_INPUTS_BAD if bad else config.EXIT_OK


def main(argv=None):
    args = parse_args(argv)
    try:
        return evaluate(args) if args.evaluate else label_images(args)
    except config.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return config.EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
