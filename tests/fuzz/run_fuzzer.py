#!/usr/bin/env python3
"""Runs one libFuzzer target for ctest (tests/fuzz/CMakeLists.txt).

fuzz.<name>: assembles the seed corpus in WORK/<name>/seeds (the hand-made
seeds in seeds/<name>/ and inputs made from files of the shared corpus,
which is only read), then fuzzes for --seconds (the environment's
MUGAI_FUZZ_SECONDS wins, for a long run without reconfiguring) with new
inputs kept in WORK/<name>/found, so a later run starts where this one
stopped. Crashes are written to WORK/<name>/crashes/ and the whole log to
WORK/<name>/fuzz.log. It prints the executions and executions per second,
and fails when the fuzzer does.

fuzz.<name>.regressions (--regressions): runs the target once on every
file in regressions/<name>/.
"""

import argparse
import email
import email.policy
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

MAX_SEED_BYTES = 64 * 1024


def emls(corpus, *folders):
    for folder in folders:
        yield from sorted((corpus / folder).rglob("*.eml"))


def header_block(data):
    end = re.search(rb"\r?\n\r?\n", data)
    return data[: end.start()] if end else data


def header_seeds(corpus):
    for path in emls(corpus, "mail"):
        yield path.name, header_block(path.read_bytes())


def charset_seeds(corpus):
    """Bodies of mails, with the charset their header declares."""
    for path in emls(corpus, "mail/japanese", "mail/malformed", "mail/attachments"):
        data = path.read_bytes()
        end = re.search(rb"\r?\n\r?\n", data)
        body = data[end.end():] if end else b""
        yield path.name + ".raw", body
        label = re.search(rb'charset="?([A-Za-z0-9_.:-]+)', header_block(data), re.I)
        if label:
            yield path.name + ".declared", b"charset=" + label.group(1) + b"\n" + body


def message_parts(corpus, media_type):
    for path in emls(corpus, "mail"):
        try:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
            parts = [p for p in message.walk() if p.get_content_type() == media_type]
            for n, part in enumerate(parts):
                payload = part.get_payload(decode=True)
                if payload:
                    yield f"{path.name}.{n}", payload
        except Exception:  # a malformed mail is a seed for other targets
            continue


def html_seeds(corpus):
    for path in sorted(corpus.rglob("*.htm*")):
        yield path.name, path.read_bytes()
    yield from message_parts(corpus, "text/html")


def text_seeds(corpus):
    yield from message_parts(corpus, "text/plain")
    yield from html_seeds(corpus)


def raw_mail_seeds(corpus):
    for path in list(emls(corpus, "mail/japanese"))[:20]:
        yield path.name, path.read_bytes()


def name_seeds(corpus):
    """Member names as the archives store them, and names of corpus files."""
    for path in sorted((corpus / "archive").rglob("*")):
        names = []
        try:
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as z:
                    for info in z.infolist():
                        utf8 = info.flag_bits & 0x800
                        names.append(info.filename.encode("utf-8" if utf8 else "cp437", "replace"))
            elif path.suffix in (".tgz", ".tbz") or path.name.endswith((".tar.gz", ".tar.bz2")):
                with tarfile.open(path) as t:
                    names = [m.name.encode("utf-8", "surrogateescape") for m in t.getmembers()]
        except Exception:  # malformed archives are the point of the corpus
            continue
        for n, name in enumerate(names):
            yield f"{path.name}.{n}", name
    for path in sorted((corpus / "dangerzone-test-docs").rglob("*")):
        yield "dz." + path.name, str(path.relative_to(corpus)).encode("utf-8", "surrogateescape")


