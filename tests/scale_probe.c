/*
 * scale_probe: runs one stage of the gateway once on one input file, for
 * tests/test_scaling.c to count its instructions under callgrind.
 *
 *   scale_probe STAGE FILE [AUDITFILE]
 *
 * Everything but the stage itself (reading the file, parsing what the stage
 * is given ready-made, compiling the policy) happens outside probe_stage,
 * and test_scaling.c collects only inside it (--toggle-collect), so the
 * count is the stage's work alone. The verdict goes to standard output, so
 * the test can tell that the stage did the work it was meant to (an input
 * refused at its first byte would scale, and prove nothing).
 *
 * Stages and their FILE:
 *   parse        any bytes: jsondoc_parse
 *   schema       a create body: schema_check against CreateContainerBody
 *   policy       {"policy", "request"}: policy_apply_create
 *   create       {"policy", "request"}: the request as text through
 *                jsondoc_parse, schema_check, policy_apply_create and
 *                jsonbuf_dump, as proxy.c runs a create
 *   check        {"forwarded", "answer"}: check_create_response
 *   redact       {"network_policy"}: redact_network_policy_keyed
 *   audit        {"network_policy"}: one audit_write to AUDITFILE of a
 *                record carrying it, redacted beforehand
 *   tools        {"policy", "request"}: tools_apply on a Responses body
 *   inject       {"policy", "tenant", "request"}: tenant_inject_secrets
 *                (value_env secrets read PROBE_SECRET, set here)
 *   policy_load  a policy document: policy_new
 *   multipart    a multipart/form-data body (boundary "BOUNDARY", parts
 *                "file" and "file_id"), fed in 16 KiB reads: multipart_feed
 *   query        a query string for GET /v1/containers: query_check
 *   sse          an event stream, fed in 16 KiB reads: sse_feed, and
 *                sse_data_may_contain(data, "container") for each event
 *                (max_event SSE_MAX_EVENT_LIMIT, so nothing is skipped)
 *   sse_bytes    the same, fed one byte at a time
 *   chunked      a chunked request body, fed in 16 KiB reads:
 *                httpmsg_chunked_feed, counting the bytes decoded
 *   chunked_bytes the same, fed one byte at a time
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "audit/redact.h"
#include "http/httpmsg.h"
#include "http/multipart.h"
#include "http/query.h"
#include "http/sse.h"
#include "lib/err.h"
#include "lib/jsonbuf.h"
#include "lib/jsondoc.h"
#include "lib/jsonspool.h"
#include "lib/secmem.h"
#include "lib/spool.h"
#include "policy/check.h"
#include "policy/policy.h"
#include "policy/policyset.h"
#include "policy/schema.h"
#include "policy/tenant.h"
#include "policy/tools.h"

#define FEED_CHUNK (16 * 1024)

/* What a stage works on, made ready outside probe_stage. */
struct probe {
	const char *stage;
	char *bytes; /* the file as read */
	size_t len;
	json_t *doc;   /* the file parsed, for the stages that take JSON */
	json_t *input; /* what the stage is given, borrowed from doc or owned */
	json_t *owned;
	char *text; /* a document as text, for stages that read text */
	size_t text_len;
	struct policyset *policies;
	const struct policy *policy;
	const struct tenant *tenant;
	struct chain_key *key;
	struct audit *audit;
	struct multipart *mp;
	struct sse *sse;
	struct spool *spool;
	struct jsonspool *reader;
	size_t events, mentions; /* what sse's callback saw */
	size_t decoded;          /* what a chunked body gave */
	char verdict[ERR_MESSAGE_MAX + 64];
};

static const char *const orders[] = {"asc", "desc", NULL};
static const struct query_param list_query[] = {
        {"limit", QUERY_INT, 1, 100},
        {"order", QUERY_ENUM, .enumv = orders},
        {"after", QUERY_ID},
        {"name", QUERY_STRING, .max = 256},
        {NULL},
};
static const char *const upload_parts[] = {"file", "file_id", NULL};

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "scale_probe: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(2);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read", path);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static struct policyset *
compile(const json_t *doc)
{
	static struct errlist errs;
	struct policyset *p = policyset_new(doc, "probe-policy", &errs);

	if (p == NULL)
		die("the policy does not compile", errs.n ? errs.msg[0] : NULL);
	return p;
}

