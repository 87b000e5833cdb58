#include "app/batches.h"

#include <jansson.h>
#include <string.h>

#include "app/call.h"
#include "app/request.h"
#include "app/tenancy.h"
#include "app/transfer.h"
#include "http/conn.h"
#include "lib/jsondoc.h"
#include "policy/policy.h"

/* The batch endpoints whose calls can make containers. */
static const char *const container_endpoints[] = {"/v1/responses", NULL};

static enum step_result
validate(struct request *r)
{
	struct conn_req *http = r->http;
	const char *endpoint;
	json_t *doc;
	size_t i;

	if (!request_is_json(r)) {
		err_set(&r->error, 415, ERR_INVALID, "unsupported_media_type", NULL,
		        "POST /v1/batches takes a JSON body; send Content-Type: application/json");
		return STEP_FAIL;
	}
	doc = jsondoc_parse(http->body, http->body_len, &r->error);
	if (doc == NULL)
		return STEP_FAIL;
	endpoint = json_string_value(json_object_get(doc, "endpoint"));
	for (i = 0; endpoint && container_endpoints[i]; i++)
		if (strcmp(endpoint, container_endpoints[i]) == 0)
			break;
	if (endpoint && container_endpoints[i] && !policy_allow_batch_containers(r->policy)) {
		err_set(&r->error, 403, ERR_POLICY, "batch_endpoint_not_allowed", "endpoint",
		        "a batch of %s calls can make containers this gateway cannot check, so "
		        "this "
		        "organization's policy refuses it (batches.allow_container_endpoints); "
		        "send "
		        "those calls through the gateway one by one",
		        endpoint);
		json_decref(doc);
		return STEP_FAIL;
	}
	json_decref(doc);
	return STEP_NEXT;
}

static enum step_result
relay(struct request *r)
{
	return transfer_stream(r, NULL, 0, 0);
}

const struct step batches_steps[] = {
        {"admit", tenancy_admit}, {"validate", validate}, {"intent", call_intent},
        {"relay", relay},         {NULL, NULL},
};
