/*
 * pipeline: each operation as an ordered list of named steps.
 *
 * A route names its steps (front.c); the driver here runs them top to
 * bottom. A step returns STEP_NEXT to go on, STEP_DONE when it has sent
 * the answer, STEP_FAIL with r->error saying why, or STEP_WAIT when it
 * waits on the store, the audit log or the upstream, whose callback then
 * calls pipeline_resume with what the step came to. A waiting step may
 * also resume at once, before it returns.
 *
 * The driver is the only place a failure becomes a reply (the error shape
 * before an answer has begun, the end of a cut stream after), and the
 * only place an answered request is freed.
 */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include "lib/err.h"

struct request;

enum step_result { STEP_NEXT, STEP_WAIT, STEP_DONE, STEP_FAIL };

struct step {
	const char *name;
	enum step_result (*run)(struct request *r);
};

/* Runs steps (ended by a { NULL } entry) from the first. */
void pipeline_start(struct request *r, const struct step *steps);

/* What the waiting step came to: go on from the next step, or stop. */
void pipeline_resume(struct request *r, enum step_result res);

/* What a step returns once it has started what it waits on (started: 1),
 * or when that could not start (0: no memory for it, so no callback will
 * come): STEP_FAIL with a 503. pipeline_wait_more is the same for a
 * callback that starts the next wait: on failure it resumes r itself. */
enum step_result pipeline_wait(struct request *r, int started);
void pipeline_wait_more(struct request *r, int started);

/* Ends r with e (copied) wherever it is: what was under way is cancelled,
 * and the client gets e. For errors outside the steps (a framing error,
 * the shutdown's grace period) and for steps that have failed already. */
void pipeline_fail(struct request *r, const struct err *e);

/* The step r is at (its name), or NULL when none is running. */
const char *pipeline_step(const struct request *r);

#endif
