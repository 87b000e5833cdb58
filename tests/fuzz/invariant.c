/*
 * invariant: the forwarded create body against the policy document, read
 * and matched here independently of policy.c and domain.c (see
 * invariant.h).
 */
#include "invariant.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/jsondoc.h"
#include "policy/schema.h"

#define INV_NAME_MAX 253

/* The README's defaults: an empty policy allows a 1g container with no
 * network, no skills and at most 100 files, for at most 1440 minutes, and
 * lists of at most 256 domains, 64 secrets and 64 skills. */
struct inv_policy {
	int mem_max; /* rank in sizes[] */
	long long exp_max;
	json_t *domains;  /* folded patterns, "*" kept as is */
	json_t *patterns; /* the same as keys, so a check stays linear */
	int any_domain;
	int allow_secrets, allow_wildcards;
	long long max_domains, max_secrets;
	json_t *skills;
	json_t *skill_ids; /* the same as keys, "*" left out */
	int any_skill, allow_inline;
	long long max_inline;
	long long max_skills;
	long long max_files;
	/* Rules in shadow mode only audit; what they would deny goes through. */
	int shadow_memory, shadow_network, shadow_expiry, shadow_skills, shadow_files;
};

static const char *const sizes[] = {"1g", "4g", "16g", "64g", NULL};

static int
size_rank(const char *s)
{
	int i;

	for (i = 0; s && sizes[i]; i++)
		if (strcmp(s, sizes[i]) == 0)
			return i;
	return -1;
}

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

void
inv_domain_fold(const char *s, size_t len, char *dst, size_t n)
{
	size_t i, o = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	for (i = 0; i < len && o + 1 < n; i++) {
		char c = s[i];

		dst[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	dst[o] = '\0';
}

/* Whether name ends with "." + suffix, with something before the dot. */
static int
below(const char *name, const char *suffix)
{
	size_t nl = strlen(name), sl = strlen(suffix);

	return nl > sl + 1 && name[nl - sl - 1] == '.' && strcmp(name + nl - sl, suffix) == 0;
}

int
inv_domain_covers(const char *pattern, const char *name)
{
	if (strcmp(pattern, "*") == 0)
		return 1;
	if (strncmp(pattern, "*.", 2) != 0)
		return strncmp(name, "*.", 2) != 0 && strcmp(pattern, name) == 0;
	/* "*.S" covers a.S, b.a.S, and the patterns *.a.S and *.S. */
	if (strncmp(name, "*.", 2) == 0)
		return strcmp(name + 2, pattern + 2) == 0 || below(name + 2, pattern + 2);
	return below(name, pattern + 2);
}

int
inv_check_name(const char *s, int wildcard_ok, char *why, size_t n)
{
	const char *host = s, *label, *dot;
	size_t len = strlen(s), labels = 0, k, i;
	struct in_addr a;
	int digits, hex;

	if (len == 0 || len > INV_NAME_MAX)
		return fail(why, n, "domain \"%.80s\" is empty or longer than 253", s);
	if (strncmp(s, "*.", 2) == 0) {
		if (!wildcard_ok)
			return fail(why, n, "wildcard domain \"%.80s\" forwarded", s);
		host = s + 2;
	}
	for (label = host;; label = dot + 1) {
		dot = strchr(label, '.');
		k = dot ? (size_t)(dot - label) : strlen(label);
		if (k == 0 || k > 63 || label[0] == '-' || label[k - 1] == '-')
			return fail(why, n, "domain \"%.80s\" has a bad label", s);
		for (i = 0; i < k; i++) {
			char c = label[i];

			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
				return fail(why, n, "domain \"%.80s\" holds byte 0x%02x", s,
				            (unsigned char)c);
		}
		labels++;
		if (dot == NULL)
			break;
	}
	if (labels < 2)
		return fail(why, n, "domain \"%.80s\" has fewer than two labels", s);
	/* The last label: all digits, or 0x and hex, reads as a number. */
	digits = hex = 1;
	for (i = 0; label[i]; i++) {
		if (label[i] < '0' || label[i] > '9')
			digits = 0;
		if (!((label[i] >= '0' && label[i] <= '9') ||
		      (label[i] >= 'a' && label[i] <= 'f') ||
		      (i == 1 && label[i] == 'x' && label[0] == '0')))
			hex = 0;
	}
	if (digits || (hex && strncmp(label, "0x", 2) == 0))
		return fail(why, n, "domain \"%.80s\" ends in a number", s);
	/* libc's own reading is the referee for IPv4 in any notation. */
	if (inet_aton(host, &a) != 0)
		return fail(why, n, "domain \"%.80s\" is an IPv4 address", s);
	return 0;
}

/* The name itself when it is plain, itself when it is a "*." pattern, then
 * "*." and every end of it that follows a '.' with something before: the
 * patterns that inv_domain_covers would let cover it. */
int
inv_domain_set_covers(const json_t *set, const char *name)
{
	const char *host = name, *dot;
	char buf[2 + INV_NAME_MAX + 1];
	int wild = strncmp(name, "*.", 2) == 0;

	if (json_object_get(set, name) != NULL)
		return 1;
	if (wild)
		host = name + 2;
	for (dot = *host ? strchr(host + 1, '.') : NULL; dot; dot = strchr(dot + 1, '.')) {
		if (snprintf(buf, sizeof(buf), "*%s", dot) < (int)sizeof(buf) &&
		    json_object_get(set, buf) != NULL)
			return 1;
	}
	return 0;
}

json_t *
inv_domain_set(const json_t *list)
{
	json_t *set = json_object(), *v;
	size_t i;

	json_array_foreach(list, i, v)
	{
		if (set && json_object_set_nocheck(set, json_string_value(v), json_true()) < 0) {
			json_decref(set);
			set = NULL;
		}
	}
	return set;
}

static int
policy_covers(const struct inv_policy *p, const char *name)
{
	return p->any_domain || inv_domain_set_covers(p->patterns, name);
}

/* ---- the policy document ---- */

static int
get_bool(const json_t *o, const char *key, int *dst, char *why, size_t n)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return fail(why, n, "%s is not a boolean", key);
	*dst = json_is_true(v);
	return 0;
}

static int
get_int(const json_t *o, const char *key, long long *dst, char *why, size_t n)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return fail(why, n, "%s is not an integer", key);
	*dst = json_integer_value(v);
	return 0;
}

