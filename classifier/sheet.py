"""A contact sheet: the labelled photos as captioned thumbnails in one picture, drawn with Pillow.

A glance at the sheet shows what a list of paths and numbers hides: which photos the model is
unsure about (framed in amber), which are of none of its classes (labelled unknown, framed in
slate blue), and whether the confident ones look right.
"""
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .config import UsageError, counted
from .images import BadImage, open_image
from .prediction import UNKNOWN

LOW_CONFIDENCE = 0.7   # below this a label is marked as doubtful
MAX_IMAGES = 500       # a bigger sheet would take gigabytes of memory; the first ones are drawn
COLUMNS = 6
THUMB, FRAME, GAP, CAPTION, HEADER = 176, 5, 14, 46, 52
LINE, MAX_LABEL_LINES = 18, 4  # a label too long for its line wraps: a mistake says what it is under what the model said

INK, MUTED, PAPER = (33, 33, 33), (117, 117, 117), (250, 250, 250)
SURE, DOUBT, STRANGER = (46, 125, 50), (239, 108, 0), (84, 110, 122)
FORMATS = (".png", ".jpg", ".jpeg")


def check_sheet_path(path):
    """Refuse a sheet name Pillow cannot write, before any photo is labelled."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"--sheet {path}: name the contact sheet .png or .jpg")
    if not path.parent.is_dir():
        raise UsageError(f"--sheet {path}: folder {path.parent} not found; create it or pick another path")


def make_sheet(rows, path, columns=COLUMNS, doubt_below=LOW_CONFIDENCE, title=None):
    """Draw rows of (image path, label, confidence[, heatmap]) as a grid of captioned thumbnails; save it to path.

    A heatmap (heatmap.py) is drawn over its photo. Labels under doubt_below confidence are marked
    doubtful. title: the header's text (default: the number of images).
    The header also says how many photos could not be drawn (unreadable by now: a grey square each).
    Returns the number of thumbnails drawn (at most MAX_IMAGES).
    """
    rows = [(Path(image), label, float(confidence), heatmap[0] if heatmap else None)
            for image, label, confidence, *heatmap in rows][:MAX_IMAGES]
    fonts = {size: ImageFont.load_default(size=size) for size in (12, 15, 18)}
    labels = [wrap(label, fonts[15]) for _, label, _, _ in rows]
    columns = max(1, min(columns, len(rows)))
    cell_w, cell_h = THUMB + 2 * FRAME, THUMB + 2 * FRAME + CAPTION + LINE * (max(map(len, labels), default=1) - 1)
    width = GAP + columns * (cell_w + GAP)
    height = HEADER + math.ceil(len(rows) / columns) * (cell_h + GAP) + GAP
    sheet = Image.new("RGB", (max(width, 520), height), PAPER)
    draw = ImageDraw.Draw(sheet)

    undrawn = 0  # the cells first: the header counts the photos that could not be drawn
    for index, ((image_path, label, confidence, heatmap), lines) in enumerate(zip(rows, labels)):
        x = GAP + (index % columns) * (cell_w + GAP)
        y = HEADER + (index // columns) * (cell_h + GAP)
        undrawn += not _draw_cell(sheet, draw, fonts, (x, y), image_path, label, lines, confidence, heatmap, doubt_below)

    doubtful = sum(confidence < doubt_below and label != UNKNOWN for _, label, confidence, _ in rows)
    strangers = sum(label == UNKNOWN for _, label, _, _ in rows)
    title = (title or counted(len(rows), "image")) + (f" ({undrawn} could not be drawn)" if undrawn else "")
    legend = ((SURE, "confident"), (DOUBT, f"below {threshold_percent(doubt_below)} confidence: {doubtful}")) + \
        (((STRANGER, f"unknown, none of the classes: {strangers}"),) if strangers else ())
    header_width = GAP + fonts[18].getlength(title) + sum(24 + 18 + fonts[15].getlength(text) for _, text in legend) + GAP
    if header_width > sheet.width:  # a long title over a few photos: widen the sheet, never cut the header off
        wider = Image.new("RGB", (math.ceil(header_width), height), PAPER)
        wider.paste(sheet)
        sheet, draw = wider, ImageDraw.Draw(wider)
    draw.text((GAP, 14), title, font=fonts[18], fill=INK)
    legend_x = GAP + fonts[18].getlength(title) + 24
    for colour, text in legend:
        draw.rectangle((legend_x, 19, legend_x + 12, 31), fill=colour)
        draw.text((legend_x + 18, 17), text, font=fonts[15], fill=INK)
        legend_x += 18 + fonts[15].getlength(text) + 24
    try:
        sheet.save(path)
    except OSError as error:
        raise UsageError(f"cannot write the contact sheet {path} ({error.strerror or error}): pass --sheet with a writable path")
    return len(rows)


def _thumbnail(image_path, heatmap=None):
    """The photo upright (under its heatmap, if any) and cropped to a centred square; None if it can
    no longer be read."""
    try:
        image = _on_paper(ImageOps.exif_transpose(open_image(image_path, draft_size=THUMB)))
        if heatmap is not None:  # over the whole photo, as the model saw it, before the crop
            from .heatmap import overlay
            image = overlay(image, heatmap)
        return ImageOps.fit(image.convert("RGB"), (THUMB, THUMB), Image.Resampling.LANCZOS)
    except (BadImage, OSError, ValueError):
        return None


def _on_paper(image):
    """A photo with transparency (a PNG cut-out, a logo) on the sheet's paper colour: converted to RGB
    as it is, it would show the colours hidden under its transparent pixels (often black)."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    image = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", image.size, (*PAPER, 255)), image).convert("RGB")


