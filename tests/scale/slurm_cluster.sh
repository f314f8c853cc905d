#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost for the tests (Debian's slurm-wlm and munge), in a
# folder of its own: munged with its own socket/pid/log/seed, slurmctld + slurmd from a generated
# slurm.conf on free ports. Everything is started in the foreground of background jobs so that
# `stop` tears it down by pid, whatever happened.
#
#   slurm_cluster.sh start DIR   # prints: export SLURM_CONF=DIR/slurm.conf; exit 0 once idle
#   slurm_cluster.sh stop DIR    # kills what start started (by the pids in DIR)
#
# Exit 77 (skip) when Slurm or munge is not installed.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?folder}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop() {
    for f in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi

for b in munged slurmctld slurmd sbatch sinfo; do
    command -v "$b" >/dev/null || { echo "slurm_cluster: $b not installed" >&2; exit 77; }
done
mkdir -p "$dir/state" "$dir/spool"
key=/etc/munge/munge.key
if [ ! -s "$key" ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of="$key" bs=1024 count=1 2>/dev/null
    chmod 0400 "$key"
fi
munged --foreground --force --socket="$dir/munge.socket" --pid-file="$dir/munged.pid.own" \
    --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" --key-file="$key" \
    >"$dir/munged.out" 2>&1 &
echo $! >"$dir/munged.pid"

ctl_port=$(free_port)
d_port=$(free_port)
cpus=$(nproc)
cat >"$dir/slurm.conf" <<CONF
ClusterName=rsclip-test
SlurmctldHost=localhost
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid.own
SlurmdPidFile=$dir/slurmd.pid.own
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
MaxArraySize=1001
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF="$dir/slurm.conf"
for _ in $(seq 50); do [ -S "$dir/munge.socket" ] && break; sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 &
echo $! >"$dir/slurmctld.pid"
slurmd -D -f "$SLURM_CONF" -N localhost >"$dir/slurmd.out" 2>&1 &
echo $! >"$dir/slurmd.pid"
for _ in $(seq 300); do
    state=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
    case "$state" in idle*) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
    sleep 0.2
done
echo "slurm_cluster: the node did not become idle (state '$state'); logs in $dir" >&2
tail -n 5 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/munged.log >&2 || true
stop
exit 1
