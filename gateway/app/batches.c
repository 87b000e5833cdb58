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

static enum step_result
validate(struct request *r)
{
	struct conn_req *http = r->http;
	json_t *doc;
	int rc;

	if (!request_is_json(r)) {
		err_set(&r->error, 415, ERR_INVALID, "unsupported_media_type", NULL,
		        "POST /v1/batches takes a JSON body; send Content-Type: application/json");
		return STEP_FAIL;
	}
	doc = jsondoc_parse(http->body, http->body_len, &r->error);
	if (doc == NULL)
		return STEP_FAIL;
	rc = policy_check_batch(r->policy, doc, &r->error);
	json_decref(doc);
	return rc < 0 ? STEP_FAIL : STEP_NEXT;
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
