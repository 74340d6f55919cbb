#!/usr/bin/env python3
"""A private PostgreSQL 15 cluster for tests (Debian's postgresql package).

initdb runs as the `postgres` system user (initdb and the server refuse to
run as root) into a temporary directory; the server listens only on a unix
socket in that directory (listen_addresses = ''), with fsync on, so tests
neither collide with each other nor with a system cluster on port 5432. The
tests' role authenticates with a random password (scram-sha-256), as a
deployment would; the superuser only by peer from the `postgres` user.

From Python (integration tests):

    with PostgresCluster() as cluster:
        cluster.conninfo                 # the tests' database
        cluster.conninfo_for(cluster.create_database("x"))

As a CTest fixture, with a state directory that records where the cluster
is and how to reach it:

    postgres_cluster.py start --state-dir DIR     # FIXTURES_SETUP
    postgres_cluster.py exec --state-dir DIR -- PROGRAM ARGS...
        # runs PROGRAM with MUGAI_TEST_POSTGRES=<conninfo>
    postgres_cluster.py stop --state-dir DIR      # FIXTURES_CLEANUP

Without root (nor the postgres user) no cluster can be made: `start` records
why, and `exec` then exits with 77 (the tests' SKIP_RETURN_CODE) after saying
so. A cluster that should start but does not is a failure, never a skip.
Standard library only."""

import argparse
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile

PG_BIN = "/usr/lib/postgresql/15/bin"
SYSTEM_USER = "postgres"
ROLE = "mugai_test"
DATABASE = "mugai_test"
# Only the socket's file name: with listen_addresses = '' no TCP port is
# bound, and the socket directory is private.
PORT = 5432
SKIP_EXIT = 77


def unavailable_reason():
    """Why no private cluster can be made here, or None."""
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        return None  # a missing server is a broken setup: start() fails loudly
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != SYSTEM_USER:
        return (f"the PostgreSQL tests need root (to run initdb as the '{SYSTEM_USER}' user) "
                f"or to be run as '{SYSTEM_USER}'")
    return None


class PostgresError(RuntimeError):
    pass


class PostgresCluster:
    """A running private cluster; stop() (or leaving the `with`) stops it and
    removes every file of it."""

    def __init__(self, directory=None, password=None):
        self.dir = directory
        self.password = password
        self.started = False

    @property
    def data_dir(self):
        return os.path.join(self.dir, "data")

    @property
    def socket_dir(self):
        return os.path.join(self.dir, "socket")

    @property
    def log_path(self):
        return os.path.join(self.dir, "server.log")

    def conninfo_for(self, database=DATABASE):
        return (f"host={self.socket_dir} port={PORT} dbname={database} user={ROLE} "
                f"password={self.password}")

    @property
    def conninfo(self):
        return self.conninfo_for(DATABASE)

    def _as_postgres(self, argv, **kwargs):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SYSTEM_USER, "--"] + argv
        # cwd: the caller's may be closed to the postgres user.
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/", **kwargs)
        if result.returncode != 0:
            raise PostgresError(f"{' '.join(argv)} exited with {result.returncode}:\n"
                                f"{result.stdout.decode('utf-8', 'replace')}{self._server_log()}")
        return result.stdout.decode("utf-8", "replace")

    def _server_log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "\n--- server log ---\n" + f.read()
        except (OSError, TypeError):
            return ""

    def psql(self, sql, database="postgres"):
        """Runs `sql` as the superuser; returns psql's unaligned output."""
        return self._as_postgres([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                  "-h", self.socket_dir, "-p", str(PORT), "-U", SYSTEM_USER, "-d", database,
                                  "-c", sql])

    def create_database(self, name):
        """A new empty database owned by the tests' role; returns its name."""
        self.psql(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return name

    def start(self):
        reason = unavailable_reason()
        if reason:
            raise PostgresError(reason)
        owner = pwd.getpwnam(SYSTEM_USER)
        if self.dir is None:
            # Not $TMPDIR: it may be closed to the postgres user, or long
            # enough to push the socket's path past 107 bytes.
            self.dir = tempfile.mkdtemp(prefix="mugai-pg-", dir="/tmp")
        self.password = self.password or secrets.token_hex(16)
        os.makedirs(self.socket_dir, mode=0o700, exist_ok=True)
        for path in (self.dir, self.socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        try:
            self._as_postgres([os.path.join(PG_BIN, "initdb"), "-D", self.data_dir, "-U", SYSTEM_USER,
                               "--encoding=UTF8", "--locale=C.UTF-8", "--auth-local=peer",
                               "--auth-host=scram-sha-256"])
            with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
                f.write("\n# tests/support/postgres_cluster.py\n"
                        "listen_addresses = ''\n"
                        f"unix_socket_directories = '{self.socket_dir}'\n"
                        f"port = {PORT}\n"
                        "fsync = on\n"
                        "synchronous_commit = on\n"
                        "max_connections = 100\n")
            with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
                f.write(f"local all {SYSTEM_USER} peer\n"
                        "local all all scram-sha-256\n")
            self._as_postgres([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-t", "60", "-D", self.data_dir,
                               "-l", self.log_path])
            self.started = True
            self.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{self.password}'")
            self.create_database(DATABASE)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.dir is None:
            return
        try:
            if self.started or os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
                self._as_postgres([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast",
                                   "-D", self.data_dir])
        finally:
            self.started = False
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _state_file(state_dir):
    return os.path.join(state_dir, "cluster.json")


def _read_state(state_dir):
    try:
        with open(_state_file(state_dir)) as f:
            return json.load(f)
    except FileNotFoundError:
        sys.exit(f"postgres_cluster: no cluster recorded in {state_dir} (did the fixture's start run?)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "exec", "stop"])
    parser.add_argument("--state-dir", required=True)
    own, program = sys.argv[1:], []
    if "--" in own:
        split = own.index("--")
        own, program = own[:split], own[split + 1:]
    args = parser.parse_args(own)
    state_dir = os.path.abspath(args.state_dir)

    if args.command == "start":
        if os.path.exists(_state_file(state_dir)):  # a previous run that was not cleaned up
            PostgresCluster(**_read_state(state_dir).get("cluster", {})).stop()
        os.makedirs(state_dir, exist_ok=True)
        reason = unavailable_reason()
        state = {"skip": reason} if reason else {}
        if not reason:
            cluster = PostgresCluster().start()
            state["cluster"] = {"directory": cluster.dir, "password": cluster.password}
            state["conninfo"] = cluster.conninfo
            print(f"postgres_cluster: running in {cluster.dir}")
        else:
            print(f"postgres_cluster: not started: {reason}")
        with open(_state_file(state_dir), "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(state, f)
    elif args.command == "exec":
        state = _read_state(state_dir)
        if state.get("skip"):
            print(f"SKIPPED: {state['skip']}", flush=True)
            sys.exit(SKIP_EXIT)
        if not program:
            sys.exit("postgres_cluster: exec needs a program after --")
        os.environ["MUGAI_TEST_POSTGRES"] = state["conninfo"]
        os.execvp(program[0], program)
    else:
        if os.path.exists(_state_file(state_dir)):
            PostgresCluster(**_read_state(state_dir).get("cluster", {})).stop()
            os.remove(_state_file(state_dir))


if __name__ == "__main__":
    main()
