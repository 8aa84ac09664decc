#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests and the Dockerfile: render every kustomize variant, validate the
# objects against a named Kubernetes version (strict: unknown fields are errors), and run checkov with the
# justified skip list in .checkov.yaml. tests/k8s/test_policy.py runs this script and adds the policy suite.
#
# Usage: scripts/check_k8s.sh            Env: K8S_VERSION (default 1.33.0), OUT (default build/k8s),
#                                             K8S_TOOLS (folder with kubernetes-validate and checkov)
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=${K8S_VERSION:-1.33.0}
OUT=${OUT:-build/k8s}
TOOLS=${K8S_TOOLS:-.venv/k8s-tools/bin}

die() { printf 'error: %s\n' "$*" >&2; exit 2; }

tool() {
    # A tool from $TOOLS, else from PATH; fail with the command that installs it.
    if [ -x "$TOOLS/$1" ]; then echo "$TOOLS/$1"; return; fi
    command -v "$1" 2>/dev/null && return
    die "$1 not found. Install the manifest tools once with:
  python3 -m venv .venv/k8s-tools && .venv/k8s-tools/bin/pip install checkov==3.3.30 kubernetes-validate==1.37.0"
}

command -v kubectl >/dev/null || die "kubectl not found (this script needs 'kubectl kustomize', kustomize v5).
Install it with 'apt-get install kubectl' from the Kubernetes or Google Cloud apt repository,
or see https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/"
VALIDATE=$(tool kubernetes-validate)
CHECKOV=$(tool checkov)

# Variants: the overlays, plus one with every component on the base so that no component goes unchecked.
rm -rf "$OUT/all-components" "$OUT/dev.yaml" "$OUT/prod.yaml" "$OUT/all-components.yaml"
mkdir -p "$OUT/all-components"
rel() { realpath --relative-to="$OUT/all-components" "$1"; }
cat > "$OUT/all-components/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: alice
resources:
  - $(rel k8s/base)
components:
  - $(rel k8s/components/otel-jaeger)
  - $(rel k8s/components/prometheus)
  - $(rel k8s/components/ollama)
  - $(rel k8s/components/network-policies)
  - $(rel k8s/components/external-redis)
  - $(rel k8s/components/tls)
EOF
declare -A VARIANTS=([dev]=k8s/overlays/dev [prod]=k8s/overlays/prod [all-components]="$OUT/all-components")

status=0
for name in dev prod all-components; do
    rendered="$OUT/$name.yaml"
    kubectl kustomize "${VARIANTS[$name]}" > "$rendered"
    printf '==> %s: %s objects rendered\n' "$name" "$(grep -c '^kind:' "$rendered")"
    if ! "$VALIDATE" --strict --quiet --kubernetes-version "$K8S_VERSION" "$rendered"; then
        printf 'FAIL: %s is not valid Kubernetes %s (strict)\n' "$name" "$K8S_VERSION" >&2
        status=1
    fi
done
printf '==> kubernetes-validate --strict against %s: %s\n' "$K8S_VERSION" "$([ $status = 0 ] && echo ok || echo FAILED)"

printf '==> checkov (skip list: .checkov.yaml)\n'
if ! "$CHECKOV" --config-file .checkov.yaml --skip-download \
        -f "$OUT/dev.yaml" -f "$OUT/prod.yaml" -f "$OUT/all-components.yaml" -f Dockerfile; then
    printf 'FAIL: checkov findings outside the skip list\n' >&2
    status=1
fi
exit $status
