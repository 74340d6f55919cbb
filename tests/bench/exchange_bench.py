"""The file exchange: files per second through the ingress's SubmitFile,
4 concurrent clients, in one run of one real mugaid (test signatures),
driven by mugai_load (C++, one gRPC channel per client, a submit key of
its own per request), against SanitizeFile of the same file with the same
load as the baseline: what the exchange adds (the inbox's derivative
copies, the submission record) on top of sanitizing.

Two files: a 10 KB Japanese text, and a 5 MB PDF made here (four pages,
each one incompressible image, so the bytes are real and the flattening
renders every page). Prints files/s, MB/s of input, p50 / p99 latency and
the ratio to the baseline. It reports figures and never asserts on them:
it fails only when a request errors or is not delivered.

CI runs it for about a minute; MUGAI_BENCH_SECONDS (per text case, default
5) and MUGAI_BENCH_PDF_COUNT (PDFs per PDF case, default 16) make it longer.
"""

import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_daemon import Daemon  # noqa: E402
from load_client import run_load  # noqa: E402

CLIENTS = 4
SECONDS = float(os.environ.get("MUGAI_BENCH_SECONDS", "5"))
PDF_COUNT = int(os.environ.get("MUGAI_BENCH_PDF_COUNT", "16"))
RECIPIENT = "bench-user"
TEXT = ("各位\n\n来週の防災訓練の日程をお知らせします。"
        "日時: 12月8日（火）10時から、場所: 本庁舎 3階 大会議室。\n")


def text_file(size=10_000):
    data = TEXT.encode("utf-8") * (size // len(TEXT.encode("utf-8")))
    return data + b"." * (size - 1 - len(data)) + b"\n"


def pdf_file(target_bytes=5_000_000, pages=4):
    """A PDF of `pages` pages, each an incompressible RGB image, about
    `target_bytes` long."""
    side = int((target_bytes / pages / 3) ** 0.5)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", None]
    kids = []
    for page in range(pages):
        image = zlib.compress(os.urandom(side * side * 3), 0)
        content = f"q 540 0 0 540 36 126 cm /Im{page} Do Q".encode()
        first = len(objects) + 1
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject "
                       f"<< /Im{page} {first + 1} 0 R >> >> /Contents {first + 2} 0 R >>".encode())
        objects.append(f"<< /Type /XObject /Subtype /Image /Width {side} /Height {side} /ColorSpace /DeviceRGB "
                       f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(image)} >>\nstream\n".encode()
                       + image + b"\nendstream")
        objects.append(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
        kids.append(f"{first} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>".encode()
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def load(daemon, call, path, seconds, count=0):
    args = [call, path, "--clients", str(CLIENTS), "--seconds", str(seconds)]
    if call == "--submit":
        args += ["--recipient", RECIPIENT]
    if count:
        args += ["--count", str(count)]
    return run_load(daemon, path, args, timeout=seconds + 600)


def main():
    daemon = Daemon().start()
    try:
        text = daemon.write("notice.txt", text_file())
        pdf = daemon.write("scan.pdf", pdf_file())
        # The workers' first requests warm them up; that is not measured.
        load(daemon, "--submit", text, 1)
        load(daemon, "--file", pdf, 60, count=CLIENTS)
        cases = [("10 KB text", text, SECONDS, 0), ("5 MB PDF", pdf, 600, PDF_COUNT)]
        results = {}
        for name, path, seconds, count in cases:
            for call in ("--submit", "--file"):
                results[(name, call)] = load(daemon, call, path, seconds, count)
        print(f"{CLIENTS} clients; baseline: SanitizeFile of the same file with the same load")
        print(f"{'case':12} {'call':12} {'files':>6} {'files/s':>8} {'MB/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'vs baseline':>11}")
        for name, path, _, _ in cases:
            megabytes = os.path.getsize(path) / 1e6
            base = results[(name, "--file")]["per_second"]
            for call, label in (("--submit", "SubmitFile"), ("--file", "SanitizeFile")):
                r = results[(name, call)]
                print(f"{name:12} {label:12} {r['requests']:>6} {r['per_second']:8.2f} "
                      f"{r['per_second'] * megabytes:7.2f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
                      f"{r['per_second'] / base:10.2f}x")
    finally:
        daemon.cleanup()


if __name__ == "__main__":
    main()
