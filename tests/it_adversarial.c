/*
 * it_adversarial: the adversarial corpus (tests/data/adversarial/) against
 * the real gateway. Each manifest's header says its format; each case
 * states what the client gets and what the upstream did or did not
 * receive, and every answer must have exactly one audit record with the
 * same status.
 *
 * Every case is checked (cr_expect, naming the case) rather than stopping
 * at the first that fails, so one run shows all that is wrong.
 *
 * The Responses cases (responses/, target/) run under
 * policy-responses.json, with the stub scripted to answer 200 whatever is
 * forwarded, so that a case that went up says so by its status too.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

TestSuite(it_adversarial, .init = hx_init, .fini = hx_fini, .timeout = 300);

#define MAX_FIELDS 8

struct row {
	size_t n;
	char *f[MAX_FIELDS];
};

/* tests/data/adversarial/<rel>, whole; fails the test if missing. */
static const char *
data_file(const char *rel, size_t *len)
{
	const char *path = hx_fmt("%s/adversarial/%s", hx_data_dir(), rel);
	const char *text = hx_read_file(path, len);

	cr_assert_not_null(text, "cannot read %s (run from the repository root)", path);
	return text;
}

/*
 * The rows of a manifest: lines split at tabs, without comment lines, empty
 * lines and a trailing "# why" field. The fields point into a copy of the
 * file that the harness owns (hx_fmt); the caller frees the row array.
 */
static size_t
manifest(const char *rel, struct row **out)
{
	char *text = (char *)(uintptr_t)hx_fmt("%s", data_file(rel, NULL));
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct row r = {0};
		char *field, *fsave = NULL;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (field = strtok_r(line, "\t", &fsave); field && r.n < MAX_FIELDS;
		     field = strtok_r(NULL, "\t", &fsave)) {
			if (field[0] == '#')
				break;
			r.f[r.n++] = field;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			rows = realloc(rows, cap * sizeof(*rows));
			cr_assert_not_null(rows);
		}
		rows[n++] = r;
	}
	*out = rows;
	return n;
}

