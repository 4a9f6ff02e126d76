#!/bin/sh
# Run every libFuzzer harness for its share of SECONDS (default 60) and
# report: SECONDS for the big ones, 80 % for fuzz_config and fuzz_csv, 20 %
# for the two small parsers (fuzz_revocation, fuzz_sentinel), so the seven
# together take 5 x SECONDS, as the first five did alone.
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]
# Needs a build configured with CC=clang ./configure --enable-fuzzing;
# FUZZ_BUILDDIR names it (default: the source tree).  New inputs go to a
# scratch corpus (FUZZ_WORKDIR, default $FUZZ_BUILDDIR/tests/fuzz/work), never
# into the committed seeds; a crash leaves its reproducer there as
# crash-<sha1> and the script exits 1.  Reproduce with:
#   tests/fuzz/fuzz_<name> <reproducer>
# Prints one line per harness: executions, coverage and "no finding", or the
# finding.  Exit status: 0 no finding, 1 a finding, 2 a harness is missing.
set -u

secs=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILDDIR:-$src}
work=${FUZZ_WORKDIR:-$build/tests/fuzz/work}
harnesses=${*:-fuzz_json fuzz_token fuzz_config fuzz_request fuzz_csv \
    fuzz_revocation fuzz_sentinel}

case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS] [HARNESS...]" >&2; exit 2 ;;
esac

# Longest input per harness: bodies are capped at 16 KiB, tokens at 8 KiB.
max_len() {
	case $1 in
	fuzz_json) echo 16384 ;;
	fuzz_token) echo 12288 ;;
	fuzz_config) echo 8192 ;;
	fuzz_csv) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

# Percent of SECONDS per harness; the default set adds up to 500.
share() {
	case $1 in
	fuzz_config|fuzz_csv) echo 80 ;;
	fuzz_revocation|fuzz_sentinel) echo 20 ;;
	*) echo 100 ;;
	esac
}

# LeakSanitizer on; a UBSan report is fatal (-fno-sanitize-recover).
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

status=0
total=0
for h in $harnesses; do
	bin=$build/tests/fuzz/$h
	if [ ! -x "$bin" ]; then
		echo "$h: not built ($bin); configure with CC=clang --enable-fuzzing" >&2
		[ $status -eq 0 ] && status=2
		continue
	fi
	corpus=$work/$h
	mkdir -p "$corpus"
	log=$work/$h.log
	dict=
	[ -f "$here/$h.dict" ] && dict="-dict=$here/$h.dict"
	seeds=
	[ -d "$here/corpus/$h" ] && seeds=$here/corpus/$h
	t=$((secs * $(share "$h") / 100))
	[ "$t" -lt 1 ] && t=1
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 \
	    -max_len="$(max_len "$h")" -print_final_stats=1 \
	    -artifact_prefix="$work/$h-" $dict "$corpus" $seeds \
	    >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
	execs=${execs:-?}
	if [ $rc -eq 0 ]; then
		echo "$h: $execs executions in ${t}s, coverage ${cov:-?} edges: no finding"
		[ "$execs" != "?" ] && total=$((total + execs))
	else
		status=1
		art=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 |
		    sed 's/Test unit written to //')
		echo "$h: FINDING (exit $rc) after ${execs} executions; reproducer: ${art:-see $log}"
		grep -E "ERROR: |FUZZ INVARIANT|runtime error|SUMMARY" "$log" |
		    head -5 | sed 's/^/    /'
	fi
done
echo "fuzz: $total executions in all; $( [ $status -eq 0 ] && echo "no finding" || echo "FINDINGS, see above")"
exit $status
