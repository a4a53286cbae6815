#!/usr/bin/env bash
# The scale-out example on one Debian machine (deploy/scale-out/README.md): PostgreSQL, Mosquitto 2
# with dynamic security and a TLS listener for boxes, and three scanbox cloud workers sharing the
# boxes' messages, all under one directory and run by the ordinary user who runs this.
#
#   run.sh [up] DIR                              make what DIR lacks, start whatever is not running
#   run.sh add-worker DIR HTTPS_PORT METRICS_PORT  one more worker (kept in DIR/settings.env), started
#   run.sh stop DIR                              stop every process of DIR; its data stays
#
# Settings, read from the environment at the first `up` of a directory and kept in DIR/settings.env
# (later runs use that file):
#   PUBLIC_HOST    the name or IPv4 address boxes dial, put on the certificates    (127.0.0.1)
#   BIND_HOST      where the boxes' listeners listen: 0.0.0.0 for boxes on the LAN (127.0.0.1)
#   MQTTS_PORT     Mosquitto's TLS listener, for boxes                             (8883)
#   BROKER_PORT    Mosquitto's loopback listener, for the workers                  (1883)
#   PG_PORT        PostgreSQL, loopback                                            (5433)
#   HTTPS_PORTS    one HTTPS port per worker: pairing API, /healthz, dashboard     (8443 8444 8445)
#   METRICS_PORTS  one loopback /metrics port per worker                           (9464 9465 9466)
#   MERCHANT       the merchant added for pairing codes                            (M100)
#   CLOUD_BIN      the cloud's CLI, run with node            (this checkout's bin/scanbox-cloud.js)
# Found on the machine (override if elsewhere): PGBIN (/usr/lib/postgresql/<newest>/bin),
# DYNSEC_PLUGIN (/usr/lib/<arch>/mosquitto_dynamic_security.so).
set -euo pipefail
umask 077

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$HERE/../.." && pwd)
SETTINGS=(PUBLIC_HOST BIND_HOST MQTTS_PORT BROKER_PORT PG_PORT HTTPS_PORTS METRICS_PORTS MERCHANT CLOUD_BIN)
APT_HINT='sudo apt-get install -y --no-install-recommends mosquitto postgresql openssl'
# Long enough for a cold start of node + tsx on a loaded 2-core machine.
WORKER_READY_S=120
STOP_WAIT_S=40

die() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Runs a command with its output kept back; on failure prints it and stops (the exit trap cleans up).
quiet() {
  local what=$1 out
  shift
  if ! out=$("$@" 2>&1); then
    printf 'run.sh: %s failed:\n%s\n' "$what" "$out" >&2
    exit 1
  fi
}

# ── the directory and its settings ────────────────────────────────────────────────────────────────

