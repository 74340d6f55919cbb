"""The deployment files against the build: no container engine or cluster
runs here, so this checks that everything deploy/k8s and
deploy/container/Containerfile name exists and agrees — every binary in a
command or probe is in the build's bin directory, every flag is one its
--help lists, every probe and Service port is a containerPort and a
listener of the ConfigMap's mugai.toml, every listener on the pod network
is mutual TLS and mugaid's probes are `mugai status` on its loopback health
listener, that mugai.toml loads with the real config loader, every path it
names is mounted in the pod that reads it (and a file in a mounted Secret
is a key of that Secret), and the Containerfile copies files that exist and
runs setup.sh with a subcommand it has.

  python3 test_manifests.py --bin-dir BUILD/bin [unittest options]

python3-yaml (Debian) parses the manifests; tomllib (Python 3.11) the
config, only to read the addresses and paths out of it.
"""

import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
CONTAINERFILE = os.path.join(ROOT, "deploy", "container", "Containerfile")
SETUP = os.path.join(ROOT, "deploy", "setup.sh")
NAMESPACE = "mugai"
BIN = None  # --bin-dir


def load_manifests():
    """{file name: [documents]} of every YAML file in deploy/k8s."""
    manifests = {}
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml")) + glob.glob(os.path.join(K8S, "*.yml"))):
        with open(path) as f:
            manifests[os.path.basename(path)] = [d for d in yaml.safe_load_all(f) if d is not None]
    return manifests


def objects(manifests, kind=None):
    return [d for docs in manifests.values() for d in docs if kind is None or d.get("kind") == kind]


def by_name(manifests, kind, name):
    found = [d for d in objects(manifests, kind) if d["metadata"]["name"] == name]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} {kind} named {name}")
    return found[0]


def help_text(binary):
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"{binary} --help exited with {r.returncode}: {r.stderr}")
    return r.stdout + r.stderr


def tcp_port(address):
    """The port of a gRPC host:port or libmilter inet:PORT@HOST address."""
    m = re.fullmatch(r"inet:(\d+)@.+", address) or re.fullmatch(r".+:(\d+)", address)
    if not m:
        raise AssertionError(f"{address} is not a TCP address")
    return int(m.group(1))


def is_loopback(address):
    """What mugaid accepts as plaintext: a unix socket or a loopback IP (or localhost)."""
    if address.startswith("unix:"):
        return True
    host = re.sub(r"^ipv[46]:", "", address).rsplit(":", 1)[0]
    return host in ("localhost", "[::1]") or re.fullmatch(r"127\.\d+\.\d+\.\d+", host) is not None


def workloads(manifests):
    """(name, pod spec) of every Deployment."""
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in objects(manifests, "Deployment")]