/* Replaces each "$(repeat N TEXT)" in body with N copies of TEXT. */
static char *
expand(const char *body, size_t len, size_t *out_len)
{
	static const char tag[] = "$(repeat ";
	size_t cap = len + 1, o = 0, i = 0;
	char *out = malloc(cap);

	cr_assert_not_null(out);
	while (i < len) {
		if (len - i > sizeof(tag) && memcmp(body + i, tag, sizeof(tag) - 1) == 0) {
			char *end;
			unsigned long count = strtoul(body + i + sizeof(tag) - 1, &end, 10);
			const char *text = end + 1,
			           *close = memchr(text, ')', len - (size_t)(text - body));
			size_t tlen, k;

			cr_assert(*end == ' ' && close, "bad $(repeat) in a body");
			tlen = (size_t)(close - text);
			if (o + count * tlen + 1 > cap) {
				cap = o + count * tlen + len + 1;
				out = realloc(out, cap);
				cr_assert_not_null(out);
			}
			for (k = 0; k < count; k++, o += tlen)
				memcpy(out + o, text, tlen);
			i = (size_t)(close - body) + 1;
			continue;
		}
		if (o + 2 > cap) {
			cap = cap * 2;
			out = realloc(out, cap);
			cr_assert_not_null(out);
		}
		out[o++] = body[i++];
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* The status of each request's audit record by request id. */
static json_t *
audit_statuses(const struct hx_gw *gw, size_t n)
{
	json_t *recs = hx_audit_wait(gw, n, 20000), *by_id = json_object(), *rec;
	size_t i;

	json_array_foreach(recs, i, rec)
	{
		const char *id = hx_str(rec, "request_id");

		/* Records of another type (the log's own segment markers) are
		 * not answers. */
		if (hx_str(rec, "type") && strcmp(hx_str(rec, "type"), "request") != 0)
			continue;

		cr_expect(id && json_object_get(by_id, id) == NULL, "audit record %zu: id %s twice",
		          i, id ? id : "(none)");
		if (id)
			json_object_set(by_id, id, json_object_get(rec, "status"));
	}
	cr_expect_eq(json_object_size(by_id), n, "%zu request audit records for %zu answers",
	             json_object_size(by_id), n);
	return by_id;
}

static void
expect_audited(json_t *by_id, const char *name, const char *rid, long status)
{
	json_t *st = rid ? json_object_get(by_id, rid) : NULL;

	cr_expect(st != NULL, "%s: no audit record for request %s", name, rid ? rid : "(no id)");
	if (st)
		cr_expect_eq(json_integer_value(st), status, "%s: audited %lld, answered %ld", name,
		             (long long)json_integer_value(st), status);
}

static json_t *
error_of(struct hx_resp *r)
{
	return json_object_get(hx_resp_json(r), "error");
}

/* The error's param as the manifests write it: "-" for null. */
static const char *
param_of(json_t *err)
{
	json_t *p = json_object_get(err, "param");

	return json_is_string(p) ? json_string_value(p) : "-";
}

struct answered {
	size_t n;
	char name[512][96];
	char rid[512][64];
	long status[512];
};

static void
remember(struct answered *a, const char *name, const char *rid, long status)
{
	cr_assert_lt(a->n, 512);
	snprintf(a->name[a->n], sizeof(a->name[0]), "%s", name);
	snprintf(a->rid[a->n], sizeof(a->rid[0]), "%s", rid ? rid : "");
	a->status[a->n++] = status;
}

static void
expect_all_audited(const struct hx_gw *gw, const struct answered *a)
{
	json_t *by_id = audit_statuses(gw, a->n);
	size_t i;

	for (i = 0; i < a->n; i++)
		expect_audited(by_id, a->name[i], a->rid[i][0] ? a->rid[i] : NULL, a->status[i]);
	json_decref(by_id);
}

/* The requests the upstream received since the last call. */
static json_t *
take_upstream(void)
{
	json_t *reqs = hx_stub_requests();

	hx_stub_clear();
	return reqs;
}

static struct hx_resp *
create(const struct hx_gw *gw, const char *body, size_t len)
{
	static const char *const headers[] = {"Content-Type: application/json", NULL};
	struct hx_req rq = {.method = "POST",
	                    .url = hx_gw_url(gw, "/v1/containers"),
	                    .headers = headers,
	                    .body = body,
	                    .len = len,
	                    .timeout_ms = 30000};

	return hx_request(&rq);
}

Test(it_adversarial, json_bodies)
{
	/* The bodies of millions of items go through the policy whole: what a
	 * create may hold besides inline skill data is raised from its 1 MiB
	 * default to the body limit (it_spool tests the default). */
	struct hx_gw *gw = hx_gw_start("@adversarial/policy.json",
	                               "{\"limits\":{\"max_json_bytes\":78643200}}");
	struct answered *a = calloc(1, sizeof(*a));
	struct row *rows;
	size_t n = manifest("json/cases.txt", &rows), i;

	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++) {
		const char *name = rows[i].f[0];
		long status = strtol(rows[i].f[1], NULL, 10);
		const char *code = rows[i].f[2], *param = rows[i].f[3];
		size_t raw_len, len, fwd_len;
		const char *raw = data_file(hx_fmt("json/%s.json", name), &raw_len);
		char *body = expand(raw, raw_len, &len);
		struct hx_resp *r;
		json_t *up, *err;

		cr_assert_eq(rows[i].n, 4, "json/cases.txt: %s: want 4 fields", name);
		r = create(gw, body, len);
		free(body);
		cr_expect_eq(r->status, status, "%s: status %ld, want %ld: %.300s%s", name,
		             r->status, status, r->body, r->error);
		remember(a, name, hx_resp_header(r, "x-request-id"), r->status);
		up = take_upstream();
		if (status == 200) {
			const char *path =
			        hx_fmt("%s/adversarial/json/%s.fwd.json", hx_data_dir(), name);
			const char *want = hx_read_file(path, &fwd_len);
			const char *got;

			cr_expect_eq(json_array_size(up), 1, "%s: the upstream got %zu requests",
			             name, json_array_size(up));
			got = json_array_size(up) ? hx_record_body(json_array_get(up, 0), &len)
			                          : NULL;
			if (want && got)
				cr_expect(json_equal(hx_json(got), hx_json(want)),
				          "%s: forwarded %.300s\nwant %s", name, got, want);
		} else {
			err = error_of(r);
			cr_expect_eq(json_array_size(up), 0,
			             "%s: refused, yet the upstream got %zu", name,
			             json_array_size(up));
			cr_expect(strcmp(code, "-") == 0 ||
			                  (hx_str(err, "code") &&
			                   strcmp(hx_str(err, "code"), code) == 0),
			          "%s: code %s, want %s", name, hx_str(err, "code"), code);
			cr_expect_str_eq(param_of(err), param, "%s: param %s, want %s", name,
			                 param_of(err), param);
		}
		hx_resp_free(r);
	}
	expect_all_audited(gw, a);
	free(a);
	free(rows);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

/* One response parsed out of raw bytes. */
struct raw_resp {
	int status;
	char rid[64];
	json_t *body;
};

/* Splits what came back on a connection into its responses; -1 when the
 * bytes are not a sequence of whole responses with Content-Length. Answers
 * to HEAD (to_head) have a Content-Length and no body (RFC 9110 9.3.2). */
static int
split_responses(const char *text, size_t len, struct raw_resp *out, size_t max, size_t *n,
                int to_head)
{
	size_t off = 0, i;

	*n = 0;
	while (off < len) {
		const char *head = text + off, *end, *cl, *rid;
		size_t head_len, body_len;
		char *copy;
		json_error_t je;

		if (*n == max || len - off < 12 || strncmp(head, "HTTP/1.1 ", 9) != 0)
			return -1;
		end = strstr(head, "\r\n\r\n");
		if (end == NULL)
			return -1;
		head_len = (size_t)(end - head) + 4;
		copy = strndup(head, head_len);
		for (i = 0; copy[i]; i++)
			copy[i] = (char)tolower((unsigned char)copy[i]);
		out[*n].status = atoi(head + 9);
		cl = strstr(copy, "\r\ncontent-length:");
		rid = strstr(copy, "\r\nx-request-id:");
		body_len = cl && !to_head ? strtoul(cl + 17, NULL, 10) : 0;
		out[*n].rid[0] = '\0';
		if (rid)
			sscanf(rid + 15, " %63[^\r]", out[*n].rid);
		free(copy);
		if (cl == NULL || off + head_len + body_len > len)
			return -1;
		out[*n].body = json_loadb(head + head_len, body_len, 0, &je);
		(*n)++;
		off += head_len + body_len;
	}
	return 0;
}

/* Sends bytes on one connection, half-closes, and checks the answers. */
static void
raw_case(const struct hx_gw *gw, struct answered *a, const char *name, const char *data, size_t len,
         const char *statuses, const char *code, long upstream, const char *uri)
{
	struct raw_resp resp[8];
	char got[128] = "";
	size_t out_len, n = 0, i;
	const char *out = hx_raw(gw->port, data, len, 10000, HX_RAW_SHUT_WR, &out_len);
	json_t *up;

	cr_assert_not_null(out, "%s: cannot connect", name);
	if (split_responses(out, out_len, resp, 8, &n, strncmp(data, "HEAD ", 5) == 0) < 0)
		cr_expect_fail("%s: not a sequence of whole responses: %.400s", name, out);
	for (i = 0; i < n; i++) {
		size_t o = strlen(got);

		snprintf(got + o, sizeof(got) - o, "%s%d", i ? "," : "", resp[i].status);
		remember(a, hx_fmt("%s#%zu", name, i), resp[i].rid, resp[i].status);
	}
	cr_expect_str_eq(got, statuses, "%s: answered %s, want %s: %.300s", name, got, statuses,
	                 out);
	if (n > 0 && strcmp(code, "-") != 0) {
		const char *c = hx_str(json_object_get(resp[0].body, "error"), "code");

		cr_expect(c && strcmp(c, code) == 0, "%s: code %s, want %s", name, c, code);
	}
	up = take_upstream();
	cr_expect_eq((long)json_array_size(up), upstream, "%s: the upstream got %zu, want %ld",
	             name, json_array_size(up), upstream);
	if (uri && strcmp(uri, "-") != 0 && json_array_size(up) == 1)
		cr_expect_str_eq(hx_str(json_array_get(up, 0), "uri"), uri, "%s: upstream uri %s",
		                 name, hx_str(json_array_get(up, 0), "uri"));
	for (i = 0; i < n; i++)
		json_decref(resp[i].body);
}

Test(it_adversarial, http_framing)
{
	struct hx_gw *gw = hx_gw_start("@adversarial/policy.json", NULL);
	struct answered *a = calloc(1, sizeof(*a));
	struct row *rows;
	size_t n = manifest("http/cases.txt", &rows), i, len;

	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++) {
		const char *data = data_file(hx_fmt("http/%s.http", rows[i].f[0]), &len);

		cr_assert_eq(rows[i].n, 4, "http/cases.txt: %s: want 4 fields", rows[i].f[0]);
		raw_case(gw, a, rows[i].f[0], data, len, rows[i].f[1], rows[i].f[2],
		         strtol(rows[i].f[3], NULL, 10), NULL);
	}
	expect_all_audited(gw, a);
	free(a);
	free(rows);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_adversarial, paths)
{
	struct hx_gw *gw = hx_gw_start("@adversarial/policy.json", NULL);
	struct answered *a = calloc(1, sizeof(*a));
	struct row *rows;
	size_t n = manifest("path/cases.txt", &rows), i;

	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++) {
		const char *req = hx_fmt("%s %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
		                         rows[i].f[0], rows[i].f[1]);

		cr_assert_eq(rows[i].n, 6, "path/cases.txt: %s: want 6 fields", rows[i].f[1]);
		raw_case(gw, a, hx_fmt("%s %.80s", rows[i].f[0], rows[i].f[1]), req, strlen(req),
		         rows[i].f[2], rows[i].f[3], strtol(rows[i].f[4], NULL, 10), rows[i].f[5]);
	}
	expect_all_audited(gw, a);
	free(a);
	free(rows);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

static void
domain_cases(const char *policy, const char *rel)
{
	struct hx_gw *gw = hx_gw_start(policy, NULL);
	struct answered *a = calloc(1, sizeof(*a));
	struct row *rows;
	size_t n = manifest(rel, &rows), i;

	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++) {
		const char *lit = rows[i].f[0], *code = rows[i].f[2], *fwd = rows[i].f[3];
		long status = strtol(rows[i].f[1], NULL, 10);
		const char *body =
		        hx_fmt("{\"name\":\"d\",\"network_policy\":{\"type\":\"allowlist\","
		               "\"allowed_domains\":[%s]}}",
		               lit);
		struct hx_resp *r;
		json_t *up, *err;
		size_t len;

		cr_assert_eq(rows[i].n, 4, "%s: %s: want 4 fields", rel, lit);
		r = create(gw, body, strlen(body));
		cr_expect_eq(r->status, status, "%s: status %ld, want %ld: %.300s%s", lit,
		             r->status, status, r->body, r->error);
		remember(a, lit, hx_resp_header(r, "x-request-id"), r->status);
		up = take_upstream();
		if (status == 200) {
			const char *got;
			json_t *doms;

			cr_expect_eq(json_array_size(up), 1, "%s: the upstream got %zu requests",
			             lit, json_array_size(up));
			got = json_array_size(up) ? hx_record_body(json_array_get(up, 0), &len)
			                          : NULL;
			doms = got ? json_object_get(
			                     json_object_get(hx_json(got), "network_policy"),
			                     "allowed_domains")
			           : NULL;
			cr_expect(json_array_size(doms) == 1 &&
			                  strcmp(json_string_value(json_array_get(doms, 0)), fwd) ==
			                          0,
			          "%s: forwarded %s, want [\"%s\"]", lit, got ? got : "nothing",
			          fwd);
		} else {
			err = error_of(r);
			cr_expect_eq(json_array_size(up), 0,
			             "%s: refused, yet the upstream got %zu", lit,
			             json_array_size(up));
			cr_expect(hx_str(err, "code") && strcmp(hx_str(err, "code"), code) == 0,
			          "%s: code %s, want %s", lit, hx_str(err, "code"), code);
			cr_expect_str_eq(param_of(err), "network_policy.allowed_domains[0]",
			                 "%s: param %s", lit, param_of(err));
		}
		hx_resp_free(r);
	}
	expect_all_audited(gw, a);
	free(a);
	free(rows);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_adversarial, domains)
{
	domain_cases("@adversarial/policy.json", "domain/cases.txt");
}

