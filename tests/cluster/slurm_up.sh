#!/usr/bin/env bash
# Bring up a real single-node Slurm for the tests: munged, mariadbd, slurmdbd, slurmctld, slurmd.
#
# For Debian 12 as root, without systemd. Idempotent: packages already installed are not
# installed again, daemons already running are left alone (and restarted only when their
# configuration changed). Debian's slurm-wlm-torque provides qsub/qstat/qdel wrappers.
# Readiness is checked with real commands (scontrol ping, sinfo, sacct), in bounded loops.
#
#   bash tests/cluster/slurm_up.sh        # then: sbatch, squeue, sacct, qsub ... work
#   bash tests/cluster/slurm_down.sh      # stops the daemons again
#
# Environment: SLURM_UP_TIMEOUT (seconds per readiness wait, default 60).
set -euo pipefail

T0=$(date +%s%N)
TIMEOUT=${SLURM_UP_TIMEOUT:-60}
CLUSTER_NAME=cluster
ACCOUNT=default
TEST_USER=clustertest
PACKAGES=(slurm-wlm slurm-wlm-torque slurmdbd slurm-client munge mariadb-server)
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # log, die, wait_for, running

[[ $(id -u) == 0 ]] || die "must run as root"

# --- 1. packages ------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    echo "[slurm_up] installing: ${missing[*]}"
    source "$(dirname "$0")/apt_install.sh"
    apt_install "${missing[@]}"
fi
log "packages present: ${PACKAGES[*]} ($(dpkg-query -W -f='${Version}' slurmctld))"

# --- 2. host name, test user, directories ----------------------------------------------
NODE=$(hostname -s)
getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >> /etc/hosts
if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd -m "$TEST_USER" && usermod -p '*' "$TEST_USER"
fi
mkdir -p "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld /var/spool/slurmd /run/munge /run/mysqld
chown munge:munge /run/munge; chmod 755 /run/munge
chown mysql:mysql /run/mysqld

# install_conf PATH MODE TEXT: replace PATH when TEXT differs; returns 0 when it changed
install_conf() {
    local path=$1 mode=$2 text=$3
    if [[ -f $path ]] && [[ "$(cat "$path")" == "$text" ]]; then return 1; fi
    local tmp; tmp=$(mktemp "$path.XXXXXX")
    printf '%s\n' "$text" > "$tmp"; chmod "$mode" "$tmp"; mv -f "$tmp" "$path"
    log "wrote $path"
}

