# Sourced by the set-up scripts: apt_install PKG... installs Debian packages while a
# policy-rc.d that exits 101 keeps their maintainer scripts from starting any daemon
# (there is no systemd here; the scripts start what they need themselves).
apt_install() {
    local policy=/usr/sbin/policy-rc.d backup=
    if [[ -e $policy ]]; then backup=$(mktemp); cp -p "$policy" "$backup"; fi
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"
    local status=0
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
            >/dev/null || status=$?
    if [[ -n $backup ]]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
    return "$status"
}
