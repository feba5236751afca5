#!/usr/bin/env bash
# Bring up a real single-host Son of Grid Engine 8.1.9 for the tests: sge_qmaster, sge_execd.
#
# For Debian 12 as root, without systemd, next to the test Slurm. Debian's gridengine-client
# ships /usr/bin/qsub, qstat and qdel, which collide with slurm-wlm-torque's wrappers, so the
# packages are never installed: `apt-get download` fetches them and `dpkg -x` unpacks them into
# a private root. The tests reach SGE's commands through the env file's PATH, never /usr/bin.
#
#   bash tests/cluster/sge_up.sh          # prints the env file
#   . /opt/cluster-test-sge/env.sh        # then: qsub, qstat, qacct, qdel, qconf ... are SGE's
#   bash tests/cluster/sge_down.sh        # stops the daemons again
#
# Idempotent: packages are downloaded and unpacked once, the cell is initialised once, the
# configuration is applied only where it differs, running daemons are left alone.
# Readiness is checked with real commands (qconf, qstat), in bounded loops.
#
# Configuration (what cluster/batch/sge.py relies on):
#   queue all.q on this host: slots = nproc, shell_start_mode unix_behavior (#! is honoured),
#     load_thresholds NONE (other tests' load never blocks it), pe_list smp
#   parallel environment smp: allocation_rule $pe_slots, slots = nproc
#   memory: -l h_vmem=SIZE (a hard limit execd enforces) and -l mem_free=SIZE (checked against the
#     host's free memory) both work; neither is consumable (a consumable h_vmem with default 0
#     would kill every job that does not request it)
#   login_shells none: a job's shell never reads root's profile (it runs with execd's clean env)
#   global: min_uid 0 / min_gid 0 (root may submit), accounting_flush_time=00:00:00
#     (qacct has a record as soon as a job ends), scheduler runs every second, load reports every 4 s
#
# Environment: SGE_UP_TIMEOUT (seconds per readiness wait, default 60),
#   CLUSTER_TEST_SGE (the private root, default /opt/cluster-test-sge).
set -euo pipefail

T0=$(date +%s%N)
TIMEOUT=${SGE_UP_TIMEOUT:-60}
PREFIX=${CLUSTER_TEST_SGE:-/opt/cluster-test-sge}
PACKAGES=(gridengine-master gridengine-exec gridengine-client gridengine-common)
VERSION_GLOB='8.1.9*'
COMPILED_IN=/usr/lib/gridengine          # Debian's binaries dlopen their spooling library here
PKG=$PREFIX/pkg                          # the unpacked packages
export SGE_ROOT=$PREFIX SGE_CELL=default SGE_QMASTER_PORT=6444 SGE_EXECD_PORT=6445
ARCH=lx-amd64
BIN=$SGE_ROOT/bin/$ARCH
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=$SGE_ROOT/$SGE_CELL/spool
ENV_FILE=$PREFIX/env.sh
QUEUE=all.q
PE=smp

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # log, die, wait_for, running

# install_conf PATH MODE TEXT: replace PATH when TEXT differs; returns 0 when it changed
install_conf() {
    local path=$1 mode=$2 text=$3
    if [[ -f $path ]] && [[ "$(cat "$path")" == "$text" ]]; then return 1; fi
    local tmp; tmp=$(mktemp "$path.XXXXXX")
    printf '%s\n' "$text" > "$tmp"; chmod "$mode" "$tmp"; mv -f "$tmp" "$path"
    log "wrote $path"
}

[[ $(id -u) == 0 ]] || die "must run as root"
[[ $(uname -m) == x86_64 ]] || die "only lx-amd64 is set up here (this is $(uname -m))"

# --- 1. packages: libjemalloc2 installed, Grid Engine downloaded and unpacked privately ----
if ! dpkg-query -W -f='${db:Status-Status}' libjemalloc2 2>/dev/null | grep -qx installed; then
    log "installing libjemalloc2"
    source "$(dirname "$0")/apt_install.sh"
    apt_install libjemalloc2
