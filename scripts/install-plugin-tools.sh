#!/usr/bin/env bash
# Installs the pinned build tools of Python and JavaScript plugins into TOOLS_DIR and
# prints the variables `lutetia plugin build` reads to find them:
#
#   eval "$(scripts/install-plugin-tools.sh TOOLS_DIR)"
#
#   TOOLS_DIR/python   a virtualenv with componentize-py (PyPI)      LUTETIA_COMPONENTIZE_PY
#   TOOLS_DIR/js       npm ci of plugins-sdk/js/tools (npm registry) LUTETIA_JS_TOOLS
#
# Already-installed tools at the pinned versions are kept; progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${1:?usage: scripts/install-plugin-tools.sh TOOLS_DIR}"
mkdir -p "$tools"
tools="$(cd "$tools" && pwd)"
componentize_py_version="0.25.1"

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> apt-get install $*" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    else
        echo "missing $*: install it with your system's package manager" >&2
        exit 1
    fi
}

# Python: componentize-py in a virtualenv of its own.
python="$tools/python/bin/python"
if ! "$python" -c "import sys" 2>/dev/null; then
    echo "==> creating $tools/python (virtualenv)" >&2
    python3 -m venv "$tools/python" >&2 || { apt_install python3-venv && python3 -m venv "$tools/python" >&2; }
fi
if [ "$("$tools/python/bin/componentize-py" --version 2>/dev/null | awk '{print $2}')" != "$componentize_py_version" ]; then
    echo "==> pip install componentize-py==$componentize_py_version" >&2
    "$python" -m pip install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version" >&2
fi

# JavaScript: Node.js, and componentize-js from the lock file.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
mkdir -p "$tools/js"
if ! cmp -s "$root/plugins-sdk/js/tools/package-lock.json" "$tools/js/package-lock.json" \
    || [ ! -d "$tools/js/node_modules/@bytecodealliance/componentize-js" ]; then
    echo "==> npm ci (componentize-js) in $tools/js" >&2
    cp "$root/plugins-sdk/js/tools/package.json" "$root/plugins-sdk/js/tools/package-lock.json" "$tools/js/"
    (cd "$tools/js" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

echo "export LUTETIA_COMPONENTIZE_PY='$tools/python/bin/componentize-py'"
echo "export LUTETIA_JS_TOOLS='$tools/js'"
