"""The HTML pages, reports/index.html and serve.py's page, are template files in classifier/templates/,
filled with string.Template: the page's markup lives in one HTML file, the values come from Python.
Both inline the shared style.css, as neither page may fetch anything."""
from functools import cache
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _read(name):
    return (TEMPLATES / name).read_text(encoding="utf-8")


def render(name, **values):
    """The template `name` with each $placeholder replaced by its value (HTML-escaped by the caller), and
    $shared_style by style.css. A placeholder without a value is a KeyError: a page is never half filled."""
    return Template(_read(name)).substitute(values, shared_style=_read("style.css"))