fi
mkdir -p "$PREFIX/debs"
have_debs() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        compgen -G "$PREFIX/debs/${pkg}_${VERSION_GLOB}.deb" >/dev/null || return 1
    done
}
if ! have_debs; then
    log "downloading ${PACKAGES[*]}"
    # apt-get download runs as _apt when it can; the directory is root's, so fetch into a
    # world-writable temporary one and move the files
    tmp=$(mktemp -d); chmod 755 "$tmp"
    ( cd "$tmp" && apt-get download -qq "${PACKAGES[@]}" 2>/dev/null ) \
        || { apt-get update -qq && ( cd "$tmp" && apt-get download -qq "${PACKAGES[@]}" ); }
    mv -f "$tmp"/*.deb "$PREFIX/debs/"; rm -rf "$tmp"
    have_debs || die "apt-get download did not fetch Grid Engine $VERSION_GLOB"
fi
if [[ ! -f $PKG/.unpacked ]]; then
    rm -rf "$PKG"; mkdir -p "$PKG"
    for deb in "$PREFIX"/debs/*.deb; do dpkg -x "$deb" "$PKG"; done
    touch "$PKG/.unpacked"
    log "unpacked into $PKG"
fi
log "packages present: $(cd "$PREFIX/debs" && echo *.deb)"

# --- 2. the compiled-in library path and the SGE_ROOT layout -------------------------------
if [[ -L $COMPILED_IN ]]; then
    [[ $(readlink "$COMPILED_IN") == "$PKG$COMPILED_IN" ]] \
        || die "$COMPILED_IN links to $(readlink "$COMPILED_IN"), not to our $PKG$COMPILED_IN"
elif [[ -e $COMPILED_IN ]]; then
    die "$COMPILED_IN exists (a Grid Engine installed by dpkg?): not replacing it"
else
    ln -s "$PKG$COMPILED_IN" "$COMPILED_IN"
    log "linked $COMPILED_IN -> $PKG$COMPILED_IN"
fi
mkdir -p "$SGE_ROOT/bin" "$SGE_ROOT/lib" "$SGE_ROOT/utilbin" "$COMMON" \
    "$SPOOL/qmaster/job_scripts" "$SPOOL/execd"
for dir in bin lib utilbin; do ln -sfn "$PKG$COMPILED_IN" "$SGE_ROOT/$dir/$ARCH"; done
ln -sfn "$PKG/usr/share/gridengine/util" "$SGE_ROOT/util"
[[ $("$SGE_ROOT/util/arch") == "$ARCH" ]] || die "util/arch says $("$SGE_ROOT/util/arch")"

# --- 3. the cell: bootstrap, host aliases, spool, global configuration -------------------
NODE=$(hostname)
# the host name resolves to 127.0.0.1, which resolves back to localhost: SGE refuses clients
# whose names differ, unless host_aliases says they are one host (first name is the main one)
aliases=$(printf '%s\n' "$(hostname -s)" localhost | grep -vx "$NODE" | sort -u | tr '\n' ' ')
install_conf "$COMMON/host_aliases" 644 "$NODE ${aliases% }" || true
install_conf "$COMMON/act_qmaster" 644 "$NODE" || true
install_conf "$COMMON/bootstrap" 644 "# written by tests/cluster/sge_up.sh
admin_user              none
default_domain          none
ignore_fqdn             true
spooling_method         berkeleydb
spooling_lib            libspoolb
spooling_params         $SPOOL/spooldb
binary_path             $SGE_ROOT/bin
qmaster_spool_dir       $SPOOL/qmaster
security_mode           none
listener_threads        2
worker_threads          2
scheduler_threads       1" || true
# the global configuration; applied with qconf -Mconf on later runs (section 5)
global_conf() {
    sed -e "s|^execd_spool_dir .*|execd_spool_dir        $SPOOL/execd|" \
        -e 's|^min_uid .*|min_uid                0|' \
        -e 's|^min_gid .*|min_gid                0|' \
        -e 's|^mailer .*|mailer                 /bin/true|' \
        -e 's|^reporting_params .*|reporting_params       accounting=true reporting=false flush_time=00:00:15 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00|' \
        -e 's|^load_report_time .*|load_report_time       00:00:04|' \
        -e 's|^login_shells .*|login_shells           none|' \
        -e '/^#/d' -e '/^conf_version/d' \
        "$PKG/usr/share/gridengine/default-configuration"
}
# the marker is written last: a run interrupted half-way initialises again from scratch
if [[ ! -e $SPOOL/spooldb/.initialised ]] && running "$SPOOL/qmaster/qmaster.pid"; then
    touch "$SPOOL/spooldb/.initialised"      # a running qmaster: initialised by an earlier run
fi
if [[ ! -e $SPOOL/spooldb/.initialised ]]; then
    rm -rf "$SPOOL/spooldb"; mkdir -p "$SPOOL/spooldb"
    resources=$PKG/usr/share/gridengine/util/resources
    conf=$(mktemp -d)
    global_conf > "$conf/global"
    mkdir "$conf/hosts"; touch "$conf/hosts/$NODE"
    spool() { env LD_LIBRARY_PATH="$PKG$COMPILED_IN" "$BIN/spooldefaults.bin" "$@" >/dev/null; }
    env LD_LIBRARY_PATH="$PKG$COMPILED_IN" "$BIN/spoolinit" berkeleydb libspoolb "$SPOOL/spooldb" init >/dev/null
    spool configuration "$conf/global"
    spool complexes "$resources/centry"
    spool usersets "$resources/usersets"
    spool managers root
    spool adminhosts "$conf/hosts"
    rm -rf "$conf"
    touch "$SPOOL/spooldb/.initialised"
    log "initialised the cell in $SPOOL"
fi

# --- 4. sge_qmaster and sge_execd, with a clean environment (jobs inherit execd's) --------
daemon_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
            SGE_ROOT="$SGE_ROOT" SGE_CELL="$SGE_CELL"
            SGE_QMASTER_PORT="$SGE_QMASTER_PORT" SGE_EXECD_PORT="$SGE_EXECD_PORT")
export PATH=$BIN:$PATH
running "$SPOOL/qmaster/qmaster.pid" || "${daemon_env[@]}" "$BIN/sge_qmaster"
wait_for "sge_qmaster (qconf -sh)" qconf -sh

# --- 5. configuration objects: applied with qconf only where they differ ------------------
SLOTS=$(nproc)
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

# normalized: what qconf prints, continuation lines joined, blanks squeezed, comments dropped
normalized() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | awk 'NF && !/^#/ {$1 = $1; print}'; }

# apply WHAT FILE SHOW ADD MODIFY: show the object; add FILE when it is missing, modify with
# FILE when it differs. SHOW/ADD/MODIFY are qconf options (ADD empty: the object always exists)
apply() {
    local what=$1 file=$2 show=$3 add=$4 modify=$5 current out
    if current=$(qconf $show 2>/dev/null); then
        [[ $(normalized <<< "$current") == $(normalized < "$file") ]] && return 0
        out=$(qconf "$modify" "$file" 2>&1) || die "qconf $modify $what: $out"
        log "modified $what"
    else
        [[ -n $add ]] || die "qconf $show failed"
        out=$(qconf "$add" "$file" 2>&1) || die "qconf $add $what: $out"
        log "added $what"
    fi
}

mkdir -p "$WORK/conf"
global_conf > "$WORK/conf/global"            # qconf -Mconf takes the object's name from the file's
apply "global configuration" "$WORK/conf/global" "-sconf global" "" -Mconf

qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
    -e 's/^flush_submit_sec .*/flush_submit_sec 1/' -e 's/^flush_finish_sec .*/flush_finish_sec 1/' \
    -e 's/^job_load_adjustments .*/job_load_adjustments NONE/' \
    -e 's/^load_adjustment_decay_time .*/load_adjustment_decay_time 0:0:0/' > "$WORK/sched"
