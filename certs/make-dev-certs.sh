#!/bin/sh
# Makes a development CA, a server certificate for localhost and 127.0.0.1,
# and a client certificate, with the openssl command line. For tests and
# local use only; private keys stay in this folder and are git-ignored.
#
#   certs/make-dev-certs.sh [OUTDIR]     (default: the folder of this script)
set -eu
out=${1:-$(dirname "$0")}
mkdir -p "$out"
cd "$out"
days=825

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -days "$days" -subj "/CN=gateway dev CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-out server.pem -days "$days" -extfile server.ext 2>/dev/null

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout client.key -out client.csr -subj "/CN=data-team-service" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-out client.pem -days "$days" -extfile client.ext 2>/dev/null

rm -f server.csr client.csr server.ext client.ext ca.srl
chmod 600 ca.key server.key client.key
echo "made ca.pem, server.pem, client.pem (and their keys) in $(pwd)"
