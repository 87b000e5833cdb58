#include "app/forward.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/call.h"
#include "app/reply.h"
#include "app/request.h"
#include "app/tenancy.h"
#include "http/conn.h"
#include "lib/jsonbuf.h"
#include "lib/jsondoc.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "policy/check.h"
#include "policy/policy.h"
#include "policy/schema.h"

#define LIST_PAGES_MAX 10 /* upstream pages read for one answer, at most */

static enum step_result
oom(struct request *r)
{
	err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
	        "the gateway ran out of memory; try again");
	return STEP_FAIL;
}

/* --- one call, its answer relayed ------------------------------------- */

static void
on_forwarded(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;

	call_note(r, res);
	if (!call_succeeded(res)) {
		pipeline_resume(r, call_unsuccessful(r, res));
		return;
	}
	if (request_keep_answer(r, res) < 0) {
		pipeline_resume(r, oom(r));
		return;
	}
	pipeline_resume(r, STEP_NEXT);
}

/* The request's method and path go upstream, with body when there is
 * one. */
static enum step_result
forward_call(struct request *r, const char *body, size_t len)
{
	struct upstream_req up = {0};

	snprintf(r->rec.container_id, sizeof(r->rec.container_id), "%s", r->container_id);
	up.method = r->http->method;
	up.path = r->upstream_path;
	up.body = body;
	up.body_len = len;
	/* A GET that never reached the upstream is safe to try again. */
	up.retry_connect = strcmp(r->http->method, "GET") == 0;
	return call_start(r, &up, body != NULL, NULL, on_forwarded);
}

static enum step_result
forward(struct request *r)
{
	return forward_call(r, NULL, 0);
}

const struct step forward_steps[] = {
        {"admit", tenancy_admit}, {"intent", call_intent},      {"forward", forward},
        {"check", call_check},    {"answer", call_answer_kept}, {NULL, NULL},
};

/* --- delete ------------------------------------------------------------ */

/* A deleted container stops counting as the tenant's. */
const struct step forward_delete_steps[] = {
        {"admit", tenancy_admit},
        {"intent", call_intent},
        {"forward", forward},
        {"check", call_check},
        {"forget", tenancy_deleted},
        {"answer", call_answer_kept},
        {NULL, NULL},
};

/* --- a file added by file_id ------------------------------------------- */

struct file_json {
	json_t *doc;
	char *forward;
	size_t forward_len;
};

static void
file_json_free(void *arg)
{
	struct file_json *f = arg;

	if (f == NULL)
		return;
	json_decref(f->doc);
	secmem_free(f->forward);
	free(f);
}

