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
 * About one request in eight is of a hostile size, each just at or just past
 * a bound (see hostile[] below): domain, secret and skill lists at their
 * maximum and one past it, a list of tens of thousands of domains, a body
 * at limits.max_body_bytes and one byte over, JSON nested 2000 and 3000
 * deep, Responses bodies with as many tool containers as the policy allows
 * and with 5001, request targets at and
 * past the longest upstream path and past the head limit, heads at and past
 * the limits on header fields and bytes, and a chunked create whose inline
 * skill's 900 KiB of data goes through the spool. Each has the one status the
 * gateway must answer and is checked as the rest are; they go one at a
 * time (see hostile_lock).
 *
 * Then: the process never died and exits cleanly; its resident memory did
 * not grow: the median of the samples in the last third of the run is
 * less than SOAK_RSS_GROWTH_KB above that of the samples just after
 * warm-up, and no sample is SOAK_RSS_PEAK_KB above it; every request got
 * exactly one response, of the status its kind calls for, and exactly one
 * audit record with that status; the upstream received nothing the policy
 * forbids (tests/fuzz/invariant.c, on every forwarded create and Responses
 * body) and nothing from a request the gateway denied; no marker secret appears in the audit
 * log, the gateway's output or any answer; and the p99 latency of ordinary
 * requests (not hostile, not a scripted fault, not a connection of their
 * own) in the last third of the run is within SOAK_LATENCY_FACTOR times
 * that of the first third plus SOAK_LATENCY_SLACK_MS, so neither a leak of
 * time (a list that only grows, work that grows with what came before) nor
 * the hostile requests slow the rest down as the run goes on.
 *
 *   SOAK_SECONDS (600)  SOAK_CLIENTS (6)  SOAK_RATE (200, requests/s in all)
 *   SOAK_RSS_GROWTH_KB (8192)  SOAK_RSS_PEAK_KB (65536)
 *   SOAK_REPORT (a file to write the report to)
 *   SOAK_WORKERS (1, the gateway's workers)
 *   SOAK_LATENCY_FACTOR (3)  SOAK_LATENCY_SLACK_MS (20)
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
#include "app/request.h"
#include "harness.h"
#include "http/httpmsg.h"

TestSuite(soak, .init = hx_init, .fini = hx_fini, .timeout = 0);

#define SECRET "soak-SECRET-VALUE-4b1d0c"
#define APIKEY "sk-soak-APIKEY-MARKER-93e7"

/* *.hostile.example.net is there for the lists of long names at the
 * maximum; Responses are allowed for the tool containers and the targets. */
static const char policy_text[] =
        "{\"memory_limit\":{\"max\":\"4g\",\"default\":\"1g\"},"
        "\"network_policy\":{\"allowed_domains\":[\"api.example.com\",\"*.example.org\","
        "\"*.hostile.example.net\"],\"allow_domain_secrets\":true},"
        "\"expires_after\":{\"max_minutes\":60},"
        "\"skills\":{\"allowed_skill_ids\":[\"skill_ok\"]},\"file_ids\":{\"max_count\":3},"
        "\"routes\":{\"createResponse\":\"allow\"}}";

/* The soak's body limit: far below the default (75 MiB), so that a body
 * at it can be sent several times a second; the head limit is the
 * default. The policy's list bounds are the defaults too. */
#define BODY_MAX    1048576
#define HEAD_MAX    16384
#define MAX_DOMAINS 256
#define MAX_SECRETS 64
#define MAX_SKILLS  64
/* The longest target whose upstream path (the target without "/v1") fits
 * REQUEST_PATH_MAX with its NUL; one byte more is 414. */
#define TARGET_MAX (REQUEST_PATH_MAX - 1 + 3)

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
	K_HOSTILE, /* one of hostile[], of the status it names */
	NKINDS
};

static const char *const kind_names[NKINDS] = {"allow", "deny",    "invalid",  "list",   "missing",
                                               "fault", "badpath", "raw-http", "delete", "hostile"};

/* Whether a kind's latency is an ordinary request's: answered on the
 * client's kept-alive connection with nothing scripted to slow it. */
static const int kind_ordinary[NKINDS] = {
        [K_ALLOW] = 1,   [K_DENY] = 1,    [K_INVALID] = 1, [K_LIST] = 1,
        [K_MISSING] = 1, [K_BADPATH] = 1, [K_DELETE] = 1,
};

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
        "\"running\",\"pad\":\"0123456789012345678901234567890123456789\"},\"repeat\":100000},"
        "{\"match\":\"/v1/responses\",\"json\":{\"id\":\"resp_soak\",\"object\":\"response\","
        "\"status\":\"completed\",\"output\":[]},\"repeat\":100000}]";

