"""Train the cats-vs-dogs classifier and save model.h5 and weights.h5.

    python train_CNN.py                       # Dataset/Training_Set and Dataset/Test_Set
    python train_CNN.py --model logistic      # the logistic-regression baseline
    python train_CNN.py --resume              # continue a run stopped by Ctrl-C
    python train_CNN.py --download-dataset    # fetch Microsoft's Kaggle Cats and Dogs photos into Dataset/
    python train_CNN.py --export tflite       # model.h5 as model.tflite (or keras, savedmodel)
"""
import argparse
import os
import sys

from classifier import config
from classifier.distribute import STRATEGIES
from classifier.export import FORMATS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(config.DATASET_DIR), metavar="DIR",
                        help=f"folder holding {config.TRAIN_DIR}/ and {config.TEST_DIR}/, each with one sub-folder per class (default: %(default)s)")
    parser.add_argument("--output", default=str(config.PROJECT_DIR), metavar="DIR",
                        help=f"where {config.MODEL_FILE}, {config.WEIGHTS_FILE} and {config.REPORTS_DIR}/ go (default: %(default)s)")
    parser.add_argument("--model", choices=("cnn", "classic", "logistic"), default="cnn",
                        help="cnn: our CNN; classic: the classic two-block tutorial CNN; logistic: the baseline (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=config.EPOCHS, help="passes over the training set (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=config.BATCH_SIZE, help="images per mini-batch (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=config.IMAGE_SIZE, help="pixels per side the photos are resized to (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=config.LEARNING_RATE, help="peak learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=config.SEED, help="random seed for shuffling, augmentation and weights (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model.h5/weights.h5 in --output")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run saved in --output")
    parser.add_argument("--float32-weights", action="store_true",
                        help="store the weights as 32-bit floats; by default they are stored as 16-bit floats, "
                             "which halves the files and left the shipped model's Test_Set accuracy unchanged")
    parser.add_argument("--distribute", choices=STRATEGIES, default="none",
                        help="none: one device; mirrored: every local GPU; multiworker: the machines in TF_CONFIG; "
                             "--batch-size is per replica (default: %(default)s)")
    parser.add_argument("--download-dataset", action="store_true",
                        help=f"instead of training, download the Kaggle Cats and Dogs photos into --data (80%% {config.TRAIN_DIR}, 20%% {config.TEST_DIR})")
    parser.add_argument("--dataset-url", default=None, help=argparse.SUPPRESS)  # tests point it at a local file:// zip
    parser.add_argument("--export", choices=FORMATS, help="instead of training, write --model-file in this format into --output")
    parser.add_argument("--model-file", default=str(config.PROJECT_DIR / config.MODEL_FILE), metavar="FILE",
                        help="the model --export converts (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.download_dataset and args.export:
        parser.error("--download-dataset and --export are separate jobs: run them one at a time")
    for name in ("epochs", "batch_size", "image_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.image_size < 32 and args.model != "logistic":
        parser.error("--image-size must be at least 32 for the CNNs")
    if args.resume and args.distribute == "multiworker":
        parser.error("--resume does not work with --distribute multiworker (only the chief keeps a checkpoint): start the run again with --overwrite")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.download_dataset or args.export:
        return run_job(args)
    from classifier.training import train
    try:
        train(args.data, args.output, args.model, args.image_size, args.batch_size, args.epochs,
              args.learning_rate, args.seed, overwrite=args.overwrite, resume=args.resume, distribute=args.distribute,
              float16=not args.float32_weights)
    except config.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return config.EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\nInterrupted: the previous {config.MODEL_FILE}/{config.WEIGHTS_FILE} are untouched; "
              "run again with --resume to continue from the last finished epoch.", file=sys.stderr)
        # Leave at once: tearing down TensorFlow with its input threads stopped mid-step can abort
        # the process ("free(): invalid next size"). Everything worth keeping is already on disk.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.EXIT_INTERRUPTED)
    return config.EXIT_OK


def run_job(args):
    """--download-dataset or --export: one job instead of training."""
    try:
        if args.download_dataset:
            from classifier.download import DATASET_URL, download_dataset
            download_dataset(args.data, args.dataset_url or DATASET_URL, args.seed)
        else:
            from classifier.export import export
            export(args.model_file, args.export, args.output, overwrite=args.overwrite)
    except config.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return config.EXIT_USAGE
    except KeyboardInterrupt:
        print("\nInterrupted: run the same command again to finish; finished files are kept.", file=sys.stderr)
        return config.EXIT_INTERRUPTED
    return config.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
