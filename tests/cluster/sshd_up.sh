#!/usr/bin/env bash
# Start a test sshd on 127.0.0.1 for the ssh/sftp tests (Xenon's ssh and sftp adaptors).
#
# For Debian as root, without systemd. Idempotent: installs openssh-server only when sshd
# is missing, makes the test users, their ed25519 key pairs and the host keys only once, and
# leaves a running test sshd alone unless its configuration changed.
#
# Two users: clustertest, whose login node runs the test Slurm (and its Torque wrappers),
# and, once tests/cluster/sge_up.sh has run, clustersge, whose SSH commands see the test
# Grid Engine and no Slurm (tests/cluster/sge_login.sh: a Match block with SetEnv).
#
#   bash tests/cluster/sshd_up.sh      # prints the env file; then: ssh -i KEY -p PORT clustertest@127.0.0.1
#   bash tests/cluster/sshd_down.sh    # stops it again
#
# What the tests read (from $STATE/sshd.env, default /var/lib/cluster-test/sshd.env):
#   CLUSTER_TEST_SSH_HOST, CLUSTER_TEST_SSH_PORT, CLUSTER_TEST_SSH_USER,
#   CLUSTER_TEST_SSH_KEY (private ed25519 key, root-only), CLUSTER_TEST_SSH_KNOWN_HOSTS,
#   and for the Grid Engine user CLUSTER_TEST_SGE_SSH_USER, CLUSTER_TEST_SGE_SSH_KEY
#
# This sshd is separate from any system sshd: own config, host keys, pid file and log,
# listening on 127.0.0.1 only, public-key login only, for the test users only, no PAM.
# Environment: SSHD_PORT (default 2222), CLUSTER_TEST_STATE (default /var/lib/cluster-test).
set -euo pipefail

PORT=${SSHD_PORT:-2222}
STATE=${CLUSTER_TEST_STATE:-/var/lib/cluster-test}
TEST_USER=clustertest
KEY_DIR=$STATE/ssh
SSHD_DIR=$STATE/sshd
CONFIG=$SSHD_DIR/sshd_config
PIDFILE=$SSHD_DIR/sshd.pid
LOGFILE=$SSHD_DIR/sshd.log
ENV_FILE=$STATE/sshd.env
KEY=$KEY_DIR/id_ed25519
KNOWN_HOSTS=$KEY_DIR/known_hosts
SGE_KEY=$KEY_DIR/id_ed25519_sge
SSHD=/usr/sbin/sshd
source "$(dirname "$0")/sge_login.sh"

