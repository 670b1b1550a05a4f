# Shared by scripts/*: create ./.venv once and install labnb (editable) with the given extra.
# The install is done once per pyproject.toml (a stamp in .venv records it), so a
# second run starts at once and needs no network.
ensure_venv() {
    local extra="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
    local stamp=".venv/.labnb-${extra}-installed" wanted
    wanted="$(python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        python -m pip install --quiet --upgrade pip
        python -m pip install --quiet -e ".[${extra}]"
        echo "$wanted" >"$stamp"
    fi
}
