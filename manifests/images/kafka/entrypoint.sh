#!/bin/bash
# flashsale/kafka's entrypoint: the official apache/kafka image's environment contract.
#
# - every KAFKA_<NAME> variable but the launcher's own (KAFKA_HEAP_OPTS, KAFKA_OPTS, ...) is the broker
#   property <name>, lower case, with `___` -> `-`, `__` -> `_`, `_` -> `.` (KAFKA_LOG_DIRS -> log.dirs),
#   written to server.properties under $FLASHSALE_KAFKA_CONFIG_DIR (default /tmp/kafka: the root file
#   system is read-only, /tmp is the pod's emptyDir);
# - CLUSTER_ID (required) formats the log directories once; formatted ones are left alone;
# - KAFKA_HEAP_OPTS replaces the capped default heap (-Xms256m -Xmx512m), KAFKA_OPTS is appended;
# - the JVM is exec'd in the foreground (SIGTERM reaches Kafka: a controlled shutdown), logging to
#   stdout with log4j 2 ($KAFKA_HOME/config/log4j2.properties).
# `kafka-entrypoint --print-properties` only prints the properties (the unit tests use it).
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
config_dir=${FLASHSALE_KAFKA_CONFIG_DIR:-/tmp/kafka}
launcher=" KAFKA_VERSION KAFKA_HOME KAFKA_DEBUG KAFKA_OPTS KAFKA_HEAP_OPTS KAFKA_JVM_PERFORMANCE_OPTS \
KAFKA_GC_LOG_OPTS KAFKA_JMX_OPTS KAFKA_LOG4J_OPTS KAFKA_LOG4J_LOGGERS KAFKA_LOG4J_ROOT_LOGLEVEL \
KAFKA_TOOLS_LOG4J_LOGLEVEL "
default_heap="-Xms256m -Xmx512m"

fail() { echo "flashsale/kafka: $*" >&2; exit 1; }

property_name() {
  local name=${1#KAFKA_}
  name=${name,,}
  name=${name//___/-}
  name=${name//__/$'\x01'}
  name=${name//_/.}
  printf '%s' "${name//$'\x01'/_}"
}

properties() {
  local variable
  while IFS= read -r variable; do
    case "$launcher" in *" $variable "*) continue ;; esac
    printf '%s=%s\n' "$(property_name "$variable")" "${!variable}"
  done < <(compgen -e | grep '^KAFKA_' | LC_ALL=C sort)
}

setting() { # the value of one property in the rendered text ($1), empty when unset
  sed -n "s/^$2=//p" <<<"$1" | head -n 1
}

rendered=$(properties)
for required in node.id process.roles listeners log.dirs; do
  [ -n "$(setting "$rendered" "$required")" ] || fail "KAFKA_$(tr a-z. A-Z_ <<<"$required") is not set"
done
if [ "${1:-}" = "--print-properties" ]; then
  printf '%s\n' "$rendered"
  exit 0
fi
[ -n "${CLUSTER_ID:-}" ] || fail "CLUSTER_ID is not set"

mkdir -p "$config_dir"
printf '%s\n' "$rendered" > "$config_dir/server.properties"
read -r -a heap <<<"${KAFKA_HEAP_OPTS:-$default_heap}"
read -r -a extra <<<"${KAFKA_OPTS:-}"
java=(java "${heap[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true "${extra[@]}"
      "-Dlog4j2.configurationFile=$KAFKA_HOME/config/log4j2.properties" -cp "$KAFKA_HOME/libs/*")

formatted=1
IFS=, read -r -a log_dirs <<<"$(setting "$rendered" log.dirs)"
for dir in "${log_dirs[@]}"; do
  [ -f "$dir/meta.properties" ] || formatted=0
done
if [ "$formatted" = 0 ]; then
  echo "flashsale/kafka: formatting $(setting "$rendered" log.dirs) (cluster $CLUSTER_ID)"
  format=("${java[@]}" kafka.tools.StorageTool format "--cluster-id=$CLUSTER_ID" -c "$config_dir/server.properties")
  if [ -n "$(setting "$rendered" controller.quorum.bootstrap.servers)" ] &&
     [ -z "$(setting "$rendered" controller.quorum.voters)" ]; then
    format+=(--standalone) # a dynamic quorum of this one controller
  fi
  "${format[@]}" --ignore-formatted || fail "storage format failed"
fi
exec "${java[@]}" kafka.Kafka "$config_dir/server.properties"