apply "scheduler configuration" "$WORK/sched" -ssconf "" -Msconf

# memory: h_vmem and mem_free stay requestable, not consumable (Debian's defaults). A consumable
# h_vmem with default 0 gives every job that does not ask for it a limit of 0: execd kills it
qconf -sc | awk '$1 == "h_vmem" || $1 == "mem_free" {$5 = "YES"; $6 = "NO"} {print}' > "$WORK/complex"
apply "complexes h_vmem, mem_free (requestable)" "$WORK/complex" -sc "" -Mc

cat > "$WORK/$PE" <<EOF
pe_name            $PE
slots              $SLOTS
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     TRUE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary TRUE
qsort_args         NONE
EOF
apply "parallel environment $PE" "$WORK/$PE" "-sp $PE" -Ap -Mp

cat > "$WORK/$QUEUE" <<EOF
qname                 $QUEUE
hostlist              $NODE
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               $PE
rerun                 FALSE
slots                 $SLOTS
tmpdir                /tmp
shell                 /bin/bash
prolog                NONE
epilog                NONE
shell_start_mode      unix_behavior
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
EOF
for limit in rt cpu fsize data stack core rss vmem; do
    printf 's_%-19s INFINITY\nh_%-19s INFINITY\n' "$limit" "$limit" >> "$WORK/$QUEUE"
