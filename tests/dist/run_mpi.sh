#!/usr/bin/env bash
# Runs a command under mpirun and checks how it ended (ctest dist.* and cli.mpi_*).
#   run_mpi.sh NP EXPECT LIMIT_S COMMAND...
#     NP       ranks (more than the cores: --oversubscribe)
#     EXPECT   ok (exit 0) | fail:TEXT (non-zero exit, TEXT in the output)
#     LIMIT_S  the whole job must end within this many seconds (a hung job is killed at
#              LIMIT_S + 30 and fails)
set -uo pipefail
np=$1 expect=$2 limit=$3
shift 3
# CI runs as root; Open MPI refuses root without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Ranks busy-poll while they wait; with more ranks than cores they must yield instead.
export OMPI_MCA_mpi_yield_when_idle=1
# Sanitizer build: Open MPI keeps allocations until exit and unloads its plugins at
# MPI_Finalize, so LeakSanitizer reports (unsymbolisable) leaks in every rank. Leak checking
# stays on in the one-process tests; ASan's memory errors and UBSan stay on here.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=${EPOCHREALTIME/./}  # microseconds
timeout -k 5 $((limit + 30)) mpirun -np "$np" --oversubscribe --bind-to none "$@" >"$log" 2>&1
rc=$?
us=$((${EPOCHREALTIME/./} - start))
elapsed=$((us / 1000000)).$(printf %06d $((us % 1000000)) | cut -c1-2)
cat "$log"
echo "run_mpi.sh: mpirun -np $np $* -> exit $rc after ${elapsed} s (expected $expect within ${limit} s)"
if ((us >= (limit + 30) * 1000000)); then echo "run_mpi.sh: FAILED: the job hung"; exit 1; fi
if ((us > limit * 1000000)); then echo "run_mpi.sh: FAILED: too slow"; exit 1; fi
case "$expect" in
  ok) [[ $rc -eq 0 ]] || { echo "run_mpi.sh: FAILED: non-zero exit"; exit 1; } ;;
  fail:*)
    [[ $rc -ne 0 ]] || { echo "run_mpi.sh: FAILED: the job succeeded"; exit 1; }
    grep -qF -- "${expect#fail:}" "$log" || { echo "run_mpi.sh: FAILED: no '${expect#fail:}'"; exit 1; } ;;
  *) echo "run_mpi.sh: bad EXPECT '$expect'"; exit 2 ;;
esac
echo "run_mpi.sh: passed"
