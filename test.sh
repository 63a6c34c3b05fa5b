#!/usr/bin/env bash
# Restores, builds with warnings as errors, runs every test project, and ends with the line
#   tests: N passed, N failed, N skipped
# which CI reads. Exits non-zero on any build or test failure.
set -uo pipefail
cd "$(dirname "$0")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results=.test-results
rm -rf "$results"
mkdir -p "$results"

# The OIDC tests run a real provider (tests/oidc-provider, node) and the official-clients tests npm's Kubernetes client
# (tests/clients/node): install their npm packages on a fresh machine, so that this command alone runs every test with
# none skipped.
for npm_dir in tests/oidc-provider:oidc-provider tests/clients/node:@kubernetes/client-node; do
  dir=${npm_dir%%:*}; package=${npm_dir#*:}
  if [ -f "$dir/package.json" ] && [ ! -d "$dir/node_modules/$package" ]; then
    if command -v npm >/dev/null 2>&1; then
      (cd "$dir" && npm ci --no-audit --no-fund --silent) || echo "npm ci in $dir failed; the tests that need it will say why they cannot run"
    else
      echo "npm is not on PATH; the tests of $dir need node and npm"
    fi
  fi
done

if ! dotnet build Portcullis.slnx -c Release -warnaserror -nologo -v:q; then
  echo "build failed"
  echo "tests: 0 passed, 1 failed, 0 skipped"
  exit 1
fi

status=0
# Test projects are tests/*.Tests; tests/Portcullis.Testing is their shared support library, not a test project.
for project in tests/*.Tests/*.csproj; do
  name=$(basename "$project" .csproj)
  echo "== $name"
  if ! dotnet test "$project" -c Release --no-build --nologo \
        --logger "trx;LogFileName=$name.trx" --results-directory "$results" \
        --logger "console;verbosity=normal" -- RunConfiguration.TestSessionTimeout=900000; then
    status=1
  fi
done

passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  p=$(get passed); f=$(get failed); e=$(get error); t=$(get timeout); total=$(get total); executed=$(get executed)
  # xUnit reports skipped tests as total minus executed (notExecuted stays 0).
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0})); skipped=$((skipped + ${total:-0} - ${executed:-0}))
done
projects=$(ls tests/*.Tests/*.csproj | wc -l)
reports=$(ls "$results"/*.trx 2>/dev/null | wc -l)
if [ "$reports" -lt "$projects" ]; then
  echo "only $reports of $projects test projects reported results"
  failed=$((failed + projects - reports)); status=1
fi
[ "$failed" -gt 0 ] && status=1
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
