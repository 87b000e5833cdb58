/*
 * redact: what of a request may be written down.
 *
 * The audit log keeps a container's network reach, including which secret
 * names go to which domains, but never a secret's value.
 */
#ifndef GW_REDACT_H
#define GW_REDACT_H

#include <jansson.h>

#define REDACT_MARKER "[REDACTED]"

/* A new copy of a network_policy object with every domain_secrets[].value
 * replaced by REDACT_MARKER; NULL when np is NULL or memory runs out. */
json_t *redact_network_policy(const json_t *np);

/* The same, and each redacted value gains "value_fingerprint", an HMAC of
 * it under key ("hmac-sha256:<hex>"): an auditor holding the key can tell
 * which secret was used; nobody can recover it. No fingerprint without a
 * secret key (NULL, or unkeyed), since a plain hash of a short token could
 * be guessed. */
struct chain_key;
json_t *redact_network_policy_keyed(const json_t *np, struct chain_key *key);

/* Overwrites every domain secret value in a create document in place, once
 * it has been forwarded, so no copy outlives the request. */
void redact_wipe_secrets(json_t *doc);

#endif