done
apply "queue $QUEUE" "$WORK/$QUEUE" "-sq $QUEUE" -Aq -Mq
qconf -ss 2>/dev/null | grep -qx "$NODE" || qconf -as "$NODE" >/dev/null 2>&1 || die "qconf -as $NODE failed"

# --- 6. sge_execd: registers this host as an execution host -------------------------------
# execd names its spool directory by the host name as it resolves it (here: localhost)
execd_running() {
    local pidfile
    for pidfile in "$SPOOL"/execd/*/execd.pid; do running "$pidfile" && return 0; done
    return 1
}
execd_running || "${daemon_env[@]}" "$BIN/sge_execd"
wait_for "sge_execd (qconf -se $NODE)" qconf -se "$NODE"
qconf -se "$NODE" | normalized | grep -qx "complex_values NONE" \
    || qconf -rattr exechost complex_values NONE "$NODE" >/dev/null
# the queue instance takes jobs once execd reported its load: no state (u, a, d, E) left
queue_ready() {
    qstat -f -q "$QUEUE@$NODE" | awk -v q="$QUEUE@$NODE" '$1 == q {ok = (NF == 5)} END {exit !ok}'
}
wait_for "queue $QUEUE@$NODE open (qstat -f)" queue_ready

# --- 7. the env file the tests read --------------------------------------------------------
install_conf "$ENV_FILE" 644 "# written by tests/cluster/sge_up.sh: . this file to reach the test Grid Engine
export SGE_ROOT=$SGE_ROOT
export SGE_CELL=$SGE_CELL
export SGE_QMASTER_PORT=$SGE_QMASTER_PORT
export SGE_EXECD_PORT=$SGE_EXECD_PORT
export SGE_BIN=$BIN
export SGE_QUEUE=$QUEUE
export SGE_PE=$PE
export SGE_SLOTS=$SLOTS
export PATH=$BIN:\$PATH" || true
log "single-host Grid Engine is up: host $NODE, queue $QUEUE ($SLOTS slots), pe $PE, memory: -l h_vmem (a limit) or -l mem_free"
log "env file $ENV_FILE: . it for qsub, qstat, qacct, qdel ($BIN)"