def config_seeds(corpus):
    source = Path(__file__).resolve().parents[2]
    yield "mugai.toml", (source / "samples/mugai.toml").read_bytes()
    configmap = (source / "deploy/k8s/configmap.yaml").read_text()
    block = configmap.split("mugai.toml: |\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line[4:])
    yield "configmap.toml", "\n".join(lines).encode()


def varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number, value):
    """One protobuf field: an int is a varint, bytes are length-delimited."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def frame(*fields):
    record = field(1, 7) + b"".join(fields)  # job 7, as the fuzz target's
    return len(record).to_bytes(4, "little") + record


def record_seeds(corpus):
    """Jobs as workers send them, in the framing of sanitizers/worker/frame.h,
    after a first byte with the record kinds (all four: 0x0F). Written by
    hand: python3-protobuf is not a build dependency."""
    done = frame(field(6, b""))
    finding = frame(field(5, field(1, b"text.invalid_bytes") + field(2, b"3 bytes")))
    text = frame(field(2, field(1, "お知らせ\nsee https://example.jp/".encode())))
    pixels = frame(field(3, field(1, 4) + field(2, 2) + field(3, 3) + field(4, bytes(range(24)))))
    child = frame(field(4, field(1, "資料/a.pdf".encode()) + field(2, b"%PDF-1.4") +
                        field(3, b"application/pdf") + field(4, 1)))
    mailbox = field(1, "山田 太郎".encode()) + field(2, b"taro@example.jp")
    header = frame(field(7, field(1, b"From") + field(3, mailbox)))
    subject = frame(field(7, field(1, b"Subject") + field(2, "会議 =?x?=".encode())))
    date = frame(field(7, field(1, b"Date") + field(4, 1700000000) + field(5, 540)))
    yield "text", b"\x01" + text + finding + done
    yield "pixels", b"\x02" + pixels + pixels + done
    yield "children", b"\x04" + child + child + finding + done
    yield "mail", b"\x0f" + header + subject + date + text + child + done
    yield "invalid_utf8", b"\x01" + frame(field(2, field(1, b"\xff\xfe"))) + done
    yield "wrong_kind", b"\x01" + pixels + done
    yield "after_done", b"\x0f" + done + text


# What each target's inputs are made of, besides its seeds/ files.
CORPUS_SEEDS = {
    "record_validator": record_seeds,
    "html": html_seeds,
    "charset": charset_seeds,
    "mail_headers": header_seeds,
    "message_writer": raw_mail_seeds,
    "links": text_seeds,
    "names": name_seeds,
    "config": config_seeds,
}


def assemble(name, source_dir, corpus, seeds_dir):
    seeds_dir.mkdir(parents=True, exist_ok=True)
    for old in seeds_dir.iterdir():
        old.unlink()
    count = 0
    hand = source_dir / "seeds" / name
    for path in sorted(hand.iterdir()) if hand.is_dir() else []:
        (seeds_dir / ("hand." + path.name)).write_bytes(path.read_bytes())
        count += 1
    # The record seeds are made here, from no file of the corpus.
    if corpus.is_dir() or name == "record_validator":
        for n, (label, data) in enumerate(CORPUS_SEEDS[name](corpus)):
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", label)[:80]
            (seeds_dir / f"corpus.{n}.{safe}").write_bytes(data[:MAX_SEED_BYTES])
            count += 1
    else:
        print(f"note: no corpus at {corpus}; hand-made seeds only")
    return count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--fuzzer", required=True)
    parser.add_argument("--source-dir", required=True, type=Path)
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--regressions", action="store_true")
    args = parser.parse_args()

    if args.regressions:
        inputs = sorted(str(p) for p in (args.source_dir / "regressions" / args.name).glob("*") if p.is_file())
        if not inputs:
            print(f"no regression inputs for {args.name}")
            return 0
        return subprocess.run([args.fuzzer, "-rss_limit_mb=2048", "-timeout=10", *inputs]).returncode

    seconds = int(os.environ.get("MUGAI_FUZZ_SECONDS", args.seconds))
    work = args.work_dir / args.name
    seeds = work / "seeds"
    found = work / "found"
    crashes = work / "crashes"
    for d in (found, crashes):
        d.mkdir(parents=True, exist_ok=True)
    print(f"{args.name}: {assemble(args.name, args.source_dir, args.corpus, seeds)} seeds, {seconds} s", flush=True)
    command = [args.fuzzer, f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-timeout=10",
               "-max_len=65536", "-print_final_stats=1", f"-artifact_prefix={crashes}/", str(found), str(seeds)]
    # Beyond libFuzzer's own bound: loading the corpus, a hang in the runtime.
    log = work / "fuzz.log"
    with log.open("w") as out:
        run = subprocess.run(command, stderr=out, timeout=seconds + 300)
    output = log.read_text(errors="replace")
    # The end holds the crash report, if any, and the final stats.
    sys.stderr.write("".join(output.splitlines(keepends=True)[-80:]))
    stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", output))
    print(f"fuzz.{args.name}: {stats.get('number_of_executed_units', '?')} executions, "
          f"{stats.get('average_exec_per_sec', '?')} exec/s, {len(list(found.iterdir()))} inputs in {found}, "
          f"exit {run.returncode}" + (f", crash input in {crashes}, full log {log}" if run.returncode else ""))
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
