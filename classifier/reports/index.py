"""reports/index.html: the whole run on one page (templates/report.html), every picture embedded as a
data: URI, so the page is complete on its own: it can be mailed or archived, and it fetches nothing.
Each section's heading has an id to link to (index.html#mistakes, #suspects, #unsure...)."""
import base64
import html
import io
from pathlib import Path

from ..calibration import BINS
from ..pages import render
from . import MAX_MISTAKES, STRONG
from .summary import percent

SUSPECTS_SHOWN = 20   # rows of suspects.csv shown
THUMB = 72            # pixels a side of a suspect's thumbnail


def write_index(page_path, result):
    folder = Path(page_path).parent
    names, confusion = result.class_names, result.confusion
    right = int(confusion.trace())
    settings = _table(("", ""), [(html.escape(str(name)), html.escape(str(value))) for name, value in result.facts.items()])
    # Both classes in full, as text: mistakes.png wraps them, and a list can be searched and copied.
    mistake_rows = [(f'<span class="path">{_display(mistake.sample.path)}</span>', html.escape(names[mistake.sample.label]),
                     html.escape(names[mistake.predicted]), f"{mistake.confidence:.1%}") for mistake in result.mistakes[:MAX_MISTAKES]]
    suspect_rows = []
    for suspect in result.suspects[:SUSPECTS_SHOWN]:
        thumb = thumbnail_uri(suspect.sample.path)
        picture = f'<img src="{thumb}" alt="" width="{THUMB}" height="{THUMB}">' if thumb else ""
        suspect_rows.append((picture, f'<span class="path">{_display(suspect.sample.path)}</span>', html.escape(names[suspect.sample.label]),
                             html.escape(names[suspect.predicted]), f"{suspect.confidence:.1%}"))
    unsure_rows = [(f"{threshold:g}", f"{share:.1%}", percent(accuracy)) for threshold, share, accuracy in result.unsure_table]
    flagged = result.unknown_flagged
    page = render(
        "report.html", model=html.escape(str(result.facts.get("model", ""))), accuracy=f"{right / max(1, result.test_count):.2%}",
        right=right, test_count=result.test_count, classes=html.escape(", ".join(names)), settings=settings,
        learning_curves=_image(folder / "learning_curves.png", "learning curves: accuracy and loss per epoch"),
        confusion_matrix=_image(folder / "confusion_matrix.png", "confusion matrix on Test_Set"),
        max_mistakes=MAX_MISTAKES, mistakes=_image(folder / "mistakes.png", "the test photos the model got wrong, with heatmaps"),
        mistake_list=_table(("path", "folder", "model says", "confidence"), mistake_rows, numeric=(3,)) if mistake_rows else "",
        suspect_count=len(result.suspects), training_count=result.training_count, strong=result.strong_suspects,
        strong_share=f"{STRONG:.0%}", suspects_shown=min(SUSPECTS_SHOWN, len(result.suspects)),
        suspects=_table(("", "path", "folder", "model says", "confidence"), suspect_rows, numeric=(4,)),
        unsure_plot=_image(folder / "unsure.png", "share of photos labelled and their accuracy for each threshold P"),
        unsure_table=_table(("P", "photos labelled", "accuracy of those labelled"), unsure_rows, numeric=(0, 1, 2)),
        ece=percent(result.ece), bins=BINS,
        reliability=_image(folder / "reliability.png", "reliability diagram: accuracy against confidence on Test_Set"),
        unknown="" if flagged is None else f"<p>The unknown score would label <strong>{flagged:.2%}</strong> of the test photos "
        "<em>unknown</em> (not one of the classes), though every one is: the price of answering <em>unknown</em> for photos of "
        "something else.</p>")
    Path(page_path).write_text(page, encoding="utf-8")
    return page_path


def data_uri(png_path):
    """The picture as a data: URI, so the page needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(Path(png_path).read_bytes()).decode("ascii")


def thumbnail_uri(image_path, side=THUMB):
    """A small JPEG of a photo as a data: URI; None if the photo can no longer be read."""
    from PIL import Image, ImageOps

    from ..images import BadImage, open_image
    try:
        image = ImageOps.exif_transpose(open_image(image_path, draft_size=side))
        image = ImageOps.fit(image.convert("RGB"), (side, side), Image.Resampling.LANCZOS)
    except (BadImage, OSError, ValueError):
        return None
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image(png_path, alt):
    path = Path(png_path)
    if not path.is_file():
        return f'<p class="muted">({html.escape(path.name)} was not made)</p>'
    return f'<img src="{data_uri(path)}" alt="{html.escape(alt)}">'


def _table(header, rows, numeric=()):
    cells = "".join(f"<th>{html.escape(str(name))}</th>" for name in header)
    body = ["<tr>" + "".join(f'<td class="{"number" if index in numeric else ""}">{value}</td>'
                             for index, value in enumerate(row)) + "</tr>" for row in rows]
    return f"<table><tr>{cells}</tr>" + "".join(body) + "</table>"


def _display(path):
    return html.escape(str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