/* A request of a hostile size and the status it must get. Built once
 * before the clients start and shared by them, read only. */
struct hostile {
	const char *name;
	int want;
	int raw;          /* data is a whole request, sent on a connection of its own */
	const char *path; /* otherwise data is a body POSTed here on the kept-alive connection */
	char *data;
	size_t len;
};

enum {
	H_DOMAINS_AT_MAX,
	H_DOMAINS_PAST_MAX,
	H_DOMAINS_30000,
	H_SECRETS_AT_MAX,
	H_SECRETS_PAST_MAX,
	H_SKILLS_AT_MAX,
	H_SKILLS_PAST_MAX,
	H_BODY_AT_LIMIT,
	H_BODY_PAST_LIMIT,
	H_DEEP_IN_FIELD,
	H_DEEP_RESPONSES,
	H_DEEP_PAST_PARSER,
	H_TOOLS_AT_MAX,
	H_TOOLS_AT_MAX_LAST_REFUSED,
	H_TOOLS_5001,
	H_TARGET_AT_LIMIT,
	H_TARGET_PAST_LIMIT,
	H_TARGET_PAST_HEAD,
	H_HEADERS_AT_MAX,
	H_HEADERS_PAST_MAX,
	H_HEAD_AT_LIMIT,
	H_HEAD_PAST_LIMIT,
	H_HEAD_1MIB,
	H_SKILL_CHUNKED,
	NHOSTILE
};

static struct hostile hostile[NHOSTILE] = {
        [H_DOMAINS_AT_MAX] = {"domains-at-max", 200, 0, "/v1/containers"},
        [H_DOMAINS_PAST_MAX] = {"domains-past-max", 403, 0, "/v1/containers"},
        [H_DOMAINS_30000] = {"domains-30000", 403, 0, "/v1/containers"},
        [H_SECRETS_AT_MAX] = {"secrets-at-max", 200, 0, "/v1/containers"},
        [H_SECRETS_PAST_MAX] = {"secrets-past-max", 403, 0, "/v1/containers"},
        [H_SKILLS_AT_MAX] = {"skills-at-max", 200, 0, "/v1/containers"},
        [H_SKILLS_PAST_MAX] = {"skills-past-max", 403, 0, "/v1/containers"},
        [H_BODY_AT_LIMIT] = {"body-at-limit", 200, 0, "/v1/containers"},
        [H_BODY_PAST_LIMIT] = {"body-past-limit", 413, 0, "/v1/containers"},
        [H_DEEP_IN_FIELD] = {"deep-2000-in-file_ids", 400, 0, "/v1/containers"},
        [H_DEEP_RESPONSES] = {"deep-2000-responses", 200, 0, "/v1/responses"},
        [H_DEEP_PAST_PARSER] = {"deep-3000-responses", 400, 0, "/v1/responses"},
        [H_TOOLS_AT_MAX] = {"tools-at-max", 200, 0, "/v1/responses"},
        [H_TOOLS_AT_MAX_LAST_REFUSED] = {"tools-at-max-last-refused", 403, 0, "/v1/responses"},
        [H_TOOLS_5001] = {"tools-5001", 403, 0, "/v1/responses"},
        [H_TARGET_AT_LIMIT] = {"target-at-limit", 200, 1},
        [H_TARGET_PAST_LIMIT] = {"target-past-limit", 414, 1},
        [H_TARGET_PAST_HEAD] = {"target-past-head", 431, 1},
        [H_HEADERS_AT_MAX] = {"headers-at-max", 200, 1},
        [H_HEADERS_PAST_MAX] = {"headers-past-max", 431, 1},
        [H_HEAD_AT_LIMIT] = {"head-at-limit", 200, 1},
        [H_HEAD_PAST_LIMIT] = {"head-past-limit", 431, 1},
        [H_HEAD_1MIB] = {"head-1mib", 431, 1},
        [H_SKILL_CHUNKED] = {"skill-chunked-spooled", 403, 1},
};

struct result {
	enum kind kind;
	int variant; /* K_HOSTILE: the index in hostile[] */
	int status;
	double t, dt; /* when it was sent, since the start, and how long its answer took */
	char rid[48];
};

