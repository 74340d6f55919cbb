"""PDF flattening: Mugai against a Dangerzone-equivalent pipeline and bare
pdftoppm, on the same PDFs, in one run.

  (a) Mugai: a real mugaid (test signatures), fed by the real CLI;
  (b) Dangerzone's conversion without its container (dangerzone_equivalent.py
      under Debian's python3-fitz);
  (c) `pdftoppm -r 150` alone, pixels thrown away: the floor for any
      renderer that rasterizes at 150 DPI.

Twice: one document at a time, as Dangerzone converts (Mugai's workers
may then share the pages of one document), and as many documents at once
as there are CPUs (every worker busy with a document of its own).

Prints pages per second, their ratios, peak memory (mugaid: VmHWM of the
daemon and of each worker and the scanner; the others: the peak RSS that
wait4 reports), output sizes and Mugai's median derivative/original size
ratio. It reports figures and never asserts on them: it fails only when a
run errors. Standard library only.
"""

import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_daemon import CORPUS, Daemon, children  # noqa: E402

FITZ_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-fitz
CPUS = os.cpu_count() or 2  # mugaid's default: one worker per CPU
DPI = "150"


def corpus_pdfs():
    """The corpus PDFs that render without a password and are not malformed
    on purpose; pdf/text holds the two long ones, TAMReview.pdf (23 pages)
    and tracemonkey.pdf (14)."""
    pdfs = []
    for folder in ("pdf/text", "pdf/cjk", "pdf/scanned", "pdf/active", "pdf/forms"):
        root = os.path.join(CORPUS, folder)
        pdfs += [os.path.join(root, n) for n in sorted(os.listdir(root)) if n.endswith(".pdf")]
    return pdfs + [os.path.join(CORPUS, "dangerzone-test-docs", "test_docs", "sample-pdf.pdf")]


def pages_of(path):
    out = subprocess.run(["pdfinfo", path], capture_output=True, check=True).stdout
    return int(re.search(rb"^Pages:\s+(\d+)", out, re.M).group(1))


def run_measured(args, **kwargs):
    """Runs `args` to the end: (exit code, peak RSS in KiB of it and the
    children it waited for, from wait4)."""
    p = subprocess.Popen(args, **kwargs)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return p.returncode, usage.ru_maxrss


def shards(pdfs, pages, n):
    """`pdfs` in n groups of about equal page counts, longest first."""
    groups = [[] for _ in range(n)]
    load = [0] * n
    for path in sorted(pdfs, key=lambda p: -pages[p]):
        i = load.index(min(load))
        groups[i].append(path)
        load[i] += pages[path]
    return [g for g in groups if g]


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1))


def process_name(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def bench_mugai(pdfs, work, parallel):
    daemon = Daemon().start()
    try:
        out = os.path.join(work, "mugai")
        # A first item outside the timing: the scanner's first scan and the
        # workers' first job are start-up, not throughput.
        daemon.sanitize(pdfs[0], os.path.join(work, "warm-up"))

        def one(path):
            rc, report = daemon.sanitize(path, out)
            if report["outcome"] != "delivered":
                raise RuntimeError(f"{path}: {report['outcome']} {report['item']['findings']}")
            return path, int(report["item"]["derivatives"][0]["size"])  # JSON uint64: a string

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            sizes = dict(pool.map(one, pdfs))
        seconds = time.monotonic() - started
        # Workers are replaced only after failures or max_jobs (500) jobs,
        # so the processes alive now are the ones that did the work.
        memory = {"mugaid": vm_hwm_kib(daemon.proc.pid)}
        for pid in children(daemon.proc.pid):
            name = process_name(pid)
            memory[f"{name}[{pid}]"] = vm_hwm_kib(pid)
        return seconds, sizes, memory
    finally:
        rc = daemon.stop()
        log = daemon.log_text()
        daemon.cleanup()
        if rc != 0:
            raise RuntimeError(f"mugaid exited with {rc}:\n{log}")


def bench_dangerzone(pdfs, pages, work, parallel):
    out = os.path.join(work, f"dangerzone-{parallel}")
    os.makedirs(out)
    script = os.path.join(HERE, "dangerzone_equivalent.py")
    groups = shards(pdfs, pages, parallel)

    def one(i):
        result = os.path.join(out, f"{i}.json")
        shard_out = os.path.join(out, str(i))
        os.makedirs(shard_out)
        rc, peak = run_measured([FITZ_PYTHON, script, result, shard_out, *groups[i]])
        if rc != 0:
            raise RuntimeError(f"the Dangerzone-equivalent pipeline failed ({rc}) on {groups[i]}")
        with open(result) as f:
            return json.load(f), peak

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(groups)) as pool:
        results = list(pool.map(one, range(len(groups))))
    seconds = time.monotonic() - started
    sizes = {r["input"]: r["bytes"] for rows, _ in results for r in rows}
    for path in pdfs:
        done = next(r["pages"] for rows, _ in results for r in rows if r["input"] == path)
        if done != pages[path]:
            raise RuntimeError(f"{path}: Dangerzone-equivalent made {done} pages of {pages[path]}")
    return seconds, sizes, max(peak for _, peak in results)


