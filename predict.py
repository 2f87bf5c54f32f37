"""Label photos with the trained model: one line per image (path, label, confidence).

    python predict.py                          # every image in Dataset/Predict
    python predict.py photo.jpg holidays/      # files and folders (walked recursively)
    python predict.py --csv labels.csv         # also write the rows to a CSV file
    python predict.py --evaluate Dataset/Test_Set   # accuracy and confusion matrix on labelled folders
    python predict.py --sheet sheet.png        # also draw the photos with their labels in one picture
    python predict.py --json                   # a JSON list of {path, label, confidence} instead of lines

Exit codes: 0 every image labelled; 1 some files could not be read (each named on stderr);
2 usage error, missing or unloadable model files, or no images found.
"""
import argparse
import csv
import json
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
    parser.add_argument("--sheet", metavar="FILE.png", help="also draw a contact sheet: every photo with its label, doubtful ones marked")
    parser.add_argument("--json", action="store_true", help="print one JSON list of {path, label, confidence} instead of tab-separated lines")
    parser.add_argument("--classes", type=lambda text: [name.strip() for name in text.split(",")], metavar="A,B",
                        help="class names for a model.h5 from a Keras 2 script, which does not store them "
                             "(default: the folders of Dataset/Training_Set, else Cats,Dogs)")
    args = parser.parse_args(argv)
    if args.classes is not None and (len(args.classes) != 2 or not all(args.classes) or len(set(args.classes)) != 2):
        parser.error("--classes takes two different names separated by a comma, such as --classes Cats,Dogs")
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
    if args.sheet:
        from classifier.sheet import check_sheet_path
        check_sheet_path(args.sheet)
    model, metadata = load_classifier(args.model, args.weights, args.classes)
    rows, bad = [], len(missing)
    if hasattr(sys.stdout, "reconfigure"):  # a file name that is not UTF-8 is printed as its bytes, as ls does
        sys.stdout.reconfigure(errors="surrogateescape")
    for path, result in predict_files(model, metadata["image_size"], paths, args.batch_size):
        if isinstance(result, BadImage):
            print(f"error: {result}", file=sys.stderr)
            bad += 1
            continue
        label, confidence = label_of(result, metadata["class_names"])
        rows.append((str(path), label, f"{confidence:.4f}"))
        if not args.json:
            print("\t".join(rows[-1]), flush=True)
    if args.json:
        objects = [json.dumps({"path": path, "label": label, "confidence": float(confidence)}) for path, label, confidence in rows]
        print("[" + ",\n ".join(objects) + "]")  # one photo per line: valid JSON that greps well
    if args.sheet and rows:
        from classifier.sheet import make_sheet
        print(f"contact sheet of {make_sheet(rows, args.sheet)} images: {args.sheet}", file=sys.stderr)
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8", errors="surrogateescape") as file:
            writer = csv.writer(file)
            writer.writerow(("path", "label", "confidence"))
            writer.writerows(rows)
    if bad:
        print(f"{len(rows)} images labelled, {bad} could not be read", file=sys.stderr)
    return config.EXIT_SOME_INPUTS_BAD if bad else config.EXIT_OK


def evaluate(args):
    from classifier.prediction import evaluate, load_classifier

    model, metadata = load_classifier(args.model, args.weights, args.classes)
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
