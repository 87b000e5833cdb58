/*
 * Tests for gateway/policy/tenant.c: brokered secrets merged into a decided
 * create document, and keys and certificate subjects that two tenants
 * share. (Tenants end to end, against the real binary, are
 * tests/it_tenants.c.)
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/secmem.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/tenant.h"

static void
suite_init(void)
{
	secmem_init();
	setenv("GW_TEST_BROKER", "broker-value", 1);
}

TestSuite(tenant, .init = suite_init);

static json_t *
parse(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);

	cr_assert_not_null(v, "bad JSON in test: %s: %s", je.text, text);
	return v;
}

/* Compiles a policy document; errs gets every message. */
static struct policyset *
load(const char *text, struct errlist *errs)
{
	json_t *doc = parse(text);
	struct policyset *p;

	memset(errs, 0, sizeof(*errs));
	p = policyset_new(doc, "policy.json", errs);
	json_decref(doc);
	return p;
}

/* An organization that allows secrets, and tenant "t" with brokered ones. */
#define ORG                                                                                        \
	"\"network_policy\":{\"allowed_domains\":[\"*.example.com\",\"pypi.org\"],"                \
	"\"allow_domain_secrets\":true}"
#define SECRET(domain, name)                                                                       \
	"{\"domain\":\"" domain "\",\"name\":\"" name "\",\"value_env\":\"GW_TEST_BROKER\"}"

static const struct tenant *
tenant_t(const struct policyset *p)
{
	const struct tenant *t = tenants_by_name(policyset_tenants(p), "t");

	cr_assert_not_null(t);
	return t;
}

/* "domain/name=value" of each secret, joined by spaces. */
static const char *
secrets_of(const json_t *doc, char *buf, size_t n)
{
	json_t *s;
	size_t i, o = 0;

	buf[0] = '\0';
	json_array_foreach(
	        json_object_get(json_object_get(doc, "network_policy"), "domain_secrets"), i, s)
	{
		o += (size_t)snprintf(buf + o, n - o, "%s%s/%s=%s", i ? " " : "",
		                      json_string_value(json_object_get(s, "domain")),
		                      json_string_value(json_object_get(s, "name")),
		                      json_string_value(json_object_get(s, "value")));
	}
	return buf;
}

Test(tenant, inject_replaces_the_clients_secret_of_the_same_domain_and_name)
{
	static struct errlist errs;
	struct policyset *p = load(
	        "{" ORG
	        ",\"tenants\":{\"t\":{\"secrets\":[" SECRET("a.example.com", "TOKEN") "," SECRET(
	                "pypi.org", "PYPI") "," SECRET("gone.example.org", "NOPE") "]}}}",
	        &errs);
	json_t *doc, *names = json_array();
	char buf[1024];

	cr_assert_not_null(p, "%s", errs.n ? errs.msg[0] : "");
	/* The client's TOKEN for a.example.com goes, both copies; its TOKEN for
	 * another domain and its OTHER stay, in their order; pypi.org is not
	 * in the allowlist, so PYPI is not added. */
	doc = parse("{\"name\":\"c\",\"network_policy\":{\"type\":\"allowlist\","
	            "\"allowed_domains\":[\"a.example.com\",\"b.example.com\"],"
	            "\"domain_secrets\":["
	            "{\"domain\":\"a.example.com\",\"name\":\"TOKEN\",\"value\":\"c1\"},"
	            "{\"domain\":\"b.example.com\",\"name\":\"TOKEN\",\"value\":\"c2\"},"
	            "{\"domain\":\"a.example.com\",\"name\":\"OTHER\",\"value\":\"c3\"},"
	            "{\"domain\":\"a.example.com\",\"name\":\"TOKEN\",\"value\":\"c4\"}]}}");
	cr_expect_eq(tenant_inject_secrets(tenant_t(p), doc, names), 1);
	cr_expect_str_eq(secrets_of(doc, buf, sizeof(buf)),
	                 "b.example.com/TOKEN=c2 a.example.com/OTHER=c3 "
	                 "a.example.com/TOKEN=broker-value");
	cr_expect_eq(json_array_size(names), 1);
	cr_expect_str_eq(json_string_value(json_array_get(names, 0)), "TOKEN");
	json_decref(doc);
	json_decref(names);
	policyset_free(p);
}

Test(tenant, inject_adds_a_list_when_the_client_sent_none)
{
	static struct errlist errs;
	struct policyset *p = load(
	        "{" ORG ",\"tenants\":{\"t\":{\"secrets\":[" SECRET("pypi.org", "PYPI") "," SECRET(
	                "x.example.com", "X") "," SECRET("pypi.org", "PYPI") "]}}}",
	        &errs);
	json_t *doc;
	char buf[1024];

	cr_assert_not_null(p, "%s", errs.n ? errs.msg[0] : "");
	doc = parse("{\"name\":\"c\",\"network_policy\":{\"type\":\"allowlist\","
	            "\"allowed_domains\":[\"pypi.org\",\"*.example.com\"]}}");
	/* A wildcard in the allowlist reaches a name below it; the second
	 * PYPI replaces the first, as it would a client's. */
	cr_expect_eq(tenant_inject_secrets(tenant_t(p), doc, NULL), 3);
	cr_expect_str_eq(secrets_of(doc, buf, sizeof(buf)),
	                 "x.example.com/X=broker-value pypi.org/PYPI=broker-value");
	json_decref(doc);

	doc = parse("{\"name\":\"c\",\"network_policy\":{\"type\":\"disabled\"}}");
	cr_expect_eq(tenant_inject_secrets(tenant_t(p), doc, NULL), 0);
	cr_expect_null(json_object_get(json_object_get(doc, "network_policy"), "domain_secrets"));
	json_decref(doc);

	doc = parse("{\"name\":\"c\",\"network_policy\":{\"type\":\"allowlist\","
	            "\"allowed_domains\":[\"other.org\"]}}");
	cr_expect_eq(tenant_inject_secrets(tenant_t(p), doc, NULL), 0);
	cr_expect_null(json_object_get(json_object_get(doc, "network_policy"), "domain_secrets"));
	json_decref(doc);
	policyset_free(p);
}