def bench_pdftoppm(pdfs, parallel):
    def one(path):
        rc, peak = run_measured(["pdftoppm", "-r", DPI, path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if rc != 0:
            raise RuntimeError(f"pdftoppm failed ({rc}) on {path}")
        return peak

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        peaks = list(pool.map(one, pdfs))
    return time.monotonic() - started, max(peaks)


def mib(kib):
    return f"{kib / 1024:.0f} MiB"


def report(parallel, total_pages, mugai, dangerzone, pdftoppm):
    (mugai_s, mugai_sizes, mugai_memory), (dz_s, dz_sizes, dz_peak), (ppm_s, ppm_peak) = mugai, dangerzone, pdftoppm
    rate = {name: total_pages / s for name, s in
            (("mugai", mugai_s), ("dangerzone", dz_s), ("pdftoppm", ppm_s))}
    print(f"{parallel} document(s) at a time:")
    print(f"  Mugai (mugaid + CLI)        {mugai_s:6.2f} s  {rate['mugai']:6.1f} pages/s")
    print(f"  Dangerzone-equivalent       {dz_s:6.2f} s  {rate['dangerzone']:6.1f} pages/s")
    print(f"  pdftoppm -r {DPI} (floor)      {ppm_s:6.2f} s  {rate['pdftoppm']:6.1f} pages/s")
    print(f"  Mugai / Dangerzone-equivalent: {rate['mugai'] / rate['dangerzone']:.2f} x the pages per second")
    print(f"  Mugai / pdftoppm:              {rate['mugai'] / rate['pdftoppm']:.2f} x the pages per second "
          f"(Mugai takes {mugai_s / ppm_s:.2f} x the bare render time)")
    print("  peak memory (VmHWM): " + ", ".join(f"{k} {mib(v)}" for k, v in mugai_memory.items()))
    print(f"  peak memory: Dangerzone-equivalent {mib(dz_peak)} (largest process), "
          f"pdftoppm {mib(ppm_peak)} (largest run)", flush=True)
    return mugai_sizes, dz_sizes


def main():
    pdfs = corpus_pdfs()
    pages = {p: pages_of(p) for p in pdfs}
    total_pages = sum(pages.values())
    original_bytes = {p: os.path.getsize(p) for p in pdfs}
    work = tempfile.mkdtemp(prefix="mugai-pdf-bench-")
    try:
        print(f"{len(pdfs)} PDFs, {total_pages} pages, {sum(original_bytes.values()) / 1e6:.1f} MB, "
              f"{DPI} DPI, {CPUS} CPUs", flush=True)
        for parallel in sorted({1, CPUS}):
            mugai_sizes, dz_sizes = report(
                parallel, total_pages, bench_mugai(pdfs, work, parallel),
                bench_dangerzone(pdfs, pages, work, parallel), bench_pdftoppm(pdfs, parallel))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mugai_total, dz_total = sum(mugai_sizes.values()), sum(dz_sizes.values())
    print(f"output: Mugai {mugai_total / 1e6:.1f} MB, Dangerzone-equivalent {dz_total / 1e6:.1f} MB "
          f"(Mugai {mugai_total / dz_total:.3f} x)")
    ratios = [mugai_sizes[p] / original_bytes[p] for p in pdfs]
    print(f"Mugai derivative / original size: median {statistics.median(ratios):.2f} x "
          f"(from {min(ratios):.2f} to {max(ratios):.0f} x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