struct client {
	pthread_t thread;
	int id;
	unsigned seed;
	const char *base; /* the gateway's URL */
	int port;
	double start, deadline, interval;
	struct result *res;
	size_t n, cap;
	unsigned next_hostile;
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

/* Keeps what a request got; t0 is when it was sent. */
static void
record(struct client *c, enum kind k, int variant, int status, const char *rid, int want, double t0)
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
	r->variant = variant;
	r->status = status;
	r->t = t0 - c->start;
	r->dt = now_s() - t0;
	snprintf(r->rid, sizeof(r->rid), "%s", rid);
	if (status == 0)
		c->no_response++;
	else if (want > 0 ? status != want : (status != 502 && status != 504 && status != 500)) {
		if (c->wrong_status++ == 0)
			snprintf(c->first_wrong, sizeof(c->first_wrong), "%s: %d (want %d)",
			         k == K_HOSTILE ? hostile[variant].name : kind_names[k], status,
			         want);
	}
}

/* One request on the client's kept-alive connection; returns the status. */
static int
call(struct client *c, CURL *h, const char *method, const char *path, const char *body, enum kind k,
     int variant, int want, struct buf *out)
{
	struct curl_slist *hd = NULL;
	char url[512], rid[48] = "";
	long status = 0;
	double t0;

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
	t0 = now_s();
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hd);
	if (out->p && strstr(out->p, SECRET))
		c->secret_in_answer++;
	record(c, k, variant, (int)status, rid, want, t0);
	return (int)status;
}

/*
 * A whole request on a connection of its own, half-closed once sent (for
 * malformed HTTP and heads past a limit, which end their connection);
 * exactly one answer must come back. A head past a limit is answered
 * before it is all read, so the send may fail: what came back decides.
 */
static void
raw_call(struct client *c, const char *req, size_t len, enum kind k, int variant, int want)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
	struct timeval tv = {10, 0};
	char in[65536], rid[48] = "";
	size_t got = 0, sent = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
	const char *h;
	double t0 = now_s();

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		while (sent < len && (n = send(fd, req + sent, len - sent, MSG_NOSIGNAL)) > 0)
			sent += (size_t)n;
		shutdown(fd, SHUT_WR);
		while (got < sizeof(in) - 1 &&
		       (n = recv(fd, in + got, sizeof(in) - 1 - got, 0)) > 0)
			got += (size_t)n;
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
	if (strstr(in, SECRET))
		c->secret_in_answer++;
	record(c, k, variant, status, rid, want, t0);
}

/* Malformed HTTP on a connection of its own: one 400 comes back. */
static void
raw_bad(struct client *c)
{
	static const char req[] = "GET /v1/containers HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n";

	raw_call(c, req, sizeof(req) - 1, K_RAW, 0, 400);
}

/* The container a 200 answer to a create names, deleted again so the
 * stub's state stays small. */
static void
delete_created(struct client *c, CURL *h, struct buf *out)
{
	json_t *doc = json_loads(out->p, 0, NULL);
	const char *id = json_string_value(json_object_get(doc, "id"));
	char path[256];

	if (id) {
		snprintf(path, sizeof(path), "/v1/containers/%s", id);
		call(c, h, "DELETE", path, NULL, K_DELETE, 0, 200, out);
	}
	json_decref(doc);
}

/* One hostile request in flight at a time. Each may hold megabytes while
 * it is handled (5,001 tool containers take about 16 MB), and after two
 * have met, glibc keeps the heap's high-water mark resident though almost
 * none of it is in use; the memory check is for what stays, so they do
 * not meet. */
static pthread_mutex_t hostile_lock = PTHREAD_MUTEX_INITIALIZER;

