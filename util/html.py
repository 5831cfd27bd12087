"""A tiny HTML page builder (dominate) for training progress and test results: headers plus rows of images.

Images live in web_dir/images/; the page is web_dir/index.html. Image paths are given relative to the images
folder and URL-quoted, so file names with spaces or '#' still load.
"""
import os
import time
from urllib.parse import quote

import dominate
from dominate.tags import a, br, h1, h3, img, meta, p, table, td, tr

from util.util import atomic_path, mkdirs


def _url(path):
    return quote(path.replace(os.sep, "/"))


def _text(txt):
    return txt.decode("utf-8", "replace") if isinstance(txt, bytes) else str(txt)


class HTML:
    def __init__(self, web_dir, title, refresh=0):
        """refresh: seconds between automatic reloads of the page in the browser; 0 for none."""
        self.web_dir = web_dir
        self.title = title
        self.img_dir = os.path.join(web_dir, "images")
        mkdirs([self.web_dir, self.img_dir])

        self.doc = dominate.document(title=title)
        with self.doc.head:
            meta(charset="utf-8")
            if refresh > 0:
                meta(http_equiv="refresh", content=str(refresh))
        with self.doc:
            h1(title)
            p(f"Written {time.strftime('%c')}")

    def get_image_dir(self):
        return self.img_dir

    def add_header(self, text):
        with self.doc:
            h3(_text(text))

    def add_figure(self, path, width=None):
        """One linked image whose path is relative to web_dir (not to images/), e.g. the loss curves.

        width: display width in pixels; None shows it at its own size.
        """
        with self.doc:
            with a(href=_url(path)):
                img(src=_url(path), **({} if width is None else {"style": f"width:{width}px"}))

    def add_images(self, ims, txts, links, width=400):
        """One table row; each cell shows images/IM linked to images/LINK, captioned by its text."""
        row_table = table(border=1, style="table-layout: fixed;")
        self.doc.add(row_table)
        with row_table:
            with tr():
                for im, txt, link in zip(ims, txts, links):
                    with td(style="word-wrap: break-word;", halign="center", valign="top"):
                        with a(href="images/" + _url(link)):
                            img(style=f"width:{width}px", src="images/" + _url(im))
                        br()
                        p(_text(txt))

    def save(self):
        """Write web_dir/index.html (temp file + rename, so a reader never sees half a page)."""
        path = os.path.join(self.web_dir, "index.html")
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(self.doc.render())
        return path