def _draw_cell(sheet, draw, fonts, origin, image_path, label, lines, confidence, heatmap=None, doubt_below=LOW_CONFIDENCE):
    """One captioned thumbnail, the label in its wrapped lines; returns whether the photo could be drawn
    (else a grey square stands in)."""
    x, y = origin
    stranger = label == UNKNOWN
    doubtful = stranger or confidence < doubt_below
    colour = STRANGER if stranger else DOUBT if doubtful else SURE
    thumbnail = _thumbnail(image_path, heatmap)
    sheet.paste(thumbnail if thumbnail is not None else Image.new("RGB", (THUMB, THUMB), (200, 200, 200)), (x + FRAME, y + FRAME))
    # A thin green frame for a confident label; a thick amber one and a badge for a doubtful one.
    inset = 0 if doubtful else FRAME - 2
    draw.rectangle((x + inset, y + inset, x + THUMB + 2 * FRAME - 1 - inset, y + THUMB + 2 * FRAME - 1 - inset),
                   outline=colour, width=FRAME + 1 if doubtful else 2)
    if doubtful:
        badge = "not one of the classes" if stranger else f"unsure · {percent(confidence, doubt_below)}"
        badge_w = draw.textlength(badge, font=fonts[12]) + 12
        draw.rectangle((x + FRAME, y + FRAME, x + FRAME + badge_w, y + FRAME + 19), fill=DOUBT, outline="white")
        draw.text((x + FRAME + 6, y + FRAME + 3), badge, font=fonts[12], fill="white")

    text_y = y + THUMB + 2 * FRAME + 5
    score = "" if stranger else percent(confidence, doubt_below)
    for number, line in enumerate(lines):
        draw.text((x, text_y + number * LINE), line, font=fonts[15], fill=colour if doubtful else INK)
    draw.text((x + THUMB + 2 * FRAME - draw.textlength(score, font=fonts[15]), text_y), score, font=fonts[15], fill=colour)
    name = image_path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # a non-UTF-8 file name
    draw.text((x, text_y + 20 + (len(lines) - 1) * LINE), _fit(name, fonts[12], THUMB + 2 * FRAME), font=fonts[12], fill=MUTED)
    return thumbnail is not None


def percent(confidence, threshold):
    """The confidence in percent with one decimal, never rounded up to a threshold it is below: a photo
    marked unsure below 70 % at 0.6996 reads 69.9 %, not 70.0 %."""
    text = f"{confidence:.1%}"
    if confidence < threshold <= float(text[:-1]) / 100:
        text = f"{math.floor(confidence * 1000) / 10:.1f}%"
    return text


def threshold_percent(threshold):
    """70 % for 0.7, but 69.5 % for 0.695: a threshold is never rounded."""
    return f"{100 * threshold:.4g}%"


def wrap(text, font, first_width=THUMB - 50, width=THUMB + 2 * FRAME, max_lines=MAX_LABEL_LINES):
    """The label in lines that fit: the first beside the score (first_width pixels), the others under it.
    A line break in the label starts a new line; words break at spaces, and a word too long for its
    line anywhere. Past max_lines, an ellipsis ends the last line."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            room = width if lines else first_width
            if font.getlength(f"{line} {word}" if line else word) <= room:
                line = f"{line} {word}" if line else word
                continue
            if line:
                lines.append(line)
            while font.getlength(word) > (room := width if lines else first_width):
                cut = max(1, max(end for end in range(len(word) + 1) if font.getlength(word[:end]) <= room))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [_fit(" ".join(lines[max_lines - 1:]), font, width)]
    return lines


def _fit(text, font, width):
    """Shorten text with an ellipsis until it fits in width pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
