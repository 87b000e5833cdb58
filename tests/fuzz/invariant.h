/*
 * invariant: what a forwarded create body must satisfy, checked from the
 * policy document alone.
 *
 * The fuzz targets and the soak hold everything the gateway forwards
 * against the policy it was given. To be worth anything the check must not
 * share code with what it checks: the policy document is read here with
 * jansson directly (its defaults restated from the README), domains are
 * compared with a matcher of its own, and nothing from policy.c or
 * domain.c is called. Only the upstream's contract (schema.c) is reused,
 * for "the forwarded body passes the schema again".
 */
#ifndef GW_TESTS_INVARIANT_H
#define GW_TESTS_INVARIANT_H

#include <jansson.h>
#include <stddef.h>

struct inv_policy;

/* Reads a policy document (the JSON the gateway loaded). Returns NULL when
 * the document is not one the README describes (a key of the wrong type,
 * a value out of range), which for a policy the gateway accepted is itself
 * a finding. */
struct inv_policy *inv_policy_new(const json_t *doc, char *why, size_t n);
void inv_policy_free(struct inv_policy *p);

/*
 * Checks the body text the gateway would send upstream (len bytes) against
 * p: (a) strict JSON that passes the contract again, (b) memory_limit at
 * most the policy's max, (c) only domains the policy covers, secrets only
 * when allowed and only for listed domains, (d) expires_after.minutes at
 * most the max, (e) skills per the policy, (f) at most max_count file_ids;
 * and every one of memory_limit, expires_after and network_policy present,
 * since the gateway forwards what it decided, never the upstream's
 * defaults. A rule the policy puts in shadow mode is not enforced and so
 * not checked. Returns 0, or -1 with why (n bytes) saying what broke.
 */
int inv_check_create(const struct inv_policy *p, const char *text, size_t len, char *why, size_t n);

/*
 * Checks the Responses body text the gateway would send upstream (len
 * bytes) against p, by this file's own reading of where a body defines
 * tools (its "tools", and those of its input items of type
 * tool_search_output and additional_tools): (a) strict JSON; every list of
 * tools an array (or a null "tools"); (b) every code_interpreter and shell
 * tool passes its contract again; (c) every container such a tool makes
 * (a code_interpreter "auto" container, a shell "container_auto"
 * environment) has a memory_limit (a size, never null or absent) at most
 * the policy's max, a network_policy within the policy as for a create,
 * skills per the policy (shell), at most max_count file_ids, and no
 * expires_after. Rules in shadow mode are not checked. Returns 0, or -1
 * with why saying what broke.
 */
int inv_check_tools(const struct inv_policy *p, const char *text, size_t len, char *why, size_t n);

/*
 * Whether the normalized name (a hostname or a "*." pattern) is covered by
 * the normalized pattern, by this file's own reading of the README:
 * "example.com" covers itself; "*.example.org" covers every name below
 * example.org and every "*." pattern whose names all are; "*" covers every
 * name.
 */
int inv_domain_covers(const char *pattern, const char *name);

/*
 * The same over many patterns, in one lookup per label of the name, so a
 * fuzz input of many domains does not make the check the slow part: set
 * is a new object whose keys are the (normalized) patterns of list, NULL
 * on no memory; covers says whether any of them covers name, as
 * inv_domain_covers would ("*" is not read as any name here).
 */
json_t *inv_domain_set(const json_t *list);
int inv_domain_set_covers(const json_t *set, const char *name);

/*
 * Whether name is a plain DNS hostname as the README defines it, lower case
 * and without the root's dot (the gateway forwards names normalized),
 * behind one leading "*." only when wildcard_ok: labels of [a-z0-9-], 1 to
 * 63 long, not starting or ending with '-', two or more, 253 bytes at most,
 * a last label that is not a number, and nothing libc's inet_aton reads as
 * an address. Returns 0, or -1 with why (n bytes) filled.
 */
int inv_check_name(const char *name, int wildcard_ok, char *why, size_t n);

/* Lower-cases s and drops one trailing dot, into dst (n bytes). */
void inv_domain_fold(const char *s, size_t len, char *dst, size_t n);

#endif