static int
get_shadow(const json_t *o, int *dst, char *why, size_t n)
{
	json_t *v = json_object_get(o, "mode");

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return fail(why, n, "a mode is not a string");
	if (strcmp(json_string_value(v), "shadow") == 0)
		*dst = 1;
	return 0;
}

/* A list of strings, each folded when fold is set ("*" stays). */
static json_t *
get_list(const json_t *o, const char *key, int fold, char *why, size_t n)
{
	json_t *v = json_object_get(o, key), *out = json_array(), *s;
	char buf[1024];
	size_t i;

	if (out == NULL)
		return NULL;
	json_array_foreach(v, i, s)
	{
		if (!json_is_string(s)) {
			fail(why, n, "%s[%zu] is not a string", key, i);
			json_decref(out);
			return NULL;
		}
		if (fold && strcmp(json_string_value(s), "*") != 0) {
			inv_domain_fold(json_string_value(s), json_string_length(s), buf,
			                sizeof(buf));
			json_array_append_new(out, json_string(buf));
		} else {
			json_array_append(out, s);
		}
	}
	if (v != NULL && !json_is_array(v)) {
		fail(why, n, "%s is not an array", key);
		json_decref(out);
		return NULL;
	}
	return out;
}

static int
section(const json_t *doc, const char *key, const json_t **dst, char *why, size_t n)
{
	const json_t *v = json_object_get(doc, key);

	*dst = v;
	if (v != NULL && !json_is_object(v))
		return fail(why, n, "%s is not an object", key);
	return 0;
}

