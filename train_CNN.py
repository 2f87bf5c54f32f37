"""Train the cats-vs-dogs classifier and save model.h5 and weights.h5.

    python train_CNN.py                       # Dataset/Training_Set and Dataset/Test_Set
    python train_CNN.py --model logistic      # the logistic-regression baseline
    python train_CNN.py --resume              # continue a run stopped by Ctrl-C
"""
import argparse
import sys

from classifier import config


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
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "image_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.image_size < 32 and args.model != "logistic":
        parser.error("--image-size must be at least 32 for the CNNs")
    return args


def main(argv=None):
    args = parse_args(argv)
    from classifier.training import train
    try:
        train(args.data, args.output, args.model, args.image_size, args.batch_size, args.epochs,
              args.learning_rate, args.seed, overwrite=args.overwrite, resume=args.resume)
    except config.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return config.EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\nInterrupted: the previous {config.MODEL_FILE}/{config.WEIGHTS_FILE} are untouched; "
              "run again with --resume to continue from the last finished epoch.", file=sys.stderr)
        return config.EXIT_INTERRUPTED
    return config.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
