/*
 * Tests for gateway/metrics.c: requests are counted by route, decision,
 * status and tenant; each tenant has its own bounded set of series, so a
 * tenant whose traffic shows many label sets fills only its own and
 * counts the rest under its own "other", while other tenants keep theirs.
 */
#include <criterion/criterion.h>

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "metrics.h"

static struct metrics *M;

static void
setup(void)
{
	M = metrics_new();
	cr_assert_not_null(M);
}

static void
teardown(void)
{
	metrics_free(M);
}

TestSuite(metrics, .init = setup, .fini = teardown);

static void
count(const char *tenant, const char *operation, const char *decision, int status)
{
	struct audit_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.tenant = tenant;
	ev.operation = operation;
	ev.decision = decision;
	ev.status = status;
	metrics_request(M, &ev);
}

/* The rendered text, NUL-terminated; the caller frees it. */
static char *
render(void)
{
	struct metrics_state st;
	struct evbuffer *buf = evbuffer_new();
	size_t n;
	char *text;

	memset(&st, 0, sizeof(st));
	cr_assert_not_null(buf);
	cr_assert_eq(metrics_render(M, &st, buf), 0);
	n = evbuffer_get_length(buf);
	text = malloc(n + 1);
	cr_assert_not_null(text);
	evbuffer_remove(buf, text, n);
	text[n] = '\0';
	evbuffer_free(buf);
	return text;
}

/* The value of the series named whole (up to its space); -1 when absent. */
static long long
value(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p += n;
	}
	return -1;
}

static size_t
lines_with(const char *text, const char *needle)
{
	size_t k = 0;
	const char *p = text;

	while ((p = strstr(p, needle)) != NULL) {
		k++;
		p += strlen(needle);
	}
	return k;
}

Test(metrics, requests_are_counted_by_their_labels)
{
	char *text;

	count(NULL, "CreateContainer", "allow", 200);
	count(NULL, "CreateContainer", "allow", 200);
	count("team-a", "CreateContainer", "deny", 403);
	count("team-a", NULL, "deny", 404);
	text = render();
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"allow\","
	                   "status=\"200\",tenant=\"\"}"),
	             2, "%s", text);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"deny\","
	                   "status=\"403\",tenant=\"team-a\"}"),
	             1, "%s", text);
	cr_expect_eq(value(text, "gateway_requests_total{route=\"unknown\",decision=\"deny\","
	                         "status=\"404\",tenant=\"team-a\"}"),
	             1, "%s", text);
	cr_expect_eq(lines_with(text, "route=\"other\""), 0, "%s", text);
	free(text);
}

/* One tenant shows 600 label sets (every status from 100 to 699 on one
 * route): it keeps 128 series and counts the other 472 requests under its
 * own "other"; a tenant that comes afterwards still gets its own series,
 * and so does the organization. */
Test(metrics, one_tenant_cannot_push_others_into_other)
{
	char *text;
	int status;

	for (status = 100; status < 700; status++)
		count("noisy", "ListContainers", "allow", status);
	count("quiet", "CreateContainer", "allow", 200);
	count(NULL, "CreateContainer", "allow", 200);
	text = render();
	cr_expect_eq(lines_with(text, "tenant=\"noisy\""), 128 + 1, "%s", text);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"ListContainers\",decision=\"allow\","
	                   "status=\"100\",tenant=\"noisy\"}"),
	             1);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"ListContainers\",decision=\"allow\","
	                   "status=\"228\",tenant=\"noisy\"}"),
	             -1);
	cr_expect_eq(value(text, "gateway_requests_total{route=\"other\",decision=\"other\","
	                         "status=\"0\",tenant=\"noisy\"}"),
	             600 - 128, "%s", text);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"allow\","
	                   "status=\"200\",tenant=\"quiet\"}"),
	             1, "%s", text);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"allow\","
	                   "status=\"200\",tenant=\"\"}"),
	             1, "%s", text);
	/* A series the tenant already has keeps counting past the bound. */
	count("noisy", "ListContainers", "allow", 100);
	free(text);
	text = render();
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"ListContainers\",decision=\"allow\","
	                   "status=\"100\",tenant=\"noisy\"}"),
	             2);
	free(text);
}

/* Past 256 tenants the rest share the "_other" tenant (no tenant's name
 * begins with '_': a tenant named "other" keeps its own), whose series
 * are bounded the same way; labels too long for a series count as
 * "other". */
Test(metrics, tenants_past_the_bound_share_other)
{
	char name[32], *text;
	int i;

	count("other", "CreateContainer", "allow", 200);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		count(name, "CreateContainer", "allow", 200);
	}
	count("t0", "a-route-name-longer-than-sixty-four-bytes-is-never-a-label-of-its-own",
	      "allow", 200);
	text = render();
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"allow\","
	                   "status=\"200\",tenant=\"t254\"}"),
	             1, "%s", text);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"allow\","
	                   "status=\"200\",tenant=\"t255\"}"),
	             -1);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"allow\","
	                   "status=\"200\",tenant=\"_other\"}"),
	             300 - 255, "%s", text);
	cr_expect_eq(value(text,
	                   "gateway_requests_total{route=\"CreateContainer\",decision=\"allow\","
	                   "status=\"200\",tenant=\"other\"}"),
	             1, "the tenant named other shares the overflow's series: %s", text);
	cr_expect_eq(value(text, "gateway_requests_total{route=\"other\",decision=\"other\","
	                         "status=\"0\",tenant=\"t0\"}"),
	             1, "%s", text);
	free(text);
}

/* Container GB-minutes appear for the tenants charged, and only those. */
Test(metrics, gb_minutes_by_charged_tenant)
{
	struct audit_event ev;
	char *text;

	count("uncharged", "CreateContainer", "allow", 200);
	memset(&ev, 0, sizeof(ev));
	ev.tenant = "charged";
	ev.operation = "CreateContainer";
	ev.decision = "allow";
	ev.status = 200;
	ev.charged = 1;
	ev.gb_minutes = 40;
	metrics_request(M, &ev);
	text = render();
	cr_expect_eq(value(text, "gateway_container_gb_minutes_total{tenant=\"charged\"}"), 40,
	             "%s", text);
	cr_expect_eq(value(text, "gateway_container_gb_minutes_total{tenant=\"uncharged\"}"), -1,
	             "%s", text);
	free(text);
}