struct inv_policy *
inv_policy_new(const json_t *doc, char *why, size_t n)
{
	struct inv_policy *p = calloc(1, sizeof(*p));
	const json_t *mem, *net, *exp, *sk, *files;
	int all_shadow = 0;
	json_t *v;
	size_t i;

	if (p == NULL) {
		fail(why, n, "out of memory");
		return NULL;
	}
	p->exp_max = 1440;
	p->max_inline = 52690944;
	p->max_files = 100;
	p->max_domains = 256;
	p->max_secrets = 64;
	p->max_skills = 64;
	if (!json_is_object(doc) || section(doc, "memory_limit", &mem, why, n) < 0 ||
	    section(doc, "network_policy", &net, why, n) < 0 ||
	    section(doc, "expires_after", &exp, why, n) < 0 ||
	    section(doc, "skills", &sk, why, n) < 0 || section(doc, "file_ids", &files, why, n) < 0)
		goto fail;
	v = json_object_get(mem, "max");
	p->mem_max = v ? size_rank(json_string_value(v)) : 0;
	if (p->mem_max < 0) {
		fail(why, n, "memory_limit.max is not a size");
		goto fail;
	}
	if (get_shadow(doc, &all_shadow, why, n) < 0 ||
	    get_shadow(mem, &p->shadow_memory, why, n) < 0 ||
	    get_shadow(net, &p->shadow_network, why, n) < 0 ||
	    get_shadow(exp, &p->shadow_expiry, why, n) < 0 ||
	    get_shadow(sk, &p->shadow_skills, why, n) < 0 ||
	    get_shadow(files, &p->shadow_files, why, n) < 0 ||
	    get_bool(net, "allow_domain_secrets", &p->allow_secrets, why, n) < 0 ||
	    get_bool(net, "allow_wildcards", &p->allow_wildcards, why, n) < 0 ||
	    get_int(exp, "max_minutes", &p->exp_max, why, n) < 0 ||
	    get_bool(sk, "allow_inline", &p->allow_inline, why, n) < 0 ||
	    get_int(sk, "max_inline_bytes", &p->max_inline, why, n) < 0 ||
	    get_int(files, "max_count", &p->max_files, why, n) < 0 ||
	    get_int(net, "max_domains", &p->max_domains, why, n) < 0 ||
	    get_int(net, "max_domain_secrets", &p->max_secrets, why, n) < 0 ||
	    get_int(sk, "max_count", &p->max_skills, why, n) < 0)
		goto fail;
	if (all_shadow)
		p->shadow_memory = p->shadow_network = p->shadow_expiry = p->shadow_skills =
		        p->shadow_files = 1;
	p->domains = get_list(net, "allowed_domains", 1, why, n);
	p->skills = get_list(sk, "allowed_skill_ids", 0, why, n);
	if (p->domains == NULL || p->skills == NULL)
		goto fail;
	p->patterns = inv_domain_set(p->domains);
	p->skill_ids = json_object();
	if (p->patterns == NULL || p->skill_ids == NULL) {
		fail(why, n, "out of memory");
		goto fail;
	}
	p->any_domain = json_object_get(p->patterns, "*") != NULL;
	json_array_foreach(p->skills, i, v)
	{
		if (strcmp(json_string_value(v), "*") == 0)
			p->any_skill = 1;
		else if (json_object_setn_nocheck(p->skill_ids, json_string_value(v),
		                                  json_string_length(v), json_true()) < 0) {
			fail(why, n, "out of memory");
			goto fail;
		}
	}
	return p;
fail:
	inv_policy_free(p);
	return NULL;
}

void
inv_policy_free(struct inv_policy *p)
{
	if (p == NULL)
		return;
	json_decref(p->domains);
	json_decref(p->patterns);
	json_decref(p->skills);
	json_decref(p->skill_ids);
	free(p);
}

/* ---- the forwarded document ---- */

static int
check_network(const struct inv_policy *p, const json_t *np, char *why, size_t n)
{
	const char *type = json_string_value(json_object_get(np, "type"));
	json_t *domains = json_object_get(np, "allowed_domains");
	json_t *secrets = json_object_get(np, "domain_secrets"), *d, *s, *listed_set;
	size_t i;
	int listed, rc = 0;

	if (type == NULL)
		return fail(why, n, "network_policy has no type");
	if (strcmp(type, "disabled") == 0)
		return json_object_size(np) == 1
		               ? 0
		               : fail(why, n, "a disabled network_policy has more");
	if (strcmp(type, "allowlist") != 0)
		return fail(why, n, "network_policy.type \"%.40s\"", type);
	if (p->shadow_network)
		return 0;
	if (json_array_size(domains) == 0)
		return fail(why, n, "an allowlist without domains");
	if ((long long)json_array_size(domains) > p->max_domains)
		return fail(why, n, "%zu domains, more than max_domains %lld",
		            json_array_size(domains), p->max_domains);
	if ((long long)json_array_size(secrets) > p->max_secrets)
		return fail(why, n, "%zu secrets, more than max_domain_secrets %lld",
		            json_array_size(secrets), p->max_secrets);
	json_array_foreach(domains, i, d)
	{
		const char *name = json_string_value(d);

		if (name == NULL || inv_check_name(name, p->allow_wildcards, why, n) < 0)
			return name ? -1 : fail(why, n, "allowed_domains[%zu] is not a string", i);
		if (!policy_covers(p, name))
			return fail(why, n, "domain \"%.80s\" is not covered by the policy", name);
	}
	if (secrets != NULL && !p->allow_secrets)
		return fail(why, n, "domain_secrets forwarded under a policy that forbids them");
	if (secrets == NULL)
		return 0;
	listed_set = inv_domain_set(domains);
	if (listed_set == NULL)
		return fail(why, n, "out of memory");
	json_array_foreach(secrets, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "domain"));

		if (name == NULL || inv_check_name(name, 0, why, n) < 0) {
			rc = name ? -1 : fail(why, n, "domain_secrets[%zu] has no domain", i);
			break;
		}
		listed = inv_domain_set_covers(listed_set, name);
		if (!listed || !policy_covers(p, name)) {
			rc = fail(why, n, "a secret for \"%.80s\", which is %s", name,
			          listed ? "not covered by the policy" : "not in the allowlist");
			break;
		}
	}
	json_decref(listed_set);
	return rc;
}

