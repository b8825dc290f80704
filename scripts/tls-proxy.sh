#!/usr/bin/env bash
# The Docker engine behind TLS with client certificates, for testing
# Ferrite's DOCKER_HOST=tcp://... + DOCKER_TLS_VERIFY path without
# reconfiguring (and restarting) the machine's engine: nginx (stream
# module) terminates mutual TLS on 127.0.0.1 and relays every connection to
# the engine's unix socket. Not socat: its OpenSSL server context has no
# session id context, so with client verification on it aborts handshakes
# from rustls, which offers a session id ("session id context
# uninitialized").
#
#   scripts/tls-proxy.sh start DIR   prints DOCKER_HOST=tcp://127.0.0.1:PORT
#                                    and DOCKER_CERT_PATH=DIR
#   scripts/tls-proxy.sh stop DIR
#
# DIR gets a throwaway CA and certificates in the layout DOCKER_CERT_PATH
# expects (ca.pem; cert.pem and key.pem = the client's), the server's in
# DIR/server/, the CA's key in DIR/ca/. EC P-256 keys in PKCS#8 PEM,
# X.509 v3 with the extensions rustls/webpki insist on (SAN on the server
# certificate, extendedKeyUsage serverAuth/clientAuth, CA:false on leaves,
# a CA with basicConstraints CA:true and keyCertSign). Pid in DIR/proxy.pid.
# DOCKER_SOCK overrides the engine's socket (default /var/run/docker.sock).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
daemon_args proxy "$@"
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A leaf certificate signed by the CA: newleaf NAME CN EXTENSIONS OUT_CERT OUT_KEY
newleaf() {
  local csr=$DIR/ca/$1.csr
  newkey "$5"
  openssl req -new -config "$DIR/ca/openssl.cnf" -key "$5" -subj "/CN=$2" -out "$csr"
  # A random positive serial: webpki wants it unique and at most 20 octets.
  openssl x509 -req -in "$csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca/key.pem" \
    -set_serial "0x7$(openssl rand -hex 15)" -days 825 -sha256 \
    -extfile "$DIR/ca/openssl.cnf" -extensions "$3" -out "$4" 2>/dev/null
  rm -f "$csr"
}

certs() {
  # Kept while the chain still verifies, so a restart keeps the client's
  # certificates valid.
  if [ -f "$DIR/ca.pem" ] && [ -f "$DIR/cert.pem" ] && [ -f "$DIR/key.pem" ] \
     && [ -f "$DIR/server/cert.pem" ] && [ -f "$DIR/server/key.pem" ] \
     && openssl verify -CAfile "$DIR/ca.pem" -purpose sslclient "$DIR/cert.pem" >/dev/null 2>&1 \
     && openssl verify -CAfile "$DIR/ca.pem" -purpose sslserver "$DIR/server/cert.pem" >/dev/null 2>&1 \
     && openssl x509 -checkend 86400 -noout -in "$DIR/server/cert.pem" >/dev/null; then
    return
  fi
  (
    umask 077
    mkdir -p "$DIR/ca" "$DIR/server"
    cat >"$DIR/ca/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
    newkey "$DIR/ca/key.pem"
    openssl req -x509 -new -config "$DIR/ca/openssl.cnf" -key "$DIR/ca/key.pem" \
      -subj "/CN=Ferrite test CA" -set_serial "0x7$(openssl rand -hex 15)" \
      -days 3650 -sha256 -extensions ca_ext -out "$DIR/ca.pem"
    newleaf server localhost server_ext "$DIR/server/cert.pem" "$DIR/server/key.pem"
    newleaf client ferrite-client client_ext "$DIR/cert.pem" "$DIR/key.pem"
  )
  # Certificates are public; the keys stay 0600.
  chmod 644 "$DIR/ca.pem" "$DIR/cert.pem" "$DIR/server/cert.pem"
}

# The engine's /_ping through the proxy with the client certificate.
ping() {
  curl -s --max-time 5 --cacert "$DIR/ca.pem" --cert "$DIR/cert.pem" --key "$DIR/key.pem" \
    "https://127.0.0.1:$1/_ping" 2>/dev/null
}

print() {
  echo "DOCKER_HOST=tcp://$(cat "$ADDRFILE")"
  echo "DOCKER_CERT_PATH=$DIR"
}

start() {
  if running; then print; return; fi
  [ -S "$SOCK" ] || { echo "no Docker socket at $SOCK" >&2; exit 1; }
  apt_install nginx libnginx-mod-stream openssl curl
  certs

  local port pid
  for _ in 1 2 3 4 5; do  # a few ports, in case one is taken meanwhile
    port=$(free_port)
    # ssl_verify_client: demand a client certificate signed by the CA.
    # user root: the workers connect to the engine's socket.
    # proxy_timeout: an attach stays quiet while a function runs.
    cat >"$DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user root;
daemon on;
worker_processes 1;
pid $DIR/proxy.pid;
error_log $DIR/proxy.log info;
events {}
stream {
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $DIR/server/cert.pem;
    ssl_certificate_key $DIR/server/key.pem;
    ssl_client_certificate $DIR/ca.pem;
    ssl_verify_client on;
    proxy_pass unix:$SOCK;
    proxy_timeout 24h;
  }
}
CONF
    if nginx -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/proxy.log" 2>>"$DIR/proxy.log"; then
      for _ in $(seq 50); do
        if [ "$(ping "$port")" = OK ]; then
          echo "127.0.0.1:$port" >"$ADDRFILE"
          print
          return
        fi
        sleep 0.1
      done
      pid=$(cat "$PIDFILE" 2>/dev/null || true)
      [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    fi
  done
  echo "TLS proxy did not start; last log:" >&2
  tail -n 20 "$DIR/proxy.log" >&2
  exit 1
}

stop() {
  if running; then
    # nginx's master stops its workers (and their connections) on TERM.
    stop_pidfile "$PIDFILE"
    pkill -9 -f "nginx -c $DIR/nginx.conf" 2>/dev/null || true
  fi
  rm -f "$PIDFILE" "$ADDRFILE"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
