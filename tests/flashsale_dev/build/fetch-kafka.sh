#!/usr/bin/env bash
# Fetches an Apache Kafka broker's classpath from Maven Central (by coordinates, through mvn) into
# $CACHE/kafka-<version>/libs. No Kafka POM carries a logging backend, so log4j2 + its SLF4J 2
# binding are added (without them the broker runs but logs nothing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
source <(grep -E '^[A-Z0-9_]+=' "$here/versions.env")
cache=${FLASHSALE_CACHE:-$HOME/.cache/flashsale}
out="$cache/kafka-$KAFKA_VERSION"
[ -f "$out/.complete" ] && exit 0
start=$(date +%s)
echo "[fetch-kafka] fetching kafka $KAFKA_VERSION jars" >&2
work="$cache/work/kafka-$KAFKA_VERSION"
rm -rf "$work" "$out/libs" && mkdir -p "$work" "$out/libs"
dep() { printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$@"; }
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>flashsale.local</groupId><artifactId>kafka-broker-classpath</artifactId><version>1</version>
  <dependencies>
    $(dep org.apache.kafka kafka_2.13 "$KAFKA_VERSION")
    $(dep org.apache.logging.log4j log4j-core "$LOG4J_VERSION")
    $(dep org.apache.logging.log4j log4j-slf4j2-impl "$LOG4J_VERSION")
    $(dep org.slf4j slf4j-api "$SLF4J_VERSION")
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <version>$MAVEN_DEPENDENCY_PLUGIN_VERSION</version>
  </plugin></plugins></build>
</project>
POM
(cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out/libs")
touch "$out/.complete"
echo "[fetch-kafka] $(ls "$out/libs" | wc -l) jars in $(( $(date +%s) - start ))s" >&2
