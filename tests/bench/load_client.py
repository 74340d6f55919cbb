"""The C++ load client (tests/load/mugai_load) as the benchmarks run it:
against a Daemon's ingress, every request expected to be delivered."""

import json
import os
import subprocess

from test_daemon import BIN


def run_load(daemon, path, args, timeout):
    """Runs mugai_load with `args` on `path`; returns its JSON figures."""
    r = subprocess.run([os.path.join(BIN, "mugai_load"), "--server", daemon.ingress, *args],
                       capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"mugai_load failed: {r.stderr.decode()}")
    result = json.loads(r.stdout)
    bad = {k: v for k, v in result["outcomes"].items() if k not in ("delivered", "delivered_with_removals")}
    if bad:
        raise SystemExit(f"{path}: not delivered: {bad}\n{daemon.log_text()[-3000:]}")
    return result