static void
verdict_err(struct probe *pr, const char *what, const struct err *e)
{
	snprintf(pr->verdict, sizeof(pr->verdict), "%s %s", what, e->code ? e->code : "?");
}

static int
probe_event(void *arg, const struct sse_event *ev, struct err *e)
{
	struct probe *pr = arg;

	(void)e;
	pr->events++;
	if (!ev->too_large && sse_data_may_contain(ev->data, ev->data_len, "container"))
		pr->mentions++;
	return 0;
}

static void
on_decoded(void *arg, const char *data, size_t n)
{
	struct probe *pr = arg;

	(void)data;
	pr->decoded += n;
}

/* The stage, and nothing else: callgrind counts from its entry to its exit. */
static __attribute__((noinline)) void
probe_stage(struct probe *pr)
{
	struct policy_result r;
	struct err e;
	json_t *v = NULL, *violations;
	size_t len;
	char *out, query[4096];

	err_clear(&e);
	if (strcmp(pr->stage, "parse") == 0) {
		v = jsondoc_parse(pr->bytes, pr->len, &e);
		if (v)
			snprintf(pr->verdict, sizeof(pr->verdict), "parsed");
		else
			verdict_err(pr, "invalid", &e);
	} else if (strcmp(pr->stage, "schema") == 0) {
		if (schema_check(&schema_create_container_body, pr->input, &e) == 0)
			snprintf(pr->verdict, sizeof(pr->verdict), "valid");
		else
			verdict_err(pr, "invalid", &e);
	} else if (strcmp(pr->stage, "policy") == 0) {
		if (policy_apply_create(pr->policy, pr->input, &r) == 0)
			snprintf(pr->verdict, sizeof(pr->verdict), "allow");
		else
			verdict_err(pr, "deny", &r.err);
	} else if (strcmp(pr->stage, "tools") == 0) {
		struct tools_result tr;

		if (tools_apply(pr->policy, pr->input, &tr) == 0)
			snprintf(pr->verdict, sizeof(pr->verdict), "allow %zu", tr.n);
		else
			verdict_err(pr, "deny", &tr.decision.err);
		tools_result_release(&tr);
	} else if (strcmp(pr->stage, "create") == 0) {
		v = jsondoc_parse(pr->text, pr->text_len, &e);
		if (v == NULL || schema_check(&schema_create_container_body, v, &e) < 0) {
			verdict_err(pr, "invalid", &e);
		} else if (policy_apply_create(pr->policy, v, &r) < 0) {
			verdict_err(pr, "deny", &r.err);
		} else {
			out = jsonbuf_dump(v, 4096, (size_t)1 << 30, &len);
			snprintf(pr->verdict, sizeof(pr->verdict), out ? "allow" : "dump failed");
			secmem_free(out);
		}
	} else if (strcmp(pr->stage, "check") == 0) {
		violations = json_array();
		v = check_create_response(json_object_get(pr->doc, "forwarded"), pr->text,
		                          pr->text_len, violations, &e);
		if (v)
			snprintf(pr->verdict, sizeof(pr->verdict), "violations %zu",
			         json_array_size(violations));
		else
			verdict_err(pr, "refused", &e);
		json_decref(violations);
	} else if (strcmp(pr->stage, "redact") == 0) {
		v = redact_network_policy_keyed(pr->input, pr->key);
		snprintf(pr->verdict, sizeof(pr->verdict), v ? "redacted" : "failed");
	} else if (strcmp(pr->stage, "audit") == 0) {
		struct audit_event ev = {
		        .request_id = "req_probe",
		        .client = "127.0.0.1",
		        .method = "POST",
		        .path = "/v1/containers",
		        .operation = "CreateContainer",
		        .decision = "allow",
		        .status = 200,
		        .memory_limit = "1g",
		        .network_policy = pr->input,
		};

		snprintf(pr->verdict, sizeof(pr->verdict),
		         audit_write(pr->audit, &ev) == 0 ? "written" : "lost");
	} else if (strcmp(pr->stage, "inject") == 0) {
		int n = tenant_inject_secrets(pr->tenant, pr->input, NULL);

		snprintf(pr->verdict, sizeof(pr->verdict), "injected %d", n);
	} else if (strcmp(pr->stage, "policy_load") == 0) {
		static struct errlist errs;
		struct policyset *p = policyset_new(pr->doc, "probe-policy", &errs);

		snprintf(pr->verdict, sizeof(pr->verdict), "%s%s",
		         p ? "compiled" : "refused: ", p || errs.n == 0 ? "" : errs.msg[0]);
		policyset_free(p);
	} else if (strcmp(pr->stage, "multipart") == 0) {
		size_t at = 0;
		int rc = 0;

		while (rc == 0 && at < pr->len) {
			len = pr->len - at < FEED_CHUNK ? pr->len - at : FEED_CHUNK;
			rc = multipart_feed(pr->mp, pr->bytes + at, len, &e);
			at += len;
		}
		if (rc < 0)
			verdict_err(pr, "invalid", &e);
		else
			snprintf(pr->verdict, sizeof(pr->verdict), rc ? "complete" : "incomplete");
	} else if (strcmp(pr->stage, "sse") == 0 || strcmp(pr->stage, "sse_bytes") == 0) {
		size_t at = 0, step = strcmp(pr->stage, "sse") == 0 ? FEED_CHUNK : 1;
		int rc = 0;

		while (rc == 0 && at < pr->len) {
			len = pr->len - at < step ? pr->len - at : step;
			rc = sse_feed(pr->sse, pr->bytes + at, len, &e);
			at += len;
		}
		if (rc < 0)
			verdict_err(pr, "failed", &e);
		else
			snprintf(pr->verdict, sizeof(pr->verdict), "events %zu", pr->events);
	} else if (strcmp(pr->stage, "chunked") == 0 || strcmp(pr->stage, "chunked_bytes") == 0) {
		struct httpmsg_chunked *c = httpmsg_chunked_new();
		size_t at = 0, used, step = strcmp(pr->stage, "chunked") == 0 ? FEED_CHUNK : 1;
		int rc = 0;

		while (c && rc == 0 && at < pr->len) {
			len = pr->len - at < step ? pr->len - at : step;
			rc = httpmsg_chunked_feed(c, pr->bytes + at, len, &used, on_decoded, pr,
			                          &e);
			at += used;
		}
		httpmsg_chunked_free(c);
		if (rc < 0)
			verdict_err(pr, "failed", &e);
		else
			snprintf(pr->verdict, sizeof(pr->verdict), "%s %zu",
			         rc == 1 ? "decoded" : "unfinished", pr->decoded);
	} else if (strcmp(pr->stage, "spool") == 0 || strcmp(pr->stage, "spool_bytes") == 0) {
		const struct jsondoc_ref *refs;
		const char *text;
		size_t at = 0, step = strcmp(pr->stage, "spool") == 0 ? FEED_CHUNK : 1, nrefs;
		int rc = 0;

		while (rc == 0 && at < pr->len) {
			len = pr->len - at < step ? pr->len - at : step;
			rc = jsonspool_feed(pr->reader, pr->bytes + at, len, &e);
			at += len;
		}
		jsonspool_finish(pr->reader);
		text = jsonspool_text(pr->reader, &len);
		refs = jsonspool_refs(pr->reader, &nrefs);
		if (rc == 0)
			v = jsondoc_parse_spooled(text, len, refs, nrefs, &e);
		if (v == NULL)
			verdict_err(pr, "failed", &e);
		else
			snprintf(pr->verdict, sizeof(pr->verdict), "spooled %zu", nrefs);
	} else if (strcmp(pr->stage, "query") == 0) {
		if (query_check(pr->bytes, list_query, query, sizeof(query), &e) == 0)
			snprintf(pr->verdict, sizeof(pr->verdict), "valid");
		else
			verdict_err(pr, "invalid", &e);
	} else {
		die("unknown stage", pr->stage);
	}
	json_decref(v);
}