/* The client's next hostile request, in turn. */
static void
send_hostile(struct client *c, CURL *h, struct buf *out)
{
	int v = (int)(c->next_hostile++ % NHOSTILE), status;
	const struct hostile *x = &hostile[v];

	pthread_mutex_lock(&hostile_lock);
	if (x->raw) {
		raw_call(c, x->data, x->len, K_HOSTILE, v, x->want);
		pthread_mutex_unlock(&hostile_lock);
		return;
	}
	status = call(c, h, "POST", x->path, x->data, K_HOSTILE, v, x->want, out);
	pthread_mutex_unlock(&hostile_lock);
	if (status == 200 && strcmp(x->path, "/v1/containers") == 0)
		delete_created(c, h, out);
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	CURL *h = curl_easy_init();
	struct buf out = {0};
	double next = now_s();
	char body[1024];
	unsigned seq = 0;

	if (h == NULL)
		abort();
	c->next_hostile = (unsigned)c->id * 5u;
	while (now_s() < c->deadline) {
		unsigned roll = (unsigned)rand_r(&c->seed) % 100;

		seq++;
		if (roll < 26) {
			snprintf(body, sizeof(body),
			         "{\"name\":\"soak-%d-%u\",\"memory_limit\":\"%s\","
			         "\"network_policy\":{\"type\":\"allowlist\",\"allowed_domains\":["
			         "\"API.Example.com.\",\"x%u.example.org\"],\"domain_secrets\":[{"
			         "\"domain\":\"api.example.com\",\"name\":\"T\",\"value\":\"" SECRET
			         "\"}]},\"file_ids\":[\"f1\"]}",
			         c->id, seq, seq % 2 ? "4g" : "1g", seq);
			if (call(c, h, "POST", "/v1/containers", body, K_ALLOW, 0, 200, &out) ==
			    200)
				delete_created(c, h, &out);
		} else if (roll < 39) {
			call(c, h, "POST", "/v1/containers", denied[seq % 7], K_DENY, 0, 403, &out);
		} else if (roll < 52) {
			call(c, h, "POST", "/v1/containers", invalid[seq % 7], K_INVALID, 0, 400,
			     &out);
		} else if (roll < 58) {
			call(c, h, "GET", "/v1/containers?limit=5&order=desc", NULL, K_LIST, 0, 200,
			     &out);
		} else if (roll < 62) {
			call(c, h, "GET", "/v1/containers/cntr_missing", NULL, K_MISSING, 0, 404,
			     &out);
		} else if (roll < 74) {
			snprintf(body, sizeof(body),
			         "{\"name\":\"soak-fault-%s\",\"network_policy\":{\"type\":"
			         "\"allowlist\","
			         "\"allowed_domains\":[\"api.example.com\"],\"domain_secrets\":[{"
			         "\"domain\":\"api.example.com\",\"name\":\"T\",\"value\":\"" SECRET
			         "\"}]}}",
			         faults[seq % NFAULTS]);
			call(c, h, "POST", "/v1/containers", body, K_FAULT, 0, -1, &out);
		} else if (roll < 80) {
			call(c, h, "GET", seq % 2 ? "/v1//containers" : "/v1/containers/a%2Fb",
			     NULL, K_BADPATH, 0, 400, &out);
		} else if (roll < 85) {
			raw_bad(c);
		} else {
			send_hostile(c, h, &out);
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

/* printf onto the end of b; the soak cannot go on without its requests,
 * so running out of memory aborts. */
static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int k;
	char *p;

	va_start(ap, fmt);
	k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0 || (p = realloc(b->p, b->n + (size_t)k + 1)) == NULL)
		abort();
	b->p = p;
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)k;
}