static enum step_result
validate_file(struct request *r)
{
	struct conn_req *http = r->http;
	struct file_json *f;

	if (!request_is_json(r)) {
		err_set(&r->error, 415, ERR_INVALID, "unsupported_media_type", NULL,
		        "send Content-Type: application/json");
		return STEP_FAIL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return oom(r);
	r->op = f;
	r->op_free = file_json_free;
	f->doc = jsondoc_parse(http->body, http->body_len, &r->error);
	secmem_free(http->body);
	http->body = NULL;
	http->body_len = http->body_cap = 0;
	if (f->doc == NULL ||
	    schema_check(&schema_create_container_file_body, f->doc, &r->error) < 0)
		return STEP_FAIL;
	if (json_object_get(f->doc, "file_id") == NULL) {
		err_set(&r->error, 400, ERR_INVALID, "missing_required_parameter", "file_id",
		        "file_id is required in a JSON body; to upload the file itself, send "
		        "multipart/form-data with a \"file\" part");
		return STEP_FAIL;
	}
	f->forward = jsonbuf_dump(f->doc, (size_t)http->body_seen + 512,
	                          (size_t)http->body_seen * 2 + 64 * 1024, &f->forward_len);
	return f->forward ? STEP_NEXT : oom(r);
}

static enum step_result
forward_file(struct request *r)
{
	struct file_json *f = r->op;

	return forward_call(r, f->forward, f->forward_len);
}

const struct step forward_file_steps[] = {
        {"admit", tenancy_admit},     {"validate", validate_file},
        {"intent", call_intent},      {"forward", forward_file},
        {"check", call_check},        {"note", call_note_file},
        {"answer", call_answer_kept}, {NULL, NULL},
};

/* --- a list of containers ----------------------------------------------- */

/* A tenant's list: the upstream's pages, 100 at a time, gathered until
 * the client's limit is filled or the upstream runs out. */
struct list {
	json_t *acc;  /* the tenant's containers so far */
	json_t *page; /* the page being filtered */
	long want;
	int pages, more;
	char after[REQUEST_ID_MAX + 1];
};

static void
list_free(void *arg)
{
	struct list *l = arg;

	if (l == NULL)
		return;
	json_decref(l->acc);
	json_decref(l->page);
	free(l);
}

static void next_page(struct request *r);

/* The page's own containers are in; enough, or another page. */
static void
filtered(struct request *r, int ok)
{
	struct list *l = r->op;
	json_t *item;
	size_t i;

	if (!ok) {
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	json_array_foreach(l->page, i, item)
	{
		json_array_append(l->acc, item);
	}
	json_decref(l->page);
	l->page = NULL;
	if ((long)json_array_size(l->acc) > l->want || !l->more || l->pages >= LIST_PAGES_MAX) {
		pipeline_resume(r, STEP_NEXT);
		return;
	}
	next_page(r);
}

static void
on_page(const struct upstream_res *res, void *arg)
{
	struct request *r = arg;
	struct list *l = r->op;
	json_t *page, *data;
	int n;

	call_note(r, res);
	if (!call_succeeded(res)) {
		pipeline_resume(r, call_unsuccessful(r, res));
		return;
	}
	n = call_check_answer(r, res->body, res->len);
	/* A page that is not a list cannot be filtered: it is withheld
	 * whatever the mode, since relaying it could show others' containers. */
	if (n != 0) {
		if (n > 0)
			call_withheld(r);
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	page = jsondoc_parse(res->body, res->len, &r->error);
	data = json_object_get(page, "data");
	l->more = json_is_true(json_object_get(page, "has_more"));
	if (json_array_size(data) > 0)
		snprintf(l->after, sizeof(l->after), "%s",
		         json_string_value(json_object_get(
		                 json_array_get(data, json_array_size(data) - 1), "id")));
	l->page = json_incref(data);
	json_decref(page);
	if (l->page == NULL) {
		l->more = 0;
		filtered(r, 1);
		return;
	}
	tenancy_filter(r, l->page, filtered);
}

/* The next page of the upstream's list, 100 at a time, with the client's
 * order and name; "after" moves past what was read. */
static void
next_page(struct request *r)
{
	struct list *l = r->op;
	struct upstream_req up = {0};
	char path[REQUEST_PATH_MAX], rest[REQUEST_PATH_MAX] = "";
	const char *q = strchr(r->upstream_path, '?'), *p, *amp;
	size_t o = 0, len;

	for (p = q ? q + 1 : NULL; p && *p; p = amp ? amp + 1 : p + len) {
		amp = strchr(p, '&');
		len = amp ? (size_t)(amp - p) : strlen(p);
		if (strncmp(p, "limit=", 6) == 0 || strncmp(p, "after=", 6) == 0 ||
		    o + len + 2 > sizeof(rest))
			continue;
		o += (size_t)snprintf(rest + o, sizeof(rest) - o, "&%.*s", (int)len, p);
	}
	if (snprintf(path, sizeof(path), "/containers?limit=100%s%s%s", rest,
	             l->after[0] ? "&after=" : "", l->after) >= (int)sizeof(path)) {
		err_set(&r->error, 414, ERR_INVALID, "uri_too_long", NULL,
		        "the list query is too long");
		pipeline_resume(r, STEP_FAIL);
		return;
	}
	l->pages++;
	up.method = "GET";
	up.path = path;
	up.retry_connect = 1;
	if (call_start(r, &up, 0, NULL, on_page) == STEP_FAIL)
		pipeline_resume(r, STEP_FAIL);
}

/* The organization's list is relayed as it came; a tenant's is gathered
 * from the upstream's pages. */
static enum step_result
gather(struct request *r)
{
	const char *q = strchr(r->upstream_path, '?');
	const char *limit = q ? strstr(q, "limit=") : NULL;
	const char *after = q ? strstr(q, "after=") : NULL;
	struct list *l;

	if (r->tenant == NULL)
		return forward(r);
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return oom(r);
	r->op = l;
	r->op_free = list_free;
	l->want = limit ? strtol(limit + 6, NULL, 10) : 20;
	if (after)
		snprintf(l->after, sizeof(l->after), "%.*s", (int)strcspn(after + 6, "&"),
		         after + 6);
	if ((l->acc = json_array()) == NULL)
		return oom(r);
	next_page(r); /* it may resume the pipeline at once: the driver allows it */
	return STEP_WAIT;
}

static enum step_result
check_list(struct request *r)
{
	return r->tenant ? STEP_NEXT : call_check(r);
}

static enum step_result
answer_list(struct request *r)
{
	struct list *l = r->op;
	json_t *data, *doc;
	size_t n;
	int more;

	if (r->tenant == NULL)
		return call_answer_kept(r);
	data = l->acc;
	more = l->more || (long)json_array_size(data) > l->want;
	while ((long)json_array_size(data) > l->want)
		json_array_remove(data, json_array_size(data) - 1);
	n = json_array_size(data);
	doc = json_pack("{s:s, s:O, s:O?, s:O?, s:b}", "object", "list", "data", data, "first_id",
	                n ? json_object_get(json_array_get(data, 0), "id") : NULL, "last_id",
	                n ? json_object_get(json_array_get(data, n - 1), "id") : NULL, "has_more",
	                more);
	if (doc == NULL)
		return oom(r);
	reply_json(r, 200, doc);
	json_decref(doc);
	return STEP_DONE;
}

const struct step forward_list_steps[] = {
        {"admit", tenancy_admit}, {"intent", call_intent}, {"gather", gather},
        {"check", check_list},    {"answer", answer_list}, {NULL, NULL},
};
