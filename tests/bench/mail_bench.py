"""Mail: messages per second through SanitizeMessage, in one run of one real
mugaid (test signatures), driven by mugai_load (C++, one gRPC channel per
client, so the client is not what is measured).

Three messages: a Japanese text mail, a Japanese HTML mail with links, and a
text mail with a one-page PDF attachment; each with 1 and 2 concurrent
clients for a few seconds. The baseline, in the same run: SanitizeFile of
the text mail's body as a .txt file, the cheapest item the daemon handles.
Prints requests per second, p50 and p99 latency and the ratio of each mail
case to the baseline with as many clients. It reports figures and never
asserts on them: it fails only when a request errors or is not delivered.
"""

import os
import sys
from email.message import EmailMessage

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_daemon import CORPUS, Daemon  # noqa: E402
from load_client import run_load  # noqa: E402

SECONDS = float(os.environ.get("MUGAI_BENCH_SECONDS", "5"))
BODY = ("各位\n\n来週の防災訓練の日程をお知らせします。\n日時: 12月8日（火）10時から\n場所: 本庁舎 3階 大会議室\n\n"
        "よろしくお願いいたします。\n総務課 山田\n") * 3


def message(subject):
    m = EmailMessage()
    m["From"] = "総務課 山田 <yamada@example.jp>"
    m["To"] = "職員各位 <staff@city.example.lg.jp>"
    m["Subject"] = subject
    m["Message-ID"] = "<bench@example.jp>"
    return m


def text_mail():
    m = message("防災訓練のお知らせ")
    m.set_content(BODY, charset="iso-2022-jp")
    return m


def html_mail():
    m = message("防災訓練のお知らせ (HTML)")
    m.set_content(BODY)
    html = "".join(f"<p>{line}</p>" for line in BODY.splitlines())
    m.add_alternative("<html><body>" + html + '<p><a href="https://www.city.example.lg.jp/bousai/">詳細</a></p>'
                      "</body></html>", subtype="html")
    return m


def pdf_mail():
    m = text_mail()
    with open(os.path.join(CORPUS, "pdf", "text", "crazyones-pdfa.pdf"), "rb") as f:
        m.add_attachment(f.read(), maintype="application", subtype="pdf", filename="資料.pdf")
    return m


def load(daemon, flag, path, clients, seconds=SECONDS):
    return run_load(daemon, path, [flag, path, "--clients", str(clients), "--seconds", str(seconds)], timeout=120)


def main():
    # The daemon's per-item log line is what a real deployment writes too.
    daemon = Daemon().start()
    try:
        cases = {}
        for name, build in (("text mail", text_mail), ("HTML mail", html_mail), ("PDF attachment", pdf_mail)):
            cases[name] = ("--message", daemon.write(name.replace(" ", "_") + ".eml", bytes(build())))
        cases["baseline: text file"] = ("--file", daemon.write("body.txt", BODY.encode("utf-8")))
        # Until the first requests the workers and LibreOffice are still
        # warming up; that is not what is measured.
        load(daemon, *cases["text mail"], 1, seconds=2)
        results = {}
        for clients in (1, 2):
            for name, (flag, path) in cases.items():
                results[(name, clients)] = load(daemon, flag, path, clients)
        print(f"{'case':24} {'clients':>7} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs baseline':>11}")
        for (name, clients), r in results.items():
            base = results[("baseline: text file", clients)]["per_second"]
            print(f"{name:24} {clients:>7} {r['per_second']:8.1f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
                  f"{r['per_second'] / base:10.2f}x")
    finally:
        daemon.cleanup()


if __name__ == "__main__":
    main()