/* n copies of c onto the end of b. */
static void
pad(struct buf *b, char c, size_t n)
{
	char *p = realloc(b->p, b->n + n + 1);

	if (p == NULL)
		abort();
	b->p = p;
	memset(b->p + b->n, c, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* A create whose allowlist has n names of 253 bytes, the longest a
 * hostname may be, each of four long labels under hostile.example.net. */
static void
long_domains(struct buf *b, int n)
{
	int i;

	put(b, "{\"name\":\"soak-hostile\",\"network_policy\":{\"type\":\"allowlist\","
	       "\"allowed_domains\":[");
	for (i = 0; i < n; i++) {
		put(b, "%s\"", i ? "," : "");
		pad(b, 'a', 63);
		put(b, ".");
		pad(b, 'b', 63);
		put(b, ".d%05d", i);
		pad(b, 'c', 57);
		put(b, ".");
		pad(b, 'e', 41);
		put(b, ".hostile.example.net\"");
	}
	put(b, "]}}");
}

/* A create with n domain secrets, each the marker, for one domain. */
static void
secrets(struct buf *b, int n)
{
	int i;

	put(b, "{\"name\":\"soak-hostile\",\"network_policy\":{\"type\":\"allowlist\","
	       "\"allowed_domains\":[\"api.example.com\"],\"domain_secrets\":[");
	for (i = 0; i < n; i++)
		put(b,
		    "%s{\"domain\":\"api.example.com\",\"name\":\"T%d\",\"value\":\"" SECRET "\"}",
		    i ? "," : "", i);
	put(b, "]}}");
}

/* A Responses body whose input nests depth arrays deep. */
static void
deep_input(struct buf *b, size_t depth)
{
	put(b, "{\"model\":\"gpt-5\",\"input\":[{\"type\":\"message\",\"role\":\"user\","
	       "\"content\":");
	pad(b, '[', depth);
	pad(b, ']', depth);
	put(b, "}],\"tools\":[{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\"}}]}");
}

/* A Responses body with n code interpreters, each making a container;
 * the last asks for more memory than the policy allows when last_bad. */
static void
tools(struct buf *b, int n, int last_bad)
{
	int i;

	put(b, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[");
	for (i = 0; i < n; i++)
		put(b, "%s{\"type\":\"code_interpreter\",\"container\":{\"type\":\"auto\"%s}}",
		    i ? "," : "", last_bad && i == n - 1 ? ",\"memory_limit\":\"64g\"" : "");
	put(b, "]}");
}

/* POST /v1/responses with a target of len bytes (a long query). */
static void
long_target(struct buf *b, size_t len)
{
	static const char body[] = "{\"model\":\"gpt-5\",\"input\":\"hi\"}";
	static const char start[] = "/v1/responses?pad=";

	put(b, "POST %s", start);
	pad(b, 'q', len - (sizeof(start) - 1));
	put(b,
	    " HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nAuthorization: Bearer " APIKEY
	    "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    sizeof(body) - 1, body);
}

/* A GET of one container of the list, with the marker key, extra fields
 * X-0... and then, when size is not 0, an X-Pad field that makes the head
 * size bytes long. */
static void
long_head(struct buf *b, int extra, size_t size)
{
	static const char pad_field[] = "X-Pad: \r\n\r\n";
	int i;

	put(b, "GET /v1/containers?limit=1 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
	       "Authorization: Bearer " APIKEY "\r\n");
	for (i = 0; i < extra; i++)
		put(b, "X-%d: a\r\n", i);
	if (size) {
		size_t n = size - b->n - (sizeof(pad_field) - 1);

		put(b, "X-Pad: ");
		pad(b, 'p', n);
		put(b, "\r\n");
	}
	put(b, "\r\n");
}

/* A create sent chunked (so read as it arrives, its inline skill's data
 * past 64 KiB set aside in the spool) in 16 KiB chunks, 900 KiB of data:
 * the policy allows no inline skill, so 403 once it is all read. */
static void
chunked_skill(struct buf *b)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct buf body = {0};
	size_t at, k, n = 900 * 1024;
	char *data = malloc(n + 1);

	if (data == NULL)
		abort();
	for (k = 0; k < n; k++)
		data[k] = alphabet[k % 64];
	data[n] = '\0';
	put(&body, "{\"name\":\"soak-hostile\",\"skills\":[{\"type\":\"inline\",\"name\":\"s\","
	           "\"description\":\"d\",\"source\":{\"type\":\"base64\","
	           "\"media_type\":\"application/zip\",\"data\":\"");
	put(&body, "%s\"}}]}", data);
	free(data);
	put(b, "POST /v1/containers HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
	       "Authorization: Bearer " APIKEY "\r\nContent-Type: application/json\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n");
	for (at = 0; at < body.n; at += k) {
		k = body.n - at < 16384 ? body.n - at : 16384;
		put(b, "%zx\r\n", k);
		put(b, "%.*s\r\n", (int)k, body.p + at);
	}
	put(b, "0\r\n\r\n");
	free(body.p);
}

/* Builds every hostile request's bytes. */
static void
hostile_build(void)
{
	/* Host, Connection and Authorization, then the extra fields. */
	const int fields = HTTPMSG_MAX_HEADERS - 3;
	static const char name_tail[] = "\"soak-hostile\"}";
	int i, k;

	for (i = 0; i < NHOSTILE; i++) {
		struct buf b = {0};

		switch (i) {
		case H_DOMAINS_AT_MAX:
			long_domains(&b, MAX_DOMAINS);
			break;
		case H_DOMAINS_PAST_MAX:
			long_domains(&b, MAX_DOMAINS + 1);
			break;
		case H_DOMAINS_30000:
			put(&b,
			    "{\"name\":\"soak-hostile\",\"network_policy\":{\"type\":\"allowlist\","
			    "\"allowed_domains\":[");
			for (k = 0; k < 30000; k++)
				put(&b, "%s\"d%d.example.org\"", k ? "," : "", k);
			put(&b, "]}}");
			break;
		case H_SECRETS_AT_MAX:
			secrets(&b, MAX_SECRETS);
			break;
		case H_SECRETS_PAST_MAX:
			secrets(&b, MAX_SECRETS + 1);
			break;
		case H_SKILLS_AT_MAX:
		case H_SKILLS_PAST_MAX:
			put(&b, "{\"name\":\"soak-hostile\",\"skills\":[");
			for (k = 0; k < MAX_SKILLS + (i == H_SKILLS_PAST_MAX); k++)
				put(&b,
				    "%s{\"type\":\"skill_reference\",\"skill_id\":\"skill_ok\"}",
				    k ? "," : "");
			put(&b, "]}");
			break;
		case H_BODY_AT_LIMIT:
		case H_BODY_PAST_LIMIT:
			/* Whitespace, which the forwarded body (written anew) and so
			 * the stub's answer and lists do not repeat. */
			put(&b, "{\"name\":");
			pad(&b, ' ', BODY_MAX + (i == H_BODY_PAST_LIMIT) - b.n - strlen(name_tail));
			put(&b, "%s", name_tail);
			break;
		case H_DEEP_IN_FIELD:
			put(&b, "{\"name\":\"soak-hostile\",\"file_ids\":");
			pad(&b, '[', 2000);
			pad(&b, ']', 2000);
			put(&b, "}");
			break;
		case H_DEEP_RESPONSES:
			deep_input(&b, 2000);
			break;
		case H_DEEP_PAST_PARSER:
			deep_input(&b, 3000);
			break;
		case H_TOOLS_AT_MAX:
		case H_TOOLS_AT_MAX_LAST_REFUSED:
			/* responses.max_tool_containers, 16 by default */
			tools(&b, 16, i == H_TOOLS_AT_MAX_LAST_REFUSED);
			break;
		case H_TOOLS_5001:
			tools(&b, 5001, 0);
			break;
		case H_TARGET_AT_LIMIT:
			long_target(&b, TARGET_MAX);
			break;
		case H_TARGET_PAST_LIMIT:
			long_target(&b, TARGET_MAX + 1);
			break;
		case H_TARGET_PAST_HEAD:
			long_target(&b, HEAD_MAX);
			break;
		case H_HEADERS_AT_MAX:
			long_head(&b, fields, 0);
			break;
		case H_HEADERS_PAST_MAX:
			long_head(&b, fields + 1, 0);
			break;
		case H_SKILL_CHUNKED:
			chunked_skill(&b);
			break;
		case H_HEAD_AT_LIMIT:
			long_head(&b, 0, HEAD_MAX);
			break;
		case H_HEAD_PAST_LIMIT:
			long_head(&b, 0, HEAD_MAX + 1);
			break;
		default:
			long_head(&b, 0, 1024 * 1024);
			break;
		}
		hostile[i].data = b.p;
		hostile[i].len = b.n;
	}
}

/* The length of a raw request's target. */
static size_t
target_len(const struct hostile *x)
{
	const char *t = strchr(x->data, ' ') + 1;

	return (size_t)(strchr(t, ' ') - t);
}

/* Each request is the size its name says, so that a slip in building one
 * cannot turn a case at a bound into one inside it. */
static void
hostile_check(void)
{
	cr_assert_eq(hostile[H_BODY_AT_LIMIT].len, BODY_MAX);
	cr_assert_eq(hostile[H_BODY_PAST_LIMIT].len, BODY_MAX + 1);
	cr_assert_eq(hostile[H_HEAD_AT_LIMIT].len, HEAD_MAX);
	cr_assert_eq(hostile[H_HEAD_PAST_LIMIT].len, HEAD_MAX + 1);
	cr_assert_eq(target_len(&hostile[H_TARGET_AT_LIMIT]), TARGET_MAX);
	cr_assert_eq(target_len(&hostile[H_TARGET_PAST_LIMIT]), TARGET_MAX + 1);
	cr_assert_eq(target_len(&hostile[H_TARGET_PAST_HEAD]), HEAD_MAX);
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
	size_t creates, responses, others, broken, from_denied;
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
	char url[128], why[512] = "";
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
		} else if (strcmp(method, "POST") == 0 && strncmp(uri, "/v1/responses", 13) == 0 &&
		           (uri[13] == '\0' || uri[13] == '?')) {
			u->responses++;
			if (body == NULL || inv_check_tools(model, body, len, why, sizeof(why)) < 0)
				note_broken(u, "forwarded %.200s: %s", body ? body : "nothing",
				            why);
			if (strstr(uri, "//") || strstr(uri, "..") || strchr(uri, '%'))
				note_broken(u, "%s %.200s", method, uri);
		} else {
			u->others++;
			if (strstr(uri, "//") || strstr(uri, "..") || strchr(uri, '%') ||
			    strncmp(uri, "/v1/containers", 14) != 0)
				note_broken(u, "%s %s", method, uri);
		}
	}
	json_decref(reqs);
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

/* The median of the RSS samples taken within [from, to) seconds of the
 * start (n of them, at times at[]), or -1 when there are none. */
static long
rss_median(const long *kb, const double *at, size_t n, double from, double to)
{
	long *v = calloc(n + 1, sizeof(*v)), m = -1;
	size_t i, k = 0;

	if (v == NULL)
		abort();
	for (i = 0; i < n; i++)
		if (at[i] >= from && at[i] < to)
			v[k++] = kb[i];
	if (k) {
		qsort(v, k, sizeof(*v), cmp_long);
		m = v[k / 2];
	}
	free(v);
	return m;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The p99 of the ordinary requests sent within [from, to) seconds of the
 * start, in ms; *n gets how many there were. */
static double
p99_ms(const struct client *cl, size_t nclients, double from, double to, size_t *n)
{
	double *v = NULL, p = 0;
	size_t i, j, k = 0, cap = 0;

	for (i = 0; i < nclients; i++)
		for (j = 0; j < cl[i].n; j++) {
			const struct result *r = &cl[i].res[j];

			if (!kind_ordinary[r->kind] || r->t < from || r->t >= to)
				continue;
			if (k == cap) {
				cap = cap ? cap * 2 : 4096;
				if ((v = realloc(v, cap * sizeof(*v))) == NULL)
					abort();
			}
			v[k++] = r->dt;
		}
	if (k) {
		qsort(v, k, sizeof(*v), cmp_double);
		/* The nearest rank: the smallest value at or above 99% of them. */
		p = v[(k * 99 + 99) / 100 - 1] * 1000;
	}
	free(v);
	*n = k;
	return p;
}

Test(soak, mixed_workload)
{
	long seconds = env_long("SOAK_SECONDS", 600), nclients = env_long("SOAK_CLIENTS", 6);
	long rate = env_long("SOAK_RATE", 200), bound = env_long("SOAK_RSS_GROWTH_KB", 8192);
	long factor = env_long("SOAK_LATENCY_FACTOR", 3);
	long slack = env_long("SOAK_LATENCY_SLACK_MS", 20);
	double warm = seconds / 5.0 > 10 ? seconds / 5.0 : 10, start, deadline, t;
	double p99_first, p99_last, slowest[NHOSTILE] = {0};
	struct hx_gw *gw;
	struct client *cl;
	struct inv_policy *model;
	struct upstream_check u = {0};
	json_t *seen = json_object(), *recs, *rec, *by_id = json_object(), *pdoc;
	long peak_bound = env_long("SOAK_RSS_PEAK_KB", 65536);
	long rss, rss_max = 0, rss_end = 0, rss_first, rss_a, rss_b, *rss_at;
	double *rss_t, win;
	size_t i, j, total = 0, wrong = 0, none = 0, leaked = 0, per_kind[NKINDS] = {0};
	size_t per_hostile[NHOSTILE] = {0}, n_first, n_last;
	size_t dup = 0, missing = 0, mismatch = 0, denied_upstream = 0, samples = 0;
	int alive = 1;
	char why[256], first_wrong[256] = "";
	FILE *rep;
	const char *report = getenv("SOAK_REPORT");

	pdoc = json_loads(policy_text, 0, NULL);
	model = inv_policy_new(pdoc, why, sizeof(why));
	cr_assert_not_null(model, "%s", why);
	hostile_build();
	hostile_check();
	gw = hx_gw_start(policy_text,
	                 hx_fmt("{\"upstream\":{\"timeout_ms\":1000},\"workers\":%ld,"
	                        "\"limits\":{\"max_connections\":1000,\"max_body_bytes\":%d,"
	                        "\"max_header_bytes\":%d}}",
	                        env_long("SOAK_WORKERS", 1), BODY_MAX, HEAD_MAX));
	hx_stub_next(fault_queue);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rss_first = rss_kb(gw->proc->pid);
	rss_at = calloc((size_t)seconds + 8, sizeof(*rss_at));
	rss_t = calloc((size_t)seconds + 8, sizeof(*rss_t));
	cr_assert(rss_at && rss_t);
	start = now_s();
	deadline = start + (double)seconds;
	cl = calloc((size_t)nclients, sizeof(*cl));
	for (i = 0; i < (size_t)nclients; i++) {
		cl[i].id = (int)i;
		cl[i].seed = 0x50a1u + (unsigned)i * 7919u;
		cl[i].base = gw->url;
		cl[i].port = gw->port;
		cl[i].start = start;
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
		if (samples < (size_t)seconds + 8) {
			rss_at[samples] = rss;
			rss_t[samples] = t + 1 - start;
		}
		samples++;
		if (t + 1 - start >= warm && rss > rss_max)
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
		for (j = 0; j < cl[i].n; j++) {
			const struct result *r = &cl[i].res[j];

			per_kind[r->kind]++;
			if (r->kind != K_HOSTILE)
				continue;
			per_hostile[r->variant]++;
			if (r->dt > slowest[r->variant])
				slowest[r->variant] = r->dt;
		}
	}
	/* Latency: the first third of the run against the last. */
	p99_first = p99_ms(cl, (size_t)nclients, 0, seconds / 3.0, &n_first);
	p99_last = p99_ms(cl, (size_t)nclients, seconds * 2 / 3.0, (double)seconds + 60, &n_last);

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
	/* Memory: the typical level just after warm-up against that of the
	 * end of the run. Requests in flight, the hostile ones most, raise
	 * single samples by megabytes and let them fall again; medians see
	 * through that to what stays, and a leak moves them as surely as it
	 * moves any peak. The peak is held to a bound of its own. */
	win = (seconds - warm) / 3;
	samples = samples < (size_t)seconds + 8 ? samples : (size_t)seconds + 8;
	rss_a = rss_median(rss_at, rss_t, samples, warm, warm + win);
	rss_b = rss_median(rss_at, rss_t, samples, seconds - win, (double)seconds + 8);
	if (rss_a < 0 || rss_b < 0)
		rss_a = rss_b = rss_end;
	cr_expect_eq(hx_gw_stop(gw), 0, "the gateway did not exit cleanly");

	rep = report ? fopen(report, "w") : NULL;
	for (i = 0; i < 2; i++) {
		FILE *f = i ? rep : stdout;

		if (f == NULL)
			continue;
		fprintf(f,
		        "soak: %ld s, %ld clients, %ld requests/s asked, %ld gateway worker(s)\n",
		        seconds, nclients, rate, env_long("SOAK_WORKERS", 1));
		fprintf(f, "requests: %zu (%.1f/s)", total, (double)total / (double)seconds);
		for (j = 0; j < NKINDS; j++)
			fprintf(f, "  %s %zu", kind_names[j], per_kind[j]);
		fprintf(f,
		        "\nhostile sizes: %zu (%.1f%% of the requests); each, the status it must "
		        "get, how many were sent and the slowest answer:\n",
		        per_kind[K_HOSTILE],
		        total ? 100.0 * (double)per_kind[K_HOSTILE] / (double)total : 0.0);
		for (j = 0; j < NHOSTILE; j++)
			fprintf(f, "  %-24s %d %6zu %8.1f ms\n", hostile[j].name, hostile[j].want,
			        per_hostile[j], slowest[j] * 1000);
		fprintf(f, "no response: %zu; wrong status: %zu%s%s\n", none, wrong,
		        first_wrong[0] ? ", first " : "", first_wrong);
		fprintf(f,
		        "audit: %zu request records, %zu answers without one, %zu with another "
		        "status, %zu duplicate ids\n",
		        json_object_size(by_id), missing, mismatch, dup);
		fprintf(f,
		        "upstream: %zu creates, %zu Responses and %zu other requests, %zu breaking "
		        "the policy or the path rules%s%s, %zu from denied or unaudited requests\n",
		        u.creates, u.responses, u.others, u.broken, u.broken ? ": first " : "",
		        u.first, denied_upstream);
		fprintf(f,
		        "memory (VmRSS): %ld kB at start; median %ld kB in %.0f-%.0f s (after "
		        "warm-up), %ld kB in %.0f-%ld s: growth %ld kB (bound %ld kB)\n",
		        rss_first, rss_a, warm, warm + win, rss_b, seconds - win, seconds,
		        rss_b - rss_a, bound);
		fprintf(f,
		        "memory peak: %ld kB at most after warm-up, %ld kB above the first median "
		        "(bound %ld kB); %ld kB at the end\n",
		        rss_max, rss_max - rss_a, peak_bound, rss_end);
		fprintf(f,
		        "latency of ordinary requests (p99): %.1f ms in the first third (%zu "
		        "requests), %.1f ms in the last third (%zu): bound %ld x %.1f + %ld = %.1f "
		        "ms\n",
		        p99_first, n_first, p99_last, n_last, factor, p99_first, slack,
		        (double)factor * p99_first + (double)slack);
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
	cr_expect_lt(rss_b - rss_a, bound, "memory grew %ld kB after warm-up", rss_b - rss_a);
	cr_expect_lt(rss_max - rss_a, peak_bound, "memory peaked %ld kB above its level",
	             rss_max - rss_a);
	cr_expect_gt(n_first, 0, "no ordinary requests in the first third");
	cr_expect_gt(n_last, 0, "no ordinary requests in the last third");
	cr_expect_leq(
	        p99_last, (double)factor * p99_first + (double)slack,
	        "the p99 latency of ordinary requests grew from %.1f ms in the first third to "
	        "%.1f ms in the last",
	        p99_first, p99_last);
	for (j = 0; j < NHOSTILE; j++)
		cr_expect_gt(per_hostile[j], 0, "no %s request was sent", hostile[j].name);
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
	free(rss_at);
	free(rss_t);
	for (j = 0; j < NHOSTILE; j++)
		free(hostile[j].data);
	json_decref(seen);
	json_decref(by_id);
	json_decref(pdoc);
	inv_policy_free(model);
	curl_global_cleanup();
}