Test(it_adversarial, wildcard_domains)
{
	domain_cases("@adversarial/policy-wildcards.json", "domain/wildcards.txt");
}

/* What the stub answers a forwarded Responses case: a plain 200. */
static void
answer_ok_next(void)
{
	hx_stub_next_clear();
	hx_stub_next("{\"json\":{\"id\":\"resp_adv\",\"object\":\"response\",\"status\":"
	             "\"completed\",\"output\":[]}}");
}

Test(it_adversarial, responses_bodies)
{
	struct hx_gw *gw = hx_gw_start("@adversarial/policy-responses.json", NULL);
	struct answered *a = calloc(1, sizeof(*a));
	struct row *rows;
	size_t n = manifest("responses/cases.txt", &rows), i;
	static const char *const headers[] = {"Content-Type: application/json", NULL};

	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++) {
		const char *name = rows[i].f[0], *target = rows[i].f[1];
		long status = strtol(rows[i].f[2], NULL, 10);
		const char *code = rows[i].f[3], *param = rows[i].f[4];
		long upstream = strtol(rows[i].f[5], NULL, 10);
		size_t raw_len, len, fwd_len;
		const char *raw = data_file(hx_fmt("responses/%s.json", name), &raw_len);
		char *body = expand(raw, raw_len, &len);
		struct hx_req rq = {.method = "POST",
		                    .url = hx_gw_url(gw, target),
		                    .headers = headers,
		                    .body = body,
		                    .len = len,
		                    .timeout_ms = 30000};
		struct hx_resp *r;
		json_t *up, *err;

		cr_assert_eq(rows[i].n, 6, "responses/cases.txt: %s: want 6 fields", name);
		answer_ok_next();
		r = hx_request(&rq);
		free(body);
		cr_expect_eq(r->status, status, "%s: status %ld, want %ld: %.300s%s", name,
		             r->status, status, r->body, r->error);
		remember(a, name, hx_resp_header(r, "x-request-id"), r->status);
		up = take_upstream();
		cr_expect_eq((long)json_array_size(up), upstream,
		             "%s: the upstream got %zu requests, want %ld", name,
		             json_array_size(up), upstream);
		if (status == 200) {
			const char *want = hx_read_file(
			        hx_fmt("%s/adversarial/responses/%s.fwd.json", hx_data_dir(), name),
			        &fwd_len);
			const char *got = json_array_size(up)
			                          ? hx_record_body(json_array_get(up, 0), &len)
			                          : NULL;

			if (want && got)
				cr_expect(json_equal(hx_json(got), hx_json(want)),
				          "%s: forwarded %.300s\nwant %s", name, got, want);
		} else {
			err = error_of(r);
			cr_expect(strcmp(code, "-") == 0 ||
			                  (hx_str(err, "code") &&
			                   strcmp(hx_str(err, "code"), code) == 0),
			          "%s: code %s, want %s", name, hx_str(err, "code"), code);
			cr_expect_str_eq(param_of(err), param, "%s: param %s, want %s", name,
			                 param_of(err), param);
		}
		hx_resp_free(r);
	}
	expect_all_audited(gw, a);
	free(a);
	free(rows);
	cr_expect_eq(hx_gw_stop(gw), 0);
}

