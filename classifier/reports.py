"""Pictures of a run: learning curves drawn with matplotlib (headless Agg backend)."""
import csv


def plot_learning_curves(log_path, png_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as file:
        rows = list(csv.DictReader(file))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        axis.plot(epochs, [float(row[metric]) for row in rows], "o-", label="training (augmented)")
        axis.plot(epochs, [float(row["val_" + metric]) for row in rows], "o-", label="Test_Set")
        axis.set(xlabel="epoch", ylabel=metric, title=metric.capitalize())
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path
