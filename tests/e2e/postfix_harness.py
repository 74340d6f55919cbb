"""End-to-end harness: a real Postfix (the Debian package) in front of the
real mugai-milter and mugaid, delivering to an SMTP sink on loopback.

Everything runs on 127.0.0.1 only, in temporary directories:

- `SmtpSink`: a small ESMTP server (standard library, one thread per
  connection) that stores every message it receives with its envelope.
- `Postfix`: a private Postfix instance, started as root with
  `postfix -c DIR start`: its own config_directory (main.cf from
  deploy/postfix/main.cf.snippet plus the test's settings, master.cf with
  the smtpd entry of deploy/postfix/master.cf.snippet), queue_directory,
  data_directory and maillog_file, the Debian postfix user and postdrop
  group, smtpd on a free loopback port, everything relayed to one next hop
  (the sink, or another instance). Milters are optional, so the instance can
  be brought up without mugai-milter.
- `Milter`: $MUGAI_BIN_DIR/mugai-milter on inet:PORT@127.0.0.1 talking to a
  test_daemon.Daemon's ingress socket.

Standard library only (Python 3.11, as Debian 12 ships it).
"""

import email
import email.policy
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from test_daemon import BIN, CORPUS, EICAR, SAMPLES, Daemon, Process  # noqa: E402,F401

DEPLOY = os.path.normpath(os.path.join(HERE, "..", "..", "deploy"))
MAIN_SNIPPET = os.path.join(DEPLOY, "postfix", "main.cf.snippet")
MASTER_SNIPPET = os.path.join(DEPLOY, "postfix", "master.cf.snippet")
MILTER_BIN = os.path.join(BIN, "mugai-milter")
# The milter address the deploy snippets name; the harness puts the test
# milter's address in its place.
SNIPPET_MILTER = "inet:127.0.0.1:10029"
POSTFIX = "/usr/sbin/postfix"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def check_environment():
    """Fails (not skips) when what the e2e tests need is missing."""
    problems = []
    if not milter_available():
        problems.append(f"{MILTER_BIN} does not exist (build the tree first)")
    if os.geteuid() != 0:
        problems.append("the e2e tests start a private Postfix and must run as root")
    if not os.path.exists(POSTFIX):
        problems.append("Postfix is not installed (run deploy/setup.sh install)")
    else:
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            problems.append("the Debian 'postfix' user is missing (reinstall the postfix package)")
    if problems:
        raise AssertionError("; ".join(problems))


# --------------------------------------------------------------------------
# The sink


class SinkMessage:
    def __init__(self, mail_from, rcpt_to, data, peer):
        self.mail_from = mail_from
        self.rcpt_to = rcpt_to
        self.data = data  # exactly the bytes of DATA, dot-unstuffed, CRLF line ends
        self.peer = peer
        self.received_at = time.time()
        self._message = None

    @property
    def message(self):
        if self._message is None:
            self._message = parse(self.data)
        return self._message

    def __repr__(self):
        return f"<SinkMessage from={self.mail_from} to={self.rcpt_to} {len(self.data)} bytes>"


class _SinkHandler(socketserver.StreamRequestHandler):
    timeout = 120

    def reply(self, text):
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self):
        sink = self.server.sink
        self.reply("220 sink.mugai-e2e.invalid ESMTP test sink")
        mail_from, rcpt_to = None, []
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            command = line.decode("ascii", "replace").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink.mugai-e2e.invalid\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                           "250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "HELO":
                self.reply("250 sink.mugai-e2e.invalid")
            elif verb == "MAIL":
                m = re.match(r"(?i)MAIL FROM:\s*<([^>]*)>", command)
                if not m:
                    self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
                    continue
                mail_from, rcpt_to = m.group(1), []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.match(r"(?i)RCPT TO:\s*<([^>]*)>", command)
                if mail_from is None or not m:
                    self.reply("503 5.5.1 need MAIL FROM first" if mail_from is None else "501 5.5.4 syntax")
                    continue
                rcpt_to.append(m.group(1))
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if mail_from is None or not rcpt_to:
                    self.reply("503 5.5.1 need RCPT TO first")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    data_line = self.rfile.readline(1 << 20)
                    if not data_line:
                        return
                    if data_line in (b".\r\n", b".\n"):
                        break
                    if data_line.startswith(b"."):
                        data_line = data_line[1:]
                    chunks.append(data_line)
                number = sink.store(SinkMessage(mail_from, list(rcpt_to), b"".join(chunks),
                                                self.client_address))
                mail_from, rcpt_to = None, []
                self.reply(f"250 2.0.0 Ok: stored as sink-{number}")
            elif verb == "RSET":
                mail_from, rcpt_to = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 command not implemented")