/* An upper bound on what any base64 decoder makes of s: every byte but
 * '=' counted as six bits. */
static long long
decoded_bound(const char *s, size_t len)
{
	size_t i, k = 0;

	for (i = 0; i < len; i++)
		if (s[i] != '=')
			k++;
	return (long long)(k * 6 / 8);
}

static int
check_skills(const struct inv_policy *p, const json_t *skills, char *why, size_t n)
{
	const json_t *sk;
	size_t i;
	int ok;

	if (p->shadow_skills)
		return 0;
	if ((long long)json_array_size(skills) > p->max_skills)
		return fail(why, n, "%zu skills, more than max_count %lld", json_array_size(skills),
		            p->max_skills);
	json_array_foreach(skills, i, sk)
	{
		const char *type = json_string_value(json_object_get(sk, "type"));
		const json_t *id = json_object_get(sk, "skill_id");

		if (type && strcmp(type, "skill_reference") == 0) {
			ok = p->any_skill ||
			     (json_is_string(id) && json_object_getn(p->skill_ids, json_string_value(id),
			                                             json_string_length(id)) != NULL);
			if (!ok)
				return fail(why, n, "skills[%zu] is not an allowed skill", i);
		} else {
			const json_t *data = json_object_get(json_object_get(sk, "source"), "data");
			long long size =
			        decoded_bound(json_string_value(data), json_string_length(data));

			if (!p->allow_inline)
				return fail(why, n, "skills[%zu] is inline, which is not allowed",
				            i);
			if (size > p->max_inline)
				return fail(why, n,
				            "skills[%zu] decodes to up to %lld bytes > %lld", i,
				            size, p->max_inline);
		}
	}
	return 0;
}

int
inv_check_create(const struct inv_policy *p, const char *text, size_t len, char *why, size_t n)
{
	json_t *doc = NULL, *strict = NULL, *exp, *np, *minutes;
	json_error_t je;
	struct err e;
	int rank, rc = -1;

	/* (a) Strict JSON the gateway's own front door would take. */
	err_clear(&e);
	strict = jsondoc_parse(text, len, &e);
	if (strict == NULL) {
		fail(why, n, "forwarded body is not strict JSON: %s", e.message);
		goto out;
	}
	if (schema_check(&schema_create_container_body, strict, &e) < 0) {
		fail(why, n, "forwarded body breaks the contract: %s: %s", e.param, e.message);
		goto out;
	}
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(doc)) {
		fail(why, n, "forwarded body is not a JSON object");
		goto out;
	}

	/* (b) */
	rank = size_rank(json_string_value(json_object_get(doc, "memory_limit")));
	if (rank < 0) {
		fail(why, n, "memory_limit missing or not a size");
		goto out;
	}
	if (rank > p->mem_max && !p->shadow_memory) {
		fail(why, n, "memory_limit %s over the policy's %s", sizes[rank],
		     sizes[p->mem_max]);
		goto out;
	}

	/* (c) */
	np = json_object_get(doc, "network_policy");
	if (!json_is_object(np)) {
		fail(why, n, "network_policy missing");
		goto out;
	}
	if (check_network(p, np, why, n) < 0)
		goto out;

	/* (d) */
	exp = json_object_get(doc, "expires_after");
	minutes = json_object_get(exp, "minutes");
	if (!json_is_integer(minutes) || json_integer_value(minutes) < 1) {
		fail(why, n, "expires_after.minutes missing or below 1");
		goto out;
	}
	if (json_integer_value(minutes) > p->exp_max && !p->shadow_expiry) {
		fail(why, n, "expires_after.minutes %lld over the policy's %lld",
		     (long long)json_integer_value(minutes), p->exp_max);
		goto out;
	}

	/* (e) */
	if (check_skills(p, json_object_get(doc, "skills"), why, n) < 0)
		goto out;

	/* (f) */
	if ((long long)json_array_size(json_object_get(doc, "file_ids")) > p->max_files &&
	    !p->shadow_files) {
		fail(why, n, "%zu file_ids over the policy's %lld",
		     json_array_size(json_object_get(doc, "file_ids")), p->max_files);
		goto out;
	}
	rc = 0;
