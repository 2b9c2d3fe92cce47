#!/usr/bin/env bash
# Validates the Kubernetes manifests of deploy/k8s without a cluster:
#   1. installs what it needs when missing: kubectl (apt) and kubernetes-validate (pip);
#   2. renders the secrets kustomization, both overlays, deploy/k8s/k6 and a check overlay that
#      switches every data store to a managed one, with `kubectl kustomize`, from a copy of
#      deploy/k8s with freshly generated secrets (the real deploy/k8s/secrets.env is not read);
#   3. validates every rendered document against the Kubernetes API schemas of K8S_VERSION
#      (strict: unknown fields fail); custom resources (the k6 TestRun) are skipped by kind and
#      checked field by field instead;
#   4. checks what the manifests promise: the two overlays differ only where the modes differ,
#      every image is pinned, every variable each service reads is set in its Deployment (the
#      names parsed from the services' configuration sources), the copies of grafana/, k6/ and
#      nginx/compose/ are faithful, no secret has a value in the manifests.
# Exit status 1 and the list of failures when anything is wrong.
#
#   scripts/k8s-validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-1.32.0}"
KUBERNETES_VALIDATE_VERSION="1.37.0"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! command -v kubectl >/dev/null 2>&1; then
  echo "k8s-validate: installing kubectl (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl >/dev/null