Test(it_adversarial, request_targets)
{
	struct hx_gw *gw = hx_gw_start("@adversarial/policy-responses.json", NULL);
	struct answered *a = calloc(1, sizeof(*a));
	struct row *rows;
	size_t n = manifest("target/cases.txt", &rows), i;

	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++) {
		const char *method = rows[i].f[0], *target = rows[i].f[1];
		const char *body =
		        strcmp(target, "/v1/batches") == 0
		                ? "{\"input_file_id\":\"file-1\",\"endpoint\":"
		                  "\"/v1/chat/completions\",\"completion_window\":\"24h\"}"
		                : "{\"model\":\"gpt-5\",\"input\":\"hi\"}";
		const char *req =
		        strcmp(method, "POST") == 0
		                ? hx_fmt("%s %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
		                         "Content-Type: application/json\r\nContent-Length: "
		                         "%zu\r\n\r\n%s",
		                         method, target, strlen(body), body)
		                : hx_fmt("%s %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
		                         method, target);

		cr_assert_eq(rows[i].n, 6, "target/cases.txt: %s: want 6 fields", target);
		answer_ok_next();
		raw_case(gw, a, hx_fmt("%s %.80s", method, target), req, strlen(req), rows[i].f[2],
		         rows[i].f[3], strtol(rows[i].f[4], NULL, 10), rows[i].f[5]);
	}
	expect_all_audited(gw, a);
	free(a);
	free(rows);
	cr_expect_eq(hx_gw_stop(gw), 0);
}