/* Whatever the stage needs ready before it runs. */
static void
prepare(struct probe *pr, const char *auditfile)
{
	static const unsigned char key[32] = "scale-probe-fingerprint-key-000";
	const char *s = pr->stage;
	json_t *np;
	struct err e;

	err_clear(&e);
	if (strcmp(s, "parse") == 0 || strcmp(s, "query") == 0 || strcmp(s, "chunked") == 0 ||
	    strcmp(s, "chunked_bytes") == 0)
		return;
	if (strcmp(s, "sse") == 0 || strcmp(s, "sse_bytes") == 0) {
		pr->sse = sse_new(SSE_MAX_EVENT_LIMIT, probe_event, pr, &e);
		if (pr->sse == NULL)
			die("sse_new", e.message);
		return;
	}
	if (strcmp(s, "spool") == 0 || strcmp(s, "spool_bytes") == 0) {
		static const char *const names[] = {"data", NULL};

		pr->spool = spool_new("/tmp", 1 << 20, UINT64_MAX);
		pr->reader = pr->spool ? jsonspool_new(pr->spool, names, 64, SIZE_MAX) : NULL;
		if (pr->reader == NULL)
			die("jsonspool_new", NULL);
		return;
	}
	if (strcmp(s, "multipart") == 0) {
		static const char ct[] = "multipart/form-data; boundary=BOUNDARY";

		pr->mp = multipart_new(ct, sizeof(ct) - 1, upload_parts, &e);
		if (pr->mp == NULL)
			die("multipart_new", e.message);
		return;
	}
	pr->doc = jsondoc_parse(pr->bytes, pr->len, &e);
	if (pr->doc == NULL)
		die("the input is not a JSON object", e.message);
	if (strcmp(s, "schema") == 0 || strcmp(s, "policy_load") == 0) {
		pr->input = pr->doc;
		return;
	}
	if (strcmp(s, "policy") == 0 || strcmp(s, "create") == 0 || strcmp(s, "inject") == 0 ||
	    strcmp(s, "tools") == 0) {
		pr->policies = compile(json_object_get(pr->doc, "policy"));
		pr->policy = policyset_org(pr->policies);
		pr->input = json_object_get(pr->doc, "request");
		if (strcmp(s, "create") == 0 &&
		    (pr->text = jsonbuf_dump(pr->input, 4096, (size_t)1 << 30, &pr->text_len)) ==
		            NULL)
			die("cannot write the request as text", NULL);
		if (strcmp(s, "inject") == 0 &&
		    (pr->tenant = tenants_by_name(
		             policyset_tenants(pr->policies),
		             json_string_value(json_object_get(pr->doc, "tenant")))) == NULL)
			die("no such tenant",
			    json_string_value(json_object_get(pr->doc, "tenant")));
		return;
	}
	if (strcmp(s, "check") == 0) {
		pr->text = jsonbuf_dump(json_object_get(pr->doc, "answer"), 4096, (size_t)1 << 30,
		                        &pr->text_len);
		if (pr->text == NULL)
			die("cannot write the answer as text", NULL);
		return;
	}
	np = json_object_get(pr->doc, "network_policy");
	pr->key = chain_key_new(key, sizeof(key));
	if (strcmp(s, "redact") == 0) {
		pr->input = np;
		return;
	}
	if (strcmp(s, "audit") == 0) {
		if (auditfile == NULL)
			die("the audit stage needs AUDITFILE", NULL);
		pr->audit = audit_open(auditfile, &e);
		if (pr->audit == NULL)
			die("audit_open", e.message);
		pr->owned = pr->input = redact_network_policy_keyed(np, pr->key);
		return;
	}
	die("unknown stage", s);
}

int
main(int argc, char **argv)
{
	struct probe pr;

	if (argc < 3)
		die("usage: scale_probe STAGE FILE [AUDITFILE]", NULL);
	memset(&pr, 0, sizeof(pr));
	secmem_init();
	if (setenv("PROBE_SECRET", "probe-secret-value", 1) != 0)
		die("setenv", NULL);
	pr.stage = argv[1];
	pr.bytes = read_file(argv[2], &pr.len);
	prepare(&pr, argc > 3 ? argv[3] : NULL);
	probe_stage(&pr);
	printf("%s\n", pr.verdict);

	json_decref(pr.owned);
	audit_free(pr.audit);
	chain_key_free(pr.key);
	multipart_free(pr.mp);
	sse_free(pr.sse);
	policyset_free(pr.policies);
	secmem_free(pr.text);
	json_decref(pr.doc);
	free(pr.bytes);
	return 0;
}