out:
	json_decref(doc);
	json_decref(strict);
	return rc;
}

/* ---- the forwarded Responses body ---- */

/* A container a tool makes: memory, network, skills (shell only), files,
 * and nothing the contract does not have. */
static int
check_tool_container(const struct inv_policy *p, const json_t *cfg, int shell, const char *at,
                     char *why, size_t n)
{
	const json_t *np = json_object_get(cfg, "network_policy");
	int rank = size_rank(json_string_value(json_object_get(cfg, "memory_limit")));
	char sub[256];

	if (rank < 0)
		return fail(why, n, "%s.memory_limit missing, null or not a size", at);
	if (rank > p->mem_max && !p->shadow_memory)
		return fail(why, n, "%s.memory_limit %s over the policy's %s", at, sizes[rank],
		            sizes[p->mem_max]);
	if (!json_is_object(np))
		return fail(why, n, "%s.network_policy missing", at);
	if (check_network(p, np, sub, sizeof(sub)) < 0)
		return fail(why, n, "%s: %s", at, sub);
	if (shell && check_skills(p, json_object_get(cfg, "skills"), sub, sizeof(sub)) < 0)
		return fail(why, n, "%s: %s", at, sub);
	if (!shell && json_object_get(cfg, "skills") != NULL)
		return fail(why, n, "%s has skills", at);
	if ((long long)json_array_size(json_object_get(cfg, "file_ids")) > p->max_files &&
	    !p->shadow_files)
		return fail(why, n, "%s: %zu file_ids over the policy's %lld", at,
		            json_array_size(json_object_get(cfg, "file_ids")), p->max_files);
	if (json_object_get(cfg, "expires_after") != NULL)
		return fail(why, n, "%s has expires_after", at);
	return 0;
}

static int
check_tool_list(const struct inv_policy *p, const json_t *tools, const char *at, char *why,
                size_t n)
{
	const json_t *tool, *c;
	char where[96];
	struct err e;
	size_t j;

	if (tools == NULL)
		return 0;
	if (!json_is_array(tools))
		return fail(why, n, "%s is not an array", at);
	json_array_foreach(tools, j, tool)
	{
		const char *type = json_string_value(json_object_get(tool, "type"));

		snprintf(where, sizeof(where), "%s[%zu]", at, j);
		err_clear(&e);
		if (type && strcmp(type, "code_interpreter") == 0) {
			if (schema_check(&schema_code_interpreter_tool, tool, &e) < 0)
				return fail(why, n, "%s breaks the contract: %s", where, e.message);
			c = json_object_get(tool, "container");
			if (json_is_object(c) && check_tool_container(p, c, 0, where, why, n) < 0)
				return -1;
		} else if (type && strcmp(type, "shell") == 0) {
			if (schema_check(&schema_shell_tool, tool, &e) < 0)
				return fail(why, n, "%s breaks the contract: %s", where, e.message);
			c = json_object_get(tool, "environment");
			type = json_string_value(json_object_get(c, "type"));
			if (type && strcmp(type, "container_auto") == 0 &&
			    check_tool_container(p, c, 1, where, why, n) < 0)
				return -1;
		}
	}
	return 0;
}

int
inv_check_tools(const struct inv_policy *p, const char *text, size_t len, char *why, size_t n)
{
	const json_t *tools, *item, *input;
	json_t *doc;
	char at[64];
	struct err e;
	size_t i;
	int rc = -1;

	err_clear(&e);
	doc = jsondoc_parse(text, len, &e);
	if (doc == NULL)
		return fail(why, n, "forwarded body is not strict JSON: %s", e.message);
	tools = json_object_get(doc, "tools");
	if (!json_is_null(tools) && check_tool_list(p, tools, "tools", why, n) < 0)
		goto out;
	input = json_object_get(doc, "input");
	json_array_foreach(input, i, item)
	{
		const char *type = json_string_value(json_object_get(item, "type"));

		if (type == NULL || (strcmp(type, "tool_search_output") != 0 &&
		                     strcmp(type, "additional_tools") != 0))
			continue;
		snprintf(at, sizeof(at), "input[%zu].tools", i);
		tools = json_object_get(item, "tools");
		if (!json_is_null(tools) && check_tool_list(p, tools, at, why, n) < 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(doc);
	return rc;
}
