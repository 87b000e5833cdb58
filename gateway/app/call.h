/*
 * call: the upstream call made on a request's behalf.
 *
 * The headers the upstream gets (the key authentication identified, or
 * the organization's in gateway_keys mode, and nothing else of the
 * client's but OpenAI-Organization and OpenAI-Project), the intent line
 * that comes before anything is forwarded, and what a call that did not
 * succeed comes to.
 */
#ifndef GW_CALL_H
#define GW_CALL_H

#include "app/pipeline.h"
#include "http/upstream.h"

struct request;

/* Step "intent": the request's intent line in the audit log, durable as
 * audit.fsync asks, before anything reaches the upstream. */
enum step_result call_intent(struct request *r);

/* Starts r's upstream call (up's headers are set here; json_body adds
 * Content-Type: application/json, content_type another); done runs once,
 * from the loop. Returns STEP_WAIT, or STEP_FAIL with r->error. */
enum step_result call_start(struct request *r, struct upstream_req *up, int json_body,
                            const char *content_type, upstream_done_fn done);

/* Notes a finished call in the request's record (status, time, id). */
void call_note(struct request *r, const struct upstream_res *res);

/* Whether the call worked and the upstream said yes (2xx). */
int call_succeeded(const struct upstream_res *res);

/* Whether a call that did not succeed may still have done what it asked:
 * it went out and no answer came to say otherwise (a timeout, a reset
 * after sending, an answer too large or malformed to read). A refusal by
 * the upstream, or a connection never made, did nothing. */
int call_may_have_acted(const struct upstream_res *res);

/* A call that did not succeed: the transport's failure (STEP_FAIL, with
 * r->error), or the upstream's own refusal relayed as it came (STEP_DONE). */
enum step_result call_unsuccessful(struct request *r, const struct upstream_res *res);

/* Fills r->error for a transport failure (timeout, too large, ...). */
void call_failure(struct request *r, const struct upstream_res *res);

/* Fills r->error with the answer's violations (r->rec.violations): the
 * answer is withheld. */
void call_withheld(struct request *r);

/* The answer's violations of the spec (r->expect), on record in
 * r->rec.violations: how many, or -1 (r->error set) when it could not be
 * checked. */
int call_check_answer(struct request *r, const char *body, size_t len);

/* Step "check": the kept answer (r->answer) checked; one that breaks the
 * contract is withheld unless the policy only logs violations. */
enum step_result call_check(struct request *r);

/* Step "note": the file an upload made (the answer's "id"), on record. */
enum step_result call_note_file(struct request *r);

/* Step "answer": the kept answer relayed. */
enum step_result call_answer_kept(struct request *r);

#endif
