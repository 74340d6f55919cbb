"""Dangerzone's PDF conversion without its container, for pdf_bench.py to
time against Mugai.

    /usr/bin/python3 dangerzone_equivalent.py RESULT.json OUTDIR PDF...

Runs under Debian's python3-fitz (PyMuPDF 1.21). As in Dangerzone, each PDF
goes through two processes: doc_to_pixels (dangerzone/conversion/
doc_to_pixels.py: the document's bytes on stdin, fitz.open, page by page
get_pixmap(dpi=150), and on stdout the page count, then per page its width,
height and RGB samples, each count as 2 bytes big-endian) and, reading that
stream, the host's pixels-to-PDF (isolation_provider/base.py,
convert_with_proc and pixels_to_pdf_page: the size checks, a Pixmap from the
untrusted bytes, set_dpi(150), a one-page document saved with
deflate_images=True and inserted into the safe document, which is saved at
the end). The two must be separate processes here too: with PyMuPDF 1.21,
building a Pixmap from samples while a document is being rendered breaks
the next render ("Overly wide image", then heap corruption). Left out is
what the container costs, its start per document, so this is a lower
bound on Dangerzone's time. Writes a JSON list of {input, output, pages,
bytes} to RESULT.json.
"""

import json
import os
import subprocess
import sys

import fitz

DEFAULT_DPI = 150  # dangerzone/conversion/common.py
INT_BYTES = 2
MAX_PAGES = MAX_PAGE_WIDTH = MAX_PAGE_HEIGHT = 10000  # dangerzone/conversion/errors.py


def write_int(value):
    sys.stdout.buffer.write(value.to_bytes(INT_BYTES, "big", signed=False))


def doc_to_pixels():
    """The conversion container's side: document on stdin, pixels on stdout."""
    doc = fitz.open(stream=sys.stdin.buffer.read(), filetype="application/pdf")
    if doc.page_count > MAX_PAGES:
        sys.exit("Number of pages exceeds maximum")
    write_int(doc.page_count)
    for page in doc.pages():
        pix = page.get_pixmap(dpi=DEFAULT_DPI)
        write_int(pix.width)
        write_int(pix.height)
        sys.stdout.buffer.write(pix.samples_mv)
    sys.stdout.flush()


def read_exact(f, size):
    data = f.read(size)
    if len(data) != size:
        raise RuntimeError("the conversion process ended early")
    return data


def read_int(f):
    return int.from_bytes(read_exact(f, INT_BYTES), "big", signed=False)


def insert_file(page_doc, pixmap):
    # Document.insert_file(pixmap) arrived in PyMuPDF 1.22; this is its body
    # for a Pixmap: PNG bytes, opened as an image document, converted to PDF.
    src = fitz.Document("png", pixmap.tobytes())
    page_doc.insert_pdf(fitz.Document("pdf", src.convert_to_pdf()))


def pixels_to_pdf_page(untrusted_data, untrusted_width, untrusted_height):
    pixmap = fitz.Pixmap(fitz.Colorspace(fitz.CS_RGB), untrusted_width, untrusted_height,
                         untrusted_data, False)
    pixmap.set_dpi(DEFAULT_DPI, DEFAULT_DPI)
    page_doc = fitz.Document()
    insert_file(page_doc, pixmap)
    return fitz.open("pdf", page_doc.tobytes(deflate_images=True))


def convert(path, output):
    """The host's side, with doc_to_pixels in a child process."""
    with open(path, "rb") as f:
        p = subprocess.Popen([sys.executable, __file__, "--doc-to-pixels"], stdin=f,
                             stdout=subprocess.PIPE)
    n_pages = read_int(p.stdout)
    if n_pages == 0 or n_pages > MAX_PAGES:
        raise RuntimeError("page count out of range")
    safe_doc = fitz.Document()
    for _ in range(n_pages):
        width = read_int(p.stdout)
        height = read_int(p.stdout)
        if not (1 <= width <= MAX_PAGE_WIDTH) or not (1 <= height <= MAX_PAGE_HEIGHT):
            raise RuntimeError("a page exceeded the maximum width or height")
        untrusted_pixels = read_exact(p.stdout, width * height * 3)
        safe_doc.insert_pdf(pixels_to_pdf_page(untrusted_pixels, width, height))
    p.stdout.close()
    if p.wait() != 0:
        raise RuntimeError(f"doc_to_pixels failed on {path}")
    safe_doc.save(output)
    return n_pages


def main(result_path, out_dir, *pdfs):
    results = []
    for i, path in enumerate(pdfs):
        output = os.path.join(out_dir, f"{i:03d}-safe.pdf")
        pages = convert(path, output)
        results.append({"input": path, "output": output, "pages": pages,
                        "bytes": os.path.getsize(output)})
    with open(result_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    if sys.argv[1:] == ["--doc-to-pixels"]:
        doc_to_pixels()
    else:
        main(*sys.argv[1:])
