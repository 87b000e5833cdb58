/*
 * soak: the real gateway under a mixed workload from several clients for a
 * set time, then checked whole.
 *
 * Clients (threads, each with its own kept-alive connection) send a mix:
 * allowed creates (each deleted again), creates the policy denies, invalid
 * bodies, lists and retrieves, creates the stub answers with a fault
 * (close, reset, hang, slow, truncated, HTML, a 500, a container that
 * breaks the request), bad paths and malformed HTTP on raw sockets. Every
 * body carries marker secrets (a domain secret value, the API key).
 *
 * Then: the process never died and exits cleanly; its resident memory
 * after warm-up grew by less than SOAK_RSS_GROWTH_KB; every request got
 * exactly one response, of the status its kind calls for, and exactly one
 * audit record with that status; the upstream received nothing the policy
 * forbids (tests/fuzz/invariant.c, on every forwarded create) and nothing
 * from a request the gateway denied; no marker secret appears in the audit
 * log, the gateway's output or any answer.
 *
 *   SOAK_SECONDS (600)  SOAK_CLIENTS (6)  SOAK_RATE (200, requests/s in all)
 *   SOAK_RSS_GROWTH_KB (8192)  SOAK_REPORT (a file to write the report to)
 *   SOAK_WORKERS (1, the gateway's workers)
 *
 * Run by `make soak` (tests/soak/soak.mk) against the optimized build.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/invariant.h"
#include "harness.h"

TestSuite(soak, .init = hx_init, .fini = hx_fini, .timeout = 0);

#define SECRET "soak-SECRET-VALUE-4b1d0c"
#define APIKEY "sk-soak-APIKEY-MARKER-93e7"

static const char policy_text[] =
        "{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
        "\"network_policy\":{\"allowed_domains\":[\"api.example.com\",\"*.example.org\"],"
        "\"allow_domain_secrets\":true},\"expires_after\":{\"max_minutes\":60},"
        "\"skills\":{\"allowed_skill_ids\":[\"skill_ok\"]},\"file_ids\":{\"max_count\":3}}";

enum kind {
	K_ALLOW, /* 200, then a delete */
	K_DENY,  /* 403 */
	K_INVALID,
	K_LIST,
	K_MISSING, /* retrieve of a container the stub does not have: 404 relayed */
	K_FAULT,
	K_BADPATH,
	K_RAW, /* malformed HTTP on its own connection: 400 */
	K_DELETE,
	NKINDS
};

static const char *const kind_names[NKINDS] = {"allow", "deny",    "invalid",  "list",  "missing",
                                               "fault", "badpath", "raw-http", "delete"};

static const char *const denied[] = {
        "{\"name\":\"d\",\"memory_limit\":\"64g\"}",
        "{\"name\":\"d\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"evil.com\"],\"domain_secrets\":[{\"domain\":\"evil.com\",\"name\":\"T\",\"value\":"
        "\"" SECRET "\"}]}}",
        "{\"name\":\"d\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"api.example.com\"],\"domain_secrets\":[{\"domain\":\"a.example.org\",\"name\":\"T\","
        "\"value\":\"" SECRET "\"}]}}",
        "{\"name\":\"d\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"127.0.0.1\"]}}",
        "{\"name\":\"d\",\"skills\":[{\"type\":\"skill_reference\",\"skill_id\":\"evil\"}]}",
        "{\"name\":\"d\",\"file_ids\":[\"a\",\"b\",\"c\",\"d\"]}",
        "{\"name\":\"d\",\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":61}}",
};

static const char *const invalid[] = {
        "{\"name\":\"i\",\"memory_limit\":\"1g\",\"memory_limit\":\"64g\"}",
        "{\"name\":\"i\",\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
        "\"api.example.com\"],\"domain_secrets\":[{\"domain\":\"api.example.com\",\"name\":"
        "\"T\",\"value\":\"" SECRET "\",\"value\":\"x\"}]}}",
        "{\"name\":\"i\",\"x\":1}",
        "{\"name\":\"i\"",
        "{\"name\":\"\xc0\xaf\"}",
        "[]",
        "{\"name\":\"i\",\"expires_after\":{\"anchor\":\"last_active_at\",\"minutes\":1.5}}",
};

