"""Train an image classifier on Dataset/Training_Set (one folder per class) and save model.h5 and weights.h5.

    python train_CNN.py                       # the ImageNet-pretrained default, into a new runs/ folder
    python train_CNN.py --arch cnn            # a CNN from scratch (or classic, logistic)
    python train_CNN.py --resume              # continue the run stopped by Ctrl-C, with its settings
    python train_CNN.py --download-dataset    # fetch Microsoft's Kaggle Cats and Dogs photos into Dataset/
    python train_CNN.py --export tflite       # model.h5 as model.tflite (or keras, savedmodel, onnx)
    python train_CNN.py --check               # check the dataset (copies shared by the sets, imbalance...); no training
    python train_CNN.py --fit-unknown --model runs/old/model.h5   # give an older model its "unknown" answer, no training
"""
import argparse
import os
import signal
import sys
from dataclasses import fields

from classifier import config
from classifier.config import RunConfig
from classifier.distribute import STRATEGIES
from classifier.export import FORMATS
from classifier.images import configure_pillow
from classifier.model import MODELS


def parse_args(argv=None):
    parser = config.ArgumentParser(__doc__)
    # The run's settings default to None here: a flag left out takes the RunConfig (or model) default,
    # and with --resume, the interrupted run's value.
    parser.add_argument("--data", metavar="DIR",
                        help=f"folder holding {config.TRAIN_DIR}/ and {config.TEST_DIR}/, each with one sub-folder per class (default: Dataset)")
    parser.add_argument("--output", metavar="DIR",
                        help=f"where {config.MODEL_FILE}, {config.WEIGHTS_FILE} and {config.REPORTS_DIR}/ go "
                             "(default: a new folder runs/ARCH, runs/ARCH-2...)")
    parser.add_argument("--arch", choices=MODELS, help="the network: " + "; ".join(
        f"{name}: {arch.summary} ({arch.image_size} px, {arch.epochs} epochs)" for name, arch in MODELS.items())
        + f" (default: {config.DEFAULT_ARCH})")
    parser.add_argument("--epochs", type=int, help="passes over the training set, all phases together (default: the model's)")
    parser.add_argument("--batch-size", type=int, help="images per mini-batch (default: the model's: " + ", ".join(
        f"{arch.batch_size} for {name}" for name, arch in MODELS.items()) + ")")
    parser.add_argument("--image-size", type=int, help="pixels per side the photos are resized to (default: the model's)")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default: the model's)")
    parser.add_argument("--val-split", type=float, help=f"share of {config.TRAIN_DIR} held out to pick the epoch kept; "
                        f"{config.TEST_DIR} is scored once, at the end (default: {config.VAL_SPLIT})")
    parser.add_argument("--seed", type=int, help=f"random seed for the split, shuffling, augmentation and weights (default: {config.SEED})")
    parser.add_argument("--float32-weights", dest="float16", action="store_const", const=False,
                        help="store the weights as 32-bit floats; by default they are 16-bit floats, half the size, same accuracy")
    parser.add_argument("--distribute", choices=STRATEGIES,
                        help="none: one device; mirrored: every local GPU; multiworker: the machines in TF_CONFIG; "
                             "--batch-size is per replica (default: none)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model.h5/weights.h5 in --output")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --output (default: the latest in runs/) with its settings")
    parser.add_argument("--download-dataset", action="store_true",
                        help="instead of training, download the Kaggle Cats and Dogs photos into --data "
                             f"(80%% {config.TRAIN_DIR}, 20%% {config.TEST_DIR})")
    parser.add_argument("--check", action="store_true",
                        help="instead of training, check --data: photos per class, unreadable files, photos shared by "
                             f"{config.TRAIN_DIR} and {config.TEST_DIR} (exact or near copies), imbalance, tiny photos; "
                             "exit 1 when a problem is found (classifier/check.py)")
    parser.add_argument("--fit-unknown", action="store_true",
                        help="instead of training, fit --model's unknown score (photos of none of its classes) and "
                             "calibration on --data, the dataset it was trained on; for a model.h5 trained before "
                             "that score existed; its weights are not changed")
    parser.add_argument("--dataset-url", default=None, help=argparse.SUPPRESS)  # tests point it at a local file:// zip
    parser.add_argument("--export", choices=FORMATS, help="instead of training, write --model in this format into --output")
    parser.add_argument("--model", metavar="FILE",
                        help=f"the model file --export or --fit-unknown works on (default: the shipped {config.MODEL_FILE})")
    args = parser.parse_args(argv)
    if args.model in MODELS:
        parser.error(f"--model takes a model file; to choose the network, use --arch {args.model}")
    if sum(map(bool, (args.download_dataset, args.export, args.check, args.fit_unknown))) > 1:
        parser.error("--download-dataset, --export, --fit-unknown and --check are separate jobs: run them one at a time")
    for name in ("epochs", "batch_size", "image_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    arch = args.arch or config.DEFAULT_ARCH
    if args.image_size is not None and args.image_size < MODELS[arch].min_image_size:
        parser.error(f"--image-size must be at least {MODELS[arch].min_image_size} for --arch {arch}")
    if args.val_split is not None and not 0 <= args.val_split < 1:
        parser.error("--val-split is a share between 0 (hold nothing out) and 1, such as 0.1")
    if args.resume and args.distribute == "multiworker":
        parser.error("--resume does not work with --distribute multiworker (only the chief keeps a checkpoint): start the run again with --overwrite")
    return args


def run_config(args):
    """The RunConfig of the flags given, over the defaults (or over the interrupted run's settings)."""
    from classifier.runs import latest_interrupted_run, new_run_folder, resume_settings

    given = {field.name: getattr(args, field.name) for field in fields(RunConfig) if getattr(args, field.name, None) is not None}
    if args.resume:
        return resume_settings(args.output or latest_interrupted_run(), given)
    settings = RunConfig(**given)
    return settings if settings.output else RunConfig(**given, output=str(new_run_folder(settings.arch)))


def main(argv=None):
    args = parse_args(argv)
    configure_pillow()
    settings = None
    try:
        if args.download_dataset or args.export or args.check or args.fit_unknown:
            return run_job(args)
        # Usage errors answer before TensorFlow loads (seconds): a wrong folder layout, a run to --resume
        # that is not there or disagrees with the flags given.
        if not args.resume:
            from classifier.data import check_layout
            check_layout(args.data or RunConfig().data)
        settings = run_config(args)
        from classifier.training import train
        if hasattr(signal, "SIGXFSZ"):  # past a file-size limit (ulimit -f) a write then fails with EFBIG, said in
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # one line (runs.writing), instead of the kernel killing the run
        train(settings, overwrite=args.overwrite, resume=args.resume)
    except config.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return config.EXIT_USAGE
    except KeyboardInterrupt:
        from classifier.runs import interrupted
        print(f"\n{interrupted(settings and settings.output)}", file=sys.stderr)
        # Leave at once: tearing down TensorFlow with its input threads stopped mid-step can abort
        # the process ("free(): invalid next size"). Everything worth keeping is already on disk.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.EXIT_INTERRUPTED)
    return config.EXIT_OK


def run_job(args):
    """--download-dataset, --export, --check or --fit-unknown: one job instead of training."""
    try:
        if args.check:
            from classifier.check import check_dataset
            return check_dataset(args.data or config.DATASET_DIR, args.image_size or MODELS[args.arch or config.DEFAULT_ARCH].image_size)
        if args.fit_unknown:
            from classifier.retrofit import fit_unknown
            fit_unknown(args.model or config.PROJECT_DIR / config.MODEL_FILE, args.data or config.DATASET_DIR,
                        args.batch_size or config.BATCH_SIZE)
        elif args.download_dataset:
            from classifier.download import DATASET_URL, download_dataset
            download_dataset(args.data or config.DATASET_DIR, args.dataset_url or DATASET_URL, args.seed or config.SEED)
        else:
            from classifier.export import export
            model = args.model or config.PROJECT_DIR / config.MODEL_FILE
            export(model, args.export, args.output or os.path.dirname(os.path.abspath(model)), overwrite=args.overwrite)
    except KeyboardInterrupt:
        print("\nInterrupted: run the same command again to finish; finished files are kept.", file=sys.stderr)
        return config.EXIT_INTERRUPTED
    return config.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