def mounts(pod, container):
    """[(mount path, volume)] of a container."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return [(m["mountPath"], volumes[m["name"]], m) for m in container.get("volumeMounts", [])]


class ManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.manifests = load_manifests()
        config_map = by_name(cls.manifests, "ConfigMap", "mugai-config")
        cls.config_text = config_map["data"]["mugai.toml"]
        cls.config = tomllib.loads(cls.config_text)
        cls.mugaid = dict(workloads(cls.manifests))["mugaid"]
        cls.milter = dict(workloads(cls.manifests))["mugai-milter"]

    def test_every_file_parses_into_named_objects_in_the_namespace(self):
        self.assertGreaterEqual(len(self.manifests), 6, self.manifests.keys())
        for name, docs in self.manifests.items():
            self.assertTrue(docs, f"{name} is empty")
            for doc in docs:
                self.assertIn("apiVersion", doc, name)
                self.assertIn("kind", doc, name)
                if doc["kind"] == "Kustomization":
                    continue
                self.assertTrue(doc["metadata"]["name"], name)
                if doc["kind"] != "Namespace":
                    self.assertEqual(doc["metadata"].get("namespace"), NAMESPACE,
                                     f"{name}: {doc['kind']} {doc['metadata']['name']}")

    def test_the_kustomization_lists_every_manifest(self):
        (kustomization,) = objects(self.manifests, "Kustomization")
        listed = set(kustomization["resources"])
        self.assertEqual(listed, set(self.manifests) - {"kustomization.yaml"})

    def commands(self):
        """(where, argv) of every container command and exec probe."""
        found = []
        for workload, pod in workloads(self.manifests):
            for c in pod["containers"]:
                found.append((f"{workload}/{c['name']}", c["command"] + c.get("args", [])))
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if "exec" in c.get(probe, {}):
                        found.append((f"{workload}/{c['name']} {probe}", c[probe]["exec"]["command"]))
        return found

    def test_every_binary_exists_in_the_build_and_knows_every_flag(self):
        commands = self.commands()
        self.assertGreaterEqual(len(commands), 3)
        for where, argv in commands:
            binary = os.path.join(BIN, os.path.basename(argv[0]))
            self.assertTrue(os.access(binary, os.X_OK), f"{where}: {argv[0]} is not in {BIN}")
            usage = help_text(binary)
            for flag in [a for a in argv[1:] if a.startswith("-")]:
                self.assertRegex(usage, rf"(?<![\w-]){re.escape(flag)}(?![\w-])",
                                 f"{where}: {os.path.basename(binary)} --help does not list {flag}")

    def container_ports(self, pod):
        return {p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}

    def test_probe_ports_are_container_ports(self):
        for workload, pod in workloads(self.manifests):
            ports = self.container_ports(pod)
            for c in pod["containers"]:
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    spec = c.get(probe)
                    if not spec:
                        continue
                    for kind in ("grpc", "tcpSocket", "httpGet"):
                        if kind in spec:
                            self.assertIn(spec[kind]["port"], ports, f"{workload} {probe}")

    def test_mugaid_is_probed_with_mugai_status_on_the_health_listener_and_replicated(self):
        # The kubelet's grpc probe has no TLS and every pod-network listener
        # is mutual TLS: the probes run `mugai status` in the pod, on the
        # plaintext loopback health listener.
        health = self.config["listeners"].get("health", "")
        self.assertTrue(health and is_loopback(health), f"[listeners] health = {health!r}: not loopback")
        (container,) = self.mugaid["containers"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertIn("exec", container[probe], probe)
            argv = container[probe]["exec"]["command"]
            self.assertEqual(os.path.basename(argv[0]), "mugai", probe)
            self.assertEqual(argv[-1], "status", probe)
            self.assertEqual(argv[argv.index("--server") + 1], health, f"{probe} does not probe the health listener")
            timeout = int(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 600
            self.assertLess(timeout, container[probe].get("timeoutSeconds", 1), f"{probe}: --timeout")
        deployment = by_name(self.manifests, "Deployment", "mugaid")
        self.assertGreaterEqual(deployment["spec"]["replicas"], 2)
        self.assertEqual(self.config["store"]["backend"], "postgresql", "replicas must share PostgreSQL")

    def test_container_ports_are_the_listeners_of_the_config(self):
        listeners = self.config["listeners"]
        listener_ports = {tcp_port(listeners[n]) for n in ("ingress", "egress", "admin")}
        self.assertEqual(self.container_ports(self.mugaid), listener_ports)
        self.assertEqual(self.container_ports(self.milter), {tcp_port(self.config["milter"]["listen"])})
        self.assertNotIn(tcp_port(listeners["health"]), self.container_ports(self.mugaid), "health is loopback")
        # mugaid refuses plaintext off loopback; on the pod network each
        # listener also asks for client certificates.
        for name in ("ingress", "egress", "admin"):
            self.assertFalse(is_loopback(listeners[name]), f"{name} = {listeners[name]} is not on the pod network")
            tls = listeners.get(f"{name}_tls", {})
            for key in ("cert_file", "key_file", "client_ca_file"):
                self.assertTrue(tls.get(key), f"[listeners.{name}_tls] {key} is not set")
        milter = self.config["milter"]
        for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            self.assertTrue(milter.get(key), f"[milter] {key}: the milter must call ingress with mutual TLS")

    def test_services_select_pods_and_their_ports(self):
        pods = {name: (by_name(self.manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"], pod)
                for name, pod in workloads(self.manifests)}
        for service in objects(self.manifests, "Service"):
            if service["spec"].get("type") == "ExternalName":
                continue
            selector = service["spec"]["selector"]
            selected = [pod for labels, pod in pods.values() if selector.items() <= labels.items()]
            self.assertEqual(len(selected), 1, f"Service {service['metadata']['name']} selects {len(selected)}")
            for port in service["spec"]["ports"]:
                self.assertIn(port.get("targetPort", port["port"]), self.container_ports(selected[0]),
                              f"Service {service['metadata']['name']}")

    def test_the_milter_calls_the_ingress_service(self):
        server = self.config["milter"]["server"]
        service = by_name(self.manifests, "Service", "mugaid-ingress")
        self.assertTrue(server.startswith(f"mugaid-ingress.{NAMESPACE}.svc"), server)
        self.assertIn(tcp_port(server), [p["port"] for p in service["spec"]["ports"]])
        self.assertEqual(tcp_port(server), tcp_port(self.config["listeners"]["ingress"]))

    def test_the_config_loads_with_the_real_loader(self):
        # mugaid has no config-check mode; mugai-milter --check reads the
        # whole file with the same LoadConfig (every table, every key) and
        # exits 2 when it does not load, 1 when it loads but mugaid does not
        # answer. It reads its TLS files first: those of the ConfigMap are
        # in a Secret, so the check gets test certificates of the same
        # names (deploy/make-test-certs.sh) in their place.
        milter = os.path.join(BIN, "mugai-milter")
        with tempfile.TemporaryDirectory() as tmp:
            certs = os.path.join(tmp, "certs")
            subprocess.run(["bash", os.path.join(ROOT, "deploy", "make-test-certs.sh"), certs], check=True,
                           capture_output=True, timeout=300)
            config_text = self.config_text
            for path in self.milter_paths():
                stand_in = os.path.join(certs, os.path.basename(path))
                self.assertTrue(os.path.exists(stand_in), f"make-test-certs.sh makes no {os.path.basename(path)}")
                config_text = config_text.replace(f'"{path}"', f'"{stand_in}"')

            def check(text):
                path = os.path.join(tmp, "mugai.toml")
                with open(path, "w") as f:
                    f.write(text)
                return subprocess.run([milter, "--config", path, "--check", "--server", f"unix:{tmp}/none.sock"],
                                      capture_output=True, text=True, timeout=60)
            r = check(config_text)
            self.assertEqual(r.returncode, 1, f"the ConfigMap's mugai.toml does not load:\n{r.stdout}{r.stderr}")
            self.assertIn("does not answer", r.stdout)
            broken = check(config_text + "\n[no_such_table]\nkey = 1\n")
            self.assertEqual(broken.returncode, 2, "the check does not tell a broken config from a good one")

    def config_paths(self):
        """Every file or directory mugaid's part of the config names."""
        c = self.config
        paths = [c["data_dir"], c["signatures"], c["vault"]["key_file"]]
        for name in ("ingress_tls", "egress_tls", "admin_tls"):
            paths += [v for v in c["listeners"].get(name, {}).values() if v]
        paths += [c["release"].get(k, "") for k in ("smtp_ca_file", "smtp_cert_file", "smtp_key_file")]
        paths += re.findall(r"\bssl(?:rootcert|cert|key)=(\S+)", c["store"]["postgresql"])
        return [p for p in paths if p]

    def milter_paths(self):
        """Every file the [milter] table names (read by mugai-milter only)."""
        milter = self.config["milter"]
        return [milter[k] for k in ("tls_ca_file", "tls_cert_file", "tls_key_file") if milter.get(k)]

    def test_every_path_the_config_names_is_mounted(self):
        secrets = {s["metadata"]["name"]: s for s in objects(self.manifests, "Secret")}
        for workload, pod, paths in (("mugaid", self.mugaid, self.config_paths()),
                                     ("mugai-milter", self.milter, self.milter_paths())):
            (container,) = pod["containers"]
            mounted = mounts(pod, container)
            for path in paths:
                under = [(m, v) for m, v, _ in mounted if path == m or path.startswith(m.rstrip("/") + "/")]
                self.assertTrue(under, f"{path} (named in mugai.toml) is on no volume of {workload}")
                mount, volume = max(under, key=lambda u: len(u[0]))
                if "secret" in volume:
                    secret = secrets[volume["secret"]["secretName"]]
                    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
                    self.assertIn(os.path.relpath(path, mount), keys,
                                  f"{path}: not a key of Secret {secret['metadata']['name']}")
                    # Mode 0440 files are the pod's group's only with fsGroup.
                    self.assertEqual(pod["securityContext"].get("fsGroup"), pod["securityContext"]["runAsGroup"],
                                     f"{workload} cannot read Secret {secret['metadata']['name']}")
                if "persistentVolumeClaim" in volume:
                    by_name(self.manifests, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        for workload, pod in workloads(self.manifests):
            (container,) = pod["containers"]
            argv = container["command"] + container.get("args", [])
            config = argv[argv.index("--config") + 1]
            (mount,) = [(v, m) for p, v, m in mounts(pod, container) if p == config]
            self.assertEqual(mount[0]["configMap"]["name"], "mugai-config", workload)
            self.assertEqual(mount[1]["subPath"], "mugai.toml", workload)

    def test_the_containerfile_copies_and_runs_what_exists(self):
        with open(CONTAINERFILE) as f:
            text = re.sub(r"\\\n", " ", f.read())
        instructions = [line.split(None, 1) for line in text.splitlines()
                        if line.strip() and not line.lstrip().startswith("#")]
        self.assertTrue(all(i[0] == "FROM" and i[1].startswith("debian:12") for i in instructions if i[0] == "FROM"))
        with open(SETUP) as f:
            subcommands = set(re.findall(r"^\s+([a-z]+)\)", f.read(), re.M))
        copied_binaries = set()
        for word, rest in instructions:
            if word == "COPY":
                args = shlex.split(rest)
                from_stage = any(a.startswith("--from=") for a in args)
                sources = [a for a in args if not a.startswith("--")][:-1]
                for source in sources:
                    if from_stage:
                        m = re.fullmatch(r"/src/build/bin/(.+)", source)
                        self.assertTrue(m, f"COPY --from takes {source}, not a built binary")
                        self.assertTrue(os.access(os.path.join(BIN, m.group(1)), os.X_OK), f"{source} is not built")
                        copied_binaries.add(m.group(1))
                    else:
                        self.assertTrue(os.path.exists(os.path.join(ROOT, source)), f"COPY {source}: no such file")
            if word == "RUN":
                for m in re.finditer(r"(\S*setup\.sh)\s+(\w+)", rest):
                    self.assertIn(m.group(2), subcommands, f"setup.sh has no subcommand {m.group(2)}")
        self.assertIn("ENTRYPOINT", [i[0] for i in instructions])
        # The context is the repository: the host's build trees stay out.
        with open(CONTAINERFILE + ".dockerignore") as f:
            ignored = f.read().split()
        self.assertLessEqual({"build", "build-*", ".git"}, set(ignored))
        for workload, pod in workloads(self.manifests):
            (container,) = pod["containers"]
            self.assertIn(os.path.basename(container["command"][0]), copied_binaries, workload)
        # mugaid starts these from its own directory.
        self.assertLessEqual({"mugaid", "mugai-scanner", "mugai-worker", "mugai-office-worker"}, copied_binaries)
        exposed = {int(p) for i in instructions if i[0] == "EXPOSE" for p in i[1].split()}
        for workload, pod in workloads(self.manifests):
            self.assertLessEqual(self.container_ports(pod), exposed, workload)
        (user,) = [i[1].split(":")[0] for i in instructions if i[0] == "USER"]
        for workload, pod in workloads(self.manifests):
            self.assertEqual(str(pod["securityContext"]["runAsUser"]), user, workload)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--bin-dir" not in args:
        sys.exit("usage: test_manifests.py --bin-dir BUILD/bin [unittest options]")
    i = args.index("--bin-dir")
    BIN = args[i + 1]
    del args[i:i + 2]
    unittest.main(argv=[sys.argv[0]] + args)