/* Faults the stub keeps queued for creates whose name carries the match;
 * each has a scripted answer, so none adds to the stub's containers. */
static const char *const faults[] = {"close", "reset", "hang",    "slow",
                                     "html",  "500",   "violate", "truncate"};
#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

static const char fault_queue[] =
        "[{\"match\":\"soak-fault-close\",\"action\":\"close\",\"status\":200,\"json\":{},"
        "\"repeat\":100000},"
        "{\"match\":\"soak-fault-reset\",\"action\":\"reset\",\"status\":200,\"json\":{\"id\":"
        "\"cntr_reset\",\"object\":\"container\",\"name\":\"r\",\"created_at\":1,\"status\":"
        "\"running\"},\"repeat\":100000},"
        "{\"match\":\"soak-fault-hang\",\"action\":\"hang\",\"status\":200,\"json\":{},"
        "\"repeat\":100000},"
        "{\"match\":\"soak-fault-slow\",\"delay_ms\":1500,\"status\":200,\"json\":{},\"repeat\":"
        "100000},"
        "{\"match\":\"soak-fault-html\",\"status\":200,\"body\":\"<html>ok</html>\",\"repeat\":"
        "100000},"
        "{\"match\":\"soak-fault-500\",\"status\":500,\"body\":\"upstream broke\",\"repeat\":"
        "100000},"
        "{\"match\":\"soak-fault-violate\",\"json\":{\"id\":\"cntr_v\",\"object\":\"container\","
        "\"name\":\"v\",\"created_at\":1,\"status\":\"running\",\"memory_limit\":\"64g\"},"
        "\"repeat\":100000},"
        "{\"match\":\"soak-fault-truncate\",\"action\":\"truncate\",\"status\":200,\"json\":{"
        "\"id\":\"cntr_t\",\"object\":\"container\",\"name\":\"t\",\"created_at\":1,\"status\":"
        "\"running\",\"pad\":\"0123456789012345678901234567890123456789\"},\"repeat\":100000}]";

struct result {
	enum kind kind;
	int status;
	char rid[48];
};

struct client {
	pthread_t thread;
	int id;
	unsigned seed;
	const char *base; /* the gateway's URL */
	int port;
	double deadline, interval;
	struct result *res;
	size_t n, cap;
	size_t wrong_status, no_response, secret_in_answer;
	char first_wrong[256];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : def;
}

struct buf {
	char *p;
	size_t n;
};

static size_t
on_data(char *d, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->n + size * n + 1);

	if (p == NULL)
		return 0;
	memcpy(p + b->n, d, size * n);
	b->p = p;
	b->n += size * n;
	b->p[b->n] = '\0';
	return size * n;
}

static size_t
on_header(char *d, size_t size, size_t n, void *arg)
{
	char *rid = arg;

	if (size * n > 14 && strncasecmp(d, "x-request-id:", 13) == 0)
		sscanf(d + 13, " %47[^\r\n]", rid);
	return size * n;
}

static void
record(struct client *c, enum kind k, int status, const char *rid, int want)
{
	struct result *r;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 4096;
		c->res = realloc(c->res, c->cap * sizeof(*c->res));
		if (c->res == NULL)
			abort();
	}
	r = &c->res[c->n++];
	r->kind = k;
	r->status = status;
	snprintf(r->rid, sizeof(r->rid), "%s", rid);
	if (status == 0)
		c->no_response++;
	else if (want > 0 ? status != want : (status != 502 && status != 504 && status != 500)) {
		if (c->wrong_status++ == 0)
			snprintf(c->first_wrong, sizeof(c->first_wrong), "%s: %d (want %d)",
			         kind_names[k], status, want);
	}
}

