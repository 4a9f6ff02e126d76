#!/bin/sh
# Static analysis for CI: cppcheck over app/ and tests/fuzz/, then GCC's
# -fanalyzer over a build of app/ in a temporary copy of the tree (the
# source tree and its configuration are not touched).
#   tests/static/run.sh [cppcheck|analyzer]...      (default: both)
# Findings fail the run (exit 1).  False positives are suppressed where
# they are: cppcheck with an inline "// cppcheck-suppress <id>" comment
# saying why, the analyzer (which has no inline form) with a line in
# tests/static/analyzer.supp: "<file> <function> <-Wanalyzer-option>  # why".
# Exit 2 when a tool is missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
steps=${*:-cppcheck analyzer}
status=0
LC_ALL=C
export LC_ALL

fail() {
	echo "static: $*" >&2
	status=1
}

run_cppcheck() {
	if ! command -v cppcheck >/dev/null 2>&1; then
		echo "static: cppcheck not installed (apt-get install cppcheck)" >&2
		return 2
	fi
	cd "$src" || return 2
	# jansson's foreach macros: cppcheck runs without system headers.
	common="--enable=warning,performance,portability --inline-suppr
	    --error-exitcode=1 --suppress=missingIncludeSystem --std=c11
	    --library=$here/jansson.cfg -q"
	# shellcheck disable=SC2086
	if cppcheck $common -I app app/; then
		echo "cppcheck app/: no finding"
	else
		fail "cppcheck app/: findings above"
	fi
	# the harnesses apart: stubs.c redefines db.c's functions
	if [ -d tests/fuzz ]; then
		# shellcheck disable=SC2086
		if cppcheck $common -I app -I tests/fuzz tests/fuzz/; then
			echo "cppcheck tests/fuzz/: no finding"
		else
			fail "cppcheck tests/fuzz/: findings above"
		fi
	fi
}

# A copy of the tree without build products, configured in the copy.
analyzer_tree() {
	if [ -d "$src/.git" ] && command -v git >/dev/null 2>&1; then
		(cd "$src" && git ls-files -co --exclude-standard -z) |
		    (cd "$src" && xargs -0 cp --parents -t "$1" 2>/dev/null)
	else
		cp -a "$src/." "$1/" &&
		    (cd "$1" && { [ ! -f Makefile ] || make distclean; }) \
		    >/dev/null 2>&1
	fi
}

run_analyzer() {
	if ! gcc -fanalyzer -x c -c -o /dev/null /dev/null 2>/dev/null; then
		echo "static: gcc with -fanalyzer (GCC >= 10) not found" >&2
		return 2
	fi
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/fa-analyzer.XXXXXX") || return 2
	trap 'rm -rf "$tmp"' EXIT INT TERM
	analyzer_tree "$tmp"
	log=$tmp/make.log
	(
		cd "$tmp" &&
		autoreconf -fi >/dev/null 2>&1 &&
		CC=gcc ./configure >/dev/null 2>&1 &&
		# -Wno-error so one finding does not hide the next file's
		make -k -j"$(nproc 2>/dev/null || echo 2)" \
		    CFLAGS="-O1 -g -fanalyzer -Wno-error" fcgi-auth
	) >"$log" 2>&1
	rc=$?
	# "file function option" for every analyzer warning
	awk '
	/: In function / {
		fn = $0; sub(/.*In function ./, "", fn); sub(/.:$/, "", fn)
	}
	/: warning: .*\[-Wanalyzer-/ {
		f = $1; sub(/:.*/, "", f)
		o = $0; sub(/.*\[-Wanalyzer-/, "-Wanalyzer-", o); sub(/\].*/, "", o)
		print f, fn, o
	}' "$log" | sort -u >"$tmp/found"
	supp=$here/analyzer.supp
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$supp" 2>/dev/null |
	    awk '{ print $1, $2, $3 }' | sort -u >"$tmp/supp"
	comm -23 "$tmp/found" "$tmp/supp" >"$tmp/new"
	nsupp=$(comm -12 "$tmp/found" "$tmp/supp" | wc -l)
	if [ $rc -ne 0 ] && ! grep -q "warning: .*\[-Wanalyzer-" "$log"; then
		tail -20 "$log" >&2
		fail "analyzer build failed (not a finding; see above)"
	elif [ -s "$tmp/new" ]; then
		while read -r f fn o; do
			grep -n -A30 "In function .$fn.:" "$log" |
			    grep -m1 -B2 -A25 -- "\[$o\]" | sed 's/^/    /'
			echo "  $f: $fn: $o" >&2
		done <"$tmp/new"
		fail "gcc -fanalyzer: $(wc -l <"$tmp/new") finding(s) above"
	else
		echo "gcc -fanalyzer app/: no finding ($nsupp suppressed in analyzer.supp)"
	fi
	rm -rf "$tmp"
	trap - EXIT INT TERM
}

for s in $steps; do
	case $s in
	cppcheck) run_cppcheck || { [ $? -eq 2 ] && [ $status -eq 0 ] && status=2; } ;;
	analyzer) run_analyzer || { [ $? -eq 2 ] && [ $status -eq 0 ] && status=2; } ;;
	*) echo "usage: $0 [cppcheck|analyzer]..." >&2; exit 2 ;;
	esac
done
exit $status