fi
command -v python3 >/dev/null || { echo "k8s-validate: python3 is needed" >&2; exit 1; }
if ! python3 -c "import kubernetes_validate, yaml" 2>/dev/null \
  || [[ "$(python3 -c 'import kubernetes_validate; print(kubernetes_validate.version.__version__)' 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]]; then
  echo "k8s-validate: installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION (pip)"
  python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A copy of deploy/k8s with secrets of its own, and a check overlay using the managed-service
# components the way docs/kubernetes.md tells.
cp -r deploy/k8s "$tmp/k8s"
rm -f "$tmp/k8s/secrets.env"
"$tmp/k8s/make-secrets.sh" "$tmp/k8s/secrets.env" >/dev/null
mkdir -p "$tmp/k8s/overlays/managed-check"
cat >"$tmp/k8s/overlays/managed-check/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../async
components:
  - ../../components/managed-postgres
  - ../../components/managed-redis
  - ../../components/managed-rabbitmq
configMapGenerator:
  - name: flashsale-backends
    behavior: merge
    literals:
      - POSTGRES_HOST=managed-postgres.example.internal
      - REDIS_HOST=managed-redis.example.internal
      - RABBITMQ_HOST=managed-rabbitmq.example.internal
EOF

mkdir -p "$tmp/rendered"
render_failed=0
for target in secrets:. sync:overlays/sync async:overlays/async k6:k6 managed:overlays/managed-check; do
  name="${target%%:*}"
  dir="${target#*:}"
  if ! kubectl kustomize "$tmp/k8s/$dir" >"$tmp/rendered/$name.yaml" 2>"$tmp/rendered/$name.err"; then
    echo "FAIL: kubectl kustomize deploy/k8s/$dir:"
    sed 's/^/    /' "$tmp/rendered/$name.err"
    render_failed=1
  fi
done
if [[ $render_failed -ne 0 ]]; then
  echo "k8s-validate: rendering failed"
  exit 1
fi

python3 - "$PWD" "$tmp/rendered" "$K8S_VERSION" <<'PY'
import base64, json, os, re, subprocess, sys

import kubernetes_validate
import yaml

ROOT, RENDERED, K8S_VERSION = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []
checked = []


def fail(msg):
    failures.append(msg)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def load(name):
    with open(os.path.join(RENDERED, f"{name}.yaml"), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


renders = {name: load(name) for name in ["secrets", "sync", "async", "k6", "managed"]}

SERVICES = ["gateway", "inventory", "reservation", "order", "payment"]
EVENT_SERVICES = ["inventory", "reservation", "order", "payment"]
SERVICE_SRC = {s: f"services/{s}/src" for s in SERVICES}
# Custom resources: no Kubernetes schema; checked by check_testrun instead.
CUSTOM_KINDS = {("k6.io/v1alpha1", "TestRun")}
HASHED = re.compile(r"^(.+)-[a-z0-9]{10}$")


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and (d["metadata"]["name"] == name
                                  or HASHED.sub(r"\1", d["metadata"]["name"]) == name):
            return d
    return None


# ---------------------------------------------------------------------------------------
# 3. Schemas.

def check_schemas():
    total = 0
    for render, docs in renders.items():
        for d in docs:
            key = (d.get("apiVersion"), d.get("kind"))
            if key in CUSTOM_KINDS:
                continue
            total += 1
            try:
                kubernetes_validate.validate(d, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.path)
                fail(f"{render}: {d['kind']}/{d['metadata']['name']}: schema (Kubernetes "
                     f"{K8S_VERSION}): {e.message} at {path or '/'}")
            except kubernetes_validate.SchemaNotFoundError:
                fail(f"{render}: {d['kind']}/{d['metadata'].get('name')}: no schema for "
                     f"{key[0]} {key[1]} in Kubernetes {K8S_VERSION} (custom kinds must be "
                     f"listed in CUSTOM_KINDS and checked by hand)")
    checked.append(f"{total} documents valid against the Kubernetes {K8S_VERSION} schemas (strict)")


# ---------------------------------------------------------------------------------------
# Images: every one pinned to a tag, none `latest`.

def images_of(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "image" and isinstance(v, str):
                yield path + "/image", v
            else:
                yield from images_of(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from images_of(v, f"{path}/{i}")


def check_images():
    seen = set()
    for render, docs in renders.items():
        for d in docs:
            for path, image in images_of(d):
                seen.add(image)
                last = image.rsplit("/", 1)[-1]
                if "@sha256:" in image:
                    continue
                if ":" not in last:
                    fail(f"{render}: {d['kind']}/{d['metadata']['name']}{path}: image {image!r} has no tag")
                elif last.rsplit(":", 1)[1] in ("latest", ""):
                    fail(f"{render}: {d['kind']}/{d['metadata']['name']}{path}: image {image!r} is not pinned")
    # Third-party images: docker-compose.yml's tags.
    compose = yaml.safe_load(read("docker-compose.yml"))
    compose_images = {svc["image"] for svc in compose["services"].values()
                      if "image" in svc and not svc["image"].startswith("flashsale-suite")}
    for image in seen:
        repo = image.rsplit(":", 1)[0]
        same_repo = [c for c in compose_images if c.rsplit(":", 1)[0] == repo]
        if same_repo and image not in same_repo:
            fail(f"image {image} does not use docker-compose.yml's tag ({same_repo[0]})")
    checked.append(f"{len(seen)} images pinned ({', '.join(sorted(seen))})")


# ---------------------------------------------------------------------------------------
# Environment: what each service reads, from its sources.

STRUCT = re.compile(
    r"#\[derive\(([^)]*)\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?struct\s+(\w+)\s*\{(.*?)\n\}",
    re.S)
FIELD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?([a-z_][a-z0-9_]*)\s*:")
RENAME = re.compile(r'#\[serde\([^\]]*rename\s*=\s*"([^"]+)"')
ENV_VAR = re.compile(r'env::var(?:_os)?\(\s*"([A-Z][A-Z0-9_]*)"\s*\)')


def serde_env_fields(text):
    """Names of the fields of every struct deriving Deserialize: `foo_bar` is FOO_BAR."""
    names = set()
    for derives, _name, body in STRUCT.findall(text):
        if "Deserialize" not in derives:
            continue
        rename = None
        for line in body.split("\n"):
            stripped = line.strip()
            if stripped.startswith("#["):
                m = RENAME.search(stripped)
                rename = m.group(1) if m else rename
                continue
            if stripped.startswith("//") or not stripped:
                continue
            m = FIELD.match(line)
            if m:
                names.add((rename or m.group(1)).upper())
            rename = None
    return names


def rust_files(folder):
    for base, _dirs, files in os.walk(os.path.join(ROOT, folder)):
        for f in files:
            if f.endswith(".rs"):
                yield os.path.join(base, f)


def vars_read_by(service):
    src = SERVICE_SRC[service]
    names = set()
    sources = []
    # CommonConfig (every service) and the service's own settings.
    for rel in ["services/common/src/config.rs", f"{src}/configuration.rs"]:
        names |= serde_env_fields(read(rel))
        sources.append(rel)
    code = "".join(open(p, encoding="utf-8").read() for p in rust_files(src))
    # The metrics sampler's settings, when the service starts it (common::web::serve does,
    # also through web::Base::serve).
    if any(call in code for call in ("Metrics::from_env", "common::web::serve(", "Base::new(")):
        names |= serde_env_fields(read("services/common/src/metrics/mod.rs"))
        sources.append("services/common/src/metrics/mod.rs")
    # tracing's EnvFilter reads RUST_LOG (wherever the common library builds it).
    if any("from_default_env" in open(p, encoding="utf-8").read()
           for p in rust_files("services/common/src")):
        names.add("RUST_LOG")
    # Direct reads anywhere in the service or the common library.
    for p in list(rust_files(src)) + list(rust_files("services/common/src")):
        names |= set(ENV_VAR.findall(open(p, encoding="utf-8").read()))
    return names, sources


# Read by the code but deliberately left unset, and why.
NOT_SET = {
    "PORT_FILE": "only for PORT=0; the pods bind PORT=8000",
    "METRICS_FILE": "the file sink; metrics go to InfluxDB (INFLUX_*)",
    "METRICS_DIR": "the file sink; metrics go to InfluxDB (INFLUX_*)",
    "HOSTNAME": "set by the kubelet to the pod's name; INSTANCE wins over it anyway",
}
REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_env(docs, container):
    """Every variable a container gets, in order, with the ConfigMap/Secret keys of envFrom."""
    names = []
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            cm = find(docs, "ConfigMap", src["configMapRef"]["name"])
            if cm is None:
                fail(f"envFrom names ConfigMap {src['configMapRef']['name']}, which is not rendered")
                continue
            names += list(cm.get("data", {}))
        if "secretRef" in src:
            sec = find(docs, "Secret", src["secretRef"]["name"]) or find(renders["secrets"], "Secret", src["secretRef"]["name"])
            names += list((sec or {}).get("data", {}))
    defined = set(names)
    for e in container.get("env", []):
        for ref in REF.findall(e.get("value", "")):
            if ref not in defined:
                fail(f"container {container['name']}: {e['name']} refers to $({ref}), "
                     f"which is not defined before it")
        defined.add(e["name"])
        names.append(e["name"])
    return set(names)


def check_secret_refs(render, docs, where, container):
    secrets = {d["metadata"]["name"]: d for d in renders["secrets"] + docs if d["kind"] == "Secret"}
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            sec = secrets.get(ref["name"])
            if sec is None or ref["key"] not in sec.get("data", {}):
                fail(f"{render}: {where}: {e['name']} reads {ref['name']}/{ref['key']}, which the "
                     f"secrets kustomization does not make")
        cmref = e.get("valueFrom", {}).get("configMapKeyRef")
        if cmref:
            cm = find(docs, "ConfigMap", cmref["name"])
            if cm is None or cmref["key"] not in cm.get("data", {}):
                fail(f"{render}: {where}: {e['name']} reads ConfigMap {cmref['name']}/{cmref['key']}, "
                     f"which is not rendered")


def check_services(render, docs):
    compose = yaml.safe_load(read("docker-compose.yml"))
    mode = render
    config = find(docs, "ConfigMap", "flashsale-config")
    if config is None or config["data"].get("MODE") != mode:
        fail(f"{render}: flashsale-config must set MODE={mode}")
    for svc in SERVICES:
        dep = find(docs, "Deployment", svc)
        if dep is None:
            fail(f"{render}: no Deployment {svc}")
            continue
        spec = dep["spec"]["template"]["spec"]
        (c,) = [c for c in spec["containers"] if c["name"] == svc] or [None]
        if c is None:
            fail(f"{render}: Deployment {svc} has no container {svc}")
            continue
        if c.get("command") != [svc]:
            fail(f"{render}: Deployment {svc} must run the binary {svc} (compose's command), got {c.get('command')}")
        if not c["image"].startswith("flashsale-suite:"):
            fail(f"{render}: Deployment {svc} must run the project's image flashsale-suite, got {c['image']}")
        have = container_env(docs, c)
        check_secret_refs(render, docs, f"Deployment {svc}", c)
        wanted, sources = vars_read_by(svc)
        if len(wanted) < 30:
            fail(f"{svc}: only {len(wanted)} variables parsed from {sources}: the parser lost track")
        for var in sorted(wanted - have):
            if var not in NOT_SET:
                fail(f"{render}: Deployment {svc} does not set {var}, which {svc} reads ({', '.join(sources)})")
        for var in sorted(set(NOT_SET) & have):
            fail(f"{render}: Deployment {svc} sets {var}, meant to stay unset ({NOT_SET[var]})")
        compose_env = set(compose["services"][svc]["environment"])
        for var in sorted(compose_env - have):
            fail(f"{render}: Deployment {svc} does not set {var}, which docker-compose.yml sets")
        # Probes: the port the service binds, the routes common/src/web.rs serves.
        port = int(config["data"]["PORT"]) if config else None
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
            get = c.get(probe, {}).get("httpGet")
            if not get or get.get("path") != path:
                fail(f"{render}: Deployment {svc}: {probe} must GET {path}")
                continue
            p = get["port"]
            p = ports.get(p) if isinstance(p, str) else p
            if p != port:
                fail(f"{render}: Deployment {svc}: {probe} port {get['port']} is not PORT={port}")
        for key in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in c.get("resources", {}).get(key, {}):
                    fail(f"{render}: Deployment {svc}: no resources.{key}.{res}")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        pdb = find(docs, "PodDisruptionBudget", svc)
        if pdb is None or any(labels.get(k) != v for k, v in pdb["spec"]["selector"]["matchLabels"].items()):
            fail(f"{render}: no PodDisruptionBudget selecting Deployment {svc}'s pods")
        hpa = find(docs, "HorizontalPodAutoscaler", svc)
        if hpa is None or hpa["apiVersion"] != "autoscaling/v2" or hpa["spec"]["scaleTargetRef"] != {
                "apiVersion": "apps/v1", "kind": "Deployment", "name": svc}:
            fail(f"{render}: no autoscaling/v2 HorizontalPodAutoscaler of Deployment {svc}")
            continue
        metrics = hpa["spec"]["metrics"]
        if not any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics):
            fail(f"{render}: HPA {svc} has no CPU metric")
        external = [m for m in metrics if m["type"] == "External"]
        if mode == "async" and svc in EVENT_SERVICES:
            queue = f"{config['data']['AMQP_PREFIX']}.{svc}"
            if not any(m["external"]["metric"].get("selector", {}).get("matchLabels", {}).get("queue") == queue
                       for m in external):
                fail(f"{render}: HPA {svc} has no External metric on the depth of queue {queue}")
        elif external:
            fail(f"{render}: HPA {svc} has an External metric; only async's event-driven services scale on queue depth")
    # The web skeleton serves what the probes ask for.
    web = read("services/common/src/web.rs")
    for route in ("/healthz", "/readyz"):
        if f'"{route}"' not in web:
            fail(f"services/common/src/web.rs no longer serves {route}: update the probes")
    # Every container of the render: secret references exist, variables resolve.
    for d in docs:
        spec = pod_spec(d)
        if spec is None:
            continue
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            check_secret_refs(render, docs, f"{d['kind']}/{d['metadata']['name']}", c)
            container_env(docs, c)


def pod_spec(d):
    if d["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return d["spec"]["template"]["spec"]
    if d["kind"] == "Pod":
        return d["spec"]
    return None


# ---------------------------------------------------------------------------------------
# nginx: the mode's balancing, and the copies derived from nginx/compose/.

def strip_comments(text):
    return [l for l in text.split("\n") if l.strip() and not l.strip().startswith("#")]


def check_nginx():
    compose_conf = strip_comments(read("nginx/compose/nginx.conf"))
    ours = strip_comments(read("deploy/k8s/base/nginx/nginx.conf"))
    expected = [l.replace("resolver 127.0.0.11 ", "resolver kube-dns.kube-system.svc.cluster.local ")
                 .replace("worker_processes auto;", "worker_processes 2;") for l in compose_conf]
    if ours != expected:
        fail("deploy/k8s/base/nginx/nginx.conf differs from nginx/compose/nginx.conf beyond the "
             "resolver and worker_processes lines")
    namespace = None
    for d in renders["async"]:
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "nginx":
            namespace = d["metadata"]["namespace"]
    for mode in ("sync", "async"):
        compose_up = strip_comments(read(f"nginx/compose/upstreams-{mode}.conf"))
        expected = [re.sub(r"server (\w+):8000", rf"server \1.{namespace}.svc.cluster.local:8000", l)
                    for l in compose_up]
        ours = strip_comments(read(f"deploy/k8s/overlays/{mode}/upstreams.conf"))
        if ours != expected:
            fail(f"deploy/k8s/overlays/{mode}/upstreams.conf differs from nginx/compose/upstreams-{mode}.conf "
                 f"beyond the servers' names in namespace {namespace}")
        cm = find(renders[mode], "ConfigMap", "nginx-upstreams")
        text = cm["data"]["upstreams.conf"] if cm else ""
        blocks = re.findall(r"upstream (\w+) \{(.*?)\}", text, re.S)
        if sorted(b[0] for b in blocks) != sorted(SERVICES):
            fail(f"{mode}: nginx-upstreams must have one upstream per service, got {[b[0] for b in blocks]}")
        for name, body in blocks:
            lc = "least_conn;" in body
            if mode == "async" and not lc:
                fail(f"async: upstream {name} is not least_conn")
            if mode == "sync" and lc:
                fail(f"sync: upstream {name} must be round-robin (no least_conn)")
    checked.append("nginx.conf and both upstreams files derive from nginx/compose/ "
                   "(round-robin in sync, least_conn in async)")


# ---------------------------------------------------------------------------------------
# Copies kustomize needs inside deploy/k8s: byte-identical to the originals.

COPIES = {
    "grafana/provisioning/datasources/influxdb.yml": "deploy/k8s/base/grafana/provisioning/datasources/influxdb.yml",
    "grafana/provisioning/dashboards/dashboards.yml": "deploy/k8s/base/grafana/provisioning/dashboards/dashboards.yml",
    "grafana/dashboards/flash-sale.json": "deploy/k8s/base/grafana/dashboards/flash-sale.json",
    "nginx/compose/own-answers.conf": "deploy/k8s/base/nginx/own-answers.conf",
    "k6/journey.js": "deploy/k8s/k6/scripts/journey.js",
    "k6/lib/config.js": "deploy/k8s/k6/scripts/config.js",
    "k6/lib/shop.js": "deploy/k8s/k6/scripts/shop.js",
}


def check_copies():
    for original, copy in COPIES.items():
        if read(original) != read(copy):
            fail(f"{copy} differs from {original}: copy it again (cp {original} {copy})")
    # Every grafana/ file is provisioned.
    for base, _dirs, files in os.walk(os.path.join(ROOT, "grafana")):
        for f in files:
            rel = os.path.relpath(os.path.join(base, f), ROOT)
            if rel not in COPIES:
                fail(f"{rel} is not provisioned by deploy/k8s (add it to COPIES and the base)")
    checked.append(f"{len(COPIES)} copies identical to grafana/ and k6/")


# ---------------------------------------------------------------------------------------
# The two overlays differ only where the modes differ.

ALLOWED_DIFFERENCES = [
    "ConfigMap flashsale-config: data.MODE (sync | async)",
    "ConfigMap nginx-upstreams: data[upstreams.conf], its header comment and one `least_conn;` per upstream",
    "HorizontalPodAutoscaler inventory, reservation, order, payment: spec.metrics, async appends an "
    "External queue-depth metric after the same CPU metric",
    "the hash suffixes of those two generated ConfigMaps, wherever they are named",
]


def normalized(docs):
    names = {}
    for d in docs:
        if d["kind"] in ("ConfigMap", "Secret"):
            m = HASHED.match(d["metadata"]["name"])
            if m:
                names[d["metadata"]["name"]] = m.group(1)
    text = json.dumps(docs)
    for full, short in names.items():
        text = text.replace(f'"{full}"', f'"{short}"')
    return {(d["kind"], d["metadata"]["name"]): d for d in json.loads(text)}


def diff_paths(a, b, path=()):
    if type(a) != type(b):
        return [path]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(path + (k,))
            else:
                out += diff_paths(a[k], b[k], path + (k,))
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [path]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff_paths(x, y, path + (i,))
        return out
    return [] if a == b else [path]


def check_overlay_difference():
    sync, async_ = normalized(renders["sync"]), normalized(renders["async"])
    for key in sorted(set(sync) ^ set(async_)):
        fail(f"{key[0]}/{key[1]} exists in only one overlay")
    for key in sorted(set(sync) & set(async_)):
        a, b = sync[key], async_[key]
        paths = diff_paths(a, b)
        if not paths:
            continue
        kind, name = key
        if kind == "ConfigMap" and name == "flashsale-config" and paths == [("data", "MODE")]:
            continue
        if kind == "ConfigMap" and name == "nginx-upstreams" and paths == [("data", "upstreams.conf")]:
            s = [l for l in strip_comments(a["data"]["upstreams.conf"])]
            t = [l for l in strip_comments(b["data"]["upstreams.conf"]) if l.strip() != "least_conn;"]
            if s == t:
                continue
        if (kind == "HorizontalPodAutoscaler" and name in EVENT_SERVICES
                and all(p[:2] == ("spec", "metrics") for p in paths)):
            sm, am = a["spec"]["metrics"], b["spec"]["metrics"]
            if am[:len(sm)] == sm and all(m["type"] == "External" for m in am[len(sm):]):
                continue
        shown = ", ".join("/".join(str(x) for x in p) for p in paths[:5])
        fail(f"the overlays differ in {kind}/{name} at {shown}: not an allowed difference")
    checked.append("sync and async differ only in: " + "; ".join(ALLOWED_DIFFERENCES))


# ---------------------------------------------------------------------------------------
# Secrets: generated, long enough, never a value in a manifest.

SECRET_KEYS = ["TOKEN_SECRET", "INTERNAL_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
               "RABBITMQ_PASSWORD", "INFLUX_TOKEN", "INFLUX_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"]
SENSITIVE = re.compile(r"(PASSWORD|PASS|SECRET|TOKEN|_KEY)$")


def check_secrets():
    (sec,) = [d for d in renders["secrets"] if d["kind"] == "Secret"] or [None]
    if sec is None or sec["metadata"]["name"] != "flashsale-secrets":
        fail("deploy/k8s must generate the Secret flashsale-secrets")
        return
    data = {k: base64.b64decode(v) for k, v in sec.get("data", {}).items()}
    for key in SECRET_KEYS:
        if key not in data:
            fail(f"flashsale-secrets has no {key} (deploy/k8s/make-secrets.sh)")
    for key in ("TOKEN_SECRET", "INTERNAL_KEY"):
        if key in data and len(data[key]) < 32:
            fail(f"{key} is {len(data[key])} bytes: at least 32")
    values = {v.decode() for v in data.values()}
    # Known development defaults (compose's and the code's) must not reach a manifest.
    compose = read("docker-compose.yml")
    defaults = set(re.findall(r"\$\{(?:TOKEN_SECRET|INTERNAL_KEY|INFLUX_TOKEN|INFLUX_ADMIN_PASSWORD|GRAFANA_ADMIN_PASSWORD):-([^}]+)\}", compose))
    defaults |= set(re.findall(r'"(flashsale-[a-z-]*(?:secret|key)[a-z-]*)"', read("services/common/src/config.rs")))
    # Short ones ("flashsale") are also plain names here; the literal-value check covers them.
    defaults = {d for d in defaults if len(d) >= 12} | {"guest:guest", "postgres:postgres"}
    if len(defaults) < 5:
        fail(f"found only {sorted(defaults)} as known default secrets: the check lost track")
    for render in ("sync", "async", "k6", "managed"):
        text = open(os.path.join(RENDERED, f"{render}.yaml"), encoding="utf-8").read()
        for d in sorted(defaults):
            if d in text:
                fail(f"{render}: the development default {d!r} appears in the manifests")
        for v in values:
            if v in text:
                fail(f"{render}: a generated secret value appears outside the Secret")
        for d in renders[render]:
            if d["kind"] == "Secret":
                fail(f"{render}: renders a Secret ({d['metadata']['name']}); secrets come from deploy/k8s only")
            spec = pod_spec(d)
            if spec is None:
                continue
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                for e in c.get("env", []):
                    if SENSITIVE.search(e["name"]) and "value" in e:
                        fail(f"{render}: {d['kind']}/{d['metadata']['name']}: {e['name']} has a literal value")
    # The real file stays out of git.
    r = subprocess.run(["git", "check-ignore", "-q", "deploy/k8s/secrets.env"], cwd=ROOT)
    if r.returncode != 0:
        fail("deploy/k8s/secrets.env is not gitignored")
    r = subprocess.run(["git", "ls-files", "--error-unmatch", "deploy/k8s/secrets.env"], cwd=ROOT,
                       capture_output=True)
    if r.returncode == 0:
        fail("deploy/k8s/secrets.env is committed")
    checked.append("secrets generated (TOKEN_SECRET, INTERNAL_KEY >= 32 bytes), no default or literal secret in any manifest")


# ---------------------------------------------------------------------------------------
# Data stores: StatefulSets with headless Services and claims; the managed switch.

def check_datastores():
    for store in ("postgres", "redis", "rabbitmq"):
        for render in ("sync", "async"):
            sts = find(renders[render], "StatefulSet", store)
            svc = find(renders[render], "Service", store)
            if sts is None or not sts["spec"].get("volumeClaimTemplates"):
                fail(f"{render}: {store} must be a StatefulSet with volumeClaimTemplates")
            if svc is None or svc["spec"].get("clusterIP") != "None" or (sts and sts["spec"]["serviceName"] != store):
                fail(f"{render}: {store} must have a headless Service named in its StatefulSet")
        if find(renders["managed"], "StatefulSet", store) or find(renders["managed"], "Service", store):
            fail(f"managed: components/managed-{store} leaves the in-cluster {store} in place")
    if find(renders["managed"], "ConfigMap", "rabbitmq-conf"):
        fail("managed: components/managed-rabbitmq leaves rabbitmq-conf in place")
    backends = find(renders["managed"], "ConfigMap", "flashsale-backends")
    for key in ("POSTGRES_HOST", "REDIS_HOST", "RABBITMQ_HOST"):
        if not backends or not backends["data"].get(key, "").endswith(".example.internal"):
            fail(f"managed: {key} in flashsale-backends is not the overlay's")
    # The services build every URL from the hosts in flashsale-backends.
    dep = find(renders["managed"], "Deployment", "inventory")
    if dep:
        env = {e["name"]: e.get("value", "") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        for var, host in (("DATABASE_URL", "POSTGRES_HOST"), ("REDIS_URL", "REDIS_HOST"), ("AMQP_URL", "RABBITMQ_HOST")):
            if f"$({host})" not in env.get(var, ""):
                fail(f"{var} is not built from {host}: the managed switch would not reach it")
    checked.append("PostgreSQL, Redis, RabbitMQ: StatefulSets with headless Services and claims; "
                   "each replaced by a managed one through its component and *_HOST")


# ---------------------------------------------------------------------------------------
# k6: the TestRun, by hand (no schema), and what the report reads.

def k6_config_vars():
    return set(re.findall(r"\b(?:str|int|num|bool)\('([A-Z][A-Z0-9_]*)'", read("k6/lib/config.js")))


def check_testrun():
    docs = renders["k6"]
    runs = [d for d in docs if d["kind"] == "TestRun"]
    if len(runs) != 1:
        fail(f"k6: expected one TestRun, got {len(runs)}")
        return
    tr = runs[0]
    where = f"TestRun/{tr.get('metadata', {}).get('name')}"
    if tr.get("apiVersion") != "k6.io/v1alpha1":
        fail(f"{where}: apiVersion must be k6.io/v1alpha1")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", tr["metadata"].get("name", "")):
        fail(f"{where}: metadata.name must be a DNS label")
    spec = tr.get("spec", {})
    for field in ("parallelism", "script", "runner", "arguments"):
        if field not in spec:
            fail(f"{where}: spec.{field} is required here")
    if not isinstance(spec.get("parallelism"), int) or spec["parallelism"] < 1:
        fail(f"{where}: spec.parallelism must be a whole number >= 1")
    allowed_spec = {"parallelism", "script", "arguments", "runner", "initializer", "starter",
                    "separate", "quiet", "paused", "cleanup", "ports", "scuttle"}
    for field in set(spec) - allowed_spec:
        fail(f"{where}: unknown field spec.{field}")
    script = spec.get("script", {})
    kinds = [k for k in ("configMap", "volumeClaim", "localFile") if k in script]
    if len(kinds) != 1:
        fail(f"{where}: spec.script needs exactly one of configMap, volumeClaim, localFile")
    summary_file = re.search(r'SUMMARY_FILE: &str = "([^"]+)"', read("harness/src/rundata/k6.rs")).group(1)
    series_file = re.search(r'SERIES_FILE: &str = "([^"]+)"', read("harness/src/rundata/k6.rs")).group(1)
    wanted = k6_config_vars()
    if len(wanted) < 10:
        fail(f"k6/lib/config.js: only {sorted(wanted)} parsed: the parser lost track")
    pvcs = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for role in ("runner", "initializer"):
        pod = spec.get(role, {})
        if not pod:
            continue
        env_names = [e["name"] for e in pod.get("env", [])]
        for var in sorted(wanted - set(env_names)):
            fail(f"{where}: spec.{role}.env does not set {var}, which k6/lib/config.js reads")
        defined = set()
        for e in pod.get("env", []):
            for ref in REF.findall(e.get("value", "")):
                if ref not in defined:
                    fail(f"{where}: spec.{role}.env {e['name']} refers to $({ref}) before it is defined")
            defined.add(e["name"])
        for ref in REF.findall(spec.get("arguments", "")):
            if ref not in defined:
                fail(f"{where}: spec.arguments refers to $({ref}), which spec.{role}.env does not define")
        mounts = {m["name"]: m["mountPath"] for m in pod.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for m in mounts:
            if m not in volumes:
                fail(f"{where}: spec.{role}.volumeMounts {m} has no volume")
        for v in volumes.values():
            if "configMap" in v:
                cm = find(docs, "ConfigMap", v["configMap"]["name"])
                if cm is None:
                    fail(f"{where}: spec.{role} mounts ConfigMap {v['configMap']['name']}, which is not rendered")
                else:
                    for item in v["configMap"].get("items", []):
                        if item["key"] not in cm.get("data", {}):
                            fail(f"{where}: ConfigMap {cm['metadata']['name']} has no key {item['key']}")
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
                fail(f"{where}: spec.{role} mounts claim {v['persistentVolumeClaim']['claimName']}, which is not rendered")
        if "localFile" in script:
            path = script["localFile"]
            found = False
            for name, mount in mounts.items():
                v = volumes.get(name, {})
                if "configMap" in v and path.startswith(mount.rstrip("/") + "/"):
                    rel = path[len(mount.rstrip("/")) + 1:]
                    found = any(i["path"] == rel for i in v["configMap"].get("items", []))
                    # The journey's imports must be where it looks for them.
                    imports = re.findall(r"from '\./([^']+)'", read("k6/journey.js"))
                    paths = {i["path"] for i in v["configMap"].get("items", [])}
                    for imp in imports:
                        if imp not in paths:
                            fail(f"{where}: spec.{role}: the journey imports ./{imp}, not in the mounted ConfigMap")
            if not found:
                fail(f"{where}: spec.{role}: the script {path} is in no mounted ConfigMap")
    runner = spec.get("runner", {})
    args = spec.get("arguments", "")
    if "  " in args:
        fail(f"{where}: spec.arguments is split on single spaces by the operator: no double spaces")
    json_out = re.findall(r"--out json=(\S+)", args)
    csv_out = re.findall(r"--out csv=(\S+)", args)
    if not json_out:
        fail(f"{where}: spec.arguments must write k6's raw JSON output (--out json=...)")
    if not csv_out or not csv_out[0].endswith("/" + series_file):
        fail(f"{where}: spec.arguments must write the time series the report reads, --out csv=<dir>/{series_file}")
    summary = {e["name"]: e.get("value") for e in runner.get("env", [])}.get("K6_SUMMARY_EXPORT", "")
    if not summary.endswith("/" + summary_file):
        fail(f"{where}: the runners must export their summary as <dir>/{summary_file} (K6_SUMMARY_EXPORT)")
    results_mounts = [m["mountPath"] for m in runner.get("volumeMounts", [])
                      if "persistentVolumeClaim" in next((v for v in runner.get("volumes", []) if v["name"] == m["name"]), {})]
    for out in json_out + csv_out + [summary]:
        if not any(out.startswith(p.rstrip("/") + "/") for p in results_mounts):
            fail(f"{where}: {out} is not on the results claim")
    for role in ("runner", "initializer", "starter"):
        if role in spec and not spec[role].get("image"):
            fail(f"{where}: spec.{role}.image must be set (the operator's default is a :latest image)")
    if "starter" not in spec:
        fail(f"{where}: spec.starter.image must be set (the operator's default is a :latest image)")
    checked.append(f"TestRun: required fields, script and imports mounted, every setting of k6/lib/config.js, "
                   f"outputs {summary_file}, {series_file} and raw JSON on the results claim")


def check_runs_template():
    """deploy/k8s/k6/runs.example.json has every field of report/manifest.rs's structs."""
    text = read("harness/src/report/manifest.rs")
    structs = {}
    for derives, name, body in STRUCT.findall(text):
        if "Deserialize" in derives:
            fields, optional = set(), set()
            default = False
            for line in body.split("\n"):
                st = line.strip()
                if st.startswith("#[serde(default"):
                    default = True
                    continue
                m = FIELD.match(line)
                if m and not st.startswith("//"):
                    fields.add(m.group(1))
                    if default:
                        optional.add(m.group(1))
                    default = False
            structs[name] = (fields, optional)
    try:
        t = json.loads(read("deploy/k8s/k6/runs.example.json"))
    except ValueError as e:
        fail(f"deploy/k8s/k6/runs.example.json is not JSON: {e}")
        return
    version = re.search(r"MANIFEST_VERSION: u32 = (\d+)", text).group(1)
    if str(t.get("version")) != version:
        fail(f"deploy/k8s/k6/runs.example.json: version must be {version} (report/manifest.rs)")
    for struct, obj in [("Manifest", t), ("Settings", t.get("settings", {})),
                        ("Environment", t.get("environment", {})),
                        ("SuiteRecord", (t.get("suites") or [{}])[0]),
                        ("RunRecord", (t.get("runs") or [{}])[0])]:
        fields, optional = structs.get(struct, (set(), set()))
        if not fields:
            fail(f"report/manifest.rs: struct {struct} not found: update check_runs_template")
        for f in sorted(fields - optional - set(obj)):
            fail(f"deploy/k8s/k6/runs.example.json: {struct} needs {f} (report/manifest.rs)")
        for f in sorted(set(obj) - fields):
            fail(f"deploy/k8s/k6/runs.example.json: {struct} has no field {f} (report/manifest.rs)")
    checked.append("runs.example.json has every field flashsale report's manifest needs")


check_schemas()
check_runs_template()
check_images()
for mode in ("sync", "async"):
    check_services(mode, renders[mode])
checked.append("every variable the five services read is set in their Deployments "
               "(left unset on purpose: " + ", ".join(sorted(NOT_SET)) + "), and every one docker-compose.yml sets")
check_nginx()
check_copies()
check_overlay_difference()
check_secrets()
check_datastores()
check_testrun()
for name in ("sync", "async", "managed"):
    for d in renders[name]:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "flashsale":
            fail(f"{name}: {d['kind']}/{d['metadata']['name']} is not in namespace flashsale")

for line in checked:
    print(f"ok: {line}")
if failures:
    for f in failures:
        print(f"FAIL: {f}")
    print(f"k8s-validate: {len(failures)} failure(s)")
    sys.exit(1)
print("k8s-validate: the manifests are valid")
PY