/* One request on the client's kept-alive connection; returns the status. */
static int
call(struct client *c, CURL *h, const char *method, const char *path, const char *body, enum kind k,
     int want, struct buf *out)
{
	struct curl_slist *hd = NULL;
	char url[512], rid[48] = "";
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", c->base, path);
	hd = curl_slist_append(hd, "Authorization: Bearer " APIKEY);
	hd = curl_slist_append(hd, "Content-Type: application/json");
	hd = curl_slist_append(hd, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, body ? (long)strlen(body) : 0L);
	curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
	if (body == NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rid);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 15000L);
	out->n = 0;
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hd);
	if (out->p && strstr(out->p, SECRET))
		c->secret_in_answer++;
	record(c, k, (int)status, rid, want);
	return (int)status;
}

/* Malformed HTTP on a connection of its own: one 400 comes back. */
static void
raw_bad(struct client *c)
{
	static const char req[] = "GET /v1/containers HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n";
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
	struct timeval tv = {10, 0};
	char in[4096], rid[48] = "";
	size_t got = 0;
	ssize_t k;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
	const char *h;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1) {
		shutdown(fd, SHUT_WR);
		while (got < sizeof(in) - 1 &&
		       (k = recv(fd, in + got, sizeof(in) - 1 - got, 0)) > 0)
			got += (size_t)k;
	}
	in[got] = '\0';
	if (fd >= 0)
		close(fd);
	if (sscanf(in, "HTTP/1.1 %d ", &status) != 1)
		status = 0;
	if ((h = strstr(in, "x-request-id: ")) != NULL)
		sscanf(h + 14, "%47[^\r\n]", rid);
	/* Exactly one answer on the connection. */
	if (status && strstr(in + 1, "HTTP/1.1 ") != NULL)
		status = -1;
	record(c, K_RAW, status, rid, 400);
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	CURL *h = curl_easy_init();
	struct buf out = {0};
	double next = now_s();
	char body[1024], path[256];
	unsigned seq = 0;

	if (h == NULL)
		abort();
	while (now_s() < c->deadline) {
		unsigned roll = (unsigned)rand_r(&c->seed) % 100;

		seq++;
		if (roll < 30) {
			snprintf(body, sizeof(body),
			         "{\"name\":\"soak-%d-%u\",\"memory_limit\":\"%s\","
			         "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
			         "\"API.Example.com.\",\"x%u.example.org\"],\"domain_secrets\":[{"
			         "\"domain\":\"api.example.com\",\"name\":\"T\",\"value\":\"" SECRET
			         "\"}]},\"file_ids\":[\"f1\"]}",
			         c->id, seq, seq % 2 ? "4g" : "1g", seq);
			if (call(c, h, "POST", "/v1/containers", body, K_ALLOW, 200, &out) == 200) {
				json_t *doc = json_loads(out.p, 0, NULL);
				const char *id = json_string_value(json_object_get(doc, "id"));

				if (id) {
					snprintf(path, sizeof(path), "/v1/containers/%s", id);
					call(c, h, "DELETE", path, NULL, K_DELETE, 200, &out);
				}
				json_decref(doc);
			}
		} else if (roll < 45) {
			call(c, h, "POST", "/v1/containers", denied[seq % 7], K_DENY, 403, &out);
		} else if (roll < 60) {
			call(c, h, "POST", "/v1/containers", invalid[seq % 7], K_INVALID, 400,
			     &out);
		} else if (roll < 66) {
			call(c, h, "GET", "/v1/containers?limit=5&order=desc", NULL, K_LIST, 200,
			     &out);
		} else if (roll < 70) {
			call(c, h, "GET", "/v1/containers/cntr_missing", NULL, K_MISSING, 404,
			     &out);
		} else if (roll < 85) {
			snprintf(body, sizeof(body),
			         "{\"name\":\"soak-fault-%s\",\"network_policy\":{\"type\":"
			         "\"allowlist\","
			         "\"allowed_domains\":[\"api.example.com\"],\"domain_secrets\":[{"
			         "\"domain\":\"api.example.com\",\"name\":\"T\",\"value\":\"" SECRET
			         "\"}]}}",
			         faults[seq % NFAULTS]);
			call(c, h, "POST", "/v1/containers", body, K_FAULT, -1, &out);
		} else if (roll < 92) {
			call(c, h, "GET", seq % 2 ? "/v1//containers" : "/v1/containers/a%2Fb",
			     NULL, K_BADPATH, 400, &out);
		} else {
			raw_bad(c);
		}
		next += c->interval;
		if (next > now_s())
			usleep((useconds_t)((next - now_s()) * 1e6));
		else
			next = now_s();
	}
	free(out.p);
	curl_easy_cleanup(h);
	return NULL;
}

