#include "app/pipeline.h"

#include <stddef.h>

#include "app/reply.h"
#include "app/request.h"
#include "app/store.h"
#include "http/upstream.h"
#include "lib/log.h"

/* The failure's one reply: the error shape, or, once a streamed answer
 * has begun, its end, cut short. */
static void
fail(struct request *r)
{
	if (r->replied)
		return;
	if (r->rec.stream_status)
		reply_stream_end(r, &r->error);
	else
		reply_err(r, &r->error);
}

/* A step that says it is done must have answered; one that ran out of
 * steps did not. Either way the client gets an answer. */
static void
unanswered(struct request *r)
{
	log_msg(LOG_ERROR, r->id, "the pipeline ended at step %s without an answer",
	        r->steps && r->steps[r->step].name ? r->steps[r->step].name : "(end)");
	err_set(&r->error, 500, ERR_INTERNAL, "internal_error", NULL,
	        "the gateway could not complete the request");
	fail(r);
}

/* After a step, or a waiting step's callback, came to res: answer a
 * failure, free an answered request, or go on. */
static int
settle(struct request *r, enum step_result res)
{
	if (res == STEP_FAIL)
		fail(r);
	else if (res == STEP_DONE && !r->free_pending)
		unanswered(r);
	if (r->free_pending) {
		request_free(r);
		return 0;
	}
	return res == STEP_NEXT;
}

static void
run(struct request *r)
{
	enum step_result res;

	for (;;) {
		if (r->steps == NULL || r->steps[r->step].name == NULL) {
			(void)settle(r, STEP_DONE);
			return;
		}
		r->in_step = 1;
		r->resumed = -1;
		res = r->steps[r->step].run(r);
		r->in_step = 0;
		if (res == STEP_WAIT && r->resumed >= 0)
			res = (enum step_result)r->resumed;
		if (res == STEP_WAIT || !settle(r, res))
			return;
		r->step++;
	}
}

void
pipeline_start(struct request *r, const struct step *steps)
{
	r->steps = steps;
	r->step = 0;
	run(r);
}

void
pipeline_resume(struct request *r, enum step_result res)
{
	if (r->in_step) {
		r->resumed = (int)res;
		return;
	}
	if (settle(r, res)) {
		r->step++;
		run(r);
	}
}

enum step_result
pipeline_wait(struct request *r, int started)
{
	if (started)
		return STEP_WAIT;
	err_set(&r->error, 503, ERR_INTERNAL, "out_of_memory", NULL,
	        "the gateway is out of memory; try again");
	return STEP_FAIL;
}

void
pipeline_wait_more(struct request *r, int started)
{
	if (!started)
		pipeline_resume(r, pipeline_wait(r, 0));
}

void
pipeline_fail(struct request *r, const struct err *e)
{
	if (r->replied)
		return;
	if (e != &r->error)
		r->error = *e;
	if (r->in_step) {
		r->resumed = STEP_FAIL;
		return;
	}
	upstream_cancel(r->call);
	r->call = NULL;
	store_cancel(r->store_op);
	r->store_op = NULL;
	(void)settle(r, STEP_FAIL);
}

const char *
pipeline_step(const struct request *r)
{
	return r->steps ? r->steps[r->step].name : NULL;
}
