# Shared by scripts/*: create ./.venv once and install labnb (editable) with the given extra.
ensure_venv() {
    local extra="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -e ".[${extra}]"
}