log() { echo "[sshd_up] $*"; }
die() { echo "[sshd_up] ERROR: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root"

# --- 1. package ------------------------------------------------------------------------
if [[ ! -x $SSHD ]] || ! command -v ssh-keygen >/dev/null || ! command -v ssh >/dev/null; then
    log "installing openssh-server"  # its maintainer scripts must not start the system sshd
    source "$(dirname "$0")/apt_install.sh"
    apt_install openssh-server openssh-client
fi

# --- 2. the test users: unlocked for key login ('*' = no password, not '!' = locked) -----
# make_user USER KEY: the user, its home, the key pair KEY and its authorized_keys
make_user() {
    local user=$1 key=$2 home group
    id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
    usermod -p '*' "$user"
    home=$(getent passwd "$user" | cut -d: -f6)
    group=$(id -gn "$user")
    if [[ ! -d $home ]]; then
        mkdir -p "$home"; chown "$user:$group" "$home"; chmod 755 "$home"
    fi
    if [[ ! -s $key || ! -s $key.pub ]]; then
        rm -f "$key" "$key.pub"
        ssh-keygen -q -t ed25519 -N '' -C "$user@cluster-test" -f "$key"
        log "made the key $key of $user"
    fi
    chmod 600 "$key"
    install -d -m 700 -o "$user" -g "$group" "$home/.ssh"
    local auth=$home/.ssh/authorized_keys
    touch "$auth"
    grep -qxF "$(cat "$key.pub")" "$auth" || cat "$key.pub" >> "$auth"
    chown "$user:$group" "$auth"; chmod 600 "$auth"
}

# --- 3. keys -----------------------------------------------------------------------------
install -d -m 700 "$STATE" "$KEY_DIR" "$SSHD_DIR"
make_user "$TEST_USER" "$KEY"
# the Grid Engine user (tests/cluster/sge_login.sh), once sge_up.sh has run
USERS=$TEST_USER
if sge_login_ready; then
    make_user "$SGE_USER" "$SGE_KEY"
    sge_login_bin
    USERS="$TEST_USER $SGE_USER"
else
    log "no $SGE_ENV_FILE: no Grid Engine user $SGE_USER (run sge_up.sh, then this again)"
fi
for type in ed25519 ecdsa; do
    host_key=$SSHD_DIR/ssh_host_${type}_key
    [[ -s $host_key ]] || ssh-keygen -q -t "$type" -N '' -C "cluster-test-host" -f "$host_key"
done
: > "$KNOWN_HOSTS.new"
# Xenon's ssh client (xenon-grpc 3.0.1) looks a host up by its canonical name
# ([localhost]:PORT for 127.0.0.1), takes the first entry of that name and negotiates
# ECDSA: so the ECDSA entries come first. OpenSSH does not mind the order.
for type in ecdsa ed25519; do
    for name in 127.0.0.1 localhost; do
        echo "[$name]:$PORT $(cut -d' ' -f1,2 "$SSHD_DIR/ssh_host_${type}_key.pub")" >> "$KNOWN_HOSTS.new"
    done
done
mv -f "$KNOWN_HOSTS.new" "$KNOWN_HOSTS"; chmod 644 "$KNOWN_HOSTS"

# --- 4. configuration -------------------------------------------------------------------
SFTP_SERVER=/usr/lib/openssh/sftp-server
[[ -x $SFTP_SERVER ]] || SFTP_SERVER=internal-sftp
cat > "$CONFIG.new" <<EOF
# test sshd of the cluster project (tests/cluster/sshd_up.sh); not the system sshd
ListenAddress 127.0.0.1
Port $PORT
HostKey $SSHD_DIR/ssh_host_ed25519_key
HostKey $SSHD_DIR/ssh_host_ecdsa_key
PidFile $PIDFILE
UsePAM no
PermitRootLogin no
AllowUsers $USERS
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
X11Forwarding no
PrintMotd no
MaxStartups 50:30:100
MaxSessions 50
LogLevel VERBOSE
Subsystem sftp $SFTP_SERVER
EOF
if [[ $USERS == *" $SGE_USER" ]]; then sge_login_match >> "$CONFIG.new"; fi
mkdir -p /run/sshd; chmod 755 /run/sshd
"$SSHD" -t -f "$CONFIG.new" || die "the generated $CONFIG.new is invalid"

running() { [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if running && cmp -s "$CONFIG" "$CONFIG.new"; then
    rm -f "$CONFIG.new"
    log "test sshd already running (pid $(cat "$PIDFILE"))"
else
    if running; then
        log "configuration changed: restarting the test sshd"
        pid=$(cat "$PIDFILE"); kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
    mv -f "$CONFIG.new" "$CONFIG"
    "$SSHD" -f "$CONFIG" -E "$LOGFILE"
fi

# --- 5. ready when the test user can really log in ------------------------------------
ready() {
    ssh -q -i "$KEY" -p "$PORT" -o BatchMode=yes -o ConnectTimeout=2 \
        -o UserKnownHostsFile="$KNOWN_HOSTS" -o StrictHostKeyChecking=yes \
        "$TEST_USER@127.0.0.1" true </dev/null
}
deadline=$(( $(date +%s) + 30 ))
until ready; do
    (( $(date +%s) < deadline )) || { tail -n 20 "$LOGFILE" >&2 || true; die "no key login to $TEST_USER@127.0.0.1:$PORT within 30 s"; }
    sleep 0.1
done

cat > "$ENV_FILE" <<EOF
CLUSTER_TEST_SSH_HOST=127.0.0.1
CLUSTER_TEST_SSH_PORT=$PORT
CLUSTER_TEST_SSH_USER=$TEST_USER
CLUSTER_TEST_SSH_KEY=$KEY
CLUSTER_TEST_SSH_KNOWN_HOSTS=$KNOWN_HOSTS
EOF
if [[ $USERS == *" $SGE_USER" ]]; then
    deadline=$(( $(date +%s) + 30 ))
    until sge_login_check "$SGE_KEY" "$KNOWN_HOSTS" "$PORT" 2>/dev/null; do
        if (( $(date +%s) >= deadline )); then
            sge_login_check "$SGE_KEY" "$KNOWN_HOSTS" "$PORT" || true
            die "$SGE_USER does not see Grid Engine over SSH"
        fi
        sleep 0.1
    done
    printf 'CLUSTER_TEST_SGE_SSH_USER=%s\nCLUSTER_TEST_SGE_SSH_KEY=%s\n' "$SGE_USER" "$SGE_KEY" \
        >> "$ENV_FILE"
    log "ready: $SGE_USER@127.0.0.1:$PORT (key $SGE_KEY) sees Grid Engine, no Slurm"
fi
chmod 644 "$ENV_FILE"
log "ready: $TEST_USER@127.0.0.1:$PORT with key $KEY (pid $(cat "$PIDFILE")); settings in $ENV_FILE"
cat "$ENV_FILE"