# stop_pidfile PIDFILE NAME: stop the daemon named by the pid file and wait until it is gone
stop_pidfile() {
    running "$1" || return 0
    local pid; pid=$(cat "$1")
    kill "$pid"
    local deadline=$(( $(date +%s) + TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null; do
        (( $(date +%s) < deadline )) || die "$2 (pid $pid) did not stop"
        sleep 0.1
    done
    log "stopped $2"
}

# --- 3. munge ---------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key
if ! running /run/munge/munged.pid; then
    runuser -u munge -- /usr/sbin/munged
fi
wait_for "munge credentials" bash -c 'munge -n | unmunge'

# --- 4. mariadb and the accounting database ---------------------------------------------
if [[ ! -d /var/lib/mysql/mysql ]]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
fi
if ! mysqladmin ping >/dev/null 2>&1; then
    setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
        --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid \
        --bind-address=127.0.0.1 --skip-name-resolve \
        >>/var/log/mysql-slurm-test.log 2>&1 < /dev/null &
fi
wait_for "mariadbd" mysqladmin ping
# keep the database password across runs; it is local to this throwaway database
PASS=$(sed -n 's/^StoragePass=//p' "$DBD_CONF" 2>/dev/null || true)
[[ -n $PASS ]] || PASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
mysql --protocol=socket -uroot <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

# --- 5. slurmdbd ------------------------------------------------------------------------
dbd_text="# written by tests/cluster/slurm_up.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$RUN_DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$PASS
StorageLoc=slurm_acct_db"
if install_conf "$DBD_CONF" 600 "$dbd_text"; then stop_pidfile "$RUN_DIR/slurmdbd.pid" slurmdbd; fi

# --- 6. slurm.conf ----------------------------------------------------------------------
# the node's real layout (CPUs, sockets, cores, threads), less memory for headroom
read -r -a layout <<< "$(slurmd -C | head -n 1)"
hw=()
for field in "${layout[@]}"; do
    case $field in
        CPUs=*|Boards=*|SocketsPerBoard=*|CoresPerSocket=*|ThreadsPerCore=*) hw+=("$field");;
        RealMemory=*) total=${field#RealMemory=};;
    esac
done
MEMORY=$(( total - (total / 10 > 2048 ? total / 10 : 2048) ))
(( MEMORY >= 512 )) || MEMORY=$(( total / 2 ))
# Preemption (issue 14): a job in partition "high" (PriorityTier 10) preempts jobs of the
# default partition "debug" (tier 1), which are requeued (PreemptMode=REQUEUE; JobRequeue=1
# makes batch jobs requeueable unless submitted --no-requeue, and those are cancelled).
# A preempted job gets its --signal at once (preempt_send_user_signal) and GraceTime
# seconds before it is killed, time for a checkpoint. MaxArraySize stays Slurm's default;
# tests/cluster/slurm_conf.sh lowers it for a test and puts it back (scontrol reconfigure).
MAX_ARRAY_SIZE=1001
GRACE_TIME=10
# a requeued job may start again cred_expire + 1 s after its requeue (Slurm's default 120 s);
# the credential only has to outlive a local launch here
CRED_EXPIRE=10
slurm_text="# written by tests/cluster/slurm_up.sh: a single-node test cluster
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
DependencyParameters=kill_invalid_depend
MinJobAge=5
KillWait=2
OverTimeLimit=0
InactiveLimit=0
MaxJobCount=100000
MaxArraySize=$MAX_ARRAY_SIZE
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PreemptExemptTime=-1
SlurmctldParameters=preempt_send_user_signal
AuthInfo=cred_expire=$CRED_EXPIRE
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 ${hw[*]} RealMemory=$MEMORY State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP GraceTime=$GRACE_TIME
PartitionName=high Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=10"
conf_changed=0
install_conf "$CONF" 644 "$slurm_text" && conf_changed=1

# --- 7. slurmdbd up, cluster/account/users registered -----------------------------------
running "$RUN_DIR/slurmdbd.pid" || slurmdbd
wait_for "slurmdbd" sacctmgr -n list cluster
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER_NAME" \
    || sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null
sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER_NAME" \
        Description="test account" Organization=cluster >/dev/null
for user in root "$TEST_USER"; do
    sacctmgr -n -P list association cluster="$CLUSTER_NAME" user="$user" format=user | grep -qx "$user" \
        || sacctmgr -i add user "$user" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER_NAME" >/dev/null
done
log "accounting: cluster $CLUSTER_NAME, account $ACCOUNT, users root $TEST_USER"

# --- 8. slurmctld and slurmd ------------------------------------------------------------
if (( conf_changed )); then
    stop_pidfile "$RUN_DIR/slurmd.pid" slurmd
    stop_pidfile "$RUN_DIR/slurmctld.pid" slurmctld
fi
running "$RUN_DIR/slurmctld.pid" || slurmctld -i
wait_for "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q "is UP"'
running "$RUN_DIR/slurmd.pid" || slurmd
node_idle() {
    local state; state=$(sinfo -h -n "$NODE" -o %t)
    case $state in
        idle|mix|alloc) return 0;;
        down*|drain*|drng*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1; return 1;;
        *) return 1;;
    esac
}
wait_for "node $NODE idle (sinfo)" node_idle
wait_for "accounting (sacct)" sacct -n -X -S now-1minute
log "single-node Slurm is up: node $NODE, $MEMORY MB, ${hw[*]}"