#define DIGEST_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* How many of errs' messages contain s. */
static size_t
count(const struct errlist *errs, const char *s)
{
	size_t i, n = 0;

	for (i = 0; i < errs->n; i++)
		n += strstr(errs->msg[i], s) != NULL;
	return n;
}

Test(tenant, a_key_or_subject_names_one_tenant)
{
	static struct errlist errs;
	struct policyset *p;

	/* Digests compare without regard to case; a tenant may list its own
	 * key twice. */
	p = load("{\"tenants\":{\"a\":{\"api_keys_sha256\":[\"" DIGEST_A "\",\"" DIGEST_A "\"]},"
	         "\"b\":{\"api_keys_sha256\":[\"" DIGEST_B "\"]},"
	         "\"c\":{\"api_keys_sha256\":[\"" DIGEST_B
	         "\",\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	         "AAAAAAAAAAAAAAAAAAAAAAAAAA\"]}}}",
	         &errs);
	cr_expect_null(p);
	policyset_free(p);
	cr_expect_eq(errs.n, 2, "%zu messages, first: %s", errs.n, errs.n ? errs.msg[0] : "");
	cr_expect_eq(count(&errs, "policy.json: tenants: tenants b and c share a key"), 1);
	cr_expect_eq(count(&errs, "policy.json: tenants: tenants a and c share a key"), 1);

	p = load("{\"tenants\":{\"a\":{\"client_cert_subjects\":[\"CN=x\",\"DNS:y\"]},"
	         "\"b\":{\"client_cert_subjects\":[\"CN=X\",\"DNS:y\"]}}}",
	         &errs);
	cr_expect_null(p);
	policyset_free(p);
	cr_expect_eq(errs.n, 1, "%zu messages, first: %s", errs.n, errs.n ? errs.msg[0] : "");
	cr_expect_eq(count(&errs, "tenants a and b share a certificate subject"), 1);

	p = load("{\"tenants\":{\"a\":{\"api_keys_sha256\":[\"" DIGEST_A "\"],"
	         "\"client_cert_subjects\":[\"CN=x\"]},\"b\":{\"api_keys_sha256\":[\"" DIGEST_B
	         "\"],\"client_cert_subjects\":[\"CN=y\"]}}}",
	         &errs);
	cr_expect_not_null(p, "%s", errs.n ? errs.msg[0] : "");
	policyset_free(p);
}

/* An OIDC group names one tenant; a token's groups name none, one, or
 * (groups of two tenants) more than one, each looked up once. */
Test(tenant, oidc_groups_name_one_tenant)
{
	static struct errlist errs;
	const struct tenant *t;
	struct policyset *p;
	json_t *groups;

	p = load("{\"tenants\":{\"a\":{\"oidc_groups\":[\"data\",\"ml\"]},"
	         "\"b\":{\"oidc_groups\":[\"ml\"]},\"c\":{\"oidc_groups\":[\"\"]}}}",
	         &errs);
	cr_expect_null(p);
	policyset_free(p);
	cr_expect_eq(count(&errs, "tenants a and b share an OIDC group"), 1, "%s", errs.msg[0]);
	cr_expect_eq(count(&errs, "tenants.c.oidc_groups[0]: must be 1 to 256 characters"), 1);

	p = load("{\"tenants\":{\"a\":{\"oidc_groups\":[\"data\",\"ml\"]},"
	         "\"b\":{\"oidc_groups\":[\"ops\"]},\"c\":{}}}",
	         &errs);
	cr_assert_not_null(p, "%s", errs.n ? errs.msg[0] : "");
	groups = parse("[\"staff\",\"ml\",\"data\"]");
	cr_expect_eq(tenants_by_groups(policyset_tenants(p), groups, &t), 1);
	cr_expect_str_eq(tenant_name(t), "a");
	json_decref(groups);
	groups = parse("[\"staff\"]");
	cr_expect_eq(tenants_by_groups(policyset_tenants(p), groups, &t), 0);
	cr_expect_null(t);
	json_decref(groups);
	groups = parse("[\"data\",\"ops\"]");
	cr_expect_eq(tenants_by_groups(policyset_tenants(p), groups, &t), 2);
	json_decref(groups);
	policyset_free(p);
}

/* A tenant's name goes into store keys and metric labels: a long or odd
 * one is refused at load, naming the rule. */
Test(tenant, names_are_short_and_plain)
{
	static const char *const bad[] = {
	        "",      "!withheld",
	        "a:b",   "with space",
	        "-lead", "x2345678901234567890123456789012345678901234567890123456789012345"};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		static struct errlist errs;
		json_t *doc = json_pack("{s:{s:{}}}", "tenants", bad[i]);
		struct policyset *p;

		memset(&errs, 0, sizeof(errs));
		p = policyset_new(doc, "policy.json", &errs);
		cr_expect_null(p, "\"%s\" was taken", bad[i]);
		cr_expect_gt(errs.n, 0);
		if (errs.n)
			cr_expect_not_null(strstr(errs.msg[0], "a tenant's name is 1 to 64"), "%s",
			                   errs.msg[0]);
		policyset_free(p);
		json_decref(doc);
	}
}
