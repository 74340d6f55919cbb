"""Archives: what a zip costs against its files sent one by one, in one run
of one real mugaid (test signatures), fed by the real CLI.

  (a) the files one after another, each an item of its own;
  (b) the files as many at once as there are CPUs (the most a client
      sending them separately can get out of the daemon);
  (c) the same files in one zip, one item: unpacked in a worker, every
      member scanned and converted, several members at once, and the zip
      of derivatives written by the daemon.

The files: the corpus PDFs of the PDF benchmark, the Dangerzone sample
images and the sample text files. Prints seconds and the ratios of (c) to
(a) and to (b), and the daemon's peak RSS during (c). It reports figures
and never asserts on them: it fails only when a run errors or an item is
not delivered. Standard library only.
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_daemon import BIN, CORPUS, SAMPLES, Daemon  # noqa: E402
from pdf_bench import corpus_pdfs  # noqa: E402

CPUS = os.cpu_count() or 2


def files():
    docs = os.path.join(CORPUS, "dangerzone-test-docs", "test_docs")
    images = [os.path.join(docs, n) for n in sorted(os.listdir(docs))
              if n.rsplit(".", 1)[-1] in ("png", "jpg", "gif", "bmp", "tiff", "ppm", "pbm", "pnm")]
    texts = [os.path.join(SAMPLES, "files", n) for n in sorted(os.listdir(os.path.join(SAMPLES, "files")))]
    return corpus_pdfs() + images + texts


def sanitize(daemon, path, out):
    r = subprocess.run([os.path.join(BIN, "mugai"), "--server", daemon.ingress, "--timeout", "300",
                        "sanitize-file", path, "--json", "-o", out], capture_output=True)
    if r.returncode not in (0, 2):
        raise SystemExit(f"mugai failed on {path}: {r.stderr.decode()}")
    return json.loads(r.stdout)


def timed(fn):
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    paths = files()
    work = tempfile.mkdtemp(prefix="mugai-archive-bench-")
    bundle = os.path.join(work, "bundle.zip")
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
        for i, path in enumerate(paths):
            z.write(path, f"{i:03d}-{os.path.basename(path)}")
    total = sum(os.path.getsize(p) for p in paths)
    print(f"{len(paths)} files, {total / 1e6:.1f} MB; zip {os.path.getsize(bundle) / 1e6:.1f} MB; {CPUS} CPUs")

    daemon = Daemon("[limits]\nitem_seconds = 300\n").start()
    try:
        out = os.path.join(work, "out")
        sanitize(daemon, paths[0], out)  # warm: first conversions load fonts and caches

        one_by_one, reports = timed(lambda: [sanitize(daemon, p, out) for p in paths])
        held = [p for p, r in zip(paths, reports) if r["outcome"] == "quarantined"]

        def parallel():
            with concurrent.futures.ThreadPoolExecutor(CPUS) as pool:
                return list(pool.map(lambda p: sanitize(daemon, p, out), paths))
        at_once, _ = timed(parallel)

        with open(f"/proc/{daemon.proc.pid}/clear_refs", "w") as f:
            f.write("5")
        rss_before = vm_kib(daemon.proc.pid, "VmRSS")
        as_zip, report = timed(lambda: sanitize(daemon, bundle, out))
        peak = vm_kib(daemon.proc.pid, "VmHWM")
        if report["outcome"] not in ("delivered", "delivered_with_removals"):
            raise SystemExit(f"the zip was not delivered: {report['item']['findings']}")
        removed = [c["path"] for c in report["item"]["children"] if c["outcome"] == "quarantined"]
    finally:
        daemon.stop()
        daemon.cleanup()

    print(f"(a) one by one:          {one_by_one:7.2f} s  ({len(held)} held: {[os.path.basename(p) for p in held]})")
    print(f"(b) {CPUS} at a time:          {at_once:7.2f} s")
    print(f"(c) one zip:             {as_zip:7.2f} s  ({len(removed)} members removed; "
          f"daemon RSS {rss_before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB)")
    print(f"zip / one by one:        {as_zip / one_by_one:7.2f}x the time")
    print(f"zip / {CPUS} at a time:        {as_zip / at_once:7.2f}x the time")


if __name__ == "__main__":
    main()