class _SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class SmtpSink:
    """An ESMTP server on 127.0.0.1 that keeps every message it receives."""

    def __init__(self):
        self.server = _SinkServer(("127.0.0.1", 0), _SinkHandler)
        self.server.sink = self
        self.port = self.server.server_address[1]
        self.messages = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self.server.serve_forever, name="smtp-sink", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def store(self, message):
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()
            return len(self.messages)

    def snapshot(self):
        with self.cond:
            return list(self.messages)

    def clear(self):
        with self.cond:
            self.messages.clear()

    def wait_count(self, predicate, count, timeout):
        """Waits until at least `count` stored messages satisfy `predicate`;
        returns those."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                found = [m for m in self.messages if predicate(m)]
                if len(found) >= count:
                    return found
                left = deadline - time.time()
                if left <= 0:
                    return found
                self.cond.wait(min(left, 0.5))

    def from_sender(self, sender):
        return [m for m in self.snapshot() if m.mail_from == sender]


# --------------------------------------------------------------------------
# Postfix


def _logical_lines(text):
    """master.cf / main.cf logical lines: a line starting with whitespace
    continues the previous one; comments and blank lines are dropped."""
    entries = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1].append(line.strip())
        else:
            entries.append([line.strip()])
    return entries


# The services a relay needs, as Debian's master.cf.dist lists them, without
# chroot (the private instance has no chroot jail set up in its queue
# directory). The smtpd listener comes from deploy/postfix/master.cf.snippet.
_MASTER_CORE = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


# What an instance needs in master.cf for TLS (smtpd's STARTTLS, smtp's):
# the TLS session cache and PRNG manager.
TLS_MASTER = "tlsmgr    unix  -       -       n       1000?   1       tlsmgr"


class Postfix:
    """A private Postfix instance in a temporary directory.

    `milter`: the milter address for smtpd_milters and non_smtpd_milters
    (libmilter's Postfix form, "inet:127.0.0.1:PORT"), or None for none.
    `next_hop`: the loopback port everything is relayed to.
    `extra_master`: more master.cf lines (e.g. TLS_MASTER for STARTTLS).
    """

    def __init__(self, name, next_hop, milter=None, extra_main=None, extra_master=()):
        check_environment()
        self.name = name
        self.next_hop = next_hop
        self.milter = milter
        self.extra_main = dict(extra_main or {})
        self.extra_master = list(extra_master)
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix=f"mugai-e2e-{name}-")
        # The postfix user must be able to reach its queue and data
        # directories below this one.
        os.chmod(self.root, 0o755)
        self.config_dir = os.path.join(self.root, "etc")
        self.queue_dir = os.path.join(self.root, "spool")
        self.data_dir = os.path.join(self.root, "lib")
        self.maillog = os.path.join(self.root, "maillog")
        self.started = False
        os.makedirs(self.config_dir)
        # queue_directory is root's (postfix check creates its
        # subdirectories, each with its owner); data_directory the postfix
        # user's.
        os.makedirs(self.queue_dir, mode=0o755)
        os.makedirs(self.data_dir, mode=0o700)
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.data_dir, postfix_user.pw_uid, postfix_user.pw_gid)
        self._write_config()

    # -- configuration

    def _main_settings(self):
        milter = self.milter or ""
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": f"{self.name}.mugai-e2e.invalid",
            "mydomain": "mugai-e2e.invalid",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "mynetworks_style": "host",
            "mydestination": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": f"[127.0.0.1]:{self.next_hop}",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            "smtputf8_enable": "no",
            "biff": "no",
            "syslog_name": f"postfix-{self.name}",
            "smtpd_milters": milter,
            "non_smtpd_milters": milter,
            # Short retry timers: a deferred message is retried within seconds.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.root,
            # No soft_bounce: it would turn mugai-milter's 550 into a 450.
            "notify_classes": "",
        }
        settings.update(self.extra_main)
        return settings

    def _write_config(self):
        with open(MAIN_SNIPPET) as f:
            snippet = f.read()
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            f.write(snippet.replace(SNIPPET_MILTER, self.milter or ""))
        # postconf -e puts each setting in place of the snippet's own line,
        # or appends it.
        self.postconf("-e", *[f"{k} = {v}" for k, v in self._main_settings().items()])

        with open(MASTER_SNIPPET) as f:
            entries = _logical_lines(f.read())
        smtpd = [e for e in entries if e[0].split()[:2] == ["smtp", "inet"]]
        if len(smtpd) != 1:
            raise AssertionError(f"{MASTER_SNIPPET} must have one 'smtp inet' entry, has {len(smtpd)}")
        fields = smtpd[0][0].split()
        fields[0] = f"127.0.0.1:{self.port}"
        fields[4] = "n"  # no chroot
        options = [o.replace(SNIPPET_MILTER, self.milter or "") for o in smtpd[0][1:]]
        lines = [_MASTER_CORE, *self.extra_master, "  ".join(fields)] + ["  " + o for o in options]
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def postconf(self, *args):
        r = subprocess.run(["/usr/sbin/postconf", "-c", self.config_dir, *args],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"postconf {' '.join(args)} failed: {r.stderr}")
        if "warning" in r.stderr:
            raise AssertionError(f"postconf {' '.join(args)} warned: {r.stderr}")
        return r.stdout

    def reload_with(self, **settings):
        """Changes main.cf settings and reloads the running instance."""
        self.postconf("-e", *[f"{k} = {v}" for k, v in settings.items()])
        self.run_postfix("reload")

    # -- running

    def env(self):
        return dict(os.environ, MAIL_CONFIG=self.config_dir)

    def run_postfix(self, *args, check=True):
        r = subprocess.run([POSTFIX, "-c", self.config_dir, *args], capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"postfix {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}\n"
                                 f"{self.log_text()[-4000:]}")
        return r

    def start(self):
        # `postfix check` creates the queue directories and checks
        # ownership and permissions; any warning is a configuration mistake.
        r = self.run_postfix("check")
        if r.stdout.strip() or r.stderr.strip():
            raise AssertionError(f"postfix check is not clean:\n{r.stdout}{r.stderr}")
        self.run_postfix("start")
        self.started = True
        wait_for(self._accepts, 30, what=f"Postfix {self.name} to listen on 127.0.0.1:{self.port}")
        return self

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def processes(self):
        """Pids of every process of this instance: the master and its
        children all carry MAIL_CONFIG=<config dir> in their environment."""
        marker = f"MAIL_CONFIG={self.config_dir}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
        master = self.master_pid()
        if master and master not in found:
            found.append(master)
        return found

    def stop(self):
        """Stops the instance; raises if any of its processes is left."""
        if not self.started:
            return
        self.started = False
        self.run_postfix("stop", check=False)
        try:
            wait_for(lambda: not self.processes(), 30, what=f"Postfix {self.name} to stop")
        except AssertionError:
            self.run_postfix("abort", check=False)
            for pid in self.processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
            left = self.processes()
            raise AssertionError(f"Postfix {self.name} left processes behind after stop: {left}")

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- mail

    def log_text(self):
        try:
            with open(self.maillog, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def queue(self):
        """The queue as `postqueue -j` lists it (one dict per message)."""
        r = subprocess.run(["/usr/sbin/postqueue", "-c", self.config_dir, "-j"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"postqueue -j failed: {r.stderr}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def flush(self):
        r = subprocess.run(["/usr/sbin/postqueue", "-c", self.config_dir, "-f"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"postqueue -f failed: {r.stderr}")

    def sendmail(self, data, sender, recipients):
        """Submits a message with Postfix's own sendmail command (maildrop,
        then pickup: the non_smtpd_milters path)."""
        r = subprocess.run(["/usr/sbin/sendmail", "-C", self.config_dir, "-f", sender, "-i", "--", *recipients],
                           input=data, capture_output=True, timeout=60, env=self.env())
        if r.returncode != 0:
            raise AssertionError(f"sendmail failed ({r.returncode}): {r.stderr.decode(errors='replace')}")

    def smtp(self, timeout=300):
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.mugai-e2e.invalid", timeout=timeout)

    def send(self, data, sender, recipients, timeout=300):
        """One SMTP transaction. Returns the queue id Postfix gave the
        message; an SMTP error is raised as smtplib raises it."""
        with self.smtp(timeout) as s:
            s.ehlo()
            code, text = s.mail(sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, text, sender)
            for r in recipients:
                code, text = s.rcpt(r)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({r: (code, text)})
            # SMTP carries CRLF line ends (email's default policy writes LF).
            code, text = s.data(re.sub(rb"(?<!\r)\n", b"\r\n", data))
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
            m = re.search(rb"queued as ([0-9A-Za-z]+)", text)
            return m.group(1).decode() if m else None


# --------------------------------------------------------------------------
# mugai-milter


def milter_available():
    return os.access(MILTER_BIN, os.X_OK)


class Milter(Process):
    """$MUGAI_BIN_DIR/mugai-milter on inet:PORT@127.0.0.1, in front of the
    mugaid at `server` (a Daemon's ingress address)."""

    def __init__(self, server, quarantined="notice", timeout_seconds=None, extra=""):
        self.server = server
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mugai-e2e-milter-")
        self.config = os.path.join(self.dir, "milter.toml")
        lines = ["[milter]", f'quarantined = "{quarantined}"']
        if timeout_seconds is not None:
            lines.append(f"timeout_seconds = {timeout_seconds}")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        self.log_path = os.path.join(self.dir, "milter.log")
        self.proc = None

    @property
    def listen(self):
        return f"inet:{self.port}@127.0.0.1"

    @property
    def postfix_address(self):
        """The same socket in Postfix's notation."""
        return f"inet:127.0.0.1:{self.port}"

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [MILTER_BIN, "--config", self.config, "--listen", self.listen, "--server", self.server],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mugai-milter exited at startup ({self.proc.returncode}):\n{self.log_text()}")
            if re.search(r"\bready\b", self.log_text()):
                return self
            time.sleep(0.05)
        raise AssertionError("mugai-milter did not become ready:\n" + self.log_text())



# --------------------------------------------------------------------------
# mugaid


class E2EDaemon(Daemon):
    """test_daemon.Daemon with what the e2e tests read from its store."""

    def db_rows(self):
        """(id, outcome, report bytes) of every item mugaid recorded."""
        db = sqlite3.connect(f"file:{self.dir}/data/mugai.db?mode=ro", uri=True)
        try:
            return db.execute("SELECT id, outcome, report FROM items").fetchall()
        finally:
            db.close()

    def quarantined_ids(self):
        rc, listing = self.quarantine("list")
        if rc != 0:
            raise AssertionError(f"mugai quarantine list failed ({rc})")
        return [i["id"] for i in (listing or {}).get("items", [])]
