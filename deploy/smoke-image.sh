#!/bin/sh
# One order from sign-up to `paid` against a running deployment, with curl: the proof CI asks
# of a freshly built image (.github/workflows/ci.yml, job "image") before pushing it, and a
# check to run by hand after any deploy.
#
#   deploy/smoke-image.sh [BASE_URL]          # default http://127.0.0.1:8080
#
# It registers a new customer, fills a cart (SMOKE_SKU, default TEE-BLA-M of seed_demo),
# sets a German address and the first shipping method offered, checks out with the payment
# token SMOKE_PAYMENT_TOKEN (default tok_success: the sandbox's, or a provider's test mode)
# and waits up to SMOKE_TIMEOUT_SECONDS (default 90) for a worker to charge it. The
# deployment needs web, a worker consuming the `payments` queue, the payment provider, and
# the demo data (`manage.py seed_demo`: the SKU, shipping to DE). Needs curl and python3.
# Exits 0 once the order reads `paid`; otherwise prints the last answer and exits 1.
set -eu

BASE=${1:-${SMOKE_BASE_URL:-http://127.0.0.1:8080}}
SKU=${SMOKE_SKU:-TEE-BLA-M}
PAYMENT_TOKEN=${SMOKE_PAYMENT_TOKEN:-tok_success}
TIMEOUT=${SMOKE_TIMEOUT_SECONDS:-90}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ACCESS=""

say() { printf 'smoke: %s\n' "$*"; }

fail() {
  say "FAILED: $*"
  if [ -s "$WORK/body" ]; then
    say "last answer:"
    cat "$WORK/body"
    echo
  fi
  exit 1
}

# call METHOD PATH [JSON] [EXTRA_HEADER]: the status code on stdout, the body in $WORK/body.
call() {
  method=$1
  path=$2
  body=${3:-}
  extra=${4:-}
  set -- -sS -o "$WORK/body" -w '%{http_code}' -X "$method" --max-time 15 \
    -H 'Content-Type: application/json' -H 'Accept: application/json'
  if [ -n "$ACCESS" ]; then
    set -- "$@" -H "Authorization: Bearer $ACCESS"
  fi
  if [ -n "$extra" ]; then
    set -- "$@" -H "$extra"
  fi
  if [ -n "$body" ]; then
    set -- "$@" --data "$body"
  fi
  curl "$@" "$BASE$path" || true
}

# expect CODE METHOD PATH [JSON] [EXTRA_HEADER]: fails unless the answer has that status.
expect() {
  want=$1
  shift
  got=$(call "$@")
  [ "$got" = "$want" ] || fail "$1 $2 answered $got, expected $want"
}

# field PATH: a value of the last JSON answer, by a dotted path (list indexes as numbers).
field() {
  python3 - "$1" "$WORK/body" <<'PY'
import json
import sys

value = json.load(open(sys.argv[2]))
for part in sys.argv[1].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value)
PY
}

say "waiting for $BASE/health/ready"
deadline=$(($(date +%s) + TIMEOUT))
until [ "$(call GET /health/ready)" = 200 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "web not ready within ${TIMEOUT}s"
  sleep 2
done

stamp="$(date +%s)-$$"
email="smoke-$stamp@example.com"
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
expect 201 POST /api/users "{\"name\": \"Smoke Test\", \"email\": \"$email\", \"password\": \"$password\"}"
expect 200 POST /api/auth/token "{\"email\": \"$email\", \"password\": \"$password\"}"
ACCESS=$(field access)
say "registered and signed in as $email"

# A signed-in POST /api/carts answers the customer's open cart.
expect 201 POST /api/carts
cart=$(field token)
expect 200 POST "/api/carts/$cart/lines" "{\"sku\": \"$SKU\", \"quantity\": 1}"
address='{"first_name": "Smoke", "last_name": "Test", "street_address_1": "Unter den Linden 1",
  "city": "Berlin", "postal_code": "10117", "country": "DE"}'
expect 200 PATCH "/api/carts/$cart" "{\"shipping_address\": $address}"
method=$(field shipping_methods.0.id) || fail "no shipping method offered for DE"
expect 200 PATCH "/api/carts/$cart" "{\"shipping_method\": $method}"
say "cart $cart: 1 x $SKU, shipping method $method, total $(field total)"

expect 201 POST "/api/carts/$cart/checkout" "{\"payment_token\": \"$PAYMENT_TOKEN\"}" \
  "Idempotency-Key: smoke-$stamp"
order=$(field id)
say "order $order placed: $(field status)"

deadline=$(($(date +%s) + TIMEOUT))
while :; do
  expect 200 GET "/api/orders/$order"
  status=$(field status)
  case $status in
    paid)
      say "order $order is paid"
      exit 0
      ;;
    pending_payment) ;;
    *) fail "order $order ended $status" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "order $order still $status after ${TIMEOUT}s"
  sleep 1
done
