/*
 * transfer: the operations whose bodies stream through the gateway, held
 * to about a mebibyte however large they are.
 *
 *   upload       POST /v1/containers/{id}/files, multipart: the file goes
 *                upstream as it arrives, checked as multipart on the way
 *   download     GET .../files/{file_id}/content: the answer comes back
 *                as it arrives
 *   relay        any other operation of the API: the request goes up as
 *                it came, the answer (JSON, a file, Server-Sent Events)
 *                comes back as it arrives, unchecked, audited at its end
 */
#ifndef GW_TRANSFER_H
#define GW_TRANSFER_H

#include "app/pipeline.h"

extern const struct step transfer_upload_steps[];
extern const struct step transfer_download_steps[];
extern const struct step transfer_relay_steps[];

/*
 * A step's part: sends the request upstream (its method and path; body if
 * given, as JSON, else the request's own body with its own Content-Type)
 * and streams the answer back as it arrives, r->observe reading it on the
 * way. The step waits; at the end the answer is finished (STEP_DONE), or,
 * with keep_open, left open for a later step to finish with
 * reply_stream_end (STEP_NEXT), also when the upstream broke off mid-answer
 * (r->relay_broke, r->error saying how; the later step fails with it). An
 * answer the client left before is read whole and relayed (STEP_DONE).
 */
enum step_result transfer_stream(struct request *r, const char *body, size_t len, int keep_open);

#endif