static long
rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

struct upstream_check {
	size_t creates, others, broken, from_denied;
	char first[512];
};

static void note_broken(struct upstream_check *u, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
note_broken(struct upstream_check *u, const char *fmt, ...)
{
	va_list ap;

	if (u->broken++ == 0) {
		va_start(ap, fmt);
		vsnprintf(u->first, sizeof(u->first), fmt, ap);
		va_end(ap);
	}
}

/* Takes the stub's record and holds every request in it to the policy. */
static void
drain_upstream(const struct hx_stub *stub, const struct inv_policy *model, json_t *seen,
               struct upstream_check *u)
{
	struct buf out = {0};
	CURL *h = curl_easy_init();
	char url[128], why[512];
	json_t *reqs, *rec;
	size_t i;

	snprintf(url, sizeof(url), "%s/__stub/requests?take=1", stub->url);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	cr_assert_eq(curl_easy_perform(h), CURLE_OK, "cannot read the stub's record");
	curl_easy_cleanup(h);
	reqs = json_loads(out.p, 0, NULL);
	free(out.p);
	cr_assert(json_is_array(reqs), "the stub's record is not a list");
	json_array_foreach(reqs, i, rec)
	{
		const char *method = json_string_value(json_object_get(rec, "method"));
		const char *uri = json_string_value(json_object_get(rec, "uri"));
		const char *gid = json_string_value(
		        json_object_get(json_object_get(rec, "headers"), "x-gateway-request-id"));
		size_t len;
		const char *body = hx_record_body(rec, &len);

		if (gid)
			json_object_set_new(seen, gid, json_true());
		else
			note_broken(u, "%s %s without X-Gateway-Request-Id", method, uri);
		if (strcmp(method, "POST") == 0 && strcmp(uri, "/v1/containers") == 0) {
			u->creates++;
			if (body == NULL ||
			    inv_check_create(model, body, len, why, sizeof(why)) < 0)
				note_broken(u, "forwarded %.200s: %s", body ? body : "nothing",
				            why);
		} else {
			u->others++;
			if (strstr(uri, "//") || strstr(uri, "..") || strchr(uri, '%') ||
			    strncmp(uri, "/v1/containers", 14) != 0)
				note_broken(u, "%s %s", method, uri);
		}
	}
	json_decref(reqs);
}

Test(soak, mixed_workload)
{
	long seconds = env_long("SOAK_SECONDS", 600), nclients = env_long("SOAK_CLIENTS", 6);
	long rate = env_long("SOAK_RATE", 200), bound = env_long("SOAK_RSS_GROWTH_KB", 8192);
	double warm = seconds / 5.0 > 10 ? seconds / 5.0 : 10, start, deadline, t;
	struct hx_gw *gw;
	struct client *cl;
	struct inv_policy *model;
	struct upstream_check u = {0};
	json_t *seen = json_object(), *recs, *rec, *by_id = json_object(), *pdoc;
	long rss, rss_warm = -1, rss_max = 0, rss_end = 0, rss_first;
	size_t i, j, total = 0, wrong = 0, none = 0, leaked = 0, per_kind[NKINDS] = {0};
	size_t dup = 0, missing = 0, mismatch = 0, denied_upstream = 0, samples = 0;
	int alive = 1;
	char why[256], first_wrong[256] = "";
	FILE *rep;
	const char *report = getenv("SOAK_REPORT");

	pdoc = json_loads(policy_text, 0, NULL);
	model = inv_policy_new(pdoc, why, sizeof(why));
	cr_assert_not_null(model, "%s", why);
	gw = hx_gw_start(policy_text,
	                 hx_fmt("{\"upstream\":{\"timeout_ms\":1000},\"workers\":%ld,"
	                        "\"limits\":{\"max_connections\":1000}}",
	                        env_long("SOAK_WORKERS", 1)));
	hx_stub_next(fault_queue);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rss_first = rss_kb(gw->proc->pid);
	start = now_s();
	deadline = start + (double)seconds;
	cl = calloc((size_t)nclients, sizeof(*cl));
	for (i = 0; i < (size_t)nclients; i++) {
		cl[i].id = (int)i;
		cl[i].seed = 0x50a1u + (unsigned)i * 7919u;
		cl[i].base = gw->url;
		cl[i].port = gw->port;
		cl[i].deadline = deadline;
		cl[i].interval = (double)nclients / (double)rate;
		cr_assert_eq(pthread_create(&cl[i].thread, NULL, client_main, &cl[i]), 0);
	}
	/* Watch the process and its memory; drain the stub's record as we go. */
	while ((t = now_s()) < deadline) {
		sleep(1);
		if (!hx_proc_alive(gw->proc)) {
			alive = 0;
			break;
		}
		rss = rss_kb(gw->proc->pid);
		samples++;
		if (t - start >= warm && rss_warm < 0)
			rss_warm = rss;
		if (rss_warm >= 0 && rss > rss_max)
			rss_max = rss;
		rss_end = rss;
		if (samples % 2 == 0)
			drain_upstream(gw->stub, model, seen, &u);
	}
	for (i = 0; i < (size_t)nclients; i++)
		pthread_join(cl[i].thread, NULL);
	if (alive && !hx_proc_alive(gw->proc))
		alive = 0;
	/* Answers held back by hang faults have all come by now. */
	drain_upstream(gw->stub, model, seen, &u);

	for (i = 0; i < (size_t)nclients; i++) {
		total += cl[i].n;
		wrong += cl[i].wrong_status;
		none += cl[i].no_response;
		leaked += cl[i].secret_in_answer;
		if (!first_wrong[0] && cl[i].first_wrong[0])
			snprintf(first_wrong, sizeof(first_wrong), "%s", cl[i].first_wrong);
		for (j = 0; j < cl[i].n; j++)
			per_kind[cl[i].res[j].kind]++;
	}

	/* One audit record per request, with the status it was answered. */
	recs = hx_audit_wait(gw, total, 60000);
	json_array_foreach(recs, i, rec)
	{
		const char *id = json_string_value(json_object_get(rec, "request_id"));
		const char *type = json_string_value(json_object_get(rec, "type"));

		if (type && strcmp(type, "request") != 0)
			continue;
		if (id == NULL || json_object_get(by_id, id)) {
			dup++;
			continue;
		}
		json_object_set(by_id, id, rec);
	}
	for (i = 0; i < (size_t)nclients; i++)
		for (j = 0; j < cl[i].n; j++) {
			const struct result *r = &cl[i].res[j];
			json_t *a = r->rid[0] ? json_object_get(by_id, r->rid) : NULL;

			if (r->status <= 0)
				continue;
			if (a == NULL)
				missing++;
			else if (json_integer_value(json_object_get(a, "status")) != r->status)
				mismatch++;
		}
	/* Nothing the gateway denied reached the upstream. */
	{
		const char *gid;
		json_t *v;

		json_object_foreach(seen, gid, v)
		{
			json_t *a = json_object_get(by_id, gid);
			const char *d = json_string_value(json_object_get(a, "decision"));

			(void)v;
			if (a == NULL || (d && strcmp(d, "deny") == 0))
				denied_upstream++;
		}
	}
	if (rss_warm < 0)
		rss_warm = rss_end;
	cr_expect_eq(hx_gw_stop(gw), 0, "the gateway did not exit cleanly");

	rep = report ? fopen(report, "w") : NULL;
	for (i = 0; i < 2; i++) {
		FILE *f = i ? rep : stdout;

		if (f == NULL)
			continue;
		fprintf(f, "soak: %ld s, %ld clients, %ld requests/s asked, %ld gateway worker(s)\n",
		        seconds, nclients, rate, env_long("SOAK_WORKERS", 1));
		fprintf(f, "requests: %zu (%.1f/s)", total, (double)total / (double)seconds);
		for (j = 0; j < NKINDS; j++)
			fprintf(f, "  %s %zu", kind_names[j], per_kind[j]);
		fprintf(f, "\nno response: %zu; wrong status: %zu%s%s\n", none, wrong,
		        first_wrong[0] ? ", first " : "", first_wrong);
		fprintf(f,
		        "audit: %zu request records, %zu answers without one, %zu with another "
		        "status, %zu duplicate ids\n",
		        json_object_size(by_id), missing, mismatch, dup);
		fprintf(f,
		        "upstream: %zu creates and %zu other requests, %zu breaking the policy or "
		        "the path rules%s%s, %zu from denied or unaudited requests\n",
		        u.creates, u.others, u.broken, u.broken ? ": first " : "", u.first,
		        denied_upstream);
		fprintf(f,
		        "memory (VmRSS): %ld kB at start, %ld kB after %.0f s of warm-up, %ld kB "
		        "at most after it, %ld kB at the end: growth %ld kB (bound %ld kB)\n",
		        rss_first, rss_warm, warm, rss_max, rss_end, rss_max - rss_warm, bound);
		fprintf(f, "process: %s; marker secrets in answers: %zu\n",
		        alive ? "alive throughout" : "DIED", leaked);
	}
	if (rep)
		fclose(rep);

	cr_expect(alive, "the gateway died");
	cr_expect_gt(total, (size_t)seconds, "too few requests to mean anything");
	cr_expect_eq(none, 0, "%zu requests got no response", none);
	cr_expect_eq(wrong, 0, "%zu requests got the wrong status, first %s", wrong, first_wrong);
	cr_expect_eq(missing, 0, "%zu answers have no audit record", missing);
	cr_expect_eq(mismatch, 0, "%zu audit records disagree with the answer", mismatch);
	cr_expect_eq(dup, 0, "%zu audit records repeat a request id", dup);
	cr_expect_eq(json_object_size(by_id), total, "%zu request records for %zu requests",
	             json_object_size(by_id), total);
	cr_expect_eq(u.broken, 0, "the upstream got %zu requests that break the rules: %s",
	             u.broken, u.first);
	cr_expect_eq(denied_upstream, 0, "%zu upstream requests came from denied requests",
	             denied_upstream);
	cr_expect_lt(rss_max - rss_warm, bound, "memory grew %ld kB after warm-up",
	             rss_max - rss_warm);
	cr_expect_eq(leaked, 0, "a marker secret came back in %zu answers", leaked);
	cr_expect(!hx_file_contains(gw->audit_path, SECRET), "the secret is in the audit log");
	cr_expect(!hx_file_contains(gw->audit_path, APIKEY), "the API key is in the audit log");
	cr_expect(!hx_file_contains(gw->out_path, SECRET) &&
	                  !hx_file_contains(gw->out_path, APIKEY),
	          "a secret is on the gateway's stdout");
	cr_expect(!hx_file_contains(gw->err_path, SECRET) &&
	                  !hx_file_contains(gw->err_path, APIKEY),
	          "a secret is on the gateway's stderr");

	for (i = 0; i < (size_t)nclients; i++)
		free(cl[i].res);
	free(cl);
	json_decref(seen);
	json_decref(by_id);
	json_decref(pdoc);
	inv_policy_free(model);
	curl_global_cleanup();
}