# Names DIR; nothing is created until the settings have been checked (make_dir).
open_dir() {
  [[ -n ${1:-} ]] || usage
  (( EUID != 0 )) || die "refusing to run as root: PostgreSQL refuses root, and Mosquitto would drop to its own user, which cannot read DIR. Run it as an ordinary user (as root: runuser -u USER -- $0 ${ARGS[*]})"
  DIR=$(realpath -m -- "$1")
  # The database's unix socket lives in DIR/pg: its path must fit a socket address (107 bytes).
  (( ${#DIR} <= 80 )) || die "$DIR is too long a path (at most 80 characters): the database's socket lives under it"
}

make_dir() {
  mkdir -p -- "$DIR" "$DIR/log" "$DIR/run"
  chmod 0700 "$DIR"
}

load_settings() {
  if [[ -f $DIR/settings.env ]]; then
    local name i given=()
    for name in "${SETTINGS[@]}"; do given+=("${!name-}"); done
    # shellcheck source=/dev/null
    . "$DIR/settings.env"
    for i in "${!SETTINGS[@]}"; do
      [[ -z ${given[$i]} || ${given[$i]} == "${!SETTINGS[$i]}" ]] && continue
      echo "run.sh: ${SETTINGS[$i]}=${given[$i]} from the environment is ignored: $DIR/settings.env, made at the first up, says ${!SETTINGS[$i]}" >&2
    done
    return
  fi
  [[ ${1:-} == new ]] || die "$DIR holds no scale-out example (no settings.env): run.sh up $DIR first"
  PUBLIC_HOST=${PUBLIC_HOST:-127.0.0.1}
  BIND_HOST=${BIND_HOST:-127.0.0.1}
  MQTTS_PORT=${MQTTS_PORT:-8883}
  BROKER_PORT=${BROKER_PORT:-1883}
  PG_PORT=${PG_PORT:-5433}
  HTTPS_PORTS=${HTTPS_PORTS:-8443 8444 8445}
  METRICS_PORTS=${METRICS_PORTS:-9464 9465 9466}
  MERCHANT=${MERCHANT:-M100}
  CLOUD_BIN=${CLOUD_BIN:-$REPO/bin/scanbox-cloud.js}
}

save_settings() {
  local name
  for name in "${SETTINGS[@]}"; do printf '%s=%q\n' "$name" "${!name}"; done >"$DIR/settings.env.tmp"
  mv "$DIR/settings.env.tmp" "$DIR/settings.env"
}

port_ok() {
  [[ $1 =~ ^[0-9]{1,5}$ ]] && (( $1 >= 1 && $1 <= 65535 ))
}

# Everything checked before anything is made or started.
check_settings() {
  [[ $PUBLIC_HOST =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] || die "PUBLIC_HOST=$PUBLIC_HOST: a host name or IPv4 address boxes can dial"
  [[ $BIND_HOST =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "BIND_HOST=$BIND_HOST: an IPv4 address of this machine, or 0.0.0.0 for all"
  [[ $MERCHANT =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "MERCHANT=$MERCHANT: 1–64 of A-Z a-z 0-9 _ -"
  [[ -f $CLOUD_BIN && -r $CLOUD_BIN ]] || die "CLOUD_BIN=$CLOUD_BIN: no such file, or $(id -un) cannot read it (the cloud's CLI: bin/scanbox-cloud.js of a checkout or of /opt/scanbox, readable with its node_modules by the user running this)"
  read -ra HTTPS <<<"$HTTPS_PORTS"
  read -ra METRICS <<<"$METRICS_PORTS"
  (( ${#HTTPS[@]} >= 1 )) || die 'HTTPS_PORTS: at least one port (one per worker)'
  (( ${#HTTPS[@]} == ${#METRICS[@]} )) || die "HTTPS_PORTS has ${#HTTPS[@]} ports and METRICS_PORTS ${#METRICS[@]}: one of each per worker"
  local port seen=' '
  for port in "$MQTTS_PORT" "$BROKER_PORT" "$PG_PORT" "${HTTPS[@]}" "${METRICS[@]}"; do
    port_ok "$port" || die "$port is not a TCP port (1–65535)"
    [[ $seen != *" $port "* ]] || die "port $port is given twice: every listener needs its own"
    seen+="$port "
  done
}

# ── the programs ──────────────────────────────────────────────────────────────────────────────────

find_tools() {
  command -v node >/dev/null || die 'node (Node.js 20) is not on PATH'
  command -v openssl >/dev/null || die "openssl is not installed: $APT_HINT"
  MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  [[ -x $MOSQUITTO ]] || die "mosquitto (2.0 or later) is not installed: $APT_HINT"
  MOSQUITTO_CTRL=$(command -v mosquitto_ctrl || echo /usr/bin/mosquitto_ctrl)
  [[ -x $MOSQUITTO_CTRL ]] || die "mosquitto_ctrl is not installed: $APT_HINT"
  local plugin
  if [[ -z ${DYNSEC_PLUGIN:-} ]]; then
    for plugin in /usr/lib/*-linux-gnu/mosquitto_dynamic_security.so /usr/lib/mosquitto_dynamic_security.so; do
      [[ -r $plugin ]] && DYNSEC_PLUGIN=$plugin && break
    done
  fi
  [[ -r ${DYNSEC_PLUGIN:-} ]] || die "Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is not under /usr/lib: $APT_HINT, or set DYNSEC_PLUGIN"
  if [[ -z ${PGBIN:-} ]]; then
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  local program
  for program in initdb pg_ctl psql; do
    [[ -x ${PGBIN:-}/$program ]] || die "PostgreSQL's $program is not in ${PGBIN:-/usr/lib/postgresql/*/bin}: $APT_HINT, or set PGBIN"
  done
}

cloud() {
  (cd "$DIR" && node "$CLOUD_BIN" "$@")
}

# ── processes: started detached, known by a pid file, stopped by it ───────────────────────────────

pid_of() {
  [[ -f $DIR/run/$1.pid ]] && cat "$DIR/run/$1.pid"
}

# Alive, not a zombie, and started from DIR (a pid file outliving its process never names another's).
running() {
  local pid stat
  pid=$(pid_of "$1") || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

log_size() {
  stat -c %s "$DIR/log/$1.log" 2>/dev/null || echo 0
}

# Waits for a line matching `re` written to log/NAME.log after byte `from`; fails at once if the
# process exits first, showing the end of its log.
wait_ready() {
  local name=$1 from=$2 re=$3 limit=$4 what=$5
  local deadline=$((SECONDS + limit))
  until tail -c +$((from + 1)) "$DIR/log/$name.log" 2>/dev/null | grep -qE -- "$re"; do
    if ! running "$name"; then
      printf 'run.sh: %s exited before it was ready; the end of %s:\n' "$what" "$DIR/log/$name.log" >&2
      tail -c +$((from + 1)) "$DIR/log/$name.log" | tail -n 15 >&2
      exit 1
    fi
    (( SECONDS < deadline )) || die "$what was not ready within $limit s (see $DIR/log/$name.log)"
    sleep 0.1
  done
}

# name, then the command: detached from this shell's session, so a closed terminal does not stop it.
launch() {
  local name=$1
  shift
  (cd "$DIR" && exec setsid "$@") </dev/null >>"$DIR/log/$name.log" 2>&1 &
  echo $! >"$DIR/run/$name.pid"
  STARTED+=("$name")
}

stop_process() {
  local name=$1 pid
  if running "$name"; then
    pid=$(pid_of "$name")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_WAIT_S))
    while running "$name" && (( SECONDS < deadline )); do sleep 0.1; done
    if running "$name"; then
      echo "run.sh: $name did not stop within $STOP_WAIT_S s of SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while running "$name" && (( SECONDS < deadline )); do sleep 0.1; done
      ! running "$name" || die "$name (pid $pid) survives SIGKILL"
    fi
  fi
  rm -f "$DIR/run/$name.pid"
}

postgres_running() {
  [[ -f $DIR/pg/data/PG_VERSION ]] && "$PGBIN/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1
}

stop_postgres() {
  if postgres_running; then
    quiet 'stopping PostgreSQL' "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m fast -w -t 60 stop
  fi
}

# Workers first (they leave the shared subscription and finish their store writes), then what they use.
stop_all() {
  local f name
  for f in "$DIR"/run/worker-*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    running "$name" && kill -TERM "$(pid_of "$name")" 2>/dev/null || true
  done
  for f in "$DIR"/run/worker-*.pid; do
    [[ -e $f ]] && stop_process "$(basename "$f" .pid)"
  done
  stop_process mosquitto
  stop_postgres
}

# A failed `up` stops what it started itself, and nothing that was already running.
undo_started() {
  local rc=$? name
  (( rc != 0 )) || return 0
  echo "run.sh: stopping what this run started (its logs stay in $DIR/log)" >&2
  for name in "${STARTED[@]}"; do
    case $name in
      postgres) stop_postgres ;;
      *) stop_process "$name" ;;
    esac
  done
  exit "$rc"
}

# ── what DIR holds ────────────────────────────────────────────────────────────────────────────────

# TEMPLATE OUT NAME=VALUE…: each @NAME@ replaced; a placeholder left without a value stops the run.
render() {
  local template=$1 out=$2 text pair
  shift 2
  text=$(<"$template")
  for pair in "$@"; do text=${text//"@${pair%%=*}@"/"${pair#*=}"}; done
  [[ ! $text =~ @[A-Z_]+@ ]] || die "$template: no value for ${BASH_REMATCH[0]}"
  printf '%s\n' "$text" >"$out.tmp"
  mv "$out.tmp" "$out"
}

make_secrets() {
  mkdir -p "$DIR/secrets"
  # Every worker hashes device secrets under this one key (cloud/README.md, "PostgreSQL store").
  [[ -f $DIR/secrets/server.key ]] || openssl rand -hex 32 >"$DIR/secrets/server.key"
  [[ -f $DIR/secrets/broker.password ]] || openssl rand -hex 24 >"$DIR/secrets/broker.password"
  if [[ ! -f $DIR/secrets/pgpass ]]; then
    printf '127.0.0.1:%s:scanbox:scanbox:%s\n' "$PG_PORT" "$(openssl rand -hex 24)" >"$DIR/secrets/pgpass"
  fi
  # libpq's and node-postgres' password file: the workers' and the CLI's PostgreSQL password.
  export PGPASSFILE=$DIR/secrets/pgpass
}

san_of() {
  if [[ $1 =~ ^[0-9.]+$ ]]; then printf 'IP:%s' "$1"; else printf 'DNS:%s' "$1"; fi
}

# A private CA and two server certificates it signed: Mosquitto's (boxes dial it over mqtts) and the
# workers' (boxes pair over HTTPS). A box trusts both with `--ca DIR/tls/ca.pem`.
make_certs() {
  local tls=$DIR/tls name
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  mkdir -p "$tls"
  if [[ ! -f $tls/ca.pem ]]; then
    quiet 'making the CA' openssl req -x509 "${ec[@]}" -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 3650 \
      -subj '/CN=scanbox scale-out example CA' -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
  fi
  local names
  names=$(printf '%s\n' "$(san_of "$PUBLIC_HOST")" IP:127.0.0.1 DNS:localhost | sort -u | paste -sd, -)
  for name in broker cloud; do
    [[ -f $tls/$name.pem ]] && continue
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' "$names" >"$tls/$name.ext"
    quiet "making the $name key" openssl req "${ec[@]}" -keyout "$tls/$name.key" -out "$tls/$name.csr" -subj "/CN=$PUBLIC_HOST"
    quiet "signing the $name certificate" openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
      -out "$tls/$name.pem" -days 825 -extfile "$tls/$name.ext"
    rm -f "$tls/$name.csr" "$tls/$name.ext"
  done
  chmod 0644 "$tls"/*.pem
}

# Made once: the operator may edit it afterwards (wallet channels instead of the instant gateway).
make_cloud_config() {
  [[ -f $DIR/cloud.json ]] && return
  render "$HERE/cloud.template.json" "$DIR/cloud.json" RUN_DIR="$DIR" BIND_HOST="$BIND_HOST" PUBLIC_HOST="$PUBLIC_HOST" \
    FIRST_HTTPS_PORT="${HTTPS[0]}" MQTTS_PORT="$MQTTS_PORT" PG_PORT="$PG_PORT" BROKER_PORT="$BROKER_PORT" \
    BROKER_PASSWORD="$(<"$DIR/secrets/broker.password")"
}

start_postgres() {
  local data=$DIR/pg/data
  if [[ ! -f $data/PG_VERSION ]]; then
    mkdir -p "$DIR/pg"
    # The socket (in DIR/pg, 0700) trusts this user; TCP asks for the password of the role `scanbox`.
    quiet initdb "$PGBIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8
    printf "\n# run.sh: loopback only; the socket in DIR/pg, which only this user can enter\nport = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n" \
      "$PG_PORT" "$DIR/pg" >>"$data/postgresql.conf"
  fi
  if ! postgres_running; then
    STARTED+=(postgres)
    quiet 'starting PostgreSQL' "$PGBIN/pg_ctl" -D "$data" -l "$DIR/log/postgres.log" -w -t 60 start
  fi
  local has
  has=$("$PGBIN/psql" -h "$DIR/pg" -p "$PG_PORT" -U postgres -d postgres -Atc "SELECT count(*) FROM pg_roles WHERE rolname = 'scanbox'")
  [[ $has == 1 ]] && return
  # The cloud needs no superuser: a role that owns its database. The password goes on stdin, not argv.
  quiet 'creating the role and database scanbox' "$PGBIN/psql" -h "$DIR/pg" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL
CREATE ROLE scanbox LOGIN PASSWORD '$(cut -d: -f5 "$DIR/secrets/pgpass")';
CREATE DATABASE scanbox OWNER scanbox;
SQL
}

# deploy/mosquitto/scanbox.conf as it is, but for the lines naming a real host's paths and port.
render_broker_conf() {
  local line swapped=0
  while IFS= read -r line || [[ -n $line ]]; do
    case $line in
      'plugin '*) line="plugin $DYNSEC_PLUGIN" swapped=$((swapped + 1)) ;;
      'plugin_opt_config_file '*) line="plugin_opt_config_file $DIR/mosquitto/dynamic-security.json" swapped=$((swapped + 1)) ;;
      'listener 8883') line="listener $MQTTS_PORT $BIND_HOST" swapped=$((swapped + 1)) ;;
      'certfile '*) line="certfile $DIR/tls/broker.pem" swapped=$((swapped + 1)) ;;
      'keyfile '*) line="keyfile $DIR/tls/broker.key" swapped=$((swapped + 1)) ;;
    esac
    printf '%s\n' "$line"
  done <"$REPO/deploy/mosquitto/scanbox.conf" >"$DIR/mosquitto/conf.d/scanbox.conf"
  (( swapped == 5 )) || die "deploy/mosquitto/scanbox.conf no longer has exactly one each of its plugin, plugin_opt_config_file, 'listener 8883', certfile and keyfile lines: update render_broker_conf"
}

start_mosquitto() {
  mkdir -p "$DIR/mosquitto/conf.d"
  render "$HERE/mosquitto.template.conf" "$DIR/mosquitto/mosquitto.conf" RUN_DIR="$DIR" BROKER_PORT="$BROKER_PORT"
  render_broker_conf
  if [[ ! -f $DIR/mosquitto/dynamic-security.json ]]; then
    # The cloud's broker user, the plugin's admin: the workers log in as it and manage the boxes' accounts.
    quiet 'mosquitto_ctrl dynsec init' "$MOSQUITTO_CTRL" dynsec init "$DIR/mosquitto/dynamic-security.json" scanbox-cloud "$(<"$DIR/secrets/broker.password")"
  fi
  running mosquitto && return
  local from
  from=$(log_size mosquitto)
  launch mosquitto "$MOSQUITTO" -c "$DIR/mosquitto/mosquitto.conf"
  wait_ready mosquitto "$from" ' running$' 15 Mosquitto
}

start_worker() {
  local id=$1 https=$2 metrics=$3
  running "worker-$id" && return
  FROM[$id]=$(log_size "worker-$id")
  launch "worker-$id" node "$CLOUD_BIN" start --config "$DIR/cloud.json" --worker-id "$id" --http-port "$https" --metrics-port "$metrics"
}

wait_worker() {
  [[ -n ${FROM[$1]:-} ]] || return 0
  wait_ready "worker-$1" "${FROM[$1]}" '"msg":"ready"' "$WORKER_READY_S" "worker $1"
}

# An existing merchant is what a second `up` finds: fine.
add_merchant() {
  local out
  if ! out=$(cloud merchant add "$MERCHANT" --name 'scale-out example' --config "$DIR/cloud.json" 2>&1) && [[ $out != *MERCHANT_EXISTS* ]]; then
    printf 'run.sh: adding merchant %s failed:\n%s\n' "$MERCHANT" "$out" >&2
    exit 1
  fi
}

print_summary() {
  local i id device_bin=scanbox-device
  [[ -f $(dirname "$CLOUD_BIN")/scanbox-device.js ]] && device_bin="node $(dirname "$CLOUD_BIN")/scanbox-device.js"
  cat <<EOF
scanbox scale-out example running in $DIR
  PostgreSQL   127.0.0.1:$PG_PORT  database scanbox, role scanbox (password in secrets/pgpass)   log/postgres.log
  Mosquitto    mqtts://$PUBLIC_HOST:$MQTTS_PORT (boxes, TLS)  mqtt://127.0.0.1:$BROKER_PORT (workers)   log/mosquitto.log
EOF
  for i in "${!HTTPS[@]}"; do
    id=w$((i + 1))
    printf '  worker %-5s https://%s:%s  (pid %s; metrics http://127.0.0.1:%s/metrics)   log/worker-%s.log\n' "$id" "$PUBLIC_HOST" "${HTTPS[$i]}" "$(pid_of "worker-$id")" "${METRICS[$i]}" "$id"
  done
  cat <<EOF
  CA for boxes $DIR/tls/ca.pem

Pair a box (the code carries worker w1's address, publicHttpUrl in cloud.json; the CA lets the command check it answers):
  cd $DIR && PGPASSFILE=$DIR/secrets/pgpass NODE_EXTRA_CA_CERTS=$DIR/tls/ca.pem node $CLOUD_BIN pair create --merchant $MERCHANT --store S1 --config $DIR/cloud.json
  $device_bin pair --code <code> --cloud https://$PUBLIC_HOST:${HTTPS[0]} --ca $DIR/tls/ca.pem --data <box data dir>
  $device_bin start --scanner <port> --ecr <port> --data <box data dir> --ca $DIR/tls/ca.pem
Stop:  $HERE/run.sh stop $DIR
EOF
}

# ── commands ──────────────────────────────────────────────────────────────────────────────────────

cmd_up() {
  open_dir "$1"
  load_settings new
  check_settings
  find_tools
  STARTED=()
  declare -gA FROM=()
  trap undo_started EXIT
  make_dir
  save_settings
  make_secrets
  make_certs
  make_cloud_config
  start_postgres
  start_mosquitto
  quiet 'scanbox-cloud migrate' cloud migrate --config "$DIR/cloud.json"
  local i
  # The first worker gives the cloud's broker user its role, and Mosquitto then drops that user's
  # connections once: the others start after it, so none of them is cut off while starting.
  start_worker w1 "${HTTPS[0]}" "${METRICS[0]}"
  add_merchant
  wait_worker w1
  for i in "${!HTTPS[@]}"; do
    if (( i > 0 )); then start_worker "w$((i + 1))" "${HTTPS[$i]}" "${METRICS[$i]}"; fi
  done
  for i in "${!HTTPS[@]}"; do wait_worker "w$((i + 1))"; done
  trap - EXIT
  print_summary
}

cmd_add_worker() {
  (( $# == 3 )) || usage
  open_dir "$1"
  load_settings
  HTTPS_PORTS="$HTTPS_PORTS $2"
  METRICS_PORTS="$METRICS_PORTS $3"
  check_settings
  find_tools
  export PGPASSFILE=$DIR/secrets/pgpass
  local id=w${#HTTPS[@]}
  STARTED=()
  declare -gA FROM=()
  trap undo_started EXIT
  start_worker "$id" "$2" "$3"
  wait_worker "$id"
  trap - EXIT
  save_settings
  echo "worker $id ready: https://$PUBLIC_HOST:$2 (metrics http://127.0.0.1:$3/metrics; log $DIR/log/worker-$id.log); kept in $DIR/settings.env"
}

cmd_stop() {
  (( $# == 1 )) || usage
  open_dir "$1"
  load_settings
  find_tools
  stop_all
  echo "stopped everything of $DIR (its data stays: run.sh up $DIR starts it again)"
}

ARGS=("$@")
case ${1:-} in
  up) shift && (( $# == 1 )) || usage; cmd_up "$1" ;;
  add-worker) shift && cmd_add_worker "$@" ;;
  stop) shift && cmd_stop "$@" ;;
  '' | -h | --help) usage ;;
  *) (( $# == 1 )) || usage; cmd_up "$1" ;;
esac
