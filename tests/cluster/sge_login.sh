# Sourced by tests/cluster/sshd_up.sh: the test sshd's second user, clustersge, whose login
# node runs Grid Engine (the private one of tests/cluster/sge_up.sh) instead of Slurm.
#
# A Grid Engine login node has no Slurm: the user's non-interactive SSH commands see SGE's
# bin directory, then a copy of /usr/bin made of symbolic links without the programs of the
# Slurm packages (sbatch, squeue... and slurm-wlm-torque's qsub, qstat, qdel). So `which
# sbatch` fails and `qsub` is Grid Engine's, as on a real one. The environment (that PATH,
# SGE_ROOT, SGE_CELL and the ports, read from sge_up.sh's env file) comes from a `Match User`
# block with `SetEnv` in the sshd configuration.
#
# Needs: $STATE (the test state directory). Defines SGE_USER, SGE_LOGIN_BIN and:
#   sge_login_ready        true when sge_up.sh's env file is there
#   sge_login_bin          makes or updates $SGE_LOGIN_BIN (idempotent)
#   sge_login_match        prints the sshd_config Match block of $SGE_USER
#   sge_login_check KEY KNOWN_HOSTS PORT   checks that user's environment over SSH

SGE_USER=clustersge
SGE_ENV_FILE=${CLUSTER_TEST_SGE:-/opt/cluster-test-sge}/env.sh
SGE_LOGIN_BIN=/opt/cluster-test/sge-login/bin

sge_login_ready() { [[ -s $SGE_ENV_FILE ]]; }

# _sge_value NAME: the value sge_up.sh's env file exports as NAME
_sge_value() { ( set +u; . "$SGE_ENV_FILE" >/dev/null; printf '%s' "${!1}" ); }

# the programs of the installed Slurm packages (slurm-client, slurm-wlm-torque...)
_slurm_programs() {
    local packages
    packages=$(dpkg-query -W -f='${binary:Package} ${db:Status-Status}\n' 'slurm*' 2>/dev/null \
               | awk '$2 == "installed" {print $1}')
    [[ -n $packages ]] || return 0
    # shellcheck disable=SC2086
    dpkg-query -L $packages | sed -n 's|^/usr/bin/||p' | grep -v / || true
}

sge_login_bin() {
    local hidden want name
    hidden=$(_slurm_programs | sort -u)
    want=$(find /usr/bin -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | comm -23 - <(printf '%s\n' "$hidden"))
    install -d -m 755 "$SGE_LOGIN_BIN"
    while IFS= read -r name; do
        [[ -L $SGE_LOGIN_BIN/$name ]] || ln -s "/usr/bin/$name" "$SGE_LOGIN_BIN/$name"
    done <<< "$want"
    # links to programs that are gone, or that belong to Slurm now, go
    find "$SGE_LOGIN_BIN" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | comm -23 - <(printf '%s\n' "$want") \
        | while IFS= read -r name; do rm -f "$SGE_LOGIN_BIN/$name"; done
    [[ ! -e $SGE_LOGIN_BIN/sbatch && ! -e $SGE_LOGIN_BIN/qsub ]] \
        || { echo "[sshd_up] ERROR: $SGE_LOGIN_BIN still holds sbatch or qsub" >&2; return 1; }
}

sge_login_match() {
    local name setenv="PATH=$(_sge_value SGE_BIN):$SGE_LOGIN_BIN"
    for name in SGE_ROOT SGE_CELL SGE_QMASTER_PORT SGE_EXECD_PORT; do
        setenv+=" $name=$(_sge_value "$name")"
    done
    printf 'Match User %s\n    SetEnv %s\n' "$SGE_USER" "$setenv"
}

# sge_login_check KEY KNOWN_HOSTS PORT: over SSH, $SGE_USER's qsub is Grid Engine's, its
# SGE_ROOT is set and no sbatch is on its PATH
sge_login_check() {
    local out
    out=$(ssh -q -i "$1" -p "$3" -o BatchMode=yes -o ConnectTimeout=5 \
              -o UserKnownHostsFile="$2" -o StrictHostKeyChecking=yes "$SGE_USER@127.0.0.1" \
              'echo "root=$SGE_ROOT qsub=$(command -v qsub) sbatch=$(command -v sbatch)"' </dev/null)
    [[ $out == "root=$(_sge_value SGE_ROOT) qsub=$(_sge_value SGE_BIN)/qsub sbatch=" ]] || {
        echo "[sshd_up] ERROR: $SGE_USER's SSH environment is wrong: $out" >&2; return 1; }
}
